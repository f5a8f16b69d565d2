"""A batch that continues as new, enforcement and rollback, ends exactly as one that does
not: every item once, the figures whole, the library back as it was.

A run continues as new between windows of chunks once its history is full; a library
large enough to fill one (hundreds of thousands of items) is too slow for the suite, so
the requests' ``chunks_per_run`` makes each run a few chunks long here."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.client import Client

from enforcer.models import BatchStatus, EnforcementRequest, ItemStatus, RollbackRequest
from tests.support.contract import ContractRecorder
from tests.workflows._batches import assert_library_agrees_with_ledger, enforcement_id
from tests.workflows._histories import run_weights
from tests.workflows._saga import library_of, plan, small_library, world_of
from tests.workflows._world import USER, World, workers
from workflows.enforcement import EnforcementWorkflow
from workflows.rollback import RollbackWorkflow, rollback_workflow_id

CHUNKS_PER_RUN = 3


@pytest.fixture
async def made(tmp_path: Path, contract_recorder: ContractRecorder) -> AsyncIterator[World]:
    library = small_library(liked_songs=400, playlists=6, playlist_size=30)
    async with world_of(tmp_path, contract_recorder, library, blocked_artists=10) as w:
        yield w


async def test_a_batch_and_its_rollback_over_several_runs_end_exactly(
    temporal_client: Client, task_queue: str, made: World
) -> None:
    before = library_of(made.sandbox)
    async with workers(temporal_client, task_queue, made):
        plan_id = await plan(temporal_client, task_queue)
        made.sandbox.reset_counters()
        enforcing = await temporal_client.start_workflow(
            EnforcementWorkflow.run,
            EnforcementRequest(
                account_id=USER, plan_id=plan_id, max_in_flight=2, chunks_per_run=CHUNKS_PER_RUN
            ),
            id=enforcement_id(plan_id),
            task_queue=task_queue,
        )
        summary = await enforcing.result()
        enforced_calls = made.sandbox.counters.total_calls
        items = await made.ledger.action_items(summary.batch_id)
        after_enforcement = made.sandbox.dump_user(USER)

        made.sandbox.reset_counters()
        rolling_back = await temporal_client.start_workflow(
            RollbackWorkflow.run,
            RollbackRequest(
                account_id=USER,
                batch_id=summary.batch_id,
                max_in_flight=2,
                chunks_per_run=CHUNKS_PER_RUN,
            ),
            id=rollback_workflow_id(summary.batch_id),
            task_queue=task_queue,
        )
        undone = await rolling_back.result()
        enforcement_runs = await run_weights(
            temporal_client, enforcing.id, enforcing.first_execution_run_id or ""
        )
        rollback_runs = await run_weights(
            temporal_client, rolling_back.id, rolling_back.first_execution_run_id or ""
        )

    assert len(enforcement_runs) > 2, "the batch must continue as new to mean anything"
    assert len(rollback_runs) > 2, "the rollback must continue as new to mean anything"
    assert summary.status is BatchStatus.COMPLETED
    assert {item.status for item in items} == {ItemStatus.COMPLETED}
    assert sum(tally.completed for tally in summary.tallies.values()) == len(items)
    assert summary.api_calls == enforced_calls
    assert_library_agrees_with_ledger(after_enforcement, items)
    assert undone.status is BatchStatus.COMPLETED
    assert sum(undone.restored.values()) == len(items)
    assert undone.api_calls == made.sandbox.counters.total_calls
    assert library_of(made.sandbox) == before
