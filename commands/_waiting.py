"""Waiting on a workflow's result while telling the person what it is waiting for.

Invariants, for a command that waits on a workflow through ``wait_saying_why``:

- within seconds of an activity's first failed attempt, the person reads what the
  workflow waits for (the activity's last failure: Spotify unreachable at an address,
  a rate limit until a time...), and reads it again whenever it changes, and at least
  every ``REPEAT_EVERY`` seconds while it lasts;
- a Spotify that cannot be reached for ``give_up_after`` seconds in a row ends the wait
  with an error naming the address, and the workflow is cancelled: nothing is left
  running that no one waits for.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final, TypeVar

from rich.console import Console
from temporalio.api.workflow.v1 import PendingActivityInfo
from temporalio.client import WorkflowHandle
from temporalio.service import RPCError

from activities import SPOTIFY_UNREACHABLE
from commands._runtime import fail

T = TypeVar("T")

POLL_EVERY: Final = 1.0
"""Seconds between two looks at the workflow: an unreachable Spotify is told within it."""
REPEAT_EVERY: Final = 30.0
_LOOK_TIMEOUT: Final = timedelta(seconds=5)


@dataclass(frozen=True)
class Waiting:
    """What a workflow waits for, as far as Temporal's description of it tells."""

    activity: str
    attempt: int
    failure: str
    """The first line of the failure the activity is retrying after."""
    unreachable: bool
    """The failure is a Spotify that cannot be reached at all."""

    @property
    def reason(self) -> str:
        return f"{self.activity} is retrying (attempt {self.attempt}): {self.failure}"


def waiting_for(pending: list[PendingActivityInfo]) -> Waiting | None:
    """The reason a retrying activity gives, an unreachable Spotify first; None when no
    activity is retrying."""
    # In the order they were scheduled, so the same one keeps being told of.
    retrying = sorted(
        (p for p in pending if p.attempt > 1 and p.HasField("last_failure")),
        key=lambda p: (len(p.activity_id), p.activity_id),
    )
    if not retrying:
        return None
    unreachable = [
        p for p in retrying if p.last_failure.application_failure_info.type == SPOTIFY_UNREACHABLE
    ]
    chosen = (unreachable or retrying)[0]
    lines = chosen.last_failure.message.splitlines()
    return Waiting(
        activity=chosen.activity_type.name,
        attempt=chosen.attempt,
        failure=lines[0] if lines else "(no message)",
        unreachable=bool(unreachable),
    )


async def _look(handle: WorkflowHandle[Any, T]) -> Waiting | None:
    try:
        description = await handle.describe(rpc_timeout=_LOOK_TIMEOUT)
    except RPCError:
        return None  # a look that failed says nothing; the next one may
    return waiting_for(list(description.raw_description.pending_activities))


class _Teller:
    """Tells the person what the workflow waits for: a spinner's text on a terminal,
    else a line on stderr when the reason changes (and again every ``REPEAT_EVERY``)."""

    def __init__(self, console: Console, update_spinner: Callable[[str], None]) -> None:
        self._console = console
        self._update_spinner = update_spinner
        self._told = ""
        self._told_at = 0.0

    def tell(self, waiting: Waiting) -> None:
        if self._console.is_terminal:
            self._update_spinner(f"waiting: {waiting.reason}")
            return
        # The attempt number changes every retry: the failure is what tells news.
        now = time.monotonic()
        if waiting.failure != self._told or now - self._told_at >= REPEAT_EVERY:
            self._console.print(
                f"waiting: {waiting.reason}", markup=False, highlight=False, soft_wrap=True
            )
            self._told, self._told_at = waiting.failure, now


async def wait_saying_why(
    handle: WorkflowHandle[Any, T],
    *,
    give_up_after: float,
    console: Console,
    update_spinner: Callable[[str], None],
) -> T:
    """The workflow's result; fails (exit 1) after ``give_up_after`` seconds of an
    unreachable Spotify, cancelling the workflow."""
    result = asyncio.ensure_future(handle.result())
    teller = _Teller(console, update_spinner)
    unreachable_since: float | None = None
    try:
        while True:
            done, _ = await asyncio.wait({result}, timeout=POLL_EVERY)
            if done:
                return result.result()
            waiting = await _look(handle)
            if waiting is None:
                unreachable_since = None
                continue
            teller.tell(waiting)
            if not waiting.unreachable:
                unreachable_since = None
                continue
            unreachable_since = unreachable_since or time.monotonic()
            if time.monotonic() - unreachable_since >= give_up_after:
                await _cancel(handle)
                fail(
                    f"gave up after {give_up_after:g} s: {waiting.failure}. "
                    "Check the network and ENFORCER_API_BASE_URL / ENFORCER_ACCOUNTS_BASE_URL "
                    f"(ENFORCER_SPOTIFY_UNREACHABLE_TIMEOUT sets how long to wait); workflow "
                    f"{handle.id} was cancelled and nothing was changed"
                )
    finally:
        result.cancel()


async def _cancel(handle: WorkflowHandle[Any, T]) -> None:
    # It may have ended meanwhile, or the server gone away: then nothing of ours runs on.
    with contextlib.suppress(RPCError):
        await handle.cancel(rpc_timeout=_LOOK_TIMEOUT)
