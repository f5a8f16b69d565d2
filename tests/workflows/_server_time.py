"""Clocks that follow a time-skipping Temporal server instead of the wall.

The time-skipping test server jumps ahead, hours at once, whenever the workflows only
wait on timers or retry backoffs. Code under test that reads the wall clock (the rate
gate, the sandbox) would not see those hours pass: a gate closed for six hours would
still be closed when the retry comes, and the sandbox's day would never end. Giving
them a ``ServerClock`` makes every clock of the test run on the server's time.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from temporalio import activity
from temporalio.testing import WorkflowEnvironment


class ServerClock:
    """The server's time, as well as code outside the server can know it (UTC).

    - Inside an activity, it is at least the server's time when the running attempt was
      scheduled (``activity.info().current_attempt_scheduled_time``): the server's own
      reading, which includes every jump it made.
    - Between such readings it runs on with the wall clock, as the server does while it
      is not skipping.
    - It never runs backwards, so readings taken by activities running side by side stay
      in order.

    It may lag the server (by the time an attempt waited to be picked up, at most), but
    never leads it: a wait that ends by this clock has ended on the server too.
    """

    def __init__(self, server_now: datetime) -> None:
        self._known = server_now
        self._known_at = time.monotonic()

    @classmethod
    async def of(cls, env: WorkflowEnvironment) -> ServerClock:
        return cls(await env.get_current_time())

    def now(self) -> datetime:
        estimate = self._known + timedelta(seconds=time.monotonic() - self._known_at)
        if activity.in_activity():
            scheduled = activity.info().current_attempt_scheduled_time
            if scheduled > estimate:
                self._known, self._known_at = scheduled, time.monotonic()
                return scheduled
        return estimate


class ShiftedClock:
    """A ``ServerClock`` moved to a chosen time, in epoch seconds: the sandbox's clock.

    It runs exactly as the server clock does, so a wait the sandbox asks for (its
    Retry-After) and the wait the gate keeps last equally long on the server.
    """

    def __init__(self, server: ServerClock) -> None:
        self._server = server
        self._shift = timedelta(0)

    def __call__(self) -> float:
        return self.now().timestamp()

    def now(self) -> datetime:
        return self._server.now() + self._shift

    def place(self, at: datetime) -> None:
        """From now on this clock reads ``at`` plus the server time since."""
        self._shift = at - self._server.now()


def next_day_at(now: datetime, hour: int) -> datetime:
    """``hour`` o'clock UTC on the day after ``now``'s: a day nothing was counted on yet."""
    day = now.astimezone(UTC).date() + timedelta(days=1)
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)
