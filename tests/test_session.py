"""``enforcer.session``: settings to a ledger, the account a command is about, and a
Spotify client whose tokens and endpoint generations live in that ledger.

Real parts only: a SQLite ledger in a temporary data directory and the in-process
sandbox, every exchange contract-checked.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from enforcer.config import Settings
from enforcer.ledger import Ledger, UnknownAccount
from enforcer.sandbox import Sandbox
from enforcer.session import (
    AccountNotChosen,
    SpotifyClients,
    open_ledger,
    resolve_account,
    spotify_client,
    token_store,
)
from enforcer.spotify import Generation, Operation, TokenSet
from enforcer.spotify.errors import LoginRequired
from enforcer.tokenstore import NoStoredLogin
from tests.support.contract import ContractRecorder
from tests.support.sandbox import sandbox_transport

CLIENT_ID = "5a4db0c0ffee4b1d8e5d5a4db0c0ffee"  # the sandbox's registered app
ALICE_MIX = "plAliceMix000000000000"
CURRENT_ITEMS = "GET /v1/playlists/{playlist_id}/items"
LEGACY_ITEMS = "GET /v1/playlists/{playlist_id}/tracks"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        spotify_client_id=CLIENT_ID,
        api_base_url="https://api.sandbox.test/v1",
        accounts_base_url="https://accounts.sandbox.test",
        data_dir=tmp_path / "data",
    )


@pytest.fixture
async def ledger(settings: Settings) -> AsyncIterator[Ledger]:
    async with open_ledger(settings) as opened:
        yield opened


class CountingTransport(httpx.AsyncBaseTransport):
    """Passes every request on; counts the token grants among them."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.grants = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.grants += request.url.path == "/api/token"
        return await self.inner.handle_async_request(request)


@pytest.fixture
def transport(sandbox: Sandbox, contract_recorder: ContractRecorder) -> CountingTransport:
    return CountingTransport(sandbox_transport(sandbox, contract_recorder))


@pytest.fixture
async def warm(
    settings: Settings, ledger: Ledger, transport: CountingTransport
) -> AsyncIterator[SpotifyClients]:
    clients = SpotifyClients(settings, ledger, transport=transport)
    try:
        yield clients
    finally:
        await clients.aclose()


async def log_in(
    settings: Settings, ledger: Ledger, sandbox: Sandbox, user_id: str, *, expired: bool = False
) -> TokenSet:
    """As ``starter.py login`` leaves things: the account and its tokens in the ledger."""
    body = sandbox.issue_tokens(user_id)
    lifetime = timedelta(seconds=-60 if expired else body["expires_in"])
    tokens = TokenSet(
        access_token=SecretStr(body["access_token"]),
        refresh_token=SecretStr(body["refresh_token"]),
        expires_at=datetime.now(UTC) + lifetime,
        scope=body["scope"],
    )
    await ledger.upsert_account(user_id, user_id.title())
    await token_store(ledger, settings).save(user_id, tokens)
    return tokens


# --- which account ------------------------------------------------------------------


async def test_without_any_account_the_answer_is_to_log_in(ledger: Ledger) -> None:
    with pytest.raises(AccountNotChosen, match=r"^no account: run `starter\.py login`$"):
        await resolve_account(ledger, None)


async def test_the_only_account_is_taken_and_a_named_one_must_exist(
    settings: Settings, ledger: Ledger, sandbox: Sandbox
) -> None:
    await log_in(settings, ledger, sandbox, "alice")

    assert await resolve_account(ledger, None) == "alice"
    assert await resolve_account(ledger, "alice") == "alice"
    with pytest.raises(UnknownAccount, match="no account 'carol'"):
        await resolve_account(ledger, "carol")


async def test_several_accounts_need_a_name_and_the_error_lists_them(
    settings: Settings, ledger: Ledger, sandbox: Sandbox
) -> None:
    await log_in(settings, ledger, sandbox, "bob")
    await log_in(settings, ledger, sandbox, "alice")

    with pytest.raises(AccountNotChosen, match=r"2 accounts .*'alice', 'bob'.*--account"):
        await resolve_account(ledger, None)
    assert await resolve_account(ledger, "bob") == "bob"


# --- the client ---------------------------------------------------------------------


async def test_the_client_acts_for_the_account_with_its_stored_tokens(
    settings: Settings,
    ledger: Ledger,
    sandbox: Sandbox,
    transport: httpx.AsyncBaseTransport,
) -> None:
    await log_in(settings, ledger, sandbox, "alice")
    await log_in(settings, ledger, sandbox, "bob")

    async with spotify_client(settings, ledger, "bob", transport=transport) as client:
        me = await client.current_user()

    assert me.id == "bob"


async def test_expired_tokens_are_refreshed_and_the_new_ones_kept_in_the_ledger(
    settings: Settings,
    ledger: Ledger,
    sandbox: Sandbox,
    transport: httpx.AsyncBaseTransport,
) -> None:
    stale = await log_in(settings, ledger, sandbox, "alice", expired=True)

    async with spotify_client(settings, ledger, "alice", transport=transport) as client:
        await client.current_user()

    kept = await token_store(ledger, settings).load("alice")
    assert kept.access_token != stale.access_token
    assert kept.expires_at > datetime.now(UTC)


async def test_an_account_that_never_logged_in_is_told_to(
    settings: Settings, ledger: Ledger, transport: httpx.AsyncBaseTransport
) -> None:
    await ledger.upsert_account("alice", "Alice")

    with pytest.raises(NoStoredLogin, match=r"run `starter\.py login`"):
        async with spotify_client(settings, ledger, "alice", transport=transport):
            pass


async def test_a_learned_generation_is_kept_and_used_by_the_next_client(
    settings: Settings,
    ledger: Ledger,
    sandbox: Sandbox,
    transport: httpx.AsyncBaseTransport,
) -> None:
    await log_in(settings, ledger, sandbox, "alice")
    sandbox.settings.closed_endpoints = {CURRENT_ITEMS: 403}

    async def read_then_fail() -> None:
        async with spotify_client(settings, ledger, "alice", transport=transport) as client:
            await client.playlist_items_page(ALICE_MIX)
            raise RuntimeError("the command failed afterwards")

    with pytest.raises(RuntimeError, match="the command failed afterwards"):
        await read_then_fail()
    learned = await ledger.generations("alice")
    sandbox.reset_counters()
    async with spotify_client(settings, ledger, "alice", transport=transport) as client:
        await client.playlist_items_page(ALICE_MIX)

    assert learned == {Operation.PLAYLIST_ITEMS_READ: Generation.LEGACY}
    assert sandbox.counters.calls.get(CURRENT_ITEMS, 0) == 0  # straight to what worked last time
    assert sandbox.counters.calls.get(LEGACY_ITEMS, 0) == 1


# --- warm clients (a worker's) ---------------------------------------------------------


async def test_a_warm_client_serves_every_task_of_its_account_and_no_other(
    settings: Settings, ledger: Ledger, sandbox: Sandbox, warm: SpotifyClients
) -> None:
    await log_in(settings, ledger, sandbox, "alice")
    await log_in(settings, ledger, sandbox, "bob")

    async with warm.client("alice") as first:
        assert (await first.current_user()).id == "alice"
    async with warm.client("alice") as second:
        assert (await second.current_user()).id == "alice"
    async with warm.client("bob") as bob:
        assert (await bob.current_user()).id == "bob"

    assert second is first
    assert bob is not first


async def test_a_warm_client_takes_a_new_login_from_the_store_at_its_next_task(
    settings: Settings,
    ledger: Ledger,
    sandbox: Sandbox,
    transport: CountingTransport,
    warm: SpotifyClients,
) -> None:
    await log_in(settings, ledger, sandbox, "alice")
    async with warm.client("alice") as client:
        await client.current_user()
    # The person revoked the app, and the stored login says its token has expired...
    stored = await token_store(ledger, settings).load("alice")
    await token_store(ledger, settings).save(
        "alice", stored.model_copy(update={"expires_at": datetime.now(UTC) - timedelta(hours=1)})
    )
    sandbox.revoke_refresh_tokens("alice")

    with pytest.raises(LoginRequired):
        async with warm.client("alice") as client:
            await client.current_user()

    # ... then logged in again: the next task uses that login, without a refresh.
    grants = transport.grants
    await log_in(settings, ledger, sandbox, "alice")
    async with warm.client("alice") as client:
        assert (await client.current_user()).id == "alice"
    assert transport.grants == grants


async def test_a_warm_client_remembers_a_learned_generation_and_keeps_it_in_the_ledger(
    settings: Settings, ledger: Ledger, sandbox: Sandbox, warm: SpotifyClients
) -> None:
    await log_in(settings, ledger, sandbox, "alice")
    sandbox.settings.closed_endpoints = {CURRENT_ITEMS: 403}

    for _ in range(2):
        async with warm.client("alice") as client:
            await client.playlist_items_page(ALICE_MIX)

    assert await ledger.generations("alice") == {Operation.PLAYLIST_ITEMS_READ: Generation.LEGACY}
    assert sandbox.counters.calls.get(CURRENT_ITEMS, 0) == 1  # learned once, then remembered
    assert sandbox.counters.calls.get(LEGACY_ITEMS, 0) == 2
