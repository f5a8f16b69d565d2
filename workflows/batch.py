"""What enforcement and rollback share: running one batch of chunks on Temporal.

A batch is an ordered list of chunks, run by activities on the rate-capped Spotify task
queue (up to ``_chunks_per_activity`` chunks each, of any lanes no other activity holds),
a few at a time in the batch's order, the chunks of one lane (one playlist) one after
another.
``BatchWorkflow`` holds the machinery; each workflow says what a chunk is, how many an
activity takes, what its batch's order is and what it does before and after.

Invariants:
- The workflow's whole state is one ``BatchState``: the ``progress`` query, the Web UI's
  details and the next run (continue-as-new) all read it; nothing else carries any.
- A batch writes to an account's library only while it holds the account's turn (one
  writer per account). It waits for the turn visibly (``waiting_for_turn``, naming the
  batch it waits for) and gives it up when it ends.
- The person's controls (pause, resume, cancel) come as signals or as updates. An
  update's validator refuses what cannot apply, with why, before anything is written,
  and its answer is the batch's status after it. A signal or update with arguments it
  does not take changes nothing and is logged; so is a signal of an unknown name.
- Every Spotify activity heartbeats: a chunk of a dead worker is retried on a live one
  within ``SPOTIFY_HEARTBEAT_TIMEOUT`` (seconds, not its start-to-close timeout).
- A control takes effect within about one chunk: an activity of several chunks is
  cancelled on a pause or a cancel, finishes the chunk in hand and completes with the
  chunks it did; the others go back to the front of the window, in order, and a chunk
  is counted once, when an outcome names it done.
- A run continues as new between windows of chunks once Temporal suggests it or its
  history passes ``HISTORY_EVENTS_PER_RUN``: every run stays well under 10,000 events.
- Temporal's own cancellation request (``temporal workflow cancel``, the Web UI's
  button) is the ``cancel`` control: the batch's work runs in a task of its own, shielded
  from it, so the chunks in flight finish and the ledger is made final first.
- An execution ends Canceled in Temporal exactly when its batch ends ``cancelled`` in
  the ledger, however it was cancelled, and only once its ledger record is final and its
  turn given up; every other end is Completed (or Failed, for an input it cannot use).
- Every chunk activity carries the account's label as its fairness key
  (``fairness_key``): on a server with fairness on, the activities waiting in the
  Spotify queue are dispatched round-robin between accounts, not first come first
  served. (It shares the queue's cap, not the app's Spotify budget: past a 429 the
  gate lets through whichever activity calls first.) The key is the label (a keyed
  hash when payloads are encrypted), never a raw account ID where that would be hidden.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
from collections import deque
from collections.abc import Coroutine, Sequence
from datetime import timedelta
from typing import Any, ClassVar, Final, Generic, Protocol, TypeVar

from temporalio import workflow
from temporalio.common import Priority, RawValue
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError

from workflows.policies import LEDGER_RETRY, SPOTIFY_PATIENCE, SPOTIFY_RETRY

with workflow.unsafe.imports_passed_through():
    from activities import LOGIN_REQUIRED, metrics
    from activities.batch import BatchActivities, ExecutionRun
    from enforcer.markdown import kind_name, workflow_link
    from enforcer.models import (
        LIBRARY_LANE,
        AccountTurn,
        BatchState,
        BatchStatus,
        BatchStatusChange,
        ChunkLanesRequest,
        ChunkOutcome,
        ItemsBack,
        ItemTally,
    )
    from workflows.connection import spotify_task_queue
    from workflows.search_attributes import ENFORCEMENT_ACCOUNT, ENFORCEMENT_STATUS

StateT = TypeVar("StateT", bound=BatchState)


class Ended(Protocol):
    """A batch's result: a summary that says how the batch ended."""

    @property
    def status(self) -> BatchStatus: ...


EndedT = TypeVar("EndedT", bound=Ended)

ACTIVITIES_PER_WINDOW: Final = 200
"""Activities' worth of chunks (``_chunks_per_activity`` each) a run starts before it
checks whether to continue as new (about 1,000 history events)."""
PROGRESS_STEPS: Final = 4
"""A batch's progress (its query, the Web UI) moves when an activity ends: in a batch of
few chunks, each of the ``max_in_flight`` activities at once takes at most a quarter of
its share, so that a person watching sees it move."""
HISTORY_EVENTS_PER_RUN: Final = 4_000
"""A run continues as new past this many events even if Temporal does not suggest it."""
LANES_MIXED: Final = "activities-take-chunks-of-several-lanes"
"""The patch after which one activity may take chunks of several lanes (a run started
before it replays as it ran: one lane an activity)."""
CANCELLED_ENDS_CANCELED: Final = "a-cancelled-batch-ends-canceled"
"""The patch after which a batch that ended cancelled ends its execution Canceled (a run
that ended before it replays as it ran: Completed)."""
FAIR_SHARES: Final = "chunk-activities-carry-the-account-as-fairness-key"
"""The patch after which every chunk activity carries the account's fairness key (a run
started before it replays as it ran: no key)."""
FAIRNESS_KEY_BYTES: Final = 64
"""Temporal's longest fairness key; a longer label is replaced by its SHA-256."""
SPOTIFY_HEARTBEAT_TIMEOUT: Final = timedelta(seconds=10)
"""A Spotify activity that sends no heartbeat for this long is retried elsewhere."""
TURN_FIRST_WAIT: Final = timedelta(seconds=2)
TURN_LONGEST_WAIT: Final = timedelta(seconds=30)
CONTROLS: Final = frozenset({"pause", "resume", "cancel", "rollback"})


def fairness_key(account_label: str) -> str:
    """The account's fairness key on the Spotify queue: its label, or the label's
    SHA-256 when the label is longer than Temporal takes."""
    if len(account_label.encode()) <= FAIRNESS_KEY_BYTES:
        return account_label
    return hashlib.sha256(account_label.encode()).hexdigest()


class BatchWorkflow(Generic[StateT]):
    """Fan-out, counting, waiting, status and controls of one batch workflow."""

    _state: StateT
    """Made by the workflow's ``__init__`` (controls may come before ``run`` starts),
    completed from the request by ``run``."""
    _account_id: str
    _account_label: str
    """What unencrypted fields (search attributes) call the account: its ID, or a keyed
    hash of it when payloads are encrypted."""
    _max_in_flight: int
    _chunks_per_run: int | None = None
    """Continue as new after this many chunks (the request's; tests, tuning); None: when
    the run's history is full."""
    _kind: ClassVar[str] = "batch"
    """What the batch is, in the metrics: "enforce", "rollback"."""
    _done_word: ClassVar[str] = "done"
    """What a completed item is, in the Web UI: "removed", "restored"."""
    _chunk_start_to_close: ClassVar[timedelta] = timedelta(minutes=2)
    _chunks_per_activity: ClassVar[int] = 1
    """Chunks one activity may run, one after another."""

    def __init__(self) -> None:
        self._in_flight = 0
        self._busy_lanes: set[int] = set()
        self._lanes_mixed = True
        self._logins_awaited = 0
        self._resumes = 0
        self._cancel_requested = False
        """Temporal was asked to cancel this run (``temporal workflow cancel``, the Web
        UI's button, or the batch itself once it ended cancelled)."""

    # What each workflow says ---------------------------------------------------------

    def _chunk_at(self, position: int) -> int:
        """The chunk at ``position`` in the batch's order (the ledger's order here)."""
        return position

    def _start_chunks(self, chunks: list[int]) -> workflow.ActivityHandle[ChunkOutcome]:
        """Starts the activity of ``chunks`` (a lane's in its order; at most
        ``_chunks_per_activity``), with ``self._spotify_activity``'s options."""
        raise NotImplementedError

    async def _give_up_chunk(self, chunk: int, error: str) -> ChunkOutcome:
        """Ends the chunk's unfinished items failed, with ``error``."""
        raise NotImplementedError

    def _next_run(self) -> Any:
        """The workflow's input for the next run: its request with the state."""
        raise NotImplementedError

    # The run -------------------------------------------------------------------------------

    async def _to_the_end(self, batch: Coroutine[Any, Any, EndedT]) -> EndedT:
        """Runs ``batch`` (the workflow's whole work, ledger record and turn included) to
        its end. Temporal's cancellation request reaches only this task: the batch, in a
        task of its own, takes it as the ``cancel`` control, so its chunks in flight
        finish, the rest is skipped and the ledger is final before the run ends. A batch
        that ended cancelled then ends Canceled in Temporal, however it was cancelled."""
        work = asyncio.create_task(batch)
        while True:
            try:
                ended = await asyncio.shield(work)
                break
            except asyncio.CancelledError:
                workflow.logger.info("Temporal was asked to cancel the batch: cancelling it")
                self._cancel_requested = True
                self._state.cancelled = True
                if work.done():  # it ended in the same instant: as it ended
                    ended = work.result()
                    break
        if ended.status is BatchStatus.CANCELLED and workflow.patched(CANCELLED_ENDS_CANCELED):
            await self._end_canceled()
        return ended

    async def _end_canceled(self) -> None:
        """Ends the execution Canceled. Temporal ends a run Canceled only when it was asked
        to cancel it (a workflow cannot ask for its own run: the server answers "not
        found"), so a batch cancelled by its control asks through an activity, with the
        worker's client, then waits for the request to arrive."""
        await workflow.wait_condition(workflow.all_handlers_finished)
        if not self._cancel_requested:
            info = workflow.info()
            await workflow.execute_activity_method(
                BatchActivities.request_cancellation,
                ExecutionRun(workflow_id=info.workflow_id, run_id=info.run_id),
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=LEDGER_RETRY,
            )
            # Temporal's request arrives as a cancellation of this task, here.
            await workflow.wait_condition(lambda: False)
        raise CancelledError(f"{self._state.batch_id} was cancelled")

    async def _carry_out(self) -> BatchStatus:
        """Runs the batch's chunks, continuing as new whenever a run's history is full,
        and says how the batch ended: completed, or cancelled."""
        if not self._state.cancelled:
            await self._set_status(
                BatchStatus.PAUSED if self._state.paused else BatchStatus.RUNNING
            )
            if not await self._run_chunks():
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(self._next_run())
        return BatchStatus.CANCELLED if self._state.cancelled else BatchStatus.COMPLETED

    def _continue_from(self, state: StateT) -> StateT:
        """The state a continued run starts from, with the controls that came before
        its first line ran; a new run has no status of its own yet, so the first one it
        sets is recorded."""
        resumed = state.model_copy(deep=True)
        resumed.status = BatchStatus.PENDING
        resumed.paused = resumed.paused or self._state.paused
        resumed.cancelled = resumed.cancelled or self._state.cancelled
        resumed.roll_back = resumed.roll_back or self._state.roll_back
        return resumed

    # Messages ----------------------------------------------------------------------------

    @workflow.signal
    def cancel(self, *unexpected: RawValue) -> None:
        """No new chunks; the ones in flight finish; the rest of the items are skipped."""
        if not self._rejected_signal("cancel", unexpected):
            self._state.cancelled = True

    @workflow.signal
    async def pause(self, *unexpected: RawValue) -> None:
        """No new chunks until ``resume``; the ones in flight finish."""
        if not self._rejected_signal("pause", unexpected):
            await self._pause()

    @workflow.signal
    async def resume(self, *unexpected: RawValue) -> None:
        """Ends a pause, or the wait for a new login."""
        if not self._rejected_signal("resume", unexpected):
            await self._resume()

    @workflow.signal(dynamic=True)
    def unknown_signal(self, name: str, args: Sequence[RawValue]) -> None:
        workflow.logger.warning(
            "ignored a signal %r with %d argument(s): this workflow takes %s",
            name,
            len(args),
            ", ".join(sorted(self._signal_names())),
        )

    @workflow.update(name="cancel")
    async def cancel_update(self, *unexpected: RawValue) -> BatchStatus:
        """Like the signal; answers the status (the batch ends cancelled once the chunks
        in flight are done)."""
        self._state.cancelled = True
        return self._state.status

    @cancel_update.validator
    def _validate_cancel(self, *unexpected: RawValue) -> None:
        self._refuse_arguments("cancel", unexpected)

    @workflow.update(name="pause")
    async def pause_update(self, *unexpected: RawValue) -> BatchStatus:
        await self._pause()
        return self._state.status

    @pause_update.validator
    def _validate_pause(self, *unexpected: RawValue) -> None:
        self._refuse_arguments("pause", unexpected)
        if self._state.cancelled:
            raise ValueError(
                f"{self._state.batch_id} is being cancelled: there is nothing to pause"
            )

    @workflow.update(name="resume")
    async def resume_update(self, *unexpected: RawValue) -> BatchStatus:
        await self._resume()
        return self._state.status

    @resume_update.validator
    def _validate_resume(self, *unexpected: RawValue) -> None:
        self._refuse_arguments("resume", unexpected)
        waiting = self._state.status is BatchStatus.WAITING_FOR_LOGIN
        if not self._state.paused and not waiting:
            raise ValueError(
                f"{self._state.batch_id} is {self._state.status.value}, not paused: "
                "there is nothing to resume"
            )

    def _standing(self) -> dict[str, Any]:
        """What every batch's ``progress`` answer says, from the state."""
        state = self._state
        return {
            "batch_id": state.batch_id,
            "status": state.status,
            "totals": state.layout.totals,
            "tallies": state.tallies,
            "chunks_total": state.layout.chunks,
            "chunks_done": state.chunks_done,
            "api_calls": state.traffic.sent,
            "rate_limit_waits": state.traffic.rate_limited,
            "rate_limit_wait_seconds": state.traffic.waited_seconds,
            "waiting_for": state.waiting_for,
        }

    def _signal_names(self) -> set[str]:
        return {"pause", "resume", "cancel"}

    def _rejected_signal(self, name: str, unexpected: Sequence[RawValue]) -> bool:
        """True (and logged) when a signal came with arguments it does not take."""
        if unexpected:
            workflow.logger.warning(
                "ignored the %r signal: it takes no argument, it came with %d",
                name,
                len(unexpected),
            )
        return bool(unexpected)

    @staticmethod
    def _refuse_arguments(name: str, unexpected: Sequence[RawValue]) -> None:
        if unexpected:
            raise ValueError(f"{name} takes no argument; it was given {len(unexpected)}")

    async def _pause(self) -> None:
        self._state.paused = True
        if self._state.status is BatchStatus.RUNNING:
            await self._set_status(BatchStatus.PAUSED)

    async def _resume(self) -> None:
        self._state.paused = False
        self._resumes += 1
        if self._state.status in (BatchStatus.PAUSED, BatchStatus.WAITING_FOR_LOGIN):
            await self._set_status(BatchStatus.RUNNING)

    # The account's turn ------------------------------------------------------------------

    async def _take_turn(self) -> bool:
        """Waits until this batch holds its account's turn; False if cancelled first."""
        wait = TURN_FIRST_WAIT
        turn = AccountTurn(account_id=self._account_id, batch_id=self._state.batch_id)
        while True:
            holder = await workflow.execute_activity_method(
                BatchActivities.take_turn,
                turn,
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=LEDGER_RETRY,
            )
            if holder == self._state.batch_id:
                self._state.waiting_for = None
                return True
            self._state.waiting_for = (
                f"batch {holder}, which is changing this account's library now; "
                "this one starts when it ends"
            )
            await self._set_status(BatchStatus.WAITING_FOR_TURN, force=True)
            # Temporal's wait_condition raises TimeoutError when its timeout passes: that
            # is the moment to ask for the turn again, not a failure of the batch.
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(lambda: self._state.cancelled, timeout=wait)
            if self._state.cancelled:
                self._state.waiting_for = None
                return False
            wait = min(wait * 2, TURN_LONGEST_WAIT)

    async def _end_turn(self) -> None:
        await workflow.execute_activity_method(
            BatchActivities.end_turn,
            AccountTurn(account_id=self._account_id, batch_id=self._state.batch_id),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=LEDGER_RETRY,
        )

    # The fan-out -------------------------------------------------------------------------

    async def _run_chunks(self) -> bool:
        """Runs the batch's chunks from ``next_position`` on, a window at a time; False
        when this run has made enough history and should continue as new."""
        state = self._state
        total = state.layout.chunks
        self._lanes_mixed = workflow.patched(LANES_MIXED)
        while state.next_position < total and not state.cancelled:
            first = state.next_position
            window = ACTIVITIES_PER_WINDOW * self._chunks_per_activity
            if self._chunks_per_run is not None:
                window = min(window, self._chunks_per_run)
            count = min(window, total - first)
            await self._run_window(await self._window(first, count))
            state.next_position = first + count
            if state.next_position < total and not state.cancelled and self._run_full():
                return False
        return True

    async def _window(self, first: int, count: int) -> list[tuple[int, int]]:
        """(chunk, lane) of positions ``first`` to ``first + count - 1``."""
        chunks = [self._chunk_at(position) for position in range(first, first + count)]
        lanes: dict[int, int] = {}
        start = 0
        while start < len(chunks):
            stop = start + 1
            while stop < len(chunks) and chunks[stop] == chunks[stop - 1] + 1:
                stop += 1
            found = await workflow.execute_activity_method(
                BatchActivities.chunk_lanes,
                ChunkLanesRequest(
                    batch_id=self._state.batch_id, first=chunks[start], count=stop - start
                ),
                start_to_close_timeout=timedelta(minutes=1),
                retry_policy=LEDGER_RETRY,
            )
            numbers = range(found.first, found.first + len(found.lanes))
            lanes.update(zip(numbers, found.lanes, strict=True))
            start = stop
        return [(chunk, lanes[chunk]) for chunk in chunks]

    async def _run_window(self, window: list[tuple[int, int]]) -> None:
        waiting = deque(window)
        while not self._state.cancelled:
            await workflow.wait_condition(
                lambda: (
                    self._state.cancelled
                    or (not waiting and self._in_flight == 0)
                    or self._next_group(waiting) is not None
                )
            )
            if self._state.cancelled or (not waiting and self._in_flight == 0):
                break
            group = self._next_group(waiting)
            assert group is not None
            for entry in group:
                waiting.remove(entry)
            self._in_flight += 1
            lanes = {lane for _chunk, lane in group if lane != LIBRARY_LANE}
            self._busy_lanes |= lanes
            asyncio.create_task(self._chunks(group, lanes, waiting))  # noqa: RUF006 - awaited below
        await workflow.wait_condition(lambda: self._in_flight == 0)

    def _next_group(self, waiting: deque[tuple[int, int]]) -> list[tuple[int, int]] | None:
        """The next chunks one activity may run: the first startable one and the
        startable ones after it in the batch's order (a playlist with a few blocked songs
        is a chunk alone: an activity of one would cost five history events for one
        call); at most ``_chunks_per_activity``, fewer in a small batch (its progress
        moves ``PROGRESS_STEPS`` times at least), and fewer as the window runs out, so
        that the last chunks of a window are shared among the activities in flight. Taken in
        order, a lane's chunks stay in order: a busy lane's are all passed over."""
        first = self._next_startable(waiting)
        if first is None:
            return None
        share = -(-len(waiting) // self._max_in_flight)
        steps = -(-self._state.layout.chunks // (self._max_in_flight * PROGRESS_STEPS))
        size = max(1, min(self._chunks_per_activity, share, steps))
        group = [first]
        for chunk, lane in itertools.islice(waiting, waiting.index(first) + 1, None):
            if len(group) >= size:
                break
            if self._lanes_mixed:
                if self._lane_free(lane):
                    group.append((chunk, lane))
            elif lane == first[1] and chunk == group[-1][0] + 1:
                group.append((chunk, lane))
            else:  # replaying a run from before LANES_MIXED: one lane, numbered in a row
                break
        return group

    def _next_startable(self, waiting: deque[tuple[int, int]]) -> tuple[int, int] | None:
        if self._state.paused or self._logins_awaited or self._in_flight >= self._max_in_flight:
            return None
        for chunk, lane in waiting:
            if self._lane_free(lane):
                return chunk, lane
            # Later chunks of a busy lane wait; so must nothing else of that lane.
        return None

    def _lane_free(self, lane: int) -> bool:
        """Whether an activity may take a chunk of ``lane`` now: library chunks are
        independent; a playlist's are written by one activity at a time."""
        return lane == LIBRARY_LANE or lane not in self._busy_lanes

    async def _chunks(
        self, group: list[tuple[int, int]], lanes: set[int], waiting: deque[tuple[int, int]]
    ) -> None:
        try:
            stopped = await self._run_group([chunk for chunk, _lane in group])
            # Back to the front, in order: their lanes are busy until this ends, so
            # nothing of them can overtake them.
            lane_of = dict(group)
            waiting.extendleft((chunk, lane_of[chunk]) for chunk in reversed(stopped))
        finally:
            self._in_flight -= 1
            self._busy_lanes -= lanes

    async def _run_group(self, chunks: list[int]) -> list[int]:
        """Runs ``chunks`` (a lane's in its order) until each is done; returns those
        a pause or a cancel stopped before they ran."""
        pending = list(chunks)
        while pending:
            if self._state.paused or self._state.cancelled:
                return pending
            resumes = self._resumes
            try:
                outcome: ChunkOutcome | None = await self._applied(pending)
            except ActivityError as error:
                if isinstance(error.cause, CancelledError):
                    outcome = None  # stopped before it finished a chunk
                elif error_type(error) == LOGIN_REQUIRED and not self._state.cancelled:
                    await self._wait_for_login(resumed_after=resumes)
                    continue
                elif len(pending) > 1:
                    # Chunk by chunk, so that the error ends only the chunk it is of.
                    for index, chunk in enumerate(pending):
                        if stopped := await self._run_group([chunk]):
                            return stopped + pending[index + 1 :]
                    return []
                else:
                    cause = error.cause if error.cause is not None else error
                    outcome = await self._give_up_chunk(pending[0], str(cause))
            if outcome is not None:
                self._count(outcome)
                pending = [chunk for chunk in pending if chunk not in outcome.chunks]
        return []

    async def _applied(self, chunks: list[int]) -> ChunkOutcome:
        """Runs the chunks' activity; one of several chunks is cancelled on a pause or a
        cancel and finishes the chunk in hand first (it completes with the chunks done)."""
        handle = self._start_chunks(chunks)
        if len(chunks) > 1:
            await workflow.wait_condition(
                lambda: handle.done() or self._state.paused or self._state.cancelled
            )
            if not handle.done():
                handle.cancel()
        return await handle

    def _spotify_activity(self) -> dict[str, Any]:
        """Options of every chunk activity: the Spotify queue, heartbeats, 429 retries,
        and the account's fair share of the queue's rate."""
        options: dict[str, Any] = {
            "task_queue": spotify_task_queue(workflow.info().task_queue),
            "start_to_close_timeout": self._chunk_start_to_close,
            "heartbeat_timeout": SPOTIFY_HEARTBEAT_TIMEOUT,
            "schedule_to_close_timeout": SPOTIFY_PATIENCE,
            "retry_policy": SPOTIFY_RETRY,
        }
        if workflow.patched(FAIR_SHARES):
            options["priority"] = Priority(fairness_key=fairness_key(self._account_label))
        return options

    async def _wait_for_login(self, *, resumed_after: int) -> None:
        """Parks the batch until a person logs in again and sends ``resume``. A chunk
        whose attempt began before a ``resume`` that has come since failed with the
        old login: it goes again at once, or it would wait for a second ``resume``."""
        if self._resumes > resumed_after:
            return
        resumes_before = resumed_after
        self._logins_awaited += 1
        try:
            if self._state.status is not BatchStatus.WAITING_FOR_LOGIN:
                self._state.waiting_for = "a new login (`starter.py login`, then `resume`)"
                await self._set_status(BatchStatus.WAITING_FOR_LOGIN)
            await workflow.wait_condition(
                lambda: self._resumes > resumes_before or self._state.cancelled
            )
        finally:
            self._logins_awaited -= 1
            if not self._logins_awaited:
                self._state.waiting_for = None

    def _count(self, outcome: ChunkOutcome) -> None:
        self._state.count(outcome)
        self._show_details()

    def _run_full(self) -> bool:
        """Whether this run has done its share: its chunks (``_chunks_per_run``) or,
        by default, its history (Temporal's suggestion, or ``HISTORY_EVENTS_PER_RUN``)."""
        if self._chunks_per_run is not None:
            return True  # a window is at most that many chunks
        info = workflow.info()
        return (
            info.is_continue_as_new_suggested()
            or info.get_current_history_length() >= HISTORY_EVENTS_PER_RUN
        )

    # Status, everywhere a person looks ----------------------------------------------------

    def _show_status(self, status: BatchStatus, *, searched_as: BatchStatus | None = None) -> None:
        """The query, the search attribute and the Web UI's details. The attribute says
        ``searched_as`` when given: a rollback ends saying what became of the batch it
        undid (``rolled_back``, ``partly_rolled_back``), so that a list query on the
        status finds every batch undone, whichever execution undid it."""
        self._state.status = status
        shown = searched_as or status
        workflow.upsert_search_attributes([ENFORCEMENT_STATUS.value_set(shown.value)])
        self._show_details()

    def _show_account(self) -> None:
        workflow.upsert_search_attributes([ENFORCEMENT_ACCOUNT.value_set(self._account_label)])

    async def _set_status(self, status: BatchStatus, *, force: bool = False) -> None:
        """The status everywhere a person looks: the query, the Web UI, the ledger."""
        if status is self._state.status and not force:
            return
        self._show_status(status)
        await workflow.execute_activity_method(
            BatchActivities.record_status,
            BatchStatusChange(batch_id=self._state.batch_id, status=status),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=LEDGER_RETRY,
        )

    def _count_end(self) -> None:
        """The batch ended, with the status it has now: one in the metrics (a replay
        records nothing, so a batch is counted once, by the run that ended it)."""
        ended = metrics.BATCHES_ENDED
        counter = workflow.metric_meter().create_counter(ended.name, ended.description)
        counter.add(1, {"batch_kind": self._kind, "status": self._state.status.value})

    def _show_details(self) -> None:
        """The Web UI's current details, from the state. Setting them costs nothing in
        history: the UI asks the worker for them (Temporal's built-in metadata query), so
        they follow every chunk's outcome, not only a change of status."""
        workflow.set_current_details(self._describe())

    def _describe(self) -> str:
        """The Web UI's current details, in Markdown: where the batch stands, a line per
        kind of item, Spotify's traffic, and what a rollback put back."""
        state = self._state
        paragraphs = [f"**status: {state.status.value.replace('_', ' ')}**"]
        if state.waiting_for:
            paragraphs.append(f"waiting for {state.waiting_for}")
        paragraphs.append(
            "\n".join(
                f"- {kind_name(entity_type)}: {done.completed} {self._done_word}, "
                f"{done.failed} failed, {done.skipped} skipped of {total}"
                for entity_type, total in state.layout.totals.items()
                for done in [state.tallies.get(entity_type, ItemTally())]
            )
        )
        traffic = state.traffic
        paragraphs.append(
            f"requests to Spotify: {traffic.sent}; 429s: {traffic.rate_limited} "
            f"({traffic.waited_seconds:.0f} s waited)"
        )
        if state.items_back is not None:
            paragraphs.append(self._undone_line(state.items_back))
        return "\n\n".join(paragraph for paragraph in paragraphs if paragraph)

    def _undone_line(self, items_back: ItemsBack) -> str:
        """The Web UI's line on what a rollback put back."""
        return f"{items_back.back} of {items_back.removed} removed items back"

    @staticmethod
    def _link_to(workflow_id: str) -> str:
        """A Markdown link to ``workflow_id``'s page in the Web UI."""
        return workflow_link(workflow.info().namespace, workflow_id)


def error_type(error: ActivityError) -> str | None:
    """The ``ApplicationError`` type an activity failed with, if it was one."""
    cause = error.cause
    return cause.type if isinstance(cause, ApplicationError) else None
