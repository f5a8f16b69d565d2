"""Runs every workflow and activity of the project against a Temporal server.

    python worker.py [--task-queue Q] [--spotify-activities-per-second N]

Two task queues: the main one (workflows, and the activities that read and plan or only
touch the ledger) and the Spotify one (every write to Spotify), whose server-side rate
cap holds for every worker of the app. Temporal is found through its standard
environment (``TEMPORAL_ADDRESS``, profiles); Spotify (or the sandbox) and the ledger
through ``ENFORCER_*`` settings. SIGTERM and SIGINT drain the worker: no new tasks are
taken, running activities get time to end.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Callable
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Self

import httpx
from temporalio.client import Client
from temporalio.worker import Worker

from activities import CompactFailures, RateGate
from activities.enforcement import EnforcementActivities
from activities.library import LibraryActivities
from activities.rollback import RollbackActivities
from enforcer.config import Settings
from enforcer.ledger import Ledger
from enforcer.session import open_ledger
from workflows.connection import (
    TemporalUnreachable,
    configured_task_queue,
    connect_temporal,
    spotify_task_queue,
)
from workflows.enforcement import EnforcementWorkflow
from workflows.inputs import INPUT_FAILURE_EXCEPTION_TYPES, WorkflowInputCheck
from workflows.planning import PlanningWorkflow
from workflows.rollback import RollbackWorkflow

# Scans heartbeat their cursor after every page; sending it at least every second
# keeps what a crashed attempt must read again to about a second's worth of pages.
HEARTBEAT_THROTTLE = timedelta(seconds=1)
GRACEFUL_SHUTDOWN = timedelta(seconds=30)
DEFAULT_SPOTIFY_ACTIVITIES_PER_SECOND = 10.0


class Workers:
    """The main queue's worker and the Spotify queue's, run and drained together."""

    def __init__(self, main: Worker, spotify: Worker) -> None:
        self.main = main
        self.spotify = spotify

    async def run(self) -> None:
        await asyncio.gather(self.main.run(), self.spotify.run())

    async def shutdown(self) -> None:
        await asyncio.gather(self.main.shutdown(), self.spotify.shutdown())

    async def __aenter__(self) -> Self:
        await self.spotify.__aenter__()
        await self.main.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.main.__aexit__(exc_type, exc, traceback)
        await self.spotify.__aexit__(exc_type, exc, traceback)


def build_worker(
    client: Client,
    settings: Settings,
    ledger: Ledger,
    *,
    task_queue: str,
    transport: httpx.AsyncBaseTransport | None = None,
    spotify_activities_per_second: float = DEFAULT_SPOTIFY_ACTIVITIES_PER_SECOND,
    clock: Callable[[], datetime] | None = None,
) -> Workers:
    """Workers for every workflow and activity (``transport`` is for tests; ``clock``,
    the gate's UTC time, too: a time-skipping test server's time is not the wall's)."""
    # One gate per worker process: a 429 stops this worker's requests at once, and
    # every other worker's through the ledger.
    app_id = settings.spotify_client_id
    gate = RateGate(ledger, app_id) if clock is None else RateGate(ledger, app_id, clock=clock)
    library = LibraryActivities(settings, ledger, gate, transport=transport)
    enforcement = EnforcementActivities(settings, ledger, gate, transport=transport)
    rollback = RollbackActivities(settings, ledger, gate, transport=transport)
    main = _worker(
        client,
        task_queue,
        workflows=[PlanningWorkflow, EnforcementWorkflow, RollbackWorkflow],
        # An input that cannot be used fails its workflow at once, not its task for ever.
        workflow_failure_exception_types=list(INPUT_FAILURE_EXCEPTION_TYPES),
        interceptors=[WorkflowInputCheck(), CompactFailures()],
        activities=[
            *library.activities(),
            *enforcement.ledger_activities(),
            *rollback.ledger_activities(),
        ],
    )
    spotify = _worker(
        client,
        spotify_task_queue(task_queue),
        activities=[*enforcement.spotify_activities(), *rollback.spotify_activities()],
        max_task_queue_activities_per_second=spotify_activities_per_second,
        interceptors=[CompactFailures()],
    )
    return Workers(main, spotify)


def _worker(client: Client, task_queue: str, **options: Any) -> Worker:
    return Worker(
        client,
        task_queue=task_queue,
        default_heartbeat_throttle_interval=HEARTBEAT_THROTTLE,
        max_heartbeat_throttle_interval=HEARTBEAT_THROTTLE,
        graceful_shutdown_timeout=GRACEFUL_SHUTDOWN,
        **options,
    )


async def run_worker(settings: Settings, task_queue: str, activities_per_second: float) -> None:
    client = await connect_temporal()
    async with open_ledger(settings) as ledger:
        workers = build_worker(
            client,
            settings,
            ledger,
            task_queue=task_queue,
            spotify_activities_per_second=activities_per_second,
        )
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, lambda: asyncio.ensure_future(workers.shutdown()))
        logging.getLogger(__name__).info(
            "worker polling %s and %s", task_queue, spotify_task_queue(task_queue)
        )
        await workers.run()


def main() -> int:
    parser = argparse.ArgumentParser(description="Run blocklist-enforcer's Temporal worker.")
    parser.add_argument(
        "--task-queue",
        default=configured_task_queue(),
        help="default: $ENFORCER_TASK_QUEUE or %(default)s",
    )
    parser.add_argument(
        "--spotify-activities-per-second",
        type=float,
        default=float(
            os.environ.get(
                "ENFORCER_SPOTIFY_ACTIVITIES_PER_SECOND", DEFAULT_SPOTIFY_ACTIVITIES_PER_SECOND
            )
        ),
        help="the Spotify queue's cap across every worker "
        "(default: $ENFORCER_SPOTIFY_ACTIVITIES_PER_SECOND or %(default)s)",
    )
    arguments = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        asyncio.run(
            run_worker(Settings(), arguments.task_queue, arguments.spotify_activities_per_second)
        )
    except (TemporalUnreachable, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    # Temporal's core can abort while the interpreter finalises (sdk-python #300).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(main())
