"""What an enforcement must come to: the fewest write calls, and a library that agrees
with the ledger item by item."""

from __future__ import annotations

import math
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from temporalio.client import Client

from enforcer.ledger import ActionItemRecord
from enforcer.models import EntityType, ItemStatus, PlannedAction, PlanRequest, PlanResult
from tests.workflows._world import USER
from workflows.enforcement import enforcement_workflow_id
from workflows.planning import PlanningWorkflow, planning_workflow_id

WRITES = (
    "DELETE /v1/me/library",
    "DELETE /v1/me/tracks",
    "DELETE /v1/me/albums",
    "DELETE /v1/me/following",
    "DELETE /v1/playlists/{playlist_id}/items",
    "DELETE /v1/playlists/{playlist_id}/tracks",
)
"""Every removal endpoint, current and legacy, as the sandbox counts its calls."""


def writes_counted(calls: Mapping[str, int]) -> int:
    """The removals among the sandbox's call counters."""
    return sum(calls.get(endpoint, 0) for endpoint in WRITES)


def write_lower_bound(actions: Iterable[PlannedAction]) -> int:
    """The fewest calls that carry out ``actions``: the library's URIs of every type
    together, 40 a call, plus each playlist's distinct URIs, 100 a call."""
    library_uris = 0
    per_playlist: Counter[str] = Counter()
    for action in actions:
        if action.entity_type is EntityType.PLAYLIST_ITEM and action.container_id is not None:
            per_playlist[action.container_id] += 1
        else:
            library_uris += 1
    return math.ceil(library_uris / 40) + sum(math.ceil(n / 100) for n in per_playlist.values())


def assert_library_agrees_with_ledger(
    library: Mapping[str, Any], items: Sequence[ActionItemRecord]
) -> None:
    """Every item the ledger calls completed is gone from ``library`` (a user's dump,
    as ``GET /__sandbox/users/{id}`` gives it), and every other item is still there."""
    liked = {song["track_id"] for song in library["liked_songs"]}
    albums = {album["album_id"] for album in library["saved_albums"]}
    artists = set(library["followed_artists"])
    playlists = {
        playlist["id"]: {entry.get("uri") for entry in playlist["items"]}
        for playlist in library["playlists"]
        if isinstance(playlist, dict)
    }
    for item in items:
        match item.entity_type:
            case EntityType.LIKED_SONG:
                present = item.entity_id in liked
            case EntityType.SAVED_ALBUM:
                present = item.entity_id in albums
            case EntityType.FOLLOWED_ARTIST:
                present = item.entity_id in artists
            case EntityType.PLAYLIST_ITEM:
                assert item.container_id is not None, item.key
                present = item.uri in playlists[item.container_id]
        assert present == (item.status is not ItemStatus.COMPLETED), (item.key, item.status)


async def plan_of(client: Client, task_queue: str) -> PlanResult:
    """Plans the test account's library with the worker on ``task_queue``."""
    request = PlanRequest(account_id=USER)
    return await client.execute_workflow(
        PlanningWorkflow.run,
        request,
        # A run of its own per test: the dev server outlives the test's ledger.
        id=f"{planning_workflow_id(USER, request.options)}/{uuid.uuid4().hex}",
        task_queue=task_queue,
    )


def enforcement_id(plan_id: str) -> str:
    """The batch's workflow ID, made unique per test for the same reason."""
    return f"{enforcement_workflow_id(USER, plan_id)}/{uuid.uuid4().hex}"
