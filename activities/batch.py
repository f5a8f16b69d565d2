"""What every batch, enforcement or rollback, does in the ledger alone: take and give up
the account's turn, record its status, and read what its requests to Spotify did.

One writer per account: a batch writes to an account's library only while it holds the
account's turn (a ledger row, taken atomically). A batch that finds the turn held waits
and asks again; a holder whose batch has ended gives way. So does one whose workflow
closed without recording its end (terminated in the Web UI, timed out, or lost with a
server's history): the worker's Temporal client says so, and the ledger then records
the batch ended as Temporal ended it (``ENDED_AS``; its unfinished items end too), and
after ``TURN_HELD_AFTER_END`` (its activities have stopped by then) the turn is free. A
batch that ended without giving the turn up blocks no one for long.

A batch that ended cancelled asks Temporal, with the worker's client, to cancel its own
run (``request_cancellation``): only such a request makes an execution end Canceled.
Asking twice is harmless (Temporal's cancellation requests are idempotent).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Final

from pydantic import BaseModel, ConfigDict
from temporalio import activity
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from activities._base import HEARTBEAT_EVERY, SpotifyActivities
from enforcer.ledger import LedgerError
from enforcer.models import (
    TERMINAL_BATCH_STATUSES,
    AccountTurn,
    ApiTraffic,
    BatchOutcome,
    BatchStatus,
    BatchStatusChange,
    ChunkLanes,
    ChunkLanesRequest,
    ItemsBack,
    ItemStatus,
)

ENDED_AS: Final = {
    WorkflowExecutionStatus.CANCELED: (BatchStatus.CANCELLED, "its workflow was cancelled"),
    WorkflowExecutionStatus.FAILED: (BatchStatus.FAILED, "its workflow failed"),
    WorkflowExecutionStatus.TERMINATED: (BatchStatus.FAILED, "its workflow was terminated"),
    WorkflowExecutionStatus.TIMED_OUT: (BatchStatus.FAILED, "its workflow timed out"),
}
"""How a batch whose workflow closed without recording its end ends in the ledger, and
why (``Ledger.end_unended_batch``)."""
GONE: Final = (BatchStatus.FAILED, "its workflow ended, unknown to Temporal now")
"""A batch whose run Temporal no longer has (or that a later run under its ID replaced)."""
TURN_HELD_AFTER_END: Final = 5 * HEARTBEAT_EVERY
"""How long a batch that ended without giving up its account's turn (its workflow was
terminated) keeps it: a chunk activity of a closed workflow learns so at its next
heartbeat (every ``HEARTBEAT_EVERY``) and stops, and Temporal gives up on one that sends
none for 10 s (the Spotify activities' heartbeat timeout). A batch that ends normally
gives the turn up itself."""
_LATER_RUN: Final = re.compile(r"(?P<workflow_id>.+)#\d+")


def batch_workflow_id(batch_id: str) -> str:
    """The workflow a ledger batch is a run of: its ID, less a later run's ``#n``."""
    later = _LATER_RUN.fullmatch(batch_id)
    return later["workflow_id"] if later else batch_id


class ExecutionRun(BaseModel):
    """One run of a workflow execution."""

    model_config = ConfigDict(frozen=True)

    workflow_id: str
    run_id: str


class BatchActivities(SpotifyActivities):
    """The ledger-only activities every batch workflow shares."""

    def activities(self) -> Sequence[Callable[..., Any]]:
        return [
            self.take_turn,
            self.end_turn,
            self.record_status,
            self.chunk_lanes,
            self.batch_traffic,
            self.request_cancellation,
            self.batch_outcome,
        ]

    @activity.defn(name="take_account_turn")
    async def take_turn(self, turn: AccountTurn) -> str:
        """Gives the account's turn to ``turn.batch_id`` if no live batch holds it;
        returns the holder (the batch itself when it has the turn)."""
        holder = await self._ledger.take_turn(turn.account_id, turn.batch_id)
        if holder != turn.batch_id and await self._has_ended(holder):
            await self._ledger.give_up_turn(turn.account_id, holder)
            holder = await self._ledger.take_turn(turn.account_id, turn.batch_id)
        return holder

    async def _has_ended(self, batch_id: str) -> bool:
        """Whether the turn's holder ended long enough ago (``TURN_HELD_AFTER_END``) that
        nothing of it can be writing still."""
        try:
            batch = await self._ledger.batch(batch_id)
        except LedgerError:
            # Not in the ledger yet: a batch that has just taken the turn creates its
            # record next, before it writes anything. Alive while its workflow runs.
            return await self._closed_as(batch_id, None) is not None
        if batch.status not in TERMINAL_BATCH_STATUSES:
            ended = await self._closed_as(batch_id, batch.options.get("run_id"))
            if ended is not None:
                # Its end is recorded now: the turn is free TURN_HELD_AFTER_END from now.
                await self._ledger.end_unended_batch(batch_id, *ended)
            return False
        ended_at = batch.finished_at or batch.updated_at
        return datetime.now(UTC) - ended_at >= TURN_HELD_AFTER_END

    @staticmethod
    async def _closed_as(batch_id: str, first_run_id: str | None) -> tuple[BatchStatus, str] | None:
        """How the batch's workflow ended, if it has; None while it runs. A batch that
        names its first run (a rollback's later runs share one workflow ID) has ended
        when the running chain is another one."""
        handle = activity.client().get_workflow_handle(batch_workflow_id(batch_id))
        try:
            described = await handle.describe()
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND:
                return GONE
            raise
        if described.status == WorkflowExecutionStatus.RUNNING:
            running_chain = described.raw_description.workflow_execution_info.first_run_id
            if first_run_id and running_chain and running_chain != first_run_id:
                return GONE
            return None
        return ENDED_AS.get(described.status or WorkflowExecutionStatus.FAILED, GONE)

    @activity.defn(name="end_account_turn")
    async def end_turn(self, turn: AccountTurn) -> None:
        await self._ledger.give_up_turn(turn.account_id, turn.batch_id)

    @activity.defn(name="record_batch_status")
    async def record_status(self, change: BatchStatusChange) -> None:
        await self._ledger.set_batch_status(change.batch_id, change.status)

    @activity.defn(name="batch_chunk_lanes")
    async def chunk_lanes(self, request: ChunkLanesRequest) -> ChunkLanes:
        return await self._ledger.chunk_lanes(request.batch_id, request.first, request.count)

    @activity.defn(name="batch_traffic")
    async def batch_traffic(self, batch_id: str) -> ApiTraffic:
        return await self._ledger.traffic(batch_id)

    @activity.defn(name="request_batch_cancellation")
    async def request_cancellation(self, run: ExecutionRun) -> None:
        """Asks Temporal to cancel ``run``, as ``temporal workflow cancel`` would."""
        handle = activity.client().get_workflow_handle(run.workflow_id, run_id=run.run_id)
        await handle.cancel()

    @activity.defn(name="batch_outcome")
    async def batch_outcome(self, batch_id: str) -> BatchOutcome:
        """The batch's status in the ledger and how much of what it removed is back."""
        status = (await self._ledger.batch(batch_id)).status
        counts = await self._ledger.item_counts(batch_id)
        back = counts[ItemStatus.ROLLED_BACK]
        return BatchOutcome(
            status=status,
            items_back=ItemsBack(back=back, removed=back + counts[ItemStatus.COMPLETED]),
        )
