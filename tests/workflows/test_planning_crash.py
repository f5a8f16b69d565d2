"""A worker killed in the middle of a scan: the next one resumes from the heartbeat cursor.

Everything here is a real process: the sandbox served by `starter.py sandbox`, two
`worker.py` processes (the first one SIGKILLed), the Temporal dev server. Requests
cross a real socket, so this test's exchanges are not contract-checked; the in-process
planning tests check the same requests.
"""

from __future__ import annotations

import asyncio
import signal
import uuid
from pathlib import Path

import httpx
from temporalio.client import Client

from enforcer.ledger import Ledger, ledger_url
from enforcer.models import BlockedArtist, EntityType, PlanOptions, PlanRequest
from enforcer.sandbox import generate_library
from tests.workflows._processes import (
    eventually,
    process,
    sandbox_server,
    sandbox_urls,
    worker_environment,
)
from tests.workflows._world import USER, log_in, settings_for
from workflows.planning import PlanningWorkflow, planning_workflow_id

LIKED_SONGS = 50_000
PAGES = LIKED_SONGS // 50
LIKED_SONGS_PAGE = "GET /v1/me/tracks"


async def liked_song_pages_read(admin: httpx.AsyncClient) -> int:
    calls: dict[str, int] = (await admin.get("/__sandbox/counters")).json()["calls"]
    return calls.get(LIKED_SONGS_PAGE, 0)


async def test_a_worker_killed_mid_scan_is_resumed_from_its_heartbeat_cursor(
    temporal_client: Client, task_queue: str, tmp_path: Path
) -> None:
    library = generate_library(seed=3, liked_songs=LIKED_SONGS, playlists=20, user_id=USER)
    async with sandbox_server(tmp_path, library) as admin:
        # A little latency, so the scan is still going when its worker dies.
        faults = await admin.put("/__sandbox/faults", json={"seed": 1, "latency_ms": 3})
        faults.raise_for_status()
        api, accounts = sandbox_urls(admin)
        settings = settings_for(tmp_path, api=api, accounts=accounts)
        async with await Ledger.open(ledger_url(settings)) as ledger:
            tokens = (await admin.post(f"/__sandbox/users/{USER}/tokens")).json()
            await log_in(ledger, settings, tokens)
            artist = library["catalog"]["artists"][0]
            await ledger.add_to_blocklist(
                USER, [BlockedArtist(artist_id=artist["id"], name=artist["name"])], source="id"
            )

        env = worker_environment(temporal_client, settings)
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
