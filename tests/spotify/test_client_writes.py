"""Writing through the client: exact chunks, every copy removed, the right generation."""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

import httpx
import pytest

from enforcer.sandbox import Sandbox, SandboxSettings
from enforcer.spotify import (
    Forbidden,
    Generation,
    InMemoryGenerationMemory,
    InvalidIdentifier,
    Operation,
)
from tests.spotify.sandbox_client import (
    API_BASE_URL,
    USER,
    Clock,
    ObservingTransport,
    album_id,
    artist_id,
    entry,
    library,
    moment,
    new_sandbox,
    playlist_id,
    sandbox_client,
    sandbox_transport,
    stamp,
    track_id,
    track_uri,
)
from tests.support.contract import ContractRecorder


def _liked(sandbox: Sandbox) -> list[str]:
    return [song["track_id"] for song in sandbox.dump_user(USER)["liked_songs"]]


def _playlist_uris(sandbox: Sandbox, number: int = 0) -> list[str]:
    playlist = sandbox.dump_user(USER)["playlists"][number]
    return [item["uri"] for item in playlist["items"]]


def _uris_sent(request: httpx.Request) -> list[str]:
    return request.url.params["uris"].split(",")


def _body(request: httpx.Request) -> Any:
    return json.loads(request.content)


async def test_95_library_uris_take_three_calls_of_40_40_and_15(
    contract_recorder: ContractRecorder,
) -> None:
    sandbox = new_sandbox(library(tracks=100, liked=100))
    observer = ObservingTransport(sandbox_transport(sandbox, contract_recorder))
    async with sandbox_client(sandbox, contract_recorder, observer=observer) as client:
        await client.remove_from_library([track_uri(i) for i in range(95)])
    sent = observer.sent("DELETE", "/me/library")
    assert [len(_uris_sent(r)) for r in sent] == [40, 40, 15]
    assert client.calls["DELETE /v1/me/library"] == sandbox.counters.calls["DELETE /v1/me/library"]
    assert _liked(sandbox) == [track_id(i) for i in range(95, 100)]


async def test_the_sandbox_refuses_a_forced_over_limit_request(
    contract_recorder: ContractRecorder,
) -> None:
    sandbox = new_sandbox(library(tracks=41, liked=41))
    token = sandbox.issue_tokens(USER)["access_token"]
    async with httpx.AsyncClient(transport=sandbox_transport(sandbox, contract_recorder)) as http:
        response = await http.delete(
            f"{API_BASE_URL}/me/library",
            params={"uris": ",".join(track_uri(i) for i in range(41))},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert response.status_code == 400
    assert len(_liked(sandbox)) == 41


async def test_one_library_call_mixes_tracks_albums_and_artists(
    contract_recorder: ContractRecorder,
) -> None:
    sandbox = new_sandbox(library(tracks=20, liked=20, saved_albums=10, followed=10))
    uris = (
        [track_uri(i) for i in range(10)]
        + [f"spotify:album:{album_id(i)}" for i in range(5)]
        + [f"https://open.spotify.com/artist/{artist_id(i)}?si=z" for i in range(3)]
    )
    async with sandbox_client(sandbox, contract_recorder) as client:
        await client.remove_from_library(uris)
    user = sandbox.dump_user(USER)
    assert client.calls.total == 1
    assert _liked(sandbox) == [track_id(i) for i in range(10, 20)]
    assert [a["album_id"] for a in user["saved_albums"]] == [album_id(i) for i in range(5, 10)]
    assert sorted(user["followed_artists"]) == [artist_id(i) for i in range(3, 10)]


async def test_250_distinct_playlist_uris_take_three_calls(
    contract_recorder: ContractRecorder,
) -> None:
    items = [entry(i) for i in range(260)]
    sandbox = new_sandbox(library(tracks=260, playlists=[items]))
    observer = ObservingTransport(sandbox_transport(sandbox, contract_recorder))
    async with sandbox_client(sandbox, contract_recorder, observer=observer) as client:
        snapshot = await client.remove_playlist_items(
            playlist_id(0), [track_uri(i) for i in range(250)]
        )
    sent = observer.sent("DELETE", "/items")
    assert [len(_body(r)["items"]) for r in sent] == [100, 100, 50]
    assert _playlist_uris(sandbox) == [track_uri(i) for i in range(250, 260)]
    assert snapshot == sandbox.dump_user(USER)["playlists"][0]["snapshot_id"]


async def test_a_duplicated_track_loses_every_copy_in_one_call(
    contract_recorder: ContractRecorder,
) -> None:
    items = [entry(0), entry(1), entry(0), entry(2), entry(0)]
    sandbox = new_sandbox(library(tracks=3, playlists=[items]))
    before = sandbox.dump_user(USER)["playlists"][0]["snapshot_id"]
    observer = ObservingTransport(sandbox_transport(sandbox, contract_recorder))
    async with sandbox_client(sandbox, contract_recorder, observer=observer) as client:
        snapshot = await client.remove_playlist_items(
            f"spotify:playlist:{playlist_id(0)}",
            [track_uri(0), f"https://open.spotify.com/track/{track_id(0)}"],
            snapshot_id=before,
        )
    (sent,) = observer.sent("DELETE", "/items")
    assert _body(sent) == {"items": [{"uri": track_uri(0)}], "snapshot_id": before}
    assert _playlist_uris(sandbox) == [track_uri(1), track_uri(2)]
    assert snapshot != before


async def test_items_are_added_at_consecutive_positions(
    contract_recorder: ContractRecorder,
) -> None:
    sandbox = new_sandbox(library(tracks=160, playlists=[[entry(i) for i in range(10)]]))
    restored = [track_uri(i) for i in range(10, 160)]
    observer = ObservingTransport(sandbox_transport(sandbox, contract_recorder))
    async with sandbox_client(sandbox, contract_recorder, observer=observer) as client:
        await client.add_playlist_items(playlist_id(0), restored, position=3)
    sent = observer.sent("POST", "/items")
    assert [(len(_body(r)["uris"]), _body(r)["position"]) for r in sent] == [(100, 3), (50, 103)]
    original = [track_uri(i) for i in range(10)]
    assert _playlist_uris(sandbox) == original[:3] + restored + original[3:]


async def test_a_refused_current_endpoint_falls_back_to_legacy_and_is_remembered(
    contract_recorder: ContractRecorder,
) -> None:
    sandbox = new_sandbox(library(tracks=30, liked=30, saved_albums=5, followed=5))
    sandbox.settings.closed_endpoints = {"DELETE /v1/me/library": 403}
    memory = InMemoryGenerationMemory()
    first = [track_uri(i) for i in range(10)] + [
        f"spotify:album:{album_id(0)}",
        f"spotify:artist:{artist_id(0)}",
    ]
    async with sandbox_client(sandbox, contract_recorder, generations=memory) as client:
        await client.remove_from_library(first)
        assert memory.get(Operation.LIBRARY_REMOVE) is Generation.LEGACY
        await client.remove_from_library([track_uri(i) for i in range(10, 15)])
    assert client.calls["DELETE /v1/me/library"] == 1  # the second went straight to legacy
    assert client.calls["DELETE /v1/me/tracks"] == 2
    assert client.calls["DELETE /v1/me/albums"] == 1
    assert client.calls["DELETE /v1/me/following"] == 1
    assert _liked(sandbox) == [track_id(i) for i in range(15, 30)]
    assert artist_id(0) not in sandbox.dump_user(USER)["followed_artists"]


async def test_a_remembered_legacy_generation_that_closes_switches_back(
    contract_recorder: ContractRecorder,
) -> None:
    sandbox = new_sandbox(library(tracks=5, liked=5))
    sandbox.settings.legacy_endpoints = "forbidden"
    memory = InMemoryGenerationMemory({Operation.LIBRARY_REMOVE: Generation.LEGACY})
    async with sandbox_client(sandbox, contract_recorder, generations=memory) as client:
        await client.remove_from_library([track_uri(0)])
    assert memory.get(Operation.LIBRARY_REMOVE) is Generation.CURRENT
    assert (client.calls["DELETE /v1/me/tracks"], client.calls["DELETE /v1/me/library"]) == (1, 1)
    assert _liked(sandbox) == [track_id(i) for i in range(1, 5)]


async def test_when_both_generations_refuse_the_forbidden_is_raised(
    contract_recorder: ContractRecorder,
) -> None:
    sandbox = new_sandbox(library(tracks=5, liked=5))
    sandbox.settings.closed_endpoints = {"DELETE /v1/me/library": 404}
    sandbox.settings.legacy_endpoints = "forbidden"
    memory = InMemoryGenerationMemory()
    async with sandbox_client(sandbox, contract_recorder, generations=memory) as client:
        with pytest.raises(Forbidden) as refused:
            await client.remove_from_library([track_uri(0)])
    assert refused.value.endpoint == "DELETE /v1/me/tracks"
    assert memory.get(Operation.LIBRARY_REMOVE) is None
    assert len(_liked(sandbox)) == 5


async def test_artists_refused_by_the_library_endpoint_are_unfollowed_the_old_way(
    contract_recorder: ContractRecorder,
) -> None:
    sandbox = new_sandbox(library(tracks=10, liked=10, followed=5))
    sandbox.settings.library_accepts_artist_uris = False
    memory = InMemoryGenerationMemory()
    async with sandbox_client(sandbox, contract_recorder, generations=memory) as client:
        await client.remove_from_library(
            [track_uri(0), track_uri(1), f"spotify:artist:{artist_id(0)}"]
        )
        assert memory.get(Operation.ARTISTS_UNFOLLOW) is Generation.LEGACY
        # The 400, then the tracks alone, then the artist through /me/following.
        assert client.calls["DELETE /v1/me/library"] == 2
        await client.remove_from_library([track_uri(2), f"spotify:artist:{artist_id(1)}"])
    assert client.calls["DELETE /v1/me/library"] == 3  # no second 400
    assert client.calls["DELETE /v1/me/following"] == 2
    assert _liked(sandbox) == [track_id(i) for i in range(3, 10)]
    assert sorted(sandbox.dump_user(USER)["followed_artists"]) == [
        artist_id(i) for i in range(2, 5)
    ]


async def test_liked_songs_come_back_with_their_original_dates(
    contract_recorder: ContractRecorder,
) -> None:
    sandbox = new_sandbox(library(tracks=60, liked=60), clock=Clock())
    before = sandbox.dump_user(USER)["liked_songs"]
    removed = [(track_id(i), moment(60 - i)) for i in range(0, 60, 2)]  # every other one
    async with sandbox_client(sandbox, contract_recorder) as client:
        await client.remove_from_library([f"spotify:track:{t}" for t, _ in removed])
        result = await client.save_liked_songs_with_dates(removed)
    assert result.dates_kept
    assert result.saved == [t for t, _ in removed]
    assert sandbox.dump_user(USER)["liked_songs"] == before
    assert before[0] == {"track_id": track_id(0), "added_at": stamp(60)}
    assert client.calls["PUT /v1/me/tracks"] == 1


async def test_when_dates_cannot_be_kept_the_result_says_which(
    contract_recorder: ContractRecorder,
) -> None:
    clock = Clock()
    sandbox = new_sandbox(library(tracks=5, liked=5), clock=clock)
    sandbox.settings.legacy_endpoints = "forbidden"
    memory = InMemoryGenerationMemory()
    async with sandbox_client(sandbox, contract_recorder, generations=memory) as client:
        await client.remove_from_library([track_uri(4)])
        result = await client.save_liked_songs_with_dates([(track_id(4), moment(1))])
    assert not result.dates_kept
    assert result.dates_lost == [track_id(4)]
    newest = sandbox.dump_user(USER)["liked_songs"][0]
    assert newest["track_id"] == track_id(4)
    assert newest["added_at"] == datetime.fromtimestamp(clock.now).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert memory.get(Operation.LIKED_SONGS_SAVE_WITH_DATES) is Generation.CURRENT


BAD_IDENTIFIERS = [
    "spotify:track:tooShort",
    "spotify:local:Me:Tapes:Song:100",
    f"spotify:playlist:{playlist_id(1)}",
    track_id(3),  # a bare ID does not say it is a track
    "Daft Punk",
]


@pytest.mark.parametrize("bad", BAD_IDENTIFIERS)
async def test_one_bad_identifier_among_100_sends_nothing(
    contract_recorder: ContractRecorder, bad: str
) -> None:
    sandbox = new_sandbox(library(tracks=100, liked=100, playlists=[[entry(0)]]))
    uris = [track_uri(i) for i in range(100)]
    uris[57] = bad
    async with sandbox_client(sandbox, contract_recorder) as client:
        with pytest.raises(InvalidIdentifier) as refused:
            await client.remove_from_library(uris)
        assert refused.value.value == bad
        assert repr(bad) in str(refused.value)
        with pytest.raises(InvalidIdentifier, match=re.escape(repr(bad))):
            await client.remove_playlist_items(playlist_id(0), uris)
        with pytest.raises(InvalidIdentifier):
            await client.add_playlist_items(playlist_id(0), uris)
        if bad != track_id(3):  # a bare ID is a fine track ID where only tracks go
            dated = [(uri, moment(1)) for uri in uris]
            with pytest.raises(InvalidIdentifier, match=re.escape(repr(bad))):
                await client.save_liked_songs_with_dates(dated)
    assert client.calls.total == 0
    assert sandbox.counters.total_calls == 0


async def test_other_bad_input_is_named_and_sends_nothing(
    contract_recorder: ContractRecorder,
) -> None:
    sandbox = new_sandbox(library(tracks=3, liked=3, playlists=[[entry(0)]]))
    async with sandbox_client(sandbox, contract_recorder) as client:
        with pytest.raises(InvalidIdentifier, match=r"open\.spotify\.com/album"):
            await client.remove_playlist_items(
                f"https://open.spotify.com/album/{album_id(0)}", [track_uri(0)]
            )
        with pytest.raises(ValueError, match="-1"):
            await client.add_playlist_items(playlist_id(0), [track_uri(1)], position=-1)
        with pytest.raises(ValueError, match="timezone"):
            await client.save_liked_songs_with_dates([(track_id(1), datetime(2020, 1, 1))])
        with pytest.raises(ValueError, match="twice"):
            await client.save_liked_songs_with_dates(
                [(track_id(1), moment(1)), (track_uri(1), moment(2))]
            )
        with pytest.raises(TypeError, match="single value"):
            await client.remove_from_library(track_uri(0))
    assert client.calls.total == 0
    assert sandbox.settings == SandboxSettings()


async def test_saving_back_through_the_legacy_endpoints_restores_the_library(
    contract_recorder: ContractRecorder,
) -> None:
    sandbox = new_sandbox(library(tracks=30, liked=30, saved_albums=5, followed=5))
    before = sandbox.dump_user(USER)
    uris = (
        [track_uri(i) for i in range(25)]
        + [f"spotify:album:{album_id(i)}" for i in range(5)]
        + [f"spotify:artist:{artist_id(i)}" for i in range(5)]
    )
    async with sandbox_client(sandbox, contract_recorder) as client:
        await client.remove_from_library(uris)
        sandbox.settings.closed_endpoints = {"PUT /v1/me/library": 410}
        await client.save_to_library(uris)
    after = sandbox.dump_user(USER)
    assert sorted(s["track_id"] for s in after["liked_songs"]) == sorted(_liked_ids(before))
    assert sorted(a["album_id"] for a in after["saved_albums"]) == [album_id(i) for i in range(5)]
    assert sorted(after["followed_artists"]) == sorted(before["followed_artists"])
    # 35 URIs: one library call; back through /me/tracks, /me/albums and /me/following.
    assert client.calls["PUT /v1/me/library"] == 1
    assert client.calls["PUT /v1/me/tracks"] == 1
    assert client.calls["PUT /v1/me/albums"] == 1
    assert client.calls["PUT /v1/me/following"] == 1


def _liked_ids(user: dict[str, Any]) -> list[str]:
    return [song["track_id"] for song in user["liked_songs"]]


async def test_playlist_writes_fall_back_to_the_legacy_tracks_endpoints(
    contract_recorder: ContractRecorder,
) -> None:
    sandbox = new_sandbox(library(tracks=5, playlists=[[entry(0), entry(1), entry(0)]]))
    sandbox.settings.closed_endpoints = {
        "DELETE /v1/playlists/{playlist_id}/items": 403,
        "POST /v1/playlists/{playlist_id}/items": 404,
    }
    memory = InMemoryGenerationMemory()
    async with sandbox_client(sandbox, contract_recorder, generations=memory) as client:
        await client.remove_playlist_items(playlist_id(0), [track_uri(0)])
        await client.add_playlist_items(playlist_id(0), [track_uri(0)], position=0)
    assert _playlist_uris(sandbox) == [track_uri(0), track_uri(1)]
    assert memory.get(Operation.PLAYLIST_ITEMS_REMOVE) is Generation.LEGACY
    assert memory.get(Operation.PLAYLIST_ITEMS_ADD) is Generation.LEGACY
    assert client.calls["DELETE /v1/playlists/{playlist_id}/tracks"] == 1
    assert client.calls["POST /v1/playlists/{playlist_id}/tracks"] == 1
