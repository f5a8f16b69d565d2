"""Two plans of one account whose removals overlap, enforced at once and rolled back at
once: one writer at a time, and the library ends exactly as it was.

The bounded version of `make chaos`'s scenario 4 (scripts/chaos.py): an in-process worker
and sandbox (every exchange contract-checked), the real dev server. Plan A blocks the
first two thirds of the chosen artists, plan B the last two thirds, so their middle third's
songs are in both plans. Whichever batch starts second waits its turn (``waiting_for_turn``,
seen through its ``progress`` query), then skips what the first removed, naming it.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle

from enforcer.models import (
    BatchStatus,
    EnforcementRequest,
    EnforcementSummary,
    ItemStatus,
    RollbackRequest,
)
from enforcer.sandbox import Faults
from scripts.chaos import comparable, differences, extra_copies, still_present
from tests.support.contract import ContractRecorder
from tests.workflows._batches import enforcement_id
from tests.workflows._plans import store_plan
from tests.workflows._world import USER, World, workers, world
from workflows.enforcement import EnforcementWorkflow
from workflows.rollback import RollbackWorkflow, rollback_workflow_id

WITHIN = 45.0
"""Seconds the two batches (or the two rollbacks) may take together."""


@pytest.fixture
async def overlapping_world(
    tmp_path: Path, contract_recorder: ContractRecorder
) -> AsyncIterator[World]:
    """About 150 removals per plan, a third of them in both, in liked songs and 6 playlists."""
    async with world(
        tmp_path, contract_recorder, liked_songs=400, playlists=6, blocked_artists=12
    ) as made:
        yield made


async def enforce(
    client: Client, task_queue: str, plan_id: str
) -> WorkflowHandle[EnforcementWorkflow, EnforcementSummary]:
    return await client.start_workflow(
        EnforcementWorkflow.run,
        EnforcementRequest(account_id=USER, plan_id=plan_id),
        id=enforcement_id(plan_id),
        task_queue=task_queue,
    )


async def seen_waiting(
    handles: dict[str, WorkflowHandle[EnforcementWorkflow, EnforcementSummary]],
) -> set[str]:
    """The batches whose progress query answered ``waiting_for_turn`` before they ended."""
    waited: set[str] = set()
    running = dict(handles)
    async with asyncio.timeout(WITHIN):
        while running:
            for label, handle in list(running.items()):
                if (await handle.describe()).status is not WorkflowExecutionStatus.RUNNING:
                    del running[label]
                elif (
                    await handle.query(EnforcementWorkflow.progress)
                ).status is BatchStatus.WAITING_FOR_TURN:
                    waited.add(label)
            await asyncio.sleep(0.05)
    return waited


@pytest.mark.parametrize("first", ["A", "B"])
async def test_overlapping_batches_take_turns_and_roll_back_to_the_library_as_it_was(
    temporal_client: Client, task_queue: str, overlapping_world: World, first: str
) -> None:
    made = overlapping_world
    third = len(made.blocked) // 3
    plans = {
        "A": await store_plan(dataclasses.replace(made, blocked=made.blocked[: 2 * third])),
        "B": await store_plan(dataclasses.replace(made, blocked=made.blocked[third:])),
    }
    shared = {a.key for a in plans["A"].actions} & {a.key for a in plans["B"].actions}
    assert shared, "the two plans must overlap"
    before = comparable(made.sandbox.dump_user(USER))
    order = [first, "B" if first == "A" else "A"]
    # Answers slow enough that the second batch is seen waiting for the first.
    made.sandbox.set_faults(Faults(seed=1, latency_ms=40))

    async with workers(temporal_client, task_queue, made):
        handles = {
            label: await enforce(temporal_client, task_queue, plans[label].id) for label in order
        }
        waited = await seen_waiting(handles)
        async with asyncio.timeout(WITHIN):
            summaries = {label: await handle.result() for label, handle in handles.items()}
        enforced = made.sandbox.dump_user(USER)
        rollbacks: list[WorkflowHandle[RollbackWorkflow, Any]] = [
            await temporal_client.start_workflow(
                RollbackWorkflow.run,
                RollbackRequest(account_id=USER, batch_id=summaries[label].batch_id),
                id=rollback_workflow_id(summaries[label].batch_id),
                task_queue=task_queue,
            )
            for label in order
        ]
        async with asyncio.timeout(WITHIN):
            undone = [await handle.result() for handle in rollbacks]

    # One batch waited while the other wrote; which one is Temporal's to decide.
    assert len(waited) == 1, f"batches seen waiting for their turn: {waited}"
    (second,) = waited
    assert all(s.status is BatchStatus.COMPLETED for s in summaries.values())
    for label in order:
        assert still_present(enforced, plans[label].actions) == []
    # The second batch removed none of what the first had removed, and said so.
    first_batch = summaries["A" if second == "B" else "B"].batch_id
    second_items = await made.ledger.action_items(summaries[second].batch_id)
    skipped = {i.key for i in second_items if i.status is ItemStatus.SKIPPED}
    assert skipped == shared
    assert all(first_batch in (i.error or "") for i in second_items if i.key in skipped)
    assert all(u.status is BatchStatus.COMPLETED for u in undone)
    after = comparable(made.sandbox.dump_user(USER))
    assert differences(before, after) == []
    assert extra_copies(before, after) == 0
    assert made.sandbox.counters.violations == 0
