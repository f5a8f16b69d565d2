"""An account's schedule (``keep/{account}``): what its runs (``KeepEnforcedWorkflow``)
read of the ledger on their own (the blocklist they would plan with, what a batch they
started removed), and the pause a rollback puts on it.

The ledger reads only read, so running them twice is harmless; the pause is checked
first (a paused schedule is left as it is, with its note). Nothing carries a list across
Temporal: the blocklist is a hash and a count, a batch's removals counts by kind and by
artist.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any, Final

from temporalio import activity
from temporalio.service import RPCError, RPCStatusCode

from activities._base import SpotifyActivities, refusal_error
from enforcer.ledger import LedgerError
from enforcer.models import BlocklistState, PauseForRollback, RemovedCounts


def keep_schedule_id(account_label: str) -> str:
    """The account's one schedule; its runs are ``keep/{account}-{scheduled time}``."""
    return f"keep/{account_label}"


SCHEDULE_PREFIX: Final = keep_schedule_id("")
_NO_SCHEDULES: Final = (RPCStatusCode.NOT_FOUND, RPCStatusCode.UNIMPLEMENTED)
"""No such schedule; or a server that keeps none (the time-skipping test server)."""


class KeepActivities(SpotifyActivities):
    """The ledger reads of a scheduled run, and the pause a rollback puts on the schedule
    (through the worker's own Temporal client)."""

    def activities(self) -> Sequence[Callable[..., Any]]:
        return [self.blocklist_state, self.removed_counts, self.pause_for_rollback]

    @activity.defn(name="keep_blocklist_state")
    async def blocklist_state(self, account_id: str) -> BlocklistState:
        """A hash of the account's blocked artists (their IDs, sorted) and their count:
        a run waits until it stops changing, and plans again when it changed."""
        try:
            entries = await self._ledger.blocklist(account_id)
        except LedgerError as error:  # an unknown account: no retry makes it known
            raise refusal_error(str(error)) from error
        ids = sorted(entry.artist_id for entry in entries)
        digest = hashlib.sha256("\n".join(ids).encode()).hexdigest()[:32]
        return BlocklistState(fingerprint=digest, artists=len(ids))

    @activity.defn(name="keep_removed_counts")
    async def removed_counts(self, batch_id: str) -> RemovedCounts:
        return await self._ledger.removed_counts(batch_id)

    @activity.defn(name="keep_pause_for_rollback")
    async def pause_for_rollback(self, request: PauseForRollback) -> str | None:
        """Pauses the account's schedule, if it has one that runs: its next run would
        remove again what the rollback puts back. Returns the schedule's ID when it is
        paused now (by this rollback or before it), None when there is none. A schedule
        paused already keeps its note: a second attempt, or a person's pause, says more
        than this one would."""
        handle = activity.client().get_schedule_handle(keep_schedule_id(request.account_label))
        try:
            described = await handle.describe()
            if not described.schedule.state.paused:
                await handle.pause(
                    note=f"paused by the rollback {request.rollback_id}: a run would remove "
                    "again what it puts back; unpause once the blocklist is as you want it"
                )
        except RPCError as error:
            if error.status in _NO_SCHEDULES:
                return None
            raise
        return handle.id
