"""Undoing a batch: the rollback batch in the ledger, and the calls that put things back.

Every activity here may run twice. The rollback batch and its items are created
idempotently. Saving to the library is idempotent on Spotify's side; adding to a
playlist is not (every POST adds copies), so a playlist's restoration stores the
playlist it planned from before its first call, reads the playlist before every call
and compares it with what the plan expects: a call already applied (the worker died
after Spotify accepted it, before the ledger heard of it) is not sent again, and a
playlist someone else changed meanwhile is planned again from what it has become.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from pydantic import BaseModel, ConfigDict
from temporalio import activity

from activities._base import KeepAlive, SpotifyActivities, kept_alive, refusal_error, tally_items
from enforcer.ledger import ActionItemRecord, BatchRecord, Ledger, LedgerError
from enforcer.models import (
    TERMINAL_BATCH_STATUSES,
    TERMINAL_ITEM_STATUSES,
    Action,
    BatchKind,
    BatchStatus,
    EntityType,
    FinishRollback,
    ItemStatus,
    LikedSongBefore,
    NotRestoredExactly,
    PlannedAction,
    RestoreChunkFailure,
    RestoreChunkRequest,
    RestoreOutcome,
    RollbackLayout,
    RollbackSummary,
    SavedAlbumBefore,
    StartRollback,
)
from enforcer.restore import (
    LikedSongsEndpoint,
    PlaylistRestorePlan,
    RemovedOccurrence,
    liked_song_uris,
    plan_library_restore,
    plan_liked_songs_restore,
    plan_playlist_restore,
    removed_occurrences,
)
from enforcer.spotify import Generation, Operation, SpotifyClient
from enforcer.spotify.errors import BadRequest, EndpointGone, Forbidden, NotFound, SpotifyHTTPError
from enforcer.spotify.limits import LIBRARY_URIS_PER_CALL

ITEMS_PER_READ: Final = 5_000
LISTED_IN_SUMMARY: Final = 20
INEXACT_IN_SUMMARY: Final = 500
"""Items back without their dates named in the summary (about 100 kB at most); the
ledger marks every one (``after_state["dates_lost"]``)."""
WHOLE_PLAYLIST: Final = 2**31 - 1
"""The rollback's chunk size for playlists: one activity restores a whole playlist,
since where an item goes back depends on every other item of it."""
DATES_LOST: Final = "dates_lost"
_RESTORE_PROGRESS: Final = "restore"
_REFUSALS = (BadRequest, Forbidden, NotFound, EndpointGone)

Uris = tuple[str | None, ...]


class _PlaylistProgress(BaseModel):
    """Stored in the ledger before a playlist's first insert call (and again after a
    re-plan): the playlist the plan starts from, and the original positions restored
    before it. With them a retry makes the very same plan, and finds where it stands."""

    model_config = ConfigDict(frozen=True)

    starting_from: Uris
    restored_positions: tuple[int, ...] = ()


class RollbackActivities(SpotifyActivities):
    """The activities of ``RollbackWorkflow``, sharing one ledger and the settings."""

    def ledger_activities(self) -> Sequence[Callable[..., Any]]:
        """The activities that only touch the ledger: the main task queue."""
        return [self.start_rollback, self.give_up_chunk, self.finish_rollback]

    def spotify_activities(self) -> Sequence[Callable[..., Any]]:
        """The activities that write to Spotify: the rate-capped Spotify task queue."""
        return [self.restore_playlist, self.restore_library_chunk]

    # The batch -------------------------------------------------------------------------

    @activity.defn(name="start_rollback")
    async def start_rollback(self, start: StartRollback) -> RollbackLayout:
        """Checks the request, creates the rollback batch with the inverse of every
        completed item chosen, and cuts it: a chunk per playlist, 40 library items a chunk.
        Refuses (changing nothing) an unknown batch, another account's, a rollback, a
        batch still running, and chosen keys the batch does not have."""
        async with kept_alive():
            return await self._start_rollback(start)

    async def _start_rollback(self, start: StartRollback) -> RollbackLayout:
        request = start.request
        original = await self._batch_to_undo(request.account_id, request.batch_id)
        chosen, nothing_to_undo = await self._completed_chosen(request.batch_id, request.item_keys)
        batch_id = await self._rollback_batch(start, original.plan_id)
        cut_before = await self._ledger.chunk_layout(batch_id)
        if cut_before is None or not cut_before.chunks:
            # A retry after the cut adds nothing: the items are fixed once cut.
            for offset in range(0, len(chosen), ITEMS_PER_READ):
                part = chosen[offset : offset + ITEMS_PER_READ]
                await self._ledger.create_action_items(batch_id, [_inverse(i) for i in part])
        layout = await self._ledger.assign_chunks(
            batch_id, library_chunk_size=LIBRARY_URIS_PER_CALL, playlist_chunk_size=WHOLE_PLAYLIST
        )
        return RollbackLayout(batch_id=batch_id, layout=layout, nothing_to_undo=nothing_to_undo)

    async def _batch_to_undo(self, account_id: str, batch_id: str) -> BatchRecord:
        try:
            batch = await self._ledger.batch(batch_id)
        except LedgerError as error:
            raise refusal_error(f"nothing to roll back: {error}") from error
        if batch.account_id != account_id:
            raise refusal_error(
                f"batch {batch_id!r} belongs to {batch.account_id!r}, not to {account_id!r}"
            )
        if batch.kind is BatchKind.ROLLBACK:
            raise refusal_error(
                f"batch {batch_id!r} is a rollback (of {batch.rollback_of!r}): a rollback "
                "cannot be rolled back; enforce the plan again instead"
            )
        if batch.status not in TERMINAL_BATCH_STATUSES:
            raise refusal_error(
                f"batch {batch_id!r} is still {batch.status.value}: cancel it, or wait "
                "for it to finish, before rolling it back"
            )
        return batch

    async def _completed_chosen(
        self, batch_id: str, item_keys: tuple[str, ...] | None
    ) -> tuple[list[ActionItemRecord], int]:
        """The batch's completed items chosen, in the order to restore them, and how
        many chosen items have nothing to undo."""
        if item_keys is not None and not item_keys:
            raise refusal_error(f"no items of batch {batch_id!r} chosen to roll back")
        items: list[ActionItemRecord] = []
        offset = 0
        while page := await self._ledger.action_items(
            batch_id, offset=offset, limit=ITEMS_PER_READ
        ):
            items.extend(page)
            offset += len(page)
        if item_keys is not None:
            unknown = sorted(set(item_keys) - {item.key for item in items})
            if unknown:
                raise refusal_error(f"not items of batch {batch_id!r}: {', '.join(unknown)}")
        wanted = set(item_keys) if item_keys is not None else None
        completed = [item for item in items if item.status is ItemStatus.COMPLETED]
        chosen = [item for item in completed if wanted is None or item.key in wanted]
        selected = len(wanted) if wanted is not None else len(items)
        return _restoring_order(chosen), selected - len(chosen)

    async def _rollback_batch(self, start: StartRollback, plan_id: str) -> str:
        """The rollback batch of this run: the workflow ID, then ``#2``, ``#3``... for
        later runs under the same ID, so that each keeps its own record."""
        attempt = 1
        while True:
            batch_id = start.rollback_id if attempt == 1 else f"{start.rollback_id}#{attempt}"
            try:
                existing = await self._ledger.batch(batch_id)
            except LedgerError:
                await self._ledger.create_batch(
                    batch_id,
                    account_id=start.request.account_id,
                    plan_id=plan_id,
                    kind=BatchKind.ROLLBACK,
                    rollback_of=start.request.batch_id,
                    options={
                        "run_id": start.run_id,
                        "item_keys": start.request.item_keys,
                        "max_in_flight": start.request.max_in_flight,
                    },
                )
                return batch_id
            if existing.options.get("run_id") == start.run_id:
                return batch_id
            attempt += 1

    @activity.defn(name="give_up_restore_chunk")
    async def give_up_chunk(self, failure: RestoreChunkFailure) -> RestoreOutcome:
        """A compensation that failed for good: its unfinished items end failed, with why;
        the originals stay completed (a later rollback may try them again)."""
        request = failure.chunk
        items = await self._ledger.chunk_items(request.batch_id, request.chunk)
        unfinished = [item.key for item in items if item.status not in TERMINAL_ITEM_STATUSES]
        await self._ledger.mark_items(
            request.batch_id, unfinished, ItemStatus.FAILED, error=failure.error
        )
        finished = await self._ledger.chunk_items(request.batch_id, request.chunk)
        return RestoreOutcome(
            chunk=request.chunk,
            tallies=tally_items(finished),
            traffic=await self._ledger.traffic(request.batch_id),
        )

    @activity.defn(name="finish_rollback")
    async def finish_rollback(self, finish: FinishRollback) -> RollbackSummary:
        """Ends every item in a terminal state, writes the summary; the batch undone
        becomes rolled back once none of its items is left completed, partly rolled
        back while some are."""
        async with kept_alive():
            return await self._finish_rollback(finish)

    async def _finish_rollback(self, finish: FinishRollback) -> RollbackSummary:
        if finish.status is BatchStatus.CANCELLED:
            await self._ledger.skip_unfinished(finish.batch_id, "the rollback was cancelled")
        layout = await self._ledger.chunk_layout(finish.batch_id)
        failed, failed_count = await self._ledger.item_errors(
            finish.batch_id, limit=LISTED_IN_SUMMARY
        )
        inexact = await self._not_restored_exactly(finish.batch_id)
        tallies = await self._ledger.tallies(finish.batch_id)
        traffic = await self._ledger.traffic(finish.batch_id)
        counts = await self._ledger.item_counts(finish.rollback_of)
        original_status = None
        if counts[ItemStatus.ROLLED_BACK]:
            original_status = (
                BatchStatus.PARTLY_ROLLED_BACK
                if counts[ItemStatus.COMPLETED]
                else BatchStatus.ROLLED_BACK
            )
        summary = RollbackSummary(
            batch_id=finish.batch_id,
            rollback_of=finish.rollback_of,
            account_id=finish.account_id,
            status=finish.status,
            totals=layout.totals if layout is not None else {},
            restored={kind: tally.completed for kind, tally in tallies.items() if tally.completed},
            failed=tuple(failed),
            failed_omitted=failed_count - len(failed),
            not_restored_exactly=tuple(inexact[:INEXACT_IN_SUMMARY]),
            not_restored_exactly_omitted=max(len(inexact) - INEXACT_IN_SUMMARY, 0),
            nothing_to_undo=finish.nothing_to_undo,
            api_calls=traffic.sent,
            rate_limit_waits=traffic.rate_limited,
            rate_limit_wait_seconds=traffic.waited_seconds,
            calls_found_applied=finish.calls_found_applied,
            replans=finish.replans,
            duration_seconds=max((self._gate.clock() - finish.started_at).total_seconds(), 0.0),
            traffic=traffic,
            original_status=original_status,
        )
        await self._ledger.set_batch_status(
            finish.batch_id, finish.status, summary=summary.model_dump(mode="json")
        )
        if original_status is not None:
            await self._ledger.set_batch_status(finish.rollback_of, original_status)
        return summary

    async def _not_restored_exactly(self, batch_id: str) -> list[NotRestoredExactly]:
        found: list[NotRestoredExactly] = []
        offset = 0
        while page := await self._ledger.action_items(
            batch_id, status=ItemStatus.COMPLETED, offset=offset, limit=ITEMS_PER_READ
        ):
            offset += len(page)
            for item in page:
                if (item.after_state or {}).get(DATES_LOST) and isinstance(
                    item.before, LikedSongBefore
                ):
                    found.append(
                        NotRestoredExactly(
                            key=item.key,
                            name=item.name,
                            why=(
                                f"order/date lost: liked again today, not on "
                                f"{item.before.added_at:%Y-%m-%d %H:%M:%S} UTC (Spotify "
                                "refused the endpoint that keeps dates)"
                            ),
                        )
                    )
        return found

    # Restoring ---------------------------------------------------------------------------

    @activity.defn(name="restore_playlist")
    async def restore_playlist(self, request: RestoreChunkRequest) -> RestoreOutcome:
        """Puts one playlist's removed items back at their places, each insert call
        checked against the playlist first (see the module's docstring)."""
        items = await self._ledger.chunk_items(request.batch_id, request.chunk)
        unfinished = [item for item in items if item.status not in TERMINAL_ITEM_STATUSES]
        restoring: _PlaylistRestoring | None = None
        if unfinished:
            playlist_id = unfinished[0].container_id
            assert playlist_id is not None, unfinished[0].key
            removed = await self._still_removed(request, playlist_id)
            restore = {_original_key(item) for item in unfinished}
            keys = [item.key for item in unfinished]
            await self._ledger.mark_items(request.batch_id, keys, ItemStatus.IN_PROGRESS)
            async with (
                kept_alive() as keep_alive,
                self._client(request.account_id, request.batch_id) as client,
            ):
                restoring = _PlaylistRestoring(
                    self._ledger, request.batch_id, unfinished[0], playlist_id, removed, restore
                )
                refusal = await self._calls(lambda: restoring.run(client, keep_alive))
            if refusal is None:
                # The originals first: a retry after a crash between the two writes finds
                # them back in the playlist, and nothing left to insert.
                await self._ledger.mark_items(
                    request.rollback_of, sorted(restore), ItemStatus.ROLLED_BACK
                )
                await self._ledger.mark_items(
                    request.batch_id, keys, ItemStatus.COMPLETED, after_state={"present": True}
                )
            else:
                await self._ledger.mark_items(
                    request.batch_id, keys, ItemStatus.FAILED, error=str(refusal)
                )
        finished = await self._ledger.chunk_items(request.batch_id, request.chunk)
        return RestoreOutcome(
            chunk=request.chunk,
            tallies=tally_items(finished),
            traffic=await self._ledger.traffic(request.batch_id),
            calls_found_applied=restoring.found_applied if restoring else 0,
            replans=restoring.replans if restoring else 0,
        )

    async def _still_removed(
        self, request: RestoreChunkRequest, playlist_id: str
    ) -> list[RemovedOccurrence]:
        """Every occurrence the batch undone removed from the playlist and that is not
        back: those of its items still completed (rolled-back ones are in the playlist
        again, and count as kept, like those enforcement failed to remove)."""
        removed: list[RemovedOccurrence] = []
        for item in await self._ledger.container_items(request.rollback_of, playlist_id):
            if item.status is ItemStatus.COMPLETED:
                removed.extend(removed_occurrences(item.planned))
        return removed

    @activity.defn(name="restore_library_chunk")
    async def restore_library_chunk(self, request: RestoreChunkRequest) -> RestoreOutcome:
        """Likes songs again with their dates (where Spotify allows), saves albums and
        follows artists again: idempotent calls, so a retry simply sends them again."""
        items = await self._ledger.chunk_items(request.batch_id, request.chunk)
        unfinished = [item for item in items if item.status not in TERMINAL_ITEM_STATUSES]
        if unfinished:
            await self._ledger.mark_items(
                request.batch_id, [item.key for item in unfinished], ItemStatus.IN_PROGRESS
            )
            async with kept_alive(), self._client(request.account_id, request.batch_id) as client:
                fates = await self._calls(lambda: _save_library(client, unfinished))
            await self._record_library(request, unfinished, fates)
        finished = await self._ledger.chunk_items(request.batch_id, request.chunk)
        return RestoreOutcome(
            chunk=request.chunk,
            tallies=tally_items(finished),
            traffic=await self._ledger.traffic(request.batch_id),
        )

    async def _record_library(
        self,
        request: RestoreChunkRequest,
        items: Sequence[ActionItemRecord],
        fates: _LibraryFates,
    ) -> None:
        by_key = {item.key: item for item in items}
        restored = [key for key in by_key if key not in fates.refused]
        exact = [key for key in restored if key not in fates.dates_lost]
        inexact = [key for key in restored if key in fates.dates_lost]
        await self._ledger.mark_items(
            request.rollback_of,
            [_original_key(by_key[key]) for key in restored],
            ItemStatus.ROLLED_BACK,
        )
        marks: tuple[tuple[list[str], dict[str, Any]], ...] = (
            (exact, {"present": True}),
            (inexact, {"present": True, DATES_LOST: True}),
        )
        for keys, after in marks:
            await self._ledger.mark_items(
                request.batch_id, keys, ItemStatus.COMPLETED, after_state=after
            )
        for key, refusal in fates.refused.items():
            await self._ledger.mark_items(
                request.batch_id, [key], ItemStatus.FAILED, error=str(refusal)
            )


class _PlaylistRestoring:
    """One attempt at one playlist: plan, then for each call read, compare, send."""

    def __init__(
        self,
        ledger: Ledger,
        batch_id: str,
        keeper: ActionItemRecord,
        playlist_id: str,
        removed: list[RemovedOccurrence],
        restore: set[str],
    ) -> None:
        self._ledger = ledger
        self._batch_id = batch_id
        self._keeper = keeper
        """The item whose ``after_state`` holds the playlist's progress."""
        self._playlist_id = playlist_id
        self._removed = removed
        self._restore = restore
        self.call = 0
        self.found_applied = 0
        self.replans = 0

    async def run(self, client: SpotifyClient, keep_alive: KeepAlive) -> SpotifyHTTPError | None:
        """Restores the playlist; a refusal (the playlist is gone, or no longer the
        person's to change) is returned, not raised: the saga goes on without it."""
        try:
            await self._restore_all(client, keep_alive)
        except _REFUSALS as refusal:
            return refusal
        return None

    async def _restore_all(self, client: SpotifyClient, keep_alive: KeepAlive) -> None:
        stored = (self._keeper.after_state or {}).get(_RESTORE_PROGRESS)
        now = await self._read(client)
        if stored is None:
            progress = await self._store(_PlaylistProgress(starting_from=now))
        else:
            progress = _PlaylistProgress.model_validate(stored)
        plan = self._plan(progress)
        while True:
            reached = _calls_applied(plan, now)
            if reached is None:
                # Someone changed the playlist: plan again from what it is now, the
                # occurrences already back counted as kept.
                done = tuple(o.position for c in plan.calls[: self.call] for o in c.occurrences)
                progress = await self._store(
                    _PlaylistProgress(
                        starting_from=now,
                        restored_positions=progress.restored_positions + done,
                    )
                )
                plan = self._plan(progress)
                self.replans += 1
                self.call = 0
                continue
            if reached > self.call:
                self.found_applied += reached - self.call
            self.call = reached
            if self.call == len(plan.calls):
                return
            keep_alive.beat(self.call)
            insert = plan.calls[self.call]
            await client.add_playlist_items(
                self._playlist_id, insert.uris, position=insert.position
            )
            self.call += 1
            now = await self._read(client)

    def _plan(self, progress: _PlaylistProgress) -> PlaylistRestorePlan:
        back = set(progress.restored_positions)
        removed = [o for o in self._removed if o.position not in back]
        restore = self._restore & {o.key for o in removed}
        return plan_playlist_restore(removed, restore, progress.starting_from)

    async def _read(self, client: SpotifyClient) -> Uris:
        return tuple(item.uri for item in await client.all_playlist_items(self._playlist_id))

    async def _store(self, progress: _PlaylistProgress) -> _PlaylistProgress:
        """Before any call of a plan is sent, the ledger knows the plan's inputs."""
        after = {**(self._keeper.after_state or {}), _RESTORE_PROGRESS: progress.model_dump()}
        await self._ledger.mark_items(
            self._batch_id, [self._keeper.key], ItemStatus.IN_PROGRESS, after_state=after
        )
        return progress


def _calls_applied(plan: PlaylistRestorePlan, now: Uris) -> int | None:
    """How many of the plan's calls the playlist shows applied; None when it is in none
    of the states the plan passes through. Each call lengthens the playlist, so at most
    one state can match."""
    for index in range(len(plan.calls), 0, -1):
        if plan.calls[index - 1].expected_after == now:
            return index
    return 0 if plan.starting_from == now else None


@dataclass(frozen=True)
class _LibraryFates:
    dates_lost: frozenset[str]
    """Item keys of liked songs saved without their dates."""
    refused: dict[str, SpotifyHTTPError]


async def _save_library(client: SpotifyClient, items: Sequence[ActionItemRecord]) -> _LibraryFates:
    """Liked songs through the endpoint that keeps dates (unless Spotify is known to
    refuse it for this account), albums and artists through ``/me/library``."""
    songs = [item for item in items if isinstance(item.before, LikedSongBefore)]
    albums = [item for item in items if isinstance(item.before, SavedAlbumBefore)]
    artists = [item for item in items if item.entity_type is EntityType.FOLLOWED_ARTIST]
    refused: dict[str, SpotifyHTTPError] = {}
    dates_lost: set[str] = set()
    if songs:
        key_of_track = {item.entity_id: item.key for item in songs}
        dated = [
            (item.entity_id, item.before.added_at)
            for item in songs
            if isinstance(item.before, LikedSongBefore)
        ]
        known = client.generations.get(Operation.LIKED_SONGS_SAVE_WITH_DATES)
        plan = plan_liked_songs_restore(dated, dates_available=known is not Generation.CURRENT)
        try:
            for call in plan.calls:
                if plan.endpoint is LikedSongsEndpoint.TIMESTAMPED_IDS:
                    saved = await client.save_liked_songs_with_dates(call)
                    dates_lost.update(key_of_track[track] for track in saved.dates_lost)
                else:
                    await client.save_to_library(liked_song_uris(call))
                    dates_lost.update(key_of_track[song.track_id] for song in call)
        except _REFUSALS as refusal:
            refused.update((item.key, refusal) for item in songs)
    if albums or artists:
        library = plan_library_restore(
            [
                (item.entity_id, item.before.added_at)
                for item in albums
                if isinstance(item.before, SavedAlbumBefore)
            ],
            [item.entity_id for item in artists],
        )
        try:
            for uris in library.calls:
                await client.save_to_library(uris)
        except _REFUSALS as refusal:
            refused.update((item.key, refusal) for item in (*albums, *artists))
    return _LibraryFates(dates_lost=frozenset(dates_lost), refused=refused)


def _inverse(item: ActionItemRecord) -> PlannedAction:
    return item.planned.model_copy(update={"action": Action.RESTORE})


def _original_key(item: ActionItemRecord) -> str:
    return item.planned.model_copy(update={"action": Action.REMOVE}).key


def _restoring_order(items: list[ActionItemRecord]) -> list[ActionItemRecord]:
    """Library items first (the ledger cuts them first; they run last): liked songs and
    albums oldest first, so that saves without dates keep their order among themselves,
    then artists; then the playlists, the one enforced last first."""
    library = [item for item in items if item.entity_type is not EntityType.PLAYLIST_ITEM]
    library.sort(key=_library_order)
    lanes: dict[str | None, list[ActionItemRecord]] = {}
    for item in items:
        if item.entity_type is EntityType.PLAYLIST_ITEM:
            lanes.setdefault(item.container_id, []).append(item)
    playlists = sorted(lanes.values(), key=lambda group: -min(i.chunk or 0 for i in group))
    return [*library, *(item for group in playlists for item in group)]


def _library_order(item: ActionItemRecord) -> tuple[int, str]:
    before = item.before
    if isinstance(before, LikedSongBefore | SavedAlbumBefore):
        return (0, before.added_at.isoformat())
    return (1, "")
