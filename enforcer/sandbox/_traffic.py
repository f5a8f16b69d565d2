"""Rate limits, the daily quota, injected faults and the record of what arrived.

Invariants:

- A request is judged when it ARRIVES (the sandbox clock's reading then): the fault dice,
  the rate window, a running penalty, the daily quota and the library change itself.
  Injected latency (and a hang) delays only the ANSWER, so it never changes a verdict.
- A 429's penalty remembers when its answer reaches the client: the decision time plus
  that answer's own injected delay. A request arriving before that moment (plus
  ``in_flight_grace_seconds``) was sent before the client could know: it is in flight.
  Only later ones are violations, requests a well-behaved client could have held back.
- The injected delay is real time (``asyncio.sleep``); it is added to the sandbox clock
  when judging in-flight requests, so a test with a fake clock moves that clock itself.
- Counters and the request log cover API calls only, never the accounts or admin API.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ._settings import Counters, Faults, SandboxSettings


@dataclass(frozen=True, slots=True)
class RateLimited:
    retry_after: int
    quota_exceeded: bool


@dataclass(slots=True)
class _Penalty:
    until: float
    answered_at: float
    """When the 429 that started the penalty reached the client (sandbox clock)."""
    length: float
    quota_exceeded: bool


@dataclass(frozen=True, slots=True)
class FaultPlan:
    """What the fault dice decided for one request, at its arrival."""

    answer_delay: float = 0.0
    """Seconds (real time) the answer waits: latency, jitter and a hang."""
    storm_retry_after: int | None = None
    server_error: int | None = None
    after_change: bool = False

    async def delay_answer(self) -> None:
        if self.answer_delay > 0:
            await asyncio.sleep(self.answer_delay)


class Traffic:
    """Per-app (client ID) accounting: a rolling window, a daily quota and penalties."""

    def __init__(self, clock: Callable[[], float], settings: Callable[[], SandboxSettings]) -> None:
        self._clock = clock
        self._settings = settings
        self.counters = Counters()
        self._windows: dict[str, deque[float]] = defaultdict(deque)
        self._daily: dict[tuple[str, str], int] = defaultdict(int)
        self._penalties: dict[str, _Penalty] = {}
        self.faults = Faults()
        self._dice = random.Random(self.faults.seed)
        self._storm_left = 0
        self.requests: deque[dict[str, Any]] = deque(maxlen=settings().request_log_size)

    def set_faults(self, faults: Faults) -> None:
        self.faults = faults
        self._dice = random.Random(faults.seed)
        self._storm_left = faults.storm_requests

    def reset_counters(self) -> None:
        """Zero the counters and empty the request log."""
        self.counters = Counters()
        self.requests = deque(maxlen=self._settings().request_log_size)

    def count_call(self, endpoint: str, resource: str | None = None) -> None:
        """One call arrived at ``endpoint``; ``resource`` is the ID its path names, if any."""
        calls = self.counters.calls
        calls[endpoint] = calls.get(endpoint, 0) + 1
        if resource is not None:
            by_id = self.counters.calls_by_resource.setdefault(endpoint, {})
            by_id[resource] = by_id.get(resource, 0) + 1

    def log_request(
        self, method: str, path: str, query: str, status: int, arrived_at: float
    ) -> None:
        """Keep the request in the bounded log (the oldest entry leaves when it is full)."""
        size = self._settings().request_log_size
        if self.requests.maxlen != size:
            self.requests = deque(self.requests, maxlen=size)
        if size:
            self.requests.append(
                {
                    "method": method,
                    "path": path,
                    "query": query,
                    "status": status,
                    "arrived_at": arrived_at,
                }
            )

    def roll_faults(self) -> FaultPlan:
        """Decide, at arrival, how long the answer waits and whether this request fails."""
        faults = self.faults
        delay_ms = faults.latency_ms
        if faults.jitter_ms:
            delay_ms += self._dice.uniform(0, faults.jitter_ms)
        delay = delay_ms / 1000
        if self._storm_left > 0:
            self._storm_left -= 1
            self.counters.rate_limited += 1
            return FaultPlan(answer_delay=delay, storm_retry_after=faults.storm_retry_after)
        if faults.timeout_rate and self._dice.random() < faults.timeout_rate:
            self.counters.timeouts += 1
            delay += faults.timeout_seconds
        if faults.server_error_rate and self._dice.random() < faults.server_error_rate:
            self.counters.server_errors += 1
            status = self._dice.choice((500, 502, 503))
            return FaultPlan(
                answer_delay=delay,
                server_error=status,
                after_change=faults.server_error_after_change,
            )
        return FaultPlan(answer_delay=delay)

    def admit(self, client_id: str, answer_delay: float = 0.0) -> RateLimited | None:
        """None if the app may make this call now; otherwise the 429 to send.

        ``answer_delay``: how long this request's answer will wait, so that a 429 sent
        now reaches the client only then (see the module's invariants).
        """
        settings = self._settings()
        now = self._clock()
        penalty = self._penalties.get(client_id)
        if penalty is not None and now < penalty.until:
            if now < penalty.answered_at + settings.in_flight_grace_seconds:
                self.counters.in_flight_violations += 1
            else:
                self.counters.violations += 1
                if settings.penalty_extends_on_violation:
                    penalty.until = now + penalty.length
            self.counters.rate_limited += 1
            return RateLimited(_whole_seconds(penalty.until - now), penalty.quota_exceeded)
        day = datetime.fromtimestamp(now, UTC).date()
        day_key = (client_id, day.isoformat())
        if settings.daily_quota is not None and self._daily[day_key] >= settings.daily_quota:
            midnight = datetime.combine(day + timedelta(days=1), datetime.min.time(), UTC)
            return self._limit(
                client_id, now, answer_delay, _whole_seconds(midnight.timestamp() - now), True
            )
        if settings.rate_limit_budget is not None:
            window = self._windows[client_id]
            while window and window[0] <= now - settings.rate_limit_window:
                window.popleft()
            if len(window) >= settings.rate_limit_budget:
                retry_after = settings.rate_limit_retry_after
                if retry_after is None:
                    retry_after = _whole_seconds(window[0] + settings.rate_limit_window - now)
                return self._limit(client_id, now, answer_delay, retry_after, False)
            window.append(now)
        self._daily[day_key] += 1
        return None

    def _limit(
        self, client_id: str, now: float, answer_delay: float, retry_after: int, quota: bool
    ) -> RateLimited:
        self._penalties[client_id] = _Penalty(
            until=now + retry_after,
            answered_at=now + answer_delay,
            length=retry_after,
            quota_exceeded=quota,
        )
        self.counters.rate_limited += 1
        return RateLimited(retry_after, quota)


def _whole_seconds(seconds: float) -> int:
    return max(1, math.ceil(seconds - 1e-9))
