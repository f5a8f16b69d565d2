"""How every activity talks to Spotify: behind the app-wide gate, errors made Temporal's.

A 429 closes the gate until its Retry-After has passed, for every activity of the app:
at once in this worker's memory, and in the ledger for every other worker. The gate is
checked right before each request leaves (``GatedTransport``), so no request is sent
during a penalty, not even one of a chunk that started before it. The refusal becomes
``ApplicationError(type="RateLimited", next_retry_delay=...)``, so Temporal waits out
the penalty durably (hours, for a daily quota). Errors a retry cannot mend are
non-retryable; transient ones back off per the retry policy; a Spotify that cannot be
reached at all is ``SpotifyUnreachable``, naming the address tried, and backs off too.

Whatever else an activity raises becomes small on its way to Temporal (``CompactFailures``,
on every worker; see ``activities._failures``): a Spotify error raised outside
``SpotifyCalls`` (opening the client, say) gets the same type it would have inside.
"""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, Final, TypeVar

import httpx
from temporalio.exceptions import ApplicationError, FailureError
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor

from activities._failures import activity_error, compact
from enforcer.config import Settings
from enforcer.ledger import Ledger
from enforcer.session import spotify_client
from enforcer.spotify import SpotifyClient, retry_after_seconds
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


class RateGate:
    """The app-wide rate-limit gate: this worker's memory in front of the ledger's row."""

    def __init__(
        self, ledger: Ledger, app_id: str, *, clock: Callable[[], datetime] = utc_now
    ) -> None:
        self._ledger = ledger
        self._app_id = app_id
        self.clock = clock
        self._closed_until: datetime | None = None
        self._reason = ""

    async def check(self) -> None:
        """Raises ``GateClosed`` while a penalty runs, here or on any other worker."""
        self._raise_if_closed(self._closed_until, self._reason)
        gate = await self._ledger.gate(self._app_id)
        self._raise_if_closed(gate.blocked_until, gate.reason or "rate limited")

    async def close(self, wait: timedelta, reason: str) -> datetime:
        """Closes the gate for ``wait``; returns when it opens (a longer penalty wins)."""
        until = self.clock() + max(wait, _SHORTEST_WAIT)
        # Memory first, with no await before it: requests of this worker stop now.
        if self._closed_until is None or until > self._closed_until:
            self._closed_until, self._reason = until, reason
        gate = await self._ledger.close_gate(self._app_id, until, reason)
        return gate.blocked_until or until

    def _raise_if_closed(self, until: datetime | None, reason: str) -> None:
        if until is not None and until > self.clock():
            raise GateClosed(until, reason)


class GatedTransport(httpx.AsyncBaseTransport):
    """Checks the gate before every Web API request; closes it on every 429."""

    def __init__(self, inner: httpx.AsyncBaseTransport, gate: RateGate, api_base_url: str) -> None:
        self._inner = inner
        self._gate = gate
        self._api = api_base_url.rstrip("/")

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        gated = str(request.url).startswith(self._api)
        if gated:
            await self._gate.check()
        response = await self._inner.handle_async_request(request)
        if gated and response.status_code == 429:
            await response.aread()
            wait = timedelta(seconds=math.ceil(retry_after_seconds(response)))
            await self._gate.close(wait, _why(response, request))
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


@asynccontextmanager
async def gated_client(
    settings: Settings,
    ledger: Ledger,
    account_id: str,
    gate: RateGate,
    transport: httpx.AsyncBaseTransport | None = None,
) -> AsyncIterator[SpotifyClient]:
    """The account's client, every request of it behind the gate (``transport``: tests)."""
    inner = transport if transport is not None else httpx.AsyncHTTPTransport()
    gated = GatedTransport(inner, gate, settings.api_base_url)
    async with spotify_client(settings, ledger, account_id, transport=gated) as client:
        yield client


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
            until = await self._gate.close(
                timedelta(seconds=math.ceil(error.retry_after)), f"{why} on {error.endpoint}"
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


class _CompactInbound(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        try:
            return await super().execute_activity(input)
        except ApplicationError as error:
            raise compact(error) from None
        except FailureError:
            raise  # a cancellation or a timeout: Temporal's own, and already small
        except SpotifyError as error:
            raise spotify_failure(error) from None
        except Exception as error:
            # Not one of ours: a bug or an environment fault (the ledger's, say). Its
            # whole story goes to the worker's log; Temporal gets the short one.
            _log.warning("activity %s failed", input.fn.__name__, exc_info=error)
            raise compact(error) from None


class CompactFailures(Interceptor):
    """Makes every activity's failure small (see ``activities._failures``)."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _CompactInbound(next)


def _why(response: httpx.Response, request: httpx.Request) -> str:
    try:
        reason = response.json().get("error", {}).get("reason")
    except ValueError:
        reason = None
    what = "daily quota exceeded" if reason == _QUOTA_EXCEEDED else "rate limited"
    return f"{what} on {request.method} {request.url.path}"
