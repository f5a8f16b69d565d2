"""A worker SIGKILLed in the middle of an enforcement, and again in the middle of its
rollback: the batch goes on within seconds and the library ends exactly as it was.

The bounded version of `make chaos`'s scenario 1 (scripts/chaos.py): real processes (the
sandbox served by `starter.py sandbox`, `worker.py`, the dev server), one kill in each
phase instead of 20 and 5. Requests cross a real socket, so they are not contract-checked
(the in-process enforcement and rollback tests check the same requests).
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from temporalio.client import Client

from enforcer.ledger import Ledger, LedgerError, ledger_url
from enforcer.models import (
    BatchStatus,
    EnforcementRequest,
    ItemStatus,
    RollbackRequest,
)
from enforcer.sandbox import generate_library
from scripts.chaos import comparable, differences, extra_copies, stalls, still_present
from tests.workflows._batches import enforcement_id, plan_of
from tests.workflows._processes import (
    eventually,
    process,
    sandbox_server,
    sandbox_urls,
    worker_environment,
)
from tests.workflows._world import USER, served_user, settings_for
from workflows.enforcement import EnforcementWorkflow
from workflows.rollback import RollbackWorkflow, rollback_workflow_id

# About 300 removals in liked songs and 12 playlists: ~20 chunks, ~200 restoring calls.
LIKED_SONGS = 800
PLAYLISTS = 12
BLOCKED_ARTISTS = 12
STALL_LIMIT = 20.0
WITHIN = 60.0


class Worker:
    """`worker.py` as a process that can be killed and started again at once; every
    process it started ends with ``stack``."""

    def __init__(self, args: list[str], env: dict[str, str], logs: Path, stack: ExitStack):
        self._args, self._env, self._logs, self._stack = args, env, logs, stack
        self._current: subprocess.Popen[bytes] | None = None
        self._started = 0

    def start(self) -> None:
        self._started += 1
        log = self._logs / f"worker-{self._started}.log"
        self._current = self._stack.enter_context(process(self._args, self._env, log))

    def kill_and_restart(self) -> datetime:
        """SIGKILLs the worker, starts a new one; returns when it was killed."""
        assert self._current is not None
        self._current.send_signal(signal.SIGKILL)
        self._current.wait(timeout=10)
        killed = datetime.now(UTC)
        self.start()
        return killed


async def counters(admin: httpx.AsyncClient) -> dict[str, Any]:
    answer: dict[str, Any] = (await admin.get("/__sandbox/counters")).json()
    return answer


async def test_a_worker_killed_during_enforcement_and_during_rollback_loses_nothing(
    temporal_client: Client, task_queue: str, tmp_path: Path
) -> None:
    library = generate_library(seed=7, user_id=USER, liked_songs=LIKED_SONGS, playlists=PLAYLISTS)
    async with sandbox_server(tmp_path, library) as admin:
        api, accounts = sandbox_urls(admin)
        settings = settings_for(tmp_path, api=api, accounts=accounts)
        async with await Ledger.open(ledger_url(settings)) as ledger:
            await served_user(ledger, settings, admin, library, blocked_artists=BLOCKED_ARTISTS)
            env = worker_environment(temporal_client, settings)
            before = comparable((await admin.get(f"/__sandbox/users/{USER}")).json())

            async def ended(batch_id: str) -> int:
                try:
                    counts = await ledger.item_counts(batch_id)
                except LedgerError:  # the batch is not recorded yet
                    return 0
                return (
                    sum(counts.values())
                    - counts[ItemStatus.PENDING]
                    - counts[ItemStatus.IN_PROGRESS]
                )

            with ExitStack() as stack:
                worker = Worker(["worker.py", "--task-queue", task_queue], env, tmp_path, stack)
                worker.start()
                plan = await plan_of(temporal_client, task_queue)
                actions = await ledger.plan_actions(plan.plan_id)
                # Answers of 150 ms: each phase lasts long enough to be killed in.
                (await admin.put("/__sandbox/faults", json={"latency_ms": 150})).raise_for_status()
                (await admin.delete("/__sandbox/counters")).raise_for_status()
                handle = await temporal_client.start_workflow(
                    EnforcementWorkflow.run,
                    EnforcementRequest(account_id=USER, plan_id=plan.plan_id),
                    id=enforcement_id(plan.plan_id),
                    task_queue=task_queue,
                )

                async def a_third_removed() -> bool:
                    return await ended(handle.id) * 3 >= len(actions)

                await eventually(a_third_removed, within=WITHIN, what="a third of the removals")
                enforcement_kill = worker.kill_and_restart()
                async with asyncio.timeout(WITHIN):
                    summary = await handle.result()
                enforced = (await admin.get(f"/__sandbox/users/{USER}")).json()
                enforcement_calls = await counters(admin)
                enforcement_items = await ledger.action_items(summary.batch_id)

                (await admin.delete("/__sandbox/counters")).raise_for_status()
                rollback_id = rollback_workflow_id(summary.batch_id)
                rollback = await temporal_client.start_workflow(
                    RollbackWorkflow.run,
                    RollbackRequest(account_id=USER, batch_id=summary.batch_id),
                    id=rollback_id,
                    task_queue=task_queue,
                )

                async def a_third_restored() -> bool:
                    return await ended(rollback_id) * 3 >= len(actions)

                await eventually(a_third_restored, within=WITHIN, what="a third of the restores")
                rollback_kill = worker.kill_and_restart()
                async with asyncio.timeout(WITHIN):
                    undone = await rollback.result()
                rollback_calls = await counters(admin)
                restored_items = await ledger.action_items(undone.batch_id)
            after = comparable((await admin.get(f"/__sandbox/users/{USER}")).json())

    assert summary.status is BatchStatus.COMPLETED
    assert {item.status for item in enforcement_items} == {ItemStatus.COMPLETED}
    assert still_present(enforced, actions) == []
    assert undone.status is BatchStatus.COMPLETED
    assert {item.status for item in restored_items} == {ItemStatus.COMPLETED}
    assert differences(before, after) == []
    assert extra_copies(before, after) == 0
    for items, kill in ((enforcement_items, enforcement_kill), (restored_items, rollback_kill)):
        end = max(item.finished_at for item in items if item.finished_at is not None)
        (stall,) = stalls([kill], items, end)
        assert stall <= STALL_LIMIT
    for traffic, received in (
        (summary.traffic, enforcement_calls),
        (undone.traffic, rollback_calls),
    ):
        assert received["violations"] == 0
        sandbox_calls = sum(received["calls"].values())
        # A request the ledger counted as sent whose worker was killed before it left
        # is in the summary and not at the sandbox: at most the unanswered ones (see
        # docs/reliability.md). Nothing the sandbox received is missing from the ledger.
        unanswered = traffic.by_status().get("unanswered", 0)
        assert traffic.sent - unanswered <= sandbox_calls <= traffic.sent
