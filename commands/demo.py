"""``demo``: the whole flow against the local sandbox, as ``make demo`` runs it.

A demo-only path: the demo user is logged in through the sandbox's admin endpoint
(``POST /__sandbox/users/{id}/tokens``), not through Spotify's login, which a real
account needs (``starter.py login``). Everything after that is what a person runs:
a blocklist, a plan, its enforcement, the summary.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Final

import httpx
import typer
from pydantic import SecretStr

from commands import _runtime
from commands._inputs import whole_number_from
from commands._runtime import account_session, exit_for_batch, fail, run
from commands._temporal import web_ui_base, web_ui_url
from commands.enforcement import start_enforcement
from commands.planning import dry_run_before_enforcing, run_planning
from enforcer.config import Settings
from enforcer.models import BlockedArtist, PlanOptions
from enforcer.session import open_ledger, token_store
from enforcer.spotify import TokenSet
from workflows.connection import configured_account_label, connect_temporal
from workflows.enforcement import enforcement_workflow_id

DEMO_USER: Final = "user"
"""The main user of the sandbox's generated demo library (``starter.py sandbox``)."""
BLOCKED_ARTISTS: Final = 3


def demo(
    user: Annotated[str, typer.Option(help="The sandbox user to act for.")] = DEMO_USER,
    blocked_artists: Annotated[
        int,
        typer.Option(
            "--blocked-artists",
            callback=whole_number_from(1, 100),
            help="Artists to block when the blocklist is empty: the user's most played.",
        ),
    ] = BLOCKED_ARTISTS,
    max_in_flight: Annotated[
        int,
        typer.Option(
            "--max-in-flight", callback=whole_number_from(1, 32), help="Spotify calls at once."
        ),
    ] = 4,
) -> None:
    """Demo only, against the local sandbox: log in, block, plan, enforce, summarise.

    The login takes tokens from the sandbox's admin endpoint, which real Spotify does
    not have: for a real account use `starter.py login`. `make demo` starts the sandbox,
    the Temporal server and the worker, then runs this.
    """
    run(_demo(user, blocked_artists, max_in_flight))


async def _demo(user: str, blocked_artists: int, max_in_flight: int) -> None:
    settings = Settings()
    temporal = await connect_temporal()
    async with httpx.AsyncClient(
        base_url=settings.accounts_base_url,
        transport=_runtime.spotify_transport(),
        timeout=10,
    ) as sandbox:
        library = await _sandbox_get(sandbox, f"/__sandbox/users/{user}", settings)
        tokens = _token_set(
            await _sandbox_post(sandbox, f"/__sandbox/users/{user}/tokens", settings)
        )
        fixture = await _sandbox_get(sandbox, "/__sandbox/fixture", settings)
    async with open_ledger(settings) as ledger:
        await ledger.upsert_account(user, library.get("display_name"))
        await token_store(ledger, settings).save(user, tokens)
        typer.echo(f"Logged in as {user} (demo: tokens from the sandbox's admin endpoint).")
        if not await ledger.blocklist(user):
            artists = _most_present_artists(fixture, library, blocked_artists)
            await ledger.add_to_blocklist(user, artists, source="id")
        blocklist = await ledger.blocklist(user)
        typer.echo("Blocklist: " + ", ".join(entry.name for entry in blocklist))
    async with account_session(user) as session:
        result = await run_planning(session, PlanOptions())
        plan = await session.ledger.load_plan(result.plan_id)
        # Without the dry run's own advice: the demo enforces the plan itself, next.
        typer.echo(dry_run_before_enforcing(plan, examples=3))
        summary = await start_enforcement(
            temporal, session, plan, confirmed=True, watch=True, max_in_flight=max_in_flight
        )
    typer.echo("")
    if sum(plan.counts.actions.values()):
        batch_id = enforcement_workflow_id(configured_account_label(user), plan.id)
        batch_page = web_ui_url(temporal, batch_id)
        typer.echo(f"This batch in the Temporal Web UI: {batch_page}")
    typer.echo(f"Temporal Web UI: {web_ui_base(temporal)}")
    if summary is not None:
        exit_for_batch(summary.status)


async def _sandbox_get(sandbox: httpx.AsyncClient, path: str, settings: Settings) -> Any:
    return _admin_answer(await _admin(sandbox, "GET", path), settings)


async def _sandbox_post(sandbox: httpx.AsyncClient, path: str, settings: Settings) -> Any:
    # The tokens must belong to the app the worker refreshes them as.
    answer = await _admin(sandbox, "POST", path, json={"client_id": settings.spotify_client_id})
    return _admin_answer(answer, settings)


async def _admin(
    sandbox: httpx.AsyncClient, method: str, path: str, **options: Any
) -> httpx.Response:
    try:
        return await sandbox.request(method, path, **options)
    except httpx.HTTPError as error:
        fail(
            f"cannot reach the sandbox at {sandbox.base_url}: {error}. Start it with "
            "`starter.py sandbox` (or `make demo`)"
        )


def _admin_answer(response: httpx.Response, settings: Settings) -> Any:
    if response.status_code == 404 and "/__sandbox/users/" in response.url.path:
        try:
            message = response.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = None
        if message:
            fail(f"the sandbox says: {message}")
    if response.is_error:
        fail(
            f"{settings.accounts_base_url} is not the local sandbox "
            f"({response.request.method} {response.url.path} answered {response.status_code}): "
            "the demo runs only against `starter.py sandbox` (ENFORCER_ACCOUNTS_BASE_URL)"
        )
    return response.json()


def _token_set(body: dict[str, Any]) -> TokenSet:
    return TokenSet(
        access_token=SecretStr(body["access_token"]),
        refresh_token=SecretStr(body["refresh_token"]),
        expires_at=datetime.now(UTC) + timedelta(seconds=int(body["expires_in"])),
        scope=body["scope"],
    )


def _most_present_artists(
    fixture: dict[str, Any], library: dict[str, Any], count: int
) -> list[BlockedArtist]:
    """The ``count`` artists with the most tracks in the user's liked songs and playlists."""
    tracks = {track["id"]: track for track in fixture["catalog"]["tracks"]}
    names = {artist["id"]: artist["name"] for artist in fixture["catalog"]["artists"]}
    track_ids = [song["track_id"] for song in library.get("liked_songs", [])]
    for playlist in fixture["playlists"]:
        if playlist["owner"] == library["id"]:
            track_ids += [
                item["uri"].rsplit(":", 1)[-1] for item in playlist["items"] if "uri" in item
            ]
    presence = Counter(
        artist
        for track_id in track_ids
        if track_id in tracks
        for artist in tracks[track_id]["artist_ids"]
    )
    if not presence:
        fail(f"the sandbox user {library['id']!r} has no tracks to block")
    return [
        BlockedArtist(artist_id=artist_id, name=names.get(artist_id, artist_id))
        for artist_id, _ in presence.most_common(count)
    ]
