"""A batch cut into chunks, one Spotify call each, and what its items came to.

The cut is made once per batch and stored on the items (``chunk``, ``lane``), so the
workflow carries chunk numbers only and every retry, worker and continued run sees
the same chunks. Library items (liked songs, saved albums, followed artists: one
``/me/library`` call may mix them) come first, in plan order, in lane -1 (liked songs
cut apart first when asked: a rollback saves them with their dates, 50 a call); then each
playlist's items, playlist by playlist in the plan order of its first item, one lane
per playlist, because the chunks of one playlist must run in order.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from sqlalchemy import bindparam, case, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from enforcer.ledger._base import text_of
from enforcer.ledger._batches import ITEM_COLUMNS, BatchStore, ItemMark
from enforcer.ledger._columns import utc_now
from enforcer.ledger._engine import reading, writing
from enforcer.ledger._errors import ChunksNotAssigned, InvalidLedgerValue, LedgerError
from enforcer.ledger._records import ActionItemRecord
from enforcer.ledger._tables import ACTION_ITEMS
from enforcer.ledger._traffic import add_calls, call_rows, read_traffic
from enforcer.models import (
    LIBRARY_LANE,
    TERMINAL_ITEM_STATUSES,
    ApiTraffic,
    ChunkLanes,
    ChunkLayout,
    EntityType,
    ItemError,
    ItemStatus,
    ItemTally,
    SkipReason,
)

_UPDATE_ROWS: Final = 10_000
"""Items per executemany: bounds the memory of one round of a 100,000-item batch."""
_NO_REASON: Final = "no reason recorded"
_TERMINAL: Final = tuple(status.value for status in TERMINAL_ITEM_STATUSES)
_ERRED: Final = (ItemStatus.FAILED.value, ItemStatus.SKIPPED.value)
# An enforced item that a rollback undid later was still carried out by its batch.
_TALLIED_AS: Final[Mapping[ItemStatus, str]] = {
    ItemStatus.COMPLETED: "completed",
    ItemStatus.ROLLED_BACK: "completed",
    ItemStatus.FAILED: "failed",
    ItemStatus.SKIPPED: "skipped",
}


def _count_of(value: object, name: str, *, least: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise InvalidLedgerValue(
            f"{name} must be a whole number of at least {least}, not {value!r}"
        )
    return value


def _in_type_order(counts: Mapping[EntityType, int]) -> dict[EntityType, int]:
    return {kind: counts[kind] for kind in EntityType if kind in counts}


def cut(
    items: Iterable[tuple[int, str, str | None, str]],
    *,
    library_chunk_size: int,
    playlist_chunk_size: int,
    liked_song_chunk_size: int | None = None,
) -> tuple[list[dict[str, int]], ChunkLayout]:
    """Each item's chunk and lane, from ``(id, entity type, playlist, status)`` in plan
    order. With ``liked_song_chunk_size``, liked songs are cut apart, first, in chunks
    of that size, and the other library items after them. Items already ended (skipped
    before any call) ride along in a chunk without counting against its size: they are
    never sent."""
    totals: Counter[EntityType] = Counter()
    liked: list[tuple[int, bool]] = []
    library: list[tuple[int, bool]] = []
    playlists: dict[str | None, list[tuple[int, bool]]] = {}
    for item_id, entity_type, playlist_id, status in items:
        kind = EntityType(entity_type)
        totals[kind] += 1
        item = (item_id, ItemStatus(status) not in TERMINAL_ITEM_STATUSES)
        if kind is EntityType.PLAYLIST_ITEM:
            playlists.setdefault(playlist_id, []).append(item)
        elif kind is EntityType.LIKED_SONG and liked_song_chunk_size is not None:
            liked.append(item)
        else:
            library.append(item)

    cutter = _Cutter()
    assignments: list[dict[str, int]] = []
    if liked_song_chunk_size is not None:
        assignments += cutter.lane(liked, liked_song_chunk_size, LIBRARY_LANE)
    assignments += cutter.lane(library, library_chunk_size, LIBRARY_LANE)
    library_chunks = cutter.chunk
    for lane, lane_items in enumerate(playlists.values()):
        assignments += cutter.lane(lane_items, playlist_chunk_size, lane)
    layout = ChunkLayout(
        chunks=cutter.chunk,
        library_chunks=library_chunks,
        playlist_chunks=cutter.chunk - library_chunks,
        totals=_in_type_order(totals),
    )
    return assignments, layout


class _Cutter:
    """The chunk numbering ``cut`` makes, a lane at a time, each lane fed in slices
    (``open``, ``add`` as often as needed, ``close``): the store cuts a batch without
    holding its items."""

    def __init__(self) -> None:
        self.chunk = 0
        self._size = 1
        self._lane = LIBRARY_LANE
        self._in_chunk = 0
        self._items = 0

    def open(self, size: int, lane: int) -> None:
        self._size, self._lane, self._in_chunk, self._items = size, lane, 0, 0

    def add(self, lane_items: Iterable[tuple[int, bool]]) -> list[dict[str, int]]:
        assignments: list[dict[str, int]] = []
        for item_id, to_send in lane_items:
            if to_send and self._in_chunk == self._size:
                self.chunk += 1
                self._in_chunk = 0
            self._in_chunk += int(to_send)
            self._items += 1
            assignments.append(
                {"item_id": item_id, "item_chunk": self.chunk, "item_lane": self._lane}
            )
        return assignments

    def close(self) -> None:
        if self._items:
            self.chunk += 1

    def lane(
        self, lane_items: Iterable[tuple[int, bool]], size: int, lane: int
    ) -> list[dict[str, int]]:
        self.open(size, lane)
        assignments = self.add(lane_items)
        self.close()
        return assignments


_SET_CHUNK: Final = (
    update(ACTION_ITEMS)
    .where(ACTION_ITEMS.c.id == bindparam("item_id"))
    .values(chunk=bindparam("item_chunk"), lane=bindparam("item_lane"))
)


async def _assign_in_slices(
    connection: AsyncConnection,
    where: Sequence[Any],
    columns: Sequence[Any],
    assign: Callable[[Sequence[Any]], list[dict[str, int]]],
) -> None:
    """Gives the items ``where`` selects, in plan order, the chunk and lane ``assign``
    makes of each slice of ``_UPDATE_ROWS`` rows (the item's ID, then ``columns``): one
    read and one executemany of a prepared UPDATE by primary key per slice (100,000
    items in about a second, where an UPDATE per chunk would be thousands of
    statements), so a batch's items are never all in memory."""
    after = -1
    while True:
        rows = (
            await connection.execute(
                select(ACTION_ITEMS.c.id, *columns)
                .where(*where, ACTION_ITEMS.c.id > after)
                .order_by(ACTION_ITEMS.c.id)
                .limit(_UPDATE_ROWS)
            )
        ).all()
        if not rows:
            return
        await connection.execute(_SET_CHUNK, assign(rows))
        after = int(rows[-1][0])
        if len(rows) < _UPDATE_ROWS:
            return


class _PlaylistLanes:
    """The numbering ``_Cutter`` gives playlists lane after lane, for items that come in
    plan order, playlists mixed: each lane's first chunk is known beforehand from how
    many of its items are to be sent (``open``, in lane order)."""

    def __init__(self, first_chunk: int, size: int) -> None:
        self._next_chunk = first_chunk
        self._size = size
        self._lanes: dict[str | None, list[int]] = {}
        """Per playlist: its lane, its chunk now, items to send in it, items seen."""

    def open(self, container_id: str | None, lane: int, to_send: int) -> None:
        self._lanes[container_id] = [lane, self._next_chunk, 0, 0]
        self._next_chunk += max(1, -(-to_send // self._size))

    def add(self, item_id: int, container_id: str | None, to_send: bool) -> dict[str, int]:
        state = self._lanes[container_id]
        lane, chunk, in_chunk, seen = state
        if seen and to_send and in_chunk == self._size:
            chunk, in_chunk = chunk + 1, 0
        state[1:] = [chunk, in_chunk + int(to_send), seen + 1]
        return {"item_id": item_id, "item_chunk": chunk, "item_lane": lane}


def _tallied(rows: Iterable[Any]) -> dict[EntityType, ItemTally]:
    """Tallies per entity type from ``(entity type, status, count)`` rows."""
    counted: dict[EntityType, Counter[str]] = {}
    for entity_type, status, count in rows:
        per_type = counted.setdefault(EntityType(entity_type), Counter())
        field = _TALLIED_AS.get(ItemStatus(status))
        if field is not None:
            per_type[field] += int(count)
    return {kind: ItemTally(**counted[kind]) for kind in EntityType if kind in counted}


@dataclass(frozen=True)
class ChunkEnd:
    """What ``finish_chunk`` read once its writes were made."""

    tallies: dict[EntityType, ItemTally]
    """The chunk's items, ended, per entity type (a rolled-back item counts completed)."""
    traffic: ApiTraffic
    """The batch's requests so far."""
    claimed: list[ActionItemRecord] | None = None
    """The next chunk's items, claimed, when ``finish_chunk`` was asked to."""
    newly_completed: dict[EntityType, int] = field(default_factory=dict)
    """The chunk's items this call moved to completed, per entity type: none when an
    earlier attempt had already ended them, so a chunk run twice counts each item once."""


class ChunkStore(BatchStore):
    async def assign_chunks(
        self,
        batch_id: str,
        *,
        library_chunk_size: int,
        playlist_chunk_size: int,
        liked_song_chunk_size: int | None = None,
    ) -> ChunkLayout:
        """Cut the batch's items into chunks, once: a batch cut before keeps its cut,
        whatever sizes are asked for now, and its layout is returned unchanged.

        Chunks are numbered from 0: ``library_chunk_size`` library items per chunk
        first, then each playlist's items, ``playlist_chunk_size`` per chunk. With
        ``liked_song_chunk_size`` the liked songs are cut apart, in chunks of that size,
        before the other library items (a rollback saves them through another endpoint).
        """
        library_size = _count_of(library_chunk_size, "library_chunk_size", least=1)
        playlist_size = _count_of(playlist_chunk_size, "playlist_chunk_size", least=1)
        liked_size = (
            None
            if liked_song_chunk_size is None
            else _count_of(liked_song_chunk_size, "liked_song_chunk_size", least=1)
        )
        async with writing(self._engine) as connection:
            await self._lock_batch(connection, batch_id)
            existing = await self._layout(connection, batch_id)
            if existing is not None:
                return existing
            cutter = _Cutter()
            others = [EntityType.SAVED_ALBUM.value, EntityType.FOLLOWED_ARTIST.value]
            library_lanes = (
                [([EntityType.LIKED_SONG.value], liked_size), (others, library_size)]
                if liked_size is not None
                else [([EntityType.LIKED_SONG.value, *others], library_size)]
            )
            for lane_kinds, size in library_lanes:
                cutter.open(size, LIBRARY_LANE)
                where = ACTION_ITEMS.c.entity_type.in_(lane_kinds)
                await self._cut_lane(connection, batch_id, where, cutter)
                cutter.close()
            await self._cut_playlists(connection, batch_id, cutter.chunk, playlist_size)
            layout = await self._layout(connection, batch_id)
        if layout is None:  # every item has a chunk now, unless the cut above is wrong
            raise LedgerError(f"batch {batch_id!r} was not cut")
        return layout

    async def _cut_lane(
        self, connection: AsyncConnection, batch_id: str, where: Any, cutter: _Cutter
    ) -> None:
        """Cuts the items ``where`` selects, in plan order."""
        await _assign_in_slices(
            connection,
            (ACTION_ITEMS.c.batch_id == batch_id, where),
            (ACTION_ITEMS.c.status,),
            lambda rows: cutter.add(
                (int(item_id), ItemStatus(status) not in TERMINAL_ITEM_STATUSES)
                for item_id, status in rows
            ),
        )

    async def _cut_playlists(
        self, connection: AsyncConnection, batch_id: str, first_chunk: int, size: int
    ) -> None:
        """Cuts every playlist's items in two reads of the batch, whatever the number of
        playlists (a read per playlist scanned the whole batch each time: 2.6 s for 300
        playlists of a 10,000-item batch): one counts each playlist's chunks, which fixes
        where its chunks start, and one goes through the items in plan order, as
        ``_cut_lane`` does, each playlist's items landing in its own chunks."""
        to_send = case((ACTION_ITEMS.c.status.in_(_TERMINAL), 0), else_=1)
        playlist = (
            ACTION_ITEMS.c.batch_id == batch_id,
            ACTION_ITEMS.c.entity_type == EntityType.PLAYLIST_ITEM.value,
        )
        # Playlists in the plan order of their first item, a lane each.
        counted = await connection.execute(
            select(ACTION_ITEMS.c.container_id, func.sum(to_send))
            .where(*playlist)
            .group_by(ACTION_ITEMS.c.container_id)
            .order_by(func.min(ACTION_ITEMS.c.id))
        )
        lanes = _PlaylistLanes(first_chunk, size)
        for lane, (container_id, sent) in enumerate(counted.all()):
            lanes.open(container_id, lane, int(sent or 0))
        await _assign_in_slices(
            connection,
            playlist,
            (ACTION_ITEMS.c.container_id, to_send),
            lambda rows: [
                lanes.add(int(item_id), container, bool(sent)) for item_id, container, sent in rows
            ],
        )

    async def chunk_layout(self, batch_id: str) -> ChunkLayout | None:
        """The batch's cut; None before ``assign_chunks`` (a batch without items has
        the empty layout: there is nothing to cut)."""
        async with reading(self._engine) as connection:
            await self._check_batch(connection, batch_id)
            return await self._layout(connection, batch_id)

    async def _layout(self, connection: AsyncConnection, batch_id: str) -> ChunkLayout | None:
        """The layout as the items' chunks and lanes say it (nothing else stores it, so
        it cannot disagree with them)."""
        rows = await connection.execute(
            select(
                ACTION_ITEMS.c.entity_type,
                func.count(),
                func.count(ACTION_ITEMS.c.chunk),
                func.max(ACTION_ITEMS.c.chunk),
                func.max(case((ACTION_ITEMS.c.lane == LIBRARY_LANE, ACTION_ITEMS.c.chunk))),
            )
            .where(ACTION_ITEMS.c.batch_id == batch_id)
            .group_by(ACTION_ITEMS.c.entity_type)
        )
        totals: dict[EntityType, int] = {}
        with_chunk = 0
        last_chunk = last_library_chunk = -1
        for entity_type, count, chunked, highest, highest_library in rows:
            totals[EntityType(entity_type)] = int(count)
            with_chunk += int(chunked)
            if highest is not None:
                last_chunk = max(last_chunk, int(highest))
            if highest_library is not None:
                last_library_chunk = max(last_library_chunk, int(highest_library))
        items = sum(totals.values())
        if items and not with_chunk:
            return None
        if with_chunk != items:
            # create_action_items refuses new items once a batch is cut: only a change
            # made outside the store can get here.
            raise LedgerError(
                f"batch {batch_id!r} is cut only in part: {with_chunk} of its {items} "
                "items have a chunk"
            )
        return ChunkLayout(
            chunks=last_chunk + 1,
            library_chunks=last_library_chunk + 1,
            playlist_chunks=last_chunk - last_library_chunk,
            totals=_in_type_order(totals),
        )

    async def _check_cut(self, connection: AsyncConnection, batch_id: str) -> None:
        """``UnknownBatch`` or ``ChunksNotAssigned`` unless the batch is cut."""
        await self._check_batch(connection, batch_id)
        uncut = await connection.scalar(
            select(ACTION_ITEMS.c.id)
            .where(ACTION_ITEMS.c.batch_id == batch_id, ACTION_ITEMS.c.chunk.is_(None))
            .limit(1)
        )
        if uncut is not None:
            raise ChunksNotAssigned(batch_id)

    async def chunk_lanes(self, batch_id: str, first: int, count: int) -> ChunkLanes:
        """The lanes of chunks ``first`` to ``first + count - 1``, fewer when the batch
        ends sooner (none when ``first`` is past its last chunk)."""
        _count_of(first, "first", least=0)
        _count_of(count, "count", least=0)
        async with reading(self._engine) as connection:
            rows = (
                await connection.execute(
                    select(ACTION_ITEMS.c.chunk, func.min(ACTION_ITEMS.c.lane))
                    .where(
                        ACTION_ITEMS.c.batch_id == batch_id,
                        ACTION_ITEMS.c.chunk >= first,
                        ACTION_ITEMS.c.chunk < first + count,
                    )
                    .group_by(ACTION_ITEMS.c.chunk)
                    .order_by(ACTION_ITEMS.c.chunk)
                )
            ).all()
            if not rows:
                await self._check_cut(connection, batch_id)
        return ChunkLanes(first=first, lanes=tuple(int(lane) for _chunk, lane in rows))

    async def chunk_items(self, batch_id: str, chunk: int) -> list[ActionItemRecord]:
        """The items of one chunk, in plan order; a chunk the batch does not have is an
        ``InvalidLedgerValue`` naming the chunks it has."""
        _count_of(chunk, "chunk", least=0)
        async with reading(self._engine) as connection:
            return await self._chunk_items(connection, batch_id, chunk)

    async def claim_chunk(self, batch_id: str, chunk: int) -> list[ActionItemRecord]:
        """The items of one chunk (as ``chunk_items``), those not yet ended moved to in
        progress (an attempt counted) in the same transaction: one round trip before an
        attempt at the chunk sends what is left of it. The records returned say what
        the items are once claimed."""
        _count_of(chunk, "chunk", least=0)
        async with writing(self._engine) as connection:
            await self._lock_batch(connection, batch_id)
            return await self._claim(connection, batch_id, chunk)

    async def _claim(
        self, connection: AsyncConnection, batch_id: str, chunk: int
    ) -> list[ActionItemRecord]:
        """``claim_chunk`` inside the caller's write transaction (the batch locked)."""
        items = await self._chunk_items(connection, batch_id, chunk)
        unfinished = tuple(i.key for i in items if i.status not in TERMINAL_ITEM_STATUSES)
        if not unfinished:
            return items
        now = utc_now()
        claim = ItemMark(batch_id, unfinished, ItemStatus.IN_PROGRESS)
        await self._mark(connection, claim, now, checked=True)
        # What the mark wrote, without reading the items again.
        return [
            item
            if item.status in TERMINAL_ITEM_STATUSES
            else item.model_copy(
                update={
                    "status": ItemStatus.IN_PROGRESS,
                    "attempts": item.attempts + 1,
                    "updated_at": now,
                    "started_at": item.started_at or now,
                    "finished_at": None,
                }
            )
            for item in items
        ]

    async def finish_chunk(
        self,
        batch_id: str,
        chunk: int,
        marks: Sequence[ItemMark] = (),
        *,
        calls: Mapping[tuple[str, str], int] | None = None,
        claim: int | None = None,
    ) -> ChunkEnd:
        """A chunk's bookkeeping in one transaction: its items' ``marks`` (each as
        ``mark_items``), ``calls`` added to the batch's traffic (as ``count_calls``),
        what the chunk's items came to and the batch's traffic, read in the same
        transaction, and, with ``claim``, that next chunk claimed (as ``claim_chunk``;
        ``ChunkEnd.claimed``): an activity of several chunks makes one round trip
        between two calls. All of it or none is written."""
        _count_of(chunk, "chunk", least=0)
        if claim is not None:
            _count_of(claim, "chunk", least=0)
        call_counts = call_rows(batch_id, calls or {})
        async with writing(self._engine) as connection:
            await self._lock_batch(connection, batch_id)
            newly_completed: Counter[EntityType] = Counter()
            for mark in marks:
                # Another batch's items (a rollback marks the enforcement's) are checked
                # as ``mark_items`` checks them; this batch's, below.
                moved = await self._mark(connection, mark, checked=mark.batch_id == batch_id)
                if mark.batch_id == batch_id and mark.status == ItemStatus.COMPLETED:
                    newly_completed.update(moved)
            await add_calls(connection, call_counts)
            # The chunk's rows, counted here: a GROUP BY makes SQLite scan the whole
            # batch through another index (100,000 rows a chunk, the write lock held).
            items = (
                await connection.execute(
                    select(
                        ACTION_ITEMS.c.idempotency_key,
                        ACTION_ITEMS.c.entity_type,
                        ACTION_ITEMS.c.status,
                    ).where(ACTION_ITEMS.c.batch_id == batch_id, ACTION_ITEMS.c.chunk == chunk)
                )
            ).all()
            # The marks' keys are checked here, once written (a bad one raises, and the
            # transaction writes nothing): they are the chunk's own but for a rare mark.
            in_chunk = {key for key, _, _ in items}
            outside = [
                key
                for mark in marks
                if mark.batch_id == batch_id
                for key in mark.keys
                if key not in in_chunk
            ]
            if outside:
                await self._check_keys(connection, batch_id, list(dict.fromkeys(outside)))
            counted = Counter((entity_type, status) for _, entity_type, status in items)
            tallies = _tallied((*key, count) for key, count in counted.items())
            traffic = await read_traffic(connection, batch_id)
            claimed = None if claim is None else await self._claim(connection, batch_id, claim)
        return ChunkEnd(
            tallies=tallies,
            traffic=traffic,
            claimed=claimed,
            newly_completed=_in_type_order(newly_completed),
        )

    async def _chunk_items(
        self, connection: AsyncConnection, batch_id: str, chunk: int
    ) -> list[ActionItemRecord]:
        rows = (
            await connection.execute(
                select(*ITEM_COLUMNS)
                .where(ACTION_ITEMS.c.batch_id == batch_id, ACTION_ITEMS.c.chunk == chunk)
                .order_by(ACTION_ITEMS.c.id)
            )
        ).all()
        if not rows:
            await self._check_cut(connection, batch_id)
            layout = await self._layout(connection, batch_id)
            assert layout is not None
            has = f"0 to {layout.chunks - 1}" if layout.chunks else "none"
            raise InvalidLedgerValue(
                f"batch {batch_id!r} has no chunk {chunk}: its chunks are {has}"
            )
        return [ActionItemRecord.model_validate(row._asdict()) for row in rows]

    async def skip_unfinished(self, batch_id: str, reason: str) -> int:
        """End every item not yet in a final status as skipped, for ``reason``; returns
        how many. A chunk that finishes later still records what it really did."""
        text_of(reason, "the reason for skipping")
        now = utc_now()
        async with writing(self._engine) as connection:
            await self._lock_batch(connection, batch_id)
            result = await connection.execute(
                update(ACTION_ITEMS)
                .where(
                    ACTION_ITEMS.c.batch_id == batch_id,
                    ACTION_ITEMS.c.status.not_in(_TERMINAL),
                )
                .values(
                    status=ItemStatus.SKIPPED.value,
                    error=reason,
                    updated_at=now,
                    finished_at=now,
                )
            )
        return int(result.rowcount)

    async def tallies(self, batch_id: str) -> dict[EntityType, ItemTally]:
        """Completed, failed and skipped items per entity type present in the batch
        (a rolled-back item counts as completed: its batch did carry it out)."""
        async with reading(self._engine) as connection:
            await self._check_batch(connection, batch_id)
            rows = await connection.execute(
                select(ACTION_ITEMS.c.entity_type, ACTION_ITEMS.c.status, func.count())
                .where(ACTION_ITEMS.c.batch_id == batch_id)
                .group_by(ACTION_ITEMS.c.entity_type, ACTION_ITEMS.c.status)
            )
            return _tallied(rows)

    async def item_errors(
        self, batch_id: str, *, limit: int, status: ItemStatus | None = None
    ) -> tuple[list[ItemError], int]:
        """The first ``limit`` failed or skipped items in plan order (only those in
        ``status`` when given: failed, or skipped), each with its error and attempts, and
        how many such items the batch has in all."""
        _count_of(limit, "limit", least=0)
        if status is not None and status.value not in _ERRED:
            raise InvalidLedgerValue(f"items in {status.value!r} have no error to list")
        wanted = _ERRED if status is None else (status.value,)
        erred = (ACTION_ITEMS.c.batch_id == batch_id, ACTION_ITEMS.c.status.in_(wanted))
        async with reading(self._engine) as connection:
            await self._check_batch(connection, batch_id)
            total = await connection.scalar(select(func.count()).where(*erred))
            rows = await connection.execute(
                select(
                    ACTION_ITEMS.c.idempotency_key,
                    ACTION_ITEMS.c.name,
                    ACTION_ITEMS.c.error,
                    ACTION_ITEMS.c.attempts,
                )
                .where(*erred)
                .order_by(ACTION_ITEMS.c.id)
                .limit(limit)
            )
            errors = [
                ItemError(key=key, name=name, error=error or _NO_REASON, attempts=attempts)
                for key, name, error, attempts in rows
            ]
        return errors, int(total or 0)

    async def skip_reasons(self, batch_id: str, *, limit: int) -> tuple[list[SkipReason], int]:
        """Why the batch's skipped items were skipped: the first ``limit`` reasons, the
        most items first, each with how many; and how many reasons there are in all."""
        _count_of(limit, "limit", least=0)
        skipped = (
            ACTION_ITEMS.c.batch_id == batch_id,
            ACTION_ITEMS.c.status == ItemStatus.SKIPPED.value,
        )
        async with reading(self._engine) as connection:
            await self._check_batch(connection, batch_id)
            rows = await connection.execute(
                select(ACTION_ITEMS.c.error, func.count())
                .where(*skipped)
                .group_by(ACTION_ITEMS.c.error)
            )
            reasons = sorted(
                (SkipReason(reason=error or _NO_REASON, items=int(n)) for error, n in rows),
                key=lambda skip: (-skip.items, skip.reason),
            )
        return reasons[:limit], len(reasons)
