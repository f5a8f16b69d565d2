"""What every group of activities that calls Spotify shares: the settings, the ledger,
the app-wide rate gate and the worker's warm Spotify clients (``WarmSpotify``: one
connection pool, one client per account; in tests over their own HTTP transport); how
they refuse bad input and count how items ended; a chunk's bookkeeping
(``_finish_chunk``: its items' ends, the answers its requests got, its tallies and the
batch's traffic in one ledger transaction); how a long activity stays alive
(``kept_alive``: heartbeats, and retry waits that start over after progress); and how
one that runs several chunks stops between two of them when asked (``until_stopped``)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import timedelta
from typing import Any, ClassVar, Final, TypeVar

import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import metrics
from activities._failures import activity_error
from activities._spotify_calls import (
    REFUSED,
    RateGate,
    SpotifyCalls,
    TrafficRecorder,
    WarmSpotify,
)
from enforcer.config import Settings
from enforcer.ledger import ChunkEnd, ItemMark, Ledger
from enforcer.models import TERMINAL_ITEM_STATUSES, ItemStatus
from enforcer.spotify import SpotifyClient

RETRY_AFTER_PROGRESS: Final = timedelta(milliseconds=250)
"""The wait before the next attempt of an activity whose attempt made progress and then
failed for a passing reason; doubled for each attempt since that made none (0.5 s, 1 s,
2 s... up to ``LONGEST_RETRY_WAIT``). Most 5xx pass within a second: a batch under 10%
5xx must not lose seconds on each; an outage still backs off to a minute in 8 attempts."""
LONGEST_RETRY_WAIT: Final = timedelta(minutes=1)
HEARTBEAT_EVERY: Final = timedelta(seconds=2)
"""How often a running activity tells Temporal it is alive. Workflows give activities a
heartbeat timeout of a few times this, so a dead worker's activity is retried on a
live one within seconds, not at its start-to-close timeout."""
_STREAK: Final = "attempts_without_progress"
T = TypeVar("T")


class KeepAlive:
    """Heartbeats in the background while an activity works; ``beat`` also records
    details for the next attempt, and the background beats repeat them. Until the first
    ``beat`` they repeat the previous attempt's details: an attempt that dies before it
    got anywhere must not erase where the one before it got to.

    The last heartbeat detail is the keep-alive's own: how many attempts in a row have
    failed without progress, from which the next retry's wait is reckoned."""

    def __init__(self, previous: Sequence[Any] = ()) -> None:
        details = list(previous)
        self.failed_without_progress = 0
        if details and isinstance(details[-1], dict) and set(details[-1]) == {_STREAK}:
            self.failed_without_progress = int(details.pop()[_STREAK])
        self._details: tuple[Any, ...] = tuple(details)
        self.progressed = False
        """Whether this attempt got anywhere (``beat`` marks each step forward)."""

    def beat(self, *details: Any) -> None:
        """One step forward: record ``details`` for the next attempt, and beat now."""
        self.progressed = True
        self.remember(*details)

    @property
    def details(self) -> tuple[Any, ...]:
        """The details recorded last: until this attempt records any, the previous
        attempt's (without the keep-alive's own)."""
        return self._details

    def remember(self, *details: Any) -> None:
        """Record ``details`` for the next attempt, and beat now, without a step forward."""
        self._details = details
        self._send()

    def retry_wait(self) -> timedelta:
        """After a passing failure of this attempt: how long before the next one."""
        streak = 0 if self.progressed else self.failed_without_progress + 1
        self.failed_without_progress = streak
        self._send()
        return min(RETRY_AFTER_PROGRESS * (1 << min(streak, 16)), LONGEST_RETRY_WAIT)

    def _send(self) -> None:
        activity.heartbeat(*self._details, {_STREAK: self.failed_without_progress})

    async def beat_every(self, every: timedelta) -> None:
        while True:
            self._send()
            await asyncio.sleep(every.total_seconds())


@asynccontextmanager
async def kept_alive(every: timedelta = HEARTBEAT_EVERY) -> AsyncIterator[KeepAlive]:
    """Heartbeats every ``every`` for as long as the block runs.

    A passing failure (a 5xx, a timeout) is retried after a wait that starts again at
    ``RETRY_AFTER_PROGRESS`` whenever an attempt made progress, rather than the retry
    policy's backoff, which grows with every attempt: a long restoration under
    occasional 5xx must not wait a minute between steps that each succeed."""
    keep_alive = KeepAlive(activity.info().heartbeat_details)
    task = asyncio.create_task(keep_alive.beat_every(every))
    try:
        yield keep_alive
    except ApplicationError as error:
        if _backs_off(error):
            raise activity_error(
                error.message, type=error.type or "Error", next_retry_delay=keep_alive.retry_wait()
            ) from None
        raise
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def until_stopped(
    work: Callable[[asyncio.Event], Coroutine[Any, Any, T]],
    *,
    run_at_most: timedelta | None = None,
) -> T:
    """Runs ``work(stop)`` and returns what it returns. A cancellation of the activity
    (the workflow's, on a pause or a cancel; or the worker's, shutting down) does not
    interrupt it: it sets ``stop``, which ``work`` checks between two steps, and the
    activity completes with what was done (a step half done would leave a request
    unanswered, and its items to be sent again). ``run_at_most``: ``stop`` is set then
    too, and the caller hands back the steps it has not begun."""
    stop = asyncio.Event()
    task = asyncio.create_task(work(stop))
    timer = (
        None
        if run_at_most is None
        else asyncio.get_running_loop().call_later(run_at_most.total_seconds(), stop.set)
    )
    try:
        while True:
            try:
                return await asyncio.shield(task)
            except asyncio.CancelledError:
                if task.done():
                    raise
                stop.set()
                # Python 3.11+: without uncancel, the next await would raise again at once.
                current = asyncio.current_task()
                if current is not None:
                    current.uncancel()
    finally:
        if timer is not None:
            timer.cancel()


def _backs_off(error: ApplicationError) -> bool:
    """Retried by the policy's backoff: neither refused for good nor given its own wait."""
    return not error.non_retryable and error.next_retry_delay is None


class SpotifyActivities:
    """A group of activities sharing one ledger, the settings, the rate gate and the
    worker's warm clients (``spotify``: one per worker process, which closes it; without
    it the group makes its own over ``transport``, closed by ``aclose``)."""

    _completed_items: ClassVar[metrics.Metric | None] = None
    """The metric counting the items its chunks complete (removed, restored)."""

    def __init__(
        self,
        settings: Settings,
        ledger: Ledger,
        gate: RateGate,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        spotify: WarmSpotify | None = None,
    ) -> None:
        self._settings = settings
        self._ledger = ledger
        self._gate = gate
        self._own_spotify = spotify is None
        self._spotify = (
            WarmSpotify(settings, ledger, gate, transport) if spotify is None else spotify
        )
        self._calls = SpotifyCalls(gate)

    def _client(
        self,
        account_id: str,
        traffic_owner: str | None = None,
        *,
        traffic: TrafficRecorder | None = None,
    ) -> AbstractAsyncContextManager[SpotifyClient]:
        """The account's client, every request of it behind the gate and counted in the
        ledger for ``traffic_owner`` (the batch or scan it works for), or by ``traffic``
        (a recorder whose answers ``_finish_chunk`` writes)."""
        return self._spotify.client(account_id, traffic_owner, traffic=traffic)

    async def aclose(self) -> None:
        """Closes the clients this group made itself (none when given ``spotify``)."""
        if self._own_spotify:
            await self._spotify.aclose()

    def _chunk_traffic(self, batch_id: str) -> TrafficRecorder:
        """A recorder of the batch's requests whose answers wait for ``_finish_chunk``
        (each request is still counted sent before it leaves)."""
        return TrafficRecorder(self._ledger, batch_id, defer_answers=True)

    async def _finish_chunk(
        self,
        batch_id: str,
        chunk: int,
        marks: Sequence[ItemMark] = (),
        traffic: TrafficRecorder | None = None,
        *,
        claim: int | None = None,
    ) -> ChunkEnd:
        """The chunk's items' ``marks`` and the answers ``traffic`` holds, written in
        one transaction, which also reads the chunk's tallies and the batch's traffic
        and claims the chunk ``claim`` if given."""
        calls = traffic.answers() if traffic is not None else {}
        end = await self._ledger.finish_chunk(batch_id, chunk, marks, calls=calls, claim=claim)
        if traffic is not None:
            traffic.answers_written(calls)
        if self._completed_items is not None:
            metrics.items_ended(self._completed_items, end.newly_completed)
        return end

    async def _give_up(self, batch_id: str, chunk: int, error: str) -> ChunkEnd:
        """Ends the chunk's unfinished items failed with ``error`` (its activity failed
        for good); the ends already recorded stay."""
        items = await self._ledger.chunk_items(batch_id, chunk)
        unfinished = tuple(i.key for i in items if i.status not in TERMINAL_ITEM_STATUSES)
        marks = [ItemMark(batch_id, unfinished, ItemStatus.FAILED, error=error)]
        return await self._finish_chunk(batch_id, chunk, marks if unfinished else ())


def refusal_error(message: str) -> ApplicationError:
    """Bad input, refused for good: the workflow fails with ``message``, nothing changed."""
    return activity_error(message, type=REFUSED, non_retryable=True)
