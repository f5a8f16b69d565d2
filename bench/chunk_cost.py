"""What one Spotify write costs inside a real worker, against a bare asyncio loop.

    .venv/bin/python bench/chunk_cost.py [--liked 3000] [--blocked 30] [--in-flight 4]

Generates a seeded library (liked songs only) in the in-process sandbox, served over HTTP
on 127.0.0.1 by uvicorn in a thread (so the worker takes the production path: no test
transport, its own HTTP stack), with zero latency and no rate limit; logs an account in,
blocks ``--blocked`` of its ``2 x --blocked`` artists (about half the songs), plans, and
enforces through the real workflows and activities on a Temporal dev server (the
``temporal`` binary of the test extras).

Per write call inside the worker: the ``apply_enforcement_chunk`` activities' time, from
their ActivityTaskStarted to their ActivityTaskCompleted events in the batch's history
(each chunk makes exactly one call), averaged. The bare loop then puts the library back
and makes the very same calls (the batch's chunks, the same URIs) through one
``SpotifyClient`` against the same served sandbox, ``--in-flight`` at once (the
batch's ``max_in_flight``): per call, the time from the call's start to its answer,
averaged. Prints both and their ratio.

``measure(...) -> dict`` is the core, for ``make bench``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import sysconfig
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import uvicorn
from cryptography.fernet import Fernet
from pydantic import SecretStr
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from enforcer.config import Settings
from enforcer.ledger import Ledger, ledger_url
from enforcer.models import BlockedArtist, EnforcementRequest, PlanOptions, PlanRequest
from enforcer.sandbox import Sandbox, generate_library
from enforcer.session import spotify_client, token_store
from enforcer.spotify.auth import utc_now
from enforcer.spotify.tokens import TokenSet
from worker import build_worker
from workflows import search_attributes
from workflows.enforcement import EnforcementWorkflow, enforcement_workflow_id
from workflows.planning import PlanningWorkflow, planning_workflow_id

USER = "bench"
TASK_QUEUE = "bench-chunk-cost"
UNCAPPED = 1_000.0
"""Spotify activities per second: the cost of a call is measured, not the queue's cap."""
CHUNK_ACTIVITY = "apply_enforcement_chunk"


@contextmanager
def _served(sandbox: Sandbox) -> Iterator[str]:
    """The sandbox served by uvicorn in a thread on 127.0.0.1; yields its base URL."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(sandbox.app, log_level="warning", access_log=False, lifespan="off")
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the sandbox server did not start")
        time.sleep(0.005)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        listener.close()


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


async def _chunk_seconds(client: Client, workflow_id: str) -> list[float]:
    """Each chunk activity's time in the worker (started to completed), from history."""
    started: dict[int, float] = {}
    chunks: set[int] = set()
    seconds: list[float] = []
    async for event in client.get_workflow_handle(workflow_id).fetch_history_events():
        kind = event.event_type
        if kind == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            if event.activity_task_scheduled_event_attributes.activity_type.name == CHUNK_ACTIVITY:
                chunks.add(event.event_id)
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            attributes = event.activity_task_started_event_attributes
            if attributes.scheduled_event_id in chunks:
                started[event.event_id] = event.event_time.ToDatetime().timestamp()
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            done = event.activity_task_completed_event_attributes
            if done.started_event_id in started:
                end = event.event_time.ToDatetime().timestamp()
                seconds.append(end - started[done.started_event_id])
    return seconds


async def _bare_loop(
    settings: Settings, ledger: Ledger, calls: list[list[str]], in_flight: int
) -> list[float]:
    """The same calls through one ``SpotifyClient``, ``in_flight`` at once: each one's time."""
    limit = asyncio.Semaphore(in_flight)
    seconds: list[float] = []
    async with spotify_client(settings, ledger, USER) as spotify:

        async def one(uris: list[str]) -> None:
            async with limit:
                start = time.perf_counter()
                await spotify.remove_from_library(uris)
                seconds.append(time.perf_counter() - start)

        await asyncio.gather(*(one(uris) for uris in calls))
    return seconds


async def measure(liked: int = 3_000, blocked: int = 30, in_flight: int = 4) -> dict[str, Any]:
    """Per-write-call time in a real worker and in a bare loop, in milliseconds.

    Returns ``{"calls", "in_flight", "worker_ms", "bare_ms", "ratio", "worker_wall_s",
    "bare_wall_s"}``: the means per call, their ratio (worker / bare) and each side's
    wall time for the whole set of calls."""
    fixture = generate_library(
        seed=2026,
        user_id=USER,
        liked_songs=liked,
        playlists=0,
        artists=2 * blocked,
        albums=2 * blocked,
        saved_albums=0,
        followed_artists=0,
        followed_playlists=0,
    )
    sandbox = Sandbox()
    sandbox.load_fixture(fixture)
    library = sandbox.dump_user(USER)
    artists = [
        BlockedArtist(artist_id=artist["id"], name=artist["name"])
        for artist in fixture["catalog"]["artists"][:blocked]
    ]
    with _served(sandbox) as base_url, tempfile.TemporaryDirectory() as data_dir:
        settings = Settings(
            spotify_client_id="blocklist-enforcer-bench",
            api_base_url=f"{base_url}/v1",
            accounts_base_url=base_url,
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
            await ledger.add_to_blocklist(USER, artists, source="id")
            client: Client = env.client
            async with build_worker(
                client,
                settings,
                ledger,
                task_queue=TASK_QUEUE,
                spotify_activities_per_second=UNCAPPED,
            ):
                plan_request = PlanRequest(account_id=USER, options=PlanOptions())
                planned = await client.execute_workflow(
                    PlanningWorkflow.run,
                    plan_request,
                    id=f"{planning_workflow_id(USER, plan_request.options)}/{uuid.uuid4().hex}",
                    task_queue=TASK_QUEUE,
                )
                workflow_id = enforcement_workflow_id(USER, planned.plan_id)
                wall = time.perf_counter()
                enforced = await client.execute_workflow(
                    EnforcementWorkflow.run,
                    EnforcementRequest(
                        account_id=USER, plan_id=planned.plan_id, max_in_flight=in_flight
                    ),
                    id=workflow_id,
                    task_queue=TASK_QUEUE,
                )
                worker_wall = time.perf_counter() - wall
                in_worker = await _chunk_seconds(client, workflow_id)
            by_chunk: dict[int, list[str]] = {}
            for item in await ledger.action_items(enforced.batch_id):
                if item.chunk is not None:
                    by_chunk.setdefault(item.chunk, []).append(item.uri)
            calls = [by_chunk[chunk] for chunk in sorted(by_chunk)]
            sandbox.load_user(USER, library)
            wall = time.perf_counter()
            bare = await _bare_loop(settings, ledger, calls, in_flight)
            bare_wall = time.perf_counter() - wall
        finally:
            await env.shutdown()
            await ledger.close()
    if len(in_worker) != len(calls) or enforced.api_calls != len(calls):
        raise RuntimeError(
            f"{len(calls)} chunks, but {len(in_worker)} chunk activities and "
            f"{enforced.api_calls} calls: not one call per chunk"
        )
    worker_ms = statistics.fmean(in_worker) * 1000
    bare_ms = statistics.fmean(bare) * 1000
    return {
        "calls": len(calls),
        "in_flight": in_flight,
        "worker_ms": worker_ms,
        "bare_ms": bare_ms,
        "ratio": worker_ms / bare_ms,
        "worker_wall_s": worker_wall,
        "bare_wall_s": bare_wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--liked", type=int, default=3_000)
    parser.add_argument("--blocked", type=int, default=30)
    parser.add_argument("--in-flight", type=int, default=4)
    arguments = parser.parse_args()
    figures = asyncio.run(measure(arguments.liked, arguments.blocked, arguments.in_flight))
    print(
        f"{figures['calls']} write calls, {figures['in_flight']} at once, zero latency:\n"
        f"  in a worker: {figures['worker_ms']:.1f} ms per call "
        f"({figures['worker_wall_s']:.2f} s for the batch)\n"
        f"  bare loop:   {figures['bare_ms']:.1f} ms per call "
        f"({figures['bare_wall_s']:.2f} s for the calls)\n"
        f"  ratio:       {figures['ratio']:.1f}x"
    )


if __name__ == "__main__":
    main()
