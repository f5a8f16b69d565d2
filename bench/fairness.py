"""Many accounts, one app budget: does each account get its fair share of the Spotify queue?

    python bench/fairness.py [--quick] [--unfair] [--spotify-activities-per-second N]
                             [--results PATH]

Real processes on 127.0.0.1 (``bench.world``, as bench/run.py): a Temporal dev server
with task queue fairness on (``--unfair``: off, the baseline), ``starter.py sandbox``
and ``worker.py`` at its default Spotify cap (or the cap given). Every account's library
is in the sandbox at once (one fixture; one catalog, each account's playlists its own),
every account planned before any clock starts. Two measurements, the sandbox limiting the app to one
budget of calls per rolling window throughout:

1. equal work: ``accounts`` accounts with equal libraries enforced at once; each one's
   finish time from the common start, the slowest over the fastest, the app's calls,
   429s and the sandbox's violations (calls made while a 429 said to wait).
2. one big account: a small account enforced alone (its time alone), then an account
   with ``big_factor`` x the work started, and once it is under way a second small
   account: the small one's time beside the big one against what its share (one half
   of the budget, two accounts active) allows: at most twice its time alone.

Also a plugged section of a full ``make bench`` (``measure_alone``: bench/run.py imports
this module only when it gets there, this module importing bench.run's world), which
puts its figures in docs/performance.md and its two targets in the page's table.

Invariants: every figure comes from this run; the sandbox refuses (429) every call past
the budget, so the aggregate cannot exceed it and the 429s and violations say how hard
the app pushed against it; every process started is ended when the run ends.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

ROOT: Final = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

from bench.reference import Library, blocked_artists  # noqa: E402
from bench.run import BATCH_WITHIN, MAX_IN_FLIGHT, TASK_QUEUE, World, world_in  # noqa: E402
from bench.world import Children, calls_received, machine  # noqa: E402
from enforcer.models import (  # noqa: E402
    BatchStatus,
    EnforcementRequest,
    EnforcementSummary,
    PlanRequest,
)
from worker import DEFAULT_SPOTIFY_ACTIVITIES_PER_SECOND  # noqa: E402
from workflows.enforcement import EnforcementWorkflow, enforcement_workflow_id  # noqa: E402
from workflows.planning import PlanningWorkflow, planning_workflow_id  # noqa: E402

SLOWEST_OVER_FASTEST: Final = 1.5
"""Issue [G]: with equal work, the slowest account finishes within 1.5x of the fastest."""
SMALL_BESIDE_BIG_OVER_ALONE: Final = 2.0
"""Issue [G]: beside one big account, a small one's run takes at most what its share
(half the budget) allows: twice its time alone."""


@dataclass(frozen=True)
class Sizes:
    accounts: int
    library: Library
    big_factor: int
    budget: int
    window: float

    @property
    def big(self) -> Library:
        small = self.library
        return Library(
            liked=small.liked * self.big_factor,
            playlists=small.playlists * self.big_factor,
            size=small.size,
            followed=small.followed,
            albums=small.albums,
            blocked=small.blocked,
        )


FULL: Final = Sizes(
    accounts=20,
    library=Library(liked=300, playlists=20, size=20, followed=20, albums=20, blocked=12),
    big_factor=10,
    budget=5,
    window=1.0,
)
"""Libraries of many small playlists: about one write call a playlist, so that the
budget, not the machine, sets the pace."""
QUICK: Final = Sizes(
    accounts=20,
    library=Library(liked=100, playlists=6, size=10, followed=10, albums=10, blocked=8),
    big_factor=10,
    budget=5,
    window=1.0,
)


def equal_account(index: int) -> str:
    return f"fair-{index:02d}"


SMALL_ALONE: Final = "small-alone"
SMALL_BESIDE: Final = "small-beside"
BIG: Final = "big"


def one_fixture(libraries: dict[str, Library]) -> dict[str, Any]:
    """Every account's library in one sandbox fixture: the generator's catalogs are
    prefixes of one another (same seed), so their union is each one's; each account's
    playlists get IDs of their own (the generator gives every account the same ones)."""
    catalog: dict[str, dict[str, dict[str, Any]]] = {}
    playlists: list[dict[str, Any]] = []
    users: dict[str, dict[str, Any]] = {}
    for number, (account, library) in enumerate(libraries.items()):
        fixture = library.fixture(account)
        for kind, entries in fixture["catalog"].items():
            catalog.setdefault(kind, {}).update({entry["id"]: entry for entry in entries})
        renamed = {
            playlist["id"]: f"{number:03d}{playlist['id'][3:]}" for playlist in fixture["playlists"]
        }
        for playlist in fixture["playlists"]:
            owned_here = playlist["owner"] == account
            playlists.append(
                {**playlist, "id": renamed[playlist["id"]]} if owned_here else playlist
            )
        for user in fixture["users"]:
            if user["id"] == account:
                user = {**user, "playlists": [renamed.get(p, p) for p in user["playlists"]]}
            users.setdefault(user["id"], user)
    unique = {playlist["id"]: playlist for playlist in playlists}
    return {
        "catalog": {kind: list(entries.values()) for kind, entries in catalog.items()},
        "playlists": list(unique.values()),
        "users": list(users.values()),
    }


async def plan_all(world: World, libraries: dict[str, Library]) -> dict[str, str]:
    """Every account logged in, its blocklist set, and planned (all at once); its plan ID."""
    fixture = one_fixture(libraries)
    response = await world.http.put("/__sandbox/fixture", json=fixture)
    response.raise_for_status()
    for account, library in libraries.items():
        await world.log_in(account)
        own = library.fixture(account)
        await world.ledger.add_to_blocklist(
            account, blocked_artists(own, library.blocked), source="id"
        )

    async def plan(account: str) -> str:
        request = PlanRequest(account_id=account)
        result = await world.client.execute_workflow(
            PlanningWorkflow.run,
            request,
            id=planning_workflow_id(account, request.options),
            task_queue=TASK_QUEUE,
        )
        return result.plan_id

    async with asyncio.timeout(BATCH_WITHIN):
        plan_ids = await asyncio.gather(*(plan(account) for account in libraries))
    return dict(zip(libraries, plan_ids, strict=True))


async def enforce_timed(world: World, account: str, plan_id: str, started: float) -> dict[str, Any]:
    """The account's plan enforced; seconds from ``started`` to its end, and its removals."""
    handle = await world.client.start_workflow(
        EnforcementWorkflow.run,
        EnforcementRequest(account_id=account, plan_id=plan_id, max_in_flight=MAX_IN_FLIGHT),
        id=enforcement_workflow_id(account, plan_id),
        task_queue=TASK_QUEUE,
    )
    began = time.perf_counter() - started
    async with asyncio.timeout(BATCH_WITHIN):
        summary: EnforcementSummary = await handle.result()
    if summary.status is not BatchStatus.COMPLETED:
        raise RuntimeError(f"enforcement of {account} ended {summary.status.value}")
    return {
        "account": account,
        "started_s": round(began, 2),
        "finished_s": round(time.perf_counter() - started, 2),
        "removed": sum(tally.completed for tally in summary.tallies.values()),
        "calls": summary.api_calls,
    }


async def app_traffic(world: World, seconds: float, sizes: Sizes) -> dict[str, Any]:
    counters = await world.counters()
    calls = calls_received(counters)
    refused = int(counters["rate_limited"])
    return {
        "calls": calls,
        "refused_429": refused,
        "violations": int(counters["violations"]),
        "admitted_per_s": round((calls - refused) / seconds, 2),
        "budget_per_s": sizes.budget / sizes.window,
    }


async def equal_work(world: World, sizes: Sizes, plans: dict[str, str]) -> dict[str, Any]:
    accounts = [equal_account(index) for index in range(sizes.accounts)]
    await world.sandbox.reset_counters()
    started = time.perf_counter()
    runs = await asyncio.gather(
        *(enforce_timed(world, account, plans[account], started) for account in accounts)
    )
    seconds = time.perf_counter() - started
    finishes = [run["finished_s"] for run in runs]
    ratio = max(finishes) / min(finishes)
    print(f"  {len(runs)} accounts: {min(finishes):.1f}-{max(finishes):.1f} s", flush=True)
    return {
        "accounts": runs,
        "fastest_s": min(finishes),
        "slowest_s": max(finishes),
        "slowest_over_fastest": round(ratio, 2),
        "target": SLOWEST_OVER_FASTEST,
        "met": ratio <= SLOWEST_OVER_FASTEST,
        "app": await app_traffic(world, seconds, sizes),
    }


async def big_beside_small(world: World, sizes: Sizes, plans: dict[str, str]) -> dict[str, Any]:
    await world.sandbox.reset_counters()
    started = time.perf_counter()
    alone = await enforce_timed(world, SMALL_ALONE, plans[SMALL_ALONE], started)
    alone_s = alone["finished_s"] - alone["started_s"]
    print(f"  small alone: {alone_s:.1f} s", flush=True)
    await world.sandbox.reset_counters()
    started = time.perf_counter()
    big = asyncio.create_task(enforce_timed(world, BIG, plans[BIG], started))
    await asyncio.sleep(min(5.0, alone_s))  # the big one's backlog is under way
    beside = await enforce_timed(world, SMALL_BESIDE, plans[SMALL_BESIDE], started)
    beside_s = beside["finished_s"] - beside["started_s"]
    print(f"  small beside the big one: {beside_s:.1f} s", flush=True)
    big_run = await big
    seconds = time.perf_counter() - started
    ratio = beside_s / alone_s
    return {
        "small_alone": alone,
        "small_alone_s": round(alone_s, 2),
        "big": big_run,
        "small_beside_big": beside,
        "small_beside_big_s": round(beside_s, 2),
        "delay_s": round(beside_s - alone_s, 2),
        "beside_over_alone": round(ratio, 2),
        "target": SMALL_BESIDE_BIG_OVER_ALONE,
        "met": ratio <= SMALL_BESIDE_BIG_OVER_ALONE,
        "app": await app_traffic(world, seconds, sizes),
    }


async def measure(
    sizes: Sizes, directory: Path, children: Children, *, fairness: bool, cap: float | None
) -> dict[str, Any]:
    libraries = {equal_account(index): sizes.library for index in range(sizes.accounts)}
    libraries |= {SMALL_ALONE: sizes.library, SMALL_BESIDE: sizes.library, BIG: sizes.big}
    async with world_in(directory, children, fairness=fairness) as world:
        # The default cap (the setting in production) unless told otherwise.
        await world.restart_worker(
            [] if cap is None else ["--spotify-activities-per-second", f"{cap:g}"]
        )
        print(f"planning {len(libraries)} accounts ...", flush=True)
        plans = await plan_all(world, libraries)
        await world.sandbox.settings(
            {"rate_limit_budget": sizes.budget, "rate_limit_window": sizes.window}
        )
        print("equal work ...", flush=True)
        equal = await equal_work(world, sizes, plans)
        print(json.dumps({"equal_work": equal}), flush=True)  # kept if a later part fails
        print("one big account beside a small one ...", flush=True)
        big = await big_beside_small(world, sizes, plans)
        world.worker.stop()
    return {
        "settings": {
            "fairness": "matching.enableFairness=true, chunk activities keyed by account"
            if fairness
            else "off (matching.enableFairness=false): FIFO dispatch",
            "library": sizes.library.describe(),
            "big_library": sizes.big.describe(),
            "budget": f"{sizes.budget} calls per rolling {sizes.window:g} s (per app)",
            "worker_spotify_activities_per_second": cap or DEFAULT_SPOTIFY_ACTIVITIES_PER_SECOND,
            "max_in_flight": MAX_IN_FLIGHT,
            "machine": machine(),
        },
        "equal_work": equal,
        "big_beside_small": big,
    }


async def measure_alone(sizes: Sizes = FULL) -> dict[str, Any]:
    """The whole measurement, with fairness on, in a directory and processes of its own;
    its figures flat (figure -> value, with its settings), as a plugged section of
    bench/run.py."""
    with tempfile.TemporaryDirectory(prefix="bench-fairness-") as directory:
        children = Children(Path(directory))
        try:
            figures = await measure(sizes, Path(directory), children, fairness=True, cap=None)
        finally:
            children.stop_all()
    return flat(figures, sizes)


def flat(figures: dict[str, Any], sizes: Sizes) -> dict[str, Any]:
    equal, big = figures["equal_work"], figures["big_beside_small"]
    settings = figures["settings"]
    return {
        "settings": f"{sizes.accounts} accounts of {settings['library']}; the big one "
        f"{settings['big_library']}; {settings['budget']}; Temporal fairness: "
        f"{settings['fairness']}; worker cap {settings['worker_spotify_activities_per_second']:g} "
        f"Spotify activities/s, {settings['max_in_flight']} in flight a batch",
        "equal_fastest_s": equal["fastest_s"],
        "equal_slowest_s": equal["slowest_s"],
        "slowest_over_fastest": equal["slowest_over_fastest"],
        **{f"equal_{name}": value for name, value in equal["app"].items()},
        "small_alone_s": big["small_alone_s"],
        "small_beside_big_s": big["small_beside_big_s"],
        "beside_over_alone": big["beside_over_alone"],
        "big_finished_s": big["big"]["finished_s"],
        **{f"big_{name}": value for name, value in big["app"].items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (about a minute)")
    parser.add_argument("--unfair", action="store_true", help="fairness off: the baseline")
    parser.add_argument(
        "--spotify-activities-per-second",
        type=float,
        dest="cap",
        help=f"the worker's Spotify queue cap (default: the worker's, "
        f"{DEFAULT_SPOTIFY_ACTIVITIES_PER_SECOND:g})",
    )
    parser.add_argument("--results", type=Path, help="also write the figures here (JSON)")
    args = parser.parse_args()
    sizes = QUICK if args.quick else FULL
    started = time.monotonic()
    if args.cap is not None and args.cap <= 0:
        parser.error(f"--spotify-activities-per-second must be above 0, got {args.cap:g}")
    with tempfile.TemporaryDirectory(prefix="bench-fairness-") as directory:
        children = Children(Path(directory))

        def stop(signum: int, _: Any) -> None:
            children.stop_all()
            raise SystemExit(128 + signum)

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        try:
            figures = asyncio.run(
                measure(sizes, Path(directory), children, fairness=not args.unfair, cap=args.cap)
            )
        finally:
            children.stop_all()
    figures["seconds"] = round(time.monotonic() - started)
    text = json.dumps(figures, indent=2)
    print(text)
    if args.results is not None:
        args.results.write_text(text + "\n")


if __name__ == "__main__":
    main()
