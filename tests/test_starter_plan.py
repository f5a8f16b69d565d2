"""``starter.py plan``, ``show-plan`` and ``plans``, as a person runs them.

The commands run through typer's ``CliRunner``; the planning workflow runs on the real
Temporal dev server, executed by a worker in a thread of this process whose activities
reach the in-process sandbox (every exchange contract-checked).
"""

from __future__ import annotations

import json

import pytest

from enforcer.models import BlockedArtist
from tests.support.cli import BLOCKED_BAND, Cli, block


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
