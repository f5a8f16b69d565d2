"""Both Temporal servers the suite relies on start offline and run real workflows."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

# The worker's sandbox re-imports this module: pass the heavy, non-workflow imports through.
with workflow.unsafe.imports_passed_through():
    import pytest

    from tests.support.temporal import installed_binary
    from workflows.search_attributes import ENFORCEMENT_ACCOUNT, ENFORCEMENT_STATUS

_VISIBILITY_DEADLINE_SECONDS = 10.0


@activity.defn
async def greet(name: str) -> str:
    return f"hello {name}"


@workflow.defn(sandboxed=True)
class GreetAndMarkDone:
    """Greets through an activity, then marks itself with a unique status for list queries."""

    @workflow.run
    async def run(self, name: str, status: str) -> str:
        greeting = await workflow.execute_activity(
            greet, name, start_to_close_timeout=timedelta(seconds=10)
        )
        workflow.upsert_search_attributes([ENFORCEMENT_STATUS.value_set(status)])
        return greeting


@workflow.defn(sandboxed=True)
class GreetAfterSixHours:
    @workflow.run
    async def run(self, name: str) -> str:
        await workflow.sleep(timedelta(hours=6))
        return await workflow.execute_activity(
            greet, name, start_to_close_timeout=timedelta(seconds=10)
        )


async def _workflow_ids_matching(client: Client, query: str) -> set[str]:
    return {execution.id async for execution in client.list_workflows(query)}


async def test_dev_server_runs_a_workflow_and_finds_it_by_search_attribute(
    temporal_client: Client, task_queue: str
) -> None:
    workflow_id = f"smoke-{uuid.uuid4().hex}"
    status = f"smoke-done-{uuid.uuid4().hex}"
    async with Worker(
        temporal_client,
        task_queue=task_queue,
        workflows=[GreetAndMarkDone],
        activities=[greet],
    ):
        result = await temporal_client.execute_workflow(
            GreetAndMarkDone.run,
            args=["listener", status],
            id=workflow_id,
            task_queue=task_queue,
            search_attributes=TypedSearchAttributes(
                [SearchAttributePair(ENFORCEMENT_ACCOUNT, "smoke-account")]
            ),
        )
    assert result == "hello listener"

    # Visibility is eventually consistent: the upsert shows up shortly after completion.
    query = f"EnforcementStatus = '{status}' AND EnforcementAccount = 'smoke-account'"
    deadline = time.monotonic() + _VISIBILITY_DEADLINE_SECONDS
    found = await _workflow_ids_matching(temporal_client, query)
    while found != {workflow_id} and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        found = await _workflow_ids_matching(temporal_client, query)
    assert found == {workflow_id}

    description = await temporal_client.get_workflow_handle(workflow_id).describe()
    assert description.status == WorkflowExecutionStatus.COMPLETED
    assert description.typed_search_attributes.get(ENFORCEMENT_STATUS) == status
    assert description.typed_search_attributes.get(ENFORCEMENT_ACCOUNT) == "smoke-account"


async def test_time_skipping_server_skips_a_six_hour_sleep(
    temporal_time_skipping_env: WorkflowEnvironment, task_queue: str
) -> None:
    client = temporal_time_skipping_env.client
    async with Worker(
        client, task_queue=task_queue, workflows=[GreetAfterSixHours], activities=[greet]
    ):
        started = time.monotonic()
        result = await client.execute_workflow(
            GreetAfterSixHours.run,
            "sleeper",
            id=f"smoke-sleep-{uuid.uuid4().hex}",
            task_queue=task_queue,
            search_attributes=TypedSearchAttributes(
                [SearchAttributePair(ENFORCEMENT_ACCOUNT, "smoke-account")]
            ),
        )
        elapsed = time.monotonic() - started
    assert result == "hello sleeper"
    assert elapsed < 1.0, f"a 6-hour sleep took {elapsed:.2f} s of wall time"


def test_a_missing_server_binary_fails_naming_the_path_and_the_fix() -> None:
    with pytest.raises(pytest.fail.Exception) as failure:
        installed_binary("temporal-binary-that-is-not-installed")
    message = str(failure.value)
    assert "bin/temporal-binary-that-is-not-installed is missing" in message
    assert "make test" in message
