"""What a rollback costs in Spotify calls, against the least any rollback could cost.

    .venv/bin/python bench/rollback_calls.py [--liked 20000] [--playlists 300] [--size 150]
        [--followed 2000] [--albums 1000] [--blocked 200]
        [--budget CALLS --window SECONDS] [--latency-ms MS]

Generates a seeded library in the in-process sandbox (``enforcer.sandbox``), logs an
account in, blocks ``--blocked`` artists (about 15% of the songs), then plans, enforces
and rolls the batch back through the real workflows and activities on a Temporal dev
server (the ``temporal`` binary of the test extras), the worker reaching the sandbox in
process. Prints the rollback's calls as the sandbox counted them (reads included), the
lower bound (``enforcer.restore.rollback_lower_bound``: dated liked songs / 50 and the
rest of the library / 40, rounded up, plus a call per maximal run of removed positions
in each playlist, split at 100), their ratio, and whether the library is back exactly:
liked songs in order with their dates, every playlist's entries in order with their
duplicates, the saved albums and followed artists (as sets: ``/me/library`` keeps no
album date). Exits 1 when it is not.

With ``--budget`` (calls per ``--window`` seconds, Spotify's rolling window) and
``--latency-ms`` the sandbox answers as a rate-limited, slow Spotify while the batch is
enforced and rolled back; the script then also prints the requests Spotify would have
counted as sent during a penalty (violations) and the rollback's time against the least
time its calls need under the budget (calls / budget x window).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import sysconfig
import tempfile
import time
import uuid
from collections import Counter
from datetime import timedelta
from pathlib import Path

import httpx
from cryptography.fernet import Fernet
from pydantic import SecretStr
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

from bench.reference import (  # noqa: E402
    Library,
    blocked_artists,
    library_of,
    rollback_bound,
)
from enforcer.config import Settings  # noqa: E402
from enforcer.ledger import Ledger, ledger_url  # noqa: E402
from enforcer.models import (  # noqa: E402
    EnforcementRequest,
    PlanOptions,
    PlanRequest,
    RollbackRequest,
)
from enforcer.sandbox import Faults, Sandbox  # noqa: E402
from enforcer.session import token_store  # noqa: E402
from enforcer.spotify.auth import utc_now  # noqa: E402
from enforcer.spotify.tokens import TokenSet  # noqa: E402
from worker import build_worker  # noqa: E402
from workflows import search_attributes  # noqa: E402
from workflows.enforcement import EnforcementWorkflow, enforcement_workflow_id  # noqa: E402
from workflows.planning import PlanningWorkflow, planning_workflow_id  # noqa: E402
from workflows.rollback import RollbackWorkflow, rollback_workflow_id  # noqa: E402

USER = "bench"
TASK_QUEUE = "bench-rollback-calls"
UNCAPPED = 1_000.0
"""Spotify activities per second: the calls are what is measured, not the queue's cap."""


async def _log_in(ledger: Ledger, settings: Settings, sandbox: Sandbox) -> None:
    tokens = sandbox.issue_tokens(USER, client_id=settings.spotify_client_id)
    await ledger.upsert_account(USER, "Bench")
    await token_store(ledger, settings).save(
        USER,
        TokenSet(
            access_token=SecretStr(tokens["access_token"]),
            refresh_token=SecretStr(tokens["refresh_token"]),
            expires_at=utc_now() + timedelta(seconds=int(tokens["expires_in"])),
            scope=tokens["scope"],
        ),
    )


async def _run(arguments: argparse.Namespace) -> bool:
    started = time.perf_counter()
    library = Library(
        liked=arguments.liked,
        playlists=arguments.playlists,
        size=arguments.size,
        followed=arguments.followed,
        albums=arguments.albums,
        blocked=arguments.blocked,
    )
    fixture = library.fixture(USER)
    sandbox = Sandbox()
    sandbox.load_fixture(fixture)
    if arguments.budget is not None:
        sandbox.settings.rate_limit_budget = arguments.budget
        sandbox.settings.rate_limit_window = arguments.window
    if arguments.latency_ms:
        sandbox.set_faults(Faults(latency_ms=arguments.latency_ms))
    before = library_of(sandbox.dump_user(USER))
    blocked = blocked_artists(fixture, arguments.blocked)

    with tempfile.TemporaryDirectory() as data_dir:
        settings = Settings(
            spotify_client_id="blocklist-enforcer-bench",
            api_base_url="http://127.0.0.1:8787/v1",
            accounts_base_url="http://127.0.0.1:8787",
            data_dir=Path(data_dir),
            token_key=Fernet.generate_key().decode(),
        )
        ledger = await Ledger.open(ledger_url(settings))
        env = await WorkflowEnvironment.start_local(
            dev_server_existing_path=os.path.join(sysconfig.get_path("scripts"), "temporal"),
            search_attributes=search_attributes.ALL,
            data_converter=pydantic_data_converter,
            dev_server_log_level="error",
        )
        try:
            await _log_in(ledger, settings, sandbox)
            await ledger.add_to_blocklist(USER, blocked, source="id")
            client: Client = env.client
            async with build_worker(
                client,
                settings,
                ledger,
                task_queue=TASK_QUEUE,
                transport=httpx.ASGITransport(app=sandbox.app),
                spotify_activities_per_second=UNCAPPED,
            ):
                plan_request = PlanRequest(account_id=USER, options=PlanOptions())
                planned = await client.execute_workflow(
                    PlanningWorkflow.run,
                    plan_request,
                    id=f"{planning_workflow_id(USER, plan_request.options)}/{uuid.uuid4().hex}",
                    task_queue=TASK_QUEUE,
                )
                enforcing_violations = sandbox.counters.violations
                enforced = await client.execute_workflow(
                    EnforcementWorkflow.run,
                    EnforcementRequest(account_id=USER, plan_id=planned.plan_id),
                    id=enforcement_workflow_id(USER, planned.plan_id),
                    task_queue=TASK_QUEUE,
                )
                prepared = time.perf_counter() - started
                enforcing_violations = sandbox.counters.violations - enforcing_violations
                bound, playlists = await rollback_bound(ledger, enforced.batch_id)
                sandbox.reset_counters()
                rolling = time.perf_counter()
                summary = await client.execute_workflow(
                    RollbackWorkflow.run,
                    RollbackRequest(account_id=USER, batch_id=enforced.batch_id),
                    id=rollback_workflow_id(enforced.batch_id),
                    task_queue=TASK_QUEUE,
                )
                rolled = time.perf_counter() - rolling
        finally:
            await env.shutdown()
            await ledger.close()

    calls = sandbox.counters.calls
    total = sum(calls.values())
    exact = library_of(sandbox.dump_user(USER)) == before
    removed = Counter({kind.value: tally.completed for kind, tally in enforced.tallies.items()})
    print(
        f"library: {arguments.liked} liked songs, {arguments.playlists} playlists of "
        f"{arguments.size}, {arguments.followed} followed artists, {arguments.albums} saved "
        f"albums; {arguments.blocked} artists blocked"
    )
    print(f"enforced: {dict(removed)} in {prepared:.0f} s (planning included)")
    print(f"rollback: {summary.status.value} in {rolled:.0f} s; calls by endpoint:")
    for endpoint, count in sorted(calls.items()):
        print(f"  {endpoint}: {count}")
    print(
        f"rollback calls (reads included): {total}; the rollback counted {summary.api_calls}; "
        f"calls found applied {summary.calls_found_applied}, replans {summary.replans}"
    )
    print(f"lower bound: {bound} (+ {playlists} playlists restored)")
    print(f"calls / lower bound: {total / bound:.3f}")
    print(f"library identical to the original: {exact}")
    counted = summary.api_calls == total
    print(f"the summary's calls equal the sandbox's count: {counted}")
    violations = sandbox.counters.violations
    if arguments.budget is not None:
        least = total / arguments.budget * arguments.window
        print(
            f"under {arguments.budget} calls / {arguments.window:g} s and "
            f"{arguments.latency_ms:g} ms latency: violations enforcing "
            f"{enforcing_violations}, rolling back {violations} (in flight: "
            f"{sandbox.counters.in_flight_violations}); 429s {sandbox.counters.rate_limited}"
        )
        print(
            f"rollback time / (calls / budget x window): {rolled:.0f} s / {least:.0f} s = "
            f"{rolled / least:.2f}"
        )
    return exact and counted and not summary.failed and violations == 0


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--liked", type=int, default=20_000)
    parser.add_argument("--playlists", type=int, default=300)
    parser.add_argument("--size", type=int, default=150)
    parser.add_argument("--followed", type=int, default=2_000)
    parser.add_argument("--albums", type=int, default=1_000)
    parser.add_argument("--blocked", type=int, default=200)
    parser.add_argument("--budget", type=int, default=None, help="calls per window")
    parser.add_argument("--window", type=float, default=30.0, help="seconds")
    parser.add_argument("--latency-ms", type=float, default=0.0)
    sys.exit(0 if asyncio.run(_run(parser.parse_args())) else 1)


if __name__ == "__main__":
    main()
