"""``starter.py rollback`` and ``items``: undoing a batch enforced through the CLI.

As in ``test_starter_enforce``: typer's ``CliRunner``, the real Temporal dev server, a
worker in a thread of this process whose activities reach the in-process sandbox (every
exchange contract-checked), and a blocked band under a name of its own per test, so that
each test's plan, batch and rollback IDs are its own.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from temporalio.testing import WorkflowEnvironment

from enforcer.models import BatchKind
from enforcer.sandbox import Faults
from enforcer.session import open_ledger
from tests.support.cli import Cli
from tests.test_starter_enforce import planned, started, stored_plan, write_calls
from workflows.enforcement import enforcement_workflow_id
from workflows.rollback import rollback_workflow_id

ALICE_MIX = "plAliceMix000000000000"  # tests/fixtures/small_library.json: Blocked Anthem twice


def library_of(cli: Cli) -> dict[str, Any]:
    """What a rollback must put back: liked songs in order with their dates, every
    playlist's entries in order (duplicates included), albums, followed artists."""
    library = cli.sandbox.dump_user("alice")
    return {
        "liked_songs": [(song["track_id"], song["added_at"]) for song in library["liked_songs"]],
        "saved_albums": sorted(album["album_id"] for album in library["saved_albums"]),
        "followed_artists": sorted(library["followed_artists"]),
        "playlists": {
            playlist["id"]: [entry.get("uri") for entry in playlist["items"]]
            for playlist in cli.sandbox.dump()["playlists"]
        },
    }


def enforced(cli: Cli, *plan_options: str) -> tuple[dict[str, Any], str]:
    """A plan of alice's library carried out to the end; the plan and its batch ID."""
    plan: dict[str, Any] = json.loads(cli.ok("plan", "--format", "json", *plan_options))
    assert plan["actions"]
    cli.ok("enforce", plan["id"], "--yes", "--watch")
    return plan, enforcement_workflow_id("alice", plan["id"])


def listed_items(cli: Cli, batch_id: str, *options: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads(cli.ok("items", batch_id, "--format", "json", *options))
    return rows


def test_rolling_back_a_batch_puts_the_library_back_as_it_was(enforcer_cli: Cli) -> None:
    before = library_of(enforcer_cli)
    plan, batch_id = enforced(enforcer_cli)
    assert library_of(enforcer_cli) != before

    output = enforcer_cli.ok("rollback", batch_id, "--yes", "--watch")

    assert library_of(enforcer_cli) == before
    rollback_id = rollback_workflow_id(batch_id)
    assert f"Rollback {rollback_id} of batch {batch_id}" in output
    assert "completed" in output
    for shown in ("Liked songs", "Playlist items", "Saved albums", "Followed artists"):
        assert shown in output
    assert "API calls" in output
    assert "Duration" in output
    assert {item["status"] for item in listed_items(enforcer_cli, batch_id)} == {"rolled_back"}
    restores = listed_items(enforcer_cli, rollback_id)
    assert len(restores) == len(plan["actions"])
    assert {item["status"] for item in restores} == {"completed"}
    # `status` knows a rollback from an enforcement.
    shown = json.loads(enforcer_cli.ok("status", rollback_id, "--format", "json"))
    assert shown["rollback_of"] == batch_id
    assert shown["status"] == "completed"

    # Again: nothing is left to put back, nothing is written, the last result is shown.
    writes = write_calls(enforcer_cli)
    again = enforcer_cli.ok("rollback", batch_id, "--yes")
    assert "Nothing to roll back" in again
    assert f"Rollback {rollback_id}" in again
    assert write_calls(enforcer_cli) == writes


def held_keys(cli: Cli, plan: dict[str, Any]) -> set[str]:
    """The item keys of the plan's actions whose entity the library holds again."""
    library = library_of(cli)
    liked = {track for track, _ in library["liked_songs"]}
    held = {
        "liked_song": lambda action: action["entity_id"] in liked,
        "saved_album": lambda action: action["entity_id"] in library["saved_albums"],
        "followed_artist": lambda action: action["entity_id"] in library["followed_artists"],
        "playlist_item": lambda action: (
            action["uri"] in library["playlists"][action["container_id"]]
        ),
    }
    return {
        f"{a['entity_type']}:{a['container_id'] or '-'}:{a['entity_id']}:remove"
        for a in plan["actions"]
        if held[a["entity_type"]](a)
    }


def test_rolling_back_chosen_items_puts_back_only_those(enforcer_cli: Cli) -> None:
    before = library_of(enforcer_cli)
    plan, batch_id = enforced(enforcer_cli)
    removed = listed_items(enforcer_cli, batch_id, "--status", "completed")
    song = next(item for item in removed if item["entity_type"] == "liked_song")
    # A track that is in the playlist twice: both occurrences come back, in place.
    in_playlist = next(
        item
        for item in removed
        if (item["name"], item["playlist"]) == ("Blocked Anthem", "Alice Mix")
    )
    chosen = {song["key"], in_playlist["key"]}

    output = enforcer_cli.ok(
        "rollback", batch_id, "--items", song["key"], "--items", in_playlist["key"], "--yes",
        "--watch",
    )  # fmt: skip

    assert "completed" in output
    assert held_keys(enforcer_cli, plan) == chosen
    now = library_of(enforcer_cli)
    still_removed = {a["uri"] for a in plan["actions"] if a["container_id"] == ALICE_MIX} - {
        uri_of(plan, in_playlist["key"])
    }
    assert now["playlists"][ALICE_MIX] == [
        uri for uri in before["playlists"][ALICE_MIX] if uri not in still_removed
    ]
    liked_back = [entry for entry in before["liked_songs"] if entry in now["liked_songs"]]
    assert liked_back == now["liked_songs"], "back with its date, so in its place"
    statuses = {item["key"]: item["status"] for item in listed_items(enforcer_cli, batch_id)}
    assert {key for key, status in statuses.items() if status == "rolled_back"} == chosen


def uri_of(plan: dict[str, Any], key: str) -> str:
    uris: dict[str, str] = {
        f"{a['entity_type']}:{a['container_id'] or '-'}:{a['entity_id']}:remove": a["uri"]
        for a in plan["actions"]
    }
    return uris[key]


def test_an_unknown_batch_is_named_and_nothing_starts(
    enforcer_cli: Cli, temporal_env: WorkflowEnvironment
) -> None:
    batch_id = "enforce/alice/nope0123456789ab"
    error = enforcer_cli.fails("rollback", batch_id, "--yes")
    assert "unknown batch" in error
    assert batch_id in error
    assert not started(temporal_env, rollback_workflow_id(batch_id))
    assert "unknown batch" in enforcer_cli.fails("items", batch_id)


def test_a_key_of_another_batch_is_named_and_nothing_starts(
    enforcer_cli: Cli, temporal_env: WorkflowEnvironment
) -> None:
    # Blocked Band as primary artist first; the song it features on is left for later.
    _, first = enforced(enforcer_cli, "--policy", "primary")
    _, second = enforced(enforcer_cli)
    others = {item["key"] for item in listed_items(enforcer_cli, second)}
    foreign = sorted(others - {item["key"] for item in listed_items(enforcer_cli, first)})[0]
    writes = write_calls(enforcer_cli)

    error = enforcer_cli.fails("rollback", first, "--items", foreign, "--yes")

    assert foreign in error
    assert first in error
    assert not started(temporal_env, rollback_workflow_id(first, (foreign,)))
    assert write_calls(enforcer_cli) == writes


def test_without_a_terminal_rollback_asks_for_yes_and_starts_nothing(
    enforcer_cli: Cli, temporal_env: WorkflowEnvironment
) -> None:
    _, batch_id = enforced(enforcer_cli)
    writes = write_calls(enforcer_cli)

    assert "--yes" in enforcer_cli.fails("rollback", batch_id)

    assert not started(temporal_env, rollback_workflow_id(batch_id))
    assert write_calls(enforcer_cli) == writes


def test_a_rollback_cannot_be_rolled_back(enforcer_cli: Cli) -> None:
    _, batch_id = enforced(enforcer_cli)
    enforcer_cli.ok("rollback", batch_id, "--yes", "--watch")
    rolled_back = library_of(enforcer_cli)

    error = enforcer_cli.fails("rollback", rollback_workflow_id(batch_id), "--yes")

    assert "cannot be rolled back" in error
    assert library_of(enforcer_cli) == rolled_back


def test_a_batch_not_started_yet_is_refused(enforcer_cli: Cli) -> None:
    plan_id = stored_plan(enforcer_cli)
    batch_id = enforcement_workflow_id("alice", plan_id)

    async def create() -> None:
        async with open_ledger(enforcer_cli.settings) as ledger:
            await ledger.create_batch(
                batch_id, account_id="alice", plan_id=plan_id, kind=BatchKind.ENFORCE, options={}
            )

    asyncio.run(create())

    error = enforcer_cli.fails("rollback", batch_id, "--yes")

    assert batch_id in error
    assert "still pending" in error


def test_empty_items_are_refused(enforcer_cli: Cli) -> None:
    assert "--items names no item" in enforcer_cli.fails(
        "rollback", "enforce/alice/x", "--items", ",", "--yes"
    )


def test_rolling_back_a_running_batch_stops_it_and_puts_everything_back(
    enforcer_cli: Cli, temporal_env: WorkflowEnvironment
) -> None:
    before = library_of(enforcer_cli)
    plan = planned(enforcer_cli)
    batch_id = enforcement_workflow_id("alice", plan["id"])
    # Slow calls, one at a time: the batch is still running when the rollback comes.
    enforcer_cli.sandbox.set_faults(Faults(latency_ms=500))
    enforcer_cli.ok("enforce", plan["id"], "--yes", "--max-in-flight", "1")
    deadline = time.monotonic() + 20
    while not (progress := running_progress(enforcer_cli, batch_id)) or not progress["chunks_done"]:
        assert time.monotonic() < deadline, "the batch never removed anything"
        time.sleep(0.05)
    assert progress["chunks_done"] < progress["chunks_total"], "roll back a running batch"

    with fast_once_started(enforcer_cli, temporal_env, rollback_workflow_id(batch_id)):
        output = enforcer_cli.ok("rollback", batch_id, "--yes", "--watch")

    assert f"Batch {batch_id} is rolling back" in output
    assert f"Batch {batch_id}: rolled_back" in output
    assert f"Rollback {rollback_workflow_id(batch_id)} of batch {batch_id}" in output
    assert library_of(enforcer_cli) == before
    ended = json.loads(enforcer_cli.ok("status", batch_id, "--format", "json"))
    assert ended["summary"]["status"] == "rolled_back"
    statuses = {item["status"] for item in listed_items(enforcer_cli, batch_id)}
    assert statuses <= {"rolled_back", "skipped"}
    assert "rolled_back" in statuses


@contextmanager
def fast_once_started(
    cli: Cli, temporal_env: WorkflowEnvironment, workflow_id: str
) -> Iterator[None]:
    """The sandbox answers at full speed again once ``workflow_id`` has started."""
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set() and not started(temporal_env, workflow_id):
            time.sleep(0.05)
        cli.sandbox.set_faults(Faults())

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        yield
    finally:
        stop.set()
        watcher.join(timeout=10)


def running_progress(cli: Cli, batch_id: str) -> dict[str, Any] | None:
    shown = json.loads(cli.ok("status", batch_id, "--format", "json"))
    progress: dict[str, Any] | None = shown.get("progress")
    return progress


def test_liked_songs_put_back_without_their_dates_are_named(enforcer_cli: Cli) -> None:
    _, batch_id = enforced(enforcer_cli)
    # Spotify refuses the endpoint that keeps dates: the songs come back, dated today.
    enforcer_cli.sandbox.settings.legacy_endpoints = "forbidden"

    output = enforcer_cli.ok("rollback", batch_id, "--yes", "--watch")

    songs = [i for i in listed_items(enforcer_cli, batch_id) if i["entity_type"] == "liked_song"]
    assert songs
    assert f"Back, but not as they were: {len(songs)}" in output
    assert "order/date lost" in output
    for song in songs:
        assert song["name"] in output


def rollback_status(cli: Cli, rollback_id: str) -> str:
    status: str = json.loads(cli.ok("status", rollback_id, "--format", "json"))["status"]
    return status


def test_pause_resume_and_cancel_a_running_rollback(enforcer_cli: Cli) -> None:
    plan, batch_id = enforced(enforcer_cli)
    rollback_id = rollback_workflow_id(batch_id)
    # Slow calls: the rollback is still running between commands.
    enforcer_cli.sandbox.set_faults(Faults(latency_ms=1000))
    enforcer_cli.ok("rollback", batch_id, "--yes")
    deadline = time.monotonic() + 20
    while (seen := rollback_status(enforcer_cli, rollback_id)) != "running":
        assert time.monotonic() < deadline, f"the rollback stayed {seen}"
        time.sleep(0.05)

    error = enforcer_cli.fails("resume", rollback_id)
    assert f"{rollback_id} is running, not paused: there is nothing to resume" in error
    paused = enforcer_cli.ok("pause", rollback_id)
    assert f"Rollback {rollback_id} paused: the restores in flight finish" in paused
    assert rollback_status(enforcer_cli, rollback_id) == "paused"
    assert f"Rollback {rollback_id} resumed." in enforcer_cli.ok("resume", rollback_id)
    assert rollback_status(enforcer_cli, rollback_id) == "running"
    cancelling = enforcer_cli.ok("cancel", rollback_id)
    assert f"Rollback {rollback_id} cancelling: the restores in flight finish first" in cancelling

    enforcer_cli.sandbox.set_faults(Faults())
    watched = enforcer_cli("status", rollback_id, "--watch", "--format", "json")
    assert watched.exit_code == 3, (watched.stdout, watched.stderr)  # ended cancelled
    ended = json.loads(watched.stdout)
    assert ended["status"] == ended["summary"]["status"] == "cancelled"
    # What the restores in flight put back stays back; the batch says so everywhere.
    back = sum(ended["summary"]["restored"].values())
    shown = json.loads(enforcer_cli.ok("status", batch_id, "--format", "json"))
    rows = json.loads(enforcer_cli.ok("batches", "--format", "json"))
    row = next(row for row in rows if row["batch_id"] == batch_id)

    async def in_ledger() -> str:
        async with open_ledger(enforcer_cli.settings) as ledger:
            return (await ledger.batch(batch_id)).status.value

    removed = len(plan["actions"])
    expected = {0: "completed", removed: "rolled_back"}.get(back, "partly_rolled_back")
    assert shown["status"] == row["status"] == asyncio.run(in_ledger()) == expected
    assert shown["items_back"]["back"] == back
    # In the ledger's words: the rollback was cancelled (its execution ended Canceled).
    assert enforcer_cli.fails("pause", rollback_id).endswith(
        "has ended (cancelled): there is nothing to pause\n"
    )
