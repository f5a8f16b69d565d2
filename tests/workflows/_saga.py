"""What the saga tests share: a world holding a given library, plans, enforcements and
rollbacks started on the test's task queue, and the library as a rollback must leave it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowHandle

from enforcer.ledger import Ledger, ledger_url
from enforcer.models import (
    BlockedArtist,
    EnforcementRequest,
    EnforcementSummary,
    ItemStatus,
    PlanOptions,
    PlanRequest,
    RollbackRequest,
    RollbackSummary,
)
from enforcer.sandbox import Sandbox, generate_library
from tests.support.contract import ContractRecorder
from tests.support.sandbox import sandbox_transport
from tests.workflows._world import USER, World, log_in, settings_for
from workflows.enforcement import EnforcementWorkflow, enforcement_workflow_id
from workflows.planning import PlanningWorkflow, planning_workflow_id
from workflows.rollback import RollbackWorkflow, rollback_workflow_id

RESTORING_WRITES = (
    "PUT /v1/me/library",
    "PUT /v1/me/tracks",
    "PUT /v1/me/albums",
    "PUT /v1/me/following",
    "POST /v1/playlists/{playlist_id}/items",
    "POST /v1/playlists/{playlist_id}/tracks",
)
PLAYLIST_INSERTS = (
    "POST /v1/playlists/{playlist_id}/items",
    "POST /v1/playlists/{playlist_id}/tracks",
)


@asynccontextmanager
async def world_of(
    data_dir: Path, recorder: ContractRecorder, library: dict[str, Any], blocked_artists: int
) -> AsyncIterator[World]:
    """A sandbox holding ``library``, a logged-in account, its first artists blocked."""
    sandbox = Sandbox()
    sandbox.load_fixture(library)
    made_settings = settings_for(data_dir)
    ledger = await Ledger.open(ledger_url(made_settings))
    try:
        await log_in(ledger, made_settings, sandbox.issue_tokens(USER))
        artists = library["catalog"]["artists"][:blocked_artists]
        blocked = [BlockedArtist(artist_id=a["id"], name=a["name"]) for a in artists]
        await ledger.add_to_blocklist(USER, blocked, source="id")
        transport = sandbox_transport(sandbox, recorder)
        yield World(sandbox, made_settings, ledger, transport, blocked, library)
    finally:
        await ledger.close()


def small_library(seed: int = 7, **sizes: Any) -> dict[str, Any]:
    """About 120 liked songs, 6 playlists of 30 with some duplicates, albums, artists."""
    shape: dict[str, Any] = {
        "liked_songs": 120,
        "playlists": 6,
        "playlist_size": 30,
        "artists": 30,
        "duplicate_rate": 0.15,
        **sizes,
    }
    return generate_library(seed=seed, user_id=USER, **shape)


def library_of(sandbox: Sandbox) -> dict[str, Any]:
    """What a rollback must put back: liked songs in order with their dates, every owned
    playlist's entries in order (duplicates included), albums, followed artists."""
    dump = sandbox.dump_user(USER)
    return {
        "liked_songs": [(song["track_id"], song["added_at"]) for song in dump["liked_songs"]],
        "saved_albums": sorted(album["album_id"] for album in dump["saved_albums"]),
        "followed_artists": sorted(dump["followed_artists"]),
        "playlists": {
            playlist["id"]: [entry.get("uri") for entry in playlist["items"]]
            for playlist in dump["playlists"]
            if isinstance(playlist, dict)
        },
    }


def writes(sandbox: Sandbox, endpoints: tuple[str, ...] = RESTORING_WRITES) -> int:
    return sum(sandbox.counters.calls.get(endpoint, 0) for endpoint in endpoints)


async def plan(client: Client, task_queue: str, options: PlanOptions | None = None) -> str:
    """Plans the account's library (a workflow ID of its own per test): the plan's ID."""
    request = PlanRequest(account_id=USER, options=options or PlanOptions())
    result = await client.execute_workflow(
        PlanningWorkflow.run,
        request,
        id=f"{planning_workflow_id(USER, request.options)}/{uuid.uuid4().hex}",
        task_queue=task_queue,
    )
    return result.plan_id


async def start_enforcing(
    client: Client, task_queue: str, plan_id: str, *, atomic: bool = False, max_in_flight: int = 4
) -> WorkflowHandle[EnforcementWorkflow, EnforcementSummary]:
    """Starts enforcing the plan; a workflow ID of its own per test."""
    return await client.start_workflow(
        EnforcementWorkflow.run,
        EnforcementRequest(
            account_id=USER, plan_id=plan_id, atomic=atomic, max_in_flight=max_in_flight
        ),
        id=f"{enforcement_workflow_id(USER, plan_id)}/{uuid.uuid4().hex}",
        task_queue=task_queue,
    )


async def enforce(
    client: Client, task_queue: str, options: PlanOptions | None = None
) -> EnforcementSummary:
    """Plans and enforces the account's library."""
    handle = await start_enforcing(client, task_queue, await plan(client, task_queue, options))
    return await handle.result()


async def roll_back(
    client: Client, task_queue: str, batch_id: str, item_keys: tuple[str, ...] | None = None
) -> RollbackSummary:
    return await client.execute_workflow(
        RollbackWorkflow.run,
        RollbackRequest(account_id=USER, batch_id=batch_id, item_keys=item_keys),
        id=rollback_workflow_id(batch_id, item_keys),
        task_queue=task_queue,
    )


async def statuses(ledger: Ledger, batch_id: str) -> dict[str, ItemStatus]:
    return {item.key: item.status for item in await ledger.action_items(batch_id)}
