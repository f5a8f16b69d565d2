"""RollbackWorkflow: the compensating saga that undoes a batch, or chosen items of it.

It reads as the saga: check and record what to undo, put the playlists back (the
enforcement removed from them last), then the library, and write the summary. A
compensation that fails for good is recorded with its reason and the saga goes on.
The rollback is a batch of its own in the ledger (``rollback_of``); the workflow
carries only chunk numbers and counters.
"""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

from workflows.policies import LEDGER_RETRY, SPOTIFY_PATIENCE, SPOTIFY_RETRY

with workflow.unsafe.imports_passed_through():
    from activities._spotify_calls import REFUSED
    from activities.rollback import RollbackActivities
    from enforcer.models import (
        BatchStatus,
        BatchStatusChange,
        EntityType,
        FinishRollback,
        ItemTally,
        RestoreChunkFailure,
        RestoreChunkRequest,
        RestoreOutcome,
        RollbackLayout,
        RollbackProgress,
        RollbackRequest,
        RollbackSummary,
        StartRollback,
    )
    from workflows.connection import spotify_task_queue
    from workflows.search_attributes import ENFORCEMENT_ACCOUNT, ENFORCEMENT_STATUS

SELECTION_HASH_LENGTH = 16


def rollback_workflow_id(batch_id: str, item_keys: tuple[str, ...] | None = None) -> str:
    """``rollback/{batch}`` for a whole batch; ``rollback/{batch}/{hash}`` for chosen
    items, the hash the same whatever the order (or repetition) of the keys."""
    if item_keys is None:
        return f"rollback/{batch_id}"
    selection = "\n".join(sorted(set(item_keys))).encode()
    return f"rollback/{batch_id}/{hashlib.sha256(selection).hexdigest()[:SELECTION_HASH_LENGTH]}"


@workflow.defn
class RollbackWorkflow:
    def __init__(self) -> None:
        self._status = BatchStatus.PENDING
        self._layout = RollbackLayout(
            batch_id="", playlists=(), library_chunks=(), totals={}, nothing_to_undo=0
        )
        self._tallies: dict[EntityType, ItemTally] = {}
        self._chunks_done = 0
        self._api_calls = 0
        self._rate_limit_waits = 0
        self._rate_limit_wait_seconds = 0.0
        self._calls_found_applied = 0
        self._replans = 0
        self._cancelled = False
        self._in_flight = 0
        self._started_at = datetime.min.replace(tzinfo=UTC)

    @workflow.run
    async def run(self, request: RollbackRequest) -> RollbackSummary:
        self._request = request
        self._started_at = workflow.now()
        account = request.account_label or request.account_id
        workflow.upsert_search_attributes([ENFORCEMENT_ACCOUNT.value_set(account)])
        self._layout = await self._start()
        await self._set_status(BatchStatus.RUNNING)

        # The reverse of the enforcement: playlists (removed last) first, then the library.
        await self._restore_playlists()
        for chunk in self._layout.library_chunks:
            if self._cancelled:
                break
            await self._restore(self._chunk_request(chunk), playlist=False)

        status = BatchStatus.CANCELLED if self._cancelled else BatchStatus.COMPLETED
        summary = await self._finish(status)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return summary

    # Messages --------------------------------------------------------------------

    @workflow.signal
    def cancel(self) -> None:
        """No new compensations; those in flight finish; the rest end skipped, and the
        items they would have restored stay removed (a later rollback can do them)."""
        self._cancelled = True

    @workflow.query
    def progress(self) -> RollbackProgress:
        return RollbackProgress(
            batch_id=self._layout.batch_id or workflow.info().workflow_id,
            rollback_of=self._request.batch_id,
            status=self._status,
            totals=self._layout.totals,
            tallies=self._tallies,
            chunks_total=len(self._layout.playlists) + len(self._layout.library_chunks),
            chunks_done=self._chunks_done,
            api_calls=self._api_calls,
            started_at=self._started_at,
        )

    # The saga -------------------------------------------------------------------------

    async def _start(self) -> RollbackLayout:
        info = workflow.info()
        try:
            return await workflow.execute_activity_method(
                RollbackActivities.start_rollback,
                StartRollback(
                    rollback_id=info.workflow_id,
                    run_id=info.first_execution_run_id,
                    request=self._request,
                ),
                start_to_close_timeout=timedelta(minutes=10),
                retry_policy=LEDGER_RETRY,
            )
        except ActivityError as error:
            cause = error.cause
            if isinstance(cause, ApplicationError) and cause.type == REFUSED:
                # Bad input: the workflow fails with the reason itself, nothing changed.
                self._status = BatchStatus.FAILED
                workflow.upsert_search_attributes(
                    [ENFORCEMENT_STATUS.value_set(BatchStatus.FAILED.value)]
                )
                workflow.set_current_details(f"refused: {cause.message}")
                raise ApplicationError(cause.message, type=REFUSED, non_retryable=True) from None
            raise

    async def _restore_playlists(self) -> None:
        """A few playlists at once, in the order the layout gives."""
        tasks: list[asyncio.Task[None]] = []
        for playlist in self._layout.playlists:
            await workflow.wait_condition(
                lambda: self._cancelled or self._in_flight < self._request.max_in_flight
            )
            if self._cancelled:
                break
            self._in_flight += 1
            request = self._chunk_request(playlist.chunk, playlist.original_chunks)
            tasks.append(asyncio.create_task(self._restore_playlist(request)))
        if tasks:
            await asyncio.gather(*tasks)

    async def _restore_playlist(self, request: RestoreChunkRequest) -> None:
        try:
            await self._restore(request, playlist=True)
        finally:
            self._in_flight -= 1

    async def _restore(self, request: RestoreChunkRequest, *, playlist: bool) -> None:
        """One compensation; one that fails for good is recorded, and the saga goes on."""
        try:
            outcome = await workflow.execute_activity_method(
                RollbackActivities.restore_playlist
                if playlist
                else RollbackActivities.restore_library_chunk,
                request,
                task_queue=spotify_task_queue(workflow.info().task_queue),
                start_to_close_timeout=timedelta(minutes=30 if playlist else 2),
                # A playlist heartbeats before each of its calls: a dead worker is
                # noticed within a minute, not at the end of a long restoration.
                heartbeat_timeout=timedelta(minutes=1) if playlist else None,
                schedule_to_close_timeout=SPOTIFY_PATIENCE,
                retry_policy=SPOTIFY_RETRY,
            )
        except ActivityError as error:
            cause = error.cause if error.cause is not None else error
            outcome = await workflow.execute_activity_method(
                RollbackActivities.give_up_chunk,
                RestoreChunkFailure(chunk=request, error=str(cause)),
                start_to_close_timeout=timedelta(minutes=1),
                retry_policy=LEDGER_RETRY,
            )
        self._count(outcome)

    def _chunk_request(
        self, chunk: int, original_chunks: tuple[int, ...] = ()
    ) -> RestoreChunkRequest:
        return RestoreChunkRequest(
            batch_id=self._layout.batch_id,
            rollback_of=self._request.batch_id,
            account_id=self._request.account_id,
            chunk=chunk,
            original_chunks=original_chunks,
        )

    def _count(self, outcome: RestoreOutcome) -> None:
        self._chunks_done += 1
        for entity_type, tally in outcome.tallies.items():
            self._tallies[entity_type] = self._tallies.get(entity_type, ItemTally()) + tally
        self._api_calls += outcome.api_calls
        self._rate_limit_waits += outcome.rate_limit_waits
        self._rate_limit_wait_seconds += outcome.rate_limit_wait_seconds
        self._calls_found_applied += outcome.calls_found_applied
        self._replans += outcome.replans
        workflow.set_current_details(_describe(self._tallies, self._layout.totals, self._status))

    async def _finish(self, status: BatchStatus) -> RollbackSummary:
        summary = await workflow.execute_activity_method(
            RollbackActivities.finish_rollback,
            FinishRollback(
                batch_id=self._layout.batch_id,
                rollback_of=self._request.batch_id,
                account_id=self._request.account_id,
                status=status,
                started_at=self._started_at,
                nothing_to_undo=self._layout.nothing_to_undo,
                api_calls=self._api_calls,
                rate_limit_waits=self._rate_limit_waits,
                rate_limit_wait_seconds=self._rate_limit_wait_seconds,
                calls_found_applied=self._calls_found_applied,
                replans=self._replans,
            ),
            start_to_close_timeout=timedelta(minutes=5),
            retry_policy=LEDGER_RETRY,
        )
        self._status = status
        workflow.upsert_search_attributes([ENFORCEMENT_STATUS.value_set(status.value)])
        workflow.set_current_details(_describe_summary(summary))
        return summary

    async def _set_status(self, status: BatchStatus) -> None:
        """The status everywhere a person looks: the query, the Web UI, the ledger."""
        self._status = status
        workflow.upsert_search_attributes([ENFORCEMENT_STATUS.value_set(status.value)])
        workflow.set_current_details(_describe(self._tallies, self._layout.totals, status))
        await workflow.execute_activity_method(
            RollbackActivities.record_status,
            BatchStatusChange(batch_id=self._layout.batch_id, status=status),
            start_to_close_timeout=timedelta(minutes=1),
            retry_policy=LEDGER_RETRY,
        )


def _describe(
    tallies: dict[EntityType, ItemTally], totals: dict[EntityType, int], status: BatchStatus
) -> str:
    """The Web UI's current details: where the rollback stands, a line per entity type."""
    lines = [f"rollback status: {status.value}"]
    for entity_type, total in totals.items():
        done = tallies.get(entity_type, ItemTally())
        lines.append(
            f"{entity_type.value}: {done.completed} restored, {done.failed} failed, "
            f"{done.skipped} skipped of {total}"
        )
    return "\n".join(lines)


def _describe_summary(summary: RollbackSummary) -> str:
    lines = [f"rollback status: {summary.status.value}"]
    for entity_type, total in summary.totals.items():
        lines.append(
            f"{entity_type.value}: {summary.restored.get(entity_type, 0)} restored of {total}"
        )
    failed = len(summary.failed) + summary.failed_omitted
    inexact = len(summary.not_restored_exactly) + summary.not_restored_exactly_omitted
    lines.append(f"failed: {failed}; back without their dates: {inexact}")
    return "\n".join(lines)
