"""`make bench`: the engine measured against a bare loop and spotipy, every figure in one run.

    python bench/run.py [--quick] [--results bench/results.json] [--docs docs/performance.md]

Everything is a real process on 127.0.0.1 (``bench.world``): a Temporal dev server (the
venv's ``temporal`` binary), ``starter.py sandbox`` (uvicorn) and ``worker.py``, with a
SQLite ledger in a temporary directory; this script is the Temporal client, the bare loop
and the spotipy script. Sections, in the order they run:

1. engine vs loop: the reference library (``bench.reference.REFERENCE``) planned, then
   enforced through the worker, on a fresh account each repetition; the same removals
   made by a bare asyncio loop through our own ``SpotifyClient`` (the same chunks, the
   same number in flight) on the same library loaded again. At zero latency and with
   60-100 ms answers. The worker's Spotify queue cap is raised to
   ``UNCAPPED`` activities per second: at its default (10) the comparison would measure
   the cap.
2. call bounds: write calls of each enforcement and of the first one's rollback, and the
   scan's reads, each against its lower bound (``bench.reference``).
3. history events per 1,000 removed items, every enforcement's runs together.
4. worker memory: ``VmHWM`` of a worker process started just before the enforcement
   (planning ran on the worker before it), and the time per item, at about 10,000 and
   100,000 planned items, the larger then rolled back whole (time, calls against the
   bound, exactness, the worker's peak during it); 1,000,000 when its projection fits
   in 30 minutes. Every enforcement also gives the worker's CPU time during it.
5. rate budget: a smaller library enforced and rolled back with the sandbox limiting
   the app to a budget of calls per rolling window, the worker at its default cap: the
   time against calls / budget x window, and the sandbox's violations.
6. spotipy: the same removals scripted with spotipy, one call after another; then again
   with one 429 carrying Retry-After injected (the sandbox's ``storm`` fault), timed.
7. a scheduled run after an edit (issue [G]): the reference library enforced, then 3
   blocked songs liked and 2 added to one playlist, then one ``KeepEnforcedWorkflow``
   run: removals, write calls, and which playlists it read.
8. plugged sections (``PLUGGED_SECTIONS``, full runs only): planning memory at 10,000
   and 100,000 items (bench/planning_memory.py), and 20 accounts under one budget
   (bench/fairness.py).

Invariants: every figure comes from this run (nothing is carried over from an earlier
one); calls are what the sandbox counted, its counters reset before each phase (they are
per app); phases run one at a time; every process started is ended when the run ends,
failure or not. ``--quick`` shrinks every size (a couple of minutes): its figures prove
the bench works, not the engine's performance.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

ROOT: Final = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import spotipy  # noqa: E402
from pydantic import SecretStr  # noqa: E402
from temporalio.api.enums.v1 import EventType  # noqa: E402
from temporalio.client import Client  # noqa: E402

from activities.keep import keep_schedule_id  # noqa: E402
from bench import planning_memory  # noqa: E402
from bench.reference import (  # noqa: E402
    REFERENCE,
    Library,
    blocked_artists,
    enforcement_lower_bound,
    library_of,
    rollback_bound,
    scan_lower_bound,
)
from bench.world import (  # noqa: E402
    Children,
    DevServer,
    SandboxAdmin,
    WorkerProcess,
    calls_received,
    eventually,
    machine,
    served_sandbox,
)
from enforcer.config import Settings  # noqa: E402
from enforcer.ledger import Ledger, ledger_url  # noqa: E402
from enforcer.models import (  # noqa: E402
    BatchStatus,
    EnforcementRequest,
    EnforcementSummary,
    EntityType,
    KeepRequest,
    KeepRunSummary,
    PlannedAction,
    PlanRequest,
    PlanResult,
    RollbackRequest,
)
from enforcer.session import token_store  # noqa: E402
from enforcer.spotify import SpotifyClient, TokenSet  # noqa: E402
from enforcer.spotify.limits import (  # noqa: E402
    LIBRARY_URIS_PER_CALL,
    PLAYLIST_ITEMS_PER_CALL,
    chunks,
)
from worker import DEFAULT_SPOTIFY_ACTIVITIES_PER_SECOND  # noqa: E402
from workflows.connection import configured_data_converter  # noqa: E402
from workflows.enforcement import EnforcementWorkflow, enforcement_workflow_id  # noqa: E402
from workflows.keep import KeepEnforcedWorkflow  # noqa: E402
from workflows.planning import PlanningWorkflow, planning_workflow_id  # noqa: E402
from workflows.rollback import RollbackWorkflow, rollback_workflow_id  # noqa: E402

TASK_QUEUE: Final = "bench"
UNCAPPED: Final = 1_000.0
"""The Spotify queue's cap for the comparisons (the most worker.py accepts)."""
MAX_IN_FLIGHT: Final = 4
"""Chunks in flight: the workflows' default, and the bare loop's semaphore."""
BATCH_WITHIN: Final = 1_800.0
REQUEST_TIMEOUT: Final = 10.0
THIRTY_MINUTES: Final = 1_800.0

# Targets (issue [E]).
ENGINE_OVER_LOOP_ZERO: Final = 3.0
ENGINE_OVER_LOOP_LATENCY: Final = 1.2
CALLS_OVER_BOUND: Final = 1.0
EVENTS_PER_1000: Final = 100.0
WORKER_PEAK_MIB: Final = 300.0
WORKER_GROWTH: Final = 0.20


@dataclass(frozen=True)
class Sizes:
    comparison: Library
    repetitions: int
    latency: dict[str, float]
    """The sandbox's faults for the latency comparison (``latency_ms`` + up to ``jitter_ms``)."""
    large: Library
    """The memory section's second size (about 100,000 planned items)."""
    million: Library
    budget_library: Library
    budget: int
    window: float
    retry_after: int
    """Seconds of the Retry-After injected into the spotipy run."""
    fresh_worker_for_memory: bool = True
    """A new worker process before each measured enforcement; False: the running one's
    peak reset instead (``/proc/<pid>/clear_refs``), what planning left in it included."""
    budget_at_default_cap: bool = True
    """Restart the worker at its default cap for the budget (--quick keeps the raised one:
    a worker's start costs seconds the test has not got)."""


FULL: Final = Sizes(
    comparison=REFERENCE,
    repetitions=2,
    latency={"latency_ms": 60.0, "jitter_ms": 40.0},
    # Over half the songs blocked (550 of the 1,000 album artists): 100,000 removals
    # from a library that scans in about 3,800 pages rather than 13,000.
    large=Library(
        liked=120_000,
        playlists=400,
        size=150,
        followed=2_000,
        albums=1_000,
        blocked=550,
        album_artists=1_000,
    ),
    million=Library(
        liked=1_200_000,
        playlists=4_000,
        size=150,
        followed=20_000,
        albums=10_000,
        blocked=5_500,
        album_artists=10_000,
    ),
    budget_library=Library(liked=2_000, playlists=8, size=40, followed=100, albums=100, blocked=20),
    budget=20,
    window=30.0,
    retry_after=30,
)
QUICK: Final = Sizes(
    comparison=Library(liked=600, playlists=6, size=40, followed=60, albums=40, blocked=8),
    repetitions=1,
    latency={"latency_ms": 15.0, "jitter_ms": 10.0},
    large=Library(liked=1_500, playlists=10, size=40, followed=60, albums=40, blocked=8),
    million=Library(liked=6_000, playlists=40, size=40, followed=60, albums=40, blocked=8),
    budget_library=Library(liked=300, playlists=3, size=30, followed=30, albums=20, blocked=5),
    budget=10,
    window=1.0,
    retry_after=2,
    fresh_worker_for_memory=False,
    budget_at_default_cap=False,
)


# Plugged sections ------------------------------------------------------------------------


@dataclass(frozen=True)
class PluggedSection:
    """A measurement another script makes, run after the world's processes are ended.

    ``measure(quick)`` returns its figures (a flat mapping of figure -> value, with a
    ``"settings"`` entry saying what it ran with); they land in results.json under
    ``name`` and in docs/performance.md under ``title``, with the run's command, machine
    and date. A section that raises is recorded as failed, not fatal."""

    name: str
    title: str
    command: str
    measure: Callable[[], Awaitable[dict[str, Any]]]


async def _planning_memory() -> dict[str, Any]:
    figures = await planning_memory.measure_async(planning_memory.DEFAULT_SIZES)
    sizes = ", ".join(f"{size:,}" for size in planning_memory.DEFAULT_SIZES)
    return {"settings": f"libraries of {sizes} scanned items, a fresh worker each", **figures}


async def _fairness() -> dict[str, Any]:
    # Imported here: bench.fairness builds on this module's world.
    from bench import fairness

    return await fairness.measure_alone()


PLUGGED_SECTIONS: Final = (
    PluggedSection(
        "planning_memory",
        "Planning memory",
        "bench/planning_memory.py",
        _planning_memory,
    ),
    PluggedSection(
        "fairness",
        "Many accounts, one app budget",
        "bench/fairness.py",
        _fairness,
    ),
)
"""Measurements of bench/planning_memory.py and bench/fairness.py, made by the full run
only: ``--quick`` (the suite's) leaves them out; each script runs on its own too."""


# The world ----------------------------------------------------------------------------------


class StaticTokens:
    """The bare loop's access token: issued by the sandbox for the run, never refreshed."""

    def __init__(self, token: str) -> None:
        self._token = token

    async def access_token(self) -> str:
        return self._token

    async def refresh_after_rejection(self, rejected: str) -> str:
        return self._token


@dataclass
class World:
    children: Children
    worker: WorkerProcess
    sandbox: SandboxAdmin
    http: httpx.AsyncClient
    base_url: str
    client: Client
    ledger: Ledger
    settings: Settings
    env: dict[str, str]

    async def load(self, library: Library, account: str) -> dict[str, Any]:
        """The sandbox now holds ``library`` for ``account`` alone (every other user and
        token forgotten); returns the fixture."""
        fixture = library.fixture(account)
        response = await self.http.put("/__sandbox/fixture", json=fixture)
        response.raise_for_status()
        return fixture

    async def load_again(self, planned: Planned) -> None:
        """The sandbox holds ``planned``'s library as it was before anything was removed."""
        response = await self.http.put("/__sandbox/fixture", json=planned.fixture)
        response.raise_for_status()

    async def token(self, account: str) -> dict[str, Any]:
        self.sandbox.user_id = account
        return await self.sandbox.tokens()

    async def log_in(self, account: str) -> None:
        body = await self.token(account)
        await self.ledger.upsert_account(account, account)
        await token_store(self.ledger, self.settings).save(
            account,
            TokenSet(
                access_token=SecretStr(body["access_token"]),
                refresh_token=SecretStr(body["refresh_token"]),
                expires_at=datetime.now(UTC) + timedelta(seconds=int(body["expires_in"])),
                scope=body["scope"],
            ),
        )

    async def counters(self) -> dict[str, Any]:
        return await self.sandbox.counters()

    async def restart_worker(self, options: Sequence[str]) -> None:
        """A new worker process (so that its VmHWM is this phase's alone), polling."""
        self.worker.stop()
        self.worker = WorkerProcess(self.children, self.env, TASK_QUEUE, options)
        before = self.children.log_tail("worker", 10**6).count("worker polling")
        self.worker.start()

        async def polling() -> bool:
            self.worker.check_alive()
            return self.children.log_tail("worker", 10**6).count("worker polling") > before

        started = time.perf_counter()
        await eventually(polling, 60, "the worker to poll")
        print(f"  worker started in {time.perf_counter() - started:.1f} s", flush=True)
        await asyncio.sleep(0.5)


@contextlib.asynccontextmanager
async def world_in(
    directory: Path, children: Children, *, fairness: bool = True
) -> AsyncIterator[World]:
    temporal = DevServer(children, directory, fairness=fairness)
    await temporal.start()
    async with served_sandbox(
        children, directory, temporal.address, generate="liked_songs=1", http_timeout=300
    ) as sandbox:
        client = await Client.connect(temporal.address, data_converter=configured_data_converter())
        ledger = await Ledger.open(ledger_url(sandbox.settings))
        try:
            yield World(
                children,
                WorkerProcess(children, sandbox.env, TASK_QUEUE),
                SandboxAdmin(sandbox.http, "none"),
                sandbox.http,
                sandbox.base_url,
                client,
                ledger,
                sandbox.settings,
                sandbox.env,
            )
        finally:
            await ledger.close()


# Measurements ---------------------------------------------------------------------------


def peak_rss_mib(pid: int) -> float:
    """The process's peak resident set (``VmHWM``), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for process {pid}")


def reset_peak_rss(pid: int) -> None:
    """``VmHWM`` from now on (Linux 4.0+: writing 5 to ``clear_refs`` resets it)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def cpu_seconds(pid: int) -> float:
    """The CPU time (user + system) the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


async def history_events(client: Client, workflow_id: str, run_id: str | None) -> tuple[int, int]:
    """Events of every run of ``workflow_id`` from ``run_id`` on (continue-as-new
    followed), and how many runs."""
    events = runs = 0
    while run_id is not None:
        history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        events += len(history.events)
        runs += 1
        last = history.events[-1]
        run_id = (
            last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
            if last.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
            else None
        )
    return events, runs


@dataclass
class Planned:
    account: str
    fixture: dict[str, Any]
    plan_id: str
    actions: list[PlannedAction]
    seconds: float
    scan_reads: int
    scan_bound: int
    before: dict[str, Any]
    """The library before anything was removed (``bench.reference.library_of``)."""


async def _planning(world: World, account: str) -> tuple[PlanResult, float]:
    """The account's library planned through the worker, and the seconds it took."""
    request = PlanRequest(account_id=account)
    started = time.perf_counter()
    async with asyncio.timeout(BATCH_WITHIN):
        result: PlanResult = await world.client.execute_workflow(
            PlanningWorkflow.run,
            request,
            id=f"{planning_workflow_id(account, request.options)}/{uuid.uuid4().hex}",
            task_queue=TASK_QUEUE,
        )
    return result, time.perf_counter() - started


async def plan(world: World, library: Library, account: str) -> Planned:
    """The library loaded for a fresh account, its blocklist set, and planned (no faults)."""
    await world.sandbox.faults({})
    fixture = await world.load(library, account)
    await world.log_in(account)
    await world.ledger.add_to_blocklist(
        account, blocked_artists(fixture, library.blocked), source="id"
    )
    dump = await world.sandbox.user()
    await world.sandbox.reset_counters()
    result, seconds = await _planning(world, account)
    print(f"  {account}: planned in {seconds:.1f} s", flush=True)
    reads = calls_received(await world.counters())
    actions = await world.ledger.plan_actions(result.plan_id)
    return Planned(
        account,
        fixture,
        result.plan_id,
        actions,
        seconds,
        reads,
        scan_lower_bound(dump),
        library_of(dump),
    )


PLAYLIST_ITEM_READS: Final = (
    "GET /v1/playlists/{playlist_id}/items",
    "GET /v1/playlists/{playlist_id}/tracks",
)


async def replan(world: World, planned: Planned) -> dict[str, Any]:
    """``planned``'s library planned again, unchanged: what the incremental scan reads."""
    await world.sandbox.reset_counters()
    result, seconds = await _planning(world, planned.account)
    print(f"  {planned.account}: planned again in {seconds:.1f} s", flush=True)
    calls: dict[str, int] = (await world.counters())["calls"]
    return {
        "first_plan_reads": planned.scan_reads,
        "first_plan_s": round(planned.seconds, 2),
        "replan_reads": sum(calls.values()),
        "replan_s": round(seconds, 2),
        "playlist_item_reads": sum(calls.get(endpoint, 0) for endpoint in PLAYLIST_ITEM_READS),
        "liked_song_pages": calls.get("GET /v1/me/tracks", 0),
        "saved_album_pages": calls.get("GET /v1/me/albums", 0),
        "same_plan": result.plan_id == planned.plan_id,
        "calls_by_endpoint": calls,
    }


@dataclass
class Enforced:
    planned: int
    removed: int
    seconds: float
    calls: int
    bound: int
    summary_calls: int
    rate_limited: int
    violations: int
    events: int
    runs: int
    batch_id: str
    calls_by_endpoint: dict[str, int]
    peak_rss_mib: float | None = None
    start_rss_mib: float | None = None
    worker_cpu_s: float | None = None
    """CPU time the worker process used during the enforcement."""


async def enforce(
    world: World, planned: Planned, *, measure_memory: bool = False, fresh_worker: bool = True
) -> Enforced:
    start_rss = None
    if measure_memory:
        if fresh_worker:
            await world.restart_worker(["--spotify-activities-per-second", f"{UNCAPPED:g}"])
        assert world.worker.pid is not None
        if not fresh_worker:
            reset_peak_rss(world.worker.pid)
        start_rss = rss_mib(world.worker.pid)
    await world.sandbox.reset_counters()
    assert world.worker.pid is not None
    cpu_before = cpu_seconds(world.worker.pid)
    started = time.perf_counter()
    handle = await world.client.start_workflow(
        EnforcementWorkflow.run,
        EnforcementRequest(
            account_id=planned.account, plan_id=planned.plan_id, max_in_flight=MAX_IN_FLIGHT
        ),
        id=enforcement_workflow_id(planned.account, planned.plan_id),
        task_queue=TASK_QUEUE,
    )
    async with asyncio.timeout(BATCH_WITHIN):
        summary: EnforcementSummary = await handle.result()
    seconds = time.perf_counter() - started
    worker_cpu = cpu_seconds(world.worker.pid) - cpu_before
    print(f"  {planned.account}: enforced in {seconds:.1f} s", flush=True)
    peak = None
    if measure_memory:
        assert world.worker.pid is not None
        peak = peak_rss_mib(world.worker.pid)
    counters = await world.counters()
    events, runs = await history_events(world.client, handle.id, handle.first_execution_run_id)
    if summary.status is not BatchStatus.COMPLETED:
        raise RuntimeError(f"enforcement of {planned.plan_id} ended {summary.status.value}")
    return Enforced(
        planned=len(planned.actions),
        removed=sum(tally.completed for tally in summary.tallies.values()),
        seconds=seconds,
        calls=calls_received(counters),
        bound=enforcement_lower_bound(planned.actions),
        summary_calls=summary.api_calls,
        rate_limited=int(counters["rate_limited"]),
        violations=int(counters["violations"]),
        events=events,
        runs=runs,
        batch_id=summary.batch_id,
        calls_by_endpoint=dict(counters["calls"]),
        peak_rss_mib=peak,
        start_rss_mib=start_rss,
        worker_cpu_s=worker_cpu,
    )


@dataclass
class RolledBack:
    seconds: float
    calls: int
    bound: int
    playlists: int
    summary_calls: int
    exact: bool
    rate_limited: int
    violations: int
    in_flight_violations: int
    calls_by_endpoint: dict[str, int]


async def roll_back(world: World, planned: Planned, enforced: Enforced) -> RolledBack:
    bound, playlists = await rollback_bound(world.ledger, enforced.batch_id)
    await world.sandbox.reset_counters()
    started = time.perf_counter()
    async with asyncio.timeout(BATCH_WITHIN):
        summary = await world.client.execute_workflow(
            RollbackWorkflow.run,
            RollbackRequest(
                account_id=planned.account, batch_id=enforced.batch_id, max_in_flight=MAX_IN_FLIGHT
            ),
            id=rollback_workflow_id(enforced.batch_id),
            task_queue=TASK_QUEUE,
        )
    seconds = time.perf_counter() - started
    print(f"  {planned.account}: rolled back in {seconds:.1f} s", flush=True)
    counters = await world.counters()
    world.sandbox.user_id = planned.account
    after = library_of(await world.sandbox.user())
    return RolledBack(
        seconds=seconds,
        calls=calls_received(counters),
        bound=bound,
        playlists=playlists,
        summary_calls=summary.api_calls,
        exact=after == planned.before and not summary.failed,
        rate_limited=int(counters["rate_limited"]),
        violations=int(counters["violations"]),
        in_flight_violations=int(counters["in_flight_violations"]),
        calls_by_endpoint=dict(counters["calls"]),
    )


@dataclass
class Looped:
    seconds: float
    calls: int


async def bare_loop(world: World, planned: Planned, faults: dict[str, Any]) -> Looped:
    """The plan's removals, in the engine's chunks and with as many in flight, made by a
    plain asyncio loop through ``SpotifyClient`` on the same library loaded again."""
    await world.sandbox.faults({})
    await world.load_again(planned)
    token = (await world.token(planned.account))["access_token"]
    await world.sandbox.faults(faults)
    await world.sandbox.reset_counters()
    library = [a.uri for a in planned.actions if a.entity_type is not EntityType.PLAYLIST_ITEM]
    playlists: dict[str, list[str]] = {}
    for action in planned.actions:
        if action.entity_type is EntityType.PLAYLIST_ITEM and action.container_id is not None:
            playlists.setdefault(action.container_id, []).append(action.uri)
    gate = asyncio.Semaphore(MAX_IN_FLIGHT)
    async with SpotifyClient(
        StaticTokens(token), api_base_url=world.settings.api_base_url, timeout=REQUEST_TIMEOUT
    ) as spotify:

        async def library_chunk(uris: Sequence[str]) -> None:
            async with gate:
                await spotify.remove_from_library(uris)

        async def playlist_chunk(playlist_id: str, uris: Sequence[str]) -> None:
            async with gate:
                await spotify.remove_playlist_items(playlist_id, uris)

        started = time.perf_counter()
        await asyncio.gather(
            *(library_chunk(chunk) for chunk in chunks(library, LIBRARY_URIS_PER_CALL)),
            *(
                playlist_chunk(playlist_id, chunk)
                for playlist_id, uris in playlists.items()
                for chunk in chunks(uris, PLAYLIST_ITEMS_PER_CALL)
            ),
        )
        seconds = time.perf_counter() - started
    counters = await world.counters()
    await world.sandbox.faults({})
    return Looped(seconds=seconds, calls=calls_received(counters))


# spotipy ------------------------------------------------------------------------------------


def spotipy_removals(base_url: str, token: str, actions: Sequence[PlannedAction]) -> None:
    """The removals as a person would script them with spotipy: one call after another,
    each kind through its own spotipy method (2.26 sends tracks, albums and artists to
    ``DELETE /me/library``, 40 URIs a call; playlist entries to ``DELETE
    /playlists/{id}/items``, 100 a call)."""
    spotify = spotipy.Spotify(auth=token, requests_timeout=REQUEST_TIMEOUT)
    spotify.prefix = f"{base_url}/v1/"

    def ids(kind: EntityType) -> list[str]:
        return [action.entity_id for action in actions if action.entity_type is kind]

    for chunk in chunks(ids(EntityType.LIKED_SONG), LIBRARY_URIS_PER_CALL):
        spotify.current_user_saved_tracks_delete(list(chunk))
    for chunk in chunks(ids(EntityType.SAVED_ALBUM), LIBRARY_URIS_PER_CALL):
        spotify.current_user_saved_albums_delete(list(chunk))
    for chunk in chunks(ids(EntityType.FOLLOWED_ARTIST), LIBRARY_URIS_PER_CALL):
        spotify.user_unfollow_artists(list(chunk))
    playlists: dict[str, list[str]] = {}
    for action in actions:
        if action.entity_type is EntityType.PLAYLIST_ITEM and action.container_id is not None:
            playlists.setdefault(action.container_id, []).append(action.uri)
    for playlist_id, uris in playlists.items():
        for chunk in chunks(uris, PLAYLIST_ITEMS_PER_CALL):
            spotify.playlist_remove_all_occurrences_of_items(playlist_id, list(chunk))


@dataclass
class Scripted:
    seconds: float
    calls: int
    rate_limited: int
    violations: int
    left: int
    """Planned removals still in the library afterwards."""
    retry_gap: float | None = None
    """Seconds from the injected 429's arrival to the next request's."""


async def spotipy_run(world: World, planned: Planned, storm: dict[str, Any]) -> Scripted:
    await world.sandbox.faults({})
    await world.load_again(planned)
    token = (await world.token(planned.account))["access_token"]
    await world.sandbox.settings({"request_log_size": 100_000})
    await world.sandbox.faults(storm)
    await world.sandbox.reset_counters()
    started = time.perf_counter()
    await asyncio.to_thread(spotipy_removals, world.base_url, token, planned.actions)
    seconds = time.perf_counter() - started
    counters = await world.counters()
    log = (await world.http.get("/__sandbox/requests")).json()["requests"]
    await world.sandbox.faults({})
    await world.sandbox.settings({"request_log_size": 1_000})
    gap = None
    api = [entry for entry in log if entry["path"].startswith("/v1/")]
    for number, entry in enumerate(api[:-1]):
        if entry["status"] == 429:
            gap = api[number + 1]["arrived_at"] - entry["arrived_at"]
            break
    from scripts.chaos import still_present  # the same check as make chaos

    world.sandbox.user_id = planned.account
    left = len(still_present(await world.sandbox.user(), planned.actions))
    return Scripted(
        seconds=seconds,
        calls=calls_received(counters),
        rate_limited=int(counters["rate_limited"]),
        violations=int(counters["violations"]),
        left=left,
        retry_gap=gap,
    )


# The run ------------------------------------------------------------------------------------


@dataclass
class Bench:
    sizes: Sizes
    quick: bool
    large: bool = True
    """Whether the memory section measures its second size (``--no-large`` skips it)."""
    large_rollback: dict[str, Any] | None = None
    """The second size's enforcement rolled back whole: time, calls, exactness, memory."""
    sections: dict[str, dict[str, Any]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    first_planned: Planned | None = None

    def section(self, name: str, settings: dict[str, Any], **figures: Any) -> None:
        self.sections[name] = {"settings": settings, **figures}
        print(f"[{name}] {json.dumps(figures, default=str)[:600]}", flush=True)


def _ratio(numerator: float, denominator: float) -> float | None:
    return round(numerator / denominator, 3) if denominator else None


def _engine_figures(engine: Enforced, loop: Looped) -> dict[str, Any]:
    return {
        "planned_items": engine.planned,
        "removed_items": engine.removed,
        "engine_s": round(engine.seconds, 2),
        "loop_s": round(loop.seconds, 2),
        "engine_over_loop": _ratio(engine.seconds, loop.seconds),
        "engine_calls": engine.calls,
        "loop_calls": loop.calls,
        "engine_summary_calls": engine.summary_calls,
        "violations": engine.violations,
        "worker_cpu_s": None if engine.worker_cpu_s is None else round(engine.worker_cpu_s, 2),
    }


async def comparison(bench: Bench, world: World) -> None:
    sizes = bench.sizes
    library = sizes.comparison
    zero: list[dict[str, Any]] = []
    slow: list[dict[str, Any]] = []
    enforcements: list[tuple[str, Planned, Enforced]] = []
    first: tuple[Planned, Enforced] | None = None
    await world.restart_worker(["--spotify-activities-per-second", f"{UNCAPPED:g}"])
    for latency, runs in (({}, zero), (sizes.latency, slow)):
        for repetition in range(sizes.repetitions):
            label = "zero" if not latency else "latency"
            account = f"bench-{label}-{repetition}"
            planned = await plan(world, library, account)
            if first is None:
                bench.section(
                    "replan",
                    {
                        "library": library.describe(),
                        "note": "the library planned, then planned again unchanged "
                        "(incremental scan, docs/architecture.md)",
                    },
                    **await replan(world, planned),
                )
            await world.sandbox.faults(latency)
            engine = await enforce(
                world,
                planned,
                measure_memory=first is None,
                fresh_worker=sizes.fresh_worker_for_memory,
            )
            await world.sandbox.faults({})
            if first is None:
                first = (planned, engine)
                bench.first_planned = planned
                rolled = await roll_back(world, planned, engine)
                record_rollback(bench, library, rolled)
            loop = await bare_loop(world, planned, latency)
            runs.append(_engine_figures(engine, loop))
            enforcements.append((f"{label} {repetition + 1}", planned, engine))
    common = {
        "library": library.describe(),
        "worker_spotify_activities_per_second": UNCAPPED,
        "worker_cap_note": f"raised from the default {DEFAULT_SPOTIFY_ACTIVITIES_PER_SECOND:g}: "
        "at the default the comparison would measure the cap",
        "max_in_flight": MAX_IN_FLIGHT,
        "sandbox": "starter.py sandbox (uvicorn, 127.0.0.1), no rate limit",
        "loop": "asyncio.gather of the engine's chunks (40 library URIs, 100 playlist URIs) "
        f"through SpotifyClient under a semaphore of {MAX_IN_FLIGHT}",
    }
    bench.section(
        "engine_vs_loop",
        common,
        zero_latency={
            "latency": "none",
            "runs": zero,
            "engine_over_loop": _median(run["engine_over_loop"] for run in zero),
        },
        latency={
            "latency": f"{sizes.latency['latency_ms']:g} ms + up to "
            f"{sizes.latency['jitter_ms']:g} ms of jitter (uniform) per answer",
            "runs": slow,
            "engine_over_loop": _median(run["engine_over_loop"] for run in slow),
        },
    )
    assert first is not None
    planned, engine = first
    bench.section(
        "call_bounds",
        {**common, "note": "calls as the sandbox counted them; bounds in bench/reference.py"},
        enforcement=[
            {
                "run": label,
                "write_calls": run.calls,
                "lower_bound": run.bound,
                "ratio": _ratio(run.calls, run.bound),
                "summary_calls": run.summary_calls,
                "calls_by_endpoint": run.calls_by_endpoint,
            }
            for label, _, run in enforcements
        ],
        scan=[
            {
                "run": label,
                "read_calls": plan_.scan_reads,
                "lower_bound": plan_.scan_bound,
                "ratio": _ratio(plan_.scan_reads, plan_.scan_bound),
                "plan_s": round(plan_.seconds, 2),
            }
            for label, plan_, _ in enforcements
        ],
    )
    bench.section(
        "history_events",
        {**common, "note": "every run of each enforcement workflow (continue-as-new followed)"},
        runs=[
            {
                "run": label,
                "events": run.events,
                "workflow_runs": run.runs,
                "removed_items": run.removed,
                "per_1000_items": round(run.events / run.removed * 1000, 1)
                if run.removed
                else None,
                "per_chunk": round(run.events / run.calls, 2) if run.calls else None,
            }
            for label, _, run in enforcements
        ],
    )
    bench.sections["_first_enforcement"] = {
        "planned_items": engine.planned,
        "seconds": engine.seconds,
        "peak_rss_mib": engine.peak_rss_mib,
        "start_rss_mib": engine.start_rss_mib,
        "plan_s": planned.seconds,
        "library": library.describe(),
    }


def record_rollback(bench: Bench, library: Library, rolled: RolledBack) -> None:
    bench.section(
        "rollback",
        {
            "library": library.describe(),
            "batch": "the first zero-latency enforcement",
            "worker_spotify_activities_per_second": UNCAPPED,
            "max_in_flight": MAX_IN_FLIGHT,
        },
        calls=rolled.calls,
        lower_bound=rolled.bound,
        ratio=_ratio(rolled.calls, rolled.bound),
        playlists_restored=rolled.playlists,
        summary_calls=rolled.summary_calls,
        seconds=round(rolled.seconds, 2),
        library_back_exactly=rolled.exact,
        violations=rolled.violations,
        calls_by_endpoint=rolled.calls_by_endpoint,
    )


def _median(values: Any) -> float | None:
    present = [value for value in values if value is not None]
    return round(statistics.median(present), 3) if present else None


async def memory(bench: Bench, world: World) -> None:
    first = bench.sections.pop("_first_enforcement")
    sizes = bench.sizes
    rows = [
        {
            "library": first["library"],
            "planned_items": first["planned_items"],
            "peak_rss_mib": round(first["peak_rss_mib"], 1),
            "rss_at_start_mib": round(first["start_rss_mib"], 1),
            "enforcement_s": round(first["seconds"], 2),
            "ms_per_item": round(first["seconds"] / first["planned_items"] * 1000, 3),
            "plan_s": round(first["plan_s"], 2),
        }
    ]
    for library, account in ((sizes.large, "bench-large"),) if bench.large else ():
        planned = await plan(world, library, account)
        engine = await enforce(
            world, planned, measure_memory=True, fresh_worker=sizes.fresh_worker_for_memory
        )
        assert engine.peak_rss_mib is not None
        assert engine.start_rss_mib is not None
        assert world.worker.pid is not None
        reset_peak_rss(world.worker.pid)
        rolled = await roll_back(world, planned, engine)
        bench.large_rollback = {
            "library": library.describe(),
            "restored_items": engine.removed,
            "seconds": round(rolled.seconds, 2),
            "ms_per_item": round(rolled.seconds / engine.removed * 1000, 3)
            if engine.removed
            else None,
            "write_calls": rolled.calls,
            "lower_bound": rolled.bound,
            "exact": rolled.exact,
            "violations": rolled.violations,
            "peak_rss_mib": round(peak_rss_mib(world.worker.pid), 1),
        }
        rows.append(
            {
                "library": library.describe(),
                "planned_items": engine.planned,
                "peak_rss_mib": round(engine.peak_rss_mib, 1),
                "rss_at_start_mib": round(engine.start_rss_mib, 1),
                "enforcement_s": round(engine.seconds, 2),
                "ms_per_item": round(engine.seconds / engine.planned * 1000, 3),
                "plan_s": round(planned.seconds, 2),
                "write_calls": engine.calls,
                "lower_bound": engine.bound,
                "events": engine.events,
                "workflow_runs": engine.runs,
            }
        )
    large = rows[-1]
    # Linear in the items, from the largest size measured.
    projected = 1_000_000 / large["planned_items"] * (large["plan_s"] + large["enforcement_s"])
    skipped = {
        "run": False,
        "library": sizes.large.describe(),
        "why": "--no-large: not measured in this run",
    }
    if bench.quick:
        million: dict[str, Any] = {"run": False, "why": "a --quick run does not try it"}
    elif projected > THIRTY_MINUTES:
        million = {
            "run": False,
            "library": sizes.million.describe(),
            "projected_s": round(projected),
            "why": f"projected {projected / 60:.0f} min (the planning and enforcement times "
            f"at {large['planned_items']:,} items, scaled linearly) exceeds the 30 minutes "
            "allowed",
        }
    else:
        planned = await plan(world, sizes.million, "bench-million")
        engine = await enforce(
            world, planned, measure_memory=True, fresh_worker=sizes.fresh_worker_for_memory
        )
        assert engine.peak_rss_mib is not None
        million = {
            "run": True,
            "library": sizes.million.describe(),
            "planned_items": engine.planned,
            "peak_rss_mib": round(engine.peak_rss_mib, 1),
            "enforcement_s": round(engine.seconds, 2),
            "ms_per_item": round(engine.seconds / engine.planned * 1000, 3),
        }
    bench.section(
        "worker_memory",
        {
            "measured": (
                "VmHWM of a worker.py process started after planning, read as the "
                "enforcement's result arrives (planning ran on the worker before it)"
                if sizes.fresh_worker_for_memory
                else "VmHWM of the running worker, reset (clear_refs) before the enforcement "
                "and read as its result arrives: what its planning left in memory included"
            ),
            "worker_spotify_activities_per_second": UNCAPPED,
            "max_in_flight": MAX_IN_FLIGHT,
            "latency": "none",
        },
        sizes=rows,
        growth=_ratio(rows[-1]["peak_rss_mib"] - rows[0]["peak_rss_mib"], rows[0]["peak_rss_mib"])
        if len(rows) > 1
        else None,
        large=None if bench.large else skipped,
        large_rollback=bench.large_rollback,
        million=million,
    )


async def rate_budget(bench: Bench, world: World) -> None:
    sizes = bench.sizes
    cap = DEFAULT_SPOTIFY_ACTIVITIES_PER_SECOND if sizes.budget_at_default_cap else UNCAPPED
    if sizes.budget_at_default_cap:
        await world.restart_worker([])  # the default cap: the setting in production
    planned = await plan(world, sizes.budget_library, "bench-budget")
    await world.sandbox.settings(
        {"rate_limit_budget": sizes.budget, "rate_limit_window": sizes.window}
    )
    try:
        engine = await enforce(world, planned)
        rolled = await roll_back(world, planned, engine)
    finally:
        await world.sandbox.settings({"rate_limit_budget": None})

    def least(calls: int) -> float:
        return calls / sizes.budget * sizes.window

    bench.section(
        "rate_budget",
        {
            "library": sizes.budget_library.describe(),
            "budget": f"{sizes.budget} calls per rolling {sizes.window:g} s (the sandbox's "
            "window, per app)",
            "worker_spotify_activities_per_second": cap,
            "max_in_flight": MAX_IN_FLIGHT,
            "latency": "none",
            "least": "calls (429s included) / budget x window",
        },
        enforcement={
            "seconds": round(engine.seconds, 1),
            "calls": engine.calls,
            "rate_limited": engine.rate_limited,
            "least_s": round(least(engine.calls), 1),
            "time_over_least": _ratio(engine.seconds, least(engine.calls)),
            "violations": engine.violations,
            "summary_calls": engine.summary_calls,
        },
        rollback={
            "seconds": round(rolled.seconds, 1),
            "calls": rolled.calls,
            "rate_limited": rolled.rate_limited,
            "least_s": round(least(rolled.calls), 1),
            "time_over_least": _ratio(rolled.seconds, least(rolled.calls)),
            "violations": rolled.violations,
            "in_flight_violations": rolled.in_flight_violations,
            "summary_calls": rolled.summary_calls,
            "library_back_exactly": rolled.exact,
        },
    )


async def with_spotipy(bench: Bench, world: World) -> None:
    sizes = bench.sizes
    # The first comparison's library and plan, the library loaded again as it was: the
    # engine's and the loop's figures of the same removals are that repetition's.
    planned = bench.first_planned
    if planned is None:
        raise RuntimeError("the comparison did not plan: nothing to script")
    plain = await spotipy_run(world, planned, {})
    storm = {"storm_requests": 1, "storm_retry_after": sizes.retry_after}
    stormed = await spotipy_run(world, planned, storm)
    engine = bench.sections.get("engine_vs_loop", {}).get("zero_latency", {}).get("runs", [{}])
    bench.section(
        "spotipy",
        {
            "library": sizes.comparison.describe(),
            "script": "spotipy 2.26, one call after another, each kind through its method "
            "(DELETE /me/library 40 URIs, DELETE /playlists/{id}/items 100); spotipy's own "
            "retries (urllib3 Retry, 3 on a 429 or 5xx, Retry-After respected)",
            "latency": "none",
            "injected": f"one 429 with Retry-After {sizes.retry_after} on the first request "
            "(the sandbox's storm fault)",
        },
        plain={
            "seconds": round(plain.seconds, 2),
            "calls": plain.calls,
            "left_in_library": plain.left,
            "engine_s": engine[0].get("engine_s"),
            "engine_calls": engine[0].get("engine_calls"),
            "loop_s": engine[0].get("loop_s"),
        },
        retry_after={
            "retry_after_s": sizes.retry_after,
            "seconds": round(stormed.seconds, 2),
            "added_s": round(stormed.seconds - plain.seconds, 2),
            "gap_after_429_s": None if stormed.retry_gap is None else round(stormed.retry_gap, 2),
            "calls": stormed.calls,
            "rate_limited": stormed.rate_limited,
            "left_in_library": stormed.left,
        },
    )


LIBRARY_WRITES: Final = ("DELETE /v1/me/library",)
PLAYLIST_WRITES: Final = ("DELETE /v1/playlists/{playlist_id}/items",)


async def scheduled_run(bench: Bench, world: World) -> None:
    """Issue [G]'s edit on the reference library: planned and enforced, one run of the
    account's schedule that finds nothing to do, then 3 blocked songs liked (saved now,
    as a person likes them) and 2 added to one playlist (its
    ``snapshot_id`` changed, as Spotify changes it), then one run of the account's
    schedule (``KeepEnforcedWorkflow``, what ``schedule trigger`` starts): what it read,
    what it wrote against the fewest writes (one library call, one playlist call)."""
    library = bench.sizes.comparison
    account = "bench-scheduled"
    planned = await plan(world, library, account)
    await enforce(world, planned)
    # The schedule's next run finds nothing to do (it reads again the playlists the
    # enforcement changed, whose snapshot_ids are new); the edit comes after it.
    quiet, quiet_s, quiet_counters = await _one_scheduled_run(world, account)
    state = await world.sandbox.user()
    blocked = {artist.artist_id for artist in blocked_artists(planned.fixture, library.blocked)}
    liked = {song["track_id"] for song in state["liked_songs"]}
    new = [
        track["id"]
        for track in planned.fixture["catalog"]["tracks"]
        if blocked & set(track["artist_ids"]) and track["id"] not in liked
    ][:5]
    if len(new) < 5:
        raise RuntimeError(f"the library has {len(new)} blocked songs not liked, not 5")
    now = f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ}"
    state["liked_songs"][:0] = [{"track_id": track, "added_at": now} for track in new[:3]]
    edited = next(p for p in state["playlists"] if isinstance(p, dict) and p["owner"] == account)
    at = min(7, len(edited["items"]))
    edited["items"][at:at] = [
        {"uri": f"spotify:track:{track}", "added_at": now, "added_by": account} for track in new[3:]
    ]
    edited["snapshot_id"] = f"{edited['snapshot_id']}+edited"
    response = await world.http.put(f"/__sandbox/users/{account}", json=state)
    response.raise_for_status()

    summary, seconds, counters = await _one_scheduled_run(world, account)
    calls: dict[str, int] = counters["calls"]
    read_playlists = _playlists_read(counters)
    after = await world.sandbox.user()
    still = {song["track_id"] for song in after["liked_songs"]} & set(new[:3])
    still |= {
        entry.get("uri", "").removeprefix("spotify:track:")
        for playlist in after["playlists"]
        if isinstance(playlist, dict) and playlist["id"] == edited["id"]
        for entry in playlist["items"]
    } & set(new[3:])
    bench.section(
        "scheduled_run",
        {
            "library": library.describe(),
            "edit": "after enforcement and one run of the account's schedule that found "
            "nothing to do: 3 blocked songs liked, 2 added to one playlist; then one run "
            "of the schedule (KeepEnforcedWorkflow, settle 0 s)",
        },
        seconds=round(seconds, 2),
        reads=sum(n for endpoint, n in calls.items() if endpoint.startswith("GET ")),
        playlists_read=len(read_playlists),
        only_the_edited_playlist_read=read_playlists == [edited["id"]],
        liked_song_pages=calls.get("GET /v1/me/tracks", 0),
        saved_album_pages=calls.get("GET /v1/me/albums", 0),
        removed=sum(summary.removed().by_kind.values()),
        library_write_calls=sum(calls.get(endpoint, 0) for endpoint in LIBRARY_WRITES),
        playlist_write_calls=sum(calls.get(endpoint, 0) for endpoint in PLAYLIST_WRITES),
        write_calls=sum(n for endpoint, n in calls.items() if not endpoint.startswith("GET ")),
        left_in_library=len(still),
        batches=len(summary.batches),
        calls_by_endpoint=calls,
        run_before_the_edit={
            "batches": len(quiet.batches),
            "reads": calls_received(quiet_counters),
            "playlists_read": len(_playlists_read(quiet_counters)),
            "seconds": round(quiet_s, 2),
        },
    )


async def _one_scheduled_run(
    world: World, account: str
) -> tuple[KeepRunSummary, float, dict[str, Any]]:
    """One run of the account's schedule, its counters reset first: its summary, its
    seconds and what the sandbox counted."""
    await world.sandbox.reset_counters()
    started = time.perf_counter()
    async with asyncio.timeout(BATCH_WITHIN):
        summary: KeepRunSummary = await world.client.execute_workflow(
            KeepEnforcedWorkflow.run,
            KeepRequest(account_id=account, settle_seconds=0, max_in_flight=MAX_IN_FLIGHT),
            id=f"{keep_schedule_id(account)}-bench-{uuid.uuid4().hex[:8]}",
            task_queue=TASK_QUEUE,
        )
    seconds = time.perf_counter() - started
    print(f"  {account}: a scheduled run took {seconds:.1f} s", flush=True)
    return summary, seconds, await world.counters()


def _playlists_read(counters: dict[str, Any]) -> list[str]:
    """The playlists whose items the counted requests read."""
    by_resource = counters["calls_by_resource"]
    return sorted({p for endpoint in PLAYLIST_ITEM_READS for p in by_resource.get(endpoint, {})})


PHASES: Final = (
    ("engine vs loop, call bounds, history events, rollback", comparison),
    ("worker memory", memory),
    ("rate budget", rate_budget),
    ("spotipy", with_spotipy),
    ("a scheduled run after an edit", scheduled_run),
)


async def run_all(bench: Bench, directory: Path, children: Children) -> None:
    async with world_in(directory, children) as world:
        for name, phase in PHASES:
            print(f"{name} ...", flush=True)
            started = time.monotonic()
            try:
                await phase(bench, world)
            except Exception as error:  # a phase that cannot finish is recorded, not fatal
                traceback.print_exc()
                bench.failures.append(f"{name}: {type(error).__name__}: {str(error)[:300]}")
                with contextlib.suppress(Exception):
                    await world.sandbox.faults({})
                    await world.sandbox.settings({"rate_limit_budget": None})
                    await world.restart_worker(["--spotify-activities-per-second", f"{UNCAPPED:g}"])
            print(f"{name}: {time.monotonic() - started:.0f} s", flush=True)
        world.worker.stop()
    for plugged in () if bench.quick else PLUGGED_SECTIONS:
        print(f"{plugged.name} ...", flush=True)
        try:
            bench.sections[plugged.name] = {
                "title": plugged.title,
                "command": plugged.command,
                **await plugged.measure(),
            }
        except Exception as error:
            traceback.print_exc()
            bench.failures.append(f"{plugged.name}: {type(error).__name__}: {error}")


# Targets -----------------------------------------------------------------------------------


def _get(data: dict[str, Any], *path: str) -> Any:
    for key in path:
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data


def targets(sections: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Each target of issues [E] and [G] against its figure; a missed one names its cause."""
    found: list[dict[str, Any]] = []

    def target(figure: str, wanted: str, value: Any, met: bool | None, cause: str) -> None:
        found.append(
            {
                "figure": figure,
                "target": wanted,
                "value": value,
                "met": met,
                "cause": "" if met else cause,
            }
        )

    for key, limit in (
        ("zero_latency", ENGINE_OVER_LOOP_ZERO),
        ("latency", ENGINE_OVER_LOOP_LATENCY),
    ):
        part = _get(sections, "engine_vs_loop", key) or {}
        ratio = part.get("engine_over_loop")
        runs = part.get("runs") or []
        counted = [run for run in runs if run.get("engine_calls")]
        beyond = _median(
            (run["engine_s"] - run["loop_s"]) / run["engine_calls"] * 1000 for run in counted
        )
        cpu = _median(run["worker_cpu_s"] for run in counted if run.get("worker_cpu_s"))
        cpu_per_call = _median(
            run["worker_cpu_s"] / run["engine_calls"] * 1000
            for run in counted
            if run.get("worker_cpu_s")
        )
        engine_s = _median(run["engine_s"] for run in counted)
        bookkeeping = (
            "each chunk's durable bookkeeping: the request counted sent in the ledger "
            "before it leaves, then the chunk's end and the next chunk's claim in one "
            "transaction, and a Temporal activity for every 10 chunks"
        )
        cause = (
            f"the worker's own work: {cpu or 0:.1f} s of its CPU in {engine_s or 0:.1f} s "
            f"({cpu_per_call or 0:.0f} ms per call), for calls the sandbox answers in about a "
            f"millisecond; {bookkeeping}"
            if key == "zero_latency"
            else f"{beyond or 0:.0f} ms per call beyond the loop's: each of the "
            f"{MAX_IN_FLIGHT} calls in flight waits, between two calls, for {bookkeeping} "
            f"({cpu_per_call or 0:.0f} ms of worker CPU per call)"
        )
        target(
            f"engine / bare loop ({key.replace('_', ' ')}, median of {len(runs)})",
            f"<= {limit:g}",
            ratio,
            None if ratio is None else ratio <= limit,
            cause,
        )
    for run in _get(sections, "call_bounds", "enforcement") or []:
        extra = run["write_calls"] - run["lower_bound"]
        target(
            f"enforcement write calls / bound ({run['run']})",
            "= 1.00",
            run["ratio"],
            run["ratio"] == CALLS_OVER_BOUND,
            f"{extra} calls above the bound; calls by endpoint {run['calls_by_endpoint']}",
        )
    rollback = sections.get("rollback") or {}
    if rollback:
        reads = sum(
            count
            for endpoint, count in rollback["calls_by_endpoint"].items()
            if endpoint.startswith("GET ")
        )
        target(
            "rollback write calls / bound",
            "= 1.00",
            rollback["ratio"],
            rollback["ratio"] == CALLS_OVER_BOUND,
            f"{rollback['calls'] - rollback['lower_bound']} calls above the bound, of which "
            f"{reads} reads: one GET /playlists/{{id}} per restored playlist "
            f"({rollback['playlists_restored']}) for its snapshot_id before the first insert "
            "(an insert is not idempotent and nothing else says the playlist is as "
            "enforcement left it); the bound counts writes only",
        )
    replanned = sections.get("replan")
    if replanned:
        target(
            "unchanged re-plan: playlist item reads; liked-song and album pages",
            "0; <= 1 and <= 1, same plan",
            f"{replanned['playlist_item_reads']}; {replanned['liked_song_pages']} and "
            f"{replanned['saved_album_pages']}",
            replanned["playlist_item_reads"] == 0
            and replanned["liked_song_pages"] <= 1
            and replanned["saved_album_pages"] <= 1
            and replanned["same_plan"],
            "the re-plan read what its previous scan held (see calls_by_endpoint)",
        )
    kept = sections.get("scheduled_run")
    if kept:
        target(
            "scheduled run after 3 liked + 2 in one playlist: removed; writes; playlists read",
            "5; 2 (1 library + 1 playlist); only the edited one",
            f"{kept['removed']}; {kept['write_calls']}; {kept['playlists_read']}",
            kept["removed"] == 5
            and kept["library_write_calls"] == 1
            and kept["playlist_write_calls"] == 1
            and kept["write_calls"] == 2
            and kept["only_the_edited_playlist_read"]
            and kept["left_in_library"] == 0,
            "see the section's calls by endpoint",
        )
    fair = sections.get("fairness")
    if fair and "slowest_over_fastest" in fair:
        from bench.fairness import SLOWEST_OVER_FASTEST, SMALL_BESIDE_BIG_OVER_ALONE

        equal, beside = fair["slowest_over_fastest"], fair["beside_over_alone"]
        target(
            "20 accounts of equal work under one budget: slowest / fastest finish",
            f"<= {SLOWEST_OVER_FASTEST:g}",
            equal,
            equal <= SLOWEST_OVER_FASTEST,
            f"finishes {fair['equal_fastest_s']}-{fair['equal_slowest_s']} s",
        )
        target(
            "a small account beside one with 10x the work: its time / its time alone",
            f"<= {SMALL_BESIDE_BIG_OVER_ALONE:g}",
            beside,
            beside <= SMALL_BESIDE_BIG_OVER_ALONE,
            f"alone {fair['small_alone_s']} s, beside {fair['small_beside_big_s']} s",
        )
    for run in _get(sections, "call_bounds", "scan") or []:
        target(
            f"scan read calls / bound ({run['run']})",
            "(no target; reported)",
            run["ratio"],
            None,
            "",
        )
    for run in _get(sections, "history_events", "runs") or []:
        value = run["per_1000_items"]
        target(
            f"history events per 1,000 removed items ({run['run']})",
            f"<= {EVENTS_PER_1000:g}",
            value,
            None if value is None else value <= EVENTS_PER_1000,
            f"{run['per_chunk']} events per chunk (activity scheduled, started, completed, "
            "and the workflow tasks between), and a chunk holds at most 40 library items or "
            "100 of one playlist's: a playlist with few removed items costs a chunk alone",
        )
    memory = sections.get("worker_memory") or {}
    rows = memory.get("sizes") or []
    if memory.get("large"):
        target(
            "worker VmHWM at about 100,000 planned items",
            f"<= {WORKER_PEAK_MIB:g}, within {WORKER_GROWTH:.0%} of the first size",
            None,
            None,
            memory["large"]["why"],
        )
        rows = []
    if rows:
        large = rows[-1]
        target(
            f"worker VmHWM at {large['planned_items']:,} planned items (MiB)",
            f"<= {WORKER_PEAK_MIB:g}",
            large["peak_rss_mib"],
            large["peak_rss_mib"] <= WORKER_PEAK_MIB,
            f"{large['rss_at_start_mib']} MiB when the worker started polling, "
            f"{large['peak_rss_mib'] - large['rss_at_start_mib']:.0f} MiB more at its peak",
        )
        growth = memory.get("growth")
        target(
            f"worker VmHWM growth from {rows[0]['planned_items']:,} to "
            f"{large['planned_items']:,} planned items",
            f"<= {WORKER_GROWTH:.0%}",
            growth,
            None if growth is None else growth <= WORKER_GROWTH,
            f"{rows[0]['peak_rss_mib']} MiB -> {large['peak_rss_mib']} MiB: what the worker "
            "holds grows with the batch",
        )
    violations = {
        "enforcement under the budget": _get(sections, "rate_budget", "enforcement", "violations"),
        "rollback under the budget": _get(sections, "rate_budget", "rollback", "violations"),
        "rollback (no budget)": _get(sections, "rollback", "violations"),
    }
    large_rollback = _get(sections, "worker_memory", "large_rollback")
    if large_rollback:
        violations["the largest rollback"] = large_rollback["violations"]
        target(
            f"the largest enforcement rolled back ({large_rollback['restored_items']:,} items)",
            "exactly as before",
            large_rollback["exact"],
            large_rollback["exact"],
            "" if large_rollback["exact"] else "the library after it differs from before",
        )
    for key in ("zero_latency", "latency"):
        for run in _get(sections, "engine_vs_loop", key, "runs") or []:
            violations.setdefault("enforcements (no budget)", 0)
            violations["enforcements (no budget)"] += run["violations"]
    for phase, value in violations.items():
        target(
            f"violations: {phase}",
            "0",
            value,
            None if value is None else value == 0,
            "requests the sandbox received during a rate-limit penalty",
        )
    return found


# The report --------------------------------------------------------------------------------

NOTES_MARKER: Final = "<!-- Written by hand below this line; make bench keeps it. -->"


def kept_notes(path: Path) -> str:
    """The hand-written part of an earlier page, which a new run keeps as it is."""
    if not path.exists():
        return NOTES_MARKER + "\n"
    earlier = path.read_text()
    at = earlier.find(NOTES_MARKER)
    return earlier[at:] if at >= 0 else NOTES_MARKER + "\n"


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "**no**"
    if isinstance(value, float):
        return f"{value:,.3f}".rstrip("0").rstrip(".") if abs(value) < 100 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_cell(v)}" for k, v in value.items()).replace("|", "\\|")
    return str(value).replace("|", "\\|")


def _table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> list[str]:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(row.get(c)) for c in columns) + " |" for row in rows]
    return lines


def _settings(section: dict[str, Any]) -> list[str]:
    return [f"- {name.replace('_', ' ')}: {_cell(value)}" for name, value in section.items()]


SECTION_TITLES: Final = {
    "engine_vs_loop": "Engine against a bare loop",
    "call_bounds": "Calls against their lower bounds",
    "history_events": "History events per 1,000 removed items",
    "worker_memory": "Worker memory and time per item",
    "rate_budget": "Under a rate budget",
    "spotipy": "The same removals with spotipy",
    "rollback": "Rollback: calls against the least any rollback could make",
    "replan": "Planning again an unchanged library",
    "scheduled_run": "A scheduled run after an edit",
}


def write_report(path: Path, results: dict[str, Any]) -> None:
    sections: dict[str, Any] = results["sections"]
    lines = [
        "# Performance",
        "",
        "Every figure below comes from one run of `make bench` (`bench/run.py`), side by "
        "side: the engine (a Temporal dev server, `worker.py`, the sandbox served by uvicorn, "
        "all real processes on 127.0.0.1) against a bare asyncio loop and spotipy making "
        "the same removals. Each section says what it ran with; the module docstring of "
        "`bench/run.py` how each figure is taken. The raw figures: `bench/results.json`.",
        "",
        f"- Command: `{results['command']}`",
        f"- Date: {results['date']}; the run took {results['duration_s'] / 60:.1f} min",
        f"- Machine: {results['machine']}",
        f"- Mode: {results['mode']}",
        "- Reference library: " + results["settings"]["reference_library"],
        "",
    ]
    if results["failures"]:
        lines += ["**Phases that did not finish:**", ""]
        lines += [f"- {failure}" for failure in results["failures"]] + [""]
    lines += ["## Targets", ""]
    lines += _table(results["targets"], ["figure", "target", "value", "met", "cause"])
    lines.append("")
    for name, title in SECTION_TITLES.items():
        section = sections.get(name)
        lines += [f"## {title}", ""]
        if section is None:
            lines += ["Not measured in this run (see the phases that did not finish).", ""]
            continue
        lines += ["Settings:", "", *_settings(section["settings"]), ""]
        if name == "engine_vs_loop":
            for key in ("zero_latency", "latency"):
                part = section[key]
                lines += [
                    f"Latency: {part['latency']}; median engine / loop: "
                    f"**{_cell(part['engine_over_loop'])}**",
                    "",
                    *_table(
                        part["runs"],
                        [
                            "planned_items",
                            "engine_s",
                            "loop_s",
                            "engine_over_loop",
                            "worker_cpu_s",
                            "engine_calls",
                            "loop_calls",
                            "violations",
                        ],
                    ),
                    "",
                ]
        elif name == "call_bounds":
            lines += ["Enforcement (write calls):", ""]
            lines += _table(section["enforcement"], ["run", "write_calls", "lower_bound", "ratio"])
            lines += ["", "Scan (read calls of the planning):", ""]
            lines += _table(
                section["scan"], ["run", "read_calls", "lower_bound", "ratio", "plan_s"]
            )
            lines.append("")
        elif name == "history_events":
            lines += _table(
                section["runs"],
                ["run", "events", "workflow_runs", "removed_items", "per_1000_items", "per_chunk"],
            )
            lines.append("")
        elif name == "worker_memory":
            lines += _table(
                section["sizes"],
                [
                    "planned_items",
                    "rss_at_start_mib",
                    "peak_rss_mib",
                    "enforcement_s",
                    "ms_per_item",
                    "plan_s",
                    "library",
                ],
            )
            million = section["million"]
            if section.get("large"):
                lines += ["", f"About 100,000 planned items: {section['large']['why']}."]
            if rolled := section.get("large_rollback"):
                lines += [
                    "",
                    f"The largest enforcement rolled back whole ({rolled['library']}): "
                    f"{_cell(rolled['restored_items'])} items back in {_cell(rolled['seconds'])} s "
                    f"({_cell(rolled['ms_per_item'])} ms per item), "
                    f"{_cell(rolled['write_calls'])} calls for a bound of "
                    f"{_cell(rolled['lower_bound'])}, library "
                    f"{'exactly as before' if rolled['exact'] else 'NOT as before'}, "
                    f"{_cell(rolled['violations'])} violations, worker VmHWM "
                    f"{_cell(rolled['peak_rss_mib'])} MiB during the rollback.",
                ]
            lines += [
                "",
                f"Growth of the peak from the first size to the second: "
                f"{_cell(section['growth'])}.",
                "",
                "1,000,000 planned items: "
                + (
                    f"{_cell(million.get('peak_rss_mib'))} MiB at the peak, "
                    f"{_cell(million.get('ms_per_item'))} ms per item."
                    if million.get("run")
                    else f"not run: {million['why']}."
                ),
                "",
            ]
        elif name == "replan":
            lines += _table(
                [section],
                [
                    "first_plan_reads",
                    "first_plan_s",
                    "replan_reads",
                    "replan_s",
                    "playlist_item_reads",
                    "liked_song_pages",
                    "saved_album_pages",
                    "same_plan",
                ],
            )
            lines.append("")
        elif name == "scheduled_run":
            lines += _table(
                [section],
                [
                    "removed",
                    "write_calls",
                    "library_write_calls",
                    "playlist_write_calls",
                    "reads",
                    "playlists_read",
                    "only_the_edited_playlist_read",
                    "liked_song_pages",
                    "left_in_library",
                    "seconds",
                ],
            )
            quiet = section["run_before_the_edit"]
            lines += [
                "",
                f"Calls by endpoint: {_cell(section['calls_by_endpoint'])}.",
                "",
                f"The run before the edit (the library obeyed the blocklist): "
                f"{_cell(quiet['batches'])} batches, {_cell(quiet['reads'])} reads, "
                f"{_cell(quiet['playlists_read'])} playlists read again (those the "
                f"enforcement changed), {_cell(quiet['seconds'])} s.",
                "",
            ]
        elif name == "rate_budget":
            rows = [{"phase": phase, **section[phase]} for phase in ("enforcement", "rollback")]
            lines += _table(
                rows,
                [
                    "phase",
                    "seconds",
                    "calls",
                    "rate_limited",
                    "least_s",
                    "time_over_least",
                    "violations",
                    "summary_calls",
                ],
            )
            lines.append("")
        elif name == "spotipy":
            rows = [
                {"run": "no fault", **section["plain"]},
                {"run": "one 429, Retry-After", **section["retry_after"]},
            ]
            lines += _table(
                rows,
                ["run", "seconds", "calls", "left_in_library", "gap_after_429_s", "added_s"],
            )
            plain = section["plain"]
            lines += [
                "",
                f"The engine made the same removals in {_cell(plain['engine_s'])} s with "
                f"{_cell(plain['engine_calls'])} calls, the bare loop in "
                f"{_cell(plain['loop_s'])} s (the first zero-latency repetition).",
                "",
            ]
        elif name == "rollback":
            lines += _table(
                [section],
                [
                    "calls",
                    "lower_bound",
                    "ratio",
                    "playlists_restored",
                    "summary_calls",
                    "seconds",
                    "library_back_exactly",
                ],
            )
            lines += ["", f"Calls by endpoint: {_cell(section['calls_by_endpoint'])}.", ""]
    for name, section in sections.items():
        if name in SECTION_TITLES:
            continue
        lines += [
            f"## {section.get('title', name)}",
            "",
            f"Command: `{section.get('command')}`",
            "",
        ]
        lines += _table(
            [
                {"figure": k, "value": v}
                for k, v in section.items()
                if k not in ("title", "command")
            ],
            ["figure", "value"],
        )
        lines.append("")
    lines.append(kept_notes(path))
    path.write_text("\n".join(lines))


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a couple of minutes")
    parser.add_argument("--results", type=Path, default=ROOT / "bench" / "results.json")
    parser.add_argument("--docs", type=Path, default=ROOT / "docs" / "performance.md")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument(
        "--no-large",
        action="store_true",
        help="skip the memory section's ~100,000-item run (most of a full run's time)",
    )
    arguments = parser.parse_args()
    bench = Bench(QUICK if arguments.quick else FULL, arguments.quick, not arguments.no_large)
    directory = Path(tempfile.mkdtemp(prefix="bench-"))
    children = Children(directory)

    def stop(signum: int, _: Any) -> None:
        children.stop_all()
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    started = time.monotonic()
    try:
        asyncio.run(run_all(bench, directory, children))
    except Exception as error:
        traceback.print_exc()
        bench.failures.append(f"run: {type(error).__name__}: {error}")
    finally:
        children.stop_all()
    command = "make bench" if not arguments.quick else "python bench/run.py --quick"
    if arguments.no_large:
        command = f"python bench/run.py{' --quick' if arguments.quick else ''} --no-large"
    results = {
        "command": command,
        "date": f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "machine": machine(),
        "nproc": os.cpu_count(),
        "mode": "quick (small sizes: proves the bench runs, not the figures that count)"
        if arguments.quick
        else "full",
        "duration_s": round(time.monotonic() - started, 1),
        "settings": {
            "reference_library": bench.sizes.comparison.describe(),
            "max_in_flight": MAX_IN_FLIGHT,
            "request_timeout_s": REQUEST_TIMEOUT,
            "sizes": asdict(bench.sizes),
        },
        "sections": bench.sections,
        "targets": targets(bench.sections),
        "failures": bench.failures,
    }
    arguments.results.write_text(json.dumps(results, indent=2, default=str) + "\n")
    write_report(arguments.docs, results)
    print(f"results: {arguments.results}; report: {arguments.docs}", flush=True)
    if arguments.keep:
        print(f"logs in {directory}")
    else:
        shutil.rmtree(directory, ignore_errors=True)
    for failure in bench.failures:
        print(f"FAILED {failure}")
    return 1 if bench.failures else 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Temporal's core can abort while the interpreter finalises (sdk-python #300).
    os._exit(code)
