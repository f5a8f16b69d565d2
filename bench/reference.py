"""The bench's libraries and the least calls any run could make on them.

``REFERENCE`` is the reference library of issue [E]: 20,000 liked songs, 300 owned
playlists of 150 entries (5% duplicates), 2,000 followed artists, 1,000 saved albums and
a blocklist of 200 artists that hits about 15% of the songs. ``Library.fixture`` makes it
(or any other size) with the sandbox's seeded generator: the same arguments give the same
library, whatever the user's ID, so two runs on two accounts compare.

The lower bounds, each at Spotify's per-call limits (``enforcer.spotify.limits``):

- enforcement: one ``DELETE /me/library`` per 40 library URIs (liked songs, albums and
  artists mix), and per playlist one ``DELETE /playlists/{id}/items`` per 100 distinct
  URIs (one URI removes every copy);
- rollback: ``enforcer.restore.rollback_lower_bound`` (dated liked songs / 50, the rest
  of the library / 40, plus a call per maximal run of removed positions in each
  playlist, split at 100);
- scan: one page per 50 liked songs, saved albums, followed artists and playlists, and
  per 50 entries of each playlist the plan reads (``GET /playlists/{id}/items`` takes
  at most 50); an empty listing still costs its one page.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Final

from enforcer.ledger import ItemStatus, Ledger
from enforcer.models import (
    BlockedArtist,
    EntityType,
    LikedSongBefore,
    PlannedAction,
    PlaylistItemBefore,
)
from enforcer.restore import rollback_lower_bound
from enforcer.sandbox import generate_library
from enforcer.spotify.limits import (
    FOLLOWED_ARTISTS_PAGE,
    LIBRARY_URIS_PER_CALL,
    LIKED_SONGS_PAGE,
    PLAYLIST_ITEMS_PAGE,
    PLAYLIST_ITEMS_PER_CALL,
    PLAYLISTS_PAGE,
    SAVED_ALBUMS_PAGE,
)

SEED: Final = 2026
BLOCKED_SHARE: Final = 0.15
"""About this share of the songs is by a blocked artist (``blocked / album artists``)."""


@dataclass(frozen=True)
class Library:
    """A generated library and its blocklist: the first ``blocked`` catalog artists."""

    liked: int
    playlists: int
    size: int
    followed: int
    albums: int
    blocked: int
    album_artists: int | None = None
    """Artists with albums; a blocked artist is among them. None: ``blocked / 15%``."""

    def fixture(self, user_id: str) -> dict[str, Any]:
        # Album artists are the first ones: a blocked artist has songs, about
        # blocked / album artists of them.
        album_artists = self.album_artists or max(self.albums, round(self.blocked / BLOCKED_SHARE))
        return generate_library(
            seed=SEED,
            user_id=user_id,
            liked_songs=self.liked,
            playlists=self.playlists,
            playlist_size=self.size,
            artists=max(self.followed, album_artists),
            albums=album_artists,
            saved_albums=min(self.albums, album_artists),
            followed_artists=self.followed,
            duplicate_rate=0.05,
            followed_playlists=0,
        )

    def describe(self) -> str:
        return (
            f"{self.liked:,} liked songs, {self.playlists:,} playlists of {self.size:,} "
            f"(5% duplicates), {self.followed:,} followed artists, {self.albums:,} saved "
            f"albums; {self.blocked:,} artists blocked"
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


REFERENCE: Final = Library(
    liked=20_000, playlists=300, size=150, followed=2_000, albums=1_000, blocked=200
)


def blocked_artists(fixture: dict[str, Any], count: int) -> list[BlockedArtist]:
    return [
        BlockedArtist(artist_id=artist["id"], name=artist["name"])
        for artist in fixture["catalog"]["artists"][:count]
    ]


def library_of(dump: dict[str, Any]) -> dict[str, Any]:
    """What a rollback must bring back exactly (a ``GET /__sandbox/users/{id}`` dump):
    liked songs in order with their dates (songs saved in the same second as a set:
    Spotify lists them newest first and says no order among equal dates; 120,000
    generated songs hold 22 such pairs), every playlist's entries in order with their
    duplicates; saved albums and followed artists as sets (``/me/library`` keeps no
    album date, and followed artists have no order)."""
    return {
        "liked_songs": [
            (song["added_at"], song["track_id"])
            for song in sorted(
                dump["liked_songs"], key=lambda song: (song["added_at"], song["track_id"])
            )
        ][::-1],
        "saved_albums": sorted(album["album_id"] for album in dump["saved_albums"]),
        "followed_artists": sorted(dump["followed_artists"]),
        "playlists": {
            playlist["id"]: [entry.get("uri") for entry in playlist["items"]]
            for playlist in dump["playlists"]
            if isinstance(playlist, dict)
        },
    }


def enforcement_lower_bound(actions: Sequence[PlannedAction]) -> int:
    """The fewest write calls that remove ``actions`` (see the module's docstring)."""
    library = 0
    playlists: dict[str, set[str]] = {}
    for action in actions:
        if action.entity_type is EntityType.PLAYLIST_ITEM and action.container_id is not None:
            playlists.setdefault(action.container_id, set()).add(action.uri)
        else:
            library += 1
    return math.ceil(library / LIBRARY_URIS_PER_CALL) + sum(
        math.ceil(len(uris) / PLAYLIST_ITEMS_PER_CALL) for uris in playlists.values()
    )


def scan_lower_bound(dump: dict[str, Any]) -> int:
    """The fewest pages a scan of ``dump`` (the user's library) reads."""

    def pages(count: int, page: int) -> int:
        return max(1, math.ceil(count / page))

    owned = [playlist for playlist in dump["playlists"] if isinstance(playlist, dict)]
    listed = len(dump["playlists"])
    return (
        pages(len(dump["liked_songs"]), LIKED_SONGS_PAGE)
        + pages(len(dump["saved_albums"]), SAVED_ALBUMS_PAGE)
        + pages(len(dump["followed_artists"]), FOLLOWED_ARTISTS_PAGE)
        + pages(listed, PLAYLISTS_PAGE)
        + sum(pages(len(playlist["items"]), PLAYLIST_ITEMS_PAGE) for playlist in owned)
    )


async def rollback_bound(ledger: Ledger, batch_id: str) -> tuple[int, int]:
    """The rollback's lower bound for ``batch_id``, and how many playlists it restores."""
    items = await ledger.action_items(batch_id, status=ItemStatus.COMPLETED)
    positions: dict[str, list[int]] = {}
    for item in items:
        if isinstance(item.before, PlaylistItemBefore):
            occurrences = positions.setdefault(item.before.playlist_id, [])
            occurrences.extend(o.position for o in item.before.occurrences)
    songs = sum(isinstance(item.before, LikedSongBefore) for item in items)
    others = sum(
        item.entity_type in (EntityType.SAVED_ALBUM, EntityType.FOLLOWED_ARTIST) for item in items
    )
    bound = rollback_lower_bound(
        dated_liked_songs=songs, other_library_items=others, playlists=positions.values()
    )
    return bound, len(positions)
