"""Shared by the sandbox tests: a clock the test moves, clients, and known IDs."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from enforcer.sandbox import DEFAULT_CLIENT_ID, Sandbox
from tests.support.contract import ContractRecorder, Violation
from tests.support.sandbox import SANDBOX_BASE_URL, sandbox_transport

# IDs of tests/fixtures/small_library.json
BLOCKED_BAND = "arBlockedBand000000000"
GOOD_SINGER = "arGoodSinger0000000000"
INDIE_DUO = "arIndieDuo000000000000"
BLOCKED_HITS = "alBlockedHits000000000"
GOOD_SONGS = "alGoodSongs00000000000"
DUO_DEBUT = "alDuoDebut000000000000"
BLOCKED_ANTHEM = "trBlockedAnthem0000000"
BLOCKED_BALLAD = "trBlockedBallad0000000"
GOOD_MORNING = "trGoodMorning000000000"
TOGETHER = "trTogether000000000000"
DUO_SONG = "trDuoSong0000000000000"
GONE_SONG = "trGoneSong000000000000"
GUEST_SPOT = "trGuestSpot00000000000"
ALICE_MIX = "plAliceMix000000000000"
ROAD_TRIP = "plRoadTrip000000000000"
BOBS_PICKS = "plBobsPicks00000000000"


def track_uri(track_id: str) -> str:
    return f"spotify:track:{track_id}"


@dataclass
class FakeClock:
    now: float = 1_750_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def client(
    sandbox: Sandbox,
    recorder: ContractRecorder,
    user_id: str = "alice",
    *,
    scopes: str | None = None,
    client_id: str = DEFAULT_CLIENT_ID,
) -> httpx.AsyncClient:
    token = sandbox.issue_tokens(user_id, scopes, client_id)["access_token"]
    return httpx.AsyncClient(
        base_url=SANDBOX_BASE_URL,
        transport=sandbox_transport(sandbox, recorder),
        headers={"Authorization": f"Bearer {token}"},
    )


def take_request_violations(recorder: ContractRecorder) -> list[Violation]:
    """For a test that sends a bad request on purpose: the spec must only fault the request."""
    taken = recorder.take_violations()
    assert all(v.part == "request" for v in taken), [str(v) for v in taken]
    return taken
