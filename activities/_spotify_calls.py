"""How every activity talks to Spotify: behind the app-wide gate, errors made Temporal's.

A 429 closes the gate until its Retry-After has passed, for every activity of the app:
at once in this worker's memory, and in the ledger for every other worker. The gate is
checked right before each request leaves (``GatedTransport``), so no request is sent
during a penalty, not even one of a chunk that started before it. The refusal becomes
``ApplicationError(type="RateLimited", next_retry_delay=...)``, so Temporal waits out
the penalty durably (hours, for a daily quota). Errors a retry cannot mend are
non-retryable; transient ones back off per the retry policy; a Spotify that cannot be
reached at all is ``SpotifyUnreachable``, naming the address tried, and backs off too.

The gate's cost and its bound (measured, 400 checks 4 at once, on this 2-core machine
under a load of ~10: a read of the gate row took 17 ms on average on SQLite, 26 ms on
PostgreSQL; ``PRAGMA data_version`` 11 ms, no cheaper, being a round trip through the
same driver thread, and it moves with every commit of any table (each request's count
is one); a check in memory 0.03 ms). So a worker checks its memory before every
request, and reads the ledger's row only when its last reading is older than
``LEDGER_GATE_FRESH_FOR`` (20 ms), one reading shared by every request that waits for
it; a penalty found there is kept in memory until it ends. A 429 closes this worker's
memory first, before any bookkeeping, then the ledger's row.
Worst case across workers: another worker may still send during (the closing worker's
write of the row) + 20 ms + (its own reading of the row) after the 429 arrived. The
sandbox counts a request that arrives within its in-flight grace (50 ms after the 429's
answer, docs/sandbox.md) as ``in_flight_violations``, not as a violation, so the rule
holds while that write and that reading take 30 ms together; a database slower than
that can let one request per other worker through, as reading before every request
could (its reading, then the request's own count in the ledger, came before the
request left). PostgreSQL ``LISTEN/NOTIFY`` would tell other workers within a
millisecond of the write, but only on PostgreSQL: not used.

One connection pool and one client per account serve every activity of a worker
(``WarmSpotify``): whom a request is counted for is the running activity's choice, a
context variable, not the client's.

Whatever else an activity raises becomes small on its way to Temporal (``CompactFailures``,
on every worker; see ``activities._failures``): a Spotify error raised outside
``SpotifyCalls`` (opening the client, say) gets the same type it would have inside.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta
from typing import Any, Final, TypeVar

import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError, FailureError
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor

from activities import metrics
from activities._failures import activity_error, compact
from activities._fair_line import FairLine, NoTurn
from enforcer.config import Settings
from enforcer.ledger import Ledger
from enforcer.models import HELD_BACK, SENT, WITHDRAWN
from enforcer.session import SpotifyClients
from enforcer.spotify import ENDPOINT_EXTENSION, SpotifyClient, retry_after_seconds
from enforcer.spotify.errors import (
    BadRequest,
    EndpointGone,
    Forbidden,
    InvalidIdentifier,
    LoginRequired,
    NotFound,
    RateLimited,
    SpotifyError,
    SpotifyUnreachable,
    TransientError,
)

T = TypeVar("T")

_log = logging.getLogger(__name__)

RATE_LIMITED: Final = "RateLimited"
LOGIN_REQUIRED: Final = "LoginRequired"
REFUSED: Final = "Refused"
"""Spotify refused the request for good (400, 403, 404, 410): retrying cannot help."""
SPOTIFY_UNREACHABLE: Final = "SpotifyUnreachable"
"""No connection to Spotify could be made; the message names the address tried."""
SPOTIFY_TRANSIENT: Final = "TransientError"
"""A 5xx, a timeout or a dropped connection: backs off per the retry policy."""
NON_RETRYABLE_ERROR_TYPES: Final = (LOGIN_REQUIRED, REFUSED)

# Temporal treats a zero delay as "use the retry policy": Spotify's Retry-After of 0
# still means "not this instant".
_SHORTEST_WAIT: Final = timedelta(seconds=1)
_QUOTA_EXCEEDED: Final = "QUOTA_EXCEEDED"


def utc_now() -> datetime:
    return datetime.now(UTC)


class GateClosed(Exception):
    """The app is serving a rate-limit penalty: the request was not sent."""

    def __init__(self, until: datetime, reason: str) -> None:
        self.until = until
        self.reason = reason
        super().__init__(f"Spotify: {reason}; no request before {until:%Y-%m-%d %H:%M:%S} UTC")


LEDGER_GATE_FRESH_FOR: Final = timedelta(milliseconds=20)
"""How long a worker trusts its last reading of the ledger's gate row (see the module's
docstring: the in-flight grace this must stay well under)."""


class RateGate:
    """The app-wide rate-limit gate: this worker's memory in front of the ledger's row.

    ``check`` reads the ledger at most once per ``fresh_for`` (one reading shared by
    every request waiting for it), timed from when the reading started; a penalty it
    finds is kept in memory until it ends, with no reading meanwhile."""

    def __init__(
        self,
        ledger: Ledger,
        app_id: str,
        *,
        clock: Callable[[], datetime] = utc_now,
        fresh_for: timedelta = LEDGER_GATE_FRESH_FOR,
    ) -> None:
        self._ledger = ledger
        self._app_id = app_id
        self.clock = clock
        self._fresh_for = fresh_for.total_seconds()
        self._closed_until: datetime | None = None
        self._reason = ""
        self._read_at = -math.inf  # time.monotonic() when the last reading started
        self._reading: asyncio.Future[None] | None = None
        self.ledger_reads = 0
        """How many times this gate read the ledger (for measuring the hot path)."""

    async def check(self) -> None:
        """Raises ``GateClosed`` while a penalty runs, here or on any other worker."""
        self.check_here()
        if time.monotonic() - self._read_at >= self._fresh_for:
            await self._read_the_ledger()
            # A penalty found in the ledger, or a 429 of this worker's meanwhile.
            self.check_here()

    def penalty_ends(self) -> datetime | None:
        """When the penalty this worker knows of ends; None when it knows of none (no I/O)."""
        if self._closed_until is None or self._closed_until <= self.clock():
            return None
        return self._closed_until

    def check_here(self) -> None:
        """Raises ``GateClosed`` while this worker knows of a penalty (no I/O, no await:
        nothing else can run between this check and what follows it)."""
        self._raise_if_closed(self._closed_until, self._reason)

    async def close(self, wait: timedelta, reason: str, *, measured: bool = True) -> datetime:
        """Closes the gate for ``wait``; returns when it opens (a longer penalty wins).
        ``measured``: counted in the metrics (closures, seconds added) unless the caller
        closes it again for a 429 already counted."""
        now = self.clock()
        until = now + max(wait, _SHORTEST_WAIT)
        closed_until = self._closed_until if self._closed_until is not None else now
        # Memory first, with no await before it: requests of this worker stop now.
        self._remember(until, reason)
        if measured:
            metrics.gate_closed(
                was_open=closed_until <= now,
                added_seconds=(until - max(closed_until, now)).total_seconds(),
            )
        gate = await self._ledger.close_gate(self._app_id, until, reason)
        return gate.blocked_until or until

    async def _read_the_ledger(self) -> None:
        """One reading at a time: a request that finds one under way waits for it."""
        if self._reading is None:
            self._reading = asyncio.ensure_future(self._read())
            self._reading.add_done_callback(self._read_done)
        # Shielded: a cancelled request must not cancel the others' reading.
        await asyncio.shield(self._reading)

    def _read_done(self, reading: asyncio.Future[None]) -> None:
        if self._reading is reading:
            self._reading = None
        if not reading.cancelled():
            reading.exception()  # retrieved: each waiter raised it already

    async def _read(self) -> None:
        started = time.monotonic()
        self.ledger_reads += 1
        gate = await self._ledger.gate(self._app_id)
        if gate.blocked_until is not None:
            self._remember(gate.blocked_until, gate.reason or "rate limited")
        self._read_at = started

    def _remember(self, until: datetime, reason: str) -> None:
        if self._closed_until is None or until > self._closed_until:
            self._closed_until, self._reason = until, reason

    def _raise_if_closed(self, until: datetime | None, reason: str) -> None:
        if until is not None and until > self.clock():
            raise GateClosed(until, reason)


class TrafficRecorder:
    """Counts one owner's (a batch's, a scan's) requests in the ledger as they happen:
    ``sent`` before a request leaves, its status once answered, ``held_back`` when the
    gate kept it in, and every wait a 429 imposed. A worker killed mid-request leaves
    that request counted as sent, as Spotify counted it.

    With ``defer_answers`` the statuses wait in memory (``answers``) for the caller to
    write them with its own bookkeeping (a chunk's outcome, in one transaction), or for
    ``flush`` when the client closes; ``sent`` is never deferred."""

    def __init__(self, ledger: Ledger, owner_id: str, *, defer_answers: bool = False) -> None:
        self._ledger = ledger
        self.owner_id = owner_id
        self._defer_answers = defer_answers
        self._answers: Counter[tuple[str, str]] = Counter()

    async def sent(self, endpoint: str) -> None:
        await self._ledger.count_calls(self.owner_id, {(endpoint, SENT): 1})

    async def withdrawn(self, endpoint: str, now: datetime, until: datetime) -> None:
        """Counted as sent, then held back after all: the gate closed meanwhile."""
        await self._ledger.count_calls(self.owner_id, {(endpoint, WITHDRAWN): 1})
        await self.held_back(endpoint, now, until)

    async def answered(self, endpoint: str, status: int) -> None:
        if self._defer_answers:
            self._answers[(endpoint, str(status))] += 1
            return
        await self._ledger.count_calls(self.owner_id, {(endpoint, str(status)): 1})

    def answers(self) -> dict[tuple[str, str], int]:
        """The statuses counted and not yet written (with ``defer_answers``)."""
        return {outcome: count for outcome, count in self._answers.items() if count > 0}

    def answers_written(self, counts: Mapping[tuple[str, str], int]) -> None:
        """``counts`` (from ``answers``) are in the ledger now."""
        self._answers.subtract(counts)

    async def flush(self) -> None:
        """Writes the statuses still waiting in memory."""
        counts = self.answers()
        if counts:
            await self._ledger.count_calls(self.owner_id, counts)
            self.answers_written(counts)

    async def held_back(self, endpoint: str, now: datetime, until: datetime) -> None:
        await self._ledger.count_calls(self.owner_id, {(endpoint, HELD_BACK): 1})
        await self.waited(now, until)

    async def waited(self, start: datetime, end: datetime) -> None:
        if end > start:
            await self._ledger.record_wait(self.owner_id, start, end)


class _Departure:
    """Counts one request as sent at the last moment before its first byte leaves.

    httpcore calls ``trace`` as it is about to write the request's headers: the gate is
    checked here once more (a 429 may have closed it while the connection was made), the
    request is counted in the ledger, and the write follows with no I/O in between. A
    worker killed before that count leaves nothing counted and nothing sent; one killed
    after it leaves the request counted and, within microseconds, sent: the count can
    exceed what Spotify saw only by a kill landing between the count and the write. A
    connection that could not be made at all counts nothing.
    """

    def __init__(self, gate: RateGate, traffic: TrafficRecorder, endpoint: str, label: str) -> None:
        self._gate = gate
        self._traffic = traffic
        self._endpoint = endpoint
        self._label = label
        self._counted = False  # as sent, or as held back at the last moment

    async def trace(self, event: str, info: dict[str, Any]) -> None:
        if self._counted or not event.endswith("send_request_headers.started"):
            return
        try:
            self._gate.check_here()
        except GateClosed as closed:
            self._counted = True
            await self._traffic.held_back(self._endpoint, self._gate.clock(), closed.until)
            raise
        await self._traffic.sent(self._endpoint)
        self._counted = True
        try:
            # The gate may have closed while the count was written.
            self._gate.check_here()
        except GateClosed as closed:
            await self._traffic.withdrawn(self._endpoint, self._gate.clock(), closed.until)
            raise
        metrics.request_left(self._label)

    async def answered(self) -> None:
        """An answer came, so the request left: counted here if no trace saw it go (a
        transport without httpcore's trace: tests' in-process ones)."""
        if not self._counted:
            self._counted = True
            await self._traffic.sent(self._endpoint)
            metrics.request_left(self._label)


_TRAFFIC: ContextVar[TrafficRecorder | None] = ContextVar("spotify_traffic", default=None)
"""Whom the requests of the running activity are counted for: set per activity by
``WarmSpotify.client``, so that one warm client serves activities of many batches."""
_ACCOUNT: ContextVar[str] = ContextVar("spotify_account", default="")
"""Whose turn in the fair line the running activity's requests take (``WarmSpotify.client``)."""


class GatedTransport(httpx.AsyncBaseTransport):
    """Gives every Web API request its account's turn in the fair line, checks the gate
    before it leaves, closes the gate on every 429; counts what it lets through and what
    it holds back for the running activity's traffic recorder (context variables: one
    transport serves every activity of a worker)."""

    def __init__(self, inner: httpx.AsyncBaseTransport, gate: RateGate, api_base_url: str) -> None:
        self._inner = inner
        self._gate = gate
        self._api = api_base_url.rstrip("/")
        self.line = FairLine(gate.penalty_ends, gate.clock)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if not str(request.url).startswith(self._api):
            return await self._inner.handle_async_request(request)
        named = request.extensions.get(ENDPOINT_EXTENSION)
        endpoint = str(named or f"{request.method} {request.url.path}")
        # A metric's label never carries an ID: a request without its template is unnamed.
        label = endpoint if named else f"{request.method} (unnamed)"
        traffic, account = _TRAFFIC.get(), _ACCOUNT.get()
        again = False
        while True:
            held: list[tuple[datetime, datetime]] = []
            try:
                async with self.line.turn(account, again=again) as turn:
                    held = turn.held
                    return await self._sent(request, endpoint, label, traffic)
            except NoTurn as turned_away:
                now = self._gate.clock()
                if traffic is not None:
                    await traffic.held_back(endpoint, now, now + _SHORTEST_WAIT)
                raise GateClosed(now + _SHORTEST_WAIT, str(turned_away)) from None
            except GateClosed as closed:
                # Another request's 429 closed the gate after this one's turn came: the
                # turn is given back, and a short penalty waited out at the head of the
                # account's requests.
                self.line.unused(account)
                if not self.line.waits_out(closed.until):
                    raise
                again = True
            finally:
                # A penalty held it in line: its owner waited. Written once its place in
                # the window is given back, off the other requests' way.
                if traffic is not None:
                    for start, end in held:
                        await traffic.waited(start, end)

    async def _sent(
        self, request: httpx.Request, endpoint: str, label: str, traffic: TrafficRecorder | None
    ) -> httpx.Response:
        try:
            await self._gate.check()
        except GateClosed as closed:
            if traffic is not None:
                await traffic.held_back(endpoint, self._gate.clock(), closed.until)
            raise
        if traffic is None:
            response = await self._checked(request, label)
            metrics.request_left(label)
            metrics.answered(label, response.status_code)
            return response
        leaving = _Departure(self._gate, traffic, endpoint, label)
        request.extensions = {**request.extensions, "trace": leaving.trace}
        response = await self._checked(request, label, traffic)
        await leaving.answered()
        await traffic.answered(endpoint, response.status_code)
        metrics.answered(label, response.status_code)
        return response

    async def _checked(
        self, request: httpx.Request, label: str, traffic: TrafficRecorder | None = None
    ) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        if response.status_code != 429:
            self.line.admitted()
        else:
            # The gate first (this worker's memory closes before anything else runs),
            # then the bookkeeping.
            self.line.refused(_ACCOUNT.get())
            await response.aread()
            wait = timedelta(seconds=math.ceil(retry_after_seconds(response)))
            now = self._gate.clock()
            until = await self._gate.close(wait, _why(response, request))
            metrics.rate_limited(label, daily_quota=_quota_exceeded(response))
            if traffic is not None:
                await traffic.waited(now, until)
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


_POOL_LIMITS: Final = httpx.Limits(keepalive_expiry=2.0)
"""Idle connections are dropped after 2 s, before a server drops them (uvicorn after 5 s;
httpx's default is also 5 s): a request written to a connection the server has just
closed would be counted sent though the server never read it."""


class WarmSpotify:
    """One worker process's way to Spotify: one connection pool (keep-alive) behind the
    gate, and one warm client per account (``enforcer.session.SpotifyClients``), shared
    by every activity; ``aclose`` when the worker stops. ``transport``: tests' own, then
    theirs to close."""

    def __init__(
        self,
        settings: Settings,
        ledger: Ledger,
        gate: RateGate,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._ledger = ledger
        self._own_inner = transport is None
        # Built once: each AsyncHTTPTransport makes a TLS context (tens of ms of CPU).
        self._inner = (
            httpx.AsyncHTTPTransport(limits=_POOL_LIMITS) if transport is None else transport
        )
        gated = GatedTransport(self._inner, gate, settings.api_base_url)
        self._clients = SpotifyClients(settings, ledger, transport=gated)

    @asynccontextmanager
    async def client(
        self,
        account_id: str,
        traffic_owner: str | None = None,
        *,
        traffic: TrafficRecorder | None = None,
    ) -> AsyncIterator[SpotifyClient]:
        """The account's client, every request of it behind the gate and, with
        ``traffic_owner`` (or a ``traffic`` recorder of the caller's), counted in the
        ledger for that batch or scan (the requests of this activity's task only: the
        recorder is a context variable). Answers a recorder deferred and its caller did
        not write are written when the client is given back."""
        if traffic is None and traffic_owner is not None:
            traffic = TrafficRecorder(self._ledger, traffic_owner)
        token, account = _TRAFFIC.set(traffic), _ACCOUNT.set(account_id)
        try:
            async with self._clients.client(account_id) as client:
                yield client
        finally:
            _ACCOUNT.reset(account)
            _TRAFFIC.reset(token)
            if traffic is not None:
                await traffic.flush()

    async def aclose(self) -> None:
        await self._clients.aclose()
        if self._own_inner:
            await self._inner.aclose()


class SpotifyCalls:
    """Makes calls to Spotify and turns what stops them into Temporal's terms."""

    def __init__(self, gate: RateGate) -> None:
        self._gate = gate

    async def __call__(self, call: Callable[[], Awaitable[T]]) -> T:
        try:
            return await call()
        except GateClosed as closed:
            raise _rate_limited(closed.until, self._gate.clock(), closed.reason) from None
        except RateLimited as error:
            why = "daily quota exceeded" if error.quota_exceeded else "rate limited"
            # The 429 came through GatedTransport, which closed the gate and counted it.
            until = await self._gate.close(
                timedelta(seconds=math.ceil(error.retry_after)),
                f"{why} on {error.endpoint}",
                measured=False,
            )
            raise _rate_limited(until, self._gate.clock(), why) from None
        except SpotifyError as error:
            raise spotify_failure(error) from None


def spotify_failure(error: SpotifyError) -> ApplicationError:
    """A Spotify error other than a 429, in Temporal's terms (retried or not, and why)."""
    if isinstance(error, LoginRequired):
        return activity_error(str(error), type=LOGIN_REQUIRED, non_retryable=True)
    if isinstance(error, BadRequest | Forbidden | NotFound | EndpointGone | InvalidIdentifier):
        return activity_error(str(error), type=REFUSED, non_retryable=True)
    if isinstance(error, SpotifyUnreachable):
        return activity_error(f"Spotify: {error}", type=SPOTIFY_UNREACHABLE)
    if isinstance(error, TransientError):
        return activity_error(f"Spotify: {error}", type=SPOTIFY_TRANSIENT)
    return compact(error)


def _rate_limited(until: datetime, now: datetime, why: str) -> ApplicationError:
    return activity_error(
        f"Spotify: {why}; no request before {until:%Y-%m-%d %H:%M:%S} UTC",
        type=RATE_LIMITED,
        next_retry_delay=max(until - now, _SHORTEST_WAIT),
    )


EXPECTED_FAILURE_TYPES: Final = frozenset(
    {RATE_LIMITED, SPOTIFY_TRANSIENT, SPOTIFY_UNREACHABLE, LOGIN_REQUIRED, REFUSED}
)
"""Failures the project plans for: told in one line of the worker's log, no traceback."""


class _CompactInbound(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        try:
            return await super().execute_activity(input)
        except ApplicationError as error:
            failure = error
        except FailureError:
            raise  # a cancellation or a timeout: Temporal's own, and already small
        except SpotifyError as error:
            failure = spotify_failure(error)
        except Exception as error:
            # Not one of ours: a bug or an environment fault (the ledger's, say). Its
            # whole story goes to the worker's log; Temporal gets the short one.
            _log.warning("activity %s failed", input.fn.__name__, exc_info=error)
            raise compact(error) from None
        if failure.type not in EXPECTED_FAILURE_TYPES:
            raise compact(failure) from None
        failure = compact(failure, expected=True)
        _tell(input, failure)
        raise failure from None


def _tell(input: ExecuteActivityInput, failure: ApplicationError) -> None:
    """One line for an expected failure: a retry is routine (INFO), a stop (a login to
    renew, a refusal) is worth a look (WARNING)."""
    info = activity.info()
    then = "gives up" if failure.non_retryable else "will retry"
    if failure.next_retry_delay is not None:
        then += f" in {failure.next_retry_delay.total_seconds():.1f} s"
    _log.log(
        logging.WARNING if failure.non_retryable else logging.INFO,
        "%s attempt %d of %s: %s: %s; %s",
        input.fn.__name__,
        info.attempt,
        info.workflow_id,
        failure.type,
        failure.message,
        then,
    )


class CompactFailures(Interceptor):
    """Makes every activity's failure small (see ``activities._failures``)."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _CompactInbound(next)


def _quota_exceeded(response: httpx.Response) -> bool:
    """Whether a 429 is the daily quota's (Spotify's ``reason``), not the rolling window's."""
    try:
        return bool(response.json().get("error", {}).get("reason") == _QUOTA_EXCEEDED)
    except (ValueError, AttributeError):
        return False


def _why(response: httpx.Response, request: httpx.Request) -> str:
    what = "daily quota exceeded" if _quota_exceeded(response) else "rate limited"
    return f"{what} on {request.method} {request.url.path}"
