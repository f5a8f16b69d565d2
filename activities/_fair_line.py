"""Fair shares of the app's rate limit: whose request a worker sends next.

Spotify's rate limit is the app's: one budget, counted over a rolling 30 seconds, for
every account the app serves. Before this line, whichever activity was running when a
penalty ended kept sending until the next 429, while the activities that had met the
closed gate waited out the penalty in Temporal and came back in dispatch order: with 20
accounts of equal work under one budget the last account finished 3.6 times later than
the first, and a small account beside one with 10 times the work took 8.7 times its time
alone (``bench/fairness.py --quick``, 2026-11-30). Temporal's fairness keys order only
the activities waiting in the task queue; the budget is spent by those already running.

So every request to the Web API of one worker process waits here for its turn:

- **Least recent use first.** Of the accounts with a request waiting, the one that used
  the least of the budget lately goes next (ties: the request that came first); within
  an account, first come first served. An account's use is its requests let go, each
  fading with a time constant of ``USE_FADES_IN`` (Spotify's window), so what an account
  used a minute ago hardly counts. Every account waiting gets an equal share however many
  activities it runs; a newcomer goes ahead of an account that has had the budget to
  itself until their recent use is even, so a small run beside a large one takes about
  its time alone, not its time alone times the number of accounts.
- **A turn not used is given back.** A request refused (429) or held back at the gate
  after its turn came did not spend the budget: its account's use is lowered again, and
  a request held back waits at the head of its account's requests.
- **A penalty is waited out in line.** While this worker knows of a penalty (its own 429,
  or the ledger's gate row) that ends within ``WAIT_OUT_AT_MOST``, no request leaves;
  when it ends, the line goes on as above. A longer penalty (a daily quota's hours) is
  Temporal's to wait out durably: the line lets requests go, the gate refuses them, and
  their activities retry when it ends.
- **The window.** At most ``window`` requests of the worker are in flight: after a 429
  one, widening by ``1/window`` with each answer that was not a 429 (about one more
  each round of answers), up to ``MOST_IN_FLIGHT`` (the most a batch may ask for). Once
  the budget is what holds requests back, few are in flight when it runs out, so few
  are refused or caught in flight by the 429; until the first 429 nothing narrows it.
- **Bounded.** A request that waited ``LONGEST_IN_LINE`` is turned away (``NoTurn``): its
  activity retries through Temporal instead of outliving its start-to-close timeout.
  A cancelled request leaves the line; a request's place in the window is given back
  when it is answered or fails.

Across workers, each worker's line is fair among the requests it holds; Temporal's
fairness keys (one per account on the Spotify queue) share the activities among workers.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import count
from typing import Final

from enforcer.models import MOST_IN_FLIGHT

USE_FADES_IN: Final = timedelta(seconds=30)
"""The time constant over which an account's use of the budget fades (Spotify counts the
app's requests over a rolling 30 seconds)."""
WAIT_OUT_AT_MOST: Final = timedelta(seconds=10)
"""The longest penalty requests wait out in line; a longer one, as Temporal retries."""
LONGEST_IN_LINE: Final = timedelta(seconds=45)
"""A request waiting longer is turned away, inside a chunk activity's timeout."""
_LOOK_AGAIN_AT_MOST: Final = 1.0
"""Seconds between two looks at a penalty's end while the line is held: the gate's clock
may be a test server's, which skips."""
_FORGET_USE_BELOW: Final = 0.01


class NoTurn(Exception):
    """A request waited its longest in line: nothing was sent."""

    def __init__(self, waited: timedelta) -> None:
        self.waited = waited
        super().__init__(
            f"waited {waited.total_seconds():.0f} s in line for a turn at the app's rate limit"
        )


@dataclass(frozen=True)
class Turn:
    """One request's turn: the stretches of its wait that a penalty held the line."""

    held: list[tuple[datetime, datetime]]


@dataclass(frozen=True)
class _Waiter:
    order: int
    account: str
    entered: datetime
    granted: asyncio.Future[None]


class _Use:
    """An account's use of the budget: requests let go, each fading exponentially."""

    def __init__(self, fades_in: timedelta) -> None:
        self._fades_in = fades_in.total_seconds()
        self._value = 0.0
        self._at = time.monotonic()

    def now(self) -> float:
        now = time.monotonic()
        self._value *= math.exp((self._at - now) / self._fades_in)
        self._at = now
        return self._value

    def add(self, amount: float) -> None:
        self._value = max(self.now() + amount, 0.0)


class FairLine:
    """One worker's line for the app's requests (see the module's docstring).

    ``penalty_ends``: when the penalty this worker knows of ends (None: none); ``clock``:
    the same clock as the gate's."""

    def __init__(
        self,
        penalty_ends: Callable[[], datetime | None],
        clock: Callable[[], datetime],
        *,
        most_in_flight: int = MOST_IN_FLIGHT,
        wait_out_at_most: timedelta = WAIT_OUT_AT_MOST,
        longest_in_line: timedelta = LONGEST_IN_LINE,
        use_fades_in: timedelta = USE_FADES_IN,
    ) -> None:
        self._penalty_ends = penalty_ends
        self._clock = clock
        self._most = most_in_flight
        self._wait_out_at_most = wait_out_at_most
        self._longest = longest_in_line.total_seconds()
        self._fades_in = use_fades_in
        self.window = float(most_in_flight)
        """How many requests may be in flight: its whole part."""
        self.in_flight = 0
        self._waiting: dict[str, deque[_Waiter]] = {}
        self._use: dict[str, _Use] = {}
        self._arrivals = count()
        self._look_again: asyncio.TimerHandle | None = None
        self._held: deque[tuple[datetime, datetime]] = deque(maxlen=64)

    def use(self, account: str) -> float:
        """The account's recent use of the budget (requests let go, faded)."""
        use = self._use.get(account)
        return 0.0 if use is None else use.now()

    @asynccontextmanager
    async def turn(self, account: str, *, again: bool = False) -> AsyncIterator[Turn]:
        """Waits for the account's turn; the block is the request in flight. ``again``: the
        gate took its turn back before it left (``unused``): first of its account's."""
        waiter = self._enter(account, again)
        expiry = asyncio.get_running_loop().call_later(self._longest, self._expire, waiter)
        try:
            await waiter.granted
        except asyncio.CancelledError:
            if waiter.granted.done() and not waiter.granted.cancelled():
                self._give_back()  # let go as it was cancelled: the place is not used
            raise
        finally:
            expiry.cancel()
        try:
            yield Turn(self._held_during(waiter.entered, self._clock()))
        finally:
            self._give_back()

    def waits_out(self, penalty_ends: datetime) -> bool:
        """Whether a penalty ending then is waited out in line (else, by Temporal)."""
        return timedelta(0) < penalty_ends - self._clock() <= self._wait_out_at_most

    def unused(self, account: str) -> None:
        """The account's request did not leave after all (the gate held it back)."""
        self._used(account, -1.0)

    def refused(self, account: str) -> None:
        """A 429 to the account's request: one request at a time from now on, and the
        account's turn given back (the budget did not admit it)."""
        self.window = 1.0
        self._used(account, -1.0)

    def admitted(self) -> None:
        """An answer that was not a 429: the window widens by one a window's worth."""
        if self.window < self._most:
            self.window = min(self.window + 1 / self.window, float(self._most))
            self._let_go()

    def _enter(self, account: str, first: bool) -> _Waiter:
        waiter = _Waiter(
            next(self._arrivals),
            account,
            self._clock(),
            asyncio.get_running_loop().create_future(),
        )
        line = self._waiting.setdefault(account, deque())
        if first:
            line.appendleft(waiter)
        else:
            line.append(waiter)
        self._let_go()
        return waiter

    def _used(self, account: str, amount: float) -> None:
        use = self._use.get(account)
        if use is None:
            use = self._use[account] = _Use(self._fades_in)
        use.add(amount)

    def _give_back(self) -> None:
        self.in_flight -= 1
        self._let_go()

    def _expire(self, waiter: _Waiter) -> None:
        if not waiter.granted.done():
            waited = self._clock() - waiter.entered
            waiter.granted.set_exception(NoTurn(waited))
            self._let_go()

    def _let_go(self) -> None:
        """Lets requests go, least recent use first, while the window has room and no
        penalty holds the line."""
        while self.in_flight < int(self.window):
            account = self._next_account()
            if account is None:
                return
            ends = self._penalty_to_wait_out()
            if ends is not None:
                self._hold_until(ends)
                return
            waiter = self._waiting[account].popleft()
            self._used(account, 1.0)
            self.in_flight += 1
            waiter.granted.set_result(None)

    def _next_account(self) -> str | None:
        """The account whose request goes next: least recent use, then first come."""
        best: tuple[float, int, str] | None = None
        for account, line in list(self._waiting.items()):
            while line and line[0].granted.done():  # cancelled or turned away
                line.popleft()
            if not line:
                del self._waiting[account]
                continue
            candidate = (self.use(account), line[0].order, account)
            if best is None or candidate < best:
                best = candidate
        self._forget_faded()
        return None if best is None else best[2]

    def _forget_faded(self) -> None:
        if len(self._use) > 2 * len(self._waiting) + 64:
            self._use = {
                account: use
                for account, use in self._use.items()
                if account in self._waiting or use.now() > _FORGET_USE_BELOW
            }

    def _penalty_to_wait_out(self) -> datetime | None:
        ends = self._penalty_ends()
        return ends if ends is not None and self.waits_out(ends) else None

    def _hold_until(self, ends: datetime) -> None:
        now = self._clock()
        if self._held and self._held[-1][1] >= now:
            start = self._held[-1][0]
            self._held[-1] = (start, max(self._held[-1][1], ends))
        else:
            self._held.append((now, ends))
        if self._look_again is None:
            delay = min((ends - now).total_seconds(), _LOOK_AGAIN_AT_MOST)
            self._look_again = asyncio.get_running_loop().call_later(delay, self._looked_again)

    def _looked_again(self) -> None:
        self._look_again = None
        self._let_go()

    def _held_during(self, entered: datetime, left: datetime) -> list[tuple[datetime, datetime]]:
        """The parts of [entered, left] a penalty held the line (they are waits to count)."""
        overlaps = []
        for start, end in self._held:
            start, end = max(start, entered), min(end, left)
            if end > start:
                overlaps.append((start, end))
        return overlaps
