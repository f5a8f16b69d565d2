"""A worker killed in the middle of a scan: the next one resumes from the heartbeat cursor.

Everything here is a real process: the sandbox served by `starter.py sandbox`, two
`worker.py` processes (the first one SIGKILLed), the Temporal dev server. Requests
cross a real socket, so this test's exchanges are not contract-checked; the in-process
planning tests check the same requests.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from enforcer.ledger import Ledger, ledger_url
from enforcer.models import BlockedArtist, EntityType, PlanOptions, PlanRequest
from enforcer.sandbox import generate_library
from tests.workflows._world import USER, log_in, settings_for
from workflows.planning import PlanningWorkflow, planning_workflow_id

ROOT = Path(__file__).resolve().parents[2]
LIKED_SONGS = 50_000
PAGES = LIKED_SONGS // 50
LIKED_SONGS_PAGE = "GET /v1/me/tracks"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def process(args: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        child = subprocess.Popen(  # noqa: S603 - our own entry points
            [sys.executable, *args], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )
        try:
            yield child
        finally:
            if child.poll() is None:
                child.terminate()
                child.wait(timeout=30)


POLL = 0.05


async def eventually(check: Callable[[], Awaitable[bool]], *, within: float, what: str) -> None:
    for _ in range(int(within / POLL)):
        if await check():
            return
        await asyncio.sleep(POLL)
    raise AssertionError(f"waited {within} s for {what}")


@asynccontextmanager
async def sandbox_server(
    tmp_path: Path,
) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, Any]]]:
    """`starter.py sandbox` serving a generated library; yields an admin client on it."""
    library = generate_library(seed=3, liked_songs=LIKED_SONGS, playlists=20, user_id=USER)
    fixture = tmp_path / "library.json"
    fixture.write_text(json.dumps(library))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    args = ["starter.py", "sandbox", "--fixture", str(fixture), "--port", str(port)]
    with process(args, dict(os.environ), tmp_path / "sandbox.log"):
        async with httpx.AsyncClient(base_url=base) as admin:

            async def up() -> bool:
                try:
                    return (await admin.get("/__sandbox/counters")).status_code == 200
                except httpx.TransportError:
                    return False

            await eventually(up, within=60, what="the sandbox server to listen")
            yield admin, library


async def liked_song_pages_read(admin: httpx.AsyncClient) -> int:
    calls: dict[str, int] = (await admin.get("/__sandbox/counters")).json()["calls"]
    return calls.get(LIKED_SONGS_PAGE, 0)


async def test_a_worker_killed_mid_scan_is_resumed_from_its_heartbeat_cursor(
    temporal_env: WorkflowEnvironment, temporal_client: Client, task_queue: str, tmp_path: Path
) -> None:
    async with sandbox_server(tmp_path) as (admin, library):
        # A little latency, so the scan is still going when its worker dies.
        faults = await admin.put("/__sandbox/faults", json={"seed": 1, "latency_ms": 3})
        faults.raise_for_status()
        base = str(admin.base_url).rstrip("/")
        settings = settings_for(tmp_path, api=f"{base}/v1", accounts=base)
        async with await Ledger.open(ledger_url(settings)) as ledger:
            tokens = (await admin.post(f"/__sandbox/users/{USER}/tokens")).json()
            await log_in(ledger, settings, tokens)
            artist = library["catalog"]["artists"][0]
            await ledger.add_to_blocklist(
                USER, [BlockedArtist(artist_id=artist["id"], name=artist["name"])], source="id"
            )

        env = {
            **os.environ,
            "TEMPORAL_ADDRESS": temporal_env.client.service_client.config.target_host,
            "ENFORCER_SPOTIFY_CLIENT_ID": settings.spotify_client_id,
            "ENFORCER_API_BASE_URL": settings.api_base_url,
            "ENFORCER_ACCOUNTS_BASE_URL": settings.accounts_base_url,
            "ENFORCER_DATA_DIR": str(settings.data_dir),
            "ENFORCER_TOKEN_KEY": settings.token_key.get_secret_value(),  # type: ignore[union-attr]
        }
        worker_args = ["worker.py", "--task-queue", task_queue]
        handle = await temporal_client.start_workflow(
            PlanningWorkflow.run,
            PlanRequest(account_id=USER),
            id=f"{planning_workflow_id(USER, PlanOptions())}/{uuid.uuid4().hex}",
            task_queue=task_queue,
        )
        with process(worker_args, env, tmp_path / "worker-1.log") as first:

            async def a_third_read() -> bool:
                return await liked_song_pages_read(admin) >= PAGES // 3

            await eventually(a_third_read, within=120, what="a third of Liked Songs to be read")
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=10)
        read_before_the_kill = await liked_song_pages_read(admin)
        assert read_before_the_kill < PAGES, "the scan ended before the worker was killed"

        with process(worker_args, env, tmp_path / "worker-2.log"):
            async with asyncio.timeout(180):
                result = await handle.result()
        read_in_all = await liked_song_pages_read(admin)

    assert result.counts.scanned[EntityType.LIKED_SONG] == LIKED_SONGS
    # Resumed, not restarted: from page one, every page read before the kill would be
    # read again. Only the pages after the last heartbeat sent (about a second's worth)
    # are read twice.
    read_twice = read_in_all - PAGES
    assert 0 <= read_twice < read_before_the_kill // 2, (read_twice, read_before_the_kill)
