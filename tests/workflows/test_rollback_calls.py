"""What a rollback costs in Spotify calls, and that faults and edits cost it no progress:
snapshot-checked inserts (one small read per playlist, no whole read while the playlist
is as expected), progress kept across a 429 and a 5xx, an insert applied but never
answered not sent again, library saves in the fewest calls."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.client import Client

from enforcer.ledger import Ledger
from enforcer.models import (
    EntityType,
    ItemStatus,
    LikedSongBefore,
    PlaylistItemBefore,
    RollbackRequest,
    RollbackSummary,
)
from enforcer.restore import playlist_insert_lower_bound, rollback_lower_bound
from enforcer.sandbox import Faults, Sandbox
from enforcer.spotify import Generation, Operation
from tests.support.contract import ContractRecorder
from tests.workflows._saga import (
    PLAYLIST_INSERTS,
    enforce,
    library_of,
    roll_back,
    small_library,
    world_of,
)
from tests.workflows._world import USER, World, workers
from workflows.rollback import RollbackWorkflow, rollback_workflow_id

SNAPSHOT_READ = "GET /v1/playlists/{playlist_id}"
WHOLE_READS = ("GET /v1/playlists/{playlist_id}/items", "GET /v1/playlists/{playlist_id}/tracks")
DATED_SAVES = "PUT /v1/me/tracks"
LIBRARY_SAVES = "PUT /v1/me/library"


@dataclasses.dataclass(frozen=True)
class Removed:
    """What an enforcement removed, from its ledger: the rollback's lower bound."""

    liked_songs: int
    other_library_items: int
    positions: dict[str, list[int]]
    """Per playlist, the original positions of every occurrence removed."""

    def bound(self, *, dates: bool = True) -> int:
        songs = self.liked_songs if dates else 0
        others = self.other_library_items + (0 if dates else self.liked_songs)
        return rollback_lower_bound(
            dated_liked_songs=songs,
            other_library_items=others,
            playlists=self.positions.values(),
        )

    def inserts(self, playlist_id: str) -> int:
        return playlist_insert_lower_bound(self.positions[playlist_id])

    @property
    def busiest(self) -> str:
        return max(self.positions, key=self.inserts)


async def removed_by(ledger: Ledger, batch_id: str) -> Removed:
    items = await ledger.action_items(batch_id, status=ItemStatus.COMPLETED)
    positions: dict[str, list[int]] = {}
    for item in items:
        if isinstance(item.before, PlaylistItemBefore):
            occurrences = positions.setdefault(item.before.playlist_id, [])
            occurrences.extend(o.position for o in item.before.occurrences)
    songs = sum(isinstance(item.before, LikedSongBefore) for item in items)
    others = sum(
        item.entity_type in (EntityType.SAVED_ALBUM, EntityType.FOLLOWED_ARTIST) for item in items
    )
    return Removed(songs, others, positions)


def calls_to(sandbox: Sandbox, *endpoints: str) -> int:
    return sum(sandbox.counters.calls.get(endpoint, 0) for endpoint in endpoints)


async def roll_back_one_at_a_time(
    client: Client, task_queue: str, batch_id: str
) -> RollbackSummary:
    """A rollback restoring one playlist at a time: the order of requests is fixed."""
    return await client.execute_workflow(
        RollbackWorkflow.run,
        RollbackRequest(account_id=USER, batch_id=batch_id, max_in_flight=1),
        id=rollback_workflow_id(batch_id),
        task_queue=task_queue,
    )


class Hook(httpx.AsyncBaseTransport):
    """Answers the ``nth`` insert into one playlist (counted from 1) itself, without
    Spotify seeing it, and may change the playlist first, as its owner would."""

    def __init__(
        self,
        inner: httpx.AsyncBaseTransport,
        playlist_id: str,
        answers: dict[int, int],
        before_answering: Callable[[], None] = lambda: None,
    ) -> None:
        self._inner = inner
        self._path = f"/v1/playlists/{playlist_id}/items"
        self._answers = answers
        self._before_answering = before_answering
        self.inserts = 0
        self.answered: list[int] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path == self._path:
            self.inserts += 1
            status = self._answers.get(self.inserts)
            if status is not None:
                self._before_answering()
                self.answered.append(status)
                headers = {"Retry-After": "1"} if status == 429 else {}
                return httpx.Response(
                    status,
                    json={"error": {"status": status, "message": "injected"}},
                    headers=headers,
                    request=request,
                )
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


@pytest.fixture
async def made(tmp_path: Path, contract_recorder: ContractRecorder) -> Any:
    async with world_of(tmp_path, contract_recorder, small_library(), blocked_artists=8) as w:
        yield w


async def test_a_rollback_costs_its_lower_bound_and_one_small_read_per_playlist(
    temporal_client: Client, task_queue: str, made: World
) -> None:
    before = library_of(made.sandbox)
    async with workers(temporal_client, task_queue, made):
        enforced = await enforce(temporal_client, task_queue)
        removed = await removed_by(made.ledger, enforced.batch_id)
        made.sandbox.reset_counters()
        summary = await roll_back(temporal_client, task_queue, enforced.batch_id)

    assert library_of(made.sandbox) == before
    sandbox = made.sandbox
    # Reads and writes: the lower bound, and the one small read before each playlist's
    # first insert (an insert is not idempotent: something must say the playlist is
    # as enforcement left it, and no write of this rollback has answered yet).
    assert sandbox.counters.total_calls == removed.bound() + len(removed.positions)
    assert calls_to(sandbox, SNAPSHOT_READ) == len(removed.positions)
    assert calls_to(sandbox, *WHOLE_READS) == 0
    assert summary.api_calls == sandbox.counters.total_calls


async def test_library_saves_take_ceil_dated_over_50_plus_ceil_the_rest_over_40(
    temporal_client: Client, tmp_path: Path, contract_recorder: ContractRecorder, task_queue: str
) -> None:
    library = small_library(
        9,
        liked_songs=400,
        playlists=1,
        artists=60,
        albums=80,
        saved_albums=60,
        followed_artists=50,
    )
    async with world_of(tmp_path, contract_recorder, library, blocked_artists=30) as made:
        before = library_of(made.sandbox)
        async with workers(temporal_client, task_queue, made):
            enforced = await enforce(temporal_client, task_queue)
            removed = await removed_by(made.ledger, enforced.batch_id)
            made.sandbox.reset_counters()
            await roll_back(temporal_client, task_queue, enforced.batch_id)
        assert library_of(made.sandbox) == before

        assert removed.liked_songs > 50
        assert removed.other_library_items > 40
        saved_with_dates = calls_to(made.sandbox, DATED_SAVES)
        saved = calls_to(made.sandbox, LIBRARY_SAVES)
        assert saved_with_dates == math.ceil(removed.liked_songs / 50)
        assert saved == math.ceil(removed.other_library_items / 40)

        # Spotify refused the dates before (the account remembers): songs, albums and
        # artists go 40 of any type a call.
        await made.ledger.save_generations(
            USER, {Operation.LIKED_SONGS_SAVE_WITH_DATES: Generation.CURRENT}
        )
        made.sandbox.settings.legacy_endpoints = "forbidden"
        async with workers(temporal_client, task_queue, made):
            again = await enforce(temporal_client, task_queue)
            removed = await removed_by(made.ledger, again.batch_id)
            made.sandbox.reset_counters()
            await roll_back(temporal_client, task_queue, again.batch_id)
        assert calls_to(made.sandbox, DATED_SAVES) == 0
        everything = removed.liked_songs + removed.other_library_items
        assert calls_to(made.sandbox, LIBRARY_SAVES) == math.ceil(everything / 40)


async def test_a_429_and_a_5xx_mid_playlist_cost_no_progress_and_no_whole_read(
    temporal_client: Client, task_queue: str, made: World
) -> None:
    before = library_of(made.sandbox)
    async with workers(temporal_client, task_queue, made):
        enforced = await enforce(temporal_client, task_queue)
    removed = await removed_by(made.ledger, enforced.batch_id)
    playlist_id = removed.busiest
    assert removed.inserts(playlist_id) >= 4, "a playlist with a few runs to put back"
    # The second insert meets a 429, the fourth a 503; neither reaches Spotify. One
    # playlist at a time: the 429 closes the gate for every call of the app, and other
    # playlists' attempts would start again too (with a small read each).
    hook = Hook(made.transport, playlist_id, {2: 429, 4: 503})
    made.sandbox.reset_counters()
    async with workers(temporal_client, task_queue, replace(made, transport=hook)):
        summary = await roll_back_one_at_a_time(temporal_client, task_queue, enforced.batch_id)

    assert hook.answered == [429, 503]
    assert library_of(made.sandbox) == before
    sandbox = made.sandbox
    # Each retry: one small read finds the snapshot recorded, and carries on.
    assert calls_to(sandbox, *WHOLE_READS) == 0
    assert calls_to(sandbox, SNAPSHOT_READ) == len(removed.positions) + 2
    assert calls_to(sandbox, *PLAYLIST_INSERTS) == sum(map(removed.inserts, removed.positions))
    assert sandbox.counters.total_calls == removed.bound() + len(removed.positions) + 2
    assert summary.rate_limit_waits == 1
    assert summary.calls_found_applied == 0
    assert summary.replans == 0


class AnswersLost(httpx.AsyncBaseTransport):
    """Spotify applies the ``nth`` inserts into one playlist (counted from 1), then
    answers them with a 5xx (the sandbox's ``server_error_after_change``)."""

    def __init__(
        self, inner: httpx.AsyncBaseTransport, sandbox: Sandbox, playlist_id: str, nth: set[int]
    ) -> None:
        self._inner = inner
        self._sandbox = sandbox
        self._path = f"/v1/playlists/{playlist_id}/items"
        self._nth = nth
        self.inserts = 0
        self.lost = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method != "POST" or request.url.path != self._path:
            return await self._inner.handle_async_request(request)
        self.inserts += 1
        if self.inserts not in self._nth:
            return await self._inner.handle_async_request(request)
        self._sandbox.set_faults(Faults(server_error_rate=1.0, server_error_after_change=True))
        try:
            response = await self._inner.handle_async_request(request)
        finally:
            self._sandbox.set_faults(Faults())
        self.lost += response.status_code >= 500
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


async def test_an_insert_applied_whose_answer_was_lost_is_not_sent_again(
    temporal_client: Client, task_queue: str, made: World
) -> None:
    before = library_of(made.sandbox)
    async with workers(temporal_client, task_queue, made):
        enforced = await enforce(temporal_client, task_queue)
    removed = await removed_by(made.ledger, enforced.batch_id)
    playlist_id = removed.busiest
    inserts = removed.inserts(playlist_id)
    # The second insert and the last: one in the middle, one with nothing after it.
    assert inserts >= 3
    lossy = AnswersLost(made.transport, made.sandbox, playlist_id, {2, inserts})
    made.sandbox.reset_counters()
    async with workers(temporal_client, task_queue, replace(made, transport=lossy)):
        summary = await roll_back_one_at_a_time(temporal_client, task_queue, enforced.batch_id)

    assert lossy.lost == 2
    assert summary.failed == ()
    assert library_of(made.sandbox) == before
    # Every insert Spotify received it applied: one more would be a duplicate.
    assert calls_to(made.sandbox, *PLAYLIST_INSERTS) == sum(map(removed.inserts, removed.positions))
    assert lossy.inserts == inserts
    assert summary.calls_found_applied == 2
    assert summary.replans == 0


async def test_a_playlist_edited_between_two_inserts_is_read_again_and_planned_again(
    temporal_client: Client, task_queue: str, made: World
) -> None:
    before = library_of(made.sandbox)
    async with workers(temporal_client, task_queue, made):
        enforced = await enforce(temporal_client, task_queue)
    removed = await removed_by(made.ledger, enforced.batch_id)
    playlist_id = removed.busiest
    original = before["playlists"][playlist_id]
    gone = set(removed.positions[playlist_id])
    # Kept items that anchor nothing (a kept item follows them) and whose URI the
    # playlist holds once: where they go is plain to see.
    loners = [
        index
        for index, uri in enumerate(original[:-1])
        if uri is not None
        and index not in gone
        and index + 1 not in gone
        and original.count(uri) == 1
    ]
    assert len(loners) >= 2
    dropped, moved = original[loners[0]], original[loners[-1]]
    newcomer = next(
        f"spotify:track:{track['id']}"
        for track in made.library["catalog"]["tracks"]
        if f"spotify:track:{track['id']}" not in original
    )
    playlist = made.sandbox.state.playlists[playlist_id]

    def person_edits() -> None:
        """Adds a track at the start, removes one, moves one to the end."""
        entries = playlist.items
        template = next(entry for entry in entries if entry.uri == moved)
        entries.remove(next(entry for entry in entries if entry.uri == dropped))
        entries.remove(template)
        added = dataclasses.replace(template, uri=newcomer, track_id=newcomer.rsplit(":", 1)[1])
        entries[:0] = [added]
        entries.append(template)
        playlist.changed()

    # After the first insert the person edits the playlist while the rollback waits
    # out a 429 on its second.
    hook = Hook(made.transport, playlist_id, {2: 429}, before_answering=person_edits)
    made.sandbox.reset_counters()
    async with workers(temporal_client, task_queue, replace(made, transport=hook)):
        summary = await roll_back(temporal_client, task_queue, enforced.batch_id)

    assert summary.replans == 1
    expected = [newcomer, *(uri for uri in original if uri not in (dropped, moved)), moved]
    now = library_of(made.sandbox)
    assert now["playlists"][playlist_id] == expected
    assert {**now["playlists"], playlist_id: original} == before["playlists"]
    # Nothing sent twice: the inserts the playlist needed, and the one refused.
    assert calls_to(made.sandbox, *PLAYLIST_INSERTS) == sum(map(removed.inserts, removed.positions))
    assert hook.inserts == removed.inserts(playlist_id) + 1
