"""A plan of over 100,000 items, enforced end to end on the dev server: the enforcement
completes in the fewest write calls, the ledger agrees with the library item by item,
and every run stays far inside Temporal's limits (under 10,000 history events, no
payload over 256 KiB), within 100 events per 1,000 items. (It fits one run: continuing
as new is tests/workflows/test_continue_as_new.py's; a rollback's calls and exactness on
the 20,000-song reference library are `make bench`'s, to keep the suite under 15
minutes: the 100,000-item rollback took about 4 of them.)"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.client import Client

from enforcer.models import (
    BatchStatus,
    EnforcementRequest,
    EntityType,
    ItemTally,
)
from tests.support.contract import ContractRecorder
from tests.workflows._batches import (
    assert_library_agrees_with_ledger,
    enforcement_id,
    write_lower_bound,
    writes_counted,
)
from tests.workflows._histories import run_weights
from tests.workflows._plans import store_plan
from tests.workflows._world import USER, World, workers, world
from workflows.enforcement import CHUNKS_PER_ACTIVITY, EnforcementWorkflow

PLAN_ITEMS = 100_000
LIKED_SONGS = 100_000
PLAYLISTS = 40
PLAYLIST_SIZE = 100
ARTISTS = 60
MAX_IN_FLIGHT = 8
EVENTS_PER_RUN_LIMIT = 10_000
EVENTS_PER_1000_ITEMS_LIMIT = 100
"""Measured on 103,888 items: 143 with one activity a chunk (4 runs), 18 with up to 10
chunks an activity (one run of 1,892 events)."""
PAYLOAD_LIMIT = 256 * 1024


@pytest.fixture
async def large_world(tmp_path: Path, contract_recorder: ContractRecorder) -> AsyncIterator[World]:
    """100,000 liked songs, 40 playlists of 100 entries, every artist blocked."""
    async with world(
        tmp_path,
        contract_recorder,
        liked_songs=LIKED_SONGS,
        playlists=PLAYLISTS,
        playlist_size=PLAYLIST_SIZE,
        artists=ARTISTS,
        # Many albums: the sandbox numbers an album's tracks by a list search.
        albums=4_000,
        blocked_artists=ARTISTS,
    ) as made:
        yield made


async def test_a_plan_of_100_000_items_completes_with_every_run_inside_temporals_limits(
    temporal_client: Client, task_queue: str, large_world: World
) -> None:
    started = time.perf_counter()
    plan = await store_plan(large_world)
    planned = time.perf_counter()
    actions = plan.actions
    playlist_items = sum(1 for a in actions if a.entity_type is EntityType.PLAYLIST_ITEM)
    assert len(actions) >= PLAN_ITEMS
    assert playlist_items > 1_000, "the plan must touch many playlists, not only the library"

    sandbox = large_world.sandbox
    sandbox.reset_counters()
    async with workers(temporal_client, task_queue, large_world):
        handle = await temporal_client.start_workflow(
            EnforcementWorkflow.run,
            EnforcementRequest(account_id=USER, plan_id=plan.id, max_in_flight=MAX_IN_FLIGHT),
            id=enforcement_id(plan.id),
            task_queue=task_queue,
        )
        summary = await handle.result()
        enforced = time.perf_counter()
        enforcing = sandbox.counters.model_copy(deep=True)
        after_enforcement = sandbox.dump_user(USER)
        items = await large_world.ledger.action_items(summary.batch_id)

    assert summary.status is BatchStatus.COMPLETED
    assert sum(summary.tallies.values(), ItemTally()) == ItemTally(completed=len(actions))
    assert writes_counted(enforcing.calls) == write_lower_bound(actions)
    assert enforcing.rate_limited == 0
    assert summary.api_calls == enforcing.total_calls

    runs = await run_weights(temporal_client, handle.id, handle.first_execution_run_id or "")
    events_per_1000 = sum(run.events for run in runs) * 1000 / len(actions)
    print(
        f"\n{len(actions):,} items ({playlist_items:,} in playlists), "
        f"{summary.api_calls:,} write calls, {len(runs)} runs, {CHUNKS_PER_ACTIVITY} chunks "
        f"an activity; plan built and stored in {planned - started:.1f} s, enforced in "
        f"{enforced - planned:.1f} s\nevents per run: {[run.events for run in runs]} "
        f"({events_per_1000:.0f} per 1,000 items); "
        f"largest event {max(run.largest_event_bytes for run in runs):,} B, largest "
        f"payload {max(run.largest_payload_bytes for run in runs):,} B"
    )
    assert events_per_1000 <= EVENTS_PER_1000_ITEMS_LIMIT
    assert runs[-1].continued_as is None
    for run in runs:
        assert run.events < EVENTS_PER_RUN_LIMIT, run
        # An event's encoded size bounds every payload in it.
        assert run.largest_event_bytes < PAYLOAD_LIMIT, run

    assert len(items) == len(actions)
    assert_library_agrees_with_ledger(after_enforcement, items)
