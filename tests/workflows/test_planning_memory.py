"""Planning's memory does not grow with the library: ``build_plan`` reads the stored scan
back a few pages at a time and plans it section by section.

The activities run in process (Temporal's ``ActivityEnvironment``) on a real ledger and
the sandbox, and Python's own allocations are traced while ``build_plan`` alone runs:
a library four times larger must not need much more. ``bench/planning_memory.py`` gives
the worker process's figures at 10,000 and 100,000 items."""

from __future__ import annotations

import tracemalloc
import uuid
from pathlib import Path

from temporalio.testing import ActivityEnvironment

from activities import RateGate
from activities.library import LibraryActivities
from enforcer.library import read_library
from enforcer.models import (
    BuildPlanRequest,
    LibrarySection,
    PlanOptions,
    PlanResult,
    ScanPlaylistItemsRequest,
    ScanSectionRequest,
)
from enforcer.planner import make_plan
from enforcer.session import spotify_client
from tests.support.contract import ContractRecorder
from tests.workflows._world import USER, World, world

PLAYLIST_SIZE = 30


async def _scan_and_plan(made: World) -> tuple[PlanResult, int]:
    """Scans the world's library into the ledger, then plans it: the plan's result and
    the peak of Python's allocations while it was planned, in bytes."""
    options = PlanOptions()
    gate = RateGate(made.ledger, made.settings.spotify_client_id)
    activities = LibraryActivities(made.settings, made.ledger, gate, transport=made.transport)
    scan_id = f"plan/{USER}/memory/{uuid.uuid4().hex}"
    environment = ActivityEnvironment()
    for section in LibrarySection:
        await environment.run(
            activities.scan_section,
            ScanSectionRequest(scan_id=scan_id, account_id=USER, section=section),
        )
    pages = await made.ledger.scan_pages(scan_id, LibrarySection.PLAYLISTS)
    playlists = sum(len(page) for page in pages)
    for first in range(0, playlists, 100):
        await environment.run(
            activities.scan_playlist_items,
            ScanPlaylistItemsRequest(
                scan_id=scan_id, account_id=USER, options=options, first=first, stop=first + 100
            ),
        )
    tracemalloc.start()
    try:
        result = await environment.run(
            activities.build_plan,
            BuildPlanRequest(scan_id=scan_id, account_id=USER, options=options),
        )
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return result, peak


async def test_planning_memory_does_not_grow_with_the_library(
    tmp_path: Path, contract_recorder: ContractRecorder
) -> None:
    peaks: dict[int, int] = {}
    for liked, playlists in ((1_500, 15), (6_000, 60)):
        async with world(
            tmp_path / str(liked),
            contract_recorder,
            liked_songs=liked,
            playlists=playlists,
            playlist_size=PLAYLIST_SIZE,
            blocked_artists=10,
        ) as made:
            result, peaks[liked] = await _scan_and_plan(made)
            # Planned in slices, the plan is the one a plain read of the library gives.
            async with spotify_client(
                made.settings, made.ledger, USER, transport=made.transport
            ) as client:
                library = await read_library(client, USER, PlanOptions())
            expected = make_plan(
                library, made.blocked, await made.ledger.protect_list(USER), PlanOptions()
            )
            assert result.plan_id == expected.id
            assert await made.ledger.load_plan(result.plan_id) == expected
            assert sum(result.counts.actions.values()) > 0

    small, large = peaks[1_500], peaks[6_000]
    # Four times the library. Held whole, it needed about four times the memory; in
    # slices, what grows is the set of liked songs seen (a repeat adds nothing) and the
    # matcher's cache until it is full.
    assert large < 2 * small, f"peak {small / 2**20:.1f} MB -> {large / 2**20:.1f} MB"
