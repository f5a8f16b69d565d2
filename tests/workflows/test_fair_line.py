"""The fair line at the app's rate limit (``activities._fair_line``): whose request goes
next when several accounts wait, a short penalty waited out in line, one request at a
time after a 429, and a wait that is bounded.

The line is driven directly, with a clock the test moves and requests that stay in
flight until the test answers them: what the order of departures is, not how fast a
machine runs it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from activities._fair_line import FairLine, NoTurn


class Requests:
    """Requests through one line; each stays in flight until ``answer`` lets it end."""

    def __init__(self, line: FairLine) -> None:
        self.line = line
        self.departures: list[str] = []
        self._answers: dict[str, asyncio.Event] = {}
        self._answered = 0
        self._departed = asyncio.Condition()

    def send(self, account: str, name: str | None = None) -> asyncio.Task[None]:
        name = name or f"{account}{sum(n.startswith(account) for n in self._answers)}"
        self._answers[name] = asyncio.Event()
        return asyncio.create_task(self._request(account, name))

    async def _request(self, account: str, name: str) -> None:
        async with self.line.turn(account):
            async with self._departed:
                self.departures.append(name)
                self._departed.notify_all()
            await self._answers[name].wait()

    async def until_departed(self, *names: str, within: float = 5.0) -> None:
        """Until the departures so far are ``names`` (or, with none, until a new one)."""
        count = len(self.departures) + 1
        async with asyncio.timeout(within), self._departed:
            await self._departed.wait_for(
                lambda: self.departures == list(names) if names else len(self.departures) >= count
            )

    async def answer(self, name: str, *, refused: bool = False) -> None:
        """The request ``name`` is answered (a 429 when ``refused``)."""
        if refused:
            self.line.refused(name.rstrip("0123456789"))
        else:
            self.line.admitted()
        self._answers[name].set()
        await settled()

    async def answer_in_turn(self, count: int) -> None:
        """The next ``count`` departures answered in the order they left."""
        for _ in range(count):
            if len(self.departures) <= self._answered:
                await self.until_departed()
            await self.answer(self.departures[self._answered])
            self._answered += 1


async def settled() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 30, 12, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def one_at_a_time(
    penalty: Callable[[], datetime | None] = lambda: None,
    clock: Clock | None = None,
    **kwargs: timedelta,
) -> FairLine:
    return FairLine(penalty, clock or Clock(), most_in_flight=1, **kwargs)


async def test_an_account_with_many_requests_waiting_does_not_go_ahead_of_another() -> None:
    requests = Requests(one_at_a_time())
    for _ in range(6):
        requests.send("big")
    await settled()
    requests.send("small")
    requests.send("small")

    await requests.answer_in_turn(8)

    # "big" had its first turn before "small" came; "small" has its own, then they alternate.
    assert requests.departures == [
        "big0",
        "small0",
        "big1",
        "small1",
        "big2",
        "big3",
        "big4",
        "big5",
    ]


async def test_a_newcomer_goes_ahead_of_an_account_that_had_the_budget_until_even() -> None:
    requests = Requests(one_at_a_time())
    for _ in range(4):
        requests.send("steady")
    await requests.answer_in_turn(2)
    for _ in range(3):
        requests.send("late")
    await settled()

    await requests.answer_in_turn(4)

    # "steady" had 3 turns alone; "late" goes until it has had as many.
    assert requests.departures == [
        "steady0", "steady1", "steady2", "late0", "late1", "late2", "steady3"
    ]  # fmt: skip


async def test_what_an_account_used_long_ago_hardly_counts() -> None:
    line = FairLine(lambda: None, Clock(), use_fades_in=timedelta(milliseconds=50))
    for _ in range(5):
        async with line.turn("a"):
            pass
    assert line.use("a") > 4

    await asyncio.sleep(0.3)

    assert line.use("a") < 0.05


async def test_a_short_penalty_holds_the_line_until_it_ends_then_accounts_go_in_turn() -> None:
    ends = datetime.now(UTC) + timedelta(milliseconds=300)
    line = FairLine(lambda: ends, lambda: datetime.now(UTC), most_in_flight=4)
    requests = Requests(line)
    for account in ("a", "a", "a", "b"):
        requests.send(account)

    await asyncio.sleep(0.2)
    assert requests.departures == []  # nothing leaves during a penalty
    await requests.until_departed("a0", "b0", "a1", "a2")

    assert datetime.now(UTC) >= ends


async def test_a_penalty_held_in_line_is_told_as_a_wait() -> None:
    ends = datetime.now(UTC) + timedelta(milliseconds=200)
    line = FairLine(lambda: ends, lambda: datetime.now(UTC))
    entered = datetime.now(UTC)

    async with line.turn("a") as turn:
        pass

    [(start, end)] = turn.held
    assert entered <= start < end == ends


async def test_a_long_penalty_is_not_waited_out_in_line() -> None:
    clock = Clock()
    line = one_at_a_time(lambda: clock.now + timedelta(hours=3), clock)

    async with asyncio.timeout(1), line.turn("a") as turn:
        # Let go at once: the gate refuses it and Temporal waits out the hours.
        assert turn.held == []


async def test_after_a_429_one_request_at_a_time_then_about_one_more_a_round() -> None:
    line = FairLine(lambda: None, Clock(), most_in_flight=8)
    requests = Requests(line)
    requests.send("a")
    await settled()
    await requests.answer("a0", refused=True)
    assert line.use("a") == pytest.approx(0, abs=1e-3)  # the 429 spent none of the budget
    for _ in range(8):
        requests.send("a")
    await settled()

    in_flight = [line.in_flight]
    for _ in range(4):
        await requests.answer(requests.departures[len(in_flight)])
        in_flight.append(line.in_flight)

    # window 1, then 1 + 1/1 = 2, 2.5, 2.9, 3.24: its whole part is how many may fly.
    assert in_flight == [1, 2, 2, 2, 3]


async def test_a_request_that_waited_its_longest_is_turned_away_and_the_line_goes_on() -> None:
    line = one_at_a_time(longest_in_line=timedelta(milliseconds=100))
    requests = Requests(line)
    holder = requests.send("a", "holder")
    await settled()
    turned_away = requests.send("b", "waiting")

    with pytest.raises(NoTurn, match="in line for a turn at the app's rate limit"):
        await turned_away
    await requests.answer("holder")
    await holder
    requests.send("c", "next")

    await requests.until_departed("holder", "next")


async def test_a_cancelled_request_leaves_the_line() -> None:
    requests = Requests(one_at_a_time())
    requests.send("a", "holder")
    await settled()
    cancelled = requests.send("b", "cancelled")
    requests.send("c", "after")
    await settled()

    cancelled.cancel()
    await requests.answer("holder")

    await requests.until_departed("holder", "after")
    assert requests.line.in_flight == 1
