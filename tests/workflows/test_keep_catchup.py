"""``starter.py schedule`` after Temporal was down: one catch-up run, not a burst.

A schedule lives in Temporal's persistence. This test's dev server keeps it in a SQLite
file, is stopped for several intervals, and is started again on the same port and file,
as a server is restarted after an outage. The policy ``schedule create`` sets
(``commands/schedule.py``) is what a person relies on then: of the runs due while the
server was down, only those within the catch-up window (one interval, raised to
Temporal's floor of 10 s) are made up, and the overlap policy (skip) lets one of them
start. So exactly one run whose scheduled time fell in the outage starts when the server
is back, it enforces what the library gained meanwhile, and the schedule goes on at its
interval.

The interval is 5 s, not the shortest ``create`` accepts (1 s): a run takes a second or
more, so at 1 s one is nearly always going, and a run going when the server stops rightly
absorbs the catch-up (overlap skip); whether there is one would be down to the moment of
the stop. At 5 s there is a quiet moment in every period to stop in, and the catch-up
window (10 s) still spans two missed times: it is the overlap policy, not the window,
that must make them one run, which is where a burst would come from.

The runs made up are counted from Temporal's own record of the schedule's actions (each
one's scheduled time and the moment it was taken), not from the clock of this test: they
are the runs due by the moment Temporal took its first action after the restart, since
every time due by then is one it handles in that same step, and a run on schedule is due
after it. A burst (overlap "allow all") shows as two, and so does a queue of catch-ups
(overlap "buffer all"), even though the second starts later.

The worker, a thread of this process, runs through the outage, as a deployment's worker
does while only Temporal restarts: it reconnects by itself.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import (
    Client,
    ScheduleActionExecutionStartWorkflow,
    ScheduleActionResult,
    ScheduleInfo,
)
from temporalio.testing import WorkflowEnvironment

from activities.keep import keep_schedule_id
from enforcer.models import BlockedArtist
from tests.support.cli import BLOCKED_BAND, Cli, WorkerThread, block
from tests.support.contract import ContractRecorder
from tests.support.temporal import free_port, start_dev_server
from tests.workflows.test_keep_enforced import BALLAD, edit_alice, like, liked, shown, until

INTERVAL = timedelta(seconds=5)
OUTAGE = 4 * INTERVAL
"""Longer than the catch-up window (10 s): some missed runs fall outside it."""
QUIET = timedelta(seconds=2)
"""The server is stopped only while no run is going and the next one is at least this
far away: a run that started as it stopped would be going when it is back."""
RUN_PREFIX = f"{keep_schedule_id('alice')}-"


class RestartableServer:
    """A dev server whose state is in ``database``, started again on the same port."""

    def __init__(self, database: Path) -> None:
        self.database = database
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self._env: WorkflowEnvironment | None = None

    def start(self) -> None:
        self._env = asyncio.run(start_dev_server(port=self.port, database=str(self.database)))

    def stop(self) -> None:
        if self._env is not None:
            asyncio.run(self._env.shutdown())
            self._env = None


@pytest.fixture
def restartable_server(tmp_path: Path) -> Iterator[RestartableServer]:
    server = RestartableServer(tmp_path / "temporal.db")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def scheduled_at(run: dict[str, Any]) -> datetime:
    """A run's scheduled (nominal) time: Temporal appends it to the run's workflow ID."""
    run_id: str = run["run_id"]
    assert run_id.startswith(RUN_PREFIX), run_id
    return datetime.strptime(run_id.removeprefix(RUN_PREFIX), "%Y-%m-%dT%H:%M:%S%z")


async def schedule_info(address: str) -> ScheduleInfo:
    """What Temporal knows of the schedule's actions: each one's scheduled time and the
    time it was taken, the times missed for the catch-up window (``schedule show`` tells
    neither)."""
    client = await Client.connect(address)
    described = await client.get_schedule_handle(keep_schedule_id("alice")).describe()
    return described.info


def run_id_of(action: ScheduleActionResult) -> str:
    started = action.action
    assert isinstance(started, ScheduleActionExecutionStartWorkflow), started
    return started.workflow_id


def quiet(cli: Cli) -> dict[str, Any] | None:
    """``schedule show`` at a moment when no run is going and none is about to start."""
    document = shown(cli)
    if any(run["state"] == "running" for run in document["recent_runs"]):
        return None
    next_run = datetime.fromisoformat(document["next_runs"][0])
    return document if next_run - datetime.now(UTC) >= QUIET else None


def test_an_outage_gives_one_catch_up_run_then_the_schedule_goes_on(
    cli: Cli,
    restartable_server: RestartableServer,
    task_queue: str,
    contract_recorder: ContractRecorder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = restartable_server
    monkeypatch.setenv("TEMPORAL_ADDRESS", server.address)
    monkeypatch.setenv("ENFORCER_TASK_QUEUE", task_queue)
    cli.log_in("alice", "Alice")
    block(cli, BlockedArtist(artist_id=BLOCKED_BAND, name="Blocked Band"))
    with WorkerThread(server.address, task_queue, cli.settings, cli.sandbox, contract_recorder):
        cli.ok("schedule", "create", "--every", "5s", "--settle", "0")
        try:
            until(
                "a first run to remove the blocked band",
                lambda: [
                    run
                    for run in shown(cli)["recent_runs"]
                    if run["state"] == "completed" and run["outcome"].startswith("removed")
                ],
            )
            before = until("a moment with no run going or due", lambda: quiet(cli))
            stopped_at = datetime.now(UTC)
            server.stop()

            # While Temporal is down the person likes a song of the blocked band.
            edit_alice(cli, like(BALLAD))
            # The outage itself: nothing is awaited, the server is simply away this long.
            time.sleep(max(0.0, (stopped_at + OUTAGE - datetime.now(UTC)).total_seconds()))
            server.start()
            back_at = datetime.now(UTC)

            def caught_up_and_on() -> dict[str, Any] | None:
                """``schedule show`` once every run due before the server was back has
                ended, and one due after it too."""
                document = shown(cli)
                runs = document["recent_runs"]
                due_before = [run for run in runs if scheduled_at(run) < back_at]
                if any(run["state"] == "running" for run in due_before):
                    return None
                later = [
                    run
                    for run in runs
                    if scheduled_at(run) >= back_at and run["state"] != "running"
                ]
                return document if later else None

            after = until("a run on schedule after the outage", caught_up_and_on)
            info = asyncio.run(schedule_info(server.address))
        finally:
            cli("schedule", "delete")

    earlier = {run["run_id"] for run in before["recent_runs"]}
    new_actions = sorted(
        (action for action in info.recent_actions if run_id_of(action) not in earlier),
        key=lambda action: action.started_at,
    )
    assert info.num_actions - before["runs"] == len(new_actions), "runs beyond the recent ten"
    first = new_actions[0]
    assert first.started_at >= stopped_at, f"a run started as the server stopped: {first}"
    # Made up when the server was back: every run due by the moment Temporal took the
    # first action after the outage. A run on schedule is due after that moment (a time
    # due before it is one of the missed ones, handled in that same step).
    made_up = [action for action in new_actions if action.scheduled_at <= first.started_at]
    assert len(made_up) == 1, (
        f"{len(made_up)} runs for the {int(OUTAGE / INTERVAL)} or so times missed while "
        f"Temporal was down (from {stopped_at:%H:%M:%S} to {back_at:%H:%M:%S}): "
        + "; ".join(
            f"{run_id_of(action)} started {action.started_at:%H:%M:%S.%f}" for action in made_up
        )
    )
    assert stopped_at <= first.scheduled_at < back_at, first
    # The catch-up run did its job: the song liked during the outage is gone.
    (catch_up,) = (run for run in after["recent_runs"] if run["run_id"] == run_id_of(first))
    assert catch_up["state"] == "completed", catch_up
    assert catch_up["outcome"].startswith("removed 1 (Blocked Band 1)"), catch_up
    assert BALLAD not in liked(cli)
    # Why one: the older missed times fell outside the catch-up window, and of the two
    # within it the overlap policy skipped the second while the first ran.
    assert info.num_actions_missed_catchup_window > 0, "no missed time was outside the window"
    assert info.num_actions_skipped_overlap > before["skipped_while_running"], (
        "the second missed time within the catch-up window was not skipped by overlap"
    )
