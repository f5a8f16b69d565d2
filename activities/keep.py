"""What a scheduled run (``KeepEnforcedWorkflow``) reads of the ledger on its own: the
blocklist it would plan with, and what a batch it started removed.

Both only read, so running them twice is harmless. Neither carries a list across
Temporal: the blocklist is a hash and a count, a batch's removals counts by kind and
by artist.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any

from temporalio import activity

from activities._base import SpotifyActivities, refusal_error
from enforcer.ledger import LedgerError
from enforcer.models import BlocklistState, RemovedCounts


class KeepActivities(SpotifyActivities):
    """The ledger reads of a scheduled run."""

    def activities(self) -> Sequence[Callable[..., Any]]:
        return [self.blocklist_state, self.removed_counts]

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
