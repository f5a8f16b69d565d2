"""What every batch, enforcement or rollback, does in the ledger alone: take and give up
the account's turn, record its status, and read what its requests to Spotify did.

One writer per account: a batch writes to an account's library only while it holds the
account's turn (a ledger row, taken atomically). A batch that finds the turn held waits
and asks again; a holder whose batch has ended gives way, so a batch that ended without
giving the turn up (its workflow was terminated) blocks no one for long.

A batch that ended cancelled asks Temporal, with the worker's client, to cancel its own
run (``request_cancellation``): only such a request makes an execution end Canceled.
Asking twice is harmless (Temporal's cancellation requests are idempotent).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict
from temporalio import activity

from activities._base import SpotifyActivities
from enforcer.ledger import LedgerError
from enforcer.models import (
    TERMINAL_BATCH_STATUSES,
    AccountTurn,
    ApiTraffic,
    BatchOutcome,
    BatchStatusChange,
    ChunkLanes,
    ChunkLanesRequest,
    ItemsBack,
    ItemStatus,
)


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
        try:
            batch = await self._ledger.batch(batch_id)
        except LedgerError:
            # Not in the ledger yet: a batch that has just taken the turn creates its
            # record next. It is alive.
            return False
        return batch.status in TERMINAL_BATCH_STATUSES

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
