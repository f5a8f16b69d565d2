"""A scan that cannot reach Spotify says so in Temporal, in a failure Temporal keeps whole,
and counts no request as sent.

Before: the scan's last failure, as Temporal showed it, read "Failure exceeds size limit.":
httpx's, httpcore's and the socket's errors, each with its traceback, were chained into
a failure over the few KiB Temporal keeps for a pending activity.
"""

from __future__ import annotations

import asyncio
import socket
import uuid
from pathlib import Path
from typing import Final

from temporalio.api.workflow.v1 import PendingActivityInfo
from temporalio.client import Client

from activities import SPOTIFY_UNREACHABLE
from enforcer.ledger import Ledger, ledger_url
from enforcer.models import BlockedArtist, PlanRequest
from tests.workflows._world import USER, log_in, settings_for
from worker import build_worker
from workflows.planning import PlanningWorkflow

SMALL_FAILURE: Final = 2_048
"""Bytes: half of the 4 KiB the dev server keeps of a pending activity's last failure."""
TOLD_WITHIN_SECONDS: Final = 20.0


def closed_loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def retrying_scan(client: Client, workflow_id: str) -> PendingActivityInfo:
    """The first scan activity that has failed at least once."""
    handle = client.get_workflow_handle(workflow_id)
    async with asyncio.timeout(TOLD_WITHIN_SECONDS):
        while True:
            description = await handle.describe()
            for pending in description.raw_description.pending_activities:
                if pending.attempt > 1 and pending.HasField("last_failure"):
                    return pending
            await asyncio.sleep(0.2)


async def test_an_unreachable_spotify_is_a_small_failure_naming_the_address(
    temporal_client: Client, task_queue: str, tmp_path: Path
) -> None:
    address = f"http://127.0.0.1:{closed_loopback_port()}"
    settings = settings_for(tmp_path, api=f"{address}/v1", accounts=address)
    ledger = await Ledger.open(ledger_url(settings))
    fresh_tokens = {
        "access_token": "never-sent-anywhere-that-answers",
        "refresh_token": "never-used",
        "expires_in": "3600",
        "scope": "user-library-read",
    }
    try:
        await log_in(ledger, settings, fresh_tokens)
        await ledger.add_to_blocklist(
            USER, [BlockedArtist(artist_id="4Z8W4fKeB5YxbusRsdQVPb", name="Band")], source="id"
        )
        async with build_worker(temporal_client, settings, ledger, task_queue=task_queue):
            workflow_id = f"unreachable/{uuid.uuid4().hex}"
            handle = await temporal_client.start_workflow(
                PlanningWorkflow.run,
                PlanRequest(account_id=USER),
                id=workflow_id,
                task_queue=task_queue,
            )
            try:
                pending = await retrying_scan(temporal_client, workflow_id)
            finally:
                await handle.terminate("the test has seen what it came for")
        run_id = (await handle.describe()).run_id
        traffic = await ledger.traffic(f"{workflow_id}/{run_id}")
    finally:
        await ledger.close()

    # No connection was ever made, so no request left: none is counted as sent (each
    # attempt counted one before the count waited for the request's first byte).
    assert traffic.sent == 0, traffic

    failure = pending.last_failure
    assert failure.message != "Failure exceeds size limit."
    assert failure.ByteSize() < SMALL_FAILURE
    assert failure.application_failure_info.type == SPOTIFY_UNREACHABLE
    assert f"cannot reach {address}" in failure.message
    assert not failure.HasField("cause")
