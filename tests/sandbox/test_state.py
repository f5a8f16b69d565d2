"""Fixtures in and out, the generator, and the admin API."""

from __future__ import annotations

import copy
import json
import time
from functools import partial
from typing import Any

import httpx
import pytest

from enforcer.sandbox import FixtureError, Sandbox, generate_library, load_fixture
from tests.support.contract import ContractRecorder
from tests.support.sandbox import SANDBOX_BASE_URL, SMALL_LIBRARY

from ._helpers import BLOCKED_ANTHEM, GOOD_MORNING, ROAD_TRIP, client


def _small() -> dict[str, Any]:
    library: dict[str, Any] = json.loads(SMALL_LIBRARY.read_text())
    return library


def test_dump_round_trips_through_load(sandbox: Sandbox) -> None:
    dumped = sandbox.dump()
    again = Sandbox()
    again.load_fixture(dumped)
    assert again.dump() == dumped


@pytest.mark.parametrize(
    ("break_it", "named"),
    [
        (lambda f: f["playlists"][0]["items"][0].update(uri="spotify:track:" + "Z" * 22), "Z" * 22),
        (lambda f: f["catalog"]["tracks"][0].update(id="not-an-id"), "not-an-id"),
        (lambda f: f["users"][0]["liked_songs"][0].update(added_at="yesterday"), "yesterday"),
        (lambda f: f["playlists"][1].update(owner="carol"), "carol"),
        (lambda f: f["users"][0].update(favourite="jazz"), "favourite"),
    ],
)
def test_bad_fixtures_name_the_bad_value_and_change_nothing(
    sandbox: Sandbox, break_it: Any, named: str
) -> None:
    before = sandbox.dump()
    fixture = _small()
    break_it(fixture)
    with pytest.raises(FixtureError, match=named):
        sandbox.load_fixture(fixture)
    with pytest.raises(FixtureError, match=named):
        load_fixture(fixture)
    assert sandbox.dump() == before


def test_load_user_replaces_one_user_and_its_playlists(sandbox: Sandbox) -> None:
    alice = sandbox.dump_user("alice")
    bob_before = sandbox.dump_user("bob")
    changed = copy.deepcopy(alice)
    changed["liked_songs"] = changed["liked_songs"][:1]
    changed["playlists"] = [p for p in changed["playlists"] if not isinstance(p, str)][:1]
    sandbox.load_user("alice", changed)
    assert sandbox.dump_user("alice") == changed
    # the collaborative playlist alice dropped is gone from bob's list too
    assert sandbox.dump_user("bob")["playlists"] == [bob_before["playlists"][0]]
    sandbox.load_user("alice", alice)
    assert sandbox.dump_user("alice") == alice


def test_generator_is_deterministic() -> None:
    small = partial(generate_library, liked_songs=300, playlists=5, playlist_size=40)
    assert small(seed=11) == small(seed=11)
    assert small(seed=11) != small(seed=12)
    with pytest.raises(ValueError, match="liked_songs"):
        generate_library(liked_songs=-1)


async def test_a_fifty_thousand_song_library_is_quick_to_build_and_to_page(
    contract_recorder: ContractRecorder,
) -> None:
    started = time.perf_counter()
    fixture = generate_library(seed=1, liked_songs=50_000, playlists=500, playlist_size=40)
    sandbox = Sandbox()
    sandbox.load_fixture(fixture)
    assert time.perf_counter() - started < 8
    user = fixture["users"][0]
    assert len(user["liked_songs"]) == 50_000
    assert len(user["playlists"]) == 502
    async with client(sandbox, contract_recorder, "user") as http:
        started = time.perf_counter()
        page = (await http.get("/v1/me/tracks", params={"offset": 49_950, "limit": 50})).json()
        uris = ",".join(f"spotify:track:{i['track']['id']}" for i in page["items"][:40])
        assert (await http.delete("/v1/me/library", params={"uris": uris})).status_code == 200
        assert time.perf_counter() - started < 1
    assert page["total"] == 50_000
    assert page["next"] is None
    assert len(sandbox.dump_user("user")["liked_songs"]) == 49_960


async def test_admin_api_sets_the_stage(sandbox: Sandbox) -> None:
    transport = httpx.ASGITransport(app=sandbox.app)
    async with httpx.AsyncClient(base_url=SANDBOX_BASE_URL, transport=transport) as admin:
        fixture = (await admin.get("/__sandbox/fixture")).json()
        assert [u["id"] for u in fixture["users"]] == ["alice", "bob"]
        bad = await admin.put("/__sandbox/fixture", json={"catalog": {}, "users": [{"id": 7}]})
        assert bad.status_code == 400
        assert "users[0].id" in bad.json()["error"]["message"]
        assert (await admin.get("/__sandbox/fixture")).json() == fixture
        tokens = (
            await admin.post("/__sandbox/users/bob/tokens", json={"scopes": "user-library-read"})
        ).json()
        assert tokens["scope"] == "user-library-read"
        me = await admin.get(
            "/v1/me", headers={"Authorization": f"Bearer {tokens['access_token']}"}
        )
        assert me.json()["id"] == "bob"
        assert (await admin.post("/__sandbox/users/bob/revoke")).json() == {"revoked": 1}
        assert (await admin.get("/__sandbox/counters")).json()["calls"] == {"GET /v1/me": 1}
        assert (await admin.delete("/__sandbox/counters")).status_code == 204
        patched = await admin.patch("/__sandbox/settings", json={"rate_limit_budget": 5})
        assert patched.json()["rate_limit_budget"] == 5
        assert sandbox.settings.rate_limit_budget == 5
        wrong = await admin.patch("/__sandbox/settings", json={"legacy_endpoints": "maybe"})
        assert wrong.status_code == 400
        assert "maybe" in wrong.json()["error"]["message"]
        closed = await admin.patch(
            "/__sandbox/settings", json={"closed_endpoints": {"GET /v1/x": 404}}
        )
        assert closed.status_code == 400
        assert "GET /v1/x" in closed.json()["error"]["message"]
        assert sandbox.settings.legacy_endpoints == "working"
        faults = await admin.put("/__sandbox/faults", json={"seed": 3, "server_error_rate": 2})
        assert faults.status_code == 400
        assert "server_error_rate" in faults.json()["error"]["message"]
        alice = (await admin.get("/__sandbox/users/alice")).json()
        alice["liked_songs"] = [s for s in alice["liked_songs"] if s["track_id"] != BLOCKED_ANTHEM]
        assert (await admin.put("/__sandbox/users/alice", json=alice)).status_code == 204
        liked = [s["track_id"] for s in sandbox.dump_user("alice")["liked_songs"]]
        assert BLOCKED_ANTHEM not in liked
        assert GOOD_MORNING in liked
        assert (await admin.get("/__sandbox/users/carol")).status_code == 404
        assert ROAD_TRIP in [p["id"] for p in fixture["playlists"]]


def _admin(sandbox: Sandbox) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=sandbox.app)
    return httpx.AsyncClient(base_url=SANDBOX_BASE_URL, transport=transport)


async def test_admin_api_replaces_a_users_library_with_a_generated_one(sandbox: Sandbox) -> None:
    sizes = {"seed": 3, "liked_songs": 75, "playlists": 4, "playlist_size": 12,
             "saved_albums": 5, "followed_artists": 7, "followed_playlists": 1}  # fmt: skip
    async with _admin(sandbox) as admin:
        answer = await admin.post("/__sandbox/users/alice/generate", json=sizes)
    assert answer.status_code == 200
    assert answer.json() == {
        "user_id": "alice",
        "liked_songs": 75,
        "saved_albums": 5,
        "followed_artists": 7,
        "playlists": 5,
    }
    alice = sandbox.dump_user("alice")
    owned = [p for p in alice["playlists"] if isinstance(p, dict)]
    assert [len(p["items"]) for p in owned] == [12] * 4
    assert "bob" in sandbox.state.users, "other users stay"
    assert "curator" in sandbox.state.users, "the followed playlist comes with its owner"
    assert BLOCKED_ANTHEM not in sandbox.state.users["alice"].liked_songs


@pytest.mark.parametrize(
    ("arguments", "named"),
    [
        ({"liked_songs": -1}, "-1"),
        ({"liked_songs": "many"}, "'many'"),
        ({"playlists": True}, "True"),
        ({"songs": 5}, "'songs'"),
        ({"saved_albums": 50, "albums": 10}, "50"),
        ({"user_id": "mallory"}, "'mallory'"),
    ],
)
async def test_bad_generator_arguments_are_named_and_change_nothing(
    sandbox: Sandbox, arguments: dict[str, object], named: str
) -> None:
    before = sandbox.dump()
    async with _admin(sandbox) as admin:
        answer = await admin.post("/__sandbox/users/alice/generate", json=arguments)
    assert answer.status_code == 400
    assert named in answer.json()["error"]["message"]
    assert sandbox.dump() == before


async def test_the_request_log_and_the_counters_tell_what_was_sent_where(
    sandbox: Sandbox, contract_recorder: ContractRecorder
) -> None:
    sandbox.settings.request_log_size = 3
    async with client(sandbox, contract_recorder) as http, _admin(sandbox) as admin:
        await http.get(f"/v1/playlists/{ROAD_TRIP}/items")
        await http.get(f"/v1/playlists/{ROAD_TRIP}/items", params={"offset": 1})
        await http.get("/v1/playlists/plAliceMix000000000000/items")
        await http.get("/v1/me")
        await http.get("/v1/me/tracks", params={"limit": 1})
        log = (await admin.get("/__sandbox/requests")).json()
        counters = (await admin.get("/__sandbox/counters")).json()
        await admin.delete("/__sandbox/counters")
        cleared = (await admin.get("/__sandbox/requests")).json()

    assert log["size"] == 3
    assert [(r["method"], r["path"], r["query"], r["status"]) for r in log["requests"]] == [
        ("GET", "/v1/playlists/plAliceMix000000000000/items", "", 200),
        ("GET", "/v1/me", "", 200),
        ("GET", "/v1/me/tracks", "limit=1", 200),
    ]
    assert all(isinstance(r["arrived_at"], float) for r in log["requests"])
    assert counters["calls_by_resource"] == {
        "GET /v1/playlists/{playlist_id}/items": {ROAD_TRIP: 2, "plAliceMix000000000000": 1}
    }
    assert cleared["requests"] == []
