"""Private payloads end to end: with payload keys set, a real plan, enforcement and
rollback of alice's library (starter and worker as a person runs them, the real dev
server, the in-process sandbox) leave no user ID, playlist ID, track ID or URI of that
library in any byte of any history event; the same run without keys shows them, so the
check can fail."""

from __future__ import annotations

import asyncio
import json
import os
import re

import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from enforcer.config import PayloadKey, format_payload_key
from tests.support.cli import Cli
from tests.support.sandbox import SMALL_LIBRARY
from workflows.enforcement import enforcement_workflow_id

ACCOUNT = "alice"


def library_identifiers() -> set[str]:
    """alice's user ID and every playlist ID, track ID and URI of the library she reads."""
    fixture = json.loads(SMALL_LIBRARY.read_text())
    found = {ACCOUNT}
    for playlist in fixture["playlists"]:
        found.add(playlist["id"])
        for item in playlist["items"]:
            if item.get("uri"):
                found.add(item["uri"])
                found.add(item["uri"].rpartition(":")[2])
    alice = next(user for user in fixture["users"] if user["id"] == ACCOUNT)
    for song in alice["liked_songs"]:
        found.add(song["track_id"])
        found.add(f"spotify:track:{song['track_id']}")
    return found


@pytest.fixture(autouse=True, params=["encrypted", "plain"])
def payload_keys(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    """Autouse, so that the keys are in the environment before the worker fixture starts
    its worker (and so builds its data converter) from it."""
    monkeypatch.delenv("ENFORCER_PAYLOAD_KEY_ID", raising=False)
    encrypted: bool = request.param == "encrypted"
    if encrypted:
        keys = [PayloadKey("old", os.urandom(32)), PayloadKey("current", os.urandom(32))]
        monkeypatch.setenv("ENFORCER_PAYLOAD_KEYS", ",".join(map(format_payload_key, keys)))
        monkeypatch.setenv("ENFORCER_PAYLOAD_KEY_ID", "current")
    else:
        monkeypatch.delenv("ENFORCER_PAYLOAD_KEYS", raising=False)
    return encrypted


def history_bytes(temporal_env: WorkflowEnvironment, task_queue: str) -> dict[str, list[bytes]]:
    """Every event of every workflow run on this test's task queue, as stored."""

    async def fetch() -> dict[str, list[bytes]]:
        # A client without any codec: the bytes as anyone with access to the server reads them.
        client = await Client.connect(temporal_env.client.service_client.config.target_host)
        histories: dict[str, list[bytes]] = {}
        async for execution in client.list_workflows(f"TaskQueue = '{task_queue}'"):
            handle = client.get_workflow_handle(execution.id, run_id=execution.run_id)
            history = await handle.fetch_history()
            histories[f"{execution.id} {execution.run_id}"] = [
                event.SerializeToString() for event in history.events
            ]
        return histories

    return asyncio.run(fetch())


def test_with_payload_keys_no_identifier_of_the_library_is_in_any_history(
    payload_keys: bool,
    enforcer_cli: Cli,
    temporal_env: WorkflowEnvironment,
    task_queue: str,
) -> None:
    plan = json.loads(enforcer_cli.ok("plan", "--format", "json"))
    assert any(action["container_id"] for action in plan["actions"]), "playlists are edited"
    enforced = enforcer_cli.ok("enforce", plan["id"], "--yes", "--watch")
    found = re.search(r"Batch (enforce/\S+) \(plan", enforced)
    assert found is not None, enforced
    batch_id = found.group(1)
    rolled_back = enforcer_cli.ok("rollback", batch_id, "--yes", "--watch")
    assert "completed" in enforced
    assert "completed" in rolled_back

    histories = history_bytes(temporal_env, task_queue)
    assert len(histories) == 3, histories.keys()  # plan, enforcement, rollback
    identifiers = library_identifiers()
    leaks = {
        identifier
        for events in histories.values()
        for event in events
        for identifier in identifiers
        if identifier.encode() in event
    }
    events = [event for run in histories.values() for event in run]
    if payload_keys:
        assert leaks == set()
        assert any(b"binary/encrypted" in event and b"current" in event for event in events)
        assert batch_id != enforcement_workflow_id(ACCOUNT, plan["id"])
        assert ACCOUNT not in batch_id
        # The person still sees everything: the starter decrypts what it reads back.
        assert ACCOUNT in enforcer_cli.ok("status", batch_id)
    else:
        # The control: without keys the same run shows the account, so the check can fail.
        # (Playlist IDs and URIs never cross Temporal, keys or not: the ledger holds them.)
        assert ACCOUNT in leaks
        assert not any(b"binary/encrypted" in event for event in events)
        assert batch_id == enforcement_workflow_id(ACCOUNT, plan["id"])
