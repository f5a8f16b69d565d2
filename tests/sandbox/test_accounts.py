"""The accounts service: PKCE authorization, refresh, expiry and revocation."""

from __future__ import annotations

import base64
import hashlib
from urllib.parse import parse_qs, urlsplit

import httpx

from enforcer.sandbox import DEFAULT_CLIENT_ID, Sandbox, SandboxSettings
from tests.support.contract import ContractRecorder
from tests.support.sandbox import SANDBOX_BASE_URL, sandbox_transport

from ._helpers import FakeClock

VERIFIER = "v" * 43 + "-._~abc"
REDIRECT = "http://127.0.0.1:8765/callback"


def _challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _accounts(sandbox: Sandbox, recorder: ContractRecorder) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=SANDBOX_BASE_URL, transport=sandbox_transport(sandbox, recorder)
    )


async def _authorize(http: httpx.AsyncClient, **overrides: str) -> httpx.Response:
    params = {
        "response_type": "code",
        "client_id": DEFAULT_CLIENT_ID,
        "redirect_uri": REDIRECT,
        "code_challenge_method": "S256",
        "code_challenge": _challenge(VERIFIER),
        "state": "xyz",
        "scope": "user-library-read user-library-modify",
    }
    return await http.get("/authorize", params={**params, **overrides})


async def _code(http: httpx.AsyncClient) -> str:
    answer = await _authorize(http)
    assert answer.status_code == 302
    location = urlsplit(answer.headers["location"])
    query = parse_qs(location.query)
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT
    assert query["state"] == ["xyz"]
    return query["code"][0]


def _exchange(code: str, verifier: str = VERIFIER) -> dict[str, str]:
    return {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "client_id": DEFAULT_CLIENT_ID,
        "code_verifier": verifier,
    }


async def test_pkce_login_gives_tokens_that_work(
    sandbox: Sandbox, contract_recorder: ContractRecorder
) -> None:
    async with _accounts(sandbox, contract_recorder) as http:
        tokens = (await http.post("/api/token", data=_exchange(await _code(http)))).json()
        assert tokens["token_type"] == "Bearer"
        assert tokens["expires_in"] == 3600
        assert set(tokens["scope"].split()) == {"user-library-read", "user-library-modify"}
        me = await http.get("/v1/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert me.json()["id"] == "alice"


async def test_wrong_verifier_and_reused_code_are_invalid_grants(
    sandbox: Sandbox, contract_recorder: ContractRecorder
) -> None:
    async with _accounts(sandbox, contract_recorder) as http:
        code = await _code(http)
        wrong = await http.post("/api/token", data=_exchange(code, "w" * 50))
        assert wrong.status_code == 400
        assert wrong.json()["error"] == "invalid_grant"
        good_code = await _code(http)
        assert (await http.post("/api/token", data=_exchange(good_code))).status_code == 200
        reused = await http.post("/api/token", data=_exchange(good_code))
    assert reused.status_code == 400
    assert reused.json()["error"] == "invalid_grant"


async def test_authorize_refuses_localhost_and_bad_parameters(
    sandbox: Sandbox, contract_recorder: ContractRecorder
) -> None:
    async with _accounts(sandbox, contract_recorder) as http:
        for overrides, named in [
            ({"redirect_uri": "http://localhost:8765/callback"}, "localhost"),
            ({"redirect_uri": "http://10.0.0.1:8765/cb"}, "10.0.0.1"),
            ({"redirect_uri": "http://127.0.0.1/cb"}, "port"),
            ({"code_challenge_method": "plain"}, "plain"),
            ({"response_type": "token"}, "token"),
            ({"scope": "user-library-read make-coffee"}, "make-coffee"),
        ]:
            answer = await _authorize(http, **overrides)
            assert answer.status_code == 400, overrides
            assert named in answer.text
        ipv6 = await _authorize(http, redirect_uri="http://[::1]:8765/callback")
    assert ipv6.status_code == 302


async def test_access_tokens_expire_and_refresh_keeps_the_refresh_token(
    contract_recorder: ContractRecorder,
) -> None:
    clock = FakeClock()
    sandbox = Sandbox(SandboxSettings(access_token_lifetime=60), clock=clock)
    sandbox.load_fixture("tests/fixtures/small_library.json")
    tokens = sandbox.issue_tokens("alice")
    async with _accounts(sandbox, contract_recorder) as http:
        bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
        assert (await http.get("/v1/me", headers=bearer)).status_code == 200
        clock.advance(60)
        expired = await http.get("/v1/me", headers=bearer)
        assert expired.status_code == 401
        refresh = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"],
                   "client_id": DEFAULT_CLIENT_ID}  # fmt: skip
        renewed = (await http.post("/api/token", data=refresh)).json()
        assert "refresh_token" not in renewed
        fresh = {"Authorization": f"Bearer {renewed['access_token']}"}
        assert (await http.get("/v1/me", headers=fresh)).status_code == 200
        sandbox.settings.rotate_refresh_tokens = True
        rotated = (await http.post("/api/token", data=refresh)).json()
        assert rotated["refresh_token"] != tokens["refresh_token"]
        assert (await http.post("/api/token", data=refresh)).json()["error"] == "invalid_grant"
        assert (await http.get("/v1/me")).status_code == 401
    contract_recorder.take_violations()  # the request without a bearer, sent on purpose


async def test_revoked_refresh_tokens_are_invalid_grants(
    sandbox: Sandbox, contract_recorder: ContractRecorder
) -> None:
    tokens = sandbox.issue_tokens("alice")
    sandbox.revoke_refresh_tokens("alice")
    async with _accounts(sandbox, contract_recorder) as http:
        answer = await http.post(
            "/api/token",
            data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"],
                  "client_id": DEFAULT_CLIENT_ID},
        )  # fmt: skip
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_grant"
    assert answer.json()["error_description"]
    assert tokens["refresh_token"] not in answer.text


def test_tokens_never_show_in_a_repr(sandbox: Sandbox) -> None:
    tokens = sandbox.issue_tokens("alice")
    shown = repr(sandbox) + repr(sandbox.accounts) + repr(sandbox.counters)
    assert tokens["access_token"] not in shown
    assert tokens["refresh_token"] not in shown
