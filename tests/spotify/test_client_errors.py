"""How the client fails: typed, at once, never sleeping, never retrying on its own."""

from __future__ import annotations

import time

import pytest

from enforcer.sandbox import Faults, SandboxSettings
from enforcer.spotify import (
    AccessTokenExpired,
    Forbidden,
    LoginRequired,
    RateLimited,
    TransientError,
)
from tests.spotify.sandbox_client import (
    USER,
    Clock,
    SandboxTokens,
    library,
    new_sandbox,
    sandbox_client,
    sandbox_transport,
    track_uri,
)
from tests.support.contract import ContractRecorder


async def test_a_429_surfaces_at_once_with_its_exact_retry_after(
    contract_recorder: ContractRecorder,
) -> None:
    settings = SandboxSettings(rate_limit_budget=2, rate_limit_retry_after=7)
    sandbox = new_sandbox(library(tracks=3, liked=3), settings=settings, clock=Clock())
    async with sandbox_client(sandbox, contract_recorder) as client:
        await client.current_user()
        await client.liked_songs_page()
        started = time.monotonic()
        with pytest.raises(RateLimited) as limited:
            await client.current_user()
        elapsed = time.monotonic() - started
    assert limited.value.retry_after == 7
    assert not limited.value.quota_exceeded
    assert limited.value.endpoint == "GET /v1/me"
    assert elapsed < 1  # no sleeping on Retry-After
    assert sandbox.counters.calls["GET /v1/me"] == 2  # and no retry of the 429
    assert sandbox.counters.rate_limited == 1


async def test_a_daily_quota_429_says_so_and_how_long_to_wait(
    contract_recorder: ContractRecorder,
) -> None:
    clock = Clock()  # noon UTC: twelve hours to the next quota day
    sandbox = new_sandbox(library(tracks=3), settings=SandboxSettings(daily_quota=1), clock=clock)
    async with sandbox_client(sandbox, contract_recorder) as client:
        await client.current_user()
        with pytest.raises(RateLimited) as limited:
            await client.current_user()
    assert limited.value.quota_exceeded
    assert limited.value.retry_after == 12 * 3600


async def test_a_retry_after_of_zero_is_kept(contract_recorder: ContractRecorder) -> None:
    sandbox = new_sandbox(library(tracks=3))
    sandbox.set_faults(Faults(storm_requests=1, storm_retry_after=0))
    async with sandbox_client(sandbox, contract_recorder) as client:
        with pytest.raises(RateLimited) as limited:
            await client.current_user()
        assert (await client.current_user()).id == USER
    assert limited.value.retry_after == 0


async def test_an_expired_token_is_refreshed_once_and_the_call_retried(
    contract_recorder: ContractRecorder,
) -> None:
    clock = Clock()
    settings = SandboxSettings(access_token_lifetime=60)
    sandbox = new_sandbox(library(tracks=3, liked=3), settings=settings, clock=clock)
    transport = sandbox_transport(sandbox, contract_recorder)
    tokens = SandboxTokens(sandbox, USER, transport)
    async with sandbox_client(sandbox, contract_recorder, tokens=tokens) as client:
        await client.current_user()
        clock.advance(61)
        page = await client.liked_songs_page()
    assert len(page.items) == 3
    assert tokens.refreshes == 1
    assert client.calls["GET /v1/me/tracks"] == 2  # the 401, then the retry


class _AlwaysRejected:
    """A provider whose tokens Spotify never accepts, even freshly refreshed."""

    def __init__(self) -> None:
        self.refreshes = 0

    async def access_token(self) -> str:
        return "secret-token-one"

    async def refresh_after_rejection(self, rejected: str) -> str:
        self.refreshes += 1
        return "secret-token-two"


async def test_a_second_401_is_access_token_expired_without_leaking_the_token(
    contract_recorder: ContractRecorder,
) -> None:
    sandbox = new_sandbox(library(tracks=3))
    tokens = _AlwaysRejected()
    async with sandbox_client(sandbox, contract_recorder, tokens=tokens) as client:
        with pytest.raises(AccessTokenExpired) as expired:
            await client.current_user()
    assert tokens.refreshes == 1
    assert client.calls["GET /v1/me"] == 2
    shown = f"{expired.value} {expired.value!r} {client!r} {client.calls!r}"
    assert "secret-token" not in shown


async def test_a_refused_refresh_token_asks_for_a_new_login(
    contract_recorder: ContractRecorder,
) -> None:
    clock = Clock()
    settings = SandboxSettings(access_token_lifetime=60)
    sandbox = new_sandbox(library(tracks=3), settings=settings, clock=clock)
    async with sandbox_client(sandbox, contract_recorder) as client:
        await client.current_user()
        sandbox.revoke_refresh_tokens(USER)
        clock.advance(61)
        with pytest.raises(LoginRequired):
            await client.current_user()
    assert client.calls["GET /v1/me"] == 2


async def test_a_server_error_is_transient_and_not_retried(
    contract_recorder: ContractRecorder,
) -> None:
    sandbox = new_sandbox(library(tracks=3, liked=3))
    sandbox.set_faults(Faults(server_error_rate=1.0))
    async with sandbox_client(sandbox, contract_recorder) as client:
        with pytest.raises(TransientError) as failed:
            await client.remove_from_library([track_uri(0)])
    assert failed.value.status in {500, 502, 503}
    assert client.calls.total == 1


async def test_a_request_past_its_deadline_is_transient(
    contract_recorder: ContractRecorder,
) -> None:
    sandbox = new_sandbox(library(tracks=3))
    sandbox.set_faults(Faults(latency_ms=2000))
    started = time.monotonic()
    async with sandbox_client(sandbox, contract_recorder, request_timeout=0.2) as client:
        with pytest.raises(TransientError, match=r"did not answer within 0\.2 s"):
            await client.current_user()
    assert time.monotonic() - started < 1.5


async def test_a_missing_scope_is_named_in_the_forbidden(
    contract_recorder: ContractRecorder,
) -> None:
    sandbox = new_sandbox(library(tracks=3, liked=3))
    async with sandbox_client(sandbox, contract_recorder, scopes="user-library-read") as client:
        with pytest.raises(Forbidden) as forbidden:
            await client.remove_from_library([track_uri(0)])
    assert forbidden.value.reason == "INSUFFICIENT_SCOPE"
    assert "user-library-modify" in str(forbidden.value)
    assert client.calls.total == 1  # the legacy endpoint needs the same scope: not tried
    assert len(sandbox.dump_user(USER)["liked_songs"]) == 3  # nothing changed
