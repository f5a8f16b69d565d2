"""Runs every workflow and activity of the project against a Temporal server.

    python worker.py

Temporal is found through its standard environment (``TEMPORAL_ADDRESS``, profiles);
Spotify (or the sandbox) and the ledger through ``ENFORCER_*`` settings. SIGTERM and
SIGINT drain the worker: no new tasks are taken, running activities get time to end.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from datetime import timedelta

import httpx
from temporalio.client import Client
from temporalio.worker import Worker

from activities.library import LibraryActivities
from enforcer.config import Settings
from enforcer.ledger import Ledger
from enforcer.session import open_ledger
from workflows.connection import TemporalUnreachable, configured_task_queue, connect_temporal
from workflows.planning import PlanningWorkflow

# Scans heartbeat their cursor after every page; sending it at least every second
# keeps what a crashed attempt must read again to about a second's worth of pages.
HEARTBEAT_THROTTLE = timedelta(seconds=1)
GRACEFUL_SHUTDOWN = timedelta(seconds=30)


def build_worker(
    client: Client,
    settings: Settings,
    ledger: Ledger,
    *,
    task_queue: str,
    transport: httpx.AsyncBaseTransport | None = None,
) -> Worker:
    """One worker for every workflow and activity (``transport`` is for tests)."""
    library = LibraryActivities(settings, ledger, transport=transport)
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[PlanningWorkflow],
        activities=library.activities(),
        default_heartbeat_throttle_interval=HEARTBEAT_THROTTLE,
        max_heartbeat_throttle_interval=HEARTBEAT_THROTTLE,
        graceful_shutdown_timeout=GRACEFUL_SHUTDOWN,
    )


async def run_worker(settings: Settings, task_queue: str) -> None:
    client = await connect_temporal()
    async with open_ledger(settings) as ledger:
        worker = build_worker(client, settings, ledger, task_queue=task_queue)
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, lambda: asyncio.ensure_future(worker.shutdown()))
        logging.getLogger(__name__).info("worker polling task queue %s", task_queue)
        await worker.run()


def main() -> int:
    parser = argparse.ArgumentParser(description="Run blocklist-enforcer's Temporal worker.")
    parser.add_argument(
        "--task-queue",
        default=configured_task_queue(),
        help="default: $ENFORCER_TASK_QUEUE or %(default)s",
    )
    arguments = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        asyncio.run(run_worker(Settings(), arguments.task_queue))
    except (TemporalUnreachable, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    # Temporal's core can abort while the interpreter finalises (sdk-python #300).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(main())
