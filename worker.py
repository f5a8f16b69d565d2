"""Runs every workflow and activity of the project against a Temporal server.

    python worker.py [--task-queue Q] [--spotify-activities-per-second N]

A fault of its environment (settings, ledger, Temporal) ends it with one line on stderr
naming what is wrong, and exit 1; a bad option, with exit 2; never with a traceback.

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
import gc
import logging
import math
import os
import signal
import sys
from collections.abc import Callable
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Self

import httpx
from temporalio.client import Client
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.worker import Worker

from activities import CompactFailures, RateGate, WarmSpotify, metrics
from activities.batch import BatchActivities
from activities.enforcement import EnforcementActivities
from activities.keep import KeepActivities
from activities.library import LibraryActivities
from activities.rollback import RollbackActivities
from enforcer.config import Settings, SettingsError, env_name, environment
from enforcer.ledger import Ledger, LedgerError
from enforcer.logs import configure_logging
from enforcer.session import open_ledger
from enforcer.spotify import SpotifyError
from workflows.connection import (
    TemporalUnreachable,
    configured_task_queue,
    connect_temporal,
    spotify_task_queue,
)
from workflows.enforcement import EnforcementWorkflow
from workflows.inputs import INPUT_FAILURE_EXCEPTION_TYPES, WorkflowInputCheck
from workflows.keep import KeepEnforcedWorkflow
from workflows.planning import PlanningWorkflow
from workflows.rollback import RollbackWorkflow

# Scans heartbeat their cursor after every page; sending it at least every second
# keeps what a crashed attempt must read again to about a second's worth of pages.
HEARTBEAT_THROTTLE = timedelta(seconds=1)
GRACEFUL_SHUTDOWN = timedelta(seconds=30)
STICKY_TASK_WAIT = timedelta(seconds=3)
"""How long a workflow task waits for the worker that ran the workflow last before any
worker may take it. A killed worker never takes it: the SDK's 10 s default added 10 s to
every stall after a kill, on top of the heartbeat timeout. A live worker that misses it
only replays the history on another (or the same) worker."""
DEFAULT_SPOTIFY_ACTIVITIES_PER_SECOND = 10.0


class Workers:
    """The main queue's worker and the Spotify queue's, run and drained together; the
    warm Spotify clients they share are closed once both have stopped. ``gate``: the
    process's rate gate."""

    def __init__(self, main: Worker, spotify: Worker, clients: WarmSpotify, gate: RateGate) -> None:
        self.main = main
        self.spotify = spotify
        self.clients = clients
        self.gate = gate

    async def run(self) -> None:
        try:
            await asyncio.gather(self.main.run(), self.spotify.run())
        finally:
            await self.clients.aclose()

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
        try:
            await self.main.__aexit__(exc_type, exc, traceback)
            await self.spotify.__aexit__(exc_type, exc, traceback)
        finally:
            await self.clients.aclose()


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
    _settle_the_heap()
    # One gate per worker process: a 429 stops this worker's requests at once, and
    # every other worker's through the ledger.
    app_id = settings.spotify_client_id
    gate = RateGate(ledger, app_id) if clock is None else RateGate(ledger, app_id, clock=clock)
    # One connection pool and one warm client per account for the whole process.
    clients = WarmSpotify(settings, ledger, gate, transport)
    batches = BatchActivities(settings, ledger, gate, spotify=clients)
    library = LibraryActivities(settings, ledger, gate, spotify=clients)
    enforcement = EnforcementActivities(settings, ledger, gate, spotify=clients)
    rollback = RollbackActivities(settings, ledger, gate, spotify=clients)
    keep = KeepActivities(settings, ledger, gate, spotify=clients)
    main = _worker(
        client,
        task_queue,
        workflows=[PlanningWorkflow, EnforcementWorkflow, RollbackWorkflow, KeepEnforcedWorkflow],
        # An input that cannot be used fails its workflow at once, not its task for ever.
        workflow_failure_exception_types=list(INPUT_FAILURE_EXCEPTION_TYPES),
        interceptors=[WorkflowInputCheck(), CompactFailures()],
        activities=[
            *batches.activities(),
            *library.activities(),
            *enforcement.ledger_activities(),
            *rollback.ledger_activities(),
            *keep.activities(),
        ],
    )
    spotify = _worker(
        client,
        spotify_task_queue(task_queue),
        activities=[*enforcement.spotify_activities(), *rollback.spotify_activities()],
        max_task_queue_activities_per_second=spotify_activities_per_second,
        interceptors=[CompactFailures()],
    )
    return Workers(main, spotify, clients, gate)


def _settle_the_heap() -> None:
    """Takes what is alive now out of every later garbage collection.

    A workflow activation runs on a worker thread and must yield within Temporal's
    deadlock timeout (2 s). Python's full collection can start inside any activation
    that allocates, and it scans every tracked object of the process: imports, the SDK,
    caches (and, in the tests, whole in-process Spotify libraries of 100,000 songs). On a
    busy machine that scan took over 2 s inside a rollback's activation, and Temporal
    failed the task as deadlocked. What exists when the worker starts lives as long as
    the process: frozen (``gc.freeze``), later collections leave it alone."""
    gc.collect()
    gc.freeze()


def _worker(client: Client, task_queue: str, **options: Any) -> Worker:
    return Worker(
        client,
        task_queue=task_queue,
        default_heartbeat_throttle_interval=HEARTBEAT_THROTTLE,
        max_heartbeat_throttle_interval=HEARTBEAT_THROTTLE,
        graceful_shutdown_timeout=GRACEFUL_SHUTDOWN,
        sticky_queue_schedule_to_start_timeout=STICKY_TASK_WAIT,
        **options,
    )


class WorkerCannotStart(RuntimeError):
    """The worker was refused by its Temporal server (an unknown namespace, say)."""


class MetricsCannotStart(RuntimeError):
    """The metrics endpoint could not listen where ``ENFORCER_METRICS_ADDRESS`` says."""


def metrics_runtime(settings: Settings) -> Runtime | None:
    """A Temporal runtime serving Prometheus metrics (the SDK's and ours,
    ``activities.metrics``) at ``settings.metrics_address``; None when none is set."""
    address = settings.metrics_address
    if address is None:
        return None
    prometheus = PrometheusConfig(
        bind_address=address,
        counters_total_suffix=True,
        durations_as_seconds=True,
        histogram_bucket_overrides=metrics.HISTOGRAM_BUCKETS,
    )
    try:
        return Runtime(telemetry=TelemetryConfig(metrics=prometheus))
    except ValueError as error:
        # "Failed starting Prometheus exporter: Address already in use (os error 98)"
        why = str(error).split(": ", 1)[-1]
        raise MetricsCannotStart(
            f"{env_name('metrics_address')}={address!r}: cannot serve metrics there: {why}"
        ) from None


async def run_worker(settings: Settings, task_queue: str, activities_per_second: float) -> None:
    # The ledger first: a fault of this machine's is told before one of the network's.
    async with open_ledger(settings) as ledger:
        client = await connect_temporal(metrics_runtime(settings))
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
        log = logging.getLogger(__name__)
        log.info("worker polling %s and %s", task_queue, spotify_task_queue(task_queue))
        if settings.metrics_address is not None:
            log.info("metrics at http://%s/metrics", settings.metrics_address)
        try:
            await workers.run()
        except RuntimeError as error:
            # The SDK checks the namespace before polling, and says so in a RuntimeError
            # that quotes a whole gRPC status: its first sentence is the news.
            raise WorkerCannotStart(
                f"the Temporal server refused the worker: {str(error).split(': Status {')[0]}"
            ) from None


MOST_SPOTIFY_ACTIVITIES_PER_SECOND = 1_000.0
"""Far above what Spotify lets one app do; a cap above it is a typo."""
SPOTIFY_RATE_VARIABLE = "ENFORCER_SPOTIFY_ACTIVITIES_PER_SECOND"


def activities_per_second(text: str) -> float:
    """An argparse type: a rate above 0 and at most ``MOST_SPOTIFY_ACTIVITIES_PER_SECOND``."""
    try:
        rate = float(text)
    except ValueError:
        rate = math.nan
    if not math.isfinite(rate) or not 0 < rate <= MOST_SPOTIFY_ACTIVITIES_PER_SECOND:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number of activities per second above 0 and at most "
            f"{MOST_SPOTIFY_ACTIVITIES_PER_SECOND:g}"
        )
    return rate


def task_queue_name(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("a task queue needs a name")
    return text


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line, with defaults from the environment; a bad value, given either
    way, ends the program (exit 2) with a line naming the option or variable and value."""
    parser = argparse.ArgumentParser(description="Run blocklist-enforcer's Temporal worker.")
    parser.add_argument(
        "--task-queue",
        type=task_queue_name,
        default=configured_task_queue(),
        help="default: $ENFORCER_TASK_QUEUE or %(default)s",
    )
    parser.add_argument(
        "--spotify-activities-per-second",
        type=activities_per_second,
        default=None,
        help="the Spotify queue's cap across every worker "
        f"(default: ${SPOTIFY_RATE_VARIABLE} or {DEFAULT_SPOTIFY_ACTIVITIES_PER_SECOND:g})",
    )
    arguments = parser.parse_args(argv)
    if arguments.spotify_activities_per_second is None:
        from_environment = environment().get(SPOTIFY_RATE_VARIABLE)
        if from_environment is None:
            arguments.spotify_activities_per_second = DEFAULT_SPOTIFY_ACTIVITIES_PER_SECOND
        else:
            try:
                arguments.spotify_activities_per_second = activities_per_second(from_environment)
            except argparse.ArgumentTypeError as error:
                parser.error(f"{SPOTIFY_RATE_VARIABLE}: {error}")
    return arguments


# What the environment can get wrong; each says what, in its message. Anything else is a
# bug, whose traceback is worth seeing.
_ENVIRONMENT_FAULTS = (
    SettingsError,
    TemporalUnreachable,
    WorkerCannotStart,
    MetricsCannotStart,
    LedgerError,
    SpotifyError,
    OSError,
)


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    configure_logging()
    try:
        settings = Settings()
        configure_logging(settings.log_format)
        rate = arguments.spotify_activities_per_second
        asyncio.run(run_worker(settings, arguments.task_queue, rate))
    except _ENVIRONMENT_FAULTS as error:
        print(f"error: {one_line(error)}", file=sys.stderr)
        return 1
    return 0


def one_line(error: BaseException) -> str:
    """The error's message on one line (settings name each bad variable on a line)."""
    if isinstance(error, SettingsError):
        return "invalid settings: " + "; ".join(error.problems)
    return " ".join(str(error).split())


if __name__ == "__main__":
    # Temporal's core can abort while the interpreter finalises (sdk-python #300).
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
