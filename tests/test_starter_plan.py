"""``starter.py plan``, ``show-plan`` and ``plans``, as a person runs them.

The commands run through typer's ``CliRunner``; the planning workflow runs on the real
Temporal dev server, executed by a worker in a thread of this process whose activities
reach the in-process sandbox (every exchange contract-checked).
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from enforcer.config import Settings
from enforcer.models import BlockedArtist, PlanOptions
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
    *waiting, error = result.stderr.splitlines()
    assert error.startswith("error: ")
    assert all(line.startswith("waiting: ") for line in waiting), waiting
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
    assert "waiting: " in error, "it said what it waited for before giving up"
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
