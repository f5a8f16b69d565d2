"""Every Web API endpoint the project uses, driven against the sandbox, within Spotify's contract.

The client is used wherever it calls the endpoint (current generation, then the legacy
one it falls back to); the ``contains`` checks, which only the sandbox serves for now,
go through raw HTTP. Either way each exchange passes ``ContractTransport``, so both our
requests and the sandbox's answers are checked against Spotify's published spec, and
the ``contract_recorder`` fixture fails the test on any violation.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Final

import httpx
import pytest
from starlette.routing import Route

from enforcer.sandbox import Sandbox
from enforcer.spotify import (
    Forbidden,
    InMemoryGenerationMemory,
    NotFound,
    RateLimited,
    SpotifyClient,
)
from tests.support.contract import ContractRecorder, SpotifyContract
from tests.support.sandbox import SANDBOX_BASE_URL, sandbox_transport

# The endpoints this project implements (issues A and B), by the spec's operationId.
IMPLEMENTED_OPERATIONS: Final = frozenset(
    {
        "get-current-users-profile",  # GET /me
        "get-users-saved-tracks",  # GET /me/tracks
        "save-tracks-user",  # PUT /me/tracks
        "remove-tracks-user",  # DELETE /me/tracks
        "check-users-saved-tracks",  # GET /me/tracks/contains
        "get-users-saved-albums",  # GET /me/albums
        "save-albums-user",  # PUT /me/albums
        "remove-albums-user",  # DELETE /me/albums
        "check-users-saved-albums",  # GET /me/albums/contains
        "get-followed",  # GET /me/following
        "follow-artists-users",  # PUT /me/following
        "unfollow-artists-users",  # DELETE /me/following
        "check-current-user-follows",  # GET /me/following/contains
        "save-library-items",  # PUT /me/library
        "remove-library-items",  # DELETE /me/library
        "check-library-contains",  # GET /me/library/contains
        "get-a-list-of-current-users-playlists",  # GET /me/playlists
        "get-playlist",  # GET /playlists/{id}
        "get-playlists-items",  # GET /playlists/{id}/items
        "add-items-to-playlist",  # POST /playlists/{id}/items
        "remove-items-playlist",  # DELETE /playlists/{id}/items
        "get-playlists-tracks",  # GET /playlists/{id}/tracks (legacy)
        "add-tracks-to-playlist",  # POST /playlists/{id}/tracks (legacy)
        "remove-tracks-playlist",  # DELETE /playlists/{id}/tracks (legacy)
        "get-an-artist",  # GET /artists/{id}
        "get-track",  # GET /tracks/{id}
    }
)

# The current generation, closed to force the client onto its legacy fallbacks.
CURRENT_GENERATION_WRITES_AND_ITEMS: Final = (
    "PUT /v1/me/library",
    "DELETE /v1/me/library",
    "GET /v1/playlists/{playlist_id}/items",
    "POST /v1/playlists/{playlist_id}/items",
    "DELETE /v1/playlists/{playlist_id}/items",
)

# tests/fixtures/small_library.json, as seen by alice.
BLOCKED_ANTHEM = "trBlockedAnthem0000000"
GOOD_MORNING = "trGoodMorning000000000"
TOGETHER = "trTogether000000000000"
DUO_SONG = "trDuoSong0000000000000"
BLOCKED_HITS = "alBlockedHits000000000"
BLOCKED_BAND = "arBlockedBand000000000"
ALICE_MIX = "plAliceMix000000000000"
ROAD_TRIP = "plRoadTrip000000000000"
BOBS_PICKS = "plBobsPicks00000000000"
UNKNOWN_PLAYLIST = "plNobodyHasThis0000000"
UNKNOWN_ARTIST = "arNobodyKnowsThem00000"
UNKNOWN_TRACK = "trNobodyKnowsThis00000"
ANTHEM_URI = f"spotify:track:{BLOCKED_ANTHEM}"
HITS_URI = f"spotify:album:{BLOCKED_HITS}"
BAND_URI = f"spotify:artist:{BLOCKED_BAND}"
ALICE_MIX_LENGTH = 6


class IssuedTokens:
    """Tokens handed out by the sandbox's Python API; a 401 gets a freshly issued one."""

    def __init__(self, sandbox: Sandbox, user_id: str) -> None:
        self._sandbox = sandbox
        self._user_id = user_id
        self._access: str = sandbox.issue_tokens(user_id)["access_token"]

    def __repr__(self) -> str:
        return f"<IssuedTokens user={self._user_id}>"

    async def access_token(self) -> str:
        return self._access

    async def refresh_after_rejection(self, rejected: str) -> str:
        if rejected == self._access:
            self._access = self._sandbox.issue_tokens(self._user_id)["access_token"]
        return self._access


@asynccontextmanager
async def contract_client(
    sandbox: Sandbox, recorder: ContractRecorder, user_id: str
) -> AsyncIterator[SpotifyClient]:
    """The real client on the sandbox, every exchange contract-checked; fresh generation memory."""
    async with SpotifyClient(
        IssuedTokens(sandbox, user_id),
        api_base_url=f"{SANDBOX_BASE_URL}/v1",
        transport=sandbox_transport(sandbox, recorder),
        generations=InMemoryGenerationMemory(),
    ) as client:
        yield client


async def _library_contains(http: httpx.AsyncClient, *uris: str) -> list[bool]:
    response = await http.get("/v1/me/library/contains", params={"uris": ",".join(uris)})
    response.raise_for_status()
    answer: list[bool] = response.json()
    return answer


async def _drive_reads(client: SpotifyClient) -> None:
    me = await client.current_user()
    liked = await client.all_liked_songs()
    albums = await client.all_saved_albums()
    playlists = await client.all_playlists()
    mix = await client.playlist(ALICE_MIX)
    mix_items = await client.all_playlist_items(ALICE_MIX)
    artists = await client.all_followed_artists()
    band = await client.artist(BAND_URI)
    anthem = await client.track(f"https://open.spotify.com/track/{BLOCKED_ANTHEM}")

    assert me.id == "alice"
    assert (band.id, band.name) == (BLOCKED_BAND, "Blocked Band")
    assert (anthem.id, anthem.artists[0].id) == (BLOCKED_ANTHEM, BLOCKED_BAND)
    assert len(liked) == 4
    assert {album.album.id for album in albums} >= {BLOCKED_HITS}
    assert {playlist.id for playlist in playlists} == {ALICE_MIX, ROAD_TRIP, BOBS_PICKS}
    assert mix.snapshot_id
    assert len(mix_items) == ALICE_MIX_LENGTH
    assert BLOCKED_BAND in {artist.id for artist in artists}


async def _drive_current_writes(client: SpotifyClient, http: httpx.AsyncClient) -> None:
    await client.remove_from_library([ANTHEM_URI, HITS_URI, BAND_URI])
    assert await _library_contains(http, ANTHEM_URI, HITS_URI, BAND_URI) == [False] * 3

    await client.save_to_library([HITS_URI, BAND_URI])
    dated = await client.save_liked_songs_with_dates(
        [(BLOCKED_ANTHEM, datetime(2024, 4, 1, 12, tzinfo=UTC))]
    )
    assert dated.dates_lost == []
    assert await _library_contains(http, ANTHEM_URI, HITS_URI, BAND_URI) == [True] * 3

    before = await client.playlist(ALICE_MIX)
    await client.remove_playlist_items(ALICE_MIX, [ANTHEM_URI], snapshot_id=before.snapshot_id)
    assert len(await client.all_playlist_items(ALICE_MIX)) == ALICE_MIX_LENGTH - 2
    await client.add_playlist_items(ALICE_MIX, [ANTHEM_URI, ANTHEM_URI], position=0)
    assert len(await client.all_playlist_items(ALICE_MIX)) == ALICE_MIX_LENGTH


async def _drive_legacy_fallbacks(client: SpotifyClient, http: httpx.AsyncClient) -> None:
    await client.remove_from_library([ANTHEM_URI, HITS_URI, BAND_URI])
    await client.save_to_library([ANTHEM_URI, HITS_URI, BAND_URI])
    await client.remove_from_library([ANTHEM_URI])

    items = await client.all_playlist_items(ROAD_TRIP)
    await client.remove_playlist_items(ROAD_TRIP, [f"spotify:track:{DUO_SONG}"])
    await client.add_playlist_items(ROAD_TRIP, [f"spotify:track:{DUO_SONG}"], position=0)

    assert len(items) == 2
    assert len(await client.all_playlist_items(ROAD_TRIP)) == 2
    assert await _library_contains(http, ANTHEM_URI, HITS_URI, BAND_URI) == [False, True, True]


async def _drive_legacy_checks(http: httpx.AsyncClient) -> None:
    tracks = await http.get("/v1/me/tracks/contains", params={"ids": f"{GOOD_MORNING},{DUO_SONG}"})
    albums = await http.get("/v1/me/albums/contains", params={"ids": BLOCKED_HITS})
    artists = await http.get(
        "/v1/me/following/contains", params={"type": "artist", "ids": BLOCKED_BAND}
    )
    assert (tracks.json(), albums.json(), artists.json()) == ([True, False], [True], [True])


async def test_every_endpoint_we_use_is_exercised_within_the_contract(
    sandbox: Sandbox,
    sandbox_user: str,
    sandbox_http: httpx.AsyncClient,
    contract_recorder: ContractRecorder,
) -> None:
    await _drive_legacy_checks(sandbox_http)
    async with contract_client(sandbox, contract_recorder, sandbox_user) as client:
        await _drive_reads(client)
        await _drive_current_writes(client, sandbox_http)

    sandbox.settings.closed_endpoints = dict.fromkeys(CURRENT_GENERATION_WRITES_AND_ITEMS, 403)
    async with contract_client(sandbox, contract_recorder, sandbox_user) as client:
        await _drive_legacy_fallbacks(client, sandbox_http)

    assert contract_recorder.violations == []
    assert contract_recorder.covered == IMPLEMENTED_OPERATIONS, (
        f"not exercised: {sorted(IMPLEMENTED_OPERATIONS - contract_recorder.covered)}; "
        f"not expected: {sorted(contract_recorder.covered - IMPLEMENTED_OPERATIONS)}"
    )


def test_the_sandbox_serves_exactly_the_implemented_operations(
    sandbox: Sandbox, spotify_contract: SpotifyContract
) -> None:
    served: set[str | None] = set()
    for route in sandbox.app.routes:
        if not isinstance(route, Route) or not route.path.startswith("/v1/"):
            continue
        if "{rest:path}" in route.path:
            continue  # the catch-all that answers 404 for anything else
        for method in (route.methods or set()) - {"HEAD"}:
            served.add(spotify_contract.operation_id(method, route.path))
    assert served == IMPLEMENTED_OPERATIONS


async def test_error_answers_match_spotifys_error_schemas(
    sandbox: Sandbox,
    sandbox_user: str,
    sandbox_http: httpx.AsyncClient,
    contract_recorder: ContractRecorder,
) -> None:
    too_many = ",".join(f"spotify:track:{GOOD_MORNING}" for _ in range(41))
    over_limit = await sandbox_http.put("/v1/me/library", params={"uris": too_many})
    no_token = await sandbox_http.get("/v1/me", headers={"Authorization": "Bearer not-a-token"})
    malformed_artist = await sandbox_http.get("/v1/artists/not-an-id")
    malformed_track = await sandbox_http.get("/v1/tracks/not-an-id")
    async with contract_client(sandbox, contract_recorder, sandbox_user) as client:
        with pytest.raises(Forbidden):
            await client.remove_playlist_items(BOBS_PICKS, [ANTHEM_URI])
        with pytest.raises(NotFound):
            await client.playlist(UNKNOWN_PLAYLIST)
        with pytest.raises(NotFound):
            await client.artist(UNKNOWN_ARTIST)
        with pytest.raises(NotFound):
            await client.track(UNKNOWN_TRACK)
        sandbox.settings.rate_limit_budget = 1
        sandbox.settings.rate_limit_retry_after = 7
        with contextlib.suppress(RateLimited):
            await client.current_user()  # the window may already hold the calls above
        with pytest.raises(RateLimited) as limited:
            await client.current_user()

    assert over_limit.status_code == 400
    assert no_token.status_code == 401
    assert malformed_artist.json() == {"error": {"status": 400, "message": "invalid id"}}
    assert malformed_track.json() == {"error": {"status": 400, "message": "invalid id"}}
    assert limited.value.retry_after == 7
    assert {
        ("save-library-items", 400),
        ("get-current-users-profile", 401),
        ("remove-items-playlist", 403),
        ("get-playlist", 404),
        ("get-an-artist", 400),
        ("get-an-artist", 404),
        ("get-track", 400),
        ("get-track", 404),
        ("get-current-users-profile", 429),
    } <= contract_recorder.seen
    assert contract_recorder.violations == []


async def test_a_library_removal_without_uris_is_our_fault_and_the_sandbox_answers_400(
    sandbox_http: httpx.AsyncClient, contract_recorder: ContractRecorder
) -> None:
    body_only = await sandbox_http.request("DELETE", "/v1/me/library", json={"uris": [ANTHEM_URI]})
    violations = contract_recorder.take_violations()

    assert body_only.status_code == 400
    assert body_only.json()["error"]["status"] == 400
    # The request breaks the contract; the sandbox's 400 answer does not.
    assert [(v.part, v.rule) for v in violations] == [("request", "query.uris: required")]
    assert await _library_contains(sandbox_http, ANTHEM_URI) == [True]
