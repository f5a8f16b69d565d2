"""RollbackWorkflow: the compensating saga that undoes a batch, or chosen items of it.

It reads as the saga: check and record what to undo, wait for the account's turn, put
the playlists back (the enforcement removed from them last), then the library, and
write the summary. A compensation that fails for good is recorded with its reason and
the saga goes on. The rollback is a batch of its own in the ledger (``rollback_of``);
the machinery it shares with the enforcement (fan-out, counting, status, controls,
continuing as new) is ``workflows.batch``, and it carries only chunk numbers and
counters.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

from workflows.batch import BatchWorkflow
from workflows.policies import LEDGER_RETRY

with workflow.unsafe.imports_passed_through():
    from activities import REFUSED
    from activities.keep import KeepActivities
    from activities.rollback import RollbackActivities
    from enforcer.models import (
        BatchKind,
        BatchStatus,
        ChunkOutcome,
        FinishRollback,
        ItemsBack,
        PauseForRollback,
        RestoreChunkFailure,
        RestoreChunkRequest,
        RollbackLayout,
        RollbackProgress,
        RollbackRequest,
        RollbackState,
        RollbackSummary,
        StartRollback,
    )

SELECTION_HASH_LENGTH = 16


def rollback_workflow_id(batch_id: str, item_keys: tuple[str, ...] | None = None) -> str:
    """``rollback/{batch}`` for a whole batch; ``rollback/{batch}/{hash}`` for chosen
    items, the hash the same whatever the order (or repetition) of the keys."""
    if item_keys is None:
        return f"rollback/{batch_id}"
    selection = "\n".join(sorted(set(item_keys))).encode()
    return f"rollback/{batch_id}/{hashlib.sha256(selection).hexdigest()[:SELECTION_HASH_LENGTH]}"


@workflow.defn
class RollbackWorkflow(BatchWorkflow[RollbackState]):
    _kind = BatchKind.ROLLBACK.value
    _done_word = "restored"
    # One activity restores a whole playlist; it heartbeats, so a dead worker is
    # noticed in seconds however long this allows.
    _chunk_start_to_close = timedelta(minutes=30)

    def __init__(self) -> None:
        super().__init__()
        self._state = RollbackState(batch_id=workflow.info().workflow_id)

    @workflow.run
    async def run(self, request: RollbackRequest) -> RollbackSummary:
        self._request = request
        self._account_id = request.account_id
        self._account_label = request.account_label or request.account_id
        self._max_in_flight = request.max_in_flight
        self._chunks_per_run = request.chunks_per_run
        return await self._to_the_end(self._roll_back(request))

    async def _roll_back(self, request: RollbackRequest) -> RollbackSummary:
        if request.state is None:
            self._state.rollback_of = request.batch_id
            self._state.started_at = workflow.now()
            self._show_account()
            layout = await self._start()
            self._state.batch_id = layout.batch_id
            self._state.layout = layout.layout
            self._state.nothing_to_undo = layout.nothing_to_undo
            if layout.layout.chunks:
                await self._pause_the_schedule()
            await self._take_turn()
        else:
            self._state = self._continue_from(request.state)

        summary = await self._finish(await self._carry_out())
        await self._end_turn()
        await workflow.wait_condition(workflow.all_handlers_finished)
        self._count_end()
        return summary

    def _next_run(self) -> RollbackRequest:
        return self._request.model_copy(update={"state": self._state})

    @workflow.query
    def progress(self) -> RollbackProgress:
        return self._progress()

    def _progress(self) -> RollbackProgress:
        return RollbackProgress(
            **self._standing(),
            rollback_of=self._state.rollback_of,
            started_at=self._state.started_at,
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
                heartbeat_timeout=timedelta(minutes=1),
                retry_policy=LEDGER_RETRY,
            )
        except ActivityError as error:
            cause = error.cause
            if isinstance(cause, ApplicationError) and cause.type == REFUSED:
                # Bad input: the workflow fails with the reason itself, nothing changed.
                message = cause.message
                self._show_status(BatchStatus.FAILED)
                workflow.set_current_details(f"refused: {message}")
                raise ApplicationError(message, type=REFUSED, non_retryable=True) from None
            raise

    async def _pause_the_schedule(self) -> None:
        """Before anything is put back: the account's schedule would remove it again."""
        self._state.schedule_paused = await workflow.execute_activity_method(
            KeepActivities.pause_for_rollback,
            PauseForRollback(account_label=self._account_label, rollback_id=self._state.batch_id),
            start_to_close_timeout=timedelta(minutes=1),
            retry_policy=LEDGER_RETRY,
        )
        self._show_details()

    def _chunk_at(self, position: int) -> int:
        """Playlists first (the enforcement removed from them last), then the library:
        the ledger numbers library chunks first, so the order wraps around."""
        layout = self._state.layout
        if position < layout.playlist_chunks:
            return layout.library_chunks + position
        return position - layout.playlist_chunks

    def _start_chunks(self, chunks: list[int]) -> workflow.ActivityHandle[ChunkOutcome]:
        # One chunk an activity (``_chunks_per_activity``): a playlist is one already.
        (chunk,) = chunks
        playlist = chunk >= self._state.layout.library_chunks
        return workflow.start_activity_method(
            RollbackActivities.restore_playlist
            if playlist
            else RollbackActivities.restore_library_chunk,
            self._chunk_request(chunk),
            **self._spotify_activity(),
        )

    async def _give_up_chunk(self, chunk: int, error: str) -> ChunkOutcome:
        return await workflow.execute_activity_method(
            RollbackActivities.give_up_chunk,
            RestoreChunkFailure(chunk=self._chunk_request(chunk), error=error),
            start_to_close_timeout=timedelta(minutes=1),
            retry_policy=LEDGER_RETRY,
        )

    def _chunk_request(self, chunk: int) -> RestoreChunkRequest:
        return RestoreChunkRequest(
            batch_id=self._state.batch_id,
            rollback_of=self._state.rollback_of,
            account_id=self._account_id,
            chunk=chunk,
        )

    async def _finish(self, status: BatchStatus) -> RollbackSummary:
        state = self._state
        assert state.started_at is not None
        summary = await workflow.execute_activity_method(
            RollbackActivities.finish_rollback,
            FinishRollback(
                batch_id=state.batch_id,
                rollback_of=state.rollback_of,
                account_id=self._account_id,
                status=status,
                started_at=state.started_at,
                nothing_to_undo=state.nothing_to_undo,
                calls_found_applied=state.calls_found_applied,
                replans=state.replans,
                schedule_paused=state.schedule_paused,
            ),
            start_to_close_timeout=timedelta(minutes=5),
            heartbeat_timeout=timedelta(minutes=1),
            retry_policy=LEDGER_RETRY,
        )
        state.traffic = summary.traffic
        state.items_back = summary.original_items_back
        self._show_status(status, searched_as=summary.original_status)
        return summary

    def _undone_line(self, items_back: ItemsBack) -> str:
        undid = self._link_to(self._state.rollback_of)
        return f"undid {undid}: {super()._undone_line(items_back)}"

    def _describe(self) -> str:
        described = super()._describe()
        if self._state.schedule_paused is None:
            return described
        return (
            f"{described}\n\nthe schedule `{self._state.schedule_paused}` is paused: its "
            "runs would remove again what this rollback puts back"
        )
