"""The five views of a rolled-back batch agree: the ledger, ``starter.py status``,
``starter.py batches``, the ``EnforcementStatus`` search attribute and the Web UI's
current details.

A closed workflow's search attributes cannot change (Temporal's rule), so an enforcement
that completed and was later undone by a rollback of its own keeps
``EnforcementStatus='completed'``; the rollback's execution ends with the undone batch's
new status (docs/architecture.md, known limits). A batch rolled back through its own
``rollback`` update is still running when its rollback ends: its own attribute and
details end rolled back too.

As in ``test_starter_rollback``: typer's ``CliRunner``, the real dev server, a worker in a
thread whose activities reach the in-process sandbox, a blocked band of its own per test.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import Any
from urllib.parse import quote

from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from enforcer.models import BatchStatus, ItemStatus
from enforcer.sandbox import Faults
from enforcer.session import open_ledger
from tests.support.cli import Cli
from tests.test_starter_enforce import planned
from tests.test_starter_rollback import (
    enforced,
    fast_once_started,
    library_of,
    listed_items,
    running_progress,
)
from workflows.enforcement import enforcement_workflow_id
from workflows.rollback import rollback_workflow_id
from workflows.search_attributes import ENFORCEMENT_STATUS


def ledger_view(cli: Cli, batch_id: str) -> tuple[str, dict[ItemStatus, int]]:
    """The batch's status in the ledger, and how many of its items are in each status."""

    async def read() -> tuple[str, dict[ItemStatus, int]]:
        async with open_ledger(cli.settings) as ledger:
            record = await ledger.batch(batch_id)
            return record.status.value, await ledger.item_counts(batch_id)

    return asyncio.run(read())


def temporal_view(temporal_env: WorkflowEnvironment, workflow_id: str) -> tuple[str | None, str]:
    """An execution's ``EnforcementStatus`` and its current details (the Web UI's)."""

    async def read() -> tuple[str | None, str]:
        address = temporal_env.client.service_client.config.target_host
        client = await Client.connect(address)
        handle = client.get_workflow_handle(workflow_id)
        described = await handle.describe()
        metadata = await handle.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
        return described.typed_search_attributes.get(ENFORCEMENT_STATUS), metadata.current_details

    return asyncio.run(read())


def linked(workflow_id: str) -> str:
    """``workflow_id`` as the Web UI's details show it: a Markdown link to its page."""
    return f"[`{workflow_id}`](/namespaces/default/workflows/{quote(workflow_id, safe='')})"


def batch_row(cli: Cli, batch_id: str, *options: str) -> dict[str, Any] | None:
    rows: list[dict[str, Any]] = json.loads(cli.ok("batches", "--format", "json", *options))
    return next((row for row in rows if row["batch_id"] == batch_id), None)


def assert_views_agree(
    cli: Cli, batch_id: str, status: BatchStatus, *, back: int, removed: int, last_rollback: str
) -> dict[str, Any]:
    """The ledger, ``status`` (JSON and table) and ``batches`` show ``batch_id`` in
    ``status`` with ``back`` of ``removed`` items back; the ``status`` document."""
    in_ledger, counts = ledger_view(cli, batch_id)
    assert in_ledger == status.value
    assert counts[ItemStatus.ROLLED_BACK] == back
    assert counts[ItemStatus.ROLLED_BACK] + counts[ItemStatus.COMPLETED] == removed

    shown = json.loads(cli.ok("status", batch_id, "--format", "json"))
    assert shown["state"] == "ended"
    assert shown["status"] == shown["summary"]["status"] == status.value
    assert shown["items_back"] == {"back": back, "removed": removed}
    assert shown["rolled_back_by"][-1]["batch_id"] == last_rollback
    assert shown["summary"]["rolled_back_by"] in {
        undo["batch_id"] for undo in shown["rolled_back_by"]
    }
    table = cli.ok("status", batch_id)
    assert f"Batch {batch_id} " in table
    assert f": {status.value}\n" in table
    assert f"{back} of {removed} removed items back" in table
    assert last_rollback in table

    row = batch_row(cli, batch_id)
    assert row is not None
    assert row["status"] == status.value
    assert row["back"] == str(back)
    assert row["rolled_back_by"] == last_rollback
    assert batch_row(cli, batch_id, "--status", status.value) == row
    assert batch_row(cli, batch_id, "--status", "completed") is None
    document: dict[str, Any] = shown
    return document


def assert_identifiers_whole_at_80_columns(cli: Cli, batch_id: str, rollback_id: str) -> None:
    """At 80 columns, on a terminal and in a pipe, every batch ID and item key that
    ``batches``, ``items`` and ``status`` show is on one line: it can be copied whole
    (before, rich folded them across lines to fit its tables)."""
    keys = [item["key"] for item in listed_items(cli, batch_id)]
    assert keys
    for terminal in (True, False):
        views = [
            ((batch_id, rollback_id), ("batches",)),
            (tuple(keys), ("items", batch_id)),
            ((batch_id, rollback_id), ("status", batch_id)),
            ((rollback_id, batch_id), ("status", rollback_id)),
        ]
        for identifiers, command in views:
            shown = cli.shown_at(80, *command, terminal=terminal)
            lines = shown.splitlines()
            for identifier in identifiers:
                assert any(identifier in line for line in lines), (terminal, identifier, shown)


def test_a_batch_rolled_back_whole_is_rolled_back_in_every_view(
    enforcer_cli: Cli, temporal_env: WorkflowEnvironment
) -> None:
    plan, batch_id = enforced(enforcer_cli)
    removed = len(plan["actions"])
    rollback_id = rollback_workflow_id(batch_id)

    enforcer_cli.ok("rollback", batch_id, "--yes", "--watch")

    shown = assert_views_agree(
        enforcer_cli,
        batch_id,
        BatchStatus.ROLLED_BACK,
        back=removed,
        removed=removed,
        last_rollback=rollback_id,
    )
    assert shown["rolled_back_by"] == [
        {"batch_id": rollback_id, "status": "completed", "restored": removed}
    ]
    # Temporal's rule: the closed enforcement keeps its attribute; the rollback says it.
    attribute, _ = temporal_view(temporal_env, batch_id)
    assert attribute == BatchStatus.COMPLETED.value
    attribute, details = temporal_view(temporal_env, rollback_id)
    assert attribute == BatchStatus.ROLLED_BACK.value
    assert "status: completed" in details
    assert f"undid {linked(batch_id)}: {removed} of {removed} removed items back" in details
    # The rollback itself is a completed batch, in its own status.
    rollback = json.loads(enforcer_cli.ok("status", rollback_id, "--format", "json"))
    assert (rollback["status"], rollback["rollback_of"]) == ("completed", batch_id)


def test_a_batch_rolled_back_in_part_is_partly_rolled_back_in_every_view(
    enforcer_cli: Cli, temporal_env: WorkflowEnvironment
) -> None:
    plan, batch_id = enforced(enforcer_cli)
    removed = len(plan["actions"])
    chosen = listed_items(enforcer_cli, batch_id, "--status", "completed")[0]["key"]
    some = rollback_workflow_id(batch_id, (chosen,))

    enforcer_cli.ok("rollback", batch_id, "--items", chosen, "--yes", "--watch")

    assert_views_agree(
        enforcer_cli,
        batch_id,
        BatchStatus.PARTLY_ROLLED_BACK,
        back=1,
        removed=removed,
        last_rollback=some,
    )
    attribute, details = temporal_view(temporal_env, some)
    assert attribute == BatchStatus.PARTLY_ROLLED_BACK.value
    assert f"undid {linked(batch_id)}: 1 of {removed} removed items back" in details
    assert_identifiers_whole_at_80_columns(enforcer_cli, batch_id, some)

    # The rest: the batch is then rolled back, and both rollbacks are named.
    everything = rollback_workflow_id(batch_id)
    enforcer_cli.ok("rollback", batch_id, "--yes", "--watch")

    shown = assert_views_agree(
        enforcer_cli,
        batch_id,
        BatchStatus.ROLLED_BACK,
        back=removed,
        removed=removed,
        last_rollback=everything,
    )
    assert [(u["batch_id"], u["restored"]) for u in shown["rolled_back_by"]] == [
        (some, 1),
        (everything, removed - 1),
    ]
    attribute, _ = temporal_view(temporal_env, everything)
    assert attribute == BatchStatus.ROLLED_BACK.value


def test_a_running_batch_rolled_back_by_its_update_is_rolled_back_in_every_view(
    enforcer_cli: Cli, temporal_env: WorkflowEnvironment
) -> None:
    before = library_of(enforcer_cli)
    plan = planned(enforcer_cli)
    batch_id = enforcement_workflow_id("alice", plan["id"])
    rollback_id = rollback_workflow_id(batch_id)
    enforcer_cli.sandbox.set_faults(Faults(latency_ms=500))
    enforcer_cli.ok("enforce", plan["id"], "--yes", "--max-in-flight", "1")
    deadline = time.monotonic() + 20
    while not (progress := running_progress(enforcer_cli, batch_id)) or not progress["chunks_done"]:
        assert time.monotonic() < deadline, "the batch never removed anything"
        time.sleep(0.05)

    with fast_once_started(enforcer_cli, temporal_env, rollback_id):
        output = enforcer_cli.ok("rollback", batch_id, "--yes", "--watch")

    assert f"Batch {batch_id} is rolling back" in output
    assert library_of(enforcer_cli) == before
    _, counts = ledger_view(enforcer_cli, batch_id)
    removed = counts[ItemStatus.ROLLED_BACK]
    assert removed, "it had removed something before the rollback"
    assert_views_agree(
        enforcer_cli,
        batch_id,
        BatchStatus.ROLLED_BACK,
        back=removed,
        removed=removed,
        last_rollback=rollback_id,
    )
    # Still running when its rollback ended: the enforcement's own attribute and details.
    attribute, details = temporal_view(temporal_env, batch_id)
    assert attribute == BatchStatus.ROLLED_BACK.value
    assert "status: rolled back" in details
    back = f"{removed} of {removed} removed items back"
    assert f"rolled back by {linked(rollback_id)}: {back}" in details
    attribute, _ = temporal_view(temporal_env, rollback_id)
    assert attribute == BatchStatus.ROLLED_BACK.value


def test_a_running_batchs_web_ui_details_follow_its_chunks_not_only_its_status(
    enforcer_cli: Cli, temporal_env: WorkflowEnvironment
) -> None:
    """The current details move with every chunk while the status stays ``running``
    (before, they changed only with the status), in plain words, never raw kind names."""
    plan = planned(enforcer_cli)
    batch_id = enforcement_workflow_id("alice", plan["id"])
    enforcer_cli.sandbox.set_faults(Faults(latency_ms=500))
    enforcer_cli.ok("enforce", plan["id"], "--yes", "--max-in-flight", "1")

    removed_while_running: set[int] = set()
    deadline = time.monotonic() + 30
    while (view := temporal_view(temporal_env, batch_id))[0] != BatchStatus.COMPLETED.value:
        assert time.monotonic() < deadline, f"the batch did not complete: {view}"
        _, details = view
        if "status: running" in details:
            removed_while_running.add(sum(map(int, re.findall(r"(\d+) removed,", details))))
            assert "liked_song" not in details
            assert "playlist_item" not in details
        time.sleep(0.05)

    assert len(removed_while_running - {0, len(plan["actions"])}) >= 1, removed_while_running
    _, details = temporal_view(temporal_env, batch_id)
    assert f"liked songs: {sum(a['entity_type'] == 'liked_song' for a in plan['actions'])} " in (
        details
    )
