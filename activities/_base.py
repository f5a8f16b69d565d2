"""What every group of activities that calls Spotify shares: the settings, the ledger,
the app-wide rate gate and (in tests) the HTTP transport; and how they refuse bad input
and count how items ended."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager

import httpx
from temporalio.exceptions import ApplicationError

from activities._failures import activity_error
from activities._spotify_calls import REFUSED, RateGate, SpotifyCalls, gated_client
from enforcer.config import Settings
from enforcer.ledger import ActionItemRecord, Ledger
from enforcer.models import EntityType, ItemStatus, ItemTally
from enforcer.spotify import SpotifyClient


class SpotifyActivities:
    """A group of activities sharing one ledger, the settings and the rate gate."""

    def __init__(
        self,
        settings: Settings,
        ledger: Ledger,
        gate: RateGate,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._settings = settings
        self._ledger = ledger
        self._gate = gate
        self._transport = transport
        self._calls = SpotifyCalls(gate)

    def _client(self, account_id: str) -> AbstractAsyncContextManager[SpotifyClient]:
        """The account's client, every request of it behind the gate."""
        return gated_client(self._settings, self._ledger, account_id, self._gate, self._transport)


def tally_items(items: Sequence[ActionItemRecord]) -> dict[EntityType, ItemTally]:
    """The items' ends, counted per entity type."""
    tallies: dict[EntityType, ItemTally] = {}
    for item in items:
        done = ItemTally(
            completed=int(item.status is ItemStatus.COMPLETED),
            failed=int(item.status is ItemStatus.FAILED),
            skipped=int(item.status is ItemStatus.SKIPPED),
        )
        tallies[item.entity_type] = tallies.get(item.entity_type, ItemTally()) + done
    return tallies


def refusal_error(message: str) -> ApplicationError:
    """Bad input, refused for good: the workflow fails with ``message``, nothing changed."""
    return activity_error(message, type=REFUSED, non_retryable=True)
