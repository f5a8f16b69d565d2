"""The rollback saga end to end: plan, enforce, roll back, and the sandbox's library is
what it was before, item for item, playlists in order with their duplicates."""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

import httpx
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import ApplicationError, CancelledError
from temporalio.service import RPCError

from enforcer.ledger import ActionItemRecord, LedgerError, UnknownBatch
from enforcer.models import (
    BatchKind,
    BatchStatus,
    EnforcementSummary,
    EntityType,
    ItemStatus,
    PlanOptions,
    Policy,
    RollbackRequest,
    RollbackSummary,
    SkipReason,
)
from enforcer.sandbox import Faults
from tests.support.contract import ContractRecorder, SpotifyContract
from tests.workflows._saga import (
    enforce,
    library_of,
    plan,
    roll_back,
    small_library,
    start_enforcing,
    statuses,
    world_of,
    writes,
)
from tests.workflows._world import USER, World, workers
from workflows.enforcement import EnforcementWorkflow
from workflows.rollback import RollbackWorkflow, rollback_workflow_id
from workflows.search_attributes import ENFORCEMENT_ACCOUNT, ENFORCEMENT_STATUS


@pytest.fixture
async def made(tmp_path: Path, contract_recorder: ContractRecorder) -> AsyncIterator[World]:
    async with world_of(tmp_path, contract_recorder, small_library(), blocked_artists=8) as w:
        yield w


def test_the_workflow_id_names_the_batch_and_hashes_the_selection() -> None:
    assert rollback_workflow_id("enforce/a/p") == "rollback/enforce/a/p"
    chosen = rollback_workflow_id("enforce/a/p", ("k2", "k1", "k2"))
    assert chosen == rollback_workflow_id("enforce/a/p", ("k1", "k2"))
    assert chosen.startswith("rollback/enforce/a/p/")
    assert len(chosen.rsplit("/", 1)[1]) == 16
    assert chosen != rollback_workflow_id("enforce/a/p", ("k1",))


async def test_a_whole_batch_rolled_back_leaves_the_library_as_it_was(
    temporal_client: Client, task_queue: str, made: World
) -> None:
    before = library_of(made.sandbox)
    async with workers(temporal_client, task_queue, made):
        enforced = await enforce(temporal_client, task_queue)
        assert library_of(made.sandbox) != before
        removed = await statuses(made.ledger, enforced.batch_id)
        summary = await roll_back(temporal_client, task_queue, enforced.batch_id)

    assert library_of(made.sandbox) == before
    assert summary.status is BatchStatus.COMPLETED
    assert summary.failed == ()
    assert summary.not_restored_exactly == ()
    completed = [key for key, status in removed.items() if status is ItemStatus.COMPLETED]
    assert sum(summary.restored.values()) == len(completed)
    assert set(summary.restored) == {
        EntityType.LIKED_SONG,
        EntityType.PLAYLIST_ITEM,
        EntityType.SAVED_ALBUM,
        EntityType.FOLLOWED_ARTIST,
    }
    after = await statuses(made.ledger, enforced.batch_id)
    assert {after[key] for key in completed} == {ItemStatus.ROLLED_BACK}
    rollback = await made.ledger.batch(summary.batch_id)
    assert (rollback.kind, rollback.rollback_of) == (BatchKind.ROLLBACK, enforced.batch_id)
    assert rollback.status is BatchStatus.COMPLETED
    assert (await made.ledger.batch(enforced.batch_id)).status is BatchStatus.ROLLED_BACK
    restores = await made.ledger.action_items(summary.batch_id)
    assert {item.key.removesuffix(":restore") + ":remove" for item in restores} == set(completed)
    assert {item.status for item in restores} == {ItemStatus.COMPLETED}


async def test_the_rollback_signal_stops_a_running_batch_and_restores_what_it_removed(
    temporal_client: Client, task_queue: str, made: World
) -> None:
    before = library_of(made.sandbox)
    async with workers(temporal_client, task_queue, made):
        plan_id = await plan(temporal_client, task_queue)
        # Slow calls, one at a time: the batch is still running when the signal comes.
        made.sandbox.set_faults(Faults(seed=1, latency_ms=200))
        handle = await start_enforcing(temporal_client, task_queue, plan_id, max_in_flight=1)
        # The ledger says what is removed chunk by chunk (the progress query learns it
        # when an activity of several chunks ends).
        items: list[ActionItemRecord] = []
        ended: list[ActionItemRecord] = []
        for _ in range(600):
            with contextlib.suppress(UnknownBatch):  # not created yet
                items = await made.ledger.action_items(handle.id)
            ended = [item for item in items if item.status is ItemStatus.COMPLETED]
            if ended:
                break
            await asyncio.sleep(0.05)
        assert 1 <= len(ended) < len(items), "signal a running batch"
        await handle.signal(EnforcementWorkflow.rollback)
        summary = await handle.result()

    assert summary.status is BatchStatus.ROLLED_BACK
    assert library_of(made.sandbox) == before
    items = await made.ledger.action_items(summary.batch_id)
    assert {item.status for item in items} <= {ItemStatus.ROLLED_BACK, ItemStatus.SKIPPED}
    assert (await made.ledger.batch(summary.batch_id)).status is BatchStatus.ROLLED_BACK


async def batch_under_way(
    client: Client, task_queue: str, made: World
) -> WorkflowHandle[EnforcementWorkflow, EnforcementSummary]:
    """A batch that has removed an item and has more to go: slow calls, one at a time,
    so that it still runs when the test acts on it."""
    plan_id = await plan(client, task_queue)
    made.sandbox.set_faults(Faults(seed=1, latency_ms=200))
    handle = await start_enforcing(client, task_queue, plan_id, max_in_flight=1)
    for _ in range(600):
        with contextlib.suppress(UnknownBatch):  # not created yet
            if await made.ledger.action_items(handle.id, status=ItemStatus.COMPLETED):
                return handle
        await asyncio.sleep(0.05)
    raise AssertionError(f"{handle.id} removed nothing within 30 s")


async def test_a_compensation_cancelled_by_temporal_leaves_every_view_agreeing(
    temporal_client: Client, task_queue: str, made: World
) -> None:
    """The rollback a running batch's ``rollback`` control started is cancelled through
    Temporal: it ends Canceled, the enforcement learns from the ledger what it put back,
    and the enforcement's end, its ledger record and its result agree."""
    async with workers(temporal_client, task_queue, made):
        handle = await batch_under_way(temporal_client, task_queue, made)
        await handle.signal(EnforcementWorkflow.rollback)
        child = temporal_client.get_workflow_handle(rollback_workflow_id(handle.id))
        for _ in range(600):
            with contextlib.suppress(RPCError):  # not started yet
                if (await child.describe()).status is WorkflowExecutionStatus.RUNNING:
                    break
            await asyncio.sleep(0.05)
        await child.cancel()
        summary: EnforcementSummary | None = None
        ended_by: BaseException | None = None
        try:
            summary = await handle.result()
        except WorkflowFailureError as error:
            ended_by = error.cause
        described = await handle.describe()
        child_described = await child.describe()

    assert child_described.status is WorkflowExecutionStatus.CANCELED
    recorded = await made.ledger.batch(handle.id)
    back = (await made.ledger.item_counts(handle.id))[ItemStatus.ROLLED_BACK]
    if back:  # something was put back: what became of the batch, Completed in Temporal
        assert summary is not None
        assert recorded.status is summary.status
        assert summary.status in (BatchStatus.ROLLED_BACK, BatchStatus.PARTLY_ROLLED_BACK)
        assert described.status is WorkflowExecutionStatus.COMPLETED
    else:  # nothing back: the batch stays cancelled, Canceled in Temporal
        assert isinstance(ended_by, CancelledError), ended_by
        assert recorded.status is BatchStatus.CANCELLED
        assert described.status is WorkflowExecutionStatus.CANCELED
    assert described.typed_search_attributes[ENFORCEMENT_STATUS] == recorded.status.value


async def test_an_atomic_batch_with_a_failed_item_is_rolled_back_whole(
    temporal_client: Client, task_queue: str, made: World
) -> None:
    before = library_of(made.sandbox)
    async with workers(temporal_client, task_queue, made):
        plan_id = await plan(temporal_client, task_queue)
        # Spotify refuses every playlist removal: those items end failed.
        made.sandbox.settings.closed_endpoints = {"DELETE /v1/playlists/{playlist_id}/items": 400}
        handle = await start_enforcing(temporal_client, task_queue, plan_id, atomic=True)
        summary = await handle.result()
        made.sandbox.settings.closed_endpoints = {}

    assert summary.tallies[EntityType.PLAYLIST_ITEM].failed > 0
    assert summary.status is BatchStatus.ROLLED_BACK
    assert library_of(made.sandbox) == before


async def test_chosen_items_are_restored_and_nothing_else(
    temporal_client: Client, task_queue: str, made: World
) -> None:
    before = library_of(made.sandbox)
    async with workers(temporal_client, task_queue, made):
        enforced = await enforce(temporal_client, task_queue)
        after_enforcement = library_of(made.sandbox)
        items = await made.ledger.action_items(enforced.batch_id, status=ItemStatus.COMPLETED)
        song = next(i for i in items if i.entity_type is EntityType.LIKED_SONG)
        album = next(i for i in items if i.entity_type is EntityType.SAVED_ALBUM)
        # Two items of one playlist, with a removed item of it left out between them.
        playlist_items = [i for i in items if i.container_id == _busiest_playlist(items)]
        chosen_in_playlist = playlist_items[::2]
        chosen = (song.key, album.key, *(i.key for i in chosen_in_playlist))
        summary = await roll_back(temporal_client, task_queue, enforced.batch_id, chosen)

    assert summary.restored == {
        EntityType.LIKED_SONG: 1,
        EntityType.SAVED_ALBUM: 1,
        EntityType.PLAYLIST_ITEM: len(chosen_in_playlist),
    }
    now = library_of(made.sandbox)
    assert now["liked_songs"] == sorted(
        [
            *after_enforcement["liked_songs"],
            *(s for s in before["liked_songs"] if s[0] == song.entity_id),
        ],
        key=lambda s: before["liked_songs"].index(s),
    )
    assert now["saved_albums"] == sorted([*after_enforcement["saved_albums"], album.entity_id])
    assert now["followed_artists"] == after_enforcement["followed_artists"]
    playlist_id = chosen_in_playlist[0].container_id
    assert playlist_id is not None
    left_out = {i.uri for i in playlist_items} - {i.uri for i in chosen_in_playlist}
    assert now["playlists"][playlist_id] == [
        uri for uri in before["playlists"][playlist_id] if uri not in left_out
    ]
    for other, entries in now["playlists"].items():
        if other != playlist_id:
            assert entries == after_enforcement["playlists"][other]
    after = await statuses(made.ledger, enforced.batch_id)
    assert {key for key, status in after.items() if status is ItemStatus.ROLLED_BACK} == set(chosen)
    assert (await made.ledger.batch(enforced.batch_id)).status is BatchStatus.PARTLY_ROLLED_BACK

    # The rest later: the items back already count as kept, and the library is whole.
    async with workers(temporal_client, task_queue, made):
        rest = await roll_back(temporal_client, task_queue, enforced.batch_id)
    assert rest.nothing_to_undo == len(chosen)
    assert library_of(made.sandbox) == before
    assert (await made.ledger.batch(enforced.batch_id)).status is BatchStatus.ROLLED_BACK


def _busiest_playlist(items: list[Any]) -> str:
    counts: dict[str, int] = {}
    for item in items:
        if item.container_id is not None:
            counts[item.container_id] = counts.get(item.container_id, 0) + 1
    return max(counts, key=lambda playlist: counts[playlist])


async def test_rolling_back_twice_changes_nothing_the_second_time(
    temporal_client: Client, task_queue: str, made: World
) -> None:
    before = library_of(made.sandbox)
    async with workers(temporal_client, task_queue, made):
        enforced = await enforce(temporal_client, task_queue)
        first = await roll_back(temporal_client, task_queue, enforced.batch_id)
        writes_after_first = writes(made.sandbox)
        second = await roll_back(temporal_client, task_queue, enforced.batch_id)

    assert writes(made.sandbox) == writes_after_first
    assert library_of(made.sandbox) == before
    assert sum(first.restored.values()) > 0
    assert second.restored == {}
    assert second.totals == {}
    assert second.batch_id == f"{first.batch_id}#2"
    assert second.nothing_to_undo == sum(first.totals.values()) + first.nothing_to_undo
    assert (await made.ledger.batch(second.batch_id)).rollback_of == enforced.batch_id


class AppliedThenLost(httpx.AsyncBaseTransport):
    """The hook for a worker that dies after Spotify accepted a call: the first insert
    into each playlist reaches the sandbox and is applied, then the client hears 503,
    so the activity cannot know, fails, and runs again."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self._inner = inner
        self.lost: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        path = request.url.path
        inserted = request.method == "POST" and "/playlists/" in path
        if inserted and response.status_code == 201 and path not in self.lost:
            await response.aread()
            self.lost.append(path)
            return httpx.Response(
                503, json={"error": {"status": 503, "message": "lost"}}, request=request
            )
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


async def test_an_insert_applied_but_never_acknowledged_is_not_sent_again(
    temporal_client: Client, task_queue: str, made: World
) -> None:
    before = library_of(made.sandbox)
    async with workers(temporal_client, task_queue, made):
        enforced = await enforce(temporal_client, task_queue)
    hooked = AppliedThenLost(made.transport)
    lossy = replace(made, transport=hooked)
    async with workers(temporal_client, task_queue, lossy):
        summary = await roll_back(temporal_client, task_queue, enforced.batch_id)

    assert hooked.lost, "the hook never fired"
    assert summary.calls_found_applied == len(hooked.lost)
    assert library_of(made.sandbox) == before
    assert summary.failed == ()


async def test_a_cancelled_rollback_restores_nothing_more_and_says_so(
    temporal_client: Client, task_queue: str, made: World
) -> None:
    async with workers(temporal_client, task_queue, made):
        enforced = await enforce(temporal_client, task_queue)
        after_enforcement = library_of(made.sandbox)
        handle = await temporal_client.start_workflow(
            RollbackWorkflow.run,
            RollbackRequest(account_id=USER, batch_id=enforced.batch_id),
            id=rollback_workflow_id(enforced.batch_id),
            task_queue=task_queue,
            start_signal="cancel",
        )
        with pytest.raises(WorkflowFailureError) as ended:
            await handle.result()
        progress = await handle.query(RollbackWorkflow.progress)
        described = await handle.describe()

    # It ends Canceled in Temporal; its summary is the ledger's.
    assert isinstance(ended.value.cause, CancelledError)
    assert described.status is WorkflowExecutionStatus.CANCELED
    recorded = await made.ledger.batch(progress.batch_id)
    assert recorded.summary is not None
    summary = RollbackSummary.model_validate(recorded.summary)
    assert recorded.status is summary.status is BatchStatus.CANCELLED
    assert summary.restored == {}
    assert writes(made.sandbox) == 0
    assert library_of(made.sandbox) == after_enforcement
    assert progress.status is BatchStatus.CANCELLED
    assert progress.chunks_done == 0
    assert described.typed_search_attributes[ENFORCEMENT_STATUS] == "cancelled"
    assert described.typed_search_attributes[ENFORCEMENT_ACCOUNT] == USER
    rollback_items = await made.ledger.action_items(summary.batch_id)
    assert {(i.status, i.error) for i in rollback_items} == {
        (ItemStatus.SKIPPED, "the rollback was cancelled")
    }
    # Skipped, not failed: the restores not made are counted under their reason.
    assert summary.failed == ()
    assert summary.skipped == (
        SkipReason(reason="the rollback was cancelled", items=len(rollback_items)),
    )
    originals = await statuses(made.ledger, enforced.batch_id)
    assert ItemStatus.ROLLED_BACK not in originals.values()


async def test_a_batch_cancelled_by_temporal_is_rolled_back_exactly(
    temporal_client: Client, task_queue: str, made: World
) -> None:
    """`temporal workflow cancel` stops a batch half way; its rollback still puts back
    exactly what it removed, where it was."""
    before = library_of(made.sandbox)
    async with workers(temporal_client, task_queue, made):
        handle = await batch_under_way(temporal_client, task_queue, made)
        await handle.cancel()
        with pytest.raises(WorkflowFailureError):
            await handle.result()
        made.sandbox.set_faults(Faults())
        assert (await handle.describe()).status is WorkflowExecutionStatus.CANCELED
        removed = await statuses(made.ledger, handle.id)
        summary = await roll_back(temporal_client, task_queue, handle.id)

    assert ItemStatus.SKIPPED in removed.values(), "cancel a batch under way"
    completed = [key for key, status in removed.items() if status is ItemStatus.COMPLETED]
    assert 1 <= len(completed) == sum(summary.restored.values())
    assert summary.status is BatchStatus.COMPLETED
    assert library_of(made.sandbox) == before
    assert (await made.ledger.batch(handle.id)).status is BatchStatus.ROLLED_BACK


async def test_bad_input_is_refused_by_name_and_changes_nothing(
    temporal_client: Client, task_queue: str, made: World
) -> None:
    async with workers(temporal_client, task_queue, made):
        enforced = await enforce(temporal_client, task_queue, PlanOptions(policy=Policy.PRIMARY))
        other = await enforce(temporal_client, task_queue)
        rollback = await roll_back(
            temporal_client, task_queue, enforced.batch_id, (await _first_key(made, enforced),)
        )
        library = library_of(made.sandbox)
        states = {
            batch: await statuses(made.ledger, batch)
            for batch in (enforced.batch_id, other.batch_id, rollback.batch_id)
        }
        running = f"{enforced.batch_id}/still-running"
        await made.ledger.create_batch(
            running, account_id=USER, plan_id=enforced.plan_id, kind=BatchKind.ENFORCE, options={}
        )
        await made.ledger.set_batch_status(running, BatchStatus.RUNNING)
        writes_before = writes(made.sandbox)
        foreign = await _first_key(made, other)
        cases = {
            running: (None, "is still running"),
            "enforce/user/no-such-plan": (None, "no-such-plan"),
            enforced.batch_id: (("no:such:key", foreign), "no:such:key"),
            rollback.batch_id: (None, "a rollback cannot be rolled back"),
        }
        for batch_id, (keys, expected) in cases.items():
            with pytest.raises(WorkflowFailureError) as failure:
                await roll_back(temporal_client, task_queue, batch_id, keys)
            cause = failure.value.cause
            assert isinstance(cause, ApplicationError), cause
            assert expected in cause.message
            assert cause.type == "Refused"
        with pytest.raises(WorkflowFailureError) as failure:
            await roll_back(temporal_client, task_queue, enforced.batch_id, (foreign,))
        assert foreign in str(failure.value.cause)

    assert library_of(made.sandbox) == library
    assert writes(made.sandbox) == writes_before
    for batch, items in states.items():
        assert await statuses(made.ledger, batch) == items
    with pytest.raises(LedgerError):
        await made.ledger.batch(rollback_workflow_id(rollback.batch_id))


async def _first_key(made: World, summary: EnforcementSummary) -> str:
    items = await made.ledger.action_items(summary.batch_id, status=ItemStatus.COMPLETED)
    return items[0].key


async def test_without_the_legacy_endpoint_liked_songs_come_back_undated_and_named(
    temporal_client: Client, task_queue: str, made: World
) -> None:
    before = library_of(made.sandbox)
    async with workers(temporal_client, task_queue, made):
        enforced = await enforce(temporal_client, task_queue)
        made.sandbox.settings.legacy_endpoints = "forbidden"
        summary = await roll_back(temporal_client, task_queue, enforced.batch_id)

    now = library_of(made.sandbox)
    songs = await made.ledger.action_items(enforced.batch_id, status=ItemStatus.ROLLED_BACK)
    liked = {
        item.key: item.entity_id for item in songs if item.entity_type is EntityType.LIKED_SONG
    }
    assert liked
    named = {
        entry.key.removesuffix(":restore") + ":remove" for entry in summary.not_restored_exactly
    }
    assert named == set(liked)
    assert summary.not_restored_exactly_omitted == 0
    assert all("order/date lost" in entry.why for entry in summary.not_restored_exactly)
    assert summary.restored[EntityType.LIKED_SONG] == len(liked)
    # Back, all of them, on top and dated today (their order among themselves is up to
    # how Spotify orders the URIs of one save: the summary says it is lost).
    assert sorted(t for t, _ in now["liked_songs"]) == sorted(t for t, _ in before["liked_songs"])
    restored_on_top = [track for track, _ in now["liked_songs"][: len(liked)]]
    assert set(restored_on_top) == set(liked.values())
    dates_before = dict(before["liked_songs"])
    assert all(at != dates_before[t] for t, at in now["liked_songs"][: len(liked)])
    # Everything else comes back exactly.
    assert now["playlists"] == before["playlists"]
    assert now["saved_albums"] == before["saved_albums"]
    assert now["followed_artists"] == before["followed_artists"]


@settings(
    max_examples=12,
    deadline=None,
    database=None,
    # Hypothesis's explain phase traces every line: minutes on a workflow test.
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    seed=st.integers(min_value=0, max_value=10_000),
    blocked=st.integers(min_value=1, max_value=12),
    policy=st.sampled_from(list(Policy)),
    sizes=st.fixed_dictionaries(
        {
            "liked_songs": st.integers(min_value=0, max_value=60),
            "playlists": st.integers(min_value=0, max_value=4),
            "playlist_size": st.integers(min_value=0, max_value=60),
            "saved_albums": st.integers(min_value=0, max_value=10),
            "followed_artists": st.integers(min_value=0, max_value=8),
            "duplicate_rate": st.sampled_from([0.0, 0.1, 0.3]),
        }
    ),
    legacy_endpoints=st.sampled_from(["working", "forbidden"]),
)
async def test_any_library_is_back_as_it_was_after_enforcing_and_rolling_back(
    temporal_client: Client,
    spotify_contract: SpotifyContract,
    seed: int,
    blocked: int,
    policy: Policy,
    sizes: dict[str, Any],
    legacy_endpoints: Literal["working", "forbidden"],
) -> None:
    recorder = ContractRecorder(spotify_contract)
    task_queue = f"tq-rollback-property-{uuid.uuid4().hex}"
    library = small_library(seed, artists=20, **sizes)
    with tempfile.TemporaryDirectory() as data_dir:
        async with world_of(Path(data_dir), recorder, library, blocked) as made:
            before = library_of(made.sandbox)
            async with workers(temporal_client, task_queue, made):
                enforced = await enforce(temporal_client, task_queue, PlanOptions(policy=policy))
                made.sandbox.settings.legacy_endpoints = legacy_endpoints
                summary = await roll_back(temporal_client, task_queue, enforced.batch_id)
            now = library_of(made.sandbox)
            undated = {
                item.entity_id
                for item in await made.ledger.action_items(enforced.batch_id)
                if item.entity_type is EntityType.LIKED_SONG
                and item.status is ItemStatus.ROLLED_BACK
                and legacy_endpoints == "forbidden"
            }
            # Exact, but for the dates (and so places) of liked songs the summary names.
            assert {entry.key.split(":")[2] for entry in summary.not_restored_exactly} == undated
            assert [s for s in now["liked_songs"] if s[0] not in undated] == [
                s for s in before["liked_songs"] if s[0] not in undated
            ]
            assert {t for t, _ in now["liked_songs"]} == {t for t, _ in before["liked_songs"]}
            assert {**now, "liked_songs": []} == {**before, "liked_songs": []}
            assert summary.failed == ()
            assert sum(summary.restored.values()) == sum(
                tally.completed for tally in enforced.tallies.values()
            )
    assert not recorder.violations, recorder.report()
