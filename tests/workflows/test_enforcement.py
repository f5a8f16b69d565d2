"""Enforcement as a durable workflow, end to end: plan, enforce, and the sandbox's library
and the ledger agree item by item afterwards."""

from __future__ import annotations

import asyncio
import math
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import CancelledError, WorkflowAlreadyStartedError

from enforcer.ledger import ActionItemRecord
from enforcer.models import (
    BatchStatus,
    EnforcementRequest,
    EnforcementSummary,
    EntityType,
    ItemStatus,
    PlanRequest,
    PlanResult,
    SkipReason,
)
from enforcer.sandbox import Faults
from enforcer.session import token_store
from enforcer.spotify.auth import utc_now
from tests.support.contract import ContractRecorder
from tests.workflows._world import USER, World, log_in, workers, world
from workflows.enforcement import EnforcementWorkflow, enforcement_workflow_id
from workflows.planning import PlanningWorkflow, planning_workflow_id
from workflows.search_attributes import ENFORCEMENT_STATUS

LIBRARY_WRITES = ("DELETE /v1/me/library", "DELETE /v1/me/tracks", "DELETE /v1/me/albums")
PLAYLIST_WRITES = (
    "DELETE /v1/playlists/{playlist_id}/items",
    "DELETE /v1/playlists/{playlist_id}/tracks",
)


@pytest.fixture
async def smaller_world(
    tmp_path: Path, contract_recorder: ContractRecorder
) -> AsyncIterator[World]:
    """About 200 blocked liked songs and blocked items in 10 playlists: ~35 chunks."""
    async with world(
        tmp_path, contract_recorder, liked_songs=1_000, playlists=10, blocked_artists=40
    ) as made:
        yield made


@pytest.fixture
async def library_world(
    tmp_path: Path, contract_recorder: ContractRecorder
) -> AsyncIterator[World]:
    """About 400 blocked liked songs, blocked items in 20 playlists, albums, artists."""
    async with world(
        tmp_path, contract_recorder, liked_songs=2_000, playlists=20, blocked_artists=40
    ) as made:
        yield made


async def plan_of(client: Client, task_queue: str, made: World) -> PlanResult:
    request = PlanRequest(account_id=USER)
    return await client.execute_workflow(
        PlanningWorkflow.run,
        request,
        id=f"{planning_workflow_id(USER, request.options)}/{uuid.uuid4().hex}",
        task_queue=task_queue,
    )


async def start_enforcement(
    client: Client, task_queue: str, plan_id: str, *, max_in_flight: int = 4
) -> WorkflowHandle[EnforcementWorkflow, EnforcementSummary]:
    return await client.start_workflow(
        EnforcementWorkflow.run,
        EnforcementRequest(account_id=USER, plan_id=plan_id, max_in_flight=max_in_flight),
        # A run of its own per test: the dev server outlives the test's ledger.
        id=f"{enforcement_workflow_id(USER, plan_id)}/{uuid.uuid4().hex}",
        task_queue=task_queue,
    )


def writes(made: World, endpoints: tuple[str, ...]) -> int:
    return sum(made.sandbox.counters.calls.get(endpoint, 0) for endpoint in endpoints)


async def items_of(made: World, batch_id: str) -> list[ActionItemRecord]:
    return await made.ledger.action_items(batch_id)


def assert_library_agrees_with_ledger(made: World, items: list[ActionItemRecord]) -> None:
    """Every item the ledger calls completed is gone from the sandbox, and every item
    it left is still there."""
    sandbox = made.sandbox
    state = sandbox.dump_user(USER)
    liked = {song["track_id"] for song in state["liked_songs"]}
    albums = {album["album_id"] for album in state["saved_albums"]}
    artists = set(state["followed_artists"])
    playlists = {
        playlist["id"]: {item.get("uri") for item in playlist["items"]}
        for playlist in state["playlists"]
        if isinstance(playlist, dict)
    }
    for item in items:
        present = {
            EntityType.LIKED_SONG: lambda i: i.entity_id in liked,
            EntityType.SAVED_ALBUM: lambda i: i.entity_id in albums,
            EntityType.FOLLOWED_ARTIST: lambda i: i.entity_id in artists,
            EntityType.PLAYLIST_ITEM: lambda i: i.uri in playlists[i.container_id],
        }[item.entity_type](item)
        assert present == (item.status is not ItemStatus.COMPLETED), (item.key, item.status)


async def eventually(check: Callable[[], Awaitable[bool]], what: str, within: float = 30) -> None:
    for _ in range(int(within / 0.05)):
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"waited {within} s for {what}")


async def test_a_plan_is_enforced_in_the_fewest_calls_and_the_ledger_agrees(
    temporal_client: Client, task_queue: str, library_world: World
) -> None:
    ledger = library_world.ledger
    async with workers(temporal_client, task_queue, library_world):
        plan = await plan_of(temporal_client, task_queue, library_world)
        handle = await start_enforcement(temporal_client, task_queue, plan.plan_id)
        summary = await handle.result()

    actions = await ledger.plan_actions(plan.plan_id)
    library_uris = sum(1 for a in actions if a.entity_type is not EntityType.PLAYLIST_ITEM)
    per_playlist = Counter(a.container_id for a in actions if a.container_id is not None)
    lower_bound = math.ceil(library_uris / 40) + sum(
        math.ceil(uris / 100) for uris in per_playlist.values()
    )
    assert library_uris > 80, "the plan must need several library chunks"
    assert len(per_playlist) > 1, "the plan must touch several playlists"
    assert writes(library_world, LIBRARY_WRITES) + writes(library_world, PLAYLIST_WRITES) == (
        lower_bound
    )
    assert summary.status is BatchStatus.COMPLETED
    assert summary.legacy_operations == ()
    assert sum(t.completed for t in summary.tallies.values()) == len(actions)
    assert summary.api_calls == lower_bound

    items = await items_of(library_world, summary.batch_id)
    assert {item.status for item in items} == {ItemStatus.COMPLETED}
    assert_library_agrees_with_ledger(library_world, items)
    assert (await ledger.batch(summary.batch_id)).status is BatchStatus.COMPLETED


async def test_the_same_plan_started_twice_at_once_runs_once(
    temporal_client: Client, task_queue: str, library_world: World
) -> None:
    async with workers(temporal_client, task_queue, library_world):
        plan = await plan_of(temporal_client, task_queue, library_world)
        workflow_id = f"{enforcement_workflow_id(USER, plan.plan_id)}/{uuid.uuid4().hex}"
        request = EnforcementRequest(account_id=USER, plan_id=plan.plan_id)

        async def start() -> WorkflowHandle[EnforcementWorkflow, EnforcementSummary]:
            return await temporal_client.start_workflow(
                EnforcementWorkflow.run,
                request,
                id=workflow_id,
                task_queue=task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            )

        first, second = await asyncio.gather(start(), start())
        assert first.result_run_id == second.result_run_id
        first_summary, second_summary = await asyncio.gather(first.result(), second.result())
        written = writes(library_world, LIBRARY_WRITES + PLAYLIST_WRITES)

        with pytest.raises(WorkflowAlreadyStartedError):
            await start()
        again = await temporal_client.get_workflow_handle_for(
            EnforcementWorkflow.run, workflow_id
        ).result()

    assert first_summary == second_summary == again
    assert writes(library_world, LIBRARY_WRITES + PLAYLIST_WRITES) == written


async def test_429s_with_chunks_in_flight_never_meet_a_request_during_the_penalty(
    temporal_client: Client, task_queue: str, smaller_world: World
) -> None:
    sandbox = smaller_world.sandbox
    async with workers(temporal_client, task_queue, smaller_world):
        plan = await plan_of(temporal_client, task_queue, smaller_world)
        # Now a tight rolling window: 6 requests a second, while 6 chunks are in flight.
        sandbox.settings.rate_limit_budget = 6
        sandbox.settings.rate_limit_window = 1.0
        sandbox.reset_counters()
        handle = await start_enforcement(temporal_client, task_queue, plan.plan_id, max_in_flight=6)
        summary = await handle.result()

    assert sandbox.counters.rate_limited > 0, "the test must meet rate limits to mean anything"
    assert sandbox.counters.violations == 0
    assert summary.status is BatchStatus.COMPLETED
    assert summary.rate_limit_waits > 0
    assert summary.rate_limit_wait_seconds > 0
    assert_library_agrees_with_ledger(
        smaller_world, await items_of(smaller_world, summary.batch_id)
    )


async def test_a_revoked_login_parks_the_batch_until_a_new_login_and_resume(
    temporal_client: Client, task_queue: str, library_world: World
) -> None:
    sandbox = library_world.sandbox
    settings = library_world.settings
    ledger = library_world.ledger
    async with workers(temporal_client, task_queue, library_world):
        plan = await plan_of(temporal_client, task_queue, library_world)
        # The person revoked the app: the stored access token has expired and the
        # refresh token no longer works.
        stored = await token_store(ledger, settings).load(USER)
        await token_store(ledger, settings).save(
            USER, stored.model_copy(update={"expires_at": utc_now() - timedelta(hours=1)})
        )
        sandbox.revoke_refresh_tokens(USER)
        handle = await start_enforcement(temporal_client, task_queue, plan.plan_id)

        async def parked() -> bool:
            progress = await handle.query(EnforcementWorkflow.progress)
            return progress.status is BatchStatus.WAITING_FOR_LOGIN

        await eventually(parked, "the batch to wait for a new login")
        batch_id = (await handle.query(EnforcementWorkflow.progress)).batch_id

        async def recorded() -> bool:
            # The ledger hears of it right after the workflow: a status activity.
            return (await ledger.batch(batch_id)).status is BatchStatus.WAITING_FOR_LOGIN

        await eventually(recorded, "the ledger to record the wait for a new login")

        await log_in(ledger, settings, sandbox.issue_tokens(USER))
        await handle.signal(EnforcementWorkflow.resume)
        summary = await handle.result()

    assert summary.status is BatchStatus.COMPLETED
    items = await items_of(library_world, summary.batch_id)
    assert {item.status for item in items} == {ItemStatus.COMPLETED}
    assert_library_agrees_with_ledger(library_world, items)


@pytest.mark.parametrize("cancelled_by", ["signal", "update", "temporal"])
async def test_a_cancelled_batch_ends_canceled_after_its_chunks_in_flight_and_its_ledger(
    temporal_client: Client, task_queue: str, smaller_world: World, cancelled_by: str
) -> None:
    """The ``cancel`` signal or update, or Temporal's own cancellation (what `temporal
    workflow cancel` and the Web UI's button send): no new chunks, the ones in flight
    finish, the rest is skipped, the ledger is final, the turn is free, and the execution
    ends Canceled in Temporal, its status everywhere ``cancelled``."""
    async with workers(temporal_client, task_queue, smaller_world):
        handle = await slow_batch_under_way(
            temporal_client, task_queue, smaller_world, chunks_done=2
        )
        if cancelled_by == "signal":
            await handle.signal(EnforcementWorkflow.cancel)
        elif cancelled_by == "update":
            answer = await handle.execute_update("cancel", result_type=BatchStatus)
            assert answer is BatchStatus.RUNNING  # cancelling: the chunks in flight finish
        else:
            await handle.cancel()
        with pytest.raises(WorkflowFailureError) as ended:
            await handle.result()
        described = await handle.describe()
        progress = await handle.query(EnforcementWorkflow.progress)

    assert isinstance(ended.value.cause, CancelledError)
    assert described.status is WorkflowExecutionStatus.CANCELED
    assert described.typed_search_attributes[ENFORCEMENT_STATUS] == "cancelled"
    assert progress.status is BatchStatus.CANCELLED
    assert progress.eta_seconds is None
    recorded = await smaller_world.ledger.batch(handle.id)
    assert recorded.status is BatchStatus.CANCELLED
    assert recorded.summary is not None
    summary = EnforcementSummary.model_validate(recorded.summary)
    assert summary.status is BatchStatus.CANCELLED
    items = await items_of(smaller_world, handle.id)
    statuses = Counter(item.status for item in items)
    assert set(statuses) == {ItemStatus.COMPLETED, ItemStatus.SKIPPED}, statuses
    assert all(
        item.error == "the batch was cancelled"
        for item in items
        if item.status is ItemStatus.SKIPPED
    )
    # The counts add up: each planned item removed, failed or skipped, once.
    assert {
        kind: tally.completed + tally.failed + tally.skipped
        for kind, tally in summary.tallies.items()
    } == summary.totals
    assert (
        sum(tally.completed for tally in summary.tallies.values()) == statuses[ItemStatus.COMPLETED]
    )
    # A skipped item is not an error.
    assert summary.errors == ()
    skipped = statuses[ItemStatus.SKIPPED]
    assert summary.skipped == (SkipReason(reason="the batch was cancelled", items=skipped),)
    assert_library_agrees_with_ledger(smaller_world, items)
    # The account's turn was given up: its next batch need not wait.
    assert await smaller_world.ledger.take_turn(USER, "the next batch") == "the next batch"


async def test_pause_holds_new_chunks_until_resume(
    temporal_client: Client, task_queue: str, smaller_world: World
) -> None:
    async with workers(temporal_client, task_queue, smaller_world):
        handle = await slow_batch_under_way(
            temporal_client, task_queue, smaller_world, chunks_done=1
        )
        await handle.signal(EnforcementWorkflow.pause)
        # The activity in flight hears of the pause at its next heartbeat (sent at most
        # every second), finishes the chunk in hand and reports the chunks it did.
        await asyncio.sleep(2.0)
        held = (await handle.query(EnforcementWorkflow.progress)).chunks_done
        in_progress = await smaller_world.ledger.action_items(
            handle.id, status=ItemStatus.IN_PROGRESS
        )
        await asyncio.sleep(1.5)
        progress = await handle.query(EnforcementWorkflow.progress)
        assert progress.status is BatchStatus.PAUSED
        assert progress.chunks_done == held
        assert in_progress == [], "a chunk was left half done"
        await handle.signal(EnforcementWorkflow.resume)
        summary = await handle.result()

    assert summary.status is BatchStatus.COMPLETED


async def slow_batch_under_way(
    client: Client, task_queue: str, made: World, *, chunks_done: int
) -> WorkflowHandle[EnforcementWorkflow, EnforcementSummary]:
    """A batch under way, ``chunks_done`` chunks or more of it done: every request takes
    a while and one chunk runs at a time, so a test can act while the batch runs."""
    plan = await plan_of(client, task_queue, made)
    made.sandbox.set_faults(Faults(seed=1, latency_ms=150))
    handle = await start_enforcement(client, task_queue, plan.plan_id, max_in_flight=1)

    async def started() -> bool:
        return (await handle.query(EnforcementWorkflow.progress)).chunks_done >= chunks_done

    await eventually(started, f"{chunks_done} chunk(s) to be done")
    return handle
