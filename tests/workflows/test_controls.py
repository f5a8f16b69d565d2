"""The person's controls: updates that answer with the batch's status and refuse, by
their validators, what cannot apply; signals with arguments they do not take, and
signals of unknown names, change nothing and are logged."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError

from enforcer.models import BatchStatus, EnforcementProgress, EnforcementSummary, ItemStatus
from tests.support.contract import ContractRecorder
from tests.workflows._saga import library_of, plan, small_library, start_enforcing, world_of
from tests.workflows._world import World, workers
from workflows.enforcement import EnforcementWorkflow


@pytest.fixture
async def made(tmp_path: Path, contract_recorder: ContractRecorder) -> AsyncIterator[World]:
    async with world_of(tmp_path, contract_recorder, small_library(), blocked_artists=8) as w:
        yield w


async def _once_paused(
    handle: WorkflowHandle[EnforcementWorkflow, EnforcementSummary],
) -> EnforcementProgress:
    """The batch's progress once it holds, paused, before its first chunk."""
    async with asyncio.timeout(30):
        while True:
            progress = await handle.query(EnforcementWorkflow.progress)
            if progress.status is BatchStatus.PAUSED:
                return progress
            await asyncio.sleep(0.05)


async def test_junk_controls_change_nothing_and_valid_ones_answer_the_status(
    temporal_client: Client, task_queue: str, made: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="temporalio.workflow")
    before = library_of(made.sandbox)
    async with workers(temporal_client, task_queue, made):
        handle = await start_enforcing(
            temporal_client, task_queue, await plan(temporal_client, task_queue)
        )
        with pytest.raises(WorkflowUpdateFailedError) as not_paused:
            await handle.execute_update("resume", result_type=BatchStatus)
        # Paused before it removes anything: it holds still while junk arrives.
        await handle.execute_update("pause", result_type=BatchStatus)
        await handle.signal("rollback", "yes please")
        await handle.signal("cancel", {"now": True})
        await handle.signal("roll_everything_back")
        with pytest.raises(WorkflowUpdateFailedError) as junk:
            await handle.execute_update("cancel", "junk")
        with pytest.raises(WorkflowUpdateFailedError) as extra:
            await handle.execute_update("rollback", 1)

        progress = await _once_paused(handle)
        assert progress.chunks_done == 0
        assert library_of(made.sandbox) == before

        assert await handle.execute_update("resume", result_type=BatchStatus) is (
            BatchStatus.RUNNING
        )
        summary = await handle.result()

    assert "cancel takes no argument; it was given 1" in str(junk.value.cause)
    assert "rollback takes no argument; it was given 1" in str(extra.value.cause)
    assert "not paused: there is nothing to resume" in str(not_paused.value.cause)
    # Neither the junk rollback nor the junk cancel took effect: the batch ran through.
    assert summary.status is BatchStatus.COMPLETED
    assert summary.rolled_back_by is None
    items = await made.ledger.action_items(summary.batch_id)
    assert {item.status for item in items} == {ItemStatus.COMPLETED}
    log = caplog.text
    assert "ignored the 'rollback' signal: it takes no argument, it came with 1" in log
    assert "ignored the 'cancel' signal: it takes no argument, it came with 1" in log
    assert "ignored a signal 'roll_everything_back'" in log
