"""Spotify's JSON objects, shaped as the real Web API sends them.

Every object carries every key Spotify sends for it, nulls included: a field Spotify
sends as ``null`` against its own published schema (unavailable playlist items, local
files, the last page of a cursor) is ``null`` here, never left out, because clients
with strict models (tekore) require the key. Full and simplified objects are used
where Spotify uses each. What the sandbox knowingly sends differently is listed in
docs/sandbox.md ("Known differences from Spotify").
"""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import urlencode

from ._identifiers import format_timestamp, stable_digits, stable_token
from ._state import Album, Artist, Catalog, LocalFile, Playlist, PlaylistItem, Track, User

OPEN_SPOTIFY = "https://open.spotify.com"
JSON = dict[str, Any]


def _external(kind: str, ident: str) -> JSON:
    return {"spotify": f"{OPEN_SPOTIFY}/{kind}/{ident}"}


def _precision(release_date: str) -> str:
    return ("year", "month", "day")[release_date.count("-")]


def isrc_of(track_id: str) -> str:
    """A well-formed ISRC (CC-XXX-YY-NNNNN), the same for the same track."""
    return f"QZ{stable_token(track_id, 3).upper()}{stable_digits(track_id, 7)}"


def upc_of(album_id: str) -> str:
    """A 12-digit UPC, the same for the same album."""
    return stable_digits(album_id, 12)


def account_id_of(user_id: str) -> str:
    """The immutable, pseudo-anonymous ``account_id`` of a user's profile."""
    return stable_token(f"account:{user_id}", 10)


LocalFileShape = Literal["album_of_nulls", "null_album"]


class ObjectRenderer:
    """Renders catalog and library objects for one API base URL, caching the immutable ones."""

    def __init__(
        self, catalog: Catalog, api_base: str, local_file_shape: LocalFileShape = "album_of_nulls"
    ) -> None:
        self.catalog = catalog
        self.api_base = api_base
        self.local_file_shape = local_file_shape
        self._tracks: dict[str, JSON] = {}
        self._albums: dict[str, JSON] = {}

    def artist_simple(self, artist: Artist) -> JSON:
        return {
            "external_urls": _external("artist", artist.id),
            "href": f"{self.api_base}/artists/{artist.id}",
            "id": artist.id,
            "name": artist.name,
            "type": "artist",
            "uri": f"spotify:artist:{artist.id}",
        }

    def artist_full(self, artist: Artist) -> JSON:
        return {
            **self.artist_simple(artist),
            "followers": {"href": None, "total": 0},
            "genres": [],
            "images": [],
            "popularity": 0,
        }

    def album_simple(self, album: Album) -> JSON:
        cached = self._albums.get(album.id)
        if cached is None:
            cached = {
                "album_type": album.album_type,
                "total_tracks": len(album.track_ids),
                "available_markets": [],
                "external_urls": _external("album", album.id),
                "href": f"{self.api_base}/albums/{album.id}",
                "id": album.id,
                "images": [],
                "name": album.name,
                "release_date": album.release_date,
                "release_date_precision": _precision(album.release_date),
                "type": "album",
                "uri": f"spotify:album:{album.id}",
                "artists": [self.artist_simple(self.catalog.artists[a]) for a in album.artist_ids],
            }
            self._albums[album.id] = cached
        return cached

    def album_full(self, album: Album) -> JSON:
        first_page = album.track_ids[:50]
        tracks = self.paging(
            f"/albums/{album.id}/tracks",
            [self.track_simple(self.catalog.tracks[t]) for t in first_page],
            offset=0,
            limit=50,
            total=len(album.track_ids),
        )
        return {
            **self.album_simple(album),
            "tracks": tracks,
            "copyrights": [],
            "external_ids": {"upc": upc_of(album.id)},
            "genres": [],
            "label": "",
            "popularity": 0,
        }

    def track_simple(self, track: Track) -> JSON:
        album = self.catalog.albums[track.album_id]
        body: JSON = {
            "artists": [self.artist_simple(self.catalog.artists[a]) for a in track.artist_ids],
            "available_markets": [],
            "disc_number": 1,
            "duration_ms": track.duration_ms,
            "explicit": track.explicit,
            "external_urls": _external("track", track.id),
            "href": f"{self.api_base}/tracks/{track.id}",
            "id": track.id,
            "is_playable": track.available,
            "name": track.name,
            "preview_url": None,
            "track_number": album.track_ids.index(track.id) + 1,
            "type": "track",
            "uri": f"spotify:track:{track.id}",
            "is_local": False,
        }
        if not track.available:
            body["restrictions"] = {"reason": "market"}
        return body

    def track_full(self, track: Track) -> JSON:
        cached = self._tracks.get(track.id)
        if cached is None:
            cached = {
                **self.track_simple(track),
                "album": self.album_simple(self.catalog.albums[track.album_id]),
                "external_ids": {"isrc": isrc_of(track.id)},
                "popularity": 0,
            }
            self._tracks[track.id] = cached
        return cached

    def playlist_track(self, track: Track) -> JSON:
        """A track as a playlist entry carries it: the full track plus Spotify's
        ``episode``/``track`` booleans, which the published schema leaves out."""
        return {**self.track_full(track), "episode": False, "track": True}

    def local_track(self, item: PlaylistItem, local: LocalFile) -> JSON:
        """A local file as a playlist entry's track: every key of a track, with null or
        empty values where Spotify has nothing (no ID, no link, no album in the catalog).

        Spotify's album of a local file: an album object whose fields are null
        (``local_file_shape="album_of_nulls"``, what tekore's models require) or, as the
        reference reads, ``null`` itself with ``external_ids: null`` (``"null_album"``).
        Which one Spotify sends today is an open question (docs/sandbox.md).
        """
        album: JSON | None = None
        external_ids: JSON | None = None
        if self.local_file_shape == "album_of_nulls":
            album = {
                "album_type": None,
                "artists": [],
                "available_markets": [],
                "external_urls": {},
                "href": None,
                "id": None,
                "images": [],
                "name": local.album,
                "release_date": None,
                "release_date_precision": None,
                "type": "album",
                "uri": None,
            }
            external_ids = {}
        return {
            "album": album,
            "artists": [
                {
                    "external_urls": {},
                    "href": None,
                    "id": None,
                    "name": local.artist,
                    "type": "artist",
                    "uri": None,
                }
            ],
            "available_markets": [],
            "disc_number": 0,
            "duration_ms": local.duration_ms,
            "episode": False,
            "explicit": False,
            "external_ids": external_ids,
            "external_urls": {},
            "href": None,
            "id": None,
            "is_local": True,
            "name": local.name,
            "popularity": 0,
            "preview_url": None,
            "track": True,
            "track_number": 0,
            "type": "track",
            "uri": item.uri,
        }

    def user_ref(self, user_id: str, display_name: str | None = None) -> JSON:
        body: JSON = {
            "external_urls": _external("user", user_id),
            "href": f"{self.api_base}/users/{user_id}",
            "id": user_id,
            "type": "user",
            "uri": f"spotify:user:{user_id}",
        }
        if display_name is not None:
            body["display_name"] = display_name
        return body

    def private_user(self, user: User) -> JSON:
        """``GET /me`` without ``user-read-private``/``-email``: no country, email or product."""
        return {
            **self.user_ref(user.id, user.display_name),
            "account_id": account_id_of(user.id),
            "followers": {"href": None, "total": 0},
            "images": [],
        }

    def playlist_item(self, item: PlaylistItem) -> JSON:
        content: JSON | None
        if item.local is not None:
            content = self.local_track(item, item.local)
        else:
            assert item.track_id is not None
            track = self.catalog.tracks[item.track_id]
            content = self.playlist_track(track) if track.available else None
        return {
            "added_at": None if item.added_at is None else format_timestamp(item.added_at),
            "added_by": None if item.added_by is None else self.user_ref(item.added_by),
            "is_local": item.local is not None,
            "primary_color": None,
            "item": content,
            "track": content,
            "video_thumbnail": {"url": None},
        }

    def playlist_simple(self, playlist: Playlist, owner: User) -> JSON:
        items_ref = {
            "href": f"{self.api_base}/playlists/{playlist.id}/items",
            "total": len(playlist.items),
        }
        tracks_ref = {
            "href": f"{self.api_base}/playlists/{playlist.id}/tracks",
            "total": len(playlist.items),
        }
        return {
            "collaborative": playlist.collaborative,
            "description": playlist.description,
            "external_urls": _external("playlist", playlist.id),
            "href": f"{self.api_base}/playlists/{playlist.id}",
            "id": playlist.id,
            "images": [],
            "name": playlist.name,
            "owner": self.user_ref(owner.id, owner.display_name),
            "primary_color": None,
            "public": playlist.public,
            "snapshot_id": playlist.snapshot_id,
            "items": items_ref,
            "tracks": tracks_ref,
            "type": "playlist",
            "uri": f"spotify:playlist:{playlist.id}",
        }

    def paging(
        self,
        path: str,
        items: list[Any],
        *,
        offset: int,
        limit: int,
        total: int,
        query: dict[str, str] | None = None,
    ) -> JSON:
        def link(at: int) -> str:
            return f"{self.api_base}{path}?" + urlencode(
                {**(query or {}), "offset": at, "limit": limit}
            )

        return {
            "href": link(offset),
            "items": items,
            "limit": limit,
            "next": link(offset + limit) if offset + limit < total else None,
            "offset": offset,
            "previous": link(max(0, offset - limit)) if offset > 0 else None,
            "total": total,
        }
