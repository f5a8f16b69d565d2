"""``starter.py plan``, ``show-plan`` and ``plans``, as a person runs them.

The commands run through typer's ``CliRunner``; the planning workflow runs on the real
Temporal dev server, executed by a worker in a thread of this process whose activities
reach the in-process sandbox (every exchange contract-checked).
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator

import pytest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from enforcer.config import Settings
from enforcer.models import BlockedArtist
from enforcer.sandbox import Sandbox
from enforcer.session import open_ledger
from tests.support.cli import Cli
from tests.support.contract import ContractRecorder
from tests.support.sandbox import sandbox_transport
from worker import build_worker

BLOCKED_BAND = "arBlockedBand000000000"  # tests/fixtures/small_library.json


class WorkerThread:
    """A worker on its own event loop, as a separate worker process would be."""

    def __init__(
        self,
        address: str,
        task_queue: str,
        settings: Settings,
        sandbox: Sandbox,
        recorder: ContractRecorder,
    ) -> None:
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(
            target=asyncio.run,
            args=(self._serve(address, task_queue, settings, sandbox, recorder),),
            daemon=True,
        )

    async def _serve(
        self,
        address: str,
        task_queue: str,
        settings: Settings,
        sandbox: Sandbox,
        recorder: ContractRecorder,
    ) -> None:
        client = await Client.connect(address, data_converter=pydantic_data_converter)
        async with open_ledger(settings) as ledger:
            transport = sandbox_transport(sandbox, recorder)
            async with build_worker(
                client, settings, ledger, task_queue=task_queue, transport=transport
            ):
                self._ready.set()
                await asyncio.to_thread(self._stop.wait)

    def __enter__(self) -> WorkerThread:
        self._thread.start()
        assert self._ready.wait(timeout=30), "the worker did not start"
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)


@pytest.fixture
def planner_cli(
    cli: Cli,
    temporal_env: WorkflowEnvironment,
    task_queue: str,
    contract_recorder: ContractRecorder,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Cli]:
    monkeypatch.setenv("TEMPORAL_ADDRESS", temporal_env.client.service_client.config.target_host)
    monkeypatch.setenv("ENFORCER_TASK_QUEUE", task_queue)
    cli.log_in("alice", "Alice")
    address = temporal_env.client.service_client.config.target_host
    with WorkerThread(address, task_queue, cli.settings, cli.sandbox, contract_recorder):
        yield cli


def listed_plans(cli: Cli) -> list[dict[str, str]]:
    plans: list[dict[str, str]] = json.loads(cli.ok("plans", "--format", "json"))
    return plans


def block(cli: Cli, *artists: BlockedArtist) -> None:
    async def add() -> None:
        async with open_ledger(cli.settings) as ledger:
            await ledger.add_to_blocklist("alice", list(artists), source="id")

    asyncio.run(add())


def test_plan_prints_the_dry_run_and_stores_it(planner_cli: Cli) -> None:
    block(planner_cli, BlockedArtist(artist_id=BLOCKED_BAND, name="Blocked Band"))
    before = planner_cli.sandbox.dump_user("alice")

    table = planner_cli.ok("plan")

    assert "Blocked Band" in table
    plan_id = listed_plans(planner_cli)[0]["plan_id"]
    assert plan_id in table
    as_json = json.loads(planner_cli.ok("show-plan", plan_id, "--format", "json"))
    assert as_json["id"] == plan_id
    assert as_json["actions"], "the blocked band's songs are in the plan"
    assert {
        reason["artist_id"] for action in as_json["actions"] for reason in action["reasons"]
    } == {BLOCKED_BAND}
    # A dry run: nothing in the library changed.
    assert planner_cli.sandbox.dump_user("alice") == before


def test_planning_the_same_library_again_gives_the_same_plan(planner_cli: Cli) -> None:
    block(planner_cli, BlockedArtist(artist_id=BLOCKED_BAND, name="Blocked Band"))
    planner_cli.ok("plan", "--format", "json")
    planner_cli.ok("plan", "--format", "json")
    plans = listed_plans(planner_cli)
    assert len(plans) == 1
    planner_cli.ok("plan", "--policy", "primary", "--format", "json")
    assert len(listed_plans(planner_cli)) == 2


def test_an_empty_blocklist_is_refused_before_reading_anything(planner_cli: Cli) -> None:
    error = planner_cli.fails("plan")
    assert "blocklist is empty" in error
    assert planner_cli.sandbox.counters.calls == {}


def test_an_unknown_plan_id_is_named(planner_cli: Cli) -> None:
    assert "nope0123456789ab" in planner_cli.fails("show-plan", "nope0123456789ab")


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
