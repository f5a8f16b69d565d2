"""``starter.py plan``, ``show-plan`` and ``plans``, as a person runs them.

The commands run through typer's ``CliRunner``; the planning workflow runs on the real
Temporal dev server, executed by a worker in a thread of this process whose activities
reach the in-process sandbox (every exchange contract-checked).
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from datetime import time as time_of_day
from typing import Any

import pytest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

import starter
from commands import _waiting
from enforcer.config import Settings
from enforcer.models import BlockedArtist, PlanOptions
from enforcer.sandbox import generate_library
from tests.support.cli import BLOCKED_BAND, Cli, WorkerThread, block
from tests.support.contract import ContractRecorder
from workflows.planning import planning_workflow_id


def listed_plans(cli: Cli) -> list[dict[str, str]]:
    plans: list[dict[str, str]] = json.loads(cli.ok("plans", "--format", "json"))
    return plans


def test_plan_prints_the_dry_run_and_stores_it(worker_cli: Cli) -> None:
    block(worker_cli, BlockedArtist(artist_id=BLOCKED_BAND, name="Blocked Band"))
    before = worker_cli.sandbox.dump_user("alice")

    table = worker_cli.ok("plan")

    assert "Blocked Band" in table
    plan_id = listed_plans(worker_cli)[0]["plan_id"]
    assert plan_id in table
    as_json = json.loads(worker_cli.ok("show-plan", plan_id, "--format", "json"))
    assert as_json["id"] == plan_id
    assert as_json["actions"], "the blocked band's songs are in the plan"
    assert {
        reason["artist_id"] for action in as_json["actions"] for reason in action["reasons"]
    } == {BLOCKED_BAND}
    # A dry run: nothing in the library changed.
    assert worker_cli.sandbox.dump_user("alice") == before


def test_planning_the_same_library_again_gives_the_same_plan(worker_cli: Cli) -> None:
    block(worker_cli, BlockedArtist(artist_id=BLOCKED_BAND, name="Blocked Band"))
    worker_cli.ok("plan", "--format", "json")
    worker_cli.ok("plan", "--format", "json")
    plans = listed_plans(worker_cli)
    assert len(plans) == 1
    worker_cli.ok("plan", "--policy", "primary", "--format", "json")
    assert len(listed_plans(worker_cli)) == 2


def test_an_empty_blocklist_is_refused_before_reading_anything(worker_cli: Cli) -> None:
    error = worker_cli.fails("plan")
    assert "blocklist is empty" in error
    assert worker_cli.sandbox.counters.calls == {}


def test_an_unknown_plan_id_is_named(worker_cli: Cli) -> None:
    assert "nope0123456789ab" in worker_cli.fails("show-plan", "nope0123456789ab")


def test_an_unreachable_temporal_fails_within_seconds(
    cli: Cli,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cli.log_in("alice", "Alice")
    block(cli, BlockedArtist(artist_id=BLOCKED_BAND, name="Blocked Band"))
    monkeypatch.setenv("TEMPORAL_ADDRESS", "127.0.0.1:1")
    error = cli.fails("plan")
    assert "127.0.0.1:1" in error
    assert "Temporal" in error


def closed_loopback_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.fixture
def unreachable_spotify_cli(
    cli: Cli,
    temporal_env: WorkflowEnvironment,
    task_queue: str,
    contract_recorder: ContractRecorder,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[Cli, str]]:
    """The starter and a worker whose Spotify is a loopback port nothing listens on;
    alice is logged in (tokens fresh: no refresh is needed) and has a blocklist."""
    address = f"http://127.0.0.1:{closed_loopback_port()}"
    monkeypatch.setenv("ENFORCER_API_BASE_URL", f"{address}/v1")
    monkeypatch.setenv("ENFORCER_ACCOUNTS_BASE_URL", address)
    temporal_address = temporal_env.client.service_client.config.target_host
    monkeypatch.setenv("TEMPORAL_ADDRESS", temporal_address)
    monkeypatch.setenv("ENFORCER_TASK_QUEUE", task_queue)
    cli.settings = Settings()
    cli.log_in("alice", "Alice")
    block(cli, BlockedArtist(artist_id=BLOCKED_BAND, name="Blocked Band"))
    with WorkerThread(
        temporal_address,
        task_queue,
        cli.settings,
        cli.sandbox,
        contract_recorder,
        over_the_network=True,
    ):
        yield cli, address


def failed_after_waiting(cli: Cli, *args: str) -> str:
    """The stderr of a command that said what it waited for, then failed cleanly."""
    result = cli(*args)
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    intro, *progress, error = result.stderr.splitlines()
    assert intro.startswith("Reading the library of alice")
    assert error.startswith("error: ")
    assert all(line.startswith("planning: ") for line in progress), progress
    return result.stderr


GIVE_UP_BOUND = 30.0
"""A short give-up time, plus the worker's first attempt and the cancellation, on a
busy machine: well below the minutes a hanging `plan` would take."""


def test_an_unreachable_spotify_is_told_and_given_up_on_naming_the_address(
    unreachable_spotify_cli: tuple[Cli, str], temporal_client: Client
) -> None:
    cli, address = unreachable_spotify_cli
    started = time.monotonic()

    error = failed_after_waiting(cli, "plan", "--give-up-after", "3")

    assert time.monotonic() - started < GIVE_UP_BOUND
    assert "planning: waiting: " in error, "it said what it waited for before giving up"
    assert "cannot reach" in error
    assert address in error.splitlines()[-1]
    assert error.splitlines()[-1].startswith("error: gave up after 3 s")
    # Nothing is left running that no one waits for.
    handle = temporal_client.get_workflow_handle(planning_workflow_id("alice", PlanOptions()))
    assert asyncio.run(_ended(handle)), "the planning workflow still runs"
    assert cli.sandbox.counters.calls == {}


def test_the_give_up_time_is_a_setting(
    unreachable_spotify_cli: tuple[Cli, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cli, address = unreachable_spotify_cli
    monkeypatch.setenv("ENFORCER_SPOTIFY_UNREACHABLE_TIMEOUT", "2")
    started = time.monotonic()

    error = failed_after_waiting(cli, "plan")

    assert time.monotonic() - started < GIVE_UP_BOUND
    assert error.splitlines()[-1].startswith("error: gave up after 2 s")
    assert address in error


@pytest.mark.parametrize("seconds", ["0", "-1", "nan", "inf", "-inf", "1e12", "soon", ""])
def test_a_give_up_time_that_is_no_duration_is_refused(cli: Cli, seconds: str) -> None:
    result = cli("plan", "--give-up-after", seconds)
    assert result.exit_code == 2
    assert f"'--give-up-after': {seconds!r} is not a number of seconds" in result.stderr
    assert cli.sandbox.counters.calls == {}


async def _ended(handle: WorkflowHandle[Any, Any]) -> bool:
    for _ in range(50):
        description = await handle.describe()
        if description.status != WorkflowExecutionStatus.RUNNING:
            return True
        await asyncio.sleep(0.2)
    return False


@pytest.fixture
def rate_limited_cli(worker_cli: Cli, monkeypatch: pytest.MonkeyPatch) -> Cli:
    """``worker_cli`` with alice's library large enough to take a dozen seconds under the
    sandbox's rate limit (4 requests per rolling 2 s, then 2 s of penalty), an artist of
    it on her blocklist; a plain line for every change the starter sees."""
    library = generate_library(seed=5, liked_songs=500, playlists=5, user_id="alice")
    worker_cli.sandbox.load_fixture(library)  # alice stays: her login still holds
    worker_cli.sandbox.settings.rate_limit_budget = 4
    worker_cli.sandbox.settings.rate_limit_window = 2.0
    worker_cli.sandbox.settings.rate_limit_retry_after = 2
    # How often a plain line may come, not what it says: every look shows, here.
    monkeypatch.setattr(_waiting, "PLAIN_LINE_EVERY", 0.0)
    artist = library["catalog"]["artists"][0]
    block(worker_cli, BlockedArtist(artist_id=artist["id"], name=artist["name"]))
    return worker_cli


LIKED_SONGS_READ = re.compile(r"liked songs (\d+) in (\d+) pages?")
RATE_LIMIT_WAIT = re.compile(r"waiting for Spotify's rate limit until (\d\d:\d\d:\d\d) UTC")


def test_plan_without_a_terminal_shows_its_progress_in_plain_lines(
    rate_limited_cli: Cli,
) -> None:
    cli = rate_limited_cli
    started = datetime.now(UTC)
    result = cli.runner.invoke(starter.app, ["plan"], env={"TTY_COMPATIBLE": "0"})
    ended = datetime.now(UTC)

    assert result.exit_code == 0, (result.stdout, result.stderr)
    assert cli.sandbox.counters.rate_limited > 0, "the test must meet rate limits to mean anything"
    intro, *lines = result.stderr.splitlines()
    assert intro.startswith("Reading the library of alice (workflow plan/alice/featured)")
    # Plain: one line each, no colour, no cursor movement, no spinner.
    assert "\x1b" not in result.stderr
    assert "\r" not in result.stderr
    assert lines, "the progress was shown"
    assert all(line.startswith("planning: ") for line in lines), lines
    # The pages read grow as they are read.
    pages = [int(found[2]) for line in lines if (found := LIKED_SONGS_READ.search(line))]
    assert pages == sorted(pages)
    assert len(set(pages)) >= 3, pages
    # A wait names when it ends: a time within the run, give or take the 2 s penalty.
    ends = [found[1] for line in lines if (found := RATE_LIMIT_WAIT.search(line))]
    assert ends, lines
    for end in ends:
        at = datetime.combine(started.date(), time_of_day.fromisoformat(end), UTC)
        assert started - timedelta(seconds=1) <= at <= ended + timedelta(seconds=3), end
    assert any("answered 429" in line for line in lines)
    # Then the dry run, as without the progress.
    assert "Plan ID: " in result.stdout
    assert "planning: " not in result.stdout


def test_plan_on_a_terminal_shows_its_progress_on_one_live_line(rate_limited_cli: Cli) -> None:
    result = rate_limited_cli.runner.invoke(
        starter.app, ["plan"], env={"TTY_COMPATIBLE": "1", "COLUMNS": "400"}
    )

    assert result.exit_code == 0, (result.stdout, result.stderr)
    # A live line: drawn and redrawn in place (cursor hidden, lines erased), never a
    # plain line; what it said included the pages read and the rate limit's end.
    assert "\x1b[?25l" in result.stderr
    assert "\x1b[2K" in result.stderr
    assert "planning: " not in result.stderr
    assert LIKED_SONGS_READ.search(result.stderr)
    assert RATE_LIMIT_WAIT.search(result.stderr)
    assert "Plan ID: " in result.stdout


def test_enforce_plan_now_shows_the_same_progress_while_it_plans(rate_limited_cli: Cli) -> None:
    result = rate_limited_cli.runner.invoke(
        starter.app, ["enforce", "--plan-now", "--yes"], env={"TTY_COMPATIBLE": "0"}
    )

    assert result.exit_code == 0, (result.stdout, result.stderr)
    intro, *lines = result.stderr.splitlines()
    assert intro.startswith("Reading the library of alice")
    assert all(line.startswith("planning: ") for line in lines), lines
    pages = [int(found[2]) for line in lines if (found := LIKED_SONGS_READ.search(line))]
    assert len(set(pages)) >= 3, pages
    assert any(RATE_LIMIT_WAIT.search(line) for line in lines), lines
    # Then, as before, the dry run and the batch it started.
    assert "Plan ID: " in result.stdout
    assert "is running." in result.stdout
