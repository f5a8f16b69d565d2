"""How every activity talks to Spotify: behind the app-wide gate, errors made Temporal's.

A 429 closes the gate in the ledger until its Retry-After has passed, for every
activity of the app on every worker, and becomes ``ApplicationError(type=
"RateLimited", next_retry_delay=Retry-After)``, so Temporal waits out the penalty
durably (hours, for a daily quota) and no request leaves before it ends. Errors that
a retry cannot mend are non-retryable; transient ones back off per the retry policy.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Final, TypeVar

from temporalio.exceptions import ApplicationError

from enforcer.ledger import Ledger
from enforcer.spotify.errors import (
    BadRequest,
    EndpointGone,
    Forbidden,
    InvalidIdentifier,
    LoginRequired,
    NotFound,
    RateLimited,
)

T = TypeVar("T")

RATE_LIMITED: Final = "RateLimited"
LOGIN_REQUIRED: Final = "LoginRequired"
REFUSED: Final = "Refused"
"""Spotify refused the request for good (400, 403, 404, 410): retrying cannot help."""
NON_RETRYABLE_ERROR_TYPES: Final = (LOGIN_REQUIRED, REFUSED)

# Temporal treats a zero delay as "use the retry policy": Spotify's Retry-After of 0
# still means "not this instant".
_SHORTEST_WAIT: Final = timedelta(seconds=1)


def utc_now() -> datetime:
    return datetime.now(UTC)


class SpotifyCalls:
    """Runs calls to Spotify for one app (client ID) behind the ledger's rate-limit gate."""

    def __init__(
        self, ledger: Ledger, app_id: str, *, clock: Callable[[], datetime] = utc_now
    ) -> None:
        self._ledger = ledger
        self._app_id = app_id
        self._clock = clock

    async def __call__(self, call: Callable[[], Awaitable[T]]) -> T:
        """Checks the gate, then makes ``call``; translates what Spotify answered."""
        await self._raise_if_gate_closed()
        try:
            return await call()
        except RateLimited as error:
            wait = max(timedelta(seconds=math.ceil(error.retry_after)), _SHORTEST_WAIT)
            why = "daily quota exceeded" if error.quota_exceeded else "rate limited"
            gate = await self._ledger.close_gate(
                self._app_id, self._clock() + wait, f"{why} on {error.endpoint}"
            )
            raise _rate_limited(gate.blocked_until, self._clock(), why) from error
        except LoginRequired as error:
            raise ApplicationError(str(error), type=LOGIN_REQUIRED, non_retryable=True) from error
        except (BadRequest, Forbidden, NotFound, EndpointGone, InvalidIdentifier) as error:
            raise ApplicationError(str(error), type=REFUSED, non_retryable=True) from error

    async def _raise_if_gate_closed(self) -> None:
        gate = await self._ledger.gate(self._app_id)
        now = self._clock()
        if gate.blocked_until is not None and gate.blocked_until > now:
            raise _rate_limited(gate.blocked_until, now, gate.reason or "rate limited")


def _rate_limited(until: datetime | None, now: datetime, why: str) -> ApplicationError:
    wait = max((until - now) if until is not None else _SHORTEST_WAIT, _SHORTEST_WAIT)
    return ApplicationError(
        f"Spotify: {why}; no request before {until:%Y-%m-%d %H:%M:%S} UTC"
        if until is not None
        else f"Spotify: {why}",
        type=RATE_LIMITED,
        next_retry_delay=wait,
    )
