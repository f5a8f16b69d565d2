"""EnforcementWorkflow: one durable batch per plan, fanned out in chunks cut to Spotify's limits.

It reads as the business process: create the batch, remove chunk after chunk (a few
at once, each playlist's in order), then write the summary. What a platform needs
(pausing, parking until a new login, continuing as new before the history grows) lives
in small private methods. The workflow carries only references and counters; the
items live in the ledger.
"""

from __future__ import annotations

import asyncio
from collections import deque
from datetime import UTC, datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.workflow import ParentClosePolicy

from workflows.policies import LEDGER_RETRY, SPOTIFY_PATIENCE, SPOTIFY_RETRY

with workflow.unsafe.imports_passed_through():
    from activities._spotify_calls import LOGIN_REQUIRED
    from activities.enforcement import EnforcementActivities
    from enforcer.models import (
        BatchStatus,
        BatchStatusChange,
        ChunkFailure,
        ChunkLanesRequest,
        ChunkLayout,
        ChunkOutcome,
        ChunkRequest,
        EnforcementCheckpoint,
        EnforcementProgress,
        EnforcementRequest,
        EnforcementSummary,
        EntityType,
        FinishBatch,
        ItemTally,
        RollbackRequest,
        StartBatch,
        WaitPeriod,
        merge_waits,
        waited_seconds,
    )
    from workflows.connection import spotify_task_queue
    from workflows.rollback import RollbackWorkflow, rollback_workflow_id
    from workflows.search_attributes import ENFORCEMENT_ACCOUNT, ENFORCEMENT_STATUS

CHUNKS_PER_RUN = 500
"""Chunks one run of the workflow handles before it continues as new: about 3,000
history events, well inside Temporal's advice for a batch."""
LIBRARY_LANE = -1


def enforcement_workflow_id(account_id: str, plan_id: str) -> str:
    """The idempotency key of an enforcement: one batch per account and plan."""
    return f"enforce/{account_id}/{plan_id}"


@workflow.defn
class EnforcementWorkflow:
    def __init__(self) -> None:
        self._status = BatchStatus.PENDING
        self._layout = ChunkLayout(chunks=0, library_chunks=0, playlist_chunks=0, totals={})
        self._tallies: dict[EntityType, ItemTally] = {}
        self._chunks_done = 0
        self._api_calls = 0
        self._rate_limit_waits = 0
        self._rate_limit_periods: tuple[WaitPeriod, ...] = ()
        self._legacy_operations: set[str] = set()
        self._paused = False
        self._cancelled = False
        self._roll_back = False
        self._logins_awaited = 0
        self._resumes = 0
        self._in_flight = 0
        self._busy_lanes: set[int] = set()
        self._chunk_tasks: set[asyncio.Task[None]] = set()
        self._started_at = datetime.min.replace(tzinfo=UTC)

    @workflow.run
    async def run(self, request: EnforcementRequest) -> EnforcementSummary:
        self._request = request
        self._batch_id = workflow.info().workflow_id
        if request.checkpoint is None:
            self._started_at = workflow.now()
            self._layout = await self._start_batch()
            next_chunk = 0
        else:
            next_chunk = self._restore(request.checkpoint)
        await self._set_status(BatchStatus.PAUSED if self._paused else BatchStatus.RUNNING)

        stop = min(next_chunk + CHUNKS_PER_RUN, self._layout.chunks)
        if not self._cancelled and next_chunk < stop:
            await self._remove_chunks(next_chunk, stop)
            if not self._cancelled and stop < self._layout.chunks:
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(self._checkpointed(stop))

        status = BatchStatus.CANCELLED if self._cancelled else BatchStatus.COMPLETED
        summary = await self._finish(status)
        if self._roll_back or (self._request.atomic and _incomplete(summary)):
            summary = await self._compensate(summary)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return summary

    # Messages --------------------------------------------------------------------

    @workflow.signal
    def cancel(self) -> None:
        """No new chunks; the ones in flight finish; the rest of the items are skipped."""
        self._cancelled = True

    @workflow.signal
    def rollback(self) -> None:
        """Stops the batch as ``cancel`` does, then undoes everything it removed."""
        self._cancelled = True
        self._roll_back = True

    @workflow.signal
    async def pause(self) -> None:
        """No new chunks until ``resume``; the ones in flight finish. A pause that comes
        while the batch is being created takes effect as soon as it runs."""
        self._paused = True
        if self._status is BatchStatus.RUNNING:
            await self._set_status(BatchStatus.PAUSED)

    @workflow.signal
    async def resume(self) -> None:
        """Ends a pause, or the wait for a new login."""
        self._paused = False
        self._resumes += 1
        if self._status in (BatchStatus.PAUSED, BatchStatus.WAITING_FOR_LOGIN):
            await self._set_status(BatchStatus.RUNNING)

    @workflow.query
    def progress(self) -> EnforcementProgress:
        return EnforcementProgress(
            batch_id=self._batch_id,
            plan_id=self._request.plan_id,
            status=self._status,
            totals=self._layout.totals,
            tallies=self._tallies,
            chunks_total=self._layout.chunks,
            chunks_done=self._chunks_done,
            api_calls=self._api_calls,
            rate_limit_waits=self._rate_limit_waits,
            rate_limit_wait_seconds=waited_seconds(self._rate_limit_periods),
            started_at=self._started_at if self._layout.chunks else None,
            eta_seconds=self._eta_seconds(),
        )

    # The batch -----------------------------------------------------------------------

    async def _start_batch(self) -> ChunkLayout:
        account = self._request.account_label or self._request.account_id
        workflow.upsert_search_attributes([ENFORCEMENT_ACCOUNT.value_set(account)])
        return await workflow.execute_activity_method(
            EnforcementActivities.start_batch,
            StartBatch(batch_id=self._batch_id, request=self._request),
            start_to_close_timeout=timedelta(minutes=10),
            retry_policy=LEDGER_RETRY,
        )

    async def _remove_chunks(self, first: int, stop: int) -> None:
        """Runs chunks ``first``..``stop`` a few at a time, each playlist's in order."""
        lanes = await workflow.execute_activity_method(
            EnforcementActivities.chunk_lanes,
            ChunkLanesRequest(batch_id=self._batch_id, first=first, count=stop - first),
            start_to_close_timeout=timedelta(minutes=1),
            retry_policy=LEDGER_RETRY,
        )
        waiting = deque(zip(range(first, stop), lanes.lanes, strict=True))
        while waiting and not self._cancelled:
            await workflow.wait_condition(
                lambda: self._cancelled or self._next_startable(waiting) is not None
            )
            if self._cancelled:
                break
            startable = self._next_startable(waiting)
            assert startable is not None
            waiting.remove(startable)
            chunk, lane = startable
            self._in_flight += 1
            if lane != LIBRARY_LANE:
                self._busy_lanes.add(lane)
            task = asyncio.create_task(self._apply_chunk(chunk, lane))
            self._chunk_tasks.add(task)
            task.add_done_callback(self._chunk_tasks.discard)
        await workflow.wait_condition(lambda: self._in_flight == 0)

    def _next_startable(self, waiting: deque[tuple[int, int]]) -> tuple[int, int] | None:
        if self._paused or self._logins_awaited or self._in_flight >= self._request.max_in_flight:
            return None
        for chunk, lane in waiting:
            if lane == LIBRARY_LANE or lane not in self._busy_lanes:
                return chunk, lane
            # Later chunks of a busy lane wait; so must nothing else of that lane.
        return None

    async def _apply_chunk(self, chunk: int, lane: int) -> None:
        request = ChunkRequest(
            batch_id=self._batch_id, account_id=self._request.account_id, chunk=chunk
        )
        try:
            while not self._cancelled:
                try:
                    self._count(await self._execute_chunk(request))
                    return
                except ActivityError as error:
                    if _error_type(error) != LOGIN_REQUIRED:
                        self._count(await self._give_up_chunk(request, error))
                        return
                await self._wait_for_login()
        finally:
            self._in_flight -= 1
            self._busy_lanes.discard(lane)

    async def _execute_chunk(self, request: ChunkRequest) -> ChunkOutcome:
        return await workflow.execute_activity_method(
            EnforcementActivities.apply_chunk,
            request,
            task_queue=spotify_task_queue(workflow.info().task_queue),
            start_to_close_timeout=timedelta(minutes=2),
            schedule_to_close_timeout=SPOTIFY_PATIENCE,
            retry_policy=SPOTIFY_RETRY,
        )

    async def _give_up_chunk(self, request: ChunkRequest, error: ActivityError) -> ChunkOutcome:
        """A chunk that can never succeed: its unfinished items end failed, with why."""
        cause = error.cause if error.cause is not None else error
        return await workflow.execute_activity_method(
            EnforcementActivities.give_up_chunk,
            ChunkFailure(chunk=request, error=str(cause)),
            start_to_close_timeout=timedelta(minutes=1),
            retry_policy=LEDGER_RETRY,
        )

    async def _wait_for_login(self) -> None:
        """Parks the batch until a person logs in again and sends ``resume``."""
        resumes_before = self._resumes
        self._logins_awaited += 1
        try:
            if self._status is not BatchStatus.WAITING_FOR_LOGIN:
                await self._set_status(BatchStatus.WAITING_FOR_LOGIN)
            await workflow.wait_condition(lambda: self._resumes > resumes_before or self._cancelled)
        finally:
            self._logins_awaited -= 1

    def _count(self, outcome: ChunkOutcome) -> None:
        self._chunks_done += 1
        for entity_type, tally in outcome.tallies.items():
            self._tallies[entity_type] = self._tallies.get(entity_type, ItemTally()) + tally
        self._api_calls += outcome.api_calls
        self._rate_limit_waits += outcome.rate_limit_waits
        self._rate_limit_periods = merge_waits(
            (*self._rate_limit_periods, *outcome.rate_limit_periods)
        )
        self._legacy_operations.update(outcome.legacy_operations)

    async def _finish(self, status: BatchStatus) -> EnforcementSummary:
        summary = await workflow.execute_activity_method(
            EnforcementActivities.finish_batch,
            FinishBatch(
                batch_id=self._batch_id,
                plan_id=self._request.plan_id,
                account_id=self._request.account_id,
                status=status,
                started_at=self._started_at,
                api_calls=self._api_calls,
                rate_limit_waits=self._rate_limit_waits,
                rate_limit_wait_seconds=waited_seconds(self._rate_limit_periods),
                legacy_operations=tuple(sorted(self._legacy_operations)),
            ),
            start_to_close_timeout=timedelta(minutes=5),
            retry_policy=LEDGER_RETRY,
        )
        self._tallies = summary.tallies
        self._show_status(status)
        return summary

    async def _compensate(self, summary: EnforcementSummary) -> EnforcementSummary:
        """The saga: a rollback of this batch, as a child that outlives a terminated parent."""
        workflow.set_current_details(
            f"status: {self._status.value}; rolling back what the batch removed "
            f"({rollback_workflow_id(self._batch_id)})"
        )
        await workflow.execute_child_workflow(
            RollbackWorkflow.run,
            RollbackRequest(
                account_id=self._request.account_id,
                batch_id=self._batch_id,
                account_label=self._request.account_label,
            ),
            id=rollback_workflow_id(self._batch_id),
            parent_close_policy=ParentClosePolicy.ABANDON,
        )
        self._show_status(BatchStatus.ROLLED_BACK)
        return summary.model_copy(update={"status": BatchStatus.ROLLED_BACK})

    # Platform concerns ------------------------------------------------------------------

    def _show_status(self, status: BatchStatus, details: str | None = None) -> None:
        self._status = status
        workflow.upsert_search_attributes([ENFORCEMENT_STATUS.value_set(status.value)])
        workflow.set_current_details(
            details or _describe(self._tallies, self._layout.totals, status)
        )

    async def _set_status(self, status: BatchStatus) -> None:
        """The status everywhere a person looks: the query, the Web UI, the ledger."""
        if status is self._status:
            return
        self._show_status(status)
        await workflow.execute_activity_method(
            EnforcementActivities.record_status,
            BatchStatusChange(batch_id=self._batch_id, status=status),
            start_to_close_timeout=timedelta(minutes=1),
            retry_policy=LEDGER_RETRY,
        )

    def _checkpointed(self, next_chunk: int) -> EnforcementRequest:
        return self._request.model_copy(
            update={
                "checkpoint": EnforcementCheckpoint(
                    layout=self._layout,
                    next_chunk=next_chunk,
                    started_at=self._started_at,
                    tallies=self._tallies,
                    chunks_done=self._chunks_done,
                    api_calls=self._api_calls,
                    rate_limit_waits=self._rate_limit_waits,
                    rate_limit_periods=self._rate_limit_periods,
                    legacy_operations=tuple(sorted(self._legacy_operations)),
                    paused=self._paused,
                    cancelled=self._cancelled,
                    roll_back=self._roll_back,
                )
            }
        )

    def _restore(self, checkpoint: EnforcementCheckpoint) -> int:
        self._layout = checkpoint.layout
        self._started_at = checkpoint.started_at
        self._tallies = dict(checkpoint.tallies)
        self._chunks_done = checkpoint.chunks_done
        self._api_calls = checkpoint.api_calls
        self._rate_limit_waits = checkpoint.rate_limit_waits
        self._rate_limit_periods = checkpoint.rate_limit_periods
        self._legacy_operations = set(checkpoint.legacy_operations)
        self._paused = checkpoint.paused
        self._cancelled = checkpoint.cancelled
        self._roll_back = checkpoint.roll_back
        # A new run starts without a status of its own: the first one set is recorded.
        self._status = BatchStatus.PENDING
        return checkpoint.next_chunk

    def _eta_seconds(self) -> float | None:
        if self._chunks_done == 0:
            return None
        elapsed = (workflow.now() - self._started_at).total_seconds()
        return elapsed / self._chunks_done * (self._layout.chunks - self._chunks_done)


def _incomplete(summary: EnforcementSummary) -> bool:
    """An atomic batch is all or nothing: cancelled, or with an item that failed."""
    failed = sum(tally.failed for tally in summary.tallies.values())
    return summary.status is BatchStatus.CANCELLED or failed > 0


def _error_type(error: ActivityError) -> str | None:
    cause = error.cause
    return cause.type if isinstance(cause, ApplicationError) else None


def _describe(
    tallies: dict[EntityType, ItemTally], totals: dict[EntityType, int], status: BatchStatus
) -> str:
    """The Web UI's current details: where the batch stands, in a line per entity type."""
    lines = [f"status: {status.value}"]
    for entity_type, total in totals.items():
        done = tallies.get(entity_type, ItemTally())
        lines.append(
            f"{entity_type.value}: {done.completed} removed, {done.failed} failed, "
            f"{done.skipped} skipped of {total}"
        )
    return "\n".join(lines)
