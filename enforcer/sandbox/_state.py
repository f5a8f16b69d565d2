"""The library the sandbox serves: an immutable catalog and mutable per-user state.

Every structure is indexed so that one request costs work proportional to the page or
batch it touches, never to the size of the library.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from dataclasses import dataclass, field

from ._identifiers import next_snapshot_id


@dataclass(frozen=True, slots=True)
class Artist:
    id: str
    name: str


@dataclass(slots=True)
class Album:
    id: str
    name: str
    artist_ids: tuple[str, ...]
    release_date: str
    album_type: str = "album"
    track_ids: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Track:
    id: str
    name: str
    artist_ids: tuple[str, ...]
    album_id: str
    duration_ms: int
    available: bool = True
    explicit: bool = False


@dataclass(frozen=True, slots=True)
class LocalFile:
    name: str
    artist: str
    album: str
    duration_ms: int


@dataclass(frozen=True, slots=True)
class Catalog:
    artists: dict[str, Artist]
    albums: dict[str, Album]
    tracks: dict[str, Track]


class Timeline:
    """Keys ordered newest first by their ``added_at``; the latest insert wins a tie.

    A sorted list of ``(-added_at, -sequence, key)`` plus a dict from key to its sort
    entry: insert, move and remove are a bisection and a memmove, a page is a slice.
    """

    __slots__ = ("_entries", "_index", "_sequence")

    def __init__(self) -> None:
        self._entries: list[tuple[int, int, str]] = []
        self._index: dict[str, tuple[int, int, str]] = {}
        self._sequence = 0

    @classmethod
    def from_newest_first(cls, pairs: list[tuple[str, int]]) -> Timeline:
        """Build from ``(key, added_at)`` listed newest first; ties keep the list order."""
        timeline = cls()
        count = len(pairs)
        for position, (key, added_at) in enumerate(pairs):
            entry = (-added_at, -(count - position), key)
            timeline._index[key] = entry
        timeline._entries = sorted(timeline._index.values())
        timeline._sequence = count
        return timeline

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._index

    def added_at(self, key: str) -> int:
        return -self._index[key][0]

    def put(self, key: str, added_at: int) -> None:
        """Insert ``key`` at ``added_at``, moving it if it is already there."""
        self.remove(key)
        self._sequence += 1
        entry = (-added_at, -self._sequence, key)
        self._index[key] = entry
        bisect.insort(self._entries, entry)

    def remove(self, key: str) -> bool:
        entry = self._index.pop(key, None)
        if entry is None:
            return False
        del self._entries[bisect.bisect_left(self._entries, entry)]
        return True

    def page(self, offset: int, limit: int) -> list[tuple[str, int]]:
        return [(key, -neg_at) for neg_at, _, key in self._entries[offset : offset + limit]]

    def __iter__(self) -> Iterator[tuple[str, int]]:
        return ((key, -neg_at) for neg_at, _, key in self._entries)


class SortedIds:
    """A set of IDs kept in ID order, so that an ``after`` cursor survives removals."""

    __slots__ = ("_ids", "_members")

    def __init__(self, ids: list[str] | None = None) -> None:
        self._members = set(ids or [])
        self._ids = sorted(self._members)

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, key: object) -> bool:
        return key in self._members

    def __iter__(self) -> Iterator[str]:
        return iter(self._ids)

    def add(self, key: str) -> None:
        if key not in self._members:
            self._members.add(key)
            bisect.insort(self._ids, key)

    def remove(self, key: str) -> None:
        if key in self._members:
            self._members.remove(key)
            del self._ids[bisect.bisect_left(self._ids, key)]

    def page_after(self, after: str | None, limit: int) -> list[str]:
        start = 0 if after is None else bisect.bisect_right(self._ids, after)
        return self._ids[start : start + limit]

    def has_more_after(self, after: str) -> bool:
        return bisect.bisect_right(self._ids, after) < len(self._ids)


@dataclass(slots=True)
class PlaylistItem:
    uri: str
    track_id: str | None
    local: LocalFile | None
    added_at: int | None
    added_by: str | None


@dataclass(slots=True)
class Playlist:
    id: str
    name: str
    owner: str
    collaborative: bool
    public: bool
    description: str
    collaborators: list[str]
    items: list[PlaylistItem]
    snapshot_id: str
    snapshots: set[str] = field(default_factory=set)
    version: int = 0

    def __post_init__(self) -> None:
        self.snapshots.add(self.snapshot_id)

    def changed(self) -> str:
        self.version += 1
        self.snapshot_id = next_snapshot_id(self.id, self.snapshot_id, self.version)
        self.snapshots.add(self.snapshot_id)
        return self.snapshot_id

    def can_read_items(self, user_id: str) -> bool:
        return user_id == self.owner or (self.collaborative and user_id in self.collaborators)

    def can_write(self, user_id: str, collaborators_may_write: bool) -> bool:
        if user_id == self.owner:
            return True
        return collaborators_may_write and self.collaborative and user_id in self.collaborators


@dataclass(slots=True)
class User:
    id: str
    display_name: str
    liked_songs: Timeline
    saved_albums: Timeline
    followed_artists: SortedIds
    playlists: list[str]
    # Episodes, shows, audiobooks and users saved through /me/library, by URI.
    other_saved: Timeline


@dataclass(slots=True)
class LibraryState:
    catalog: Catalog
    users: dict[str, User]
    playlists: dict[str, Playlist]
