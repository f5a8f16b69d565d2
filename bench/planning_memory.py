"""What planning costs the worker in memory, and whether it grows with the library.

    .venv/bin/python bench/planning_memory.py [--sizes 10000,100000] [--json]

For each size a seeded library is generated in a sandbox served in its own process
(``starter.py sandbox``, then ``POST /__sandbox/users/{id}/generate``): half of the
items liked songs, half playlist entries (playlists of 100), with saved albums and
followed artists beside them. A fresh ``worker.py`` process, against a Temporal dev
server (the ``temporal`` binary of the test extras) and an SQLite ledger, plans it
through ``PlanningWorkflow``. The figure is the worker's ``VmHWM`` (its peak resident
memory, from ``/proc/PID/status``) once the plan is stored, beside the same figure for
an idle worker, and the planning's wall time per scanned item.

``measure(sizes)`` is the core, returning the figures as a dict (``make bench`` calls it);
the command line prints them. Linux only (``/proc``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

ROOT: Final = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from pydantic import SecretStr  # noqa: E402
from temporalio.client import Client  # noqa: E402

from bench.world import Children, DevServer, served_sandbox  # noqa: E402
from enforcer.config import Settings  # noqa: E402
from enforcer.ledger import Ledger, ledger_url  # noqa: E402
from enforcer.models import BlockedArtist, EntityType, PlanOptions, PlanRequest  # noqa: E402
from enforcer.sandbox import DEFAULT_CLIENT_ID, generate_library  # noqa: E402
from enforcer.session import token_store  # noqa: E402
from enforcer.spotify.tokens import TokenSet  # noqa: E402
from workflows.connection import configured_data_converter  # noqa: E402
from workflows.planning import PlanningWorkflow, planning_workflow_id  # noqa: E402

USER: Final = "bench"
TASK_QUEUE: Final = "bench-planning-memory"
PLAYLIST_SIZE: Final = 100
BLOCKED: Final = 40
SEED: Final = 2026
PLANNING_WITHIN: Final = 1_800.0
DEFAULT_SIZES: Final = (10_000, 100_000)


def library_arguments(size: int) -> dict[str, int]:
    """The generator's arguments for a library of about ``size`` scanned items."""
    playlists = max(1, size // 2 // PLAYLIST_SIZE)
    return {
        "seed": SEED,
        "liked_songs": size - playlists * PLAYLIST_SIZE,
        "playlists": playlists,
        "playlist_size": PLAYLIST_SIZE,
        "artists": 2_000,
        "albums": 1_000,
        "saved_albums": 500,
        "followed_artists": 500,
        "followed_playlists": 0,
    }


def vm_hwm_mb(pid: int) -> float:
    """The process's peak resident memory, in MB (``VmHWM``, reported in kB)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"/proc/{pid}/status has no VmHWM")


@dataclass
class _World:
    children: Children
    client: Client
    http: httpx.AsyncClient
    ledger: Ledger
    settings: Settings
    worker_env: dict[str, str]


@contextlib.asynccontextmanager
async def _world(directory: Path) -> AsyncIterator[_World]:
    children = Children(directory)
    try:
        temporal = DevServer(children, directory)
        await temporal.start()
        async with served_sandbox(
            children, directory, temporal.address, generate="liked_songs=1,playlists=1",
            http_timeout=300,
        ) as sandbox:  # fmt: skip
            client = await Client.connect(
                temporal.address, data_converter=configured_data_converter()
            )
            async with await Ledger.open(ledger_url(sandbox.settings)) as ledger:
                yield _World(children, client, sandbox.http, ledger, sandbox.settings, sandbox.env)
    finally:
        children.stop_all()


async def _prepare_library(world: _World, size: int) -> list[BlockedArtist]:
    """Generates the library in the sandbox, logs the account in, blocks some artists."""
    arguments = library_arguments(size)
    answer = await world.http.post(f"/__sandbox/users/{USER}/generate", json=arguments)
    answer.raise_for_status()
    tokens = await world.http.post(
        f"/__sandbox/users/{USER}/tokens", json={"client_id": DEFAULT_CLIENT_ID}
    )
    tokens.raise_for_status()
    body = tokens.json()
    await world.ledger.upsert_account(USER, "Bench")
    await token_store(world.ledger, world.settings).save(
        USER,
        TokenSet(
            access_token=SecretStr(body["access_token"]),
            refresh_token=SecretStr(body["refresh_token"]),
            expires_at=datetime.now(UTC) + timedelta(seconds=int(body["expires_in"])),
            scope=body["scope"],
        ),
    )
    # The same arguments generate the same catalog here: its first artists are blocked.
    catalog = generate_library(**arguments, user_id=USER)["catalog"]["artists"][:BLOCKED]
    blocked = [BlockedArtist(artist_id=artist["id"], name=artist["name"]) for artist in catalog]
    listed = [entry.artist_id for entry in await world.ledger.blocklist(USER)]
    if listed:
        await world.ledger.remove_from_blocklist(USER, listed)
    await world.ledger.add_to_blocklist(USER, blocked, source="id")
    return blocked


async def _plan_once(world: _World, size: int) -> dict[str, Any]:
    await _prepare_library(world, size)
    worker = world.children.start(
        f"worker-{size}",
        [sys.executable, "worker.py", "--task-queue", TASK_QUEUE],
        world.worker_env,
    )
    try:
        # The worker polls once it is up: give it a moment, then measure it idle.
        await asyncio.sleep(5)
        if worker.poll() is not None:
            raise RuntimeError(f"the worker exited:\n{world.children.log_tail(f'worker-{size}')}")
        idle = vm_hwm_mb(worker.pid)
        request = PlanRequest(account_id=USER, options=PlanOptions())
        started = time.perf_counter()
        async with asyncio.timeout(PLANNING_WITHIN):
            result = await world.client.execute_workflow(
                PlanningWorkflow.run,
                request,
                id=f"{planning_workflow_id(USER, request.options)}/{uuid.uuid4().hex}",
                task_queue=TASK_QUEUE,
            )
        seconds = time.perf_counter() - started
        peak = vm_hwm_mb(worker.pid)
    finally:
        world.children.stop(worker)
    counts = result.counts
    scanned = sum(counts.scanned.values())
    return {
        "size": size,
        "scanned_items": scanned,
        "liked_songs": counts.scanned[EntityType.LIKED_SONG],
        "playlist_items": counts.scanned[EntityType.PLAYLIST_ITEM],
        "actions": sum(counts.actions.values()),
        "not_enforced": sum(counts.not_enforced.values()),
        "plan_id": result.plan_id,
        "idle_vm_hwm_mb": round(idle, 1),
        "vm_hwm_mb": round(peak, 1),
        "seconds": round(seconds, 1),
        "ms_per_item": round(seconds * 1000 / max(scanned, 1), 3),
    }


async def measure_async(sizes: Sequence[int] = DEFAULT_SIZES) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="planning-memory-") as directory:
        async with _world(Path(directory)) as world:
            runs = [await _plan_once(world, size) for size in sizes]
    smallest = runs[0]["vm_hwm_mb"]
    return {
        "runs": runs,
        "largest_over_smallest": round(runs[-1]["vm_hwm_mb"] / smallest, 3),
    }


def measure(sizes: Sequence[int] = DEFAULT_SIZES) -> dict[str, Any]:
    """Plans a generated library of each size through a fresh worker process; the
    worker's peak memory and time per item for each, and the largest's peak over the
    smallest's."""
    return asyncio.run(measure_async(sizes))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--sizes",
        default=",".join(str(size) for size in DEFAULT_SIZES),
        help="comma-separated library sizes, in scanned items",
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    arguments = parser.parse_args(argv)
    sizes = [int(size) for size in arguments.sizes.split(",") if size.strip()]
    figures = measure(sizes)
    if arguments.json:
        print(json.dumps(figures, indent=2))
        return 0
    print(f"{'items':>8} {'actions':>8} {'idle MB':>8} {'peak MB':>8} {'s':>7} {'ms/item':>8}")
    for run in figures["runs"]:
        print(
            f"{run['scanned_items']:>8} {run['actions']:>8} {run['idle_vm_hwm_mb']:>8} "
            f"{run['vm_hwm_mb']:>8} {run['seconds']:>7} {run['ms_per_item']:>8}"
        )
    print(f"largest peak / smallest peak: {figures['largest_over_smallest']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
