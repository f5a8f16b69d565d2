"""The worker's Prometheus metrics (ENFORCER_METRICS_ADDRESS): a real `worker.py`
enforcing and rolling back a batch on the served sandbox under 429s, its /metrics read
over HTTP. Our series say what the ledger's summaries and the sandbox's counters say;
the SDK's are served beside them; without the setting the worker listens on no port;
a port it cannot have is refused, naming the variable."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
import sys
from collections import Counter
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
from temporalio.client import Client

from enforcer.ledger import Ledger, ledger_url
from enforcer.models import BatchStatus, EnforcementRequest, RollbackRequest
from enforcer.sandbox import generate_library
from tests.support.temporal import free_port
from tests.workflows._batches import enforcement_id, plan_of
from tests.workflows._processes import (
    ROOT,
    eventually,
    process,
    sandbox_server,
    sandbox_urls,
    worker_environment,
)
from tests.workflows._world import USER, served_user, settings_for
from workflows.enforcement import EnforcementWorkflow
from workflows.rollback import RollbackWorkflow, rollback_workflow_id

WITHIN = 90.0
STORM = 3
"""429s the sandbox answers in a row at the start of each phase."""
METRICS = "ENFORCER_METRICS_ADDRESS"

Series = Counter[tuple[str, frozenset[tuple[str, str]]]]
_SAMPLE = re.compile(r"^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def parse(text: str) -> Series:
    """Prometheus' text format: (name, labels) -> value."""
    series: Series = Counter()
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        sample = _SAMPLE.match(line)
        assert sample is not None, line
        name, labels, value = sample.groups()
        series[(name, frozenset(_LABEL.findall(labels or "")))] = float(value)  # type: ignore[assignment]
    return series


def total(series: Series, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(value for (n, ls), value in series.items() if n == name and wanted <= ls)


def by_label(series: Series, name: str, label: str) -> dict[str, float]:
    sums: dict[str, float] = {}
    for (n, labels), value in series.items():
        if n == name:
            key = dict(labels)[label]
            sums[key] = sums.get(key, 0.0) + value
    return {key: value for key, value in sums.items() if value}


def difference(after: Series, before: Series) -> Series:
    return Counter({key: value - before.get(key, 0) for key, value in after.items()})


def listening_ports(pid: int) -> set[int]:
    """The TCP ports the process ``pid`` listens on (its sockets in LISTEN state)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    ports = set()
    for table in ("tcp", "tcp6"):
        for row in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = row.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and inode in inodes:
                ports.add(int(local.rsplit(":", 1)[1], 16))
    return ports


async def test_metrics_during_a_batch_say_what_the_ledger_and_the_sandbox_say(
    temporal_client: Client, task_queue: str, tmp_path: Path
) -> None:
    library = generate_library(seed=11, user_id=USER, liked_songs=300, playlists=4)
    port = free_port()
    async with sandbox_server(tmp_path, library) as admin:
        api, accounts = sandbox_urls(admin)
        settings = settings_for(tmp_path, api=api, accounts=accounts)
        async with await Ledger.open(ledger_url(settings)) as ledger:
            await served_user(ledger, settings, admin, library, blocked_artists=10)
        env = {**worker_environment(temporal_client, settings), METRICS: f"127.0.0.1:{port}"}
        log = tmp_path / "worker.log"
        with process(["worker.py", "--task-queue", task_queue], env, log) as worker:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as scraper:

                async def scrape() -> Series:
                    answer = await scraper.get("/metrics")
                    answer.raise_for_status()
                    return parse(answer.text)

                plan = await plan_of(temporal_client, task_queue)
                assert port in listening_ports(worker.pid)

                async def phase(run: Any, request: Any, id: str) -> tuple[Any, Series, Any]:
                    """Runs one batch under a storm of 429s; what it returned, what the
                    metrics gained meanwhile, and what the sandbox received."""
                    storm = {"storm_requests": STORM, "storm_retry_after": 1}
                    (await admin.put("/__sandbox/faults", json=storm)).raise_for_status()
                    (await admin.delete("/__sandbox/counters")).raise_for_status()
                    before = await scrape()
                    handle = await temporal_client.start_workflow(
                        run, request, id=id, task_queue=task_queue
                    )
                    async with asyncio.timeout(WITHIN):
                        result = await handle.result()
                    received = (await admin.get("/__sandbox/counters")).json()
                    return result, difference(await scrape(), before), received

                summary, enforced, enforcement_calls = await phase(
                    EnforcementWorkflow.run,
                    EnforcementRequest(account_id=USER, plan_id=plan.plan_id),
                    enforcement_id(plan.plan_id),
                )
                undone, restored, rollback_calls = await phase(
                    RollbackWorkflow.run,
                    RollbackRequest(account_id=USER, batch_id=summary.batch_id),
                    rollback_workflow_id(summary.batch_id),
                )
                everything = await scrape()

    assert summary.status is BatchStatus.COMPLETED
    assert undone.status is BatchStatus.COMPLETED
    removed = {kind.value: t.completed for kind, t in summary.tallies.items() if t.completed}
    back = {kind.value: count for kind, count in undone.restored.items() if count}
    assert len(removed) >= 2, removed  # liked songs and playlist entries at least
    assert by_label(enforced, "enforcer_items_removed_total", "kind") == removed
    assert by_label(restored, "enforcer_items_restored_total", "kind") == back
    assert back == removed
    assert not by_label(enforced, "enforcer_items_restored_total", "kind")

    for gained, received in ((enforced, enforcement_calls), (restored, rollback_calls)):
        assert received["rate_limited"] == STORM
        requests = by_label(gained, "enforcer_spotify_requests_total", "endpoint")
        assert requests == {e: float(n) for e, n in received["calls"].items()}
        answers = by_label(gained, "enforcer_spotify_answers_total", "status")
        assert answers["429"] == STORM
        assert sum(answers.values()) == sum(received["calls"].values())
        assert total(gained, "enforcer_spotify_rate_limited_total", reason="rate_limit") == STORM
        # Each 429 is measured once where it arrived; a storm's 429s may come while the
        # gate is closed already (requests that left before it closed).
        assert total(gained, "enforcer_rate_limit_wait_seconds_count") == STORM
        assert total(gained, "enforcer_rate_limit_wait_seconds_sum") >= 1.0
        assert 1 <= total(gained, "enforcer_rate_gate_closures_total") <= STORM

    assert total(enforced, "enforcer_batches_ended_total", batch_kind="enforce") == 1
    assert total(restored, "enforcer_batches_ended_total", batch_kind="rollback") == 1
    ended = by_label(everything, "enforcer_batches_ended_total", "status")
    assert ended == {"completed": 2.0}
    # The SDK's own series are on the same endpoint.
    assert total(everything, "temporal_activity_execution_latency_count") > 0
    assert total(everything, "temporal_workflow_completed_total") >= 3  # plan, enforce, undo
    # Endpoints are templates (the sandbox's keys, compared above), and no label names
    # the account.
    assert USER not in {value for _, labels in everything for _, value in labels}
    assert "Traceback" not in log.read_text()


async def test_without_the_setting_the_worker_listens_on_no_port(
    temporal_client: Client, task_queue: str, tmp_path: Path
) -> None:
    settings = settings_for(tmp_path)
    env = worker_environment(temporal_client, settings)
    log = tmp_path / "worker.log"
    with ExitStack() as stack:
        worker = stack.enter_context(process(["worker.py", "--task-queue", task_queue], env, log))

        async def polling() -> bool:
            return "worker polling" in log.read_text()

        await eventually(polling, within=WITHIN, what="the worker to poll")
        assert worker.poll() is None, log.read_text()
        assert listening_ports(worker.pid) == set()


def test_a_metrics_port_in_use_stops_the_worker_naming_the_variable(
    temporal_client: Client, tmp_path: Path
) -> None:
    settings = settings_for(tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        env = {**worker_environment(temporal_client, settings), METRICS: address}
        run = subprocess.run(
            [sys.executable, "worker.py"], cwd=ROOT, env=env, capture_output=True, timeout=60
        )
    assert run.returncode == 1
    stderr = run.stderr.decode()
    assert f"{METRICS}={address!r}: cannot serve metrics there: " in stderr
    assert "in use" in stderr
    assert "Traceback" not in stderr


def test_a_bad_metrics_address_is_refused_by_name(temporal_client: Client, tmp_path: Path) -> None:
    env = {**worker_environment(temporal_client, settings_for(tmp_path)), METRICS: "metrics:80"}
    run = subprocess.run(
        [sys.executable, "worker.py"], cwd=ROOT, env=env, capture_output=True, timeout=60
    )
    assert run.returncode == 1
    stderr = run.stderr.decode()
    assert f"{METRICS}='metrics:80': must be HOST:PORT" in stderr
    assert "Traceback" not in stderr
