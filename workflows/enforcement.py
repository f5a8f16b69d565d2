"""EnforcementWorkflow: one durable batch per plan, fanned out in chunks cut to Spotify's limits.

It reads as the business process: create the batch, wait for the account's turn,
remove chunk after chunk (a few at once, each playlist's in order), then write the
summary and, when asked, undo it all. The machinery it shares with the rollback
(fan-out, counting, status, controls, continuing as new) is ``workflows.batch``. The
workflow carries only references and counters; the items live in the ledger.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Final

from temporalio import workflow
from temporalio.common import RawValue
from temporalio.exceptions import CancelledError, ChildWorkflowError
from temporalio.workflow import ActivityCancellationType, ParentClosePolicy

from workflows.batch import BatchWorkflow
from workflows.policies import LEDGER_RETRY

with workflow.unsafe.imports_passed_through():
    from activities.batch import BatchActivities
    from activities.enforcement import EnforcementActivities
    from enforcer.markdown import rollback_details, rollback_summary
    from enforcer.models import (
        BatchKind,
        BatchState,
        BatchStatus,
        ChunkFailure,
        ChunkLayout,
        ChunkOutcome,
        ChunkRequest,
        ChunksRequest,
        EnforcementProgress,
        EnforcementRequest,
        EnforcementSummary,
        FinishBatch,
        ItemsBack,
        RollbackRequest,
        RollbackSummary,
        StartBatch,
    )
    from workflows.rollback import RollbackWorkflow, rollback_workflow_id


def enforcement_workflow_id(account_id: str, plan_id: str) -> str:
    """The idempotency key of an enforcement: one batch per account and plan."""
    return f"enforce/{account_id}/{plan_id}"


CHUNKS_PER_ACTIVITY: Final = 10
"""Chunks (one Spotify call each) one activity removes, one after another: about 6
history events for 10 calls instead of about 5 for each."""


@workflow.defn
class EnforcementWorkflow(BatchWorkflow[BatchState]):
    _kind = BatchKind.ENFORCE.value
    _done_word = "removed"
    _chunks_per_activity = CHUNKS_PER_ACTIVITY

    def __init__(self) -> None:
        super().__init__()
        self._state = BatchState(batch_id=workflow.info().workflow_id)

    @workflow.run
    async def run(self, request: EnforcementRequest) -> EnforcementSummary:
        self._request = request
        self._account_id = request.account_id
        self._account_label = request.account_label or request.account_id
        self._max_in_flight = request.max_in_flight
        self._chunks_per_run = request.chunks_per_run
        return await self._to_the_end(self._enforce(request))

    async def _enforce(self, request: EnforcementRequest) -> EnforcementSummary:
        if request.state is None:
            self._state.started_at = workflow.now()
            self._show_account()
            await self._start_batch()
            if await self._take_turn():
                self._state.layout = await self._prepare_batch()
        else:
            self._state = self._continue_from(request.state)

        summary = await self._finish(await self._carry_out())
        await self._end_turn()
        if self._state.roll_back or (request.atomic and _incomplete(summary)):
            summary = await self._compensate(summary)
        await workflow.wait_condition(workflow.all_handlers_finished)
        self._count_end()
        return summary

    # Messages only an enforcement takes --------------------------------------------------

    @workflow.signal
    def rollback(self, *unexpected: RawValue) -> None:
        """Stops the batch as ``cancel`` does, then undoes everything it removed."""
        if not self._rejected_signal("rollback", unexpected):
            self._roll_back()

    @workflow.update(name="rollback")
    async def rollback_update(self, *unexpected: RawValue) -> BatchStatus:
        self._roll_back()
        return self._state.status

    @rollback_update.validator
    def _validate_rollback(self, *unexpected: RawValue) -> None:
        self._refuse_arguments("rollback", unexpected)

    def _roll_back(self) -> None:
        self._state.cancelled = True
        self._state.roll_back = True

    def _next_run(self) -> EnforcementRequest:
        return self._request.model_copy(update={"state": self._state})

    def _signal_names(self) -> set[str]:
        return {*super()._signal_names(), "rollback"}

    @workflow.query
    def progress(self) -> EnforcementProgress:
        return self._progress()

    def _progress(self) -> EnforcementProgress:
        state = self._state
        return EnforcementProgress(
            **self._standing(),
            plan_id=self._request.plan_id,
            started_at=state.started_at if state.layout.chunks else None,
            eta_seconds=self._eta_seconds(),
        )

    # The batch -----------------------------------------------------------------------

    async def _start_batch(self) -> None:
        await workflow.execute_activity_method(
            EnforcementActivities.start_batch,
            StartBatch(batch_id=self._state.batch_id, request=self._request),
            start_to_close_timeout=timedelta(minutes=1),
            retry_policy=LEDGER_RETRY,
        )

    async def _prepare_batch(self) -> ChunkLayout:
        return await workflow.execute_activity_method(
            EnforcementActivities.prepare_batch,
            StartBatch(batch_id=self._state.batch_id, request=self._request),
            start_to_close_timeout=timedelta(minutes=10),
            heartbeat_timeout=timedelta(minutes=1),
            retry_policy=LEDGER_RETRY,
        )

    def _start_chunks(self, chunks: list[int]) -> workflow.ActivityHandle[ChunkOutcome]:
        return workflow.start_activity_method(
            EnforcementActivities.apply_chunks,
            ChunksRequest(
                batch_id=self._state.batch_id, account_id=self._account_id, chunks=tuple(chunks)
            ),
            # Cancelled on a pause or a cancel, it ends the chunk in hand and completes
            # with what it did: the workflow waits for that answer.
            cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
            **self._spotify_activity(),
        )

    async def _give_up_chunk(self, chunk: int, error: str) -> ChunkOutcome:
        return await workflow.execute_activity_method(
            EnforcementActivities.give_up_chunk,
            ChunkFailure(chunk=self._chunk_request(chunk), error=error),
            start_to_close_timeout=timedelta(minutes=1),
            retry_policy=LEDGER_RETRY,
        )

    def _chunk_request(self, chunk: int) -> ChunkRequest:
        return ChunkRequest(batch_id=self._state.batch_id, account_id=self._account_id, chunk=chunk)

    async def _finish(self, status: BatchStatus) -> EnforcementSummary:
        state = self._state
        assert state.started_at is not None
        summary = await workflow.execute_activity_method(
            EnforcementActivities.finish_batch,
            FinishBatch(
                batch_id=state.batch_id,
                plan_id=self._request.plan_id,
                account_id=self._account_id,
                status=status,
                started_at=state.started_at,
                legacy_operations=state.legacy_operations,
            ),
            start_to_close_timeout=timedelta(minutes=5),
            heartbeat_timeout=timedelta(minutes=1),
            retry_policy=LEDGER_RETRY,
        )
        state.tallies = dict(summary.tallies)
        state.traffic = summary.traffic
        self._show_status(status)
        return summary

    async def _compensate(self, summary: EnforcementSummary) -> EnforcementSummary:
        """The saga: a rollback of this batch, as a child that outlives a terminated
        parent. It takes the account's turn itself, so this batch gave it up first."""
        rollback_id = rollback_workflow_id(self._state.batch_id)
        self._state.rollback_id = rollback_id
        self._state.waiting_for = (
            f"the rollback {self._link_to(rollback_id)} to undo what this batch removed"
        )
        self._show_details()
        removed = {kind: tally.completed for kind, tally in self._state.tallies.items()}
        try:
            undone: RollbackSummary = await workflow.execute_child_workflow(
                RollbackWorkflow.run,
                RollbackRequest(
                    account_id=self._account_id,
                    batch_id=self._state.batch_id,
                    account_label=self._request.account_label,
                ),
                id=rollback_id,
                parent_close_policy=ParentClosePolicy.ABANDON,
                # Shown by the Web UI only: not part of what replay compares.
                static_summary=rollback_summary(self._account_id, self._state.batch_id, removed),
                static_details=rollback_details(
                    namespace=workflow.info().namespace,
                    batch_id=self._state.batch_id,
                    account_id=self._account_id,
                    counts=removed,
                ),
            )
            items_back, status = undone.original_items_back, undone.original_status
        except ChildWorkflowError as error:
            if not isinstance(error.cause, CancelledError):
                raise
            # The rollback was cancelled (it ended Canceled, without a result): what it
            # put back before that is in the ledger.
            outcome = await workflow.execute_activity_method(
                BatchActivities.batch_outcome,
                self._state.batch_id,
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=LEDGER_RETRY,
            )
            items_back, status = outcome.items_back, outcome.status
        self._state.waiting_for = None
        self._state.items_back = items_back
        undone_any = status in (BatchStatus.ROLLED_BACK, BatchStatus.PARTLY_ROLLED_BACK)
        ended = status if status is not None and undone_any else summary.status
        self._show_status(ended)
        return summary.model_copy(update={"status": ended, "rolled_back_by": rollback_id})

    def _undone_line(self, items_back: ItemsBack) -> str:
        rolled_back_by = self._link_to(self._state.rollback_id or "")
        return f"rolled back by {rolled_back_by}: {super()._undone_line(items_back)}"

    def _eta_seconds(self) -> float | None:
        """Time left, while the batch runs on: none paused, cancelled or ended."""
        state = self._state
        if (
            state.chunks_done == 0
            or state.started_at is None
            or state.cancelled
            or state.status is not BatchStatus.RUNNING
        ):
            return None
        elapsed = (workflow.now() - state.started_at).total_seconds()
        return elapsed / state.chunks_done * (state.layout.chunks - state.chunks_done)


def _incomplete(summary: EnforcementSummary) -> bool:
    """An atomic batch is all or nothing: cancelled, or with an item that failed."""
    failed = sum(tally.failed for tally in summary.tallies.values())
    return summary.status is BatchStatus.CANCELLED or failed > 0
