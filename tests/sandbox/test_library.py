"""Liked songs, saved albums and followed artists: the current and the legacy endpoints."""

from __future__ import annotations

import httpx

from enforcer.sandbox import Sandbox, SandboxSettings, generate_library
from tests.support.contract import ContractRecorder

from ._helpers import (
    BLOCKED_ANTHEM,
    BLOCKED_BAND,
    BLOCKED_HITS,
    DUO_DEBUT,
    GOOD_MORNING,
    GUEST_SPOT,
    INDIE_DUO,
    TOGETHER,
    FakeClock,
    client,
    take_request_violations,
    track_uri,
)


async def _liked_ids(http: httpx.AsyncClient) -> list[str]:
    page = (await http.get("/v1/me/tracks", params={"limit": 50})).json()
    return [item["track"]["id"] for item in page["items"]]


def _big_sandbox(clock: FakeClock | None = None, **settings: object) -> Sandbox:
    sandbox = Sandbox(SandboxSettings.model_validate(settings), clock=clock or FakeClock())
    sandbox.load_fixture(
        generate_library(seed=3, liked_songs=120, artists=80, albums=40, followed_artists=60,
                         saved_albums=30, user_id="alice")
    )  # fmt: skip
    return sandbox


async def test_liked_songs_come_newest_first_with_their_dates(
    sandbox_http: httpx.AsyncClient,
) -> None:
    page = (await sandbox_http.get("/v1/me/tracks")).json()
    assert [i["track"]["id"] for i in page["items"]] == [TOGETHER, BLOCKED_ANTHEM, GOOD_MORNING,
                                                        "trGoneSong000000000000"]  # fmt: skip
    assert page["items"][0]["added_at"] == "2024-05-01T12:00:00Z"
    assert [a["id"] for a in page["items"][0]["track"]["artists"]] == [
        "arGoodSinger0000000000",
        BLOCKED_BAND,
    ]
    assert page["total"] == 4
    assert page["next"] is None


async def test_pages_follow_next_links_to_the_end(contract_recorder: ContractRecorder) -> None:
    sandbox = _big_sandbox()
    async with client(sandbox, contract_recorder) as http:
        seen: list[str] = []
        url: str | None = "/v1/me/tracks?limit=50"
        while url:
            page = (await http.get(url)).json()
            seen += [item["track"]["id"] for item in page["items"]]
            url = page["next"]
    assert len(seen) == len(set(seen)) == 120


async def test_page_limit_is_fifty(contract_recorder: ContractRecorder) -> None:
    sandbox = _big_sandbox()
    async with client(sandbox, contract_recorder) as http:
        assert len((await http.get("/v1/me/tracks?limit=50")).json()["items"]) == 50
        for path in ("/v1/me/tracks", "/v1/me/albums", "/v1/me/playlists"):
            answer = await http.get(path, params={"limit": 51})
            assert answer.status_code == 400, path
            assert "51" in answer.json()["error"]["message"]
        answer = await http.get("/v1/me/following", params={"type": "artist", "limit": 51})
        assert answer.status_code == 400
    assert len(take_request_violations(contract_recorder)) == 4


async def test_library_put_saves_at_the_top_with_the_clock_time(
    contract_recorder: ContractRecorder,
) -> None:
    clock = FakeClock(now=1_767_225_600)  # 2026-01-01T00:00:00Z
    sandbox = Sandbox(clock=clock)
    sandbox.load_fixture("tests/fixtures/small_library.json")
    async with client(sandbox, contract_recorder) as http:
        uris = f"{track_uri(GUEST_SPOT)},spotify:album:{DUO_DEBUT},spotify:artist:{INDIE_DUO}"
        assert (await http.put("/v1/me/library", params={"uris": uris})).status_code == 200
        first = (await http.get("/v1/me/tracks", params={"limit": 1})).json()["items"][0]
        albums = (await http.get("/v1/me/albums", params={"limit": 1})).json()["items"]
        contains = await http.get("/v1/me/library/contains", params={"uris": uris})
    assert first["track"]["id"] == GUEST_SPOT
    assert first["added_at"] == "2026-01-01T00:00:00Z"
    assert albums[0]["album"]["id"] == DUO_DEBUT
    assert contains.json() == [True, True, True]


async def test_library_delete_mixes_types_and_ignores_what_is_not_saved(
    sandbox_http: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    uris = ",".join(
        [track_uri(BLOCKED_ANTHEM), f"spotify:album:{BLOCKED_HITS}",
         f"spotify:artist:{BLOCKED_BAND}", track_uri(GUEST_SPOT)]
    )  # fmt: skip
    answer = await sandbox_http.delete("/v1/me/library", params={"uris": uris})
    assert answer.status_code == 200
    user = sandbox.dump_user("alice")
    assert BLOCKED_ANTHEM not in [s["track_id"] for s in user["liked_songs"]]
    assert [a["album_id"] for a in user["saved_albums"]] == ["alGoodSongs00000000000"]
    assert user["followed_artists"] == ["arGoodSinger0000000000"]
    assert len(user["liked_songs"]) == 3


async def test_library_takes_uris_only_from_the_query(
    sandbox_http: httpx.AsyncClient, sandbox: Sandbox, contract_recorder: ContractRecorder
) -> None:
    before = sandbox.dump()
    answer = await sandbox_http.request(
        "DELETE", "/v1/me/library", json={"uris": [track_uri(BLOCKED_ANTHEM)]}
    )
    assert answer.status_code == 400
    assert answer.json() == {"error": {"status": 400, "message": "Missing required field: uris"}}
    assert sandbox.dump() == before
    take_request_violations(contract_recorder)


async def test_library_takes_forty_uris_and_not_forty_one(
    contract_recorder: ContractRecorder,
) -> None:
    sandbox = _big_sandbox()
    tracks = [t["id"] for t in sandbox.dump()["catalog"]["tracks"]][:41]
    async with client(sandbox, contract_recorder) as http:
        too_many = await http.delete(
            "/v1/me/library", params={"uris": ",".join(map(track_uri, tracks))}
        )
        at_limit = await http.put(
            "/v1/me/library", params={"uris": ",".join(map(track_uri, tracks[:40]))}
        )
        contains = await http.get(
            "/v1/me/library/contains", params={"uris": ",".join(map(track_uri, tracks[:40]))}
        )
    assert too_many.status_code == 400
    assert "41" in too_many.json()["error"]["message"]
    assert at_limit.status_code == 200
    assert contains.json() == [True] * 40


async def test_bad_uris_are_refused_and_change_nothing(
    sandbox_http: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    before = sandbox.dump()
    for bad in (
        f"{track_uri(GUEST_SPOT)},spotify:track:short",
        "spotify:track:AAAAAAAAAAAAAAAAAAAAAA",
        "spotify:banana:AAAAAAAAAAAAAAAAAAAAAA",
        "spotify:local:Artist:Album:Song:120",
        GUEST_SPOT,
    ):
        answer = await sandbox_http.put("/v1/me/library", params={"uris": bad})
        assert answer.status_code == 400, bad
        assert answer.json()["error"]["status"] == 400
    assert sandbox.dump() == before


async def test_artist_uris_can_be_refused_by_the_library(
    sandbox: Sandbox, sandbox_http: httpx.AsyncClient
) -> None:
    sandbox.settings.library_accepts_artist_uris = False
    uris = f"spotify:artist:{BLOCKED_BAND}"
    assert (await sandbox_http.delete("/v1/me/library", params={"uris": uris})).status_code == 400
    contains = await sandbox_http.get("/v1/me/library/contains", params={"uris": uris})
    assert contains.json() == [True]
    legacy = await sandbox_http.delete(
        "/v1/me/following", params={"type": "artist", "ids": BLOCKED_BAND}
    )
    assert legacy.status_code == 204
    assert (await sandbox_http.get("/v1/me/library/contains", params={"uris": uris})).json() == [
        False
    ]


async def test_timestamped_ids_keep_their_date_and_place(
    sandbox_http: httpx.AsyncClient,
) -> None:
    await sandbox_http.request("DELETE", "/v1/me/tracks", json={"ids": [BLOCKED_ANTHEM]})
    assert BLOCKED_ANTHEM not in await _liked_ids(sandbox_http)
    answer = await sandbox_http.put(
        "/v1/me/tracks",
        json={"timestamped_ids": [{"id": BLOCKED_ANTHEM, "added_at": "2024-04-01T12:00:00Z"}]},
    )
    assert answer.status_code == 200
    page = (await sandbox_http.get("/v1/me/tracks")).json()["items"]
    assert [i["track"]["id"] for i in page][:3] == [TOGETHER, BLOCKED_ANTHEM, GOOD_MORNING]
    assert page[1]["added_at"] == "2024-04-01T12:00:00Z"


async def test_legacy_write_limits(contract_recorder: ContractRecorder) -> None:
    sandbox = _big_sandbox()
    catalog = sandbox.dump()["catalog"]
    tracks = [t["id"] for t in catalog["tracks"]]
    albums = [a["id"] for a in catalog["albums"]]
    artists = [a["id"] for a in catalog["artists"]]
    followed_before = sandbox.dump_user("alice")["followed_artists"]
    async with client(sandbox, contract_recorder) as http:
        cases = [
            ("/v1/me/tracks", {}, tracks, 50),
            ("/v1/me/albums", {}, albums, 20),
            ("/v1/me/following", {"type": "artist"}, artists, 50),
        ]
        for path, params, ids, limit in cases:
            over = await http.delete(path, params={**params, "ids": ",".join(ids[: limit + 1])})
            assert over.status_code == 400, path
            ok = await http.delete(path, params={**params, "ids": ",".join(ids[:limit])})
            assert ok.status_code in (200, 204), path
    take_request_violations(contract_recorder)
    user = sandbox.dump_user("alice")
    assert user["followed_artists"] == sorted(set(followed_before) - set(artists[:50]))


async def test_development_mode_closes_the_legacy_writes(
    sandbox: Sandbox, sandbox_http: httpx.AsyncClient
) -> None:
    sandbox.settings.legacy_endpoints = "forbidden"
    forbidden = [
        await sandbox_http.request("DELETE", "/v1/me/tracks", json={"ids": [GOOD_MORNING]}),
        await sandbox_http.put("/v1/me/albums", params={"ids": DUO_DEBUT}),
        await sandbox_http.put("/v1/me/following", params={"type": "artist", "ids": INDIE_DUO}),
        await sandbox_http.get("/v1/playlists/plAliceMix000000000000/tracks"),
    ]
    assert [a.status_code for a in forbidden] == [403] * 4
    assert (await sandbox_http.get("/v1/me/tracks")).status_code == 200
    uris = track_uri(GOOD_MORNING)
    assert (await sandbox_http.delete("/v1/me/library", params={"uris": uris})).status_code == 200


async def test_closed_endpoint_answers_the_configured_status(
    sandbox: Sandbox, sandbox_http: httpx.AsyncClient
) -> None:
    sandbox.settings.closed_endpoints = {"DELETE /v1/me/library": 404}
    answer = await sandbox_http.delete("/v1/me/library", params={"uris": track_uri(GOOD_MORNING)})
    assert answer.status_code == 404
    assert GOOD_MORNING in await _liked_ids(sandbox_http)


async def test_followed_artists_page_by_cursor(contract_recorder: ContractRecorder) -> None:
    sandbox = _big_sandbox()
    async with client(sandbox, contract_recorder) as http:
        first = (await http.get("/v1/me/following?type=artist&limit=50")).json()["artists"]
        second = (await http.get(first["next"])).json()["artists"]
    ids = [a["id"] for a in first["items"] + second["items"]]
    assert len(ids) == len(set(ids)) == first["total"] == 60
    assert first["cursors"]["after"] == first["items"][-1]["id"]
    assert second["next"] is None


async def test_missing_scope_is_forbidden(
    sandbox: Sandbox, contract_recorder: ContractRecorder
) -> None:
    async with client(sandbox, contract_recorder, scopes="user-library-read") as http:
        answer = await http.delete("/v1/me/library", params={"uris": track_uri(GOOD_MORNING)})
        assert (await http.get("/v1/me/tracks")).status_code == 200
    assert answer.status_code == 403
    assert answer.json()["error"]["message"] == "Insufficient client scope"
    assert "trGoodMorning000000000" in [
        s["track_id"] for s in sandbox.dump_user("alice")["liked_songs"]
    ]
