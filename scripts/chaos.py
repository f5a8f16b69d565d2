"""Chaos: batches under killed workers, a restarted Temporal, faults and overlap; the figures.

    python scripts/chaos.py [--report docs/reliability.md] [--small] [--keep]   (make chaos)

What it proves, with everything a real process on 127.0.0.1 (a Temporal dev server from
the venv's `temporal` binary on a SQLite file in a temporary directory, `starter.py
sandbox` on a free port, `worker.py` with ENFORCER_* settings pointing at the sandbox and
a ledger in the same temporary directory, and this script as the Temporal client):

1. kills: a batch of several thousand removals survives 20 SIGKILLs of its worker (each
   restarted at once) and its rollback 5 more: every planned item is removed, the ledger
   agrees with the library, the rollback puts back exactly the library dumped before
   enforcement (order, duplicates, liked songs' dates), no extra copy, no request during
   a rate-limit penalty, and each summary's ``api_calls`` (and 429s) equals what the
   sandbox received during that batch alone.
2. restarts: the Temporal dev server is SIGKILLed and restarted (same database, same
   port) three times during a batch, which completes exactly.
3. faults: 10% 5xx, latency with jitter, client timeouts, a 429 storm and access tokens
   living a few seconds: enforcement and rollback complete exactly; times with and
   without the faults.
4. overlap: two plans of one account whose removals overlap are enforced at once (both
   orders) and rolled back at once: the second batch waits its turn, the library ends as
   it was, no extra copy.
5. bad inputs: scripts/bad_inputs.py's catalogue, counted.

It then writes the report (``--report``) with every figure and exits 1 naming each check
that failed. ``--small`` shrinks every scenario, to try the script; its figures are not
the report's.

How a stall is measured: from the ledger, after the batch. Every item records when it
ended (``finished_at``, written by the worker as the chunk's Spotify call is recorded),
and this script records when it killed. A kill's stall is the longest stretch, from the
kill until the next kill (or the batch's end), with no item ending: it covers the dead
worker's chunks being noticed (heartbeat timeout), the new worker starting, and the
workflow being moved off the dead worker. The ledger is the one clock that does not
depend on the worker that just died or on Temporal answering a query at that moment.

Invariants of the run: nothing listens beyond 127.0.0.1; every process it starts runs in
a session of its own and is ended when the script ends, failure or not (SIGTERM and
SIGINT included); every wait is bounded in time and every loop in count; phases whose
traffic is compared run one at a time, the sandbox's counters reset before each (they
are per app, not per batch).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final, TypeVar

ROOT: Final = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

from pydantic import SecretStr  # noqa: E402
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle  # noqa: E402
from temporalio.service import RPCError  # noqa: E402

from bench.world import (  # noqa: E402
    POLL,
    Children,
    DevServer,
    SandboxAdmin,
    WorkerProcess,
    calls_received,
    clean_environment,
    eventually,
    machine,
    served_sandbox,
)
from enforcer.config import Settings  # noqa: E402
from enforcer.ledger import ActionItemRecord, Ledger, LedgerError, ledger_url  # noqa: E402
from enforcer.models import (  # noqa: E402
    TERMINAL_ITEM_STATUSES,
    BatchStatus,
    BlockedArtist,
    EnforcementRequest,
    EnforcementSummary,
    EntityType,
    ItemStatus,
    PlannedAction,
    PlanRequest,
    RollbackRequest,
    RollbackSummary,
)
from enforcer.session import token_store  # noqa: E402
from enforcer.spotify import TokenSet  # noqa: E402
from workflows.connection import configured_data_converter  # noqa: E402
from workflows.enforcement import EnforcementWorkflow, enforcement_workflow_id  # noqa: E402
from workflows.planning import PlanningWorkflow, planning_workflow_id  # noqa: E402
from workflows.rollback import RollbackWorkflow, rollback_workflow_id  # noqa: E402

T = TypeVar("T")

USER: Final = "user"
TASK_QUEUE: Final = "chaos"
STALL_LIMIT: Final = 20.0
"""Seconds: the longest a batch may stand still after its worker was killed."""
BATCH_WITHIN: Final = 600.0
"""Seconds a batch (kills and restarts included) may take before the run gives up on it."""
PROGRESS_WITHIN: Final = 120.0
"""Seconds without the progress a kill or restart waits for before the run gives up."""
MAX_IN_FLIGHT: Final = 4
CHAOS_SEED: Final = 2024
DISRUPTION_JITTER: Final = 0.5
"""Seconds: a kill or restart falls at a random moment this long after its threshold."""
BAD_INPUTS_WITHIN: Final = 600.0
BAD_INPUTS_NEEDED: Final = 80


# Sizes ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Library:
    """A generated library (``POST /__sandbox/users/{id}/generate``) and how many
    removals the blocklist chosen for it should come to, roughly."""

    generate: dict[str, int]
    removals: int


@dataclass(frozen=True)
class Sizes:
    kills: Library
    enforcement_kills: int
    rollback_kills: int
    restarts: Library
    server_restarts: int
    faults: Library
    overlap: Library


FULL: Final = Sizes(
    # About 3,800 removals: ~2,000 liked songs (50 library chunks) and ~1,800 entries in
    # 100 playlists (one chunk each), with albums and artists; 20 kills then fall about
    # 8 chunks apart.
    kills=Library(
        {
            "seed": 11,
            "liked_songs": 8_000,
            "playlists": 100,
            "playlist_size": 60,
            "albums": 80,
            "saved_albums": 60,
            "followed_artists": 30,
        },
        removals=3_800,
    ),
    enforcement_kills=20,
    rollback_kills=5,
    restarts=Library(
        {"seed": 12, "liked_songs": 4_000, "playlists": 40, "playlist_size": 50}, removals=1_500
    ),
    server_restarts=3,
    faults=Library(
        {"seed": 13, "liked_songs": 2_000, "playlists": 20, "playlist_size": 50}, removals=700
    ),
    overlap=Library(
        {"seed": 14, "liked_songs": 1_500, "playlists": 15, "playlist_size": 40}, removals=500
    ),
)
SMALL: Final = Sizes(
    kills=Library({"seed": 11, "liked_songs": 800, "playlists": 10, "playlist_size": 30}, 250),
    enforcement_kills=2,
    rollback_kills=1,
    restarts=Library({"seed": 12, "liked_songs": 600, "playlists": 8, "playlist_size": 30}, 200),
    server_restarts=1,
    faults=Library({"seed": 13, "liked_songs": 400, "playlists": 6, "playlist_size": 30}, 120),
    overlap=Library({"seed": 14, "liked_songs": 400, "playlists": 6, "playlist_size": 30}, 120),
)

KILL_LATENCY: Final = {"seed": 5, "latency_ms": 50.0, "jitter_ms": 50.0}
"""Answers take 50-100 ms: long enough for a batch to be mid-call when killed."""
CLIENT_DEADLINE: Final = float(Settings.model_fields["spotify_request_timeout"].default)
"""The Spotify client's per-request deadline (``ENFORCER_SPOTIFY_REQUEST_TIMEOUT``)."""
SERVER_ERRORS: Final = {"seed": 98, "server_error_rate": 0.10}
"""10% 5xx and nothing else: a batch under it must finish within 2x of its baseline."""
SERVER_ERRORS_SLOWDOWN: Final = 2.0
FAULT_MIX: Final = {
    "seed": 99,
    "server_error_rate": 0.10,
    "latency_ms": 30.0,
    "jitter_ms": 120.0,
    "timeout_rate": 0.02,
    # Just past the client's deadline: the client gives up, as on a real timeout, while
    # the sandbox has already applied the change (judged on arrival).
    "timeout_seconds": CLIENT_DEADLINE + 2,
}
STORM: Final = {"storm_requests": 12, "storm_retry_after": 2}
SHORT_TOKEN_LIFETIME: Final = 5
"""Seconds an access token lives under the fault mix."""


# The record of a run -----------------------------------------------------------------


@dataclass
class Check:
    scenario: str
    what: str
    ok: bool
    detail: str = ""


@dataclass
class Run:
    """Every check and figure of the run, in the order they were made."""

    checks: list[Check] = field(default_factory=list)
    figures: dict[str, dict[str, Any]] = field(default_factory=dict)

    def check(self, scenario: str, what: str, ok: bool, detail: str = "") -> bool:
        self.checks.append(Check(scenario, what, ok, detail))
        mark = "ok  " if ok else "FAIL"
        print(f"  [{mark}] {scenario}: {what}" + (f" ({detail})" if detail else ""), flush=True)
        return ok

    def figure(self, scenario: str, name: str, value: Any) -> None:
        self.figures.setdefault(scenario, {})[name] = value

    @property
    def failed(self) -> list[Check]:
        return [check for check in self.checks if not check.ok]


# What a library is, for comparing -----------------------------------------------------


def comparable(dump: dict[str, Any]) -> dict[str, Any]:
    """What a rollback must bring back exactly: liked songs in order with their dates,
    every playlist's entries in order with their duplicates (URI, or the local file),
    the saved albums and followed artists (as sets: Spotify saves an album again at the
    top with today's date, and has no order for artists), the playlists followed. A
    restored playlist entry's ``added_at`` is the time of restoring: the API cannot set
    it (docs/restore.md)."""
    playlists: dict[str, list[str]] = {}
    for playlist in dump["playlists"]:
        if isinstance(playlist, dict):
            playlists[playlist["id"]] = [
                entry.get("uri") or json.dumps(entry.get("local"), sort_keys=True)
                for entry in playlist["items"]
            ]
    return {
        "liked_songs": [(song["track_id"], song["added_at"]) for song in dump["liked_songs"]],
        "saved_albums": sorted(album["album_id"] for album in dump["saved_albums"]),
        "followed_artists": sorted(dump["followed_artists"]),
        "playlists": playlists,
        "followed_playlists": [p for p in dump["playlists"] if isinstance(p, str)],
    }


def differences(before: dict[str, Any], after: dict[str, Any], limit: int = 5) -> list[str]:
    """The first ways ``after`` differs from ``before`` (both ``comparable``)."""
    found: list[str] = []
    for section in ("liked_songs", "saved_albums", "followed_artists", "followed_playlists"):
        if before[section] != after[section]:
            gone = Counter(map(str, before[section])) - Counter(map(str, after[section]))
            extra = Counter(map(str, after[section])) - Counter(map(str, before[section]))
            found.append(
                f"{section}: {sum(gone.values())} missing, {sum(extra.values())} extra"
                + ("" if gone or extra else ", same entries in another order")
            )
    for playlist_id, entries in before["playlists"].items():
        now = after["playlists"].get(playlist_id) or []
        if now != entries:
            first = next(
                (i for i, pair in enumerate(zip(entries, now, strict=False)) if pair[0] != pair[1]),
                min(len(entries), len(now)),
            )
            found.append(
                f"playlist {playlist_id}: {len(entries)} entries before, {len(now)} after, "
                f"first difference at position {first}"
            )
    return found[:limit]


def extra_copies(before: dict[str, Any], after: dict[str, Any]) -> int:
    """Entries ``after`` holds more often than ``before`` did (both ``comparable``)."""
    extra = 0
    for section in ("liked_songs", "saved_albums", "followed_artists"):
        ids = [entry[0] if isinstance(entry, tuple) else entry for entry in after[section]]
        was = [entry[0] if isinstance(entry, tuple) else entry for entry in before[section]]
        extra += sum((Counter(ids) - Counter(was)).values())
    for playlist_id, entries in after["playlists"].items():
        held = Counter(before["playlists"].get(playlist_id, []))
        extra += sum((Counter(entries) - held).values())
    return extra


def still_present(dump: dict[str, Any], actions: Sequence[PlannedAction]) -> list[str]:
    """The keys of the removals in ``actions`` that ``dump`` still holds."""
    liked = {song["track_id"] for song in dump["liked_songs"]}
    albums = {album["album_id"] for album in dump["saved_albums"]}
    artists = set(dump["followed_artists"])
    entries = {
        playlist["id"]: {entry.get("uri") for entry in playlist["items"]}
        for playlist in dump["playlists"]
        if isinstance(playlist, dict)
    }
    present: list[str] = []
    for action in actions:
        match action.entity_type:
            case EntityType.LIKED_SONG:
                here = action.entity_id in liked
            case EntityType.SAVED_ALBUM:
                here = action.entity_id in albums
            case EntityType.FOLLOWED_ARTIST:
                here = action.entity_id in artists
            case EntityType.PLAYLIST_ITEM:
                here = action.uri in entries.get(action.container_id or "", set())
        if here:
            present.append(action.key)
    return present


def artists_by_presence(fixture: dict[str, Any]) -> list[BlockedArtist]:
    """The artists of the user's liked songs and own playlists, most present first."""
    tracks = {track["id"]: track["artist_ids"] for track in fixture["catalog"]["tracks"]}
    names = {artist["id"]: artist["name"] for artist in fixture["catalog"]["artists"]}
    (user,) = (user for user in fixture["users"] if user["id"] == USER)
    track_ids = [song["track_id"] for song in user["liked_songs"]]
    for playlist in fixture["playlists"]:
        if playlist["owner"] == USER:
            track_ids += [e["uri"].rsplit(":", 1)[-1] for e in playlist["items"] if "uri" in e]
    presence = Counter(artist for track in track_ids for artist in tracks.get(track, ()))
    return [
        BlockedArtist(artist_id=artist, name=names[artist])
        for artist, _ in sorted(presence.items(), key=lambda pair: (-pair[1], pair[0]))
    ]


def blocked_for(fixture: dict[str, Any], removals: int) -> list[BlockedArtist]:
    """The most present artists, as few as give about ``removals`` of the user's tracks."""
    tracks = {track["id"]: set(track["artist_ids"]) for track in fixture["catalog"]["tracks"]}
    (user,) = (user for user in fixture["users"] if user["id"] == USER)
    track_ids = [song["track_id"] for song in user["liked_songs"]]
    for playlist in fixture["playlists"]:
        if playlist["owner"] == USER:
            track_ids += [e["uri"].rsplit(":", 1)[-1] for e in playlist["items"] if "uri" in e]
    chosen: list[BlockedArtist] = []
    blocked: set[str] = set()
    for artist in artists_by_presence(fixture):
        chosen.append(artist)
        blocked.add(artist.artist_id)
        if sum(1 for track in track_ids if tracks.get(track, set()) & blocked) >= removals:
            break
    return chosen


# Stalls ------------------------------------------------------------------------------


def stalls(
    kills: Sequence[datetime], items: Sequence[ActionItemRecord], end: datetime
) -> list[float]:
    """For each kill, the longest stretch from it until the next kill (or ``end``) in
    which no item of the batch ended (see the module's docstring)."""
    ended = sorted(item.finished_at for item in items if item.finished_at is not None)
    found: list[float] = []
    for number, kill in enumerate(kills):
        until = kills[number + 1] if number + 1 < len(kills) else end
        moments = [kill, *(t for t in ended if kill < t <= until)]
        if len(moments) == 1:
            moments.append(until)
        found.append(max((b - a).total_seconds() for a, b in itertools.pairwise(moments)))
    return found


# The world ------------------------------------------------------------------------------


@dataclass
class World:
    """The run's processes and the script's own handles on them."""

    children: Children
    temporal: DevServer
    worker: WorkerProcess
    sandbox: SandboxAdmin
    client: Client
    ledger: Ledger
    settings: Settings
    dice: random.Random = field(default_factory=lambda: random.Random(CHAOS_SEED))  # noqa: S311 - when to kill, no secret

    async def log_in(self) -> None:
        """What `starter.py login` leaves in the ledger, tokens from the sandbox."""
        body = await self.sandbox.tokens()
        tokens = TokenSet(
            access_token=SecretStr(body["access_token"]),
            refresh_token=SecretStr(body["refresh_token"]),
            expires_at=datetime.now(UTC) + timedelta(seconds=int(body["expires_in"])),
            scope=body["scope"],
        )
        await self.ledger.upsert_account(USER, "Chaos User")
        await token_store(self.ledger, self.settings).save(USER, tokens)

    async def block_only(self, artists: Sequence[BlockedArtist]) -> None:
        listed = [entry.artist_id for entry in await self.ledger.blocklist(USER)]
        if listed:
            await self.ledger.remove_from_blocklist(USER, listed)
        await self.ledger.add_to_blocklist(USER, list(artists), source="id")

    async def plan(self) -> str:
        request = PlanRequest(account_id=USER)
        async with asyncio.timeout(BATCH_WITHIN):
            result = await self.client.execute_workflow(
                PlanningWorkflow.run,
                request,
                id=planning_workflow_id(USER, request.options),
                task_queue=TASK_QUEUE,
            )
        return result.plan_id

    async def enforce(self, plan_id: str, tag: str) -> WorkflowHandle[Any, EnforcementSummary]:
        # A tag per scenario: two scenarios may enforce equal plans (same library, same
        # blocklist), which Temporal's idempotency would rightly refuse to run twice.
        return await self.client.start_workflow(
            EnforcementWorkflow.run,
            EnforcementRequest(account_id=USER, plan_id=plan_id, max_in_flight=MAX_IN_FLIGHT),
            id=f"{enforcement_workflow_id(USER, plan_id)}/{tag}",
            task_queue=TASK_QUEUE,
        )

    async def roll_back(self, batch_id: str) -> WorkflowHandle[Any, RollbackSummary]:
        return await self.client.start_workflow(
            RollbackWorkflow.run,
            RollbackRequest(account_id=USER, batch_id=batch_id, max_in_flight=MAX_IN_FLIGHT),
            id=rollback_workflow_id(batch_id),
            task_queue=TASK_QUEUE,
        )

    async def items_ended(self, batch_id: str) -> int:
        """Items of the batch in a terminal state (0 while the batch is not recorded)."""
        try:
            counts = await self.ledger.item_counts(batch_id)
        except LedgerError:
            return 0
        return sum(count for status, count in counts.items() if status in TERMINAL_ITEM_STATUSES)

    async def items_total(self, batch_id: str) -> int:
        try:
            return sum((await self.ledger.item_counts(batch_id)).values())
        except LedgerError:
            return 0

    async def result(self, handle: WorkflowHandle[Any, T], within: float = BATCH_WITHIN) -> T:
        """The workflow's result, asking again while Temporal is down (a restart)."""
        deadline = time.monotonic() + within
        while True:
            self.worker.check_alive()
            try:
                async with asyncio.timeout(min(30.0, max(deadline - time.monotonic(), 1.0))):
                    return await handle.result()
            except (RPCError, TimeoutError):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{handle.id} did not end within {within:.0f} s") from None
                await asyncio.sleep(1)

    async def disrupted(
        self,
        batch_id: str,
        handle: WorkflowHandle[Any, T],
        times: int,
        disrupt: Callable[[], Awaitable[datetime]],
    ) -> tuple[T, list[datetime]]:
        """Runs ``disrupt`` ``times`` times at spread-out moments of the batch (after
        1/(times+1), 2/(times+1)... of its items ended, so every disruption follows some
        progress), then waits for its result. Returns the result and the moments."""
        moments: list[datetime] = []
        for number in range(1, times + 1):

            async def far_enough(number: int = number) -> bool:
                self.worker.check_alive()
                total = await self.items_total(batch_id)
                return total > 0 and await self.items_ended(batch_id) >= total * number / (
                    times + 1
                )

            await eventually(
                far_enough, PROGRESS_WITHIN, f"{batch_id} to reach {number}/{times + 1}"
            )
            # A crash is not timed by the batch: a moment drawn at random in the next
            # half second, rather than the instant a chunk was recorded.
            await asyncio.sleep(self.dice.uniform(0, DISRUPTION_JITTER))
            total = await self.items_total(batch_id)
            if await self.items_ended(batch_id) >= total:
                break  # the batch got there first
            moments.append(await disrupt())
        return await self.result(handle), moments

    async def kill_worker(self) -> datetime:
        killed = self.worker.kill()
        self.worker.start()
        return killed

    async def restart_temporal(self) -> datetime:
        self.temporal.kill()
        killed = datetime.now(UTC)
        await self.temporal.start()
        return killed


# Scenarios -------------------------------------------------------------------------------


async def fresh_library(world: World, library: Library) -> tuple[str, dict[str, Any]]:
    """Generates the library, logs in, blocks enough artists, plans: the plan's ID and
    the library as it was before anything was enforced."""
    await world.sandbox.faults({})
    await world.sandbox.generate(library.generate)
    await world.log_in()
    await world.block_only(blocked_for(await world.sandbox.fixture(), library.removals))
    plan_id = await world.plan()
    return plan_id, await world.sandbox.user()


async def check_enforced(
    run: Run, scenario: str, world: World, plan_id: str, summary: EnforcementSummary
) -> list[PlannedAction]:
    """Every planned removal done, in the library and in the ledger; traffic equal."""
    counters = await world.sandbox.counters()
    dump = await world.sandbox.user()
    actions = await world.ledger.plan_actions(plan_id)
    items = await world.ledger.action_items(summary.batch_id)
    left = still_present(dump, actions)
    not_done = [item.key for item in items if item.status is not ItemStatus.COMPLETED]
    run.figure(scenario, "planned removals", len(actions))
    run.figure(scenario, "items lost (enforcement)", len(left) + len(not_done))
    run.check(
        scenario,
        "the batch completed",
        summary.status is BatchStatus.COMPLETED,
        summary.status.value,
    )
    run.check(
        scenario,
        "every planned item is gone from the library",
        not left,
        f"{len(left)} still there: {left[:3]}",
    )
    run.check(
        scenario,
        "the ledger says every item completed",
        not not_done and len(items) == len(actions),
        f"{len(not_done)} not completed of {len(items)}",
    )
    check_traffic(
        run, scenario, "enforcement", summary.api_calls, summary.rate_limit_waits, counters
    )
    return actions


def check_traffic(
    run: Run, scenario: str, phase: str, api_calls: int, waits: int, counters: dict[str, Any]
) -> None:
    received = calls_received(counters)
    run.figure(scenario, f"{phase}: summary api_calls / sandbox calls", f"{api_calls} / {received}")
    run.figure(
        scenario, f"{phase}: summary 429s / sandbox 429s", f"{waits} / {counters['rate_limited']}"
    )
    run.figure(
        scenario,
        f"{phase}: violations (in flight)",
        f"{counters['violations']} ({counters['in_flight_violations']})",
    )
    run.check(
        scenario,
        f"{phase}: summary api_calls == sandbox calls",
        api_calls == received,
        f"{api_calls} vs {received}",
    )
    run.check(
        scenario,
        f"{phase}: summary 429s == sandbox 429s",
        waits == counters["rate_limited"],
        f"{waits} vs {counters['rate_limited']}",
    )
    run.check(
        scenario,
        f"{phase}: no request during a penalty",
        counters["violations"] == 0,
        f"{counters['violations']} violations",
    )


async def check_rolled_back(
    run: Run,
    scenario: str,
    world: World,
    before: dict[str, Any],
    summaries: Sequence[RollbackSummary],
) -> None:
    """The library exactly as before; every rollback's traffic equal to the sandbox's."""
    counters = await world.sandbox.counters()
    was, now = comparable(before), comparable(await world.sandbox.user())
    diffs = differences(was, now)
    extra = extra_copies(was, now)
    not_back = 0
    for summary in summaries:
        items = await world.ledger.action_items(summary.batch_id)
        not_back += sum(1 for item in items if item.status is not ItemStatus.COMPLETED)
        run.check(
            scenario,
            f"{summary.batch_id} completed",
            summary.status is BatchStatus.COMPLETED,
            summary.status.value,
        )
    run.figure(scenario, "items lost (rollback)", not_back)
    run.figure(scenario, "duplicates", extra)
    run.check(scenario, "the library is exactly as before enforcement", not diffs, "; ".join(diffs))
    run.check(scenario, "no extra copy of anything", extra == 0, f"{extra} extra")
    run.check(scenario, "every restore completed in the ledger", not_back == 0, f"{not_back} not")
    check_traffic(
        run,
        scenario,
        "rollback",
        sum(s.api_calls for s in summaries),
        sum(s.rate_limit_waits for s in summaries),
        counters,
    )


async def scenario_kills(run: Run, world: World, sizes: Sizes) -> None:
    name = "1 kills"
    plan_id, before = await fresh_library(world, sizes.kills)
    await world.sandbox.faults(KILL_LATENCY)
    await world.sandbox.reset_counters()
    started = time.monotonic()
    handle = await world.enforce(plan_id, "kills")
    summary, kills = await world.disrupted(
        handle.id, handle, sizes.enforcement_kills, world.kill_worker
    )
    run.figure(name, "enforcement seconds", round(time.monotonic() - started, 1))
    await check_enforced(run, name, world, plan_id, summary)
    items = await world.ledger.action_items(summary.batch_id)
    end = max((i.finished_at for i in items if i.finished_at is not None), default=kills[-1])
    enforcement_stalls = stalls(kills, items, end)
    run.check(
        name,
        f"{sizes.enforcement_kills} kills during the enforcement",
        len(kills) == sizes.enforcement_kills,
        f"{len(kills)} made",
    )

    await world.sandbox.reset_counters()
    started = time.monotonic()
    rollback = await world.roll_back(summary.batch_id)
    undone, rollback_kills = await world.disrupted(
        rollback.id, rollback, sizes.rollback_kills, world.kill_worker
    )
    run.figure(name, "rollback seconds", round(time.monotonic() - started, 1))
    restored = await world.ledger.action_items(undone.batch_id)
    end = max(
        (i.finished_at for i in restored if i.finished_at is not None), default=rollback_kills[-1]
    )
    rollback_stalls = stalls(rollback_kills, restored, end)
    run.check(
        name,
        f"{sizes.rollback_kills} kills during the rollback",
        len(rollback_kills) == sizes.rollback_kills,
        f"{len(rollback_kills)} made",
    )
    await check_rolled_back(run, name, world, before, [undone])
    every = enforcement_stalls + rollback_stalls
    run.figure(name, "kills survived", f"{len(kills)} + {len(rollback_kills)}")
    run.figure(
        name, "stalls after a kill, s (enforcement)", [round(s, 1) for s in enforcement_stalls]
    )
    run.figure(name, "stalls after a kill, s (rollback)", [round(s, 1) for s in rollback_stalls])
    if every:
        run.figure(name, "longest stall after a kill, s", round(max(every), 1))
        run.figure(name, "median stall after a kill, s", round(statistics.median(every), 1))
    run.check(
        name,
        f"every stall after a kill <= {STALL_LIMIT:.0f} s",
        bool(every) and max(every) <= STALL_LIMIT,
        f"longest {max(every, default=0):.1f} s",
    )


async def scenario_restarts(run: Run, world: World, sizes: Sizes) -> None:
    name = "2 restarts"
    plan_id, before = await fresh_library(world, sizes.restarts)
    await world.sandbox.faults(KILL_LATENCY)
    await world.sandbox.reset_counters()
    started = time.monotonic()
    handle = await world.enforce(plan_id, "restarts")
    summary, restarts = await world.disrupted(
        handle.id, handle, sizes.server_restarts, world.restart_temporal
    )
    run.figure(name, "enforcement seconds", round(time.monotonic() - started, 1))
    run.figure(name, "dev-server restarts", len(restarts))
    run.check(
        name,
        f"{sizes.server_restarts} dev-server restarts during the batch",
        len(restarts) == sizes.server_restarts,
        f"{len(restarts)} made",
    )
    await check_enforced(run, name, world, plan_id, summary)
    items = await world.ledger.action_items(summary.batch_id)
    end = max((i.finished_at for i in items if i.finished_at is not None), default=restarts[-1])
    after = stalls(restarts, items, end)
    if after:
        run.figure(name, "longest stall after a restart, s", round(max(after), 1))
    await world.sandbox.reset_counters()
    undone = await world.result(await world.roll_back(summary.batch_id))
    await check_rolled_back(run, name, world, before, [undone])


async def storm_midway(world: World, batch_id: str, faults: dict[str, Any]) -> None:
    """A 429 storm once a third of the batch's items have ended."""

    async def a_third() -> bool:
        total = await world.items_total(batch_id)
        return total > 0 and await world.items_ended(batch_id) * 3 >= total

    with contextlib.suppress(TimeoutError):
        await eventually(a_third, PROGRESS_WITHIN, f"a third of {batch_id}")
        await world.sandbox.faults({**faults, **STORM})


async def scenario_faults(run: Run, world: World, sizes: Sizes) -> None:
    name = "3 faults"
    plan_id, before = await fresh_library(world, sizes.faults)
    injected: Counter[str] = Counter()
    seconds: dict[tuple[str, str], float] = {}
    for tag, faults in (("baseline", {}), ("5xx", SERVER_ERRORS), ("faults", FAULT_MIX)):
        faulty = tag == "faults"
        if faults:
            # The last rollback put the library back (checked): plan it again, since its
            # playlists' snapshot IDs changed.
            plan_id = await world.plan()
        if faulty:
            await world.sandbox.settings({"access_token_lifetime": SHORT_TOKEN_LIFETIME})
            await world.log_in()  # tokens that live a few seconds, refreshed throughout
        await world.sandbox.faults(faults)
        await world.sandbox.reset_counters()
        started = time.monotonic()
        handle = await world.enforce(plan_id, tag)
        if faulty:
            await storm_midway(world, handle.id, FAULT_MIX)
        summary = await world.result(handle)
        seconds[tag, "enforcement"] = time.monotonic() - started
        run.figure(name, f"{tag}: enforcement seconds", round(seconds[tag, "enforcement"], 1))
        counters = await world.sandbox.counters()
        await check_enforced(run, f"{name} ({tag})", world, plan_id, summary)
        if faults:
            statuses = summary.traffic.by_status()
            record_faults(run, name, f"{tag}: enforcement", counters, statuses, injected)
        await world.sandbox.faults(faults)
        await world.sandbox.reset_counters()
        started = time.monotonic()
        rollback = await world.roll_back(summary.batch_id)
        if faulty:
            await storm_midway(world, rollback.id, FAULT_MIX)
        undone = await world.result(rollback)
        seconds[tag, "rollback"] = time.monotonic() - started
        run.figure(name, f"{tag}: rollback seconds", round(seconds[tag, "rollback"], 1))
        counters = await world.sandbox.counters()
        await check_rolled_back(run, f"{name} ({tag})", world, before, [undone])
        if faults:
            statuses = undone.traffic.by_status()
            record_faults(run, name, f"{tag}: rollback", counters, statuses, injected)
            await world.sandbox.faults({})
        if faulty:
            await world.sandbox.settings({"access_token_lifetime": 3600})
            await world.log_in()
    for phase in ("enforcement", "rollback"):
        slowdown = seconds["5xx", phase] / seconds["baseline", phase]
        run.figure(name, f"10% 5xx: {phase} time / baseline", f"{slowdown:.2f}")
        run.check(
            name,
            f"10% 5xx: the {phase} within {SERVER_ERRORS_SLOWDOWN:g}x of its baseline",
            slowdown <= SERVER_ERRORS_SLOWDOWN,
            f"{seconds['5xx', phase]:.1f} s vs {seconds['baseline', phase]:.1f} s",
        )
    run.check(
        name,
        "the fault mix happened: 5xx, timeouts and 429s",
        all(injected[kind] > 0 for kind in ("5xx", "timeouts", "429s")),
        ", ".join(f"{count} {kind}" for kind, count in injected.items()),
    )


def record_faults(
    run: Run,
    scenario: str,
    phase: str,
    counters: dict[str, Any],
    statuses: dict[str, int],
    injected: Counter[str],
) -> None:
    """What the sandbox injected, beside what the ledger saw of it; adds it to
    ``injected``."""
    injected.update(
        {
            "5xx": counters["server_errors"],
            "timeouts": counters["timeouts"],
            "429s": counters["rate_limited"],
        }
    )
    five_xx = sum(count for status, count in statuses.items() if status.startswith("5"))
    run.figure(scenario, f"{phase}: 5xx sent / seen", f"{counters['server_errors']} / {five_xx}")
    run.figure(
        scenario,
        f"{phase}: timeouts sent / unanswered",
        f"{counters['timeouts']} / {statuses.get('unanswered', 0)}",
    )


async def scenario_overlap(run: Run, world: World, sizes: Sizes) -> None:
    name = "4 overlap"
    await world.sandbox.faults({})
    await world.sandbox.generate(sizes.overlap.generate)
    await world.log_in()
    fixture = await world.sandbox.fixture()
    wanted = blocked_for(fixture, sizes.overlap.removals)
    # A: the first two thirds of the artists; B: the last two thirds. The middle third
    # is in both, so are its songs.
    third = max(len(wanted) // 3, 1)
    artists = {"A": wanted[: 2 * third], "B": wanted[third:]}
    for round_number, order in enumerate((("A", "B"), ("B", "A")), start=1):
        scenario = f"{name} ({order[0]} started first)"
        # Each round against the library as the round found it: a round that went wrong
        # does not make the next one look wrong.
        before = await world.sandbox.user()
        plans: dict[str, str] = {}
        for label in ("A", "B"):
            await world.block_only(artists[label])
            plans[label] = await world.plan()
        await world.sandbox.faults(KILL_LATENCY)
        await world.sandbox.reset_counters()
        handles: dict[str, WorkflowHandle[Any, EnforcementSummary]] = {}
        for label in order:
            handles[label] = await world.enforce(plans[label], f"overlap-{round_number}{label}")
        waited = await statuses_seen(world, handles)
        summaries = {label: await world.result(handle) for label, handle in handles.items()}
        counters = await world.sandbox.counters()
        dump = await world.sandbox.user()
        left: list[str] = []
        for label in ("A", "B"):
            left += still_present(dump, await world.ledger.plan_actions(plans[label]))
        # The batch that waited took its turn second (starting first does not decide it).
        second = next(iter(waited)) if len(waited) == 1 else order[1]
        first = "A" if second == "B" else "B"
        skipped = [
            item
            for item in await world.ledger.action_items(summaries[second].batch_id)
            if item.status is ItemStatus.SKIPPED and summaries[first].batch_id in (item.error or "")
        ]
        run.figure(scenario, "items lost (enforcement)", len(left))
        run.figure(scenario, "items the second batch left to the first", len(skipped))
        run.figure(scenario, "batches seen waiting_for_turn", sorted(waited))
        run.check(
            scenario,
            "both batches completed",
            all(s.status is BatchStatus.COMPLETED for s in summaries.values()),
            ", ".join(s.status.value for s in summaries.values()),
        )
        run.check(scenario, "every removal of both plans is done", not left, f"{left[:3]}")
        run.check(
            scenario,
            "one batch waited its turn while the other wrote",
            len(waited) == 1,
            f"seen waiting: {sorted(waited)}",
        )
        run.check(
            scenario,
            "the second batch skipped what the first removed",
            bool(skipped),
            f"{len(skipped)} skipped naming {summaries[first].batch_id}",
        )
        check_traffic(
            run,
            scenario,
            "enforcement",
            sum(s.api_calls for s in summaries.values()),
            sum(s.rate_limit_waits for s in summaries.values()),
            counters,
        )
        await world.sandbox.reset_counters()
        rollbacks = [await world.roll_back(summaries[label].batch_id) for label in order]
        undone = [await world.result(handle) for handle in rollbacks]
        await check_rolled_back(run, scenario, world, before, undone)
        await world.sandbox.faults({})


async def statuses_seen(
    world: World, handles: dict[str, WorkflowHandle[Any, EnforcementSummary]]
) -> set[str]:
    """The batches whose ``progress`` query answered ``waiting_for_turn`` while both ran."""
    waited: set[str] = set()
    running = dict(handles)
    deadline = time.monotonic() + BATCH_WITHIN
    while running and time.monotonic() < deadline:
        for label, handle in list(running.items()):
            try:
                if (await handle.describe()).status is not WorkflowExecutionStatus.RUNNING:
                    del running[label]
                    continue
                progress = await handle.query(EnforcementWorkflow.progress)
            except RPCError:
                continue
            if progress.status is BatchStatus.WAITING_FOR_TURN:
                waited.add(label)
        await asyncio.sleep(POLL)
    return waited


def scenario_bad_inputs(run: Run, directory: Path) -> None:
    name = "5 bad inputs"
    report = directory / "bad_inputs.json"
    with (directory / "bad_inputs.log").open("wb") as log:
        finished = subprocess.run(  # noqa: S603 - our own script
            [sys.executable, str(ROOT / "scripts" / "bad_inputs.py"), "--json", str(report)],
            cwd=ROOT,
            env=clean_environment(),
            stdout=log,
            stderr=subprocess.STDOUT,
            timeout=BAD_INPUTS_WITHIN,
            check=False,
        )
    if not run.check(name, "the catalogue ran", report.exists(), f"exit {finished.returncode}"):
        return
    outcomes: list[dict[str, Any]] = json.loads(report.read_text())
    clear = [
        o
        for o in outcomes
        if o["named"] and not o["traceback"] and (o["exit_code"] is None or o["exit_code"] != 0)
    ]
    changed = [o for o in outcomes if o["ledger_changed"] or o["library_changed"]]
    good = [o for o in outcomes if o["ok"]]
    run.figure(name, "tried", len(outcomes))
    run.figure(name, "clear error", len(clear))
    run.figure(name, "changed something", len(changed))
    run.figure(name, "clear error and no change", len(good))
    run.figure(name, "handled badly", [o["input"] for o in outcomes if not o["ok"]])
    run.check(
        name,
        f">= {BAD_INPUTS_NEEDED} bad inputs each with a clear error and no change",
        len(good) >= BAD_INPUTS_NEEDED,
        f"{len(good)} of {len(outcomes)}",
    )
    run.check(name, "no bad input changed anything", not changed, f"{len(changed)} changed")


# The report -------------------------------------------------------------------------------


SCENARIO_NOTES: Final = {
    "1 kills": "A batch of several thousand removals; the worker SIGKILLed and restarted at "
    "once at spread-out moments (after 1/21, 2/21... of the items ended), then 5 times "
    "during its rollback. Sandbox answers take 50-100 ms.",
    "2 restarts": "The Temporal dev server SIGKILLed and restarted on the same database file "
    "and port during a batch; the worker and this script reconnect by themselves.",
    "3 faults": "The same library enforced and rolled back three times: without faults "
    "(baseline); with 10% 5xx and nothing else (5xx: within 2x of the baseline); then with "
    f"the mix: 10% 5xx, 30-150 ms latency, 2% answers held past the client's "
    f"{CLIENT_DEADLINE:g} s deadline, a storm of 12 429s a third of the way through, and "
    "access tokens living 5 s.",
    "4 overlap": "Plans A and B of one account share a third of their blocked artists; both "
    "enforced at once (A started first, then B first), then both rolled back at once.",
    "5 bad inputs": "scripts/bad_inputs.py: every case given to the starter or as a workflow "
    "input; clear = refused, naming the bad value, no traceback.",
}

MEANINGS: Final = """\
## What each figure means

- **kills survived**: SIGKILLs of the worker during the enforcement + during its rollback,
  each followed at once by a new worker; every one of them had to end with the batch
  completing exactly.
- **stall after a kill**: from the kill until the next kill (or the batch's end), the
  longest stretch in which no item of the batch ended, read from the ledger's
  `finished_at` of each item. It holds the heartbeat timeout (10 s) that tells Temporal
  the dead worker's chunks are lost, the new worker's start, and the workflow moving off
  the dead worker's sticky queue. Limit: 20 s.
- **items lost**: planned removals still in the sandbox's library (`GET
  /__sandbox/users/{id}`) or not completed in the ledger after enforcement; after a
  rollback, restores not completed. Must be 0.
- **duplicates**: entries the library holds more often after the rollback than before
  enforcement (per playlist and URI, liked songs, albums, artists). Must be 0.
- **the library is exactly as before**: the dump before enforcement and the dump after
  rollback compared: liked songs in order with their dates, each playlist's entries in
  order with `added_at` and `added_by`, local files included; saved albums and followed
  artists as sets (Spotify saves an album again at today's date, and keeps no order of
  followed artists).
- **violations**: requests the sandbox received during a rate-limit penalty that the
  client could have held back (in-flight ones, sent before the 429 could arrive, in
  brackets). Must be 0.
- **summary api_calls / sandbox calls**: the batch summary's `api_calls` (requests the
  ledger counted as they left) against the sandbox's own count of API calls received
  during that phase alone (its counters are per app, reset before each phase; with two
  batches at once, their sum). Likewise 429s received against 429s sent. Must be equal.
- **5xx sent / seen, timeouts sent / unanswered**: what the sandbox injected beside what
  the ledger recorded (a request both held and failed is a timeout to the client).
- **bad inputs**: cases tried, refused with an error naming the bad value (no traceback),
  and cases after which the ledger or the library had changed.
"""


def write_report(
    path: Path, run: Run, sizes: Sizes, small: bool, seconds: float, command: str
) -> None:
    result = "every check passed" if not run.failed else f"{len(run.failed)} checks FAILED"
    lines = [
        "# Reliability",
        "",
        "Figures of one run of `make chaos` (`scripts/chaos.py`): the batch machinery under "
        "killed workers, a restarted Temporal, injected faults, overlapping batches and "
        "bad input, every part a real process on 127.0.0.1. The script's docstring says how "
        "each figure is taken; the end of this page, what each means.",
        "",
        f"- Command: `{command}`",
        f"- Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; the run took {seconds / 60:.1f} min",
        f"- Machine: {machine()}",
        f"- Sizes: {'SMALL (a trial run: not the figures that count)' if small else 'full'}; "
        f"the kills' library {sizes.kills.generate}, sized so that the whole run stays "
        "under ~20 minutes on 2 cores",
        f"- Result: {result}",
        "",
        "## Headline",
        "",
        "| figure | value | required |",
        "|---|---|---|",
    ]
    kills = run.figures.get("1 kills", {})
    lost = sum(
        int(value)
        for figures in run.figures.values()
        for name, value in figures.items()
        if name.startswith("items lost")
    )
    duplicates = sum(int(f.get("duplicates", 0)) for f in run.figures.values())
    bad = run.figures.get("5 bad inputs", {})
    traffic_ok = all(
        check.ok for check in run.checks if "api_calls ==" in check.what or "429s ==" in check.what
    )
    violations_ok = all(check.ok for check in run.checks if "penalty" in check.what)
    lines += [
        f"| kills survived (enforcement + rollback) | {kills.get('kills survived', '-')} "
        "| 20 + 5 |",
        f"| longest stall after a kill | {kills.get('longest stall after a kill, s', '-')} s "
        f"(median {kills.get('median stall after a kill, s', '-')} s) | <= 20 s |",
        f"| dev-server restarts survived | "
        f"{run.figures.get('2 restarts', {}).get('dev-server restarts', '-')} | 3 |",
        f"| items lost (every scenario) | {lost} | 0 |",
        f"| duplicates (every scenario) | {duplicates} | 0 |",
        f"| violations (every phase) | {'0' if violations_ok else 'see below'} | 0 |",
        f"| summary figures == sandbox counters (every phase) | "
        f"{'equal' if traffic_ok else 'NOT equal: see below'} | equal |",
        f"| bad inputs tried / clear error / changed something | {bad.get('tried', '-')} / "
        f"{bad.get('clear error', '-')} / {bad.get('changed something', '-')} | >= 80 clear, "
        "0 changed |",
        "",
        "## Scenarios",
        "",
    ]
    for scenario in sorted(
        {s.split(" (")[0] for s in run.figures} | {c.scenario.split(" (")[0] for c in run.checks}
    ):
        lines += [f"### {scenario}", "", SCENARIO_NOTES.get(scenario, ""), ""]
        lines += ["| figure | value |", "|---|---|"]
        for key, figures in run.figures.items():
            if key.split(" (")[0] != scenario:
                continue
            suffix = key[len(scenario) :].strip()
            for figure, value in figures.items():
                label = f"{suffix} {figure}".strip()
                lines.append(f"| {label} | {_cell(value)} |")
        lines += ["", "Checks:", ""]
        for check in run.checks:
            if check.scenario.split(" (")[0] == scenario:
                mark = "pass" if check.ok else "**FAIL**"
                detail = f" ({check.detail})" if check.detail and not check.ok else ""
                where = check.scenario[len(scenario) :].strip()
                lines.append(f"- {mark}: {where + ' ' if where else ''}{check.what}{detail}")
        lines.append("")
    lines.append(MEANINGS)
    lines.append(kept_notes(path))
    path.write_text("\n".join(lines))


NOTES_MARKER: Final = "<!-- Written by hand below this line; make chaos keeps it. -->"


def kept_notes(path: Path) -> str:
    """The hand-written part of an earlier report (findings, how to reproduce them),
    which a new run keeps as it is."""
    if not path.exists():
        return NOTES_MARKER + "\n"
    earlier = path.read_text()
    at = earlier.find(NOTES_MARKER)
    return earlier[at:] if at >= 0 else NOTES_MARKER + "\n"


def _cell(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(map(str, value)) or "none"
    return str(value).replace("|", "\\|")


# The run -----------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def world_in(directory: Path, children: Children) -> AsyncIterator[World]:
    temporal = DevServer(children, directory)
    await temporal.start()
    async with served_sandbox(
        children,
        directory,
        temporal.address,
        generate="liked_songs=10,playlists=1",
        http_timeout=60,
    ) as sandbox:
        client = await Client.connect(temporal.address, data_converter=configured_data_converter())
        ledger = await Ledger.open(ledger_url(sandbox.settings))
        try:
            worker = WorkerProcess(children, sandbox.env, TASK_QUEUE)
            worker.start()
            admin = SandboxAdmin(sandbox.http, USER)
            yield World(children, temporal, worker, admin, client, ledger, sandbox.settings)
        finally:
            await ledger.close()


SCENARIOS: Final = (
    ("1 kills", scenario_kills),
    ("2 restarts", scenario_restarts),
    ("3 faults", scenario_faults),
    ("4 overlap", scenario_overlap),
)


async def run_all(run: Run, directory: Path, children: Children, sizes: Sizes) -> None:
    async with world_in(directory, children) as world:
        for name, scenario in SCENARIOS:
            print(f"{name} ...", flush=True)
            started = time.monotonic()
            try:
                await scenario(run, world, sizes)
            except Exception as error:  # a scenario that cannot finish is a failed check
                traceback.print_exc()
                run.check(
                    name, "the scenario ran to its end", False, f"{type(error).__name__}: {error}"
                )
                world.worker.ensure_running()
            print(f"{name}: {time.monotonic() - started:.0f} s", flush=True)
    print("5 bad inputs ...", flush=True)
    scenario_bad_inputs(run, directory)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--report", type=Path, default=ROOT / "docs" / "reliability.md")
    parser.add_argument("--small", action="store_true", help="a quick trial at small sizes")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    arguments = parser.parse_args()
    sizes = SMALL if arguments.small else FULL
    directory = Path(tempfile.mkdtemp(prefix="chaos-"))
    children = Children(directory)

    def stop(signum: int, _: Any) -> None:
        children.stop_all()
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    run = Run()
    started = time.monotonic()
    try:
        asyncio.run(run_all(run, directory, children, sizes))
    except Exception as error:
        traceback.print_exc()
        run.check("run", "the run reached its end", False, f"{type(error).__name__}: {error}")
    finally:
        children.stop_all()
    command = "make chaos" + (" (scripts/chaos.py --small)" if arguments.small else "")
    write_report(arguments.report, run, sizes, arguments.small, time.monotonic() - started, command)
    print(f"logs in {directory}" if arguments.keep else "", flush=True)
    if not arguments.keep:
        import shutil

        shutil.rmtree(directory, ignore_errors=True)
    print(f"report: {arguments.report}")
    for check in run.failed:
        print(f"FAILED {check.scenario}: {check.what} ({check.detail})")
    return 1 if run.failed else 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Temporal's core can abort while the interpreter finalises (sdk-python #300).
    os._exit(code)
