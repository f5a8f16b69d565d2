"""Planning as a durable workflow: the whole library read through the sandbox, the plan
in the ledger, only IDs and counts in Temporal."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.exceptions import ActivityError

from commands.planning import planning_progress
from enforcer.ledger import Ledger, ledger_url
from enforcer.library import read_library
from enforcer.models import (
    EntityType,
    PlanningProgress,
    PlanOptions,
    PlanRequest,
    PlanResult,
    Policy,
    ScanState,
    ScanStep,
)
from enforcer.planner import make_plan
from enforcer.sandbox import Sandbox, generate_library
from enforcer.session import spotify_client
from tests.support.contract import ContractRecorder
from tests.support.sandbox import sandbox_transport
from tests.workflows._world import USER, World, log_in, settings_for, workers, world
from worker import build_worker
from workflows.planning import PlanningWorkflow, planning_workflow_id


@pytest.fixture
async def big_world(tmp_path: Path, contract_recorder: ContractRecorder) -> AsyncIterator[World]:
    async with world(tmp_path, contract_recorder, liked_songs=50_000, playlists=500) as made:
        yield made


@pytest.fixture
async def small_world(tmp_path: Path, contract_recorder: ContractRecorder) -> AsyncIterator[World]:
    async with world(tmp_path, contract_recorder, liked_songs=500, playlists=5) as made:
        yield made


async def start_planning(
    client: Client, task_queue: str, request: PlanRequest
) -> WorkflowHandle[PlanningWorkflow, PlanResult]:
    """A planning of its own (the account's workflow ID, made unique for the test)."""
    return await client.start_workflow(
        PlanningWorkflow.run,
        request,
        id=f"{planning_workflow_id(USER, request.options)}/{uuid.uuid4().hex}",
        task_queue=task_queue,
    )


async def test_a_50000_song_library_is_planned_whole_and_only_counts_cross_temporal(
    temporal_client: Client,
    task_queue: str,
    big_world: World,
) -> None:
    sandbox = big_world.sandbox
    settings = big_world.settings
    ledger = big_world.ledger
    transport = big_world.transport
    blocked = big_world.blocked
    request = PlanRequest(account_id=USER, options=PlanOptions(policy=Policy.FEATURED))

    async with workers(temporal_client, task_queue, big_world):
        handle = await start_planning(temporal_client, task_queue, request)
        result: PlanResult = await handle.result()

    # Every page was read: the counts are the sandbox's own.
    state = sandbox.dump_user(USER)
    owned = [p for p in state["playlists"] if isinstance(p, dict)]
    assert result.counts.scanned[EntityType.LIKED_SONG] == 50_000
    assert result.counts.scanned[EntityType.SAVED_ALBUM] == len(state["saved_albums"])
    assert result.counts.scanned[EntityType.FOLLOWED_ARTIST] == len(state["followed_artists"])
    assert result.counts.playlists_read == len(owned)
    assert result.counts.scanned[EntityType.PLAYLIST_ITEM] == sum(len(p["items"]) for p in owned)

    # The durable scan plans exactly what a plain read of the library plans.
    async with spotify_client(settings, ledger, USER, transport=transport) as client:
        library = await read_library(client, USER, request.options)
    expected = make_plan(library, blocked, await ledger.protect_list(USER), request.options)
    assert result.plan_id == expected.id
    assert await ledger.load_plan(result.plan_id) == expected

    # Only references crossed Temporal: no event of the history carries the library.
    history = await handle.fetch_history()
    assert max(event.ByteSize() for event in history.events) < 16 * 1024


async def test_planning_twice_at_once_joins_the_running_planning(
    temporal_client: Client,
    task_queue: str,
    small_world: World,
) -> None:
    sandbox = small_world.sandbox
    request = PlanRequest(account_id=USER)
    workflow_id = f"{planning_workflow_id(USER, request.options)}/{uuid.uuid4().hex}"
    async with workers(temporal_client, task_queue, small_world):
        first, second = [
            await temporal_client.start_workflow(
                PlanningWorkflow.run,
                request,
                id=workflow_id,
                task_queue=task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            )
            for _ in range(2)
        ]
        assert first.result_run_id == second.result_run_id
        assert (await first.result()) == (await second.result())
    # One planning ran: Liked Songs were read once, 50 a page.
    assert sandbox.counters.calls["GET /v1/me/tracks"] == 500 // 50


async def test_an_empty_blocklist_fails_the_planning_with_a_clear_reason(
    temporal_client: Client, task_queue: str, tmp_path: Path, contract_recorder: ContractRecorder
) -> None:
    sandbox = Sandbox()
    sandbox.load_fixture(generate_library(seed=1, liked_songs=10, playlists=1, user_id=USER))
    settings = settings_for(tmp_path)
    async with await Ledger.open(ledger_url(settings)) as ledger:
        await log_in(ledger, settings, sandbox.issue_tokens(USER))
        async with build_worker(
            temporal_client,
            settings,
            ledger,
            task_queue=task_queue,
            transport=sandbox_transport(sandbox, contract_recorder),
        ):
            with pytest.raises(WorkflowFailureError) as failure:
                await temporal_client.execute_workflow(
                    PlanningWorkflow.run,
                    PlanRequest(account_id=USER),
                    id=f"{planning_workflow_id(USER, PlanOptions())}/{uuid.uuid4().hex}",
                    task_queue=task_queue,
                )
        refusal = failure.value.cause
        assert isinstance(refusal, ActivityError)
        assert "the blocklist of 'user' is empty" in str(refusal.cause)
        # Refused before a single page of the library was read.
        assert sandbox.counters.calls.get("GET /v1/me/tracks", 0) == 0
        assert await ledger.plans(USER) == []


async def test_a_rate_limited_scan_waits_out_every_429_and_sends_nothing_during_it(
    temporal_client: Client, task_queue: str, small_world: World
) -> None:
    sandbox = small_world.sandbox
    settings = small_world.settings
    ledger = small_world.ledger
    # 8 requests per rolling 2 s: the scan's ~25 requests meet several 429s.
    sandbox.settings.rate_limit_budget = 8
    sandbox.settings.rate_limit_window = 2.0
    request = PlanRequest(account_id=USER)
    async with workers(temporal_client, task_queue, small_world):
        result = await temporal_client.execute_workflow(
            PlanningWorkflow.run,
            request,
            id=f"{planning_workflow_id(USER, request.options)}/{uuid.uuid4().hex}",
            task_queue=task_queue,
        )

    counters = sandbox.counters
    assert counters.rate_limited > 0, "the test must meet rate limits to mean anything"
    assert counters.violations == 0
    assert result.counts.scanned[EntityType.LIKED_SONG] == 500
    # The gate in the ledger held every activity of the app, not just the one refused.
    gate = await ledger.gate(settings.spotify_client_id)
    assert gate.blocked_until is not None


async def test_the_progress_of_a_rate_limited_planning_shows_pages_growing_and_each_wait_end(
    temporal_client: Client, task_queue: str, small_world: World
) -> None:
    """What ``plan`` shows while it waits (``planning_progress``), looked at as it does:
    the pages read grow step by step, every wait for a rate limit names the time the
    gate opens, and the requests and 429s are the ones Spotify received."""
    sandbox = small_world.sandbox
    ledger = small_world.ledger
    # 4 requests per rolling 2 s, then 2 s of penalty: the scan's ~25 requests take a
    # dozen seconds and meet several 429s.
    sandbox.settings.rate_limit_budget = 4
    sandbox.settings.rate_limit_window = 2.0
    sandbox.settings.rate_limit_retry_after = 2
    request = PlanRequest(account_id=USER)
    seen: list[PlanningProgress] = []
    waits: list[tuple[datetime, datetime]] = []  # (shown, the gate's end at that moment)
    async with workers(temporal_client, task_queue, small_world):
        handle = await start_planning(temporal_client, task_queue, request)
        result_task = asyncio.ensure_future(handle.result())
        while not result_task.done():
            progress = await planning_progress(handle, await handle.describe(), ledger)
            if progress is not None:
                seen.append(progress)
                if progress.waiting_until is not None:
                    gate = await ledger.gate(small_world.settings.spotify_client_id)
                    assert gate.blocked_until is not None
                    waits.append((progress.waiting_until, gate.blocked_until))
            await asyncio.wait([result_task], timeout=0.3)
        result = result_task.result()
        final = await planning_progress(handle, await handle.describe(), ledger)

    assert sandbox.counters.rate_limited > 0, "the test must meet rate limits to mean anything"
    assert waits, "a wait for the rate limit was shown"
    for shown, gate_opens in waits:
        # The scan's next attempt is when the gate opens (a retry waits at least 1 s).
        assert abs((shown - gate_opens).total_seconds()) <= 1.5, (shown, gate_opens)

    liked = [p.steps[ScanStep.LIKED_SONGS].pages for p in seen]
    assert liked == sorted(liked), "pages read never go back"
    assert len(set(liked)) >= 4, f"the pages were seen growing, not jumping: {liked}"
    read_in_all = [sum(step.pages for step in p.steps.values()) for p in seen]
    assert read_in_all == sorted(read_in_all)

    assert final is not None
    assert final.plan_id == result.plan_id
    assert all(step.state is ScanState.DONE for step in final.steps.values())
    assert final.steps[ScanStep.LIKED_SONGS].pages == 500 // 50
    assert final.steps[ScanStep.LIKED_SONGS].items == 500
    assert (
        final.steps[ScanStep.PLAYLIST_ENTRIES].items
        == (result.counts.scanned[EntityType.PLAYLIST_ITEM])
    )
    # Every figure shown is what Spotify received.
    assert final.requests == sandbox.counters.total_calls
    assert final.rate_limited == sandbox.counters.rate_limited
    assert final.waiting_until is None
