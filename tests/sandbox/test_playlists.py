"""Playlists: reading, ownership, every-occurrence removal, snapshots and limits."""

from __future__ import annotations

import httpx

from enforcer.sandbox import Sandbox, SandboxSettings, generate_library
from tests.support.contract import ContractRecorder

from ._helpers import (
    ALICE_MIX,
    BLOCKED_ANTHEM,
    BLOCKED_BALLAD,
    BOBS_PICKS,
    GOOD_MORNING,
    GUEST_SPOT,
    ROAD_TRIP,
    client,
    take_request_violations,
    track_uri,
)


async def _uris(http: httpx.AsyncClient, playlist_id: str) -> list[str | None]:
    page = (await http.get(f"/v1/playlists/{playlist_id}/items", params={"limit": 50})).json()
    return [item["item"]["uri"] if item["item"] else None for item in page["items"]]


async def test_my_playlists_lists_owned_and_followed_with_both_keys(
    sandbox_http: httpx.AsyncClient,
) -> None:
    page = (await sandbox_http.get("/v1/me/playlists")).json()
    assert [p["id"] for p in page["items"]] == [ALICE_MIX, ROAD_TRIP, BOBS_PICKS]
    mix = page["items"][0]
    assert mix["items"]["total"] == mix["tracks"]["total"] == 6
    assert page["items"][2]["owner"]["id"] == "bob"
    assert page["items"][1]["collaborative"] is True


async def test_items_show_duplicates_local_files_and_unavailable_tracks(
    sandbox_http: httpx.AsyncClient, contract_recorder: ContractRecorder
) -> None:
    items = (await sandbox_http.get(f"/v1/playlists/{ALICE_MIX}/items")).json()["items"]
    uris = [i["item"]["uri"] if i["item"] else None for i in items]
    assert uris.count(track_uri(BLOCKED_ANTHEM)) == 2
    local = items[3]
    assert local["is_local"] is True
    assert local["item"]["id"] is None
    assert local["item"]["uri"].startswith("spotify:local:Blocked+Band:Basement:Demo+Tape:")
    assert items[4]["item"] is None
    assert items[4]["track"] is None
    assert items[0]["added_by"]["id"] == "alice"
    assert items[5]["item"] == items[5]["track"]


async def test_removal_takes_every_occurrence_and_makes_a_new_snapshot(
    sandbox_http: httpx.AsyncClient, contract_recorder: ContractRecorder
) -> None:
    before = (await sandbox_http.get(f"/v1/playlists/{ALICE_MIX}")).json()["snapshot_id"]
    answer = await sandbox_http.request(
        "DELETE",
        f"/v1/playlists/{ALICE_MIX}/items",
        json={"items": [{"uri": track_uri(BLOCKED_ANTHEM)}], "snapshot_id": before},
    )
    assert answer.status_code == 200
    after = answer.json()["snapshot_id"]
    assert after != before
    uris = await _uris(sandbox_http, ALICE_MIX)
    assert track_uri(BLOCKED_ANTHEM) not in uris
    assert len(uris) == 4
    # an older snapshot the playlist once had is still accepted
    again = await sandbox_http.request(
        "DELETE",
        f"/v1/playlists/{ALICE_MIX}/items",
        json={"items": [{"uri": track_uri(GOOD_MORNING)}], "snapshot_id": before},
    )
    assert again.status_code == 200


async def test_a_snapshot_the_playlist_never_had_is_refused(
    sandbox_http: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    before = sandbox.dump()
    answer = await sandbox_http.request(
        "DELETE",
        f"/v1/playlists/{ALICE_MIX}/items",
        json={"items": [{"uri": track_uri(BLOCKED_ANTHEM)}], "snapshot_id": "nonsense"},
    )
    assert answer.status_code == 400
    assert "nonsense" in answer.json()["error"]["message"]
    assert sandbox.dump() == before


async def test_adding_is_not_idempotent(sandbox_http: httpx.AsyncClient) -> None:
    body = {"uris": [track_uri(GUEST_SPOT)], "position": 1}
    first = await sandbox_http.post(f"/v1/playlists/{ROAD_TRIP}/items", json=body)
    second = await sandbox_http.post(f"/v1/playlists/{ROAD_TRIP}/items", json=body)
    assert first.status_code == second.status_code == 201
    assert first.json()["snapshot_id"] != second.json()["snapshot_id"]
    uris = await _uris(sandbox_http, ROAD_TRIP)
    assert uris == [
        track_uri("trDuoSong0000000000000"),
        track_uri(GUEST_SPOT),
        track_uri(GUEST_SPOT),
        track_uri(BLOCKED_BALLAD),
    ]


async def test_only_the_owner_writes_and_reads_items(
    sandbox_http: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    before = sandbox.dump()
    remove = await sandbox_http.request(
        "DELETE",
        f"/v1/playlists/{BOBS_PICKS}/items",
        json={"items": [{"uri": track_uri(BLOCKED_ANTHEM)}]},
    )
    add = await sandbox_http.post(
        f"/v1/playlists/{BOBS_PICKS}/items", json={"uris": [track_uri(GUEST_SPOT)]}
    )
    read = await sandbox_http.get(f"/v1/playlists/{BOBS_PICKS}/items")
    playlist = (await sandbox_http.get(f"/v1/playlists/{BOBS_PICKS}")).json()
    assert (remove.status_code, add.status_code, read.status_code) == (403, 403, 403)
    assert "items" not in playlist
    assert playlist["owner"]["id"] == "bob"
    assert sandbox.dump() == before


async def test_collaborators_read_and_write_only_when_allowed(
    sandbox: Sandbox, contract_recorder: ContractRecorder
) -> None:
    async with client(sandbox, contract_recorder, "bob") as bob:
        assert (await bob.get(f"/v1/playlists/{ROAD_TRIP}/items")).status_code == 200
        body = {"uris": [track_uri(GUEST_SPOT)]}
        assert (await bob.post(f"/v1/playlists/{ROAD_TRIP}/items", json=body)).status_code == 403
        sandbox.settings.collaborator_can_write = True
        assert (await bob.post(f"/v1/playlists/{ROAD_TRIP}/items", json=body)).status_code == 201


async def test_local_file_uris_cannot_be_added_or_removed(
    sandbox_http: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    before = sandbox.dump()
    local = "spotify:local:Blocked+Band:Basement:Demo+Tape:125"
    add = await sandbox_http.post(f"/v1/playlists/{ALICE_MIX}/items", json={"uris": [local]})
    remove = await sandbox_http.request(
        "DELETE", f"/v1/playlists/{ALICE_MIX}/items", json={"items": [{"uri": local}]}
    )
    assert add.status_code == remove.status_code == 400
    assert "local" in remove.json()["error"]["message"].lower()
    assert sandbox.dump() == before


async def test_playlist_limits(contract_recorder: ContractRecorder) -> None:
    sandbox = Sandbox(SandboxSettings())
    sandbox.load_fixture(
        generate_library(seed=5, liked_songs=10, playlists=1, playlist_size=120, user_id="alice")
    )
    playlist_id = sandbox.dump_user("alice")["playlists"][0]["id"]
    tracks = [track_uri(t["id"]) for t in sandbox.dump()["catalog"]["tracks"]][:101]
    base = f"/v1/playlists/{playlist_id}"
    async with client(sandbox, contract_recorder) as http:
        assert (await http.get(f"{base}/items", params={"limit": 50})).status_code == 200
        assert (await http.get(f"{base}/items", params={"limit": 51})).status_code == 400
        assert (await http.get(f"{base}/tracks", params={"limit": 100})).status_code == 200
        assert (await http.get(f"{base}/tracks", params={"limit": 101})).status_code == 400
        assert (await http.post(f"{base}/items", json={"uris": tracks})).status_code == 400
        assert (await http.post(f"{base}/items", json={"uris": tracks[:100]})).status_code == 201
        too_many = {"items": [{"uri": u} for u in tracks]}
        assert (await http.request("DELETE", f"{base}/items", json=too_many)).status_code == 400
        at_limit = {"items": [{"uri": u} for u in tracks[:100]]}
        assert (await http.request("DELETE", f"{base}/items", json=at_limit)).status_code == 200
    take_request_violations(contract_recorder)
    remaining = sandbox.dump_user("alice")["playlists"][0]["items"]
    assert all(item.get("uri") not in tracks[:100] for item in remaining)
