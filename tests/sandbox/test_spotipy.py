"""spotipy 2.26, a client nobody here wrote, drives the sandbox over HTTP as it drives Spotify.

Every operation this project performs and its inverse, through spotipy's public API:
its reads (``GET /me/`` with spotipy's trailing slash, every page through ``next``, the
cursor of followed artists), its writes through ``/me/library`` (artists included), its
playlist writes (``playlist_add_items`` posts a bare JSON array), and the errors a
client must tell apart. spotipy's urllib3 retry is switched off (``retries=0``,
``status_retries=0``), so a 429 comes back at once and no test sleeps for Retry-After.
Every exchange is also checked against Spotify's published contract.
"""

from __future__ import annotations

from typing import Any

import pytest
import spotipy

from enforcer.sandbox import Sandbox
from tests.support.sandbox import CLIENT_USER, ServedSandbox

# spotipy's default retry list includes 429; without it a 429 is answered, not retried.
NO_STATUS_RETRIES = (500, 502, 503, 504)


def spotipy_client(served: ServedSandbox, token: str | None = None) -> spotipy.Spotify:
    client = spotipy.Spotify(
        auth=token or served.token(),
        retries=0,
        status_retries=0,
        status_forcelist=NO_STATUS_RETRIES,
        requests_timeout=10,
    )
    # spotipy's documented way to aim it elsewhere: the prefix of every relative path.
    client.prefix = f"{served.base_url}/v1/"
    return client


def every_item(client: spotipy.Spotify, page: dict[str, Any]) -> list[Any]:
    items: list[Any] = list(page["items"])
    while page["next"]:
        page = client.next(page)
        items.extend(page["items"])
    return items


def library(sandbox: Sandbox) -> dict[str, Any]:
    return sandbox.dump_user(CLIENT_USER)


def owned_playlist(sandbox: Sandbox) -> dict[str, Any]:
    return next(p for p in library(sandbox)["playlists"] if isinstance(p, dict))


@pytest.fixture
def client(served_sandbox: ServedSandbox) -> spotipy.Spotify:
    return spotipy_client(served_sandbox)


def test_reads_every_listing_to_its_end(
    served_sandbox: ServedSandbox, client: spotipy.Spotify
) -> None:
    expected = library(served_sandbox.sandbox)
    me = client.current_user()
    liked = every_item(client, client.current_user_saved_tracks(limit=50))
    albums = every_item(client, client.current_user_saved_albums(limit=50))
    playlists = every_item(client, client.current_user_playlists(limit=50))
    artists_page = client.current_user_followed_artists(limit=50)["artists"]
    artists = list(artists_page["items"])
    while artists_page["next"]:
        artists_page = client.next(artists_page)["artists"]
        artists.extend(artists_page["items"])

    assert me["id"] == CLIENT_USER
    assert [s["track"]["id"] for s in liked] == [s["track_id"] for s in expected["liked_songs"]]
    assert all(s["track"]["external_ids"]["isrc"] for s in liked)
    assert [s["album"]["id"] for s in albums] == [a["album_id"] for a in expected["saved_albums"]]
    assert all(s["album"]["external_ids"]["upc"] for s in albums)
    assert sorted(a["id"] for a in artists) == sorted(expected["followed_artists"])
    assert len(artists) > 50, "the cursor was followed past the first page"
    listed = [p if isinstance(p, str) else p["id"] for p in expected["playlists"]]
    assert [p["id"] for p in playlists] == listed
    assert served_sandbox.sandbox.counters.calls["GET /v1/me"] == 1


def test_a_playlist_and_all_its_items(
    served_sandbox: ServedSandbox, client: spotipy.Spotify
) -> None:
    expected = owned_playlist(served_sandbox.sandbox)
    playlist = client.playlist(expected["id"])
    items = every_item(client, client.playlist_items(expected["id"], limit=50))

    assert playlist["snapshot_id"] == expected["snapshot_id"]
    assert playlist["items"]["total"] == len(expected["items"]) > 100
    assert len(items) == len(expected["items"])
    local = [i for i in items if i["is_local"]]
    unavailable = [i for i in items if i["item"] is None]
    assert local, "the library holds local files"
    assert unavailable, "the library holds unavailable tracks"
    assert all(i["item"]["album"]["id"] is None for i in local)
    assert all(i["item"]["episode"] is False and i["item"]["track"] is True for i in local)
    catalog = [i["item"] for i in items if i["item"] is not None and not i["is_local"]]
    assert all(t["episode"] is False and t["track"] is True for t in catalog)
    by_resource = served_sandbox.sandbox.counters.calls_by_resource
    assert by_resource["GET /v1/playlists/{playlist_id}/items"] == {expected["id"]: 3}


def test_library_removals_and_saves_through_me_library(
    served_sandbox: ServedSandbox, client: spotipy.Spotify
) -> None:
    before = library(served_sandbox.sandbox)
    tracks = [s["track_id"] for s in before["liked_songs"][:3]]
    albums = [a["album_id"] for a in before["saved_albums"][:2]]
    artists = before["followed_artists"][:2]

    client.current_user_saved_tracks_delete(tracks)
    client.current_user_saved_albums_delete(albums)
    client.user_unfollow_artists(artists)
    removed = (
        client.current_user_saved_tracks_contains(tracks),
        client.current_user_saved_albums_contains(albums),
        client.current_user_following_artists(artists),
    )
    client.current_user_saved_albums_add(albums)
    client.user_follow_artists(artists)
    client.current_user_saved_tracks_add(tracks)

    assert removed == ([False] * 3, [False] * 2, [False] * 2)
    after = library(served_sandbox.sandbox)
    assert {a["album_id"] for a in after["saved_albums"]} == {
        a["album_id"] for a in before["saved_albums"]
    }
    assert sorted(after["followed_artists"]) == sorted(before["followed_artists"])
    assert {s["track_id"] for s in after["liked_songs"]} == {
        s["track_id"] for s in before["liked_songs"]
    }
    calls = served_sandbox.sandbox.counters.calls
    assert calls["DELETE /v1/me/library"] == 3
    assert calls["PUT /v1/me/library"] == 3


def test_playlist_items_added_as_a_bare_array_and_removed(
    served_sandbox: ServedSandbox, client: spotipy.Spotify
) -> None:
    playlist = owned_playlist(served_sandbox.sandbox)
    uri = next(i["uri"] for i in playlist["items"] if i.get("uri"))
    count = sum(1 for i in playlist["items"] if i.get("uri") == uri)

    removed = client.playlist_remove_all_occurrences_of_items(playlist["id"], [uri])
    added = client.playlist_add_items(playlist["id"], [uri, uri], position=0)

    assert removed["snapshot_id"] != added["snapshot_id"]
    items = owned_playlist(served_sandbox.sandbox)["items"]
    assert [i.get("uri") for i in items[:2]] == [uri, uri]
    assert len(items) == len(playlist["items"]) - count + 2
    log = [(r["method"], r["path"], r["status"]) for r in served_sandbox.sandbox.requests]
    assert log == [
        ("DELETE", f"/v1/playlists/{playlist['id']}/items", 200),
        ("POST", f"/v1/playlists/{playlist['id']}/items", 201),
    ]


def test_errors_reach_spotipy_with_their_status(
    served_sandbox: ServedSandbox, client: spotipy.Spotify
) -> None:
    sandbox = served_sandbox.sandbox
    followed = next(p for p in library(sandbox)["playlists"] if isinstance(p, str))
    track = library(sandbox)["liked_songs"][0]["track_id"]

    with pytest.raises(spotipy.SpotifyException) as unauthorised:
        spotipy_client(served_sandbox, token="not-a-token").current_user()
    with pytest.raises(spotipy.SpotifyException) as unknown:
        client.playlist("plNobodyHasThis0000000")
    with pytest.raises(spotipy.SpotifyException) as not_owner:
        client.playlist_remove_all_occurrences_of_items(followed, [f"spotify:track:{track}"])
    with pytest.raises(spotipy.SpotifyException) as too_many:
        client.current_user_saved_tracks_delete([track] * 41)

    assert (unauthorised.value.http_status, unknown.value.http_status) == (401, 404)
    assert (not_owner.value.http_status, too_many.value.http_status) == (403, 400)
    assert "41" in too_many.value.msg


def test_a_429_comes_back_at_once_with_its_retry_after(
    served_sandbox: ServedSandbox, client: spotipy.Spotify
) -> None:
    sandbox = served_sandbox.sandbox
    sandbox.settings.rate_limit_budget = 1
    sandbox.settings.rate_limit_retry_after = 3600

    client.current_user()
    with pytest.raises(spotipy.SpotifyException) as limited:
        client.current_user()

    assert limited.value.http_status == 429
    assert limited.value.headers["Retry-After"] == "3600"
    assert sandbox.counters.rate_limited == 1
    assert sandbox.counters.violations == 0
