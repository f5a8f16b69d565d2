"""Every form of a request Spotify accepts, the sandbox accepts; where Spotify's behaviour
is unknown, the setting that chooses is tried both ways (docs/sandbox.md, open questions)."""

from __future__ import annotations

import httpx
import pytest

from enforcer.sandbox import Sandbox
from tests.support.contract import ContractRecorder

from ._helpers import (
    ALICE_MIX,
    BLOCKED_ANTHEM,
    DUO_SONG,
    GOOD_MORNING,
    GOOD_SONGS,
    take_request_violations,
    track_uri,
)


def _mix(sandbox: Sandbox) -> list[str | None]:
    return [item.track_id for item in sandbox.state.playlists[ALICE_MIX].items]


async def test_a_trailing_slash_reaches_the_same_endpoint(
    sandbox: Sandbox, sandbox_http: httpx.AsyncClient
) -> None:
    plain = await sandbox_http.get("/v1/me")
    slashed = await sandbox_http.get("/v1/me/")
    page = await sandbox_http.get("/v1/me/tracks/", params={"limit": 2})
    removal = await sandbox_http.delete("/v1/me/library/", params={"uris": track_uri(GOOD_MORNING)})

    assert (slashed.status_code, slashed.json()) == (200, plain.json())
    assert len(page.json()["items"]) == 2
    assert removal.status_code == 200
    assert GOOD_MORNING not in sandbox.state.users["alice"].liked_songs
    assert sandbox.counters.calls["GET /v1/me"] == 2
    assert [r["path"] for r in sandbox.requests] == [
        "/v1/me",
        "/v1/me/",
        "/v1/me/tracks/",
        "/v1/me/library/",
    ]


async def test_an_unknown_path_is_still_not_found_with_or_without_a_slash(
    sandbox_http: httpx.AsyncClient, contract_recorder: ContractRecorder
) -> None:
    answers = [await sandbox_http.get(path) for path in ("/v1/nothing", "/v1/nothing/")]
    contract_recorder.take_violations()  # paths outside the spec, on purpose
    assert [a.status_code for a in answers] == [404, 404]


@pytest.mark.parametrize(
    ("form", "expected_status"),
    [
        ({"json": [track_uri(DUO_SONG)]}, 201),
        ({"json": {"uris": [track_uri(DUO_SONG)]}}, 201),
        ({"params": {"uris": track_uri(DUO_SONG)}}, 201),
    ],
    ids=["bare array", "object", "query"],
)
async def test_playlist_items_are_added_in_every_documented_form(
    form: dict[str, object], expected_status: int, sandbox: Sandbox, sandbox_http: httpx.AsyncClient
) -> None:
    before = _mix(sandbox)
    answer = await sandbox_http.post(f"/v1/playlists/{ALICE_MIX}/items", **form)  # type: ignore[arg-type]
    assert answer.status_code == expected_status
    assert _mix(sandbox) == [*before, DUO_SONG]


async def test_the_querys_uris_win_over_the_bodys(
    sandbox: Sandbox, sandbox_http: httpx.AsyncClient
) -> None:
    answer = await sandbox_http.post(
        f"/v1/playlists/{ALICE_MIX}/items",
        params={"uris": track_uri(DUO_SONG)},
        json={"uris": [track_uri(BLOCKED_ANTHEM)]},
    )
    assert answer.status_code == 201
    assert _mix(sandbox)[-1] == DUO_SONG


async def test_a_bare_array_of_non_uris_is_refused_naming_the_value(
    sandbox: Sandbox, sandbox_http: httpx.AsyncClient, contract_recorder: ContractRecorder
) -> None:
    before = _mix(sandbox)
    answer = await sandbox_http.post(f"/v1/playlists/{ALICE_MIX}/items", json=[42])
    take_request_violations(contract_recorder)
    assert answer.status_code == 400
    assert "42" in answer.json()["error"]["message"]
    assert _mix(sandbox) == before


@pytest.mark.parametrize(("precedence", "expected_index"), [("query", 0), ("body", 2)])
async def test_a_position_given_twice_follows_the_setting(
    precedence: str,
    expected_index: int,
    sandbox: Sandbox,
    sandbox_http: httpx.AsyncClient,
) -> None:
    # Open question: Spotify documents `position` in both places, never which one wins.
    sandbox.settings.position_precedence = precedence  # type: ignore[assignment]
    answer = await sandbox_http.post(
        f"/v1/playlists/{ALICE_MIX}/items",
        params={"position": 0},
        json={"uris": [track_uri(DUO_SONG)], "position": 2},
    )
    assert answer.status_code == 201
    assert _mix(sandbox)[expected_index] == DUO_SONG


@pytest.mark.parametrize(
    ("path", "other_key"), [("items", "tracks"), ("tracks", "items")], ids=["current", "legacy"]
)
@pytest.mark.parametrize("keys", ["documented", "either"])
async def test_removal_under_the_other_generations_key_follows_the_setting(
    path: str,
    other_key: str,
    keys: str,
    sandbox: Sandbox,
    sandbox_http: httpx.AsyncClient,
    contract_recorder: ContractRecorder,
) -> None:
    # Open question: whether /items takes the legacy body key `tracks` (and the reverse).
    sandbox.settings.playlist_removal_keys = keys  # type: ignore[assignment]
    before = _mix(sandbox)
    answer = await sandbox_http.request(
        "DELETE",
        f"/v1/playlists/{ALICE_MIX}/{path}",
        json={other_key: [{"uri": track_uri(BLOCKED_ANTHEM)}]},
    )
    take_request_violations(contract_recorder)
    if keys == "either":
        assert answer.status_code == 200
        assert BLOCKED_ANTHEM not in _mix(sandbox)
    else:
        assert answer.status_code == 400
        assert answer.json()["error"]["message"] == f"Missing required field: {path}"
        assert _mix(sandbox) == before


async def test_legacy_writes_take_ids_from_the_query_before_the_body(
    sandbox: Sandbox, sandbox_http: httpx.AsyncClient
) -> None:
    user = sandbox.state.users["alice"]
    by_body = await sandbox_http.request("DELETE", "/v1/me/albums", json={"ids": [GOOD_SONGS]})
    both = await sandbox_http.request(
        "DELETE", "/v1/me/tracks", params={"ids": GOOD_MORNING}, json={"ids": [DUO_SONG]}
    )
    assert (by_body.status_code, both.status_code) == (200, 200)
    assert GOOD_SONGS not in user.saved_albums
    assert GOOD_MORNING not in user.liked_songs
