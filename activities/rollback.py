"""Undoing a batch: the rollback batch in the ledger, and the calls that put things back.

Every activity here may run twice, and a worker may die at any instruction. The
rollback batch and its items are created idempotently. Saving to the library is
idempotent on Spotify's side; adding to a playlist is not (every POST adds copies).

A playlist's restoration keeps its progress in the ledger, on one of its items
(``after_state["restore"]``): what its plan starts from, how many of the plan's calls
are confirmed, the playlist's ``snapshot_id`` after them, and whether the next call
is being sent. Before each insert the ledger says which call is about to go and the
snapshot it starts from; after the answer, the snapshot Spotify returned, before the
next call goes. So:

- The first attempt makes one small read (``snapshot_id`` alone). When it is the
  snapshot enforcement's last removal returned, the playlist is as enforcement left
  it: the plan is made from the entries the plan kept, minus the occurrences removed,
  without reading the playlist. Otherwise it is read whole (the person edited it, or an
  earlier rollback put some items back) and planned from what it is, by the neighbour
  rule of ``enforcer.restore``.
- Consecutive inserts need no read between them: each starts from the snapshot the
  one before returned, recorded before it is sent.
- A later attempt (after a 429, a 5xx, a dead worker) makes one small read: the
  snapshot recorded -> it carries on from the last confirmed call (the call being
  sent, if any, was not applied); anything else -> the playlist is read whole and
  compared with the states the plan passes through: a call Spotify applied but whose
  answer was lost is found applied and never sent again; a playlist someone else
  changed is planned again from what it has become.
- An edit the person makes in the instant between two consecutive inserts of one
  attempt is not seen before the next insert (the price of not reading between
  them); one made while the restoration waits (a rate limit, a retry) is.

Library chunks: liked songs, when their dates can be kept, in chunks of 200 (a
multiple of 50, the dated endpoint's limit, and of 40, ``/me/library``'s, should
Spotify refuse the dates), oldest first; albums (oldest first) and artists after them,
40 a chunk, one ``/me/library`` call each. When Spotify is known to refuse the dates
for the account, everything goes 40 to a chunk and a call, songs and albums oldest
first, then artists. Each call's items are recorded restored before the next call goes:
an attempt after a 429 or a 5xx sends only what is not back yet.

What an activity raises is small (``activities._failures``: a short message, no cause
chain, never a playlist's contents); heartbeat details are a few counters. Requests are
counted in the ledger by the gated client, not here.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from pydantic import BaseModel, ConfigDict
from temporalio import activity

from activities import metrics
from activities._base import KeepAlive, SpotifyActivities, kept_alive, refusal_error
from enforcer.ledger import ActionItemRecord, BatchRecord, ChunkEnd, ItemMark, Ledger, LedgerError
from enforcer.models import (
    SNAPSHOT_AFTER,
    TERMINAL_BATCH_STATUSES,
    TERMINAL_ITEM_STATUSES,
    Action,
    BatchKind,
    BatchStatus,
    EntityType,
    FinishRollback,
    ItemsBack,
    ItemStatus,
    LikedSongBefore,
    NotRestoredExactly,
    PlannedAction,
    PlaylistItemBefore,
    RestoreChunkFailure,
    RestoreChunkRequest,
    RestoreOutcome,
    RollbackLayout,
    RollbackSummary,
    SavedAlbumBefore,
    StartRollback,
    status_after_rollback,
)
from enforcer.restore import (
    LikedSong,
    LikedSongsEndpoint,
    PlaylistRestorePlan,
    RemovedOccurrence,
    left_by_removal,
    liked_song_uris,
    original_playlist,
    plan_library_restore,
    plan_liked_songs_restore,
    plan_playlist_restore,
    removed_occurrences,
)
from enforcer.spotify import Generation, Operation, SpotifyClient
from enforcer.spotify.errors import (
    BadRequest,
    EndpointGone,
    Forbidden,
    NotFound,
    SpotifyHTTPError,
    TransientError,
)
from enforcer.spotify.limits import LEGACY_LIKED_SONGS_PER_CALL, LIBRARY_URIS_PER_CALL

ITEMS_PER_READ: Final = 5_000
LISTED_IN_SUMMARY: Final = 20
INEXACT_IN_SUMMARY: Final = 500
"""Items back without their dates named in the summary (about 100 kB at most); the
ledger marks every one (``after_state["dates_lost"]``)."""
WHOLE_PLAYLIST: Final = 2**31 - 1
"""The rollback's chunk size for playlists: one activity restores a whole playlist,
since where an item goes back depends on every other item of it."""
LIKED_SONGS_PER_CHUNK: Final = math.lcm(LEGACY_LIKED_SONGS_PER_CALL, LIBRARY_URIS_PER_CALL)
"""The rollback's chunk of liked songs: whole calls whether Spotify keeps their dates
(50 a call) or refuses them (40 a call through ``/me/library``)."""
DATES_LOST: Final = "dates_lost"
_RESTORE_PROGRESS: Final = "restore"
_REFUSALS = (BadRequest, Forbidden, NotFound, EndpointGone)

Uris = tuple[str | None, ...]
T = TypeVar("T")


class _Attempts(BaseModel):
    """What earlier attempts found, and the call a playlist's restoration reached, in
    heartbeat details (the ledger, not this, decides what is sent again)."""

    model_config = ConfigDict(frozen=True)

    call: int = 0
    calls_found_applied: int = 0
    replans: int = 0


class _PlaylistProgress(BaseModel):
    """A playlist's restoration as the ledger knows it (module docstring): with it any
    attempt makes the very same plan, and knows how far it got."""

    model_config = ConfigDict(frozen=True)

    snapshot: str
    """The playlist's ``snapshot_id`` once ``calls_done`` calls of the plan applied."""
    calls_done: int = 0
    sending: bool = False
    """Call ``calls_done`` is being sent from ``snapshot``; no answer recorded yet."""
    plan_from: Uris | None = None
    """The playlist the plan starts from, as read; None: as the batch undone left it
    (the plan's entries without the occurrences still removed), not read."""
    restored_positions: tuple[int, ...] = ()
    """Original positions put back by earlier plans: kept items for this one."""
    original: Uris | None = None
    """The playlist before enforcement, rebuilt from a read when the plan did not keep
    it (a plan made before plans kept their playlists)."""


class RollbackActivities(SpotifyActivities):
    """The activities of ``RollbackWorkflow``, sharing one ledger and the settings."""

    _completed_items = metrics.ITEMS_RESTORED

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
        completed item chosen, and cuts it: a chunk per playlist; liked songs 200 a
        chunk, then albums and artists 40 a chunk (all 40 a chunk when Spotify is known
        to refuse the songs' dates: see the module docstring). Refuses (changing
        nothing) an unknown batch, another account's, a rollback, a batch still
        running, and chosen keys the batch does not have."""
        async with kept_alive():
            return await self._start_rollback(start)

    async def _start_rollback(self, start: StartRollback) -> RollbackLayout:
        request = start.request
        original = await self._batch_to_undo(request.account_id, request.batch_id)
        chosen, nothing_to_undo = await completed_chosen(
            self._ledger, request.batch_id, request.item_keys
        )
        batch_id = await self._rollback_batch(start, original.plan_id)
        cut_before = await self._ledger.chunk_layout(batch_id)
        if cut_before is None or not cut_before.chunks:
            # A retry after the cut adds nothing: the items are fixed once cut.
            for offset in range(0, len(chosen), ITEMS_PER_READ):
                part = chosen[offset : offset + ITEMS_PER_READ]
                items = await self._ledger.action_items_with_keys(request.batch_id, part)
                await self._ledger.create_action_items(batch_id, [_inverse(i) for i in items])
        generations = await self._ledger.generations(request.account_id)
        dates_refused = generations.get(Operation.LIKED_SONGS_SAVE_WITH_DATES) is (
            Generation.CURRENT
        )
        layout = await self._ledger.assign_chunks(
            batch_id,
            library_chunk_size=LIBRARY_URIS_PER_CALL,
            playlist_chunk_size=WHOLE_PLAYLIST,
            liked_song_chunk_size=None if dates_refused else LIKED_SONGS_PER_CHUNK,
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
        end = await self._give_up(request.batch_id, request.chunk, failure.error)
        return RestoreOutcome(chunks=(request.chunk,), tallies=end.tallies, traffic=end.traffic)

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
            finish.batch_id, limit=LISTED_IN_SUMMARY, status=ItemStatus.FAILED
        )
        skipped, reasons = await self._ledger.skip_reasons(finish.batch_id, limit=LISTED_IN_SUMMARY)
        inexact = await self._not_restored_exactly(finish.batch_id)
        tallies = await self._ledger.tallies(finish.batch_id)
        traffic = await self._ledger.traffic(finish.batch_id)
        counts = await self._ledger.item_counts(finish.rollback_of)
        original_status = status_after_rollback(counts)
        summary = RollbackSummary(
            batch_id=finish.batch_id,
            rollback_of=finish.rollback_of,
            account_id=finish.account_id,
            status=finish.status,
            totals=layout.totals if layout is not None else {},
            restored={kind: tally.completed for kind, tally in tallies.items() if tally.completed},
            failed=tuple(failed),
            failed_omitted=failed_count - len(failed),
            skipped=tuple(skipped),
            skipped_reasons_omitted=reasons - len(skipped),
            not_restored_exactly=tuple(inexact[:INEXACT_IN_SUMMARY]),
            not_restored_exactly_omitted=max(len(inexact) - INEXACT_IN_SUMMARY, 0),
            nothing_to_undo=finish.nothing_to_undo,
            api_calls=traffic.sent,
            rate_limit_waits=traffic.rate_limited,
            rate_limit_wait_seconds=traffic.waited_seconds,
            calls_found_applied=finish.calls_found_applied,
            replans=finish.replans,
            schedule_paused=finish.schedule_paused,
            duration_seconds=max((self._gate.clock() - finish.started_at).total_seconds(), 0.0),
            traffic=traffic,
            original_status=original_status,
            original_items_back=ItemsBack(
                back=counts[ItemStatus.ROLLED_BACK],
                removed=counts[ItemStatus.ROLLED_BACK] + counts[ItemStatus.COMPLETED],
            ),
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
        checked by the playlist's ``snapshot_id`` first (see the module's docstring)."""
        items = await self._ledger.claim_chunk(request.batch_id, request.chunk)
        unfinished = [item for item in items if item.status not in TERMINAL_ITEM_STATUSES]
        earlier = _previous_attempts()
        if not unfinished:
            end = await self._finish_chunk(request.batch_id, request.chunk)
            return RestoreOutcome(
                chunks=(request.chunk,),
                tallies=end.tallies,
                traffic=end.traffic,
                calls_found_applied=earlier.calls_found_applied,
                replans=earlier.replans,
            )
        playlist_id = unfinished[0].container_id
        assert playlist_id is not None, unfinished[0].key
        removed, left_by_enforcement = await self._still_removed(request, playlist_id)
        undone = await self._ledger.batch(request.rollback_of)
        original = await self._ledger.planned_playlist(undone.plan_id, playlist_id)
        restore = {_original_key(item) for item in unfinished}
        restoring = _PlaylistRestoring(
            self._ledger,
            request.batch_id,
            unfinished[0],
            playlist_id,
            _PlaylistFacts(removed, restore, left_by_enforcement, original),
            earlier,
        )
        traffic = self._chunk_traffic(request.batch_id)
        async with (
            kept_alive() as keep_alive,
            self._client(request.account_id, traffic=traffic) as client,
        ):
            try:
                refusal = await self._calls(lambda: restoring.run(client, keep_alive))
            except Exception:
                keep_alive.remember(restoring.attempts())
                raise
            keys = tuple(item.key for item in unfinished)
            if refusal is None:
                # The originals with the rollback's own items, in one transaction.
                marks = [
                    ItemMark(request.rollback_of, tuple(sorted(restore)), ItemStatus.ROLLED_BACK),
                    ItemMark(
                        request.batch_id, keys, ItemStatus.COMPLETED, after_state={"present": True}
                    ),
                ]
            else:
                marks = [ItemMark(request.batch_id, keys, ItemStatus.FAILED, error=str(refusal))]
            end = await self._finish_chunk(request.batch_id, request.chunk, marks, traffic)
        attempts = restoring.attempts()
        return RestoreOutcome(
            chunks=(request.chunk,),
            tallies=end.tallies,
            traffic=end.traffic,
            calls_found_applied=attempts.calls_found_applied,
            replans=attempts.replans,
        )

    async def _still_removed(
        self, request: RestoreChunkRequest, playlist_id: str
    ) -> tuple[list[RemovedOccurrence], str | None]:
        """Every occurrence removed from the playlist and not back, by the batch undone
        and by any other enforcement of the account that planned from the same version
        of the playlist (the same positions): the plan puts the batch's own back and
        steps over the others', which stay removed. Items back already (rolled back)
        count as kept, like those enforcement failed to remove.

        And the ``snapshot_id`` the playlist had once the last of those removals applied
        (None when none recorded one, or when another batch removed from another
        version of the playlist: positions then do not compare, and it is read whole)."""
        mine = await self._ledger.container_items(request.rollback_of, playlist_id)
        versions = {i.before.snapshot_id for i in mine if isinstance(i.before, PlaylistItemBefore)}
        removed: list[RemovedOccurrence] = []
        comparable, latest, latest_at = True, None, None
        for item in await self._ledger.removed_from(request.rollback_of, playlist_id):
            before = item.before
            if not isinstance(before, PlaylistItemBefore) or before.snapshot_id not in versions:
                comparable = False
                continue
            removed.extend(removed_occurrences(item.planned))
            snapshot = (item.after_state or {}).get(SNAPSHOT_AFTER)
            finished = item.finished_at
            later = finished is not None and (latest_at is None or finished >= latest_at)
            if isinstance(snapshot, str) and later:
                latest, latest_at = snapshot, finished
        return removed, latest if comparable else None

    @activity.defn(name="restore_library_chunk")
    async def restore_library_chunk(self, request: RestoreChunkRequest) -> RestoreOutcome:
        """Likes songs again with their dates (where Spotify allows), saves albums and
        follows artists again: idempotent calls, so a retry simply sends them again."""
        items = await self._ledger.claim_chunk(request.batch_id, request.chunk)
        unfinished = [item for item in items if item.status not in TERMINAL_ITEM_STATUSES]
        if not unfinished:
            end = await self._finish_chunk(request.batch_id, request.chunk)
            return RestoreOutcome(chunks=(request.chunk,), tallies=end.tallies, traffic=end.traffic)
        traffic = self._chunk_traffic(request.batch_id)
        async with (
            kept_alive() as keep_alive,
            self._client(request.account_id, traffic=traffic) as client,
        ):
            ends: list[ChunkEnd] = []

            async def saved(part: Sequence[ActionItemRecord], dates_lost: set[str]) -> None:
                # Each call's items, with the answers so far, before the next call goes.
                marks = _library_marks(request, part, _LibraryFates(frozenset(dates_lost), {}))
                ends.append(
                    await self._finish_chunk(request.batch_id, request.chunk, marks, traffic)
                )
                keep_alive.beat()

            refused = await self._calls(lambda: _save_library(client, unfinished, saved))
            if refused or not ends or traffic.answers():
                marks = _library_marks(
                    request,
                    [item for item in unfinished if item.key in refused],
                    _LibraryFates(frozenset(), refused=refused),
                )
                ends.append(
                    await self._finish_chunk(request.batch_id, request.chunk, marks, traffic)
                )
        return RestoreOutcome(
            chunks=(request.chunk,), tallies=ends[-1].tallies, traffic=ends[-1].traffic
        )


def _library_marks(
    request: RestoreChunkRequest, items: Sequence[ActionItemRecord], fates: _LibraryFates
) -> list[ItemMark]:
    """The originals of the items back, rolled back; the items back, completed (without
    their dates, noted); those Spotify refused, failed with its reason."""
    by_key = {item.key: item for item in items}
    restored = [key for key in by_key if key not in fates.refused]
    exact = tuple(key for key in restored if key not in fates.dates_lost)
    inexact = tuple(key for key in restored if key in fates.dates_lost)
    marks = [
        ItemMark(
            request.rollback_of,
            tuple(_original_key(by_key[key]) for key in restored),
            ItemStatus.ROLLED_BACK,
        ),
        ItemMark(request.batch_id, exact, ItemStatus.COMPLETED, after_state={"present": True}),
        ItemMark(
            request.batch_id,
            inexact,
            ItemStatus.COMPLETED,
            after_state={"present": True, DATES_LOST: True},
        ),
    ]
    marks.extend(
        ItemMark(request.batch_id, (key,), ItemStatus.FAILED, error=str(refusal))
        for key, refusal in fates.refused.items()
    )
    return [mark for mark in marks if mark.keys]


@dataclass(frozen=True)
class _PlaylistFacts:
    """What the ledger says about one playlist before its restoration starts."""

    removed: list[RemovedOccurrence]
    """Every occurrence the batch undone removed from it and that is not back."""
    restore: set[str]
    """The original keys of the items to put back."""
    left_by_enforcement: str | None
    """The ``snapshot_id`` enforcement's last removal returned."""
    original: Uris | None
    """Its entries as the plan saw them; None when the plan did not keep them."""


class _PlaylistRestoring:
    """One attempt at one playlist: learn where it stands, then insert call by call,
    each recorded in the ledger before it is sent and after it is answered."""

    def __init__(
        self,
        ledger: Ledger,
        batch_id: str,
        keeper: ActionItemRecord,
        playlist_id: str,
        facts: _PlaylistFacts,
        earlier: _Attempts,
    ) -> None:
        self._ledger = ledger
        self._batch_id = batch_id
        self._keeper = keeper
        """The item whose ``after_state`` holds the playlist's progress."""
        self._playlist_id = playlist_id
        self._facts = facts
        self._earlier = earlier
        self.call = 0
        self.found_applied = 0
        self.replans = 0
        self._keep_alive = KeepAlive()

    def attempts(self) -> _Attempts:
        """What this attempt and the earlier ones found, and the call reached."""
        return _Attempts(
            call=self.call,
            calls_found_applied=self._earlier.calls_found_applied + self.found_applied,
            replans=self._earlier.replans + self.replans,
        )

    async def run(self, client: SpotifyClient, keep_alive: KeepAlive) -> SpotifyHTTPError | None:
        """Restores the playlist; a refusal (the playlist is gone, or no longer the
        person's to change) is returned, not raised: the saga goes on without it."""
        self._keep_alive = keep_alive
        try:
            await self._restore_all(client)
        except _REFUSALS as refusal:
            return refusal
        return None

    async def _restore_all(self, client: SpotifyClient) -> None:
        if not self._facts.restore & {o.key for o in self._facts.removed}:
            return  # All back: a retry after the originals were marked rolled back.
        stored = _stored_progress(self._keeper.after_state)
        snapshot = await client.playlist_snapshot_id(self._playlist_id)
        if stored is None:
            progress = await self._first_progress(client, snapshot)
        else:
            progress = stored
            if snapshot != progress.snapshot:
                progress = await self._reconcile(client, progress, snapshot)
            # Else nothing changed since the last record: a call being sent then was
            # not applied, and goes now.
        plan = self._plan(progress)
        self.call = progress.calls_done
        while progress.calls_done < len(plan.calls):
            if not progress.sending:
                progress = await self._store(progress.model_copy(update={"sending": True}))
            # A step forward once a call of this attempt is confirmed (see kept_alive).
            if progress.calls_done > self.call:
                self._keep_alive.beat(self.attempts())
            else:
                self._keep_alive.remember(self.attempts())
            self.call = progress.calls_done
            insert = plan.calls[progress.calls_done]
            after = await client.add_playlist_items(
                self._playlist_id, insert.uris, position=insert.position
            )
            if after is None:
                raise TransientError("an insert answered without a snapshot_id")
            done = progress.calls_done + 1
            # The answer, and (merged into one write) the next call about to be sent.
            progress = await self._store(
                progress.model_copy(
                    update={
                        "calls_done": done,
                        "snapshot": after,
                        "sending": done < len(plan.calls),
                    }
                )
            )
        self.call = progress.calls_done

    async def _first_progress(self, client: SpotifyClient, snapshot: str) -> _PlaylistProgress:
        """Where the first attempt starts: from the plan's entries when the playlist is
        as enforcement left it, else from the playlist read whole."""
        facts = self._facts
        as_left = facts.left_by_enforcement is not None and snapshot == facts.left_by_enforcement
        if as_left and self._kept(facts.original, facts.removed) is not None:
            return _PlaylistProgress(snapshot=snapshot)
        now, snapshot = await self._read_whole(client, snapshot)
        if facts.original is None and snapshot == facts.left_by_enforcement:
            # The plan did not keep the playlist: it is what this read found, with the
            # removed occurrences back in their places.
            try:
                original = original_playlist(now, facts.removed)
            except ValueError:
                original = None
            if original is not None:
                return _PlaylistProgress(snapshot=snapshot, original=original)
        return _PlaylistProgress(snapshot=snapshot, plan_from=now)

    async def _reconcile(
        self, client: SpotifyClient, progress: _PlaylistProgress, snapshot: str
    ) -> _PlaylistProgress:
        """The playlist is not at the snapshot last recorded: read it whole and find it
        among the states the plan passes through, or plan again from what it is."""
        plan = self._plan(progress)
        now, snapshot = await self._read_whole(client, snapshot)
        reached = _calls_applied(plan, now)
        if reached is not None and reached >= progress.calls_done:
            # reached > calls_done: a call was applied, its answer lost.
            self.found_applied += reached - progress.calls_done
            return progress.model_copy(
                update={"calls_done": reached, "snapshot": snapshot, "sending": False}
            )
        # Someone else changed the playlist: plan again from what it is now, the
        # occurrences already back counted as kept.
        done = progress.calls_done
        if progress.sending and _looks_applied(plan, done, now):
            done += 1
        back = tuple(o.position for call in plan.calls[:done] for o in call.occurrences)
        self.replans += 1
        return _PlaylistProgress(
            snapshot=snapshot,
            plan_from=now,
            restored_positions=progress.restored_positions + back,
            original=progress.original,
        )

    def _plan(self, progress: _PlaylistProgress) -> PlaylistRestorePlan:
        back = set(progress.restored_positions)
        removed = [o for o in self._facts.removed if o.position not in back]
        restore = self._facts.restore & {o.key for o in removed}
        original = self._facts.original if self._facts.original is not None else progress.original
        kept = self._kept(original, removed)
        current = progress.plan_from if progress.plan_from is not None else kept
        assert current is not None, "planned from the playlist as left, unknown"
        return plan_playlist_restore(removed, restore, current, left_by_enforcement=kept)

    @staticmethod
    def _kept(original: Uris | None, removed: Sequence[RemovedOccurrence]) -> Uris | None:
        """The items kept, in order: the original without the occurrences still
        removed; None when unknown (or when the original does not fit the removals)."""
        if original is None:
            return None
        try:
            return left_by_removal(original, removed)
        except ValueError:
            return None

    async def _read_whole(self, client: SpotifyClient, snapshot: str) -> tuple[Uris, str]:
        """The playlist's entries and the snapshot they are, read page by page: the
        snapshot read after the pages must be the one before them, else a page may be
        of another version, and the pages are read again."""
        while True:
            entries: list[str | None] = []
            async for page in client.playlist_items_pages(self._playlist_id):
                entries.extend(item.uri for item in page.items)
            after = await client.playlist_snapshot_id(self._playlist_id)
            if after == snapshot:
                return tuple(entries), snapshot
            snapshot = after

    async def _store(self, progress: _PlaylistProgress) -> _PlaylistProgress:
        after = {**(self._keeper.after_state or {}), _RESTORE_PROGRESS: progress.model_dump()}
        await self._ledger.set_after_state(self._batch_id, self._keeper.key, after)
        return progress


def _stored_progress(after_state: dict[str, Any] | None) -> _PlaylistProgress | None:
    """The progress an earlier attempt recorded, if any. One recorded before snapshots
    were (the plan's start, read whole, and the positions back) becomes progress at an
    unknown snapshot: the playlist is read whole, and the calls it shows applied count."""
    stored = (after_state or {}).get(_RESTORE_PROGRESS)
    if stored is None:
        return None
    if "snapshot" not in stored and "starting_from" in stored:
        return _PlaylistProgress(
            snapshot="",
            sending=True,
            plan_from=tuple(stored["starting_from"]),
            restored_positions=tuple(stored.get("restored_positions", ())),
        )
    return _PlaylistProgress.model_validate(stored)


def _looks_applied(plan: PlaylistRestorePlan, index: int, now: Uris) -> bool:
    """Whether call ``index``, sent but unanswered, seems applied to a playlist someone
    else also changed: it holds as many copies of each URI as the call would leave.
    A guess, only for that double fault; an exact answer needs the person's edit."""
    copies_now = Counter(now)
    expected = Counter(plan.calls[index].expected_after)
    return all(copies_now[uri] >= expected[uri] for uri in plan.calls[index].uris)


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


Saved = Callable[[Sequence[ActionItemRecord], set[str]], Awaitable[None]]
"""Told after each call Spotify accepted: the items it saved, and the keys of those
saved without their dates."""


async def _save_library(
    client: SpotifyClient, items: Sequence[ActionItemRecord], saved: Saved
) -> dict[str, SpotifyHTTPError]:
    """Liked songs through the endpoint that keeps dates (unless Spotify is known to
    refuse it for this account), albums and artists through ``/me/library``; when the
    dates are known refused, everything through ``/me/library``, 40 URIs a call of any
    type, in the order given (the ledger's: songs and albums oldest first). Each call's
    items are recorded (``saved``) before the next call goes, so an attempt after a 429
    or a 5xx sends only what is not saved yet. What Spotify refused, by item key."""
    songs = [item for item in items if isinstance(item.before, LikedSongBefore)]
    others = [item for item in items if not isinstance(item.before, LikedSongBefore)]
    song_keys = {item.key for item in songs}
    refused: dict[str, SpotifyHTTPError] = {}
    known = client.generations.get(Operation.LIKED_SONGS_SAVE_WITH_DATES)
    if known is Generation.CURRENT:
        try:
            for part in _in_parts(items, LIBRARY_URIS_PER_CALL):
                await client.save_to_library([item.uri for item in part])
                await saved(part, {item.key for item in part if item.key in song_keys})
        except _REFUSALS as refusal:
            refused.update((item.key, refusal) for item in items)
        return refused
    if songs:
        try:
            await _save_liked_songs(client, songs, saved)
        except _REFUSALS as refusal:
            refused.update((item.key, refusal) for item in songs)
    if others:
        library = plan_library_restore(
            [
                (item.entity_id, item.before.added_at)
                for item in others
                if isinstance(item.before, SavedAlbumBefore)
            ],
            [item.entity_id for item in others if item.entity_type is EntityType.FOLLOWED_ARTIST],
        )
        by_uri = {item.uri: item for item in others}
        try:
            for uris in library.calls:
                await client.save_to_library(uris)
                await saved([by_uri[uri] for uri in uris], set())
        except _REFUSALS as refusal:
            refused.update((item.key, refusal) for item in others)
    return refused


async def _save_liked_songs(
    client: SpotifyClient, songs: Sequence[ActionItemRecord], saved: Saved
) -> None:
    """Saves the songs with their dates, 50 a call; should Spotify refuse the dates, the
    rest goes through ``/me/library``, 40 a call, oldest first."""
    key_of_track = {item.entity_id: item.key for item in songs}
    item_of_track = {item.entity_id: item for item in songs}
    dated = [
        (item.entity_id, item.before.added_at)
        for item in songs
        if isinstance(item.before, LikedSongBefore)
    ]
    plan = plan_liked_songs_restore(dated, dates_available=True)
    remaining: list[LikedSong] = [song for call in plan.calls for song in call]
    while remaining:
        if plan.endpoint is LikedSongsEndpoint.TIMESTAMPED_IDS:
            part = remaining[:LEGACY_LIKED_SONGS_PER_CALL]
            answer = await client.save_liked_songs_with_dates(part)
            lost = {key_of_track[track] for track in answer.dates_lost}
            if answer.dates_lost:
                # Refused (and remembered): the rest in /me/library's whole calls.
                plan = plan_liked_songs_restore(remaining[len(part) :], dates_available=False)
        else:
            part = remaining[:LIBRARY_URIS_PER_CALL]
            await client.save_to_library(liked_song_uris(part))
            lost = {key_of_track[song.track_id] for song in part}
        await saved([item_of_track[song.track_id] for song in part], lost)
        remaining = remaining[len(part) :]


def _in_parts(values: Sequence[T], size: int) -> list[Sequence[T]]:
    return [values[start : start + size] for start in range(0, len(values), size)]


def _inverse(item: ActionItemRecord) -> PlannedAction:
    return item.planned.model_copy(update={"action": Action.RESTORE})


def _original_key(item: ActionItemRecord) -> str:
    return item.planned.model_copy(update={"action": Action.REMOVE}).key


async def completed_chosen(
    ledger: Ledger, batch_id: str, item_keys: tuple[str, ...] | None
) -> tuple[list[str], int]:
    """The keys of the batch's completed items chosen (``item_keys``; None: all), in the
    order to restore them, and how many chosen items have nothing to undo. The items are
    read a page at a time and only what their order needs is kept (``_Restorable``): the
    worker's memory does not grow with whole items of a large batch."""
    if item_keys is not None and not item_keys:
        raise refusal_error(f"no items of batch {batch_id!r} chosen to roll back")
    wanted = set(item_keys) if item_keys is not None else None
    found: set[str] = set()
    restorable: list[_Restorable] = []
    offset = 0
    while page := await ledger.action_items(batch_id, offset=offset, limit=ITEMS_PER_READ):
        offset += len(page)
        for item in page:
            if wanted is not None:
                if item.key not in wanted:
                    continue
                found.add(item.key)
            if item.status is ItemStatus.COMPLETED:
                restorable.append(_Restorable.of(item))
    if wanted is not None and (unknown := sorted(wanted - found)):
        raise refusal_error(f"not items of batch {batch_id!r}: {', '.join(unknown)}")
    selected = len(wanted) if wanted is not None else offset
    return _restoring_order(restorable), selected - len(restorable)


@dataclass(frozen=True, slots=True)
class _Restorable:
    """What the order of restoring needs of an item to undo: its key, its playlist (None
    for the library), its chunk, and for the library the date it was saved."""

    key: str
    playlist: str | None
    chunk: int
    library_order: tuple[int, str]

    @classmethod
    def of(cls, item: ActionItemRecord) -> _Restorable:
        before = item.before
        if item.entity_type is EntityType.PLAYLIST_ITEM:
            return cls(item.key, item.container_id, item.chunk or 0, (2, ""))
        if isinstance(before, LikedSongBefore | SavedAlbumBefore):
            return cls(item.key, None, item.chunk or 0, (0, before.added_at.isoformat()))
        return cls(item.key, None, item.chunk or 0, (1, ""))


def _restoring_order(items: list[_Restorable]) -> list[str]:
    """Library items first (the ledger cuts them first; they run last): liked songs and
    albums oldest first, so that saves without dates keep their order among themselves,
    then artists; then the playlists, the one enforced last first."""
    library = [item for item in items if item.playlist is None]
    library.sort(key=lambda item: item.library_order)
    lanes: dict[str | None, list[_Restorable]] = {}
    for item in items:
        if item.playlist is not None:
            lanes.setdefault(item.playlist, []).append(item)
    playlists = sorted(lanes.values(), key=lambda group: -min(i.chunk for i in group))
    return [item.key for item in (*library, *(item for group in playlists for item in group))]


def _previous_attempts() -> _Attempts:
    details = activity.info().heartbeat_details
    return _Attempts.model_validate(details[0]) if details else _Attempts()
