"""What every group of activities that calls Spotify shares: the settings, the ledger,
the app-wide rate gate and (in tests) the HTTP transport; and how they refuse bad input
and count how items ended."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import timedelta
from typing import Any, Final

import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities._failures import activity_error
from activities._spotify_calls import REFUSED, RateGate, SpotifyCalls, gated_client
from enforcer.config import Settings
from enforcer.ledger import ActionItemRecord, Ledger
from enforcer.models import EntityType, ItemStatus, ItemTally
from enforcer.spotify import SpotifyClient

HEARTBEAT_EVERY: Final = timedelta(seconds=2)
"""How often a running activity tells Temporal it is alive. Workflows give activities a
heartbeat timeout of a few times this, so a dead worker's activity is retried on a
live one within seconds, not at its start-to-close timeout."""


class KeepAlive:
    """Heartbeats in the background while an activity works; ``beat`` also records
    details for the next attempt, and the background beats repeat them."""

    def __init__(self) -> None:
        self._details: tuple[Any, ...] = ()

    def beat(self, *details: Any) -> None:
        self._details = details
        activity.heartbeat(*details)

    async def beat_every(self, every: timedelta) -> None:
        while True:
            activity.heartbeat(*self._details)
            await asyncio.sleep(every.total_seconds())


@asynccontextmanager
async def kept_alive(every: timedelta = HEARTBEAT_EVERY) -> AsyncIterator[KeepAlive]:
    """Heartbeats every ``every`` for as long as the block runs."""
    keep_alive = KeepAlive()
    task = asyncio.create_task(keep_alive.beat_every(every))
    try:
        yield keep_alive
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


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

    def _client(
        self, account_id: str, traffic_owner: str | None = None
    ) -> AbstractAsyncContextManager[SpotifyClient]:
        """The account's client, every request of it behind the gate and counted in the
        ledger for ``traffic_owner`` (the batch or scan it works for)."""
        return gated_client(
            self._settings,
            self._ledger,
            account_id,
            self._gate,
            self._transport,
            traffic_owner=traffic_owner,
        )


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
