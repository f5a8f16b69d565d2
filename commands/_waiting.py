"""Waiting on a workflow's result while telling the person how it goes and what it is
waiting for, in one progress line.

Invariants, for a command that waits on a workflow through ``wait_saying_why``:

- the person reads one progress line (``ProgressLine``): on a terminal a live line
  under a spinner, rewritten as it changes and gone when the result is there; without
  one (a pipe, a log), plain lines (no colour, no cursor movement) when it changed, at
  most one every ``PLAIN_LINE_EVERY`` seconds, and again every ``REPEAT_EVERY`` seconds
  while it stays the same;
- the line is the command's words for what the workflow's description says, looked at
  every ``POLL_EVERY`` seconds: within seconds of an activity's first failed attempt it
  says what the workflow waits for (an unreachable Spotify at an address, a rate limit
  until a time...);
- a Spotify that cannot be reached for ``give_up_after`` seconds in a row ends the wait
  with an error naming the address, and the workflow is cancelled: nothing is left
  running that no one waits for.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final, TypeVar

from rich.console import Console
from rich.text import Text
from temporalio.api.workflow.v1 import PendingActivityInfo
from temporalio.client import WorkflowExecutionDescription, WorkflowHandle
from temporalio.service import RPCError

from activities import SPOTIFY_UNREACHABLE
from commands._runtime import fail

T = TypeVar("T")

POLL_EVERY: Final = 1.0
"""Seconds between two looks at the workflow: an unreachable Spotify is told within it."""
PLAIN_LINE_EVERY: Final = 5.0
"""Seconds between two plain lines at least (a changed line waits for the next look after)."""
REPEAT_EVERY: Final = 30.0
LOOK_TIMEOUT: Final = timedelta(seconds=5)
"""How long one look at the workflow (its description, a query) may take."""


@dataclass(frozen=True)
class Waiting:
    """What a workflow waits for, as far as Temporal's description of it tells."""

    activity: str
    attempt: int
    failure: str
    """The first line of the failure the activity is retrying after."""
    failure_type: str
    """The failure's type (``RateLimited``, ``SpotifyUnreachable``...)."""
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
        failure_type=chosen.last_failure.application_failure_info.type,
        unreachable=bool(unreachable),
    )


async def _look(handle: WorkflowHandle[Any, T]) -> WorkflowExecutionDescription | None:
    try:
        return await handle.describe(rpc_timeout=LOOK_TIMEOUT)
    except RPCError:
        return None


class ProgressLine:
    """One line telling how the work goes, on ``console`` (see the module's invariants);
    ``prefix`` starts each plain line, so that a log can be searched for them."""

    def __init__(self, console: Console, *, prefix: str, first: str) -> None:
        self._console = console
        self._prefix = prefix
        self._status = console.status(first) if console.is_terminal else None
        self._told = ""
        self._told_at = -math.inf

    def __enter__(self) -> ProgressLine:
        if self._status is not None:
            self._status.start()
        return self

    def __exit__(self, *_: object) -> None:
        if self._status is not None:
            self._status.stop()

    def show(self, line: str, *, news: bool = False) -> None:
        """Shows ``line``; ``news`` (what the workflow waits for changed) is written
        without a terminal at once, not after ``PLAIN_LINE_EVERY``."""
        if self._status is not None:
            # One line: cut to the terminal's width (a spinner and a space before it).
            text = Text(line)
            text.truncate(max(self._console.width - 2, 1), overflow="ellipsis")
            self._status.update(text)
            return
        now = time.monotonic()
        since = now - self._told_at
        changed = line != self._told
        if (changed and (news or since >= PLAIN_LINE_EVERY)) or since >= REPEAT_EVERY:
            self._console.print(
                f"{self._prefix}{line}", markup=False, highlight=False, soft_wrap=True
            )
            self._told, self._told_at = line, now


Say = Callable[[WorkflowExecutionDescription, Waiting | None], Awaitable[str]]
"""The progress line's words, from the workflow's description and what it waits for."""


async def wait_saying_why(
    handle: WorkflowHandle[Any, T],
    *,
    give_up_after: float,
    line: ProgressLine,
    say: Say,
) -> T:
    """The workflow's result, showing ``say``'s words on ``line`` meanwhile; fails
    (exit 1) after ``give_up_after`` seconds of an unreachable Spotify, cancelling the
    workflow."""
    result = asyncio.ensure_future(handle.result())
    unreachable_since: float | None = None
    told: str | None = None  # the failure waited for, last told
    try:
        while True:
            done, _ = await asyncio.wait({result}, timeout=POLL_EVERY)
            if done:
                return result.result()
            description = await _look(handle)
            if description is None:
                continue  # a look that failed says nothing; the next one may
            waiting = waiting_for(list(description.raw_description.pending_activities))
            failure = waiting.failure if waiting is not None else None
            line.show(await say(description, waiting), news=failure != told)
            told = failure
            if waiting is None or not waiting.unreachable:
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
        await handle.cancel(rpc_timeout=LOOK_TIMEOUT)
