"""One writer per account: two batches of one account whose removals overlap take turns,
an item the first removed is not the second's, and rolling both back (at once) puts the
library back exactly, with no extra copy of anything."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowHandle

from enforcer.models import (
    BatchStatus,
    BlockedArtist,
    EnforcementSummary,
    ItemStatus,
    RollbackRequest,
    RollbackSummary,
)
from enforcer.sandbox import Faults
from tests.support.contract import ContractRecorder
from tests.workflows._saga import library_of, plan, small_library, start_enforcing, world_of
from tests.workflows._world import USER, World, workers
from workflows.enforcement import EnforcementWorkflow
from workflows.rollback import RollbackWorkflow, rollback_workflow_id

WAIT_LIMIT = 30.0


@pytest.fixture
async def made(tmp_path: Path, contract_recorder: ContractRecorder) -> AsyncIterator[World]:
    async with world_of(tmp_path, contract_recorder, small_library(), blocked_artists=8) as w:
        yield w


async def _two_overlapping_plans(client: Client, task_queue: str, made: World) -> tuple[str, str]:
    """Plan A blocks artists 0-7; plan B, made before A runs, blocks 4-11: they share
    the removals of artists 4-7."""
    first = await plan(client, task_queue)
    artists = made.library["catalog"]["artists"]
    await made.ledger.remove_from_blocklist(USER, [a["id"] for a in artists[:4]])
    await made.ledger.add_to_blocklist(
        USER, [BlockedArtist(artist_id=a["id"], name=a["name"]) for a in artists[8:12]], "id"
    )
    second = await plan(client, task_queue)
    return first, second


async def _statuses_until_done(
    *handles: WorkflowHandle[EnforcementWorkflow, EnforcementSummary],
) -> list[set[BatchStatus]]:
    """Every status each batch showed, polled until all of them ended."""
    seen: list[set[BatchStatus]] = [set() for _ in handles]
    deadline = time.monotonic() + WAIT_LIMIT
    while time.monotonic() < deadline:
        for statuses, handle in zip(seen, handles, strict=True):
            statuses.add((await handle.query(EnforcementWorkflow.progress)).status)
        if all(statuses & {BatchStatus.COMPLETED, BatchStatus.CANCELLED} for statuses in seen):
            return seen
        await asyncio.sleep(0.05)
    raise AssertionError(f"the batches did not end within {WAIT_LIMIT} s: {seen}")


@pytest.mark.parametrize("first_runs", ["A", "B"])
async def test_overlapping_batches_take_turns_and_both_rollbacks_restore_exactly(
    temporal_client: Client, task_queue: str, made: World, first_runs: str
) -> None:
    before = library_of(made.sandbox)
    async with workers(temporal_client, task_queue, made):
        plan_a, plan_b = await _two_overlapping_plans(temporal_client, task_queue, made)
        order = [plan_a, plan_b] if first_runs == "A" else [plan_b, plan_a]
        # Slow answers, so that the first batch is still writing when the second starts.
        made.sandbox.set_faults(Faults(latency_ms=30))
        started = [
            await start_enforcing(temporal_client, task_queue, plan_id, max_in_flight=2)
            for plan_id in order
        ]
        seen = await _statuses_until_done(*started)
        summaries = [await handle.result() for handle in started]
        made.sandbox.set_faults(Faults())

        # One ran while the other waited for the account's turn, and said so.
        waited = [BatchStatus.WAITING_FOR_TURN in statuses for statuses in seen]
        assert sorted(waited) == [False, True], seen
        first_summary = summaries[waited.index(False)]
        second_summary = summaries[waited.index(True)]
        first_items = {i.key: i for i in await made.ledger.action_items(first_summary.batch_id)}
        second_items = {i.key: i for i in await made.ledger.action_items(second_summary.batch_id)}
        shared = set(first_items) & set(second_items)
        assert shared, "the plans must overlap for the test to mean anything"
        # What the first removed is not the second's: skipped, naming the first.
        for key in shared:
            assert first_items[key].status is ItemStatus.COMPLETED
            assert second_items[key].status is ItemStatus.SKIPPED
            assert first_summary.batch_id in (second_items[key].error or "")
        assert {i.status for k, i in second_items.items() if k not in shared} == {
            ItemStatus.COMPLETED
        }

        # Both rollbacks at once: they take turns too, and nothing comes back twice.
        rollbacks = [
            await temporal_client.start_workflow(
                RollbackWorkflow.run,
                RollbackRequest(account_id=USER, batch_id=summary.batch_id),
                id=rollback_workflow_id(summary.batch_id),
                task_queue=task_queue,
            )
            for summary in (second_summary, first_summary)
        ]
        undone: list[RollbackSummary] = [await handle.result() for handle in rollbacks]

    assert [summary.status for summary in undone] == [BatchStatus.COMPLETED] * 2
    assert library_of(made.sandbox) == before
    for summary in (first_summary, second_summary):
        assert (await made.ledger.batch(summary.batch_id)).status is BatchStatus.ROLLED_BACK
