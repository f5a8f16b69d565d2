"""The restoration planner: which Spotify calls put back what an enforcement removed.

Pure: no I/O, no clock, no randomness, no Temporal. The rollback activities read the
library as it is now, ask this module for the calls, and send them; the same inputs
always give the same calls.

Playlists
---------
Enforcement removed, per playlist, every occurrence of each blocked URI (one removal
by URI takes them all), and the plan recorded each occurrence's position in the
playlist as it was then (the *original*). Restoring adds items back with
``POST /playlists/{id}/items {"uris": [...], "position": n}``: at most 100 URIs a call,
inserted at ``n``, shifting what follows.

``plan_playlist_restore`` puts the restored occurrences back in ascending order of
original position. Each goes **right after its anchor**: the nearest item preceding it
in the original that is still in the playlist, or at the start when there is none.

- Kept items (those enforcement did not remove) are found in the playlist as it is now
  by URI and occurrence count: the original's third kept copy of ``X`` is the third
  ``X`` now. A kept item the person has since removed (now fewer copies of its URI
  than its count) is no anchor: the search goes on to the item before it.
- A restored occurrence is an anchor for the ones after it: occurrences whose anchors
  are the same item therefore form one run, inserted by one call (split at 100) in
  original order. Removed occurrences that are not restored are skipped over: they are
  not in the playlist and will not be.
- Runs go in the order of their anchors in the playlist now (a run after a kept item
  the person moved follows it), so each call's ``position`` counts the runs sent
  before it.

When the playlist is exactly as enforcement left it, this puts it back exactly: order
and duplicates when everything is restored, and the original order minus the
occurrences not restored otherwise, with one call per maximal run of restored items
(split at 100). After the person's own edits it keeps each restored item next to
what preceded it: an item added at the start, or a reorder, moves nothing
relative to its neighbours. Copies of one URI are told apart by count alone: when the
person adds a copy of a kept URI before the original copies, the n-th copy now is an
earlier one than before, and a run anchored on the n-th copy goes after that one.

Telling the kept items apart needs the playlist as enforcement left it
(``left_by_enforcement``): the plan records only the removed occurrences. Without it,
the playlist now is taken to be that playlist, which is exact when the person did not
change it; after edits, runs then keep their count of preceding items instead of their
neighbours (and go to the end when the playlist has become shorter).

Spotify sets ``added_at`` and ``added_by`` of an added item itself: the restored
entries carry the time of restoring and the restoring user. Each call keeps the
occurrences it restores, with their original values, for the report and the ledger.

Adding is not idempotent (every POST adds copies), so each call says what the playlist
must be after it (``expected_after``) and the plan says what it must be before the
first (``starting_from``): a retried call that finds the playlist already as expected
after it was applied before the worker could record it, and must not be sent again.

Liked songs, albums, artists
----------------------------
The legacy ``PUT /me/tracks`` with ``timestamped_ids`` (50 a call) restores a liked
song with its original ``added_at``, hence its place. ``PUT /me/library`` (40 URIs a
call, tracks, albums and artists mixed) saves "now", at the top: songs and albums then
go oldest first, so that, as far as Spotify keeps the order of the saves, they keep
their order among themselves; their dates and their place among what was saved since
are lost. The liked-songs plan names the songs whose dates are lost; albums always
lose theirs.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence, Set
from datetime import datetime
from enum import StrEnum
from itertools import pairwise
from typing import NamedTuple

from enforcer.models import DomainModel, PlannedAction, PlaylistItemBefore
from enforcer.spotify.ids import to_uri
from enforcer.spotify.limits import (
    LEGACY_LIKED_SONGS_PER_CALL,
    LIBRARY_URIS_PER_CALL,
    PLAYLIST_ITEMS_PER_CALL,
    chunks,
)

# Playlists ------------------------------------------------------------------------


class RemovedOccurrence(DomainModel):
    """One place a removed URI held in the original playlist."""

    uri: str
    position: int
    """In the original playlist (the plan's snapshot), counted from 0."""
    key: str
    """The ``PlannedAction.key`` of its item: all occurrences of a URI share it."""
    added_at: datetime | None = None
    added_by: str | None = None


def removed_occurrences(action: PlannedAction) -> tuple[RemovedOccurrence, ...]:
    """The occurrences a playlist item's removal took, as ``plan_playlist_restore``
    wants them."""
    if not isinstance(action.before, PlaylistItemBefore):
        raise ValueError(f"{action.key!r} is not a playlist item")
    return tuple(
        RemovedOccurrence(
            uri=action.uri,
            position=occurrence.position,
            key=action.key,
            added_at=occurrence.added_at,
            added_by=occurrence.added_by,
        )
        for occurrence in action.before.occurrences
    )


class PlaylistInsertCall(DomainModel):
    """One ``POST /playlists/{id}/items``, and the playlist it must leave."""

    position: int
    occurrences: tuple[RemovedOccurrence, ...]
    """What it restores, in the order sent: ``uris`` are theirs."""
    expected_after: tuple[str | None, ...]
    """The playlist's URIs once Spotify applied it (None: unavailable or local)."""

    @property
    def uris(self) -> tuple[str, ...]:
        return tuple(occurrence.uri for occurrence in self.occurrences)


class PlaylistRestorePlan(DomainModel):
    starting_from: tuple[str | None, ...]
    """The playlist the first call expects (the ``current`` it was planned from)."""
    calls: tuple[PlaylistInsertCall, ...]
    """In the order they must be sent."""

    def expected_before(self, call_index: int) -> tuple[str | None, ...]:
        """What the playlist must be for call ``call_index`` to be sent."""
        if call_index == 0:
            return self.starting_from
        return self.calls[call_index - 1].expected_after


def plan_playlist_restore(
    original_removed: Sequence[RemovedOccurrence],
    restore: Set[str],
    current: Sequence[str | None],
    *,
    left_by_enforcement: Sequence[str | None] | None = None,
) -> PlaylistRestorePlan:
    """The insert calls that put back the occurrences of the items keyed in ``restore``.

    ``original_removed`` is every occurrence enforcement removed from one playlist,
    restored or not: the ones left out still count when telling kept items' places.
    ``current`` is the playlist's URIs now, in order. ``left_by_enforcement`` is the
    playlist right after enforcement, when known; the module docstring has the rule.
    """
    by_position = sorted(original_removed, key=lambda occurrence: occurrence.position)
    _check(by_position, restore, left_by_enforcement)
    anchor_of_kept = _anchor_finder(current, left_by_enforcement)

    # Runs by the index now of their anchor (-1: the start). Whatever lay between two
    # restored occurrences that share an anchor (occurrences not restored, kept items
    # the person removed) is not in the playlist: they go back side by side.
    runs: defaultdict[int, list[RemovedOccurrence]] = defaultdict(list)
    for removed_before, occurrence in enumerate(by_position):
        if occurrence.key in restore:
            kept_before = occurrence.position - removed_before
            runs[anchor_of_kept(kept_before - 1)].append(occurrence)

    playlist = list(current)
    calls: list[PlaylistInsertCall] = []
    inserted = 0
    for anchor in sorted(runs):
        run = runs[anchor]
        position = anchor + 1 + inserted
        for chunk in chunks(run, PLAYLIST_ITEMS_PER_CALL):
            playlist[position:position] = [occurrence.uri for occurrence in chunk]
            calls.append(
                PlaylistInsertCall(
                    position=position, occurrences=tuple(chunk), expected_after=tuple(playlist)
                )
            )
            position += len(chunk)
        inserted += len(run)
    return PlaylistRestorePlan(starting_from=tuple(current), calls=tuple(calls))


def left_by_removal(
    original: Sequence[str | None], removed: Sequence[RemovedOccurrence]
) -> tuple[str | None, ...]:
    """The playlist ``original`` once the ``removed`` occurrences are taken out: the
    items enforcement kept, in order (``left_by_enforcement``). Refuses (``ValueError``)
    a removed occurrence that is not in ``original`` at its position."""
    at = {occurrence.position: occurrence.uri for occurrence in removed}
    wrong = sorted(
        position
        for position, uri in at.items()
        if not 0 <= position < len(original) or original[position] != uri
    )
    if wrong:
        raise ValueError(
            f"{len(wrong)} removed occurrence(s) are not in the original playlist of "
            f"{len(original)} items at their positions (first: {wrong[0]})"
        )
    return tuple(uri for position, uri in enumerate(original) if position not in at)


def original_playlist(
    left: Sequence[str | None], removed: Sequence[RemovedOccurrence]
) -> tuple[str | None, ...]:
    """The inverse of ``left_by_removal``: ``left`` with the ``removed`` occurrences back
    at their original positions. Refuses positions that do not fit (``ValueError``)."""
    playlist = list(left)
    for occurrence in sorted(removed, key=lambda o: o.position):
        if occurrence.position > len(playlist):
            raise ValueError(
                f"removed position {occurrence.position} is beyond a playlist of "
                f"{len(playlist)} items"
            )
        playlist.insert(occurrence.position, occurrence.uri)
    return tuple(playlist)


def _check(
    by_position: Sequence[RemovedOccurrence],
    restore: Set[str],
    left_by_enforcement: Sequence[str | None] | None,
) -> None:
    positions = [occurrence.position for occurrence in by_position]
    if positions and positions[0] < 0:
        raise ValueError(f"a removed position is negative: {positions[0]}")
    repeated = sorted({p for p, q in pairwise(positions) if p == q})
    if repeated:
        raise ValueError(f"two removed occurrences share a position: {repeated}")
    unknown = restore - {occurrence.key for occurrence in by_position}
    if unknown:
        raise ValueError(f"keys to restore that removed nothing here: {sorted(unknown)}")
    if left_by_enforcement is not None and positions:
        original_length = len(left_by_enforcement) + len(positions)
        if positions[-1] >= original_length:
            raise ValueError(
                f"removed position {positions[-1]} is beyond the original playlist, which "
                f"had {original_length} items ({len(left_by_enforcement)} kept)"
            )


def _anchor_finder(
    current: Sequence[str | None], left_by_enforcement: Sequence[str | None] | None
) -> Callable[[int], int]:
    """For the original's kept items, numbered from 0 (-1: none precedes): the index
    now of the item, or of the nearest kept item before it still in the playlist; -1
    when there is none, for the start."""
    if left_by_enforcement is None:
        # Unknown kept items: the playlist now stands for them, slot for slot.
        last = len(current) - 1
        return lambda kept_index: min(kept_index, last)
    copies_now: defaultdict[str | None, list[int]] = defaultdict(list)
    for index, uri in enumerate(current):
        copies_now[uri].append(index)
    copies_seen: defaultdict[str | None, int] = defaultdict(int)
    nearest_present: list[int] = []
    for uri in left_by_enforcement:
        copy = copies_seen[uri]
        copies_seen[uri] += 1
        if copy < len(copies_now[uri]):
            nearest_present.append(copies_now[uri][copy])
        else:
            nearest_present.append(nearest_present[-1] if nearest_present else -1)
    return lambda kept_index: nearest_present[kept_index] if kept_index >= 0 else -1


# Liked songs ------------------------------------------------------------------------


class LikedSong(NamedTuple):
    track_id: str
    added_at: datetime


class LikedSongsEndpoint(StrEnum):
    TIMESTAMPED_IDS = "timestamped_ids"
    """Legacy ``PUT /me/tracks`` with ``timestamped_ids``: the original dates."""
    LIBRARY = "library"
    """``PUT /me/library?uris=``: saved now, at the top of Liked Songs."""


class LikedSongsRestorePlan(DomainModel):
    endpoint: LikedSongsEndpoint
    calls: tuple[tuple[LikedSong, ...], ...]
    """Oldest first, in the order to send: 50 a call with dates, 40 without."""
    dates_lost: tuple[LikedSong, ...]
    """Songs that come back dated at the time of restoring, above everything liked since
    they were removed (with their original dates, for the report): all of them through
    ``/me/library``, none through ``timestamped_ids``."""

    @property
    def order_kept(self) -> bool:
        """Whether the songs surely get back their places in Liked Songs."""
        return not self.dates_lost


def plan_liked_songs_restore(
    songs: Sequence[tuple[str, datetime]], *, dates_available: bool
) -> LikedSongsRestorePlan:
    """The save calls for ``songs`` (track ID, original ``added_at``).

    ``dates_available``: the app may use the legacy ``timestamped_ids`` endpoint.
    """
    # Each /me/library save lands on top of the ones before it: oldest first keeps
    # their relative order. With dates the order of calls does not matter; the same
    # order keeps the two plans alike.
    oldest_first = sorted((LikedSong(*song) for song in songs), key=lambda song: song.added_at)
    if dates_available:
        return LikedSongsRestorePlan(
            endpoint=LikedSongsEndpoint.TIMESTAMPED_IDS,
            calls=tuple(
                tuple(chunk) for chunk in chunks(oldest_first, LEGACY_LIKED_SONGS_PER_CALL)
            ),
            dates_lost=(),
        )
    return LikedSongsRestorePlan(
        endpoint=LikedSongsEndpoint.LIBRARY,
        calls=tuple(tuple(chunk) for chunk in chunks(oldest_first, LIBRARY_URIS_PER_CALL)),
        dates_lost=tuple(oldest_first),
    )


def liked_song_uris(call: Iterable[LikedSong]) -> tuple[str, ...]:
    """A ``/me/library`` call's ``uris``."""
    return tuple(to_uri("track", song.track_id) for song in call)


# Saved albums and followed artists -------------------------------------------------------


class LibraryRestorePlan(DomainModel):
    calls: tuple[tuple[str, ...], ...]
    """``PUT /me/library?uris=`` calls, in the order to send: albums oldest first,
    then artists."""


def plan_library_restore(
    albums: Sequence[tuple[str, datetime]], artists: Sequence[str]
) -> LibraryRestorePlan:
    """The save calls for ``albums`` (album ID, original ``added_at``) and ``artists``
    (IDs). ``/me/library`` keeps no date: albums come back dated now, oldest first."""
    oldest_first = sorted(albums, key=lambda album: album[1])
    uris = [to_uri("album", album_id) for album_id, _ in oldest_first]
    uris += [to_uri("artist", artist_id) for artist_id in artists]
    return LibraryRestorePlan(
        calls=tuple(tuple(chunk) for chunk in chunks(uris, LIBRARY_URIS_PER_CALL))
    )


# The least a rollback can cost ------------------------------------------------------------


def playlist_insert_lower_bound(positions: Iterable[int]) -> int:
    """The fewest insert calls that put back occurrences removed from these original
    positions of one playlist: one per maximal run of consecutive positions (an insert
    puts items side by side), each run split at 100 URIs."""
    ordered = sorted(set(positions))
    calls = 0
    run = 0
    for index, position in enumerate(ordered):
        if index and position == ordered[index - 1] + 1:
            run += 1
        else:
            calls += -(-run // PLAYLIST_ITEMS_PER_CALL)
            run = 1
    return calls + -(-run // PLAYLIST_ITEMS_PER_CALL)


def rollback_lower_bound(
    *, dated_liked_songs: int, other_library_items: int, playlists: Iterable[Iterable[int]]
) -> int:
    """The fewest calls any rollback can make: liked songs saved with their dates 50 a
    call, whatever else the library gets back (albums, artists, liked songs without
    dates) 40 a call, and ``playlist_insert_lower_bound`` of each playlist's removed
    positions. No read is counted: a lower bound, not a plan."""
    return (
        -(-dated_liked_songs // LEGACY_LIKED_SONGS_PER_CALL)
        + -(-other_library_items // LIBRARY_URIS_PER_CALL)
        + sum(playlist_insert_lower_bound(positions) for positions in playlists)
    )
