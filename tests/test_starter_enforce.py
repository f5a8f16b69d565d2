"""``starter.py enforce``, ``status``, ``cancel``, ``pause``, ``resume`` and ``batches``.

The commands run through typer's ``CliRunner``; the planning and enforcement workflows
run on the real Temporal dev server, executed by a worker in a thread of this process
whose activities reach the in-process sandbox (every exchange contract-checked).

The dev server lives for the whole session and a batch's workflow ID is its plan's ID:
each test blocks the band under a name of its own, which gives its plan an ID (and so a
batch) that no other test shares.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from commands import _batches
from enforcer.models import BlockedArtist, LibrarySnapshot, PlanOptions, ProtectList
from enforcer.planner import make_plan
from enforcer.sandbox import Faults
from enforcer.session import open_ledger
from tests.support.cli import BLOCKED_BAND, Cli
from workflows.enforcement import enforcement_workflow_id

ROOT = Path(__file__).resolve().parent.parent


def planned(cli: Cli) -> dict[str, Any]:
    """Plans alice's library; the plan as JSON."""
    plan: dict[str, Any] = json.loads(cli.ok("plan", "--format", "json"))
    return plan


def write_calls(cli: Cli) -> int:
    return sum(n for endpoint, n in cli.sandbox.counters.calls.items() if endpoint[:4] != "GET ")


def still_in_library(cli: Cli, plan: dict[str, Any]) -> list[str]:
    """The names of the plan's actions whose entity the sandbox's library still holds."""
    library = cli.sandbox.dump_user("alice")
    liked = {song["track_id"] for song in library["liked_songs"]}
    albums = {album["album_id"] for album in library["saved_albums"]}
    artists = set(library["followed_artists"])
    playlists = {
        playlist["id"]: {item.get("uri") for item in playlist["items"]}
        for playlist in cli.sandbox.dump()["playlists"]
    }
    held = {
        "liked_song": lambda action: action["entity_id"] in liked,
        "saved_album": lambda action: action["entity_id"] in albums,
        "followed_artist": lambda action: action["entity_id"] in artists,
        "playlist_item": lambda action: action["uri"] in playlists[action["container_id"]],
    }
    return [a["name"] for a in plan["actions"] if held[a["entity_type"]](a)]


def started(temporal_env: WorkflowEnvironment, workflow_id: str) -> bool:
    """Whether the dev server knows ``workflow_id`` (asked from this test's own loop)."""

    async def describe() -> bool:
        address = temporal_env.client.service_client.config.target_host
        client = await Client.connect(address)
        try:
            await client.get_workflow_handle(workflow_id).describe()
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND:
                return False
            raise
        return True

    return asyncio.run(describe())


def test_enforce_removes_the_plan_from_the_library_and_prints_the_summary(
    enforcer_cli: Cli,
) -> None:
    plan = planned(enforcer_cli)
    assert plan["actions"]
    assert still_in_library(enforcer_cli, plan)

    output = enforcer_cli.ok("enforce", plan["id"], "--yes", "--watch")

    assert still_in_library(enforcer_cli, plan) == []
    batch_id = enforcement_workflow_id("alice", plan["id"])
    assert f"Batch {batch_id}" in output
    assert "completed" in output
    assert "Liked songs" in output
    assert "Playlist items" in output
    assert "API calls" in output
    assert "Rate-limit waits" in output


def test_enforcing_a_plan_again_writes_nothing_and_shows_the_earlier_result(
    enforcer_cli: Cli,
) -> None:
    plan = planned(enforcer_cli)
    first = json.loads(
        enforcer_cli.ok("status", _enforced(enforcer_cli, plan["id"]), "--format", "json")
    )
    writes = write_calls(enforcer_cli)

    again = enforcer_cli.ok("enforce", plan["id"], "--yes")

    assert "already enforced" in again
    assert "completed" in again
    assert write_calls(enforcer_cli) == writes
    second = json.loads(
        enforcer_cli.ok("status", enforcement_workflow_id("alice", plan["id"]), "--format", "json")
    )
    assert second == first
    assert second["state"] == "ended"
    assert second["summary"]["status"] == "completed"
    assert sum(t["completed"] for t in second["summary"]["tallies"].values()) == len(
        plan["actions"]
    )


def _enforced(cli: Cli, plan_id: str) -> str:
    cli.ok("enforce", plan_id, "--yes", "--watch")
    return enforcement_workflow_id("alice", plan_id)


def test_status_of_a_finished_batch_is_its_summary(enforcer_cli: Cli) -> None:
    plan = planned(enforcer_cli)
    batch_id = _enforced(enforcer_cli, plan["id"])

    table = enforcer_cli.ok("status", batch_id)

    assert f"Batch {batch_id}" in table
    assert "completed" in table
    assert "Duration" in table
    assert "No item failed" in enforcer_cli.ok("status", batch_id, "--errors")


def test_enforce_without_watch_says_how_to_follow_the_batch(enforcer_cli: Cli) -> None:
    plan = planned(enforcer_cli)
    batch_id = enforcement_workflow_id("alice", plan["id"])

    output = enforcer_cli.ok("enforce", plan["id"], "--yes")

    assert f"starter.py status {batch_id} --watch" in output
    assert "/namespaces/default/workflows/enforce%2Falice%2F" in output
    ended = json.loads(enforcer_cli.ok("status", batch_id, "--watch", "--format", "json"))
    assert ended["summary"]["status"] == "completed"


def listed_batches(cli: Cli, *options: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads(cli.ok("batches", "--format", "json", *options))
    return rows


def test_batches_lists_the_batch_newest_first(enforcer_cli: Cli) -> None:
    plan = planned(enforcer_cli)
    batch_id = _enforced(enforcer_cli, plan["id"])

    # Other tests' batches of alice share the session's server: this one is the newest.
    deadline = time.monotonic() + 10
    rows = listed_batches(enforcer_cli)
    while (not rows or rows[0]["status"] != "completed") and time.monotonic() < deadline:
        time.sleep(0.2)  # visibility follows the workflow within moments
        rows = listed_batches(enforcer_cli)
    assert rows[0]["batch_id"] == batch_id
    assert rows[0]["plan_id"] == plan["id"]
    assert rows[0]["status"] == "completed"
    assert rows[0]["removed"] == rows[0]["total"] == str(len(plan["actions"]))
    assert rows[0]["failed"] == rows[0]["skipped"] == "0"
    started_at = [row["started_at"] for row in rows]
    assert started_at == sorted(started_at, reverse=True)
    assert batch_id in {
        row["batch_id"] for row in listed_batches(enforcer_cli, "--status", "completed")
    }
    assert batch_id not in {
        row["batch_id"] for row in listed_batches(enforcer_cli, "--status", "running")
    }


def test_signals_to_a_finished_batch_are_refused(enforcer_cli: Cli) -> None:
    batch_id = _enforced(enforcer_cli, planned(enforcer_cli)["id"])
    for signal in ("cancel", "pause", "resume"):
        error = enforcer_cli.fails(signal, batch_id)
        assert batch_id in error
        assert "ended" in error


def test_an_unknown_plan_is_named_and_nothing_starts(
    enforcer_cli: Cli, temporal_env: WorkflowEnvironment
) -> None:
    error = enforcer_cli.fails("enforce", "nope0123456789ab", "--yes")
    assert "nope0123456789ab" in error
    assert not started(temporal_env, enforcement_workflow_id("alice", "nope0123456789ab"))


def test_without_a_terminal_enforce_asks_for_yes_and_starts_nothing(
    enforcer_cli: Cli, temporal_env: WorkflowEnvironment
) -> None:
    plan = planned(enforcer_cli)
    writes = write_calls(enforcer_cli)

    assert "--yes" in enforcer_cli.fails("enforce", plan["id"])

    assert not started(temporal_env, enforcement_workflow_id("alice", plan["id"]))
    assert write_calls(enforcer_cli) == writes


def test_plan_id_and_plan_now_are_exclusive(enforcer_cli: Cli) -> None:
    assert "exactly one" in enforcer_cli.fails("enforce", "--yes")
    assert "exactly one" in enforcer_cli.fails("enforce", "abc", "--plan-now", "--yes")
    assert "--full" in enforcer_cli.fails("enforce", "abc", "--full", "--yes")


def test_enforce_plan_now_plans_then_enforces(enforcer_cli: Cli) -> None:
    output = enforcer_cli.ok("enforce", "--plan-now", "--yes", "--watch")
    assert "completed" in output
    # Planned again from the last scan, then read whole: the same empty plan.
    again = json.loads(enforcer_cli.ok("plan", "--format", "json"))
    assert again["actions"] == []
    assert json.loads(enforcer_cli.ok("plan", "--full", "--format", "json"))["id"] == again["id"]


def batch_status(cli: Cli, batch_id: str) -> str:
    result = cli("status", batch_id, "--format", "json")
    # 3: the batch ended failed or cancelled, which a caller may be waiting for.
    assert result.exit_code in (0, 3), (result.stdout, result.stderr)
    shown = json.loads(result.stdout)
    status: str = shown["progress" if shown["state"] == "running" else "summary"]["status"]
    return status


def removed_so_far(cli: Cli, batch_id: str) -> int:
    """Items a running batch has removed so far."""
    shown = json.loads(cli.ok("status", batch_id, "--format", "json"))
    assert shown["state"] == "running", f"{batch_id} ended before the test could see it run"
    return sum(tally["completed"] for tally in shown["progress"]["tallies"].values())


def wait_for_status(cli: Cli, batch_id: str, status: str) -> None:
    deadline = time.monotonic() + 20
    while (seen := batch_status(cli, batch_id)) != status:
        assert time.monotonic() < deadline, f"{batch_id} stayed {seen}, never {status}"
        time.sleep(0.05)


def test_pause_resume_and_cancel_a_running_batch_say_what_happened(
    enforcer_cli: Cli, temporal_env: WorkflowEnvironment
) -> None:
    plan = planned(enforcer_cli)
    # Every Spotify call now takes 2 s, so the batch is still running between commands.
    enforcer_cli.sandbox.set_faults(Faults(latency_ms=2000))
    batch_id = enforcement_workflow_id("alice", plan["id"])
    enforcer_cli.ok("enforce", plan["id"], "--yes", "--max-in-flight", "1")
    wait_for_status(enforcer_cli, batch_id, "running")

    # Refused by the workflow: a clear line, exit 1, and the batch runs on untouched.
    error = enforcer_cli.fails("resume", batch_id)
    assert f"{batch_id} is running, not paused: there is nothing to resume" in error
    assert shown_status(enforcer_cli, batch_id) == "running"

    paused = enforcer_cli.ok("pause", batch_id)
    assert f"Batch {batch_id} paused: the Spotify calls in flight finish" in paused
    # The answer comes once the ledger has it: every view says paused at once.
    assert shown_status(enforcer_cli, batch_id) == batch_status(enforcer_cli, batch_id) == "paused"
    assert f"Batch {batch_id} is already paused." in enforcer_cli.ok("pause", batch_id)

    assert f"Batch {batch_id} resumed." in enforcer_cli.ok("resume", batch_id)
    assert shown_status(enforcer_cli, batch_id) == "running"

    cancelling = enforcer_cli.ok("cancel", batch_id)
    assert f"Batch {batch_id} cancelling: the Spotify calls in flight finish first" in cancelling
    watched = enforcer_cli("status", batch_id, "--watch", "--format", "json")
    assert watched.exit_code == 3, (watched.stdout, watched.stderr)  # ended cancelled
    assert "failed" not in watched.stderr
    ended = json.loads(watched.stdout)
    summary = ended["summary"]
    assert ended["status"] == summary["status"] == "cancelled"
    # Nothing is lost: every item ended completed, failed or skipped.
    done = sum(sum(tally.values()) for tally in summary["tallies"].values())
    assert done == len(plan["actions"])
    assert temporal_status(temporal_env, batch_id) == "CANCELED"
    assert_shown_cancelled(enforcer_cli, batch_id, len(plan["actions"]))


def test_a_batch_cancelled_by_temporal_shows_cancelled_everywhere(
    enforcer_cli: Cli, temporal_env: WorkflowEnvironment
) -> None:
    """`temporal workflow cancel` (or the Web UI's button) stops a batch as `cancel`
    does: the same words and counts in every view, Canceled in Temporal."""
    plan = planned(enforcer_cli)
    enforcer_cli.sandbox.set_faults(Faults(latency_ms=1000))
    batch_id = enforcement_workflow_id("alice", plan["id"])
    enforcer_cli.ok("enforce", plan["id"], "--yes", "--max-in-flight", "1")
    wait_for_status(enforcer_cli, batch_id, "running")

    temporal_cancel(temporal_env, batch_id)
    watched = enforcer_cli("status", batch_id, "--watch")
    assert watched.exit_code == 3, (watched.stdout, watched.stderr)  # ended cancelled
    assert watched.stderr == ""  # no "failed: Workflow cancelled"
    assert f"Batch {batch_id} (plan {plan['id']}, account alice): cancelled" in watched.stdout
    assert temporal_status(temporal_env, batch_id) == "CANCELED"
    assert_shown_cancelled(enforcer_cli, batch_id, len(plan["actions"]))


def assert_shown_cancelled(cli: Cli, batch_id: str, planned_items: int) -> None:
    """``status``, ``batches`` and ``pause`` of a batch that ended cancelled: the ledger's
    word, removed + failed + skipped = planned, skipped items not errors, no time left."""
    shown = cli("status", batch_id)
    assert shown.exit_code == 3, (shown.stdout, shown.stderr)
    assert shown.stderr == ""
    assert ": cancelled" in shown.stdout
    assert "Time left" not in shown.stdout
    assert "Errors" not in shown.stdout
    assert "skipped  the batch was cancelled" in shown.stdout
    rows = [line.replace("│", " ").split() for line in shown.stdout.splitlines()]
    all_rows = [row for row in rows if row[:1] == ["All"]]
    assert len(all_rows) == 1, shown.stdout
    planned_all, removed, failed, skipped = (int(n) for n in all_rows[0][1:5])
    assert planned_all == removed + failed + skipped == planned_items
    assert skipped > 0
    [row] = [row for row in listed_batches(cli) if row["batch_id"] == batch_id]
    assert row["status"] == "cancelled"
    assert (int(row["removed"]), int(row["failed"]), int(row["skipped"])) == (
        removed,
        failed,
        skipped,
    )
    assert int(row["total"]) == planned_items
    assert f"batch {batch_id!r} has ended (cancelled)" in cli.fails("pause", batch_id)


def temporal_cancel(temporal_env: WorkflowEnvironment, workflow_id: str) -> None:
    """What `temporal workflow cancel` and the Web UI's Cancel button send."""

    async def cancel() -> None:
        address = temporal_env.client.service_client.config.target_host
        client = await Client.connect(address)
        await client.get_workflow_handle(workflow_id).cancel()

    asyncio.run(cancel())


def temporal_status(temporal_env: WorkflowEnvironment, workflow_id: str) -> str:
    """The execution's status as Temporal's list and Web UI show it."""

    async def status() -> str:
        address = temporal_env.client.service_client.config.target_host
        client = await Client.connect(address)
        described = await client.get_workflow_handle(workflow_id).describe()
        assert described.status is not None
        return described.status.name

    return asyncio.run(status())


def shown_status(cli: Cli, batch_id: str) -> str:
    """The batch's status as ``status`` shows it: the ledger's."""
    result = cli("status", batch_id, "--format", "json")
    assert result.exit_code in (0, 3), (result.stdout, result.stderr)  # 3: ended badly
    status: str = json.loads(result.stdout)["status"]
    return status


def update_with_junk(temporal_env: WorkflowEnvironment, workflow_id: str, name: str) -> str:
    """Sends the update ``name`` with an argument it does not take; the refusal."""

    async def send() -> str:
        address = temporal_env.client.service_client.config.target_host
        client = await Client.connect(address)
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await client.get_workflow_handle(workflow_id).execute_update(
                name, "junk", result_type=str
            )
        cause = refused.value.cause
        assert isinstance(cause, ApplicationError)
        return cause.message

    return asyncio.run(send())


def test_a_control_with_a_junk_argument_is_refused_and_changes_nothing(
    enforcer_cli: Cli, temporal_env: WorkflowEnvironment
) -> None:
    plan = planned(enforcer_cli)
    enforcer_cli.sandbox.set_faults(Faults(latency_ms=1000))
    batch_id = enforcement_workflow_id("alice", plan["id"])
    enforcer_cli.ok("enforce", plan["id"], "--yes", "--max-in-flight", "1")
    wait_for_status(enforcer_cli, batch_id, "running")

    for name in ("pause", "resume", "cancel", "rollback"):
        assert update_with_junk(temporal_env, batch_id, name) == (
            f"{name} takes no argument; it was given 1"
        )
    assert shown_status(enforcer_cli, batch_id) == "running"

    # Not paused, not cancelled, not rolled back: the batch ends as it would have.
    enforcer_cli.sandbox.set_faults(Faults())
    ended = json.loads(enforcer_cli.ok("status", batch_id, "--watch", "--format", "json"))
    assert ended["status"] == "completed"
    assert ended["rolled_back_by"] == []
    assert still_in_library(enforcer_cli, plan) == []


def test_a_batch_terminated_in_the_web_ui_ends_failed_and_holds_up_no_other(
    enforcer_cli: Cli, temporal_env: WorkflowEnvironment
) -> None:
    plan = planned(enforcer_cli)
    enforcer_cli.sandbox.set_faults(Faults(latency_ms=2000))
    batch_id = enforcement_workflow_id("alice", plan["id"])
    enforcer_cli.ok("enforce", plan["id"], "--yes", "--max-in-flight", "1")
    deadline = time.monotonic() + 30
    while not removed_so_far(enforcer_cli, batch_id):  # then it is terminated mid-way
        assert time.monotonic() < deadline, "the batch removed nothing in 30 s"
        time.sleep(0.05)

    async def terminate() -> None:  # as the Web UI's Terminate button does
        address = temporal_env.client.service_client.config.target_host
        client = await Client.connect(address)
        await client.get_workflow_handle(batch_id).terminate("a person ends it")

    asyncio.run(terminate())
    enforcer_cli.sandbox.set_faults(Faults())

    # The account's next batch takes the turn the dead one held, and runs to its end.
    enforcer_cli.ok("blocklist", "add", "arGoodSinger0000000000")
    following = planned(enforcer_cli)
    assert following["id"] != plan["id"]
    enforcer_cli.ok("enforce", following["id"], "--yes", "--watch")
    assert batch_status(enforcer_cli, enforcement_workflow_id("alice", following["id"])) == (
        "completed"
    )

    # The terminated one ended failed, everywhere a person looks, every item accounted for.
    result = enforcer_cli("status", batch_id, "--format", "json")
    assert result.exit_code == 3, (result.stdout, result.stderr)
    assert "terminated" in result.stderr
    shown = json.loads(result.stdout)
    assert shown["state"] == "ended"
    summary = shown["summary"]
    assert (summary["batch_id"], summary["status"]) == (batch_id, "failed")
    totals = {
        entity: sum(a["entity_type"] == entity for a in plan["actions"])
        for entity in {a["entity_type"] for a in plan["actions"]}
    }
    assert summary["totals"] == totals
    ended = {
        kind: tally["completed"] + tally["failed"] + tally["skipped"]
        for kind, tally in summary["tallies"].items()
    }
    assert ended == totals
    rows = json.loads(enforcer_cli.ok("batches", "--format", "json"))
    assert next(row for row in rows if row["batch_id"] == batch_id)["status"] == "failed"
    # What it had not finished says why: in doubt (sent, maybe carried out) or never sent.
    whys = [error["error"] for error in summary["errors"]]
    whys += [skipped["reason"] for skipped in summary["skipped"]]
    assert all(why.startswith("its workflow was terminated") for why in whys), whys

    # What it did finish can be put back.
    enforcer_cli.ok("rollback", batch_id, "--yes", "--watch")
    undone = json.loads(enforcer_cli.ok("status", f"rollback/{batch_id}", "--format", "json"))
    assert undone["summary"]["status"] == "completed"
    removed = {kind: tally["completed"] for kind, tally in summary["tallies"].items()}
    assert undone["summary"]["restored"] == {k: n for k, n in removed.items() if n}


@pytest.mark.parametrize("command", ["status", "cancel", "pause", "resume"])
def test_an_unknown_batch_is_named(enforcer_cli: Cli, command: str) -> None:
    error = enforcer_cli.fails(command, "enforce/alice/nope0123456789ab")
    assert "enforce/alice/nope0123456789ab" in error
    assert "unknown batch" in error


def stored_plan(cli: Cli) -> str:
    """A plan of alice's stored in the ledger without Temporal; its ID."""
    plan = make_plan(
        LibrarySnapshot(account_id="alice"),
        [BlockedArtist(artist_id=BLOCKED_BAND, name="Blocked Band")],
        ProtectList(),
        PlanOptions(),
    )

    async def save() -> None:
        async with open_ledger(cli.settings) as ledger:
            await ledger.save_plan(plan)

    asyncio.run(save())
    return plan.id


@pytest.mark.parametrize("command", ["enforce", "status", "cancel", "pause", "resume", "batches"])
def test_an_unreachable_temporal_fails_within_seconds(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    cli.log_in("alice", "Alice")
    arguments = {
        "enforce": (stored_plan(cli), "--yes"),
        "batches": (),
    }.get(command, ("enforce/alice/0123456789abcdef",))
    monkeypatch.setenv("TEMPORAL_ADDRESS", "127.0.0.1:1")
    began = time.monotonic()

    error = cli.fails(command, *arguments)

    assert time.monotonic() - began < 10
    assert "127.0.0.1:1" in error
    assert "Temporal" in error


# docker-compose.yml -----------------------------------------------------------------


def test_a_control_no_worker_answers_is_told_in_a_line(
    cli: Cli, temporal_env: WorkflowEnvironment, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli.log_in("alice", "Alice")  # a control is an account's (--account, else the only one)
    address = temporal_env.client.service_client.config.target_host
    monkeypatch.setenv("TEMPORAL_ADDRESS", address)
    monkeypatch.setattr(_batches, "CONTROL_PATIENCE", timedelta(seconds=1))
    batch_id = f"enforce/alice/{uuid.uuid4().hex[:16]}"

    async def start_unserved() -> None:
        client = await Client.connect(address)
        await client.start_workflow(
            "EnforcementWorkflow", {}, id=batch_id, task_queue=f"nobody-{uuid.uuid4().hex}"
        )

    async def terminate() -> None:
        client = await Client.connect(address)
        await client.get_workflow_handle(batch_id).terminate("the test is over")

    asyncio.run(start_unserved())
    try:
        error = cli.fails("pause", batch_id)
    finally:
        asyncio.run(terminate())

    assert f"{batch_id} did not answer within 1 s" in error
    assert "worker.py" in error
