"""A world to run workflows in: a sandbox with a generated library, the settings that
reach it, a ledger, an account logged in and artists on its blocklist."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from cryptography.fernet import Fernet
from pydantic import SecretStr
from temporalio.client import Client

from enforcer.config import Settings
from enforcer.ledger import Ledger, ledger_url
from enforcer.models import BlockedArtist
from enforcer.sandbox import Sandbox, generate_library
from enforcer.session import token_store
from enforcer.spotify.auth import utc_now
from enforcer.spotify.tokens import TokenSet
from tests.support.contract import ContractRecorder
from tests.support.sandbox import sandbox_transport
from worker import Workers, build_worker

USER = "user"
SANDBOX_API = "http://127.0.0.1:8787/v1"
SANDBOX_ACCOUNTS = "http://127.0.0.1:8787"


def settings_for(
    data_dir: Path, api: str = SANDBOX_API, accounts: str = SANDBOX_ACCOUNTS
) -> Settings:
    return Settings(
        spotify_client_id="blocklist-enforcer-tests",
        api_base_url=api,
        accounts_base_url=accounts,
        data_dir=data_dir,
        token_key=Fernet.generate_key().decode(),
    )


async def log_in(ledger: Ledger, settings: Settings, sandbox_tokens: dict[str, str]) -> None:
    """What `starter.py login` leaves behind: the account and its tokens, encrypted."""
    await ledger.upsert_account(USER, "Generated User")
    await token_store(ledger, settings).save(
        USER,
        TokenSet(
            access_token=SecretStr(sandbox_tokens["access_token"]),
            refresh_token=SecretStr(sandbox_tokens["refresh_token"]),
            expires_at=utc_now() + timedelta(seconds=int(sandbox_tokens["expires_in"])),
            scope=sandbox_tokens["scope"],
        ),
    )


async def served_user(
    ledger: Ledger,
    settings: Settings,
    admin: httpx.AsyncClient,
    library: dict[str, Any],
    *,
    blocked_artists: int,
) -> dict[str, str]:
    """The served sandbox's user logged in (tokens from its admin endpoint, returned),
    with the library's first ``blocked_artists`` artists on its blocklist."""
    tokens: dict[str, str] = (await admin.post(f"/__sandbox/users/{USER}/tokens")).json()
    await log_in(ledger, settings, tokens)
    artists = library["catalog"]["artists"][:blocked_artists]
    blocked = [BlockedArtist(artist_id=a["id"], name=a["name"]) for a in artists]
    await ledger.add_to_blocklist(USER, blocked, source="id")
    return tokens


@dataclass(frozen=True)
class World:
    sandbox: Sandbox
    settings: Settings
    ledger: Ledger
    transport: httpx.AsyncBaseTransport
    """The in-process sandbox, every exchange contract-checked."""
    blocked: list[BlockedArtist]
    library: dict[str, Any]
    """The generated fixture the sandbox was loaded with."""


@asynccontextmanager
async def world(
    tmp_path: Path,
    recorder: ContractRecorder,
    *,
    liked_songs: int,
    playlists: int,
    blocked_artists: int = 5,
    sandbox_clock: Callable[[], float] = time.time,
    **sizes: int,
) -> AsyncIterator[World]:
    """A sandbox with a generated library, a logged-in account and the first
    ``blocked_artists`` artists of the catalogue on its blocklist (``sandbox_clock``:
    the sandbox's time, in epoch seconds)."""
    library = generate_library(
        seed=7, liked_songs=liked_songs, playlists=playlists, user_id=USER, **sizes
    )
    sandbox = Sandbox(clock=sandbox_clock)
    sandbox.load_fixture(library)
    settings = settings_for(tmp_path)
    transport = sandbox_transport(sandbox, recorder)
    ledger = await Ledger.open(ledger_url(settings))
    try:
        tokens = sandbox.issue_tokens(USER, client_id=settings.spotify_client_id)
        await log_in(ledger, settings, tokens)
        artists = library["catalog"]["artists"][:blocked_artists]
        blocked = [BlockedArtist(artist_id=a["id"], name=a["name"]) for a in artists]
        await ledger.add_to_blocklist(USER, blocked, source="id")
        yield World(sandbox, settings, ledger, transport, blocked, library)
    finally:
        await ledger.close()


UNCAPPED = 1_000.0
"""Spotify activities per second for tests: the sandbox's own limits are what a test
exercises, not the task queue's cap."""


def workers(
    client: Client, task_queue: str, made: World, clock: Callable[[], datetime] | None = None
) -> Workers:
    """Every workflow and activity, reaching the world's sandbox in process (``clock``:
    the rate gate's, when the server's time is not the wall's)."""
    return build_worker(
        client,
        made.settings,
        made.ledger,
        task_queue=task_queue,
        transport=made.transport,
        spotify_activities_per_second=UNCAPPED,
        clock=clock,
    )
