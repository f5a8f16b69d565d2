"""Operating a running batch from outside: Temporal's own CLI, and a worker stopped with
SIGTERM in the middle of it.

The CLI test runs the real `temporal` binary against the dev server while an in-process
worker enforces a plan on the in-process sandbox. The SIGTERM test is all real
processes: the sandbox served by `starter.py sandbox`, two `worker.py` processes (the
first one stopped with SIGTERM), the Temporal dev server; its requests cross a real
socket, so they are not contract-checked (the in-process enforcement tests check them).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
)
from temporalio.exceptions import CancelledError

from enforcer.ledger import ActionItemRecord, Ledger, ledger_url
from enforcer.models import (
    BatchStatus,
    EnforcementRequest,
    EnforcementSummary,
    ItemStatus,
)
from enforcer.sandbox import Faults, generate_library
from tests.support.contract import ContractRecorder
from tests.support.temporal import DEV_SERVER_BINARY, installed_binary
from tests.workflows._batches import (
    assert_library_agrees_with_ledger,
    enforcement_id,
    plan_of,
    write_lower_bound,
    writes_counted,
)
from tests.workflows._processes import (
    eventually,
    process,
    sandbox_server,
    sandbox_urls,
    worker_environment,
)
from tests.workflows._world import USER, served_user, settings_for, workers, world
from worker import GRACEFUL_SHUTDOWN
from workflows.enforcement import EnforcementWorkflow

# About 35 chunks (library chunks of 40 URIs, and chunks in 10 playlists).
LIKED_SONGS = 1_000
PLAYLISTS = 10
BLOCKED_ARTISTS = 40
CLI_TIMEOUT = 15.0


async def start_enforcement(
    client: Client, task_queue: str, plan_id: str, *, max_in_flight: int
) -> WorkflowHandle[EnforcementWorkflow, EnforcementSummary]:
    return await client.start_workflow(
        EnforcementWorkflow.run,
        EnforcementRequest(account_id=USER, plan_id=plan_id, max_in_flight=max_in_flight),
        id=enforcement_id(plan_id),
        task_queue=task_queue,
    )


async def temporal_cli(client: Client, *args: str) -> str:
    """Runs Temporal's CLI against the test's server, as an operator would; its stdout."""
    # Only the flags name the server: nothing of the suite's environment may redirect it.
    env = {name: value for name, value in os.environ.items() if not name.startswith("TEMPORAL_")}
    cli = await asyncio.create_subprocess_exec(
        installed_binary(DEV_SERVER_BINARY),
        *args,
        "--address",
        client.service_client.config.target_host,
        "--namespace",
        client.namespace,
        "--command-timeout",
        f"{CLI_TIMEOUT:.0f}s",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(CLI_TIMEOUT + 5):
        out, err = await cli.communicate()
    assert cli.returncode == 0, (args, out.decode(), err.decode())
    return out.decode()


async def listed(client: Client, query: str) -> set[str]:
    """The workflow IDs `temporal workflow list --query QUERY` prints."""
    out = await temporal_cli(client, "workflow", "list", "--query", query, "--output", "json")
    executions: list[dict[str, Any]] = json.loads(out)
    return {execution["execution"]["workflowId"] for execution in executions}


@pytest.mark.parametrize(
    "cancel",
    [
        ("workflow", "signal", "--name", "cancel"),  # the batch's own control
        ("workflow", "cancel"),  # Temporal's request, as the Web UI's button sends it
    ],
    ids=["signal", "temporal-cancel"],
)
async def test_the_temporal_cli_queries_lists_and_cancels_a_running_batch(
    temporal_client: Client,
    task_queue: str,
    tmp_path: Path,
    contract_recorder: ContractRecorder,
    cancel: tuple[str, ...],
) -> None:
    async with (
        world(
            tmp_path,
            contract_recorder,
            liked_songs=LIKED_SONGS,
            playlists=PLAYLISTS,
            blocked_artists=BLOCKED_ARTISTS,
        ) as made,
        workers(temporal_client, task_queue, made),
    ):
        plan = await plan_of(temporal_client, task_queue)
        # Slow calls, one at a time: the batch runs for about ten seconds.
        made.sandbox.set_faults(Faults(seed=1, latency_ms=300))
        handle = await start_enforcement(temporal_client, task_queue, plan.plan_id, max_in_flight=1)
        batch_id = handle.id

        async def started() -> bool:
            return (await handle.query(EnforcementWorkflow.progress)).chunks_done >= 1

        await eventually(started, within=20, what="a chunk to be done")

        out = await temporal_cli(
            temporal_client,
            "workflow",
            "query",
            "--workflow-id",
            batch_id,
            "--name",
            "progress",
            "--output",
            "json",
        )
        [progress] = json.loads(out)["queryResult"]
        planned = Counter(a.entity_type.value for a in await made.ledger.plan_actions(plan.plan_id))
        assert progress["batch_id"] == batch_id
        assert progress["plan_id"] == plan.plan_id
        assert progress["status"] == "running"
        assert progress["totals"] == dict(planned)
        assert 1 <= progress["chunks_done"] < progress["chunks_total"]

        for query in (
            "EnforcementStatus='running'",
            f"EnforcementStatus='running' AND EnforcementAccount='{USER}'",
        ):

            async def batch_listed(query: str = query) -> bool:
                return batch_id in await listed(temporal_client, query)

            await eventually(batch_listed, within=10, what=f"the batch to be listed by {query}")
        assert batch_id not in await listed(
            temporal_client, "EnforcementStatus='running' AND EnforcementAccount='someone-else'"
        )

        await temporal_cli(temporal_client, *cancel, "--workflow-id", batch_id)
        async with asyncio.timeout(20):
            with pytest.raises(WorkflowFailureError) as ended:
                await handle.result()
        assert isinstance(ended.value.cause, CancelledError)
        described = await temporal_cli(
            temporal_client, "workflow", "describe", "--workflow-id", batch_id, "--output", "json"
        )
        assert json.loads(described)["workflowExecutionInfo"]["status"] == (
            "WORKFLOW_EXECUTION_STATUS_CANCELED"
        )

        async def cancelled_listed() -> bool:
            return batch_id in await listed(temporal_client, "EnforcementStatus='cancelled'")

        await eventually(cancelled_listed, within=10, what="the batch to be listed as cancelled")
        items = await made.ledger.action_items(batch_id)
        recorded = await made.ledger.batch(batch_id)

    assert recorded.status is BatchStatus.CANCELLED
    statuses = Counter(item.status for item in items)
    # Some chunks were done before the signal and the rest never started.
    assert set(statuses) == {ItemStatus.COMPLETED, ItemStatus.SKIPPED}, statuses
    assert_library_agrees_with_ledger(made.sandbox.dump_user(USER), items)


async def test_a_worker_stopped_with_sigterm_drains_and_a_new_worker_finishes_the_batch(
    temporal_client: Client, task_queue: str, tmp_path: Path
) -> None:
    library = generate_library(seed=7, user_id=USER, liked_songs=LIKED_SONGS, playlists=PLAYLISTS)
    async with sandbox_server(tmp_path, library) as admin:
        api, accounts = sandbox_urls(admin)
        settings = settings_for(tmp_path, api=api, accounts=accounts)
        async with await Ledger.open(ledger_url(settings)) as ledger:
            tokens = await served_user(
                ledger, settings, admin, library, blocked_artists=BLOCKED_ARTISTS
            )
            env = worker_environment(temporal_client, settings)
            worker_args = ["worker.py", "--task-queue", task_queue]

            with process(worker_args, env, tmp_path / "worker-1.log") as first:
                plan = await plan_of(temporal_client, task_queue)
                # Slow calls, three at a time: the batch takes about ten seconds.
                (await admin.put("/__sandbox/faults", json={"latency_ms": 700})).raise_for_status()
                (await admin.delete("/__sandbox/counters")).raise_for_status()
                handle = await start_enforcement(
                    temporal_client, task_queue, plan.plan_id, max_in_flight=3
                )
                batch_id = handle.id

                in_flight: list[ActionItemRecord] = []

                async def a_few_done_and_more_just_sent() -> bool:
                    if (await handle.query(EnforcementWorkflow.progress)).chunks_done < 3:
                        return False
                    claimed = await ledger.action_items(batch_id, status=ItemStatus.IN_PROGRESS)
                    # Claimed within the last 200 ms: their answers (700 ms) are still to
                    # come when the signal lands, however the activities' ends line up.
                    just_sent = datetime.now(UTC) - timedelta(milliseconds=200)
                    in_flight[:] = [item for item in claimed if item.updated_at >= just_sent]
                    return bool(in_flight)

                await eventually(
                    a_few_done_and_more_just_sent, within=30, what="three chunks to be done"
                )
                first.send_signal(signal.SIGTERM)
                async with asyncio.timeout(GRACEFUL_SHUTDOWN.total_seconds()):
                    exit_code = await asyncio.to_thread(first.wait)
                assert exit_code == 0, (tmp_path / "worker-1.log").read_text()

            drained = {item.key: item for item in await ledger.action_items(batch_id)}
            assert in_flight, "no chunk was in flight when the worker was stopped"
            for item in in_flight:
                finished = drained[item.key]
                assert finished.status is ItemStatus.COMPLETED, (item.key, finished.status)
            assert not [i for i in drained.values() if i.status is ItemStatus.IN_PROGRESS]
            assert [i for i in drained.values() if i.status is ItemStatus.PENDING], (
                "the batch ended before the worker was stopped"
            )
            assert (await ledger.batch(batch_id)).status is BatchStatus.RUNNING
            assert (await handle.describe()).status is WorkflowExecutionStatus.RUNNING

            with process(worker_args, env, tmp_path / "worker-2.log"):
                async with asyncio.timeout(30):
                    summary = await handle.result()

            items = await ledger.action_items(batch_id)
            lower_bound = write_lower_bound(await ledger.plan_actions(plan.plan_id))
            recorded = await ledger.batch(batch_id)
        calls: dict[str, int] = (await admin.get("/__sandbox/counters")).json()["calls"]
        state = (await admin.get(f"/__sandbox/users/{USER}")).json()

    assert summary.status is BatchStatus.COMPLETED
    assert recorded.status is BatchStatus.COMPLETED
    assert {item.status for item in items} == {ItemStatus.COMPLETED}
    # No chunk's removal was sent twice: the drained chunks were reported done, not re-run.
    assert writes_counted(calls) == lower_bound
    assert summary.api_calls == lower_bound
    assert_library_agrees_with_ledger(state, items)
    _assert_no_secret_in(tokens, [tmp_path / "worker-1.log", tmp_path / "worker-2.log"])


def _assert_no_secret_in(tokens: dict[str, Any], logs: Sequence[Path]) -> None:
    for log in logs:
        text = log.read_text()
        for name in ("access_token", "refresh_token"):
            assert tokens[name] not in text, f"{log.name} shows the {name}"
