"""PKCE, the authorize URL, the token endpoint and keeping one account's tokens fresh.

Everything that talks to an accounts service talks to the sandbox's real
``/authorize`` and ``/api/token``.
"""

from __future__ import annotations

import asyncio
import socket
import string
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from pydantic import SecretStr

from enforcer.config import REQUIRED_SCOPES, Settings
from enforcer.ledger import LedgerTokenStore
from enforcer.sandbox import DEFAULT_CLIENT_ID, Sandbox
from enforcer.session import open_ledger
from enforcer.spotify.auth import (
    OAuthClient,
    Pkce,
    TokenManager,
    build_authorize_url,
    check_redirect_uri,
    code_challenge,
    new_state,
)
from enforcer.spotify.errors import BadRequest, LoginRequired, TransientError
from enforcer.spotify.tokens import TokenSet
from enforcer.tokenstore import NoStoredLogin, TokenCipher, TokenStore
from tests.support.contract import ContractRecorder
from tests.support.sandbox import sandbox_transport

ACCOUNTS = "https://accounts.sandbox.test"
API = "https://api.sandbox.test/v1"
REDIRECT_URI = "http://127.0.0.1:8888/callback"

# --- PKCE and the authorize URL ------------------------------------------------------


def test_the_challenge_matches_rfc_7636_appendix_b() -> None:
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"

    assert code_challenge(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    assert Pkce(SecretStr(verifier)).challenge == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


@pytest.mark.parametrize("length", [43, 64, 128])
def test_a_generated_verifier_has_the_length_and_alphabet_spotify_requires(length: int) -> None:
    pkce = Pkce.generate(length)
    verifier = pkce.verifier.get_secret_value()

    assert len(verifier) == length
    assert set(verifier) <= set(string.ascii_letters + string.digits + "-._~")
    assert pkce.challenge == code_challenge(verifier)
    assert "=" not in pkce.challenge
    assert len(pkce.challenge) == 43


def test_verifiers_and_states_never_repeat() -> None:
    verifiers = {Pkce.generate().verifier.get_secret_value() for _ in range(200)}
    states = {new_state() for _ in range(200)}

    assert len(verifiers) == 200
    assert len(states) == 200
    assert all(len(s) >= 43 for s in states)


@pytest.mark.parametrize("length", [0, 42, 129])
def test_a_verifier_length_outside_43_to_128_is_refused(length: int) -> None:
    with pytest.raises(ValueError, match=f"length {length} is outside 43..128"):
        Pkce.generate(length)


@pytest.mark.parametrize("verifier", ["short", "a" * 42 + "!", "é" * 50])
def test_a_malformed_verifier_is_refused_without_being_shown(verifier: str) -> None:
    with pytest.raises(ValueError, match="43 to 128 characters") as raised:
        Pkce(SecretStr(verifier))
    assert verifier not in str(raised.value)


def test_the_verifier_never_shows_in_a_repr() -> None:
    pkce = Pkce.generate()

    assert pkce.verifier.get_secret_value() not in repr(pkce)
    assert pkce.verifier.get_secret_value() not in str(pkce)


def test_the_authorize_url_carries_every_parameter_spotify_requires() -> None:
    url = build_authorize_url(
        "https://accounts.spotify.com/",
        client_id="my-client",
        redirect_uri=REDIRECT_URI,
        scopes=REQUIRED_SCOPES,
        code_challenge="E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        state="the-state",
    )

    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == (
        "https",
        "accounts.spotify.com",
        "/authorize",
    )
    assert parse_qs(parts.query, strict_parsing=True) == {
        "response_type": ["code"],
        "client_id": ["my-client"],
        "redirect_uri": [REDIRECT_URI],
        "scope": [" ".join(REQUIRED_SCOPES)],
        "code_challenge_method": ["S256"],
        "code_challenge": ["E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"],
        "state": ["the-state"],
    }


@pytest.mark.parametrize(
    "uri", ["http://127.0.0.1:8888/callback", "http://[::1]:9000/cb", "http://127.0.0.1:1/x"]
)
def test_loopback_ip_literals_are_accepted_as_redirect_uris(uri: str) -> None:
    assert check_redirect_uri(uri) == uri


@pytest.mark.parametrize(
    ("uri", "why"),
    [
        ("http://localhost:8888/callback", "Spotify refuses `localhost`"),
        ("https://127.0.0.1:8888/callback", "must be http://127.0.0.1:PORT/PATH"),
        ("http://192.168.1.2:8888/callback", "must be http://127.0.0.1:PORT/PATH"),
        ("http://127.0.0.1/callback", "must be http://127.0.0.1:PORT/PATH"),
        ("http://example.com:8888/callback", "must be http://127.0.0.1:PORT/PATH"),
    ],
)
def test_other_redirect_uris_are_refused_by_name(uri: str, why: str) -> None:
    with pytest.raises(ValueError, match=why) as raised:
        build_authorize_url(
            ACCOUNTS,
            client_id="c",
            redirect_uri=uri,
            scopes=["user-library-read"],
            code_challenge="x" * 43,
            state="s",
        )
    assert repr(uri) in str(raised.value)


# --- the token endpoint (the sandbox's accounts service) ------------------------------


class CountingTransport(httpx.AsyncBaseTransport):
    """Passes every request on and counts the token grants among them."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.grants: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/token":
            self.grants.append(parse_qs((await request.aread()).decode())["grant_type"][0])
        return await self.inner.handle_async_request(request)


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def transport(sandbox: Sandbox, contract_recorder: ContractRecorder) -> CountingTransport:
    return CountingTransport(sandbox_transport(sandbox, contract_recorder))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def oauth(transport: CountingTransport, clock: FakeClock) -> AsyncIterator[OAuthClient]:
    async with OAuthClient(ACCOUNTS, DEFAULT_CLIENT_ID, transport=transport, clock=clock) as client:
        yield client


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[TokenStore]:
    """The token store the service uses: encrypted records in a SQLite ledger."""
    settings = Settings(spotify_client_id=DEFAULT_CLIENT_ID, data_dir=tmp_path / "data")
    async with open_ledger(settings) as ledger:
        yield LedgerTokenStore(ledger, TokenCipher(TokenCipher.generate_key()))


def issued(sandbox: Sandbox, user: str, clock: FakeClock) -> TokenSet:
    """Tokens as if ``user`` had just logged in."""
    body = sandbox.issue_tokens(user)
    return TokenSet(
        access_token=SecretStr(body["access_token"]),
        refresh_token=SecretStr(body["refresh_token"]),
        expires_at=clock() + timedelta(seconds=body["expires_in"]),
        scope=body["scope"],
    )


async def authorization_code(transport: httpx.AsyncBaseTransport, pkce: Pkce) -> str:
    """What the browser brings back after the person agreed."""
    state = new_state()
    url = build_authorize_url(
        ACCOUNTS,
        client_id=DEFAULT_CLIENT_ID,
        redirect_uri=REDIRECT_URI,
        scopes=REQUIRED_SCOPES,
        code_challenge=pkce.challenge,
        state=state,
    )
    async with httpx.AsyncClient(transport=transport) as browser:
        answer = await browser.get(url)
    assert answer.status_code == 302, answer.text
    query = parse_qs(urlsplit(answer.headers["location"]).query)
    assert query["state"] == [state]
    return query["code"][0]


async def user_of(transport: httpx.AsyncBaseTransport, access_token: str) -> str | int:
    """The user ``GET /me`` answers for, or the status it refused with."""
    async with httpx.AsyncClient(transport=transport) as api:
        answer = await api.get(f"{API}/me", headers={"Authorization": f"Bearer {access_token}"})
    return answer.json()["id"] if answer.status_code == 200 else answer.status_code


async def test_a_code_is_exchanged_for_tokens_the_api_accepts(
    oauth: OAuthClient, transport: CountingTransport, clock: FakeClock, sandbox_user: str
) -> None:
    pkce = Pkce.generate()
    code = await authorization_code(transport, pkce)

    tokens = await oauth.exchange_code(code, pkce.verifier, REDIRECT_URI)

    assert await user_of(transport, tokens.access_token.get_secret_value()) == sandbox_user
    assert tokens.expires_at == clock() + timedelta(seconds=3600)
    assert tokens.scopes >= set(REQUIRED_SCOPES)
    assert tokens.refresh_token.get_secret_value()


async def test_a_code_is_refused_with_another_verifier_and_works_only_once(
    oauth: OAuthClient, transport: CountingTransport
) -> None:
    pkce = Pkce.generate()
    wrong = Pkce.generate()

    with pytest.raises(LoginRequired, match="invalid_grant") as raised:
        await oauth.exchange_code(
            await authorization_code(transport, pkce), wrong.verifier, REDIRECT_URI
        )
    assert wrong.verifier.get_secret_value() not in str(raised.value)

    code = await authorization_code(transport, pkce)
    await oauth.exchange_code(code, pkce.verifier, REDIRECT_URI)
    with pytest.raises(LoginRequired, match=r"run `starter\.py login` again"):
        await oauth.exchange_code(code, pkce.verifier, REDIRECT_URI)


async def test_a_refresh_without_a_new_refresh_token_keeps_the_old_one(
    oauth: OAuthClient,
    transport: CountingTransport,
    sandbox: Sandbox,
    sandbox_user: str,
    clock: FakeClock,
) -> None:
    before = issued(sandbox, sandbox_user, clock)

    after = await oauth.refresh(before.refresh_token)

    assert after.access_token != before.access_token
    assert after.refresh_token == before.refresh_token
    assert await user_of(transport, after.access_token.get_secret_value()) == sandbox_user


async def test_a_rotated_refresh_token_replaces_the_old_one(
    oauth: OAuthClient, sandbox: Sandbox, sandbox_user: str, clock: FakeClock
) -> None:
    sandbox.settings.rotate_refresh_tokens = True
    before = issued(sandbox, sandbox_user, clock)

    after = await oauth.refresh(before.refresh_token)

    assert after.refresh_token != before.refresh_token
    assert (await oauth.refresh(after.refresh_token)).access_token.get_secret_value()


async def test_a_revoked_refresh_token_means_logging_in_again(
    oauth: OAuthClient, sandbox: Sandbox, sandbox_user: str, clock: FakeClock
) -> None:
    tokens = issued(sandbox, sandbox_user, clock)
    sandbox.revoke_refresh_tokens(sandbox_user)

    with pytest.raises(
        LoginRequired, match=r"invalid_grant.*run `starter\.py login` again"
    ) as raised:
        await oauth.refresh(tokens.refresh_token)
    assert tokens.refresh_token.get_secret_value() not in str(raised.value)


async def test_an_unknown_client_is_a_bad_request_not_a_login_problem(
    transport: CountingTransport, sandbox: Sandbox, sandbox_user: str, clock: FakeClock
) -> None:
    sandbox.settings.known_client_ids = {DEFAULT_CLIENT_ID}
    tokens = issued(sandbox, sandbox_user, clock)

    async with OAuthClient(ACCOUNTS, "someone-elses-app", transport=transport) as stranger:
        with pytest.raises(BadRequest, match="invalid_client") as raised:
            await stranger.refresh(tokens.refresh_token)
    assert raised.value.status == 400
    assert raised.value.endpoint == "POST /api/token"


async def test_an_unreachable_accounts_service_is_transient() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    async with OAuthClient(f"http://127.0.0.1:{closed_port}", DEFAULT_CLIENT_ID) as oauth:
        with pytest.raises(TransientError, match="POST /api/token failed: ConnectError"):
            await oauth.refresh(SecretStr("whatever"))


async def test_an_accounts_service_that_never_answers_is_transient() -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts, never answers
        port = silent.getsockname()[1]
        async with OAuthClient(f"http://127.0.0.1:{port}", DEFAULT_CLIENT_ID, timeout=0.2) as oauth:
            with pytest.raises(TransientError, match="POST /api/token timed out"):
                await oauth.refresh(SecretStr("whatever"))


# --- TokenManager -------------------------------------------------------------------


@pytest.fixture
async def manager(
    oauth: OAuthClient, store: TokenStore, sandbox: Sandbox, sandbox_user: str, clock: FakeClock
) -> TokenManager:
    """The sandbox user's token manager, right after a login."""
    await store.save(sandbox_user, issued(sandbox, sandbox_user, clock))
    return await TokenManager.from_store(sandbox_user, oauth=oauth, store=store, clock=clock)


async def test_the_token_is_refreshed_a_minute_ahead_of_expiry(
    manager: TokenManager,
    transport: CountingTransport,
    store: TokenStore,
    sandbox_user: str,
    clock: FakeClock,
) -> None:
    first = await manager.access_token()

    clock.advance(3600 - 61)
    assert await manager.access_token() == first
    assert transport.grants == []

    clock.advance(2)
    fresh = await manager.access_token()

    assert fresh != first
    assert transport.grants == ["refresh_token"]
    assert await user_of(transport, fresh) == sandbox_user
    stored = await store.load(sandbox_user)
    assert stored.access_token.get_secret_value() == fresh
    assert stored.expires_at == clock() + timedelta(seconds=3600)
    assert stored.scope == manager.tokens.scope != ""


async def test_concurrent_rejections_cause_one_refresh(
    manager: TokenManager, transport: CountingTransport, store: TokenStore, sandbox_user: str
) -> None:
    rejected = await manager.access_token()

    answers = await asyncio.gather(*(manager.refresh_after_rejection(rejected) for _ in range(20)))

    assert transport.grants == ["refresh_token"]
    assert len(set(answers)) == 1
    assert answers[0] != rejected
    assert await user_of(transport, answers[0]) == sandbox_user
    # A late caller still holding the old token gets the new one, without a refresh.
    assert await manager.refresh_after_rejection(rejected) == answers[0]
    assert transport.grants == ["refresh_token"]
    assert (await store.load(sandbox_user)).access_token.get_secret_value() == answers[0]


async def test_a_new_token_that_is_rejected_too_is_refreshed_once_more(
    manager: TokenManager, transport: CountingTransport
) -> None:
    second = await manager.refresh_after_rejection(await manager.access_token())
    third = await manager.refresh_after_rejection(second)

    assert third != second
    assert transport.grants == ["refresh_token", "refresh_token"]


async def test_refreshing_keeps_the_refresh_token_when_none_comes_back(
    manager: TokenManager, store: TokenStore, sandbox_user: str
) -> None:
    original = manager.tokens.refresh_token

    await manager.refresh_after_rejection(await manager.access_token())

    assert manager.tokens.refresh_token == original
    assert (await store.load(sandbox_user)).refresh_token == original


async def test_a_revoked_login_raises_login_required_and_keeps_the_stored_tokens(
    manager: TokenManager, store: TokenStore, sandbox: Sandbox, sandbox_user: str, clock: FakeClock
) -> None:
    stored_before = await store.load(sandbox_user)
    sandbox.revoke_refresh_tokens(sandbox_user)
    clock.advance(3600)

    with pytest.raises(LoginRequired, match=r"run `starter\.py login` again"):
        await manager.access_token()

    assert await store.load(sandbox_user) == stored_before


async def test_a_login_refreshed_by_another_process_is_adopted_without_a_refresh(
    manager: TokenManager,
    oauth: OAuthClient,
    transport: CountingTransport,
    store: TokenStore,
    sandbox: Sandbox,
    sandbox_user: str,
    clock: FakeClock,
) -> None:
    sandbox.settings.rotate_refresh_tokens = True
    ours = manager
    theirs = await TokenManager.from_store(sandbox_user, oauth=oauth, store=store, clock=clock)
    rejected = await ours.access_token()
    fresh = await theirs.refresh_after_rejection(rejected)  # rotates the refresh token

    assert await ours.refresh_after_rejection(rejected) == fresh
    assert transport.grants == ["refresh_token"]
    assert ours.tokens == theirs.tokens


async def test_an_account_without_a_stored_login_is_named(
    oauth: OAuthClient, store: TokenStore
) -> None:
    with pytest.raises(NoStoredLogin, match="no login for account 'nobody'"):
        await TokenManager.from_store("nobody", oauth=oauth, store=store)


def test_nothing_secret_in_the_reprs(
    sandbox: Sandbox, sandbox_user: str, clock: FakeClock, store: TokenStore
) -> None:
    tokens = issued(sandbox, sandbox_user, clock)
    oauth = OAuthClient(ACCOUNTS, DEFAULT_CLIENT_ID)
    manager = TokenManager(sandbox_user, tokens, oauth=oauth, store=store, clock=clock)

    shown = repr(manager) + repr(oauth) + repr(tokens) + repr(store)
    assert tokens.access_token.get_secret_value() not in shown
    assert tokens.refresh_token.get_secret_value() not in shown


class RefreshingFirst(httpx.AsyncBaseTransport):
    """Lets another process's refresh happen in the instant before our grant is sent:
    after our read of the store, before Spotify sees our (then rotated) refresh token."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.before_grant: list[Callable[[], Awaitable[object]]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/token" and self.before_grant:
            await self.before_grant.pop()()
        return await self.inner.handle_async_request(request)


async def test_a_refresh_that_loses_the_race_to_another_process_takes_its_tokens(
    sandbox: Sandbox,
    transport: CountingTransport,
    store: TokenStore,
    sandbox_user: str,
    clock: FakeClock,
) -> None:
    sandbox.settings.rotate_refresh_tokens = True
    await store.save(sandbox_user, issued(sandbox, sandbox_user, clock))
    racing = RefreshingFirst(transport)
    async with (
        OAuthClient(ACCOUNTS, DEFAULT_CLIENT_ID, transport=racing, clock=clock) as ours_oauth,
        OAuthClient(ACCOUNTS, DEFAULT_CLIENT_ID, transport=transport, clock=clock) as theirs_oauth,
    ):
        ours = await TokenManager.from_store(
            sandbox_user, oauth=ours_oauth, store=store, clock=clock
        )
        theirs = await TokenManager.from_store(
            sandbox_user, oauth=theirs_oauth, store=store, clock=clock
        )
        rejected = await ours.access_token()
        racing.before_grant.append(lambda: theirs.refresh_after_rejection(rejected))

        fresh = await ours.refresh_after_rejection(rejected)

    # Their grant rotated the refresh token, so ours was refused: not a lost login.
    assert transport.grants == ["refresh_token", "refresh_token"]
    assert fresh == theirs.tokens.access_token.get_secret_value()
    assert ours.tokens == theirs.tokens == await store.load(sandbox_user)
    assert await user_of(transport, fresh) == sandbox_user
