"""Rate limits, the daily quota and injected faults: everything that happens to a
request before the library sees it."""

from __future__ import annotations

import asyncio
import math
import random
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from ._settings import Counters, Faults, SandboxSettings


@dataclass(frozen=True, slots=True)
class RateLimited:
    retry_after: int
    quota_exceeded: bool


@dataclass(slots=True)
class _Penalty:
    until: float
    sent_at: float
    length: float
    quota_exceeded: bool


@dataclass(frozen=True, slots=True)
class FaultPlan:
    """What the fault dice decided for one request."""

    storm_retry_after: int | None = None
    server_error: int | None = None
    after_change: bool = False


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

    def set_faults(self, faults: Faults) -> None:
        self.faults = faults
        self._dice = random.Random(faults.seed)
        self._storm_left = faults.storm_requests

    def reset_counters(self) -> None:
        self.counters = Counters()

    def count_call(self, endpoint: str) -> None:
        calls = self.counters.calls
        calls[endpoint] = calls.get(endpoint, 0) + 1

    async def roll_faults(self) -> FaultPlan:
        """Sleep for latency or a hang, and decide whether this request fails."""
        faults = self.faults
        delay = faults.latency_ms
        if faults.jitter_ms:
            delay += self._dice.uniform(0, faults.jitter_ms)
        if delay > 0:
            await asyncio.sleep(delay / 1000)
        if self._storm_left > 0:
            self._storm_left -= 1
            self.counters.rate_limited += 1
            return FaultPlan(storm_retry_after=faults.storm_retry_after)
        if faults.timeout_rate and self._dice.random() < faults.timeout_rate:
            self.counters.timeouts += 1
            await asyncio.sleep(faults.timeout_seconds)
        if faults.server_error_rate and self._dice.random() < faults.server_error_rate:
            self.counters.server_errors += 1
            status = self._dice.choice((500, 502, 503))
            return FaultPlan(server_error=status, after_change=faults.server_error_after_change)
        return FaultPlan()

    def admit(self, client_id: str) -> RateLimited | None:
        """None if the app may make this call now; otherwise the 429 to send."""
        settings = self._settings()
        now = self._clock()
        penalty = self._penalties.get(client_id)
        if penalty is not None and now < penalty.until:
            if now - penalty.sent_at <= settings.in_flight_grace_seconds:
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
            return self._limit(client_id, now, _whole_seconds(midnight.timestamp() - now), True)
        if settings.rate_limit_budget is not None:
            window = self._windows[client_id]
            while window and window[0] <= now - settings.rate_limit_window:
                window.popleft()
            if len(window) >= settings.rate_limit_budget:
                retry_after = settings.rate_limit_retry_after
                if retry_after is None:
                    retry_after = _whole_seconds(window[0] + settings.rate_limit_window - now)
                return self._limit(client_id, now, retry_after, False)
            window.append(now)
        self._daily[day_key] += 1
        return None

    def _limit(self, client_id: str, now: float, retry_after: int, quota: bool) -> RateLimited:
        self._penalties[client_id] = _Penalty(now + retry_after, now, retry_after, quota)
        self.counters.rate_limited += 1
        return RateLimited(retry_after, quota)


def _whole_seconds(seconds: float) -> int:
    return max(1, math.ceil(seconds - 1e-9))
