"""Rate limits per app, penalties, the daily quota, counters and injected faults."""

from __future__ import annotations

import asyncio

import httpx

from enforcer.sandbox import Faults, Sandbox, SandboxSettings
from tests.support.contract import ContractRecorder

from ._helpers import FakeClock, client


def _sandbox(clock: FakeClock, **settings: object) -> Sandbox:
    sandbox = Sandbox(SandboxSettings.model_validate(settings), clock=clock)
    sandbox.load_fixture("tests/fixtures/small_library.json")
    return sandbox


async def test_rolling_window_answers_429_with_the_exact_retry_after(
    contract_recorder: ContractRecorder,
) -> None:
    clock = FakeClock()
    sandbox = _sandbox(clock, rate_limit_budget=3)
    async with client(sandbox, contract_recorder) as http:
        for _ in range(3):
            assert (await http.get("/v1/me")).status_code == 200
            clock.advance(10)
        # now t=30: the call made at t=0 has left the 30-second window
        assert (await http.get("/v1/me")).status_code == 200
        # the window holds t=10, 20, 30: the one at t=10 leaves it in 10 seconds
        limited = await http.get("/v1/me")
        assert limited.status_code == 429
        assert limited.headers["Retry-After"] == "10"
        assert limited.json()["error"]["status"] == 429
        clock.advance(10)
        assert (await http.get("/v1/me")).status_code == 200
    assert sandbox.counters.rate_limited == 1
    assert sandbox.counters.violations == 0


async def test_calls_during_a_penalty_count_as_violations_or_in_flight(
    contract_recorder: ContractRecorder,
) -> None:
    clock = FakeClock()
    sandbox = _sandbox(clock, rate_limit_budget=1, in_flight_grace_seconds=0.5)
    async with client(sandbox, contract_recorder) as http:
        assert (await http.get("/v1/me")).status_code == 200
        clock.advance(1)
        first = await http.get("/v1/me")
        assert first.headers["Retry-After"] == "29"
        clock.advance(0.2)
        assert (await http.get("/v1/me")).status_code == 429  # in flight
        clock.advance(1)
        assert (await http.get("/v1/me")).status_code == 429  # violation
        clock.advance(28)
        assert (await http.get("/v1/me")).status_code == 200
    counters = sandbox.counters
    assert (counters.rate_limited, counters.in_flight_violations, counters.violations) == (3, 1, 1)
    assert counters.calls["GET /v1/me"] == 5


async def test_violations_can_extend_the_penalty(contract_recorder: ContractRecorder) -> None:
    clock = FakeClock()
    sandbox = _sandbox(
        clock, rate_limit_budget=1, rate_limit_retry_after=5, penalty_extends_on_violation=True
    )
    async with client(sandbox, contract_recorder) as http:
        await http.get("/v1/me")
        assert (await http.get("/v1/me")).headers["Retry-After"] == "5"
        clock.advance(4)
        assert (await http.get("/v1/me")).headers["Retry-After"] == "5"  # extended
        clock.advance(4)
        assert (await http.get("/v1/me")).status_code == 429
        clock.advance(31)
        assert (await http.get("/v1/me")).status_code == 200
    assert sandbox.counters.violations == 2


async def test_daily_quota_has_its_own_body_and_waits_until_midnight(
    contract_recorder: ContractRecorder,
) -> None:
    clock = FakeClock(now=1_767_225_600 - 3600)  # 2025-12-31T23:00:00Z
    sandbox = _sandbox(clock, daily_quota=2, access_token_lifetime=86_400)
    async with client(sandbox, contract_recorder) as http:
        await http.get("/v1/me")
        await http.get("/v1/me")
        answer = await http.get("/v1/me")
        assert answer.status_code == 429
        assert answer.headers["Retry-After"] == "3600"
        assert answer.json() == {
            "error": {"status": 429, "message": "Too many requests", "reason": "QUOTA_EXCEEDED"}
        }
        clock.advance(3600)
        assert (await http.get("/v1/me")).status_code == 200


async def test_rate_limits_are_per_app(contract_recorder: ContractRecorder) -> None:
    clock = FakeClock()
    sandbox = _sandbox(clock, rate_limit_budget=1)
    async with (
        client(sandbox, contract_recorder) as first_app,
        client(sandbox, contract_recorder, client_id="another0app0id") as second_app,
    ):
        assert (await first_app.get("/v1/me")).status_code == 200
        assert (await first_app.get("/v1/me")).status_code == 429
        assert (await second_app.get("/v1/me")).status_code == 200


async def _statuses(faults: Faults, recorder: ContractRecorder, count: int = 40) -> list[int]:
    sandbox = _sandbox(FakeClock())
    sandbox.set_faults(faults)
    async with client(sandbox, recorder) as http:
        return [(await http.get("/v1/me")).status_code for _ in range(count)]


async def test_faults_are_deterministic_by_seed(contract_recorder: ContractRecorder) -> None:
    faults = Faults(seed=7, server_error_rate=0.3)
    first = await _statuses(faults, contract_recorder)
    assert first == await _statuses(faults, contract_recorder)
    assert {500, 502, 503} & set(first)
    assert 200 in first
    assert first != await _statuses(Faults(seed=8, server_error_rate=0.3), contract_recorder)


async def test_a_storm_answers_429_to_the_next_requests(
    contract_recorder: ContractRecorder,
) -> None:
    statuses = await _statuses(Faults(storm_requests=3, storm_retry_after=2), contract_recorder, 5)
    assert statuses == [429, 429, 429, 200, 200]


async def test_a_server_error_can_hide_an_applied_change(
    sandbox: Sandbox, sandbox_http: httpx.AsyncClient
) -> None:
    sandbox.set_faults(Faults(server_error_rate=1.0, server_error_after_change=True))
    uris = "spotify:track:trGoodMorning000000000"
    answer = await sandbox_http.delete("/v1/me/library", params={"uris": uris})
    assert answer.status_code >= 500
    sandbox.set_faults(Faults())
    assert (await sandbox_http.get("/v1/me/library/contains", params={"uris": uris})).json() == [
        False
    ]
    assert sandbox.counters.server_errors == 1


async def test_counters_name_endpoints_by_template(
    sandbox: Sandbox, sandbox_http: httpx.AsyncClient
) -> None:
    await sandbox_http.get("/v1/playlists/plRoadTrip000000000000")
    await sandbox_http.get("/v1/playlists/plRoadTrip000000000000/items")
    await sandbox_http.delete(
        "/v1/me/library", params={"uris": "spotify:track:trGoodMorning000000000"}
    )
    await sandbox_http.post("/api/token", data={"grant_type": "nothing"})
    assert sandbox.counters.calls == {
        "GET /v1/playlists/{playlist_id}": 1,
        "GET /v1/playlists/{playlist_id}/items": 1,
        "DELETE /v1/me/library": 1,
    }
    sandbox.reset_counters()
    assert sandbox.counters.total_calls == 0


async def _arrival_of(sandbox: Sandbox, calls: int) -> None:
    """Wait (without sleeping) until ``calls`` API calls have arrived at the sandbox."""
    for _ in range(10_000):
        if sandbox.counters.total_calls >= calls:
            return
        await asyncio.sleep(0)
    raise AssertionError(f"only {sandbox.counters.total_calls} calls arrived, not {calls}")


async def test_requests_sent_before_a_429_answer_arrives_are_in_flight_whatever_their_latency(
    contract_recorder: ContractRecorder,
) -> None:
    # The real clock: latency is real time, and the old order (sleep, then judge) made a
    # slow request sent before the 429 look like one sent after it.
    sandbox = Sandbox(SandboxSettings(rate_limit_budget=1, rate_limit_retry_after=60))
    sandbox.load_fixture("tests/fixtures/small_library.json")
    async with client(sandbox, contract_recorder) as http:
        assert (await http.get("/v1/me")).status_code == 200
        sandbox.set_faults(Faults(latency_ms=100))
        first_refusal = asyncio.create_task(http.get("/v1/me"))
        await _arrival_of(sandbox, 2)
        sandbox.set_faults(Faults(latency_ms=400))
        slower = asyncio.create_task(http.get("/v1/me"))
        await _arrival_of(sandbox, 3)
        assert not first_refusal.done(), "the answer waits for its latency"
        answers = [await first_refusal, await slower]
        # A well-behaved client stops here, at the first 429 it receives.
    assert [a.status_code for a in answers] == [429, 429]
    counters = sandbox.counters
    assert (counters.violations, counters.in_flight_violations) == (0, 1)


async def test_a_request_sent_after_the_429_answer_could_arrive_is_a_violation(
    contract_recorder: ContractRecorder,
) -> None:
    clock = FakeClock()
    sandbox = _sandbox(
        clock, rate_limit_budget=1, rate_limit_retry_after=60, in_flight_grace_seconds=0.05
    )
    sandbox.set_faults(Faults(latency_ms=50))
    async with client(sandbox, contract_recorder) as http:
        await http.get("/v1/me")
        refused = await http.get("/v1/me")  # decided at T, its answer reaches us at T + 0.05
        clock.advance(0.09)  # before T + 0.05 + grace: could not have known yet
        in_flight = await http.get("/v1/me")
        clock.advance(0.02)  # T + 0.11: the 429's answer (and the grace) has passed
        late = await http.get("/v1/me")
        clock.advance(5)
        later = await http.get("/v1/me")
    assert [r.status_code for r in (refused, in_flight, late, later)] == [429] * 4
    counters = sandbox.counters
    assert (counters.in_flight_violations, counters.violations) == (1, 2)


async def test_a_change_is_made_when_the_request_arrives_not_when_it_is_answered(
    contract_recorder: ContractRecorder,
) -> None:
    sandbox = _sandbox(FakeClock())
    sandbox.set_faults(Faults(latency_ms=300))
    uri = "spotify:track:trGoodMorning000000000"
    async with client(sandbox, contract_recorder) as http:
        removal = asyncio.create_task(http.delete("/v1/me/library", params={"uris": uri}))
        await _arrival_of(sandbox, 1)
        removed_before_the_answer = (
            "trGoodMorning000000000" not in sandbox.state.users["alice"].liked_songs
        )
        answered_early = removal.done()
        assert (await removal).status_code == 200
    assert removed_before_the_answer
    assert not answered_early
    assert [(r["method"], r["path"], r["status"]) for r in sandbox.requests] == [
        ("DELETE", "/v1/me/library", 200)
    ]
