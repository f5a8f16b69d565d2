"""The asynchronous Spotify Web API client: reads every page, writes in exact chunks.

Endpoint methods stay short because the rest lives in one place each: scopes and
paths in ``_endpoints``, limits and chunking in ``limits``, the generation switch
in ``_generations``, tokens, deadlines, counting and errors in ``_http``, paging
below.

The client never retries and never sleeps. A 429 is raised at once as
``RateLimited`` with Spotify's exact ``Retry-After``; a 5xx, a timeout or a lost
connection as ``TransientError``. Waiting and retrying belong to the caller (the
Temporal activity's retry policy), which can wait durably for hours.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from types import TracebackType
from typing import Any, Final, Self, TypeVar
from urllib.parse import parse_qs, urlsplit

import httpx
from pydantic import BaseModel, ValidationError

from enforcer.spotify import _endpoints as api
from enforcer.spotify._endpoints import Endpoint, scopes_of, uses
from enforcer.spotify._generations import (
    REFUSALS,
    Generation,
    GenerationMemory,
    InMemoryGenerationMemory,
    Operation,
    with_fallback,
)
from enforcer.spotify._http import CallCounts, QueryParams, Sender
from enforcer.spotify.errors import BadRequest, SpotifyError, TransientError
from enforcer.spotify.ids import (
    Kind,
    parse_artist_id,
    parse_playlist_id,
    parse_track_id,
    parse_uri,
)
from enforcer.spotify.limits import (
    FOLLOWED_ARTISTS_PAGE,
    LEGACY_ALBUMS_PER_CALL,
    LEGACY_ARTISTS_PER_CALL,
    LEGACY_LIKED_SONGS_PER_CALL,
    LEGACY_PLAYLIST_ITEMS_PAGE,
    LIBRARY_URIS_PER_CALL,
    LIKED_SONGS_PAGE,
    PLAYLIST_ITEMS_PAGE,
    PLAYLIST_ITEMS_PER_CALL,
    PLAYLISTS_PAGE,
    SAVED_ALBUMS_PAGE,
    chunks,
)
from enforcer.spotify.models import (
    Artist,
    DatedSaveResult,
    Page,
    Playlist,
    PlaylistItem,
    SavedAlbum,
    SavedTrack,
    Track,
    UserProfile,
)
from enforcer.spotify.tokens import AccessTokenProvider

DEFAULT_API_BASE_URL: Final = "https://api.spotify.com/v1"

LIBRARY_KINDS: Final[tuple[Kind, ...]] = ("track", "album", "artist")
"""What ``/me/library`` writes take from this project (artists: see ``remove_from_library``)."""
PLAYLIST_ITEM_KINDS: Final[tuple[Kind, ...]] = ("track", "episode")

_ADDITIONAL_TYPES: Final = {"additional_types": "track,episode"}
_SNAPSHOT_ONLY: Final = {"fields": "snapshot_id"}

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class _LibraryDirection:
    """The endpoints of one direction (save or remove) of a library write."""

    operation: str
    artists_operation: str
    library: Endpoint
    legacy_tracks: Endpoint
    legacy_albums: Endpoint
    legacy_artists: Endpoint


_SAVE: Final = _LibraryDirection(
    Operation.LIBRARY_SAVE,
    Operation.ARTISTS_FOLLOW,
    api.LIBRARY_SAVE,
    api.LEGACY_LIKED_SONGS_SAVE,
    api.LEGACY_ALBUMS_SAVE,
    api.LEGACY_FOLLOW_ARTISTS,
)
_REMOVE: Final = _LibraryDirection(
    Operation.LIBRARY_REMOVE,
    Operation.ARTISTS_UNFOLLOW,
    api.LIBRARY_REMOVE,
    api.LEGACY_LIKED_SONGS_REMOVE,
    api.LEGACY_ALBUMS_REMOVE,
    api.LEGACY_UNFOLLOW_ARTISTS,
)


class SpotifyClient:
    """One person's Spotify library over one connection pool.

    ``tokens`` hands out bearer tokens (``enforcer.spotify.auth`` in production);
    ``generations`` remembers, per account, which generation of endpoints each
    operation needs (an in-memory one by default; the ledger persists it).
    ``timeout`` is the deadline of each request, in seconds.

    Use it as ``async with SpotifyClient(...) as client:`` or call ``aclose()``.

    It never retries and never sleeps: a 429 is raised at once as ``RateLimited``,
    a 5xx or a timeout as ``TransientError``; the caller (a Temporal activity)
    decides when to try again. A 401 is the one exception: the token is refreshed
    once and the request sent once more.
    """

    def __init__(
        self,
        tokens: AccessTokenProvider,
        *,
        api_base_url: str = DEFAULT_API_BASE_URL,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 30.0,
        generations: GenerationMemory | None = None,
    ) -> None:
        self._sender = Sender(
            tokens, api_base_url=api_base_url, transport=transport, timeout=timeout
        )
        self._generations: GenerationMemory = (
            generations if generations is not None else InMemoryGenerationMemory()
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._sender.aclose()

    @property
    def calls(self) -> CallCounts:
        """Requests sent so far, per ``"METHOD /v1/path/{template}"``, and ``calls.total``."""
        return self._sender.calls

    @property
    def generations(self) -> GenerationMemory:
        return self._generations

    # Reads ---------------------------------------------------------------------

    @uses(api.CURRENT_USER)
    async def current_user(self) -> UserProfile:
        """The person the tokens belong to (``GET /me``)."""
        return _parse(UserProfile, await self._sender.request(api.CURRENT_USER), "GET /me")

    @uses(api.PLAYLIST)
    async def playlist(self, playlist_id: str) -> Playlist:
        """One playlist's owner, flags, item count and current ``snapshot_id``."""
        path = {"playlist_id": parse_playlist_id(playlist_id)}
        data = await self._sender.request(api.PLAYLIST, path=path)
        return _parse(Playlist, data, self._sender.key(api.PLAYLIST))

    @uses(api.PLAYLIST)
    async def playlist_snapshot_id(self, playlist_id: str) -> str:
        """The playlist's current ``snapshot_id`` alone (``GET /playlists/{id}`` with
        ``fields=snapshot_id``): the cheapest way to learn whether it changed."""
        path = {"playlist_id": parse_playlist_id(playlist_id)}
        data = await self._sender.request(api.PLAYLIST, path=path, params=_SNAPSHOT_ONLY)
        return _snapshot_id(data, self._sender.key(api.PLAYLIST))

    @uses(api.ARTIST)
    async def artist(self, artist_id: str) -> Artist:
        """One artist, given by ID, URI or link: proof that it exists, and its name.

        A malformed value raises ``InvalidIdentifier`` before anything is sent; an
        artist Spotify does not know raises ``NotFound``.
        """
        path = {"artist_id": parse_artist_id(artist_id)}
        data = await self._sender.request(api.ARTIST, path=path)
        return _parse(Artist, data, self._sender.key(api.ARTIST))

    @uses(api.TRACK)
    async def track(self, track_id: str) -> Track:
        """One track, given by ID, URI or link (``InvalidIdentifier``, ``NotFound`` as above)."""
        path = {"track_id": parse_track_id(track_id)}
        data = await self._sender.request(api.TRACK, path=path)
        return _parse(Track, data, self._sender.key(api.TRACK))

    @uses(api.LIKED_SONGS)
    async def liked_songs_page(self, offset: int = 0) -> Page[SavedTrack]:
        """One page of Liked Songs from ``offset`` (``GET /me/tracks``, 50 a page)."""
        return await self._offset_page(
            api.LIKED_SONGS, SavedTrack, offset=_offset(offset), limit=LIKED_SONGS_PAGE
        )

    @uses(api.SAVED_ALBUMS)
    async def saved_albums_page(self, offset: int = 0) -> Page[SavedAlbum]:
        """One page of saved albums from ``offset`` (``GET /me/albums``, 50 a page)."""
        return await self._offset_page(
            api.SAVED_ALBUMS, SavedAlbum, offset=_offset(offset), limit=SAVED_ALBUMS_PAGE
        )

    @uses(api.PLAYLISTS)
    async def playlists_page(self, offset: int = 0) -> Page[Playlist]:
        """One page of the playlists the person owns or follows (``GET /me/playlists``)."""
        return await self._offset_page(
            api.PLAYLISTS, Playlist, offset=_offset(offset), limit=PLAYLISTS_PAGE
        )

    @uses(api.PLAYLIST_ITEMS, api.LEGACY_PLAYLIST_ITEMS)
    async def playlist_items_page(self, playlist_id: str, offset: int = 0) -> Page[PlaylistItem]:
        """One page of a playlist's entries from ``offset``, each with its position.

        Unavailable entries (no content) and local files are kept and marked.
        ``GET /playlists/{id}/items`` (50 a page), else the legacy ``/tracks`` (100).
        """
        path = {"playlist_id": parse_playlist_id(playlist_id)}
        start = _offset(offset)

        def read(endpoint: Endpoint, limit: int) -> Awaitable[Any]:
            params: dict[str, str | int] = {**_ADDITIONAL_TYPES, "limit": limit, "offset": start}
            return self._sender.request(endpoint, path=path, params=params)

        data, _ = await with_fallback(
            self._generations,
            Operation.PLAYLIST_ITEMS_READ,
            {
                Generation.CURRENT: partial(read, api.PLAYLIST_ITEMS, PLAYLIST_ITEMS_PAGE),
                Generation.LEGACY: partial(
                    read, api.LEGACY_PLAYLIST_ITEMS, LEGACY_PLAYLIST_ITEMS_PAGE
                ),
            },
        )
        return _offset_paged(
            data,
            start,
            lambda position, raw: PlaylistItem.model_validate(
                {**(raw or {}), "position": position}
            ),
            self._sender.key(api.PLAYLIST_ITEMS),
        )

    @uses(api.FOLLOWED_ARTISTS)
    async def followed_artists_page(self, after: str | None = None) -> Page[Artist]:
        """One page of followed artists after the cursor ``after`` (``GET /me/following``)."""
        params: dict[str, str | int] = {"type": "artist", "limit": FOLLOWED_ARTISTS_PAGE}
        if after is not None:
            if not isinstance(after, str) or not after:
                raise ValueError(f"after must be a cursor from a previous page, not {after!r}")
            params["after"] = after
        key = self._sender.key(api.FOLLOWED_ARTISTS)
        data = await self._sender.request(api.FOLLOWED_ARTISTS, params=params)
        paging = data.get("artists") if isinstance(data, dict) else None
        if not isinstance(paging, dict) or not isinstance(paging.get("items"), list):
            raise TransientError(f"{key} answered without an artists paging object")
        raw_items: list[Any] = paging["items"]
        cursors = paging.get("cursors") or {}
        next_after = cursors.get("after") if paging.get("next") and raw_items else None
        return Page[Artist](
            items=[_parse(Artist, raw, key) for raw in raw_items],
            total=paging.get("total"),
            cursor=after,
            next_cursor=next_after if isinstance(next_after, str) and next_after else None,
        )

    @uses(api.LIKED_SONGS)
    def liked_songs_pages(self, start: int = 0) -> AsyncGenerator[Page[SavedTrack], None]:
        """Every page of Liked Songs from offset ``start``: checkpoint ``next_cursor``."""
        return _pages(self.liked_songs_page, _offset(start))

    @uses(api.SAVED_ALBUMS)
    def saved_albums_pages(self, start: int = 0) -> AsyncGenerator[Page[SavedAlbum], None]:
        """Every page of saved albums from offset ``start``."""
        return _pages(self.saved_albums_page, _offset(start))

    @uses(api.PLAYLISTS)
    def playlists_pages(self, start: int = 0) -> AsyncGenerator[Page[Playlist], None]:
        """Every page of the person's playlists from offset ``start``."""
        return _pages(self.playlists_page, _offset(start))

    @uses(api.PLAYLIST_ITEMS, api.LEGACY_PLAYLIST_ITEMS)
    def playlist_items_pages(
        self, playlist_id: str, start: int = 0
    ) -> AsyncGenerator[Page[PlaylistItem], None]:
        """Every page of a playlist's entries from offset ``start``."""
        read = partial(self.playlist_items_page, parse_playlist_id(playlist_id))
        return _pages(read, _offset(start))

    @uses(api.FOLLOWED_ARTISTS)
    async def followed_artists_pages(
        self, after: str | None = None
    ) -> AsyncGenerator[Page[Artist], None]:
        """Every page of followed artists after the cursor ``after`` (None: from the start)."""
        cursor = after
        while True:
            page = await self.followed_artists_page(cursor)
            yield page
            if page.next_cursor is None:
                return
            cursor = str(page.next_cursor)

    async def all_liked_songs(self) -> list[SavedTrack]:
        """Every Liked Song, newest first, as Spotify lists them."""
        return [item async for page in self.liked_songs_pages() for item in page.items]

    async def all_saved_albums(self) -> list[SavedAlbum]:
        return [item async for page in self.saved_albums_pages() for item in page.items]

    async def all_playlists(self) -> list[Playlist]:
        return [item async for page in self.playlists_pages() for item in page.items]

    async def all_playlist_items(self, playlist_id: str) -> list[PlaylistItem]:
        pages = self.playlist_items_pages(playlist_id)
        return [item async for page in pages for item in page.items]

    async def all_followed_artists(self) -> list[Artist]:
        return [item async for page in self.followed_artists_pages() for item in page.items]

    # Library writes --------------------------------------------------------------

    @uses(
        api.LIBRARY_REMOVE,
        api.LEGACY_LIKED_SONGS_REMOVE,
        api.LEGACY_ALBUMS_REMOVE,
        api.LEGACY_UNFOLLOW_ARTISTS,
    )
    async def remove_from_library(self, uris: Iterable[str]) -> None:
        """Unlikes tracks, removes saved albums and unfollows artists, given as URIs.

        ``DELETE /me/library`` with 40 URIs a call, mixing kinds. Where the account
        needs the legacy generation, tracks go to ``/me/tracks`` (50 a call),
        albums to ``/me/albums`` (20), artists to ``/me/following`` (50). When
        ``/me/library`` answers 400 to artist URIs they are unfollowed through
        ``/me/following`` instead, and that is remembered. Every URI is checked
        before anything is sent; removing what is not saved is harmless.
        """
        await self._write_library(_library_uris(uris), _REMOVE)

    @uses(
        api.LIBRARY_SAVE,
        api.LEGACY_LIKED_SONGS_SAVE,
        api.LEGACY_ALBUMS_SAVE,
        api.LEGACY_FOLLOW_ARTISTS,
    )
    async def save_to_library(self, uris: Iterable[str]) -> None:
        """Likes tracks, saves albums and follows artists, given as URIs.

        The mirror of ``remove_from_library`` (``PUT``). A track saved this way goes
        to the top of Liked Songs with today's date: to keep its original date use
        ``save_liked_songs_with_dates``.
        """
        await self._write_library(_library_uris(uris), _SAVE)

    @uses(api.LEGACY_LIKED_SONGS_SAVE, api.LIBRARY_SAVE)
    async def save_liked_songs_with_dates(
        self, songs: Iterable[tuple[str, datetime]]
    ) -> DatedSaveResult:
        """Likes tracks again with the date they were first liked, where Spotify allows.

        ``songs`` are (track ID, URI or link; timezone-aware ``added_at``). Only the
        legacy ``PUT /me/tracks`` takes ``timestamped_ids`` (50 a call). If Spotify
        refuses it for this account, the tracks are saved through ``/me/library``
        without their dates, and the result lists them in ``dates_lost``.
        """
        dated = _dated_tracks(songs)
        operation = Operation.LIKED_SONGS_SAVE_WITH_DATES
        dates_lost: list[str] = []

        async def save(chunk: Sequence[tuple[str, datetime]]) -> None:
            _, generation = await with_fallback(
                self._generations,
                operation,
                {
                    Generation.LEGACY: partial(self._save_dated, chunk),
                    Generation.CURRENT: partial(
                        self._library_calls, _SAVE.library, [f"spotify:track:{i}" for i, _ in chunk]
                    ),
                },
                preferred=Generation.LEGACY,
            )
            if generation is Generation.CURRENT:
                dates_lost.extend(track_id for track_id, _ in chunk)

        undated_known = self._generations.get(operation) == Generation.CURRENT
        size = LIBRARY_URIS_PER_CALL if undated_known else LEGACY_LIKED_SONGS_PER_CALL
        await _in_chunks(dated, size, save)
        return DatedSaveResult(saved=[track_id for track_id, _ in dated], dates_lost=dates_lost)

    # Playlist writes -------------------------------------------------------------

    @uses(api.PLAYLIST_ITEMS_REMOVE, api.LEGACY_PLAYLIST_ITEMS_REMOVE)
    async def remove_playlist_items(
        self, playlist_id: str, uris: Iterable[str], *, snapshot_id: str | None = None
    ) -> str | None:
        """Removes every occurrence of each URI from a playlist; the new ``snapshot_id``.

        One URI removes all its copies, so each distinct URI is sent once, 100 a
        call (``DELETE /playlists/{id}/items``). ``snapshot_id``, if given, is sent
        with the first call and each later call carries the snapshot the previous
        one returned. With nothing to remove, nothing is sent and ``snapshot_id``
        comes back.
        """
        path = {"playlist_id": parse_playlist_id(playlist_id)}
        distinct = list(dict.fromkeys(_playlist_uris(uris)))
        if snapshot_id is not None and (not isinstance(snapshot_id, str) or not snapshot_id):
            raise ValueError(f"snapshot_id must be a playlist's snapshot ID, not {snapshot_id!r}")
        snapshot = snapshot_id

        async def remove(chunk: Sequence[str]) -> None:
            nonlocal snapshot
            objects = [{"uri": uri} for uri in chunk]
            version = {} if snapshot is None else {"snapshot_id": snapshot}
            data, _ = await with_fallback(
                self._generations,
                Operation.PLAYLIST_ITEMS_REMOVE,
                {
                    Generation.CURRENT: partial(
                        self._sender.request,
                        api.PLAYLIST_ITEMS_REMOVE,
                        path=path,
                        json={"items": objects, **version},
                    ),
                    Generation.LEGACY: partial(
                        self._sender.request,
                        api.LEGACY_PLAYLIST_ITEMS_REMOVE,
                        path=path,
                        json={"tracks": objects, **version},
                    ),
                },
            )
            snapshot = _snapshot_id(data, self._sender.key(api.PLAYLIST_ITEMS_REMOVE))

        await _in_chunks(distinct, PLAYLIST_ITEMS_PER_CALL, remove)
        return snapshot

    @uses(api.PLAYLIST_ITEMS_ADD, api.LEGACY_PLAYLIST_ITEMS_ADD)
    async def add_playlist_items(
        self, playlist_id: str, uris: Iterable[str], *, position: int | None = None
    ) -> str | None:
        """Inserts the URIs, in order, at ``position`` (None: at the end); the new snapshot.

        100 a call (``POST /playlists/{id}/items``), consecutive calls at
        ``position``, ``position + 100``, ... Not idempotent: every call adds
        copies, so a caller that may run twice must check the playlist first.
        """
        path = {"playlist_id": parse_playlist_id(playlist_id)}
        if position is not None and (
            not isinstance(position, int) or isinstance(position, bool) or position < 0
        ):
            raise ValueError(f"position must be a whole number from 0, not {position!r}")
        items = _playlist_uris(uris)
        snapshot: str | None = None
        next_position = position

        async def add(chunk: Sequence[str]) -> None:
            nonlocal snapshot, next_position
            body: dict[str, Any] = {"uris": list(chunk)}
            if next_position is not None:
                body["position"] = next_position
            data, _ = await with_fallback(
                self._generations,
                Operation.PLAYLIST_ITEMS_ADD,
                {
                    Generation.CURRENT: partial(
                        self._sender.request, api.PLAYLIST_ITEMS_ADD, path=path, json=body
                    ),
                    Generation.LEGACY: partial(
                        self._sender.request, api.LEGACY_PLAYLIST_ITEMS_ADD, path=path, json=body
                    ),
                },
            )
            snapshot = _snapshot_id(data, self._sender.key(api.PLAYLIST_ITEMS_ADD))
            if next_position is not None:
                next_position += len(chunk)

        await _in_chunks(items, PLAYLIST_ITEMS_PER_CALL, add)
        return snapshot

    # Internals -------------------------------------------------------------------

    async def _offset_page(
        self, endpoint: Endpoint, model: type[M], *, offset: int, limit: int
    ) -> Page[M]:
        params = {"limit": limit, "offset": offset}
        data = await self._sender.request(endpoint, params=params)
        key = self._sender.key(endpoint)
        return _offset_paged(data, offset, lambda _, raw: model.model_validate(raw), key)

    async def _write_library(
        self, items: Sequence[tuple[Kind, str]], direction: _LibraryDirection
    ) -> None:
        await _in_chunks(items, LIBRARY_URIS_PER_CALL, partial(self._library_chunk, direction))

    async def _library_chunk(
        self, direction: _LibraryDirection, chunk: Sequence[tuple[Kind, str]]
    ) -> None:
        artists = [item for item in chunk if item[0] == "artist"]
        others = [item for item in chunk if item[0] != "artist"]
        artists_need_legacy = self._generations.get(direction.artists_operation) == (
            Generation.LEGACY
        )
        if not artists or not artists_need_legacy:
            try:
                _, generation = await self._library_with_fallback(direction, chunk)
            except BadRequest:
                # Unverified whether /me/library takes artist URIs (reference section 2):
                # a 400 with artists in the chunk sends them through /me/following below.
                if not artists:
                    raise
            else:
                if artists and generation is Generation.CURRENT:
                    self._generations.set(direction.artists_operation, Generation.CURRENT)
                return
        if others:
            await self._library_with_fallback(direction, others)
        artist_uris = [_uri(item) for item in artists]
        await with_fallback(
            self._generations,
            direction.artists_operation,
            {
                Generation.LEGACY: partial(self._legacy_library_calls, direction, artists),
                Generation.CURRENT: partial(self._library_calls, direction.library, artist_uris),
            },
            preferred=Generation.LEGACY,
            refusals=(*REFUSALS, BadRequest),
        )

    async def _library_with_fallback(
        self, direction: _LibraryDirection, items: Sequence[tuple[Kind, str]]
    ) -> tuple[None, Generation]:
        return await with_fallback(
            self._generations,
            direction.operation,
            {
                Generation.CURRENT: partial(
                    self._library_calls, direction.library, [_uri(item) for item in items]
                ),
                Generation.LEGACY: partial(self._legacy_library_calls, direction, items),
            },
        )

    async def _library_calls(self, endpoint: Endpoint, uris: Sequence[str]) -> None:
        for part in chunks(uris, LIBRARY_URIS_PER_CALL):
            await self._sender.request(endpoint, params={"uris": ",".join(part)})

    async def _legacy_library_calls(
        self, direction: _LibraryDirection, items: Sequence[tuple[Kind, str]]
    ) -> None:
        by_kind: dict[Kind, list[str]] = {"track": [], "album": [], "artist": []}
        for kind, spotify_id in items:
            by_kind[kind].append(spotify_id)
        # /me/tracks takes its IDs as a JSON body (reference section 2; the yml's
        # required query parameter is the deprecated form), /me/albums and
        # /me/following in the query.
        for part in chunks(by_kind["track"], LEGACY_LIKED_SONGS_PER_CALL):
            await self._sender.request(direction.legacy_tracks, json={"ids": list(part)})
        for part in chunks(by_kind["album"], LEGACY_ALBUMS_PER_CALL):
            await self._sender.request(direction.legacy_albums, params=_ids(part))
        for part in chunks(by_kind["artist"], LEGACY_ARTISTS_PER_CALL):
            await self._sender.request(
                direction.legacy_artists, params={"type": "artist", **_ids(part)}
            )

    async def _save_dated(self, chunk: Sequence[tuple[str, datetime]]) -> None:
        body = {
            # Only ``timestamped_ids``: with it the yml's required ``ids`` is ignored anyway.
            "timestamped_ids": [
                {"id": track_id, "added_at": added_at.strftime("%Y-%m-%dT%H:%M:%SZ")}
                for track_id, added_at in chunk
            ],
        }
        await self._sender.request(api.LEGACY_LIKED_SONGS_SAVE, json=body)


# Helpers ---------------------------------------------------------------------------


def _offset(value: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"an offset must be a whole number from 0, not {value!r}")
    return value


def _uri(item: tuple[Kind, str]) -> str:
    return f"spotify:{item[0]}:{item[1]}"


def _ids(spotify_ids: Sequence[str]) -> QueryParams:
    return {"ids": ",".join(spotify_ids)}


def _as_list(values: Iterable[str], what: str) -> list[str]:
    if isinstance(values, str | bytes):
        raise TypeError(f"give a list of {what}, not the single value {values!r}")
    return list(values)


def _library_uris(uris: Iterable[str]) -> list[tuple[Kind, str]]:
    """Every URI parsed (an error names the first bad one), duplicates dropped."""
    parsed = [parse_uri(uri, LIBRARY_KINDS) for uri in _as_list(uris, "URIs")]
    return list(dict.fromkeys(parsed))


def _playlist_uris(uris: Iterable[str]) -> list[str]:
    parsed = [parse_uri(uri, PLAYLIST_ITEM_KINDS) for uri in _as_list(uris, "URIs")]
    return [_uri(item) for item in parsed]


def _dated_tracks(songs: Iterable[tuple[str, datetime]]) -> list[tuple[str, datetime]]:
    dated: dict[str, datetime] = {}
    for track, added_at in songs:
        track_id = parse_track_id(track)
        if not isinstance(added_at, datetime) or added_at.utcoffset() is None:
            raise ValueError(
                f"added_at of track {track!r} must be a timezone-aware datetime, not {added_at!r}"
            )
        moment = added_at.astimezone(UTC)
        if dated.setdefault(track_id, moment) != moment:
            raise ValueError(
                f"track {track!r} is given twice with different dates: "
                f"{dated[track_id].isoformat()} and {moment.isoformat()}"
            )
    return list(dated.items())


async def _in_chunks(
    items: Sequence[T], size: int, send: Callable[[Sequence[T]], Awaitable[None]]
) -> None:
    """Sends ``items`` chunk by chunk; an error says how many calls had succeeded."""
    parts = list(chunks(items, size))
    for index, part in enumerate(parts):
        try:
            await send(part)
        except SpotifyError as error:
            if index:
                done = sum(len(p) for p in parts[:index])
                error.add_note(
                    f"{index} of {len(parts)} chunks ({done} of {len(items)} items) "
                    "had been applied before this error"
                )
            raise


def _parse(model: type[M], raw: Any, key: str) -> M:
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise TransientError(
            f"{key} answered with a {model.__name__} this client cannot read: "
            f"{exc.error_count()} problem(s), first: {exc.errors()[0]['msg']}"
        ) from exc


def _offset_paged(data: Any, offset: int, build: Callable[[int, Any], M], key: str) -> Page[M]:
    if not isinstance(data, dict) or not isinstance(data.get("items"), list):
        raise TransientError(f"{key} answered without a paging object")
    raw_items: list[Any] = data["items"]
    try:
        items = [build(offset + index, raw) for index, raw in enumerate(raw_items)]
    except ValidationError as exc:
        raise TransientError(
            f"{key} answered with items this client cannot read: "
            f"{exc.error_count()} problem(s), first: {exc.errors()[0]['msg']}"
        ) from exc
    return Page[M](
        items=items,
        total=data.get("total"),
        cursor=offset,
        next_cursor=_next_offset(data.get("next"), offset, len(raw_items)),
    )


def _next_offset(next_url: Any, offset: int, count: int) -> int | None:
    """The offset Spotify's ``next`` link points at; None on the last page."""
    if not isinstance(next_url, str) or not next_url or count == 0:
        return None
    values = parse_qs(urlsplit(next_url).query).get("offset", [])
    try:
        following = int(values[0])
    except (IndexError, ValueError):
        following = offset + count
    # A link that does not move forward would loop for ever: step past this page.
    return following if following > offset else offset + count


def _pages(read: Callable[[int], Awaitable[Page[M]]], start: int) -> AsyncGenerator[Page[M], None]:
    async def walk() -> AsyncGenerator[Page[M], None]:
        cursor: int | None = start
        while cursor is not None:
            page = await read(cursor)
            yield page
            cursor = page.next_cursor if isinstance(page.next_cursor, int) else None

    return walk()


def _snapshot_id(data: Any, key: str) -> str:
    snapshot = data.get("snapshot_id") if isinstance(data, dict) else None
    if not isinstance(snapshot, str) or not snapshot:
        raise TransientError(f"{key} answered without a snapshot_id")
    return snapshot


REQUIRED_SCOPES: Final[frozenset[str]] = frozenset(
    scope
    for member in vars(SpotifyClient).values()
    if callable(member)
    for scope in scopes_of(member)
)
"""Every scope some client method may need: what a login should ask for."""
