"""A workflow started with an input it cannot use ends at once as Failed, naming the field.

Each input is sent as ``temporal workflow start --input`` sends it: a plain JSON payload
(``json/plain``), built by hand here so that no converter of ours shapes it. Before the
fix, such a start left the workflow Running for ever, its workflow task failing
"Failed decoding arguments" on every retry.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Final

import pytest
from temporalio.api.common.v1 import Payload
from temporalio.client import Client, WorkflowFailureError
from temporalio.common import RawValue
from temporalio.exceptions import FailureError

from enforcer.ledger import Ledger, ledger_url
from tests.workflows._world import settings_for
from worker import build_worker

# Long enough for a first workflow task on a busy 2-core machine; a workflow whose task
# fails is retried for ever, so reaching this timeout is the defect itself.
ENDS_WITHIN_SECONDS: Final = 15.0


def json_payload(text: str) -> RawValue:
    return RawValue(Payload(metadata={"encoding": b"json/plain"}, data=text.encode()))


# (workflow type, JSON inputs, what the failure must name)
CASES: Final = [
    ("PlanningWorkflow", ['"garbage"'], "PlanRequest"),
    ("PlanningWorkflow", ["{}"], "account_id"),
    ("PlanningWorkflow", ["[1, 2]"], "PlanRequest"),
    ("PlanningWorkflow", ["null"], "PlanRequest"),
    ("PlanningWorkflow", ["42"], "PlanRequest"),
    ("PlanningWorkflow", ['{"account_id": 5}'], "account_id"),
    ("PlanningWorkflow", ['{"account_id": ""}'], "account_id"),
    ("PlanningWorkflow", ['{"account_id": "a", "options": {"policy": "loud"}}'], "policy"),
    ("PlanningWorkflow", ['{"account_id": "a", "surprise": 1}'], "surprise"),
    ("PlanningWorkflow", ["{not json"], "JSON"),
    ("PlanningWorkflow", [], "no input"),
    ("PlanningWorkflow", ['{"account_id": "a"}', '{"account_id": "b"}'], "2 inputs"),
    ("EnforcementWorkflow", ['"garbage"'], "EnforcementRequest"),
    ("EnforcementWorkflow", ["{}"], "plan_id"),
    (
        "EnforcementWorkflow",
        ['{"account_id": "a", "plan_id": "p", "max_in_flight": -5}'],
        "max_in_flight",
    ),
    (
        "EnforcementWorkflow",
        ['{"account_id": "a", "plan_id": "p", "max_in_flight": 1e9}'],
        "max_in_flight",
    ),
    ("EnforcementWorkflow", ['[{"account_id": "a", "plan_id": "p"}]'], "EnforcementRequest"),
    ("EnforcementWorkflow", ['{"account_id": "a", "plan_id": "p", "atomic": "perhaps"}'], "atomic"),
    ("EnforcementWorkflow", [], "no input"),
    ("RollbackWorkflow", ['"garbage"'], "RollbackRequest"),
    ("RollbackWorkflow", ["{}"], "batch_id"),
    (
        "RollbackWorkflow",
        ['{"account_id": "a", "batch_id": "b", "max_in_flight": 0}'],
        "max_in_flight",
    ),
    ("RollbackWorkflow", ['{"account_id": "a", "batch_id": "b", "item_keys": "k"}'], "item_keys"),
    ("RollbackWorkflow", ['{"account_id": "a", "batch_id": "b", "item_keys": []}'], "item_keys"),
    ("RollbackWorkflow", [], "no input"),
    ("KeepEnforcedWorkflow", ['"garbage"'], "KeepRequest"),
    ("KeepEnforcedWorkflow", ['{"account_id": "a", "settle_seconds": -1}'], "settle_seconds"),
    ("KeepEnforcedWorkflow", [], "no input"),
]


@pytest.fixture
async def running_worker(
    temporal_client: Client, task_queue: str, tmp_path: Path
) -> AsyncIterator[None]:
    settings = settings_for(tmp_path)
    ledger = await Ledger.open(ledger_url(settings))
    try:
        async with build_worker(temporal_client, settings, ledger, task_queue=task_queue):
            yield
    finally:
        await ledger.close()


@pytest.mark.usefixtures("running_worker")
async def test_a_malformed_input_fails_the_workflow_at_once_naming_the_field(
    temporal_client: Client, task_queue: str
) -> None:
    async def started(workflow: str, inputs: list[str], named: str) -> str | None:
        """What is wrong with this case's outcome; None when it is right."""
        handle = await temporal_client.start_workflow(
            workflow,
            args=[json_payload(text) for text in inputs],
            id=f"malformed/{workflow}/{uuid.uuid4().hex}",
            task_queue=task_queue,
        )
        try:
            async with asyncio.timeout(ENDS_WITHIN_SECONDS):
                await handle.result()
        except TimeoutError:
            await handle.terminate("the test gave up on it")
            return f"{workflow} {inputs}: still running after {ENDS_WITHIN_SECONDS} s"
        except WorkflowFailureError as error:
            cause = error.cause
            message = cause.message if isinstance(cause, FailureError) else str(cause)
            if named not in message:
                return f"{workflow} {inputs}: failed without naming {named!r}: {message}"
            if len(message) > 1_000:
                return f"{workflow} {inputs}: a message of {len(message)} characters"
            return None
        return f"{workflow} {inputs}: succeeded"

    outcomes = await asyncio.gather(*(started(*case) for case in CASES))
    assert [outcome for outcome in outcomes if outcome is not None] == []
