"""The contract checker catches what breaks Spotify's spec, and only that.

Hand-built ``httpx`` requests and responses: no sandbox is needed to know that the
checker itself works.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.support.contract import (
    FULL_CHECKS_PER_OPERATION,
    ContractRecorder,
    Exchange,
    SpotifyContract,
    Verdict,
)

API = "http://sandbox.test/v1"
TOKEN = "access-token-for-contract-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
TRACK_URI = "spotify:track:4iV5W9uYEdYUVa79Axb7Rh"


def _artist(artist_id: str = "0TnOYISbd1XYRBk9myaseg") -> dict[str, Any]:
    return {
        "external_urls": {"spotify": f"https://open.spotify.com/artist/{artist_id}"},
        "href": f"https://api.spotify.com/v1/artists/{artist_id}",
        "id": artist_id,
        "name": "Pitbull",
        "type": "artist",
        "uri": f"spotify:artist:{artist_id}",
    }


def _track(track_id: str = "4iV5W9uYEdYUVa79Axb7Rh") -> dict[str, Any]:
    return {
        "album": {
            "album_type": "album",
            "total_tracks": 9,
            "available_markets": ["SE"],
            "external_urls": {"spotify": "https://open.spotify.com/album/4aawyAB9vmqN3uQ7FjRGTy"},
            "href": "https://api.spotify.com/v1/albums/4aawyAB9vmqN3uQ7FjRGTy",
            "id": "4aawyAB9vmqN3uQ7FjRGTy",
            "images": [],
            "name": "Global Warming",
            "release_date": "2012-11-16",
            "release_date_precision": "day",
            "type": "album",
            "uri": "spotify:album:4aawyAB9vmqN3uQ7FjRGTy",
            "artists": [_artist()],
        },
        "artists": [_artist()],
        "disc_number": 1,
        "duration_ms": 207959,
        "explicit": False,
        "external_ids": {"isrc": "USRC11200786"},
        "external_urls": {"spotify": f"https://open.spotify.com/track/{track_id}"},
        "href": f"https://api.spotify.com/v1/tracks/{track_id}",
        "id": track_id,
        "is_playable": True,
        "name": "Feel This Moment",
        "popularity": 60,
        "preview_url": None,
        "track_number": 1,
        "type": "track",
        "uri": f"spotify:track:{track_id}",
        "is_local": False,
    }


def _page(items: list[Any], *, path: str, total: int | None = None) -> dict[str, Any]:
    return {
        "href": f"https://api.spotify.com/v1{path}?offset=0&limit=50",
        "items": items,
        "limit": 50,
        "next": None,
        "offset": 0,
        "previous": None,
        "total": len(items) if total is None else total,
    }


def _liked_songs_page(count: int = 3) -> dict[str, Any]:
    items = [{"added_at": "2023-01-15T14:30:00Z", "track": _track()} for _ in range(count)]
    return _page(items, path="/me/tracks")


def _check(
    contract: SpotifyContract,
    method: str,
    path: str,
    status: int,
    *,
    response_json: Any = None,
    params: dict[str, str] | None = None,
    request_json: Any = None,
    headers: dict[str, str] | None = None,
) -> Verdict:
    request = httpx.Request(
        method, f"{API}{path}", params=params, json=request_json, headers=AUTH | (headers or {})
    )
    response = (
        httpx.Response(status)
        if response_json is None
        else httpx.Response(status, json=response_json)
    )
    return contract.check(Exchange.of(request, response))


def _rules(verdict: Verdict) -> set[tuple[str, str]]:
    return {(violation.part, violation.rule) for violation in verdict.violations}


def test_a_valid_page_of_liked_songs_passes(spotify_contract: SpotifyContract) -> None:
    verdict = _check(
        spotify_contract,
        "GET",
        "/me/tracks",
        200,
        params={"limit": "50", "offset": "0"},
        response_json=_liked_songs_page(),
    )
    assert verdict.violations == ()
    assert verdict.operation_id == "get-users-saved-tracks"


def test_valid_library_writes_and_playlist_removal_pass(spotify_contract: SpotifyContract) -> None:
    remove = _check(spotify_contract, "DELETE", "/me/library", 200, params={"uris": f"{TRACK_URI}"})
    remove_items = _check(
        spotify_contract,
        "DELETE",
        "/playlists/3cEYpjA9oz9GiPac4AsH4n/items",
        200,
        request_json={"items": [{"uri": TRACK_URI}], "snapshot_id": "abc"},
        response_json={"snapshot_id": "def"},
    )
    assert (remove.violations, remove.operation_id) == ((), "remove-library-items")
    assert (remove_items.violations, remove_items.operation_id) == ((), "remove-items-playlist")


def test_a_library_removal_without_the_required_uris_query_is_caught(
    spotify_contract: SpotifyContract,
) -> None:
    # The reference: "a JSON body alone gets 400 'Missing required field: uris'".
    verdict = _check(
        spotify_contract,
        "DELETE",
        "/me/library",
        400,
        request_json={"uris": [TRACK_URI]},
        response_json={"error": {"status": 400, "message": "Missing required field: uris"}},
    )
    assert _rules(verdict) == {("request", "query.uris: required")}


def test_a_page_size_beyond_the_spec_maximum_is_caught(spotify_contract: SpotifyContract) -> None:
    verdict = _check(
        spotify_contract,
        "GET",
        "/playlists/3cEYpjA9oz9GiPac4AsH4n/items",
        200,
        params={"limit": "100"},
        response_json=_page([], path="/playlists/3cEYpjA9oz9GiPac4AsH4n/items"),
    )
    assert _rules(verdict) == {("request", "query.limit: maximum")}


def test_a_playlist_removal_body_without_items_is_caught(spotify_contract: SpotifyContract) -> None:
    verdict = _check(
        spotify_contract,
        "DELETE",
        "/playlists/3cEYpjA9oz9GiPac4AsH4n/items",
        200,
        request_json={"tracks": [{"uri": TRACK_URI}]},
        response_json={"snapshot_id": "def"},
    )
    assert _rules(verdict) == {("request", "body.items: required")}


def test_a_response_missing_a_required_paging_field_is_caught(
    spotify_contract: SpotifyContract,
) -> None:
    page = _liked_songs_page()
    del page["next"]
    verdict = _check(spotify_contract, "GET", "/me/tracks", 200, response_json=page)
    assert _rules(verdict) == {("response", "body.next: required")}


def test_a_wrongly_typed_field_deep_in_a_playlist_item_is_named_field_by_field(
    spotify_contract: SpotifyContract,
) -> None:
    track = _track()
    track["duration_ms"] = "three minutes"
    page = _page(
        [{"added_at": "2023-01-15T14:30:00Z", "is_local": False, "item": track}],
        path="/playlists/3cEYpjA9oz9GiPac4AsH4n/items",
    )
    verdict = _check(
        spotify_contract,
        "GET",
        "/playlists/3cEYpjA9oz9GiPac4AsH4n/items",
        200,
        response_json=page,
    )
    # `item` is a oneOf(track, episode): the finding comes from the closest branch.
    assert _rules(verdict) == {("response", "body.items[].item.duration_ms: type")}


def test_an_unknown_path_and_an_unknown_method_are_violations(
    spotify_contract: SpotifyContract,
) -> None:
    unknown_path = _check(spotify_contract, "GET", "/me/blocklist", 200, response_json={})
    unknown_method = _check(spotify_contract, "PATCH", "/me/tracks", 200, response_json={})
    outside_api = spotify_contract.check(
        Exchange.of(httpx.Request("GET", "http://sandbox.test/me"), httpx.Response(200))
    )
    assert _rules(unknown_path) == {("request", "path: not in spec")}
    assert _rules(unknown_method) == {("request", "method: not in spec")}
    assert _rules(outside_api) == {("request", "path: not in spec")}


def test_accounts_and_sandbox_admin_paths_are_skipped(spotify_contract: SpotifyContract) -> None:
    for method, url in [
        ("GET", "http://sandbox.test/authorize?client_id=x"),
        ("POST", "http://sandbox.test/api/token"),
        ("POST", "http://sandbox.test/__sandbox/users"),
    ]:
        verdict = spotify_contract.check(
            Exchange.of(httpx.Request(method, url), httpx.Response(200, json={"any": "thing"}))
        )
        assert verdict.skipped
        assert verdict.violations == ()


def test_a_request_without_a_bearer_token_is_caught_without_showing_any_token(
    spotify_contract: SpotifyContract,
) -> None:
    verdict = _check(
        spotify_contract,
        "GET",
        "/me/tracks",
        200,
        headers={"Authorization": f"Basic {TOKEN}"},
        response_json=_liked_songs_page(),
    )
    assert _rules(verdict) == {("request", "security: bearer token")}
    assert TOKEN not in str(verdict.violations[0])


@pytest.mark.parametrize("status", [401, 403, 429])
def test_declared_error_statuses_must_carry_spotifys_error_body(
    spotify_contract: SpotifyContract, status: int
) -> None:
    good = _check(
        spotify_contract,
        "GET",
        "/me/tracks",
        status,
        response_json={"error": {"status": status, "message": "no"}},
    )
    bare = _check(spotify_contract, "GET", "/me/tracks", status, response_json={"message": "no"})
    assert good.violations == ()
    assert _rules(bare) == {("response", "body.error: required")}


def test_undeclared_error_statuses_are_checked_against_the_common_error_body(
    spotify_contract: SpotifyContract,
) -> None:
    # get-playlist declares no 404, yet Spotify answers one for an unknown playlist.
    good = _check(
        spotify_contract,
        "GET",
        "/playlists/3cEYpjA9oz9GiPac4AsH4n",
        404,
        response_json={"error": {"status": 404, "message": "Not found."}},
    )
    status_missing = _check(
        spotify_contract,
        "GET",
        "/playlists/3cEYpjA9oz9GiPac4AsH4n",
        404,
        response_json={"error": {"message": "Not found."}},
    )
    not_json = spotify_contract.check(
        Exchange.of(
            httpx.Request("GET", f"{API}/playlists/3cEYpjA9oz9GiPac4AsH4n", headers=AUTH),
            httpx.Response(502, text="Bad gateway"),
        )
    )
    assert good.violations == ()
    assert _rules(status_missing) == {("response", "body.error.status: required")}
    assert _rules(not_json) == {("response", "body: not JSON")}


def test_an_undeclared_success_status_is_a_violation(spotify_contract: SpotifyContract) -> None:
    verdict = _check(spotify_contract, "PUT", "/me/library", 204, params={"uris": TRACK_URI})
    assert _rules(verdict) == {("response", "status: not declared")}


def test_library_400s_are_checked_as_spotifys_error_envelope_not_the_specs_bare_object(
    spotify_contract: SpotifyContract,
) -> None:
    enveloped = _check(
        spotify_contract,
        "PUT",
        "/me/library",
        400,
        params={"uris": "spotify:local:x"},
        response_json={"error": {"status": 400, "message": "Unsupported URI"}},
    )
    bare = _check(
        spotify_contract,
        "PUT",
        "/me/library",
        400,
        params={"uris": "spotify:local:x"},
        response_json={"status": 400, "message": "Unsupported URI"},
    )
    assert enveloped.violations == ()
    assert _rules(bare) == {("response", "body.error: required")}


def test_legacy_liked_song_writes_with_a_json_body_are_excused_by_name(
    spotify_contract: SpotifyContract,
) -> None:
    remove = _check(
        spotify_contract,
        "DELETE",
        "/me/tracks",
        200,
        request_json={"ids": ["4iV5W9uYEdYUVa79Axb7Rh"]},
    )
    restore = _check(
        spotify_contract,
        "PUT",
        "/me/tracks",
        200,
        request_json={
            "timestamped_ids": [
                {"id": "4iV5W9uYEdYUVa79Axb7Rh", "added_at": "2023-01-15T14:30:00Z"}
            ]
        },
    )
    bad_restore = _check(
        spotify_contract,
        "PUT",
        "/me/tracks",
        200,
        request_json={"timestamped_ids": [{"id": "4iV5W9uYEdYUVa79Axb7Rh"}]},
    )
    assert remove.violations == ()
    assert [gap.rule for _, gap in remove.excused] == ["query.ids: required"]
    assert restore.violations == ()
    assert [gap.rule for _, gap in restore.excused] == ["body.ids: required"]
    # The excuse covers one rule only: a broken timestamped entry is still caught.
    assert _rules(bad_restore) == {("request", "body.timestamped_ids[].added_at: required")}


def test_the_recorder_tracks_coverage_and_checks_every_page_even_when_sampling(
    spotify_contract: SpotifyContract,
) -> None:
    recorder = ContractRecorder(spotify_contract)
    request = httpx.Request("GET", f"{API}/me/tracks", params={"limit": "50"}, headers=AUTH)
    pages = 4 * FULL_CHECKS_PER_OPERATION
    for _ in range(pages):
        recorder.record(Exchange.of(request, httpx.Response(200, json=_liked_songs_page(50))))
    broken_envelope = _liked_songs_page(50)
    del broken_envelope["total"]
    recorder.record(Exchange.of(request, httpx.Response(200, json=broken_envelope)))
    recorder.record(
        Exchange.of(request, httpx.Response(429, json={"error": {"status": 429, "message": "x"}}))
    )
    too_large = httpx.Request("GET", f"{API}/me/tracks", params={"limit": "51"}, headers=AUTH)
    recorder.record(Exchange.of(too_large, httpx.Response(200, json=_liked_songs_page(50))))

    assert recorder.covered == {"get-users-saved-tracks"}
    assert recorder.seen == {("get-users-saved-tracks", 200), ("get-users-saved-tracks", 429)}
    assert [(v.part, v.rule) for v in recorder.violations] == [
        ("response", "body.total: required"),
        ("request", "query.limit: maximum"),
    ]
    assert len(recorder.take_violations()) == 2
    assert recorder.violations == []


def test_a_playlist_items_page_passes_and_a_null_entry_is_excused_only_where_spotify_sends_it(
    spotify_contract: SpotifyContract,
) -> None:
    path = "/playlists/3cEYpjA9oz9GiPac4AsH4n/items"
    added_by = {
        "external_urls": {"spotify": "https://open.spotify.com/user/smedjan"},
        "href": "https://api.spotify.com/v1/users/smedjan",
        "id": "smedjan",
        "type": "user",
        "uri": "spotify:user:smedjan",
    }
    entry = {"added_at": "2023-01-15T14:30:00Z", "added_by": added_by, "is_local": False}
    valid = _page([entry | {"item": _track(), "track": _track()}], path=path)
    unavailable = _page([entry | {"item": None, "track": _track()}], path=path)

    valid_verdict = _check(
        spotify_contract, "GET", path, 200, params={"limit": "50"}, response_json=valid
    )
    null_verdict = _check(spotify_contract, "GET", path, 200, response_json=unavailable)

    # Passing needs the corrected discriminator (see _DISCRIMINATOR_MAPPINGS).
    assert (valid_verdict.violations, valid_verdict.operation_id) == ((), "get-playlists-items")
    assert null_verdict.violations == ()
    assert [gap.rule for _, gap in null_verdict.excused] == ["body.items[].item: null"]

    # Liked Songs never hold a null track: there the same null is a violation.
    liked = _liked_songs_page(1)
    liked["items"][0]["track"] = None
    liked_verdict = _check(spotify_contract, "GET", "/me/tracks", 200, response_json=liked)
    assert _rules(liked_verdict) == {("response", "body.items[].track: null")}
