"""``starter.py schedule``: the library kept obeying the blocklist by a Temporal Schedule.

The schedule runs on the real dev server (the time-skipping server has no schedules)
with an interval of a few seconds; the worker runs in a thread of this process and
reaches the in-process sandbox. The library is edited between periods (only while it
obeys the blocklist, so that no run is writing to it then), and every outcome is
polled for, never slept for: a run's length depends on the machine's load.
"""

from __future__ import annotations

import asyncio
import copy
import json
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

from temporalio.testing import WorkflowEnvironment

from enforcer.session import open_ledger, token_store
from enforcer.spotify.auth import utc_now
from tests.support.cli import BLOCKED_BAND, Cli
from tests.support.temporal import temporal_schedule_list

T = TypeVar("T")

BALLAD = "trBlockedBallad0000000"  # Blocked Band's, not in alice's library at first
ALICE_MIX = "plAliceMix000000000000"
PATIENCE = 60.0
"""Seconds a test waits for an outcome before it gives up (runs take a few seconds)."""


def until(what: str, found: Callable[[], T | None], timeout: float = PATIENCE) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = found()
        if value:
            return value
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.3)


def scheduled_batches(cli: Cli) -> list[dict[str, Any]]:
    """This test's scheduled batches: the dev server is the session's, and other tests'
    batches of an account called alice are listed too, unknown to this test's ledger
    (no counts)."""
    rows: list[dict[str, Any]] = json.loads(cli.ok("batches", "--format", "json"))
    return [row for row in rows if row["scheduled_by"] and row["total"]]


def new_completed_batch(cli: Cli, seen: set[str]) -> Callable[[], dict[str, Any] | None]:
    def found() -> dict[str, Any] | None:
        for row in scheduled_batches(cli):
            if row["batch_id"] not in seen and row["status"] == "completed":
                return row
        return None

    return found


def shown(cli: Cli) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(cli.ok("schedule", "show", "--format", "json"))
    return document


def removed_by_batch(cli: Cli, batch_id: str) -> dict[str, int]:
    status = json.loads(cli.ok("status", batch_id, "--format", "json"))
    assert status["scheduled_by"].startswith("keep/alice-")
    tallies = status["summary"]["tallies"]
    return {kind: tally["completed"] for kind, tally in tallies.items() if tally["completed"]}


def edit_alice(cli: Cli, edit: Callable[[dict[str, Any]], None]) -> None:
    library = copy.deepcopy(cli.sandbox.dump_user("alice"))
    edit(library)
    cli.sandbox.load_user("alice", library)


def like(track_id: str) -> Callable[[dict[str, Any]], None]:
    def edit(library: dict[str, Any]) -> None:
        library["liked_songs"].insert(0, {"track_id": track_id, "added_at": "2026-01-01T00:00:00Z"})

    return edit


def add_to_alice_mix(track_id: str) -> Callable[[dict[str, Any]], None]:
    def edit(library: dict[str, Any]) -> None:
        for playlist in library["playlists"]:
            if isinstance(playlist, dict) and playlist["id"] == ALICE_MIX:
                playlist["items"].append(
                    {
                        "uri": f"spotify:track:{track_id}",
                        "added_at": "2026-01-01T00:00:00Z",
                        "added_by": "alice",
                    }
                )
                # As Spotify does: a playlist that changed has a new snapshot_id.
                playlist["snapshot_id"] = f"{playlist['snapshot_id']}+{track_id}"

    return edit


def liked(cli: Cli) -> set[str]:
    return {song["track_id"] for song in cli.sandbox.dump_user("alice")["liked_songs"]}


def band_items_left(cli: Cli) -> list[str]:
    """What of Blocked Band alice's library still holds (the featured song included)."""
    library = cli.sandbox.dump_user("alice")
    band_tracks = {"trBlockedAnthem0000000", BALLAD, "trTogether000000000000"}
    mix = next(p for p in library["playlists"] if isinstance(p, dict) and p["id"] == ALICE_MIX)
    return sorted(
        [t for t in liked(cli) if t in band_tracks]
        + [
            a["album_id"]
            for a in library["saved_albums"]
            if a["album_id"] == "alBlockedHits000000000"
        ]
        + [a for a in library["followed_artists"] if a == BLOCKED_BAND]
        + [i["uri"] for i in mix["items"] if i.get("uri", "").rsplit(":", 1)[-1] in band_tracks]
    )


def test_a_schedule_enforces_what_each_period_brings_and_pause_stops_it(
    enforcer_cli: Cli, temporal_env: WorkflowEnvironment
) -> None:
    cli = enforcer_cli
    assert band_items_left(cli)
    created = cli.ok("schedule", "create", "--every", "3s", "--settle", "1")
    assert "Schedule keep/alice: every 3s" in created
    try:
        # The schedule is where Temporal's tools show it.
        until(
            "temporal schedule list", lambda: "keep/alice" in temporal_schedule_list(temporal_env)
        )
        listed = until(
            "schedule list",
            lambda: [
                row
                for row in json.loads(cli.ok("schedule", "list", "--format", "json"))
                if row["schedule_id"] == "keep/alice"
            ],
        )
        assert listed[0]["every"] == "3s"
        assert listed[0]["state"] == "active"

        # Period 1: everything of the blocked band goes.
        seen: set[str] = set()
        first = until("the first scheduled batch", new_completed_batch(cli, seen))
        seen.add(first["batch_id"])
        assert band_items_left(cli) == []
        assert int(first["removed"]) == int(first["total"]) > 0

        # Period 2: a song liked since is removed, and only it.
        edit_alice(cli, like(BALLAD))
        second = until("the second scheduled batch", new_completed_batch(cli, seen))
        seen.add(second["batch_id"])
        assert removed_by_batch(cli, second["batch_id"]) == {"liked_song": 1}
        assert BALLAD not in liked(cli)

        # Period 3: a playlist entry added since is removed, and only it.
        edit_alice(cli, add_to_alice_mix(BALLAD))
        third = until("the third scheduled batch", new_completed_batch(cli, seen))
        seen.add(third["batch_id"])
        assert removed_by_batch(cli, third["batch_id"]) == {"playlist_item": 1}
        assert band_items_left(cli) == []

        # A run with nothing to do leaves no batch; show says what each run did.
        runs = until(
            "a run with nothing to do",
            lambda: [
                run
                for run in shown(cli)["recent_runs"]
                if run["outcome"].startswith("nothing to do: the library obeys")
            ],
        )
        assert runs
        outcomes = [run["outcome"] for run in shown(cli)["recent_runs"]]
        assert any(
            o.startswith("removed 1 (Blocked Band") and third["batch_id"] in o for o in outcomes
        ), outcomes
        assert {row["batch_id"] for row in scheduled_batches(cli)} == seen

        # Paused: no run starts, and what the library gains stays until unpaused.
        assert "is paused" in cli.ok("schedule", "pause")
        document = shown(cli)
        assert document["paused"] is True
        until(
            "the last run to end",
            lambda: all(run["state"] != "running" for run in shown(cli)["recent_runs"]),
        )
        runs_before = shown(cli)["runs"]
        edit_alice(cli, like(BALLAD))
        time.sleep(7)  # two intervals and more: nothing may happen, so nothing to poll for
        assert shown(cli)["runs"] == runs_before
        assert BALLAD in liked(cli)
        assert "runs on schedule again" in cli.ok("schedule", "unpause")
        fourth = until("the batch after unpause", new_completed_batch(cli, seen))
        assert removed_by_batch(cli, fourth["batch_id"]) == {"liked_song": 1}
    finally:
        cli("schedule", "delete")


def test_blocklist_changes_in_a_row_trigger_one_run_whose_rollback_pauses_the_schedule(
    enforcer_cli: Cli,
) -> None:
    cli = enforcer_cli
    # A day between runs: whatever runs in this test, a blocklist change started it.
    cli.ok("schedule", "create", "--every", "1d", "--settle", "3")
    try:
        for artist in (
            "arGoodSinger0000000000",
            "arIndieDuo000000000000",
            "arFeatureGuest00000000",
        ):
            result = cli("blocklist", "add", artist)
            assert result.exit_code == 0, (result.stdout, result.stderr)
            assert "The schedule keep/alice runs now" in result.stderr
        batch = until("the triggered batch", new_completed_batch(cli, set()))
        removed = json.loads(cli.ok("status", batch["batch_id"], "--format", "json"))
        assert removed["summary"]["status"] == "completed"
        document = until(
            "the run to end",
            lambda: (
                (d := shown(cli))["recent_runs"]
                and all(run["state"] == "completed" for run in d["recent_runs"])
                and d
            ),
        )
        # Three additions, one run, whose one batch enforced all three.
        assert document["runs"] == 1
        outcome = document["recent_runs"][0]["outcome"]
        assert "Good Singer" in outcome, outcome
        assert "Blocked Band" in outcome, outcome
        assert len(scheduled_batches(cli)) == 1
        plan = json.loads(cli.ok("plan", "--format", "json"))
        assert plan["actions"] == []
        assert "trGoodMorning000000000" not in liked(cli)

        # The person wants them back: the rollback pauses the schedule first, or a run
        # (the next trigger, or the next day) would remove them again.
        output = cli.ok("rollback", batch["batch_id"], "--yes", "--watch")
        assert "keep/alice is paused: its runs would remove again" in " ".join(output.split())
        assert "trGoodMorning000000000" in liked(cli)
        undone = json.loads(cli.ok("status", f"rollback/{batch['batch_id']}", "--format", "json"))
        assert undone["summary"]["schedule_paused"] == "keep/alice", undone
        document = shown(cli)
        assert document["paused"], document
        assert document["note"].startswith("paused by the rollback rollback/"), document
        result = cli("blocklist", "remove", "arIndieDuo000000000000")
        assert result.exit_code == 0, (result.stdout, result.stderr)
        assert "The schedule keep/alice is paused" in result.stderr
        time.sleep(3)  # a run started now would have removed them again
        assert "trGoodMorning000000000" in liked(cli)
        assert len(scheduled_batches(cli)) == 1
    finally:
        cli("schedule", "delete")


def test_schedule_commands_refuse_bad_input_by_name(worker_cli: Cli) -> None:
    cli = worker_cli
    assert "'6x'" in cli.fails("schedule", "create", "--every", "6x")
    assert "'0s'" in cli.fails("schedule", "create", "--every", "0s")
    assert "'nobody'" in cli.fails("schedule", "create", "--every", "6h", "--account", "nobody")
    assert "no schedule" in cli.fails("schedule", "pause")
    assert "no schedule" in cli.fails("schedule", "show")
    # Nothing was made by any of them.
    assert "no schedule" in cli.fails("schedule", "trigger")


def test_a_run_that_fails_says_why_in_schedule_show(enforcer_cli: Cli) -> None:
    cli = enforcer_cli

    async def revoke() -> None:
        # The person revoked the app: the stored access token has expired and the
        # refresh token no longer works.
        async with open_ledger(cli.settings) as ledger:
            store = token_store(ledger, cli.settings)
            stored = await store.load("alice")
            expired = stored.model_copy(update={"expires_at": utc_now() - timedelta(hours=1)})
            await store.save("alice", expired)

    asyncio.run(revoke())
    cli.sandbox.revoke_refresh_tokens("alice")
    cli.ok("schedule", "create", "--every", "1d", "--settle", "0")
    try:
        assert "runs now" in cli.ok("schedule", "trigger")
        failed = until(
            "the run to fail",
            lambda: [run for run in shown(cli)["recent_runs"] if run["state"] == "failed"],
        )
        assert "login" in failed[0]["outcome"], failed
        assert scheduled_batches(cli) == []
    finally:
        cli("schedule", "delete")
