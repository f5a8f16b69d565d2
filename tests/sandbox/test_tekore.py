"""tekore 6.2, a client nobody here wrote, drives the sandbox over HTTP as it drives Spotify,
and its own response models parse every answer.

tekore's models are pydantic models of what Spotify really sends: a missing key fails
validation, and an unknown one raises ``UnknownModelAttributeWarning``. tekore has no
switch for strictness; the warning is turned into an error here (``pytestmark``), so a
field the sandbox adds or leaves out that Spotify does not fails the test. tekore uses
the legacy endpoints (``/me/tracks``, ``/me/albums``, ``/me/following`` writes with
``ids`` in the query, ``/playlists/{id}/tracks``), so this module covers those; spotipy's
covers ``/me/library`` and ``/playlists/{id}/items``. Its sender is aimed at the sandbox
through tekore's own extension point, an ``ExtendingSender``, and does not retry.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import tekore as tk
from tekore.model import (
    FullPlaylist,
    LocalPlaylistTrack,
    PlaylistTrack,
    PrivateUser,
    SavedAlbum,
    SavedTrack,
)

from enforcer.sandbox import Sandbox
from tests.support.sandbox import CLIENT_USER, ServedSandbox

pytestmark = pytest.mark.filterwarnings("error::tekore.model.UnknownModelAttributeWarning")

SPOTIFY_API = "https://api.spotify.com"


class SandboxSender(tk.ExtendingSender):
    """Sends tekore's requests for api.spotify.com to the sandbox; nothing else changes."""

    def __init__(self, base_url: str) -> None:
        super().__init__(tk.SyncSender())
        self.base_url = base_url

    def send(self, request: tk.Request) -> tk.Response:
        request.url = request.url.replace(SPOTIFY_API, self.base_url, 1)
        response: tk.Response = self.sender.send(request)
        return response


@contextmanager
def tekore_client(served: ServedSandbox, token: str | None = None) -> Iterator[tk.Spotify]:
    spotify = tk.Spotify(token or served.token(), sender=SandboxSender(served.base_url))
    try:
        yield spotify
    finally:
        spotify.close()  # closes the sender's httpx client and its connections


@pytest.fixture
def client(served_sandbox: ServedSandbox) -> Iterator[tk.Spotify]:
    with tekore_client(served_sandbox) as spotify:
        yield spotify


def library(sandbox: Sandbox) -> dict[str, Any]:
    return sandbox.dump_user(CLIENT_USER)


def owned_playlist(sandbox: Sandbox) -> dict[str, Any]:
    return next(p for p in library(sandbox)["playlists"] if isinstance(p, dict))


def test_reads_parse_into_tekores_models(served_sandbox: ServedSandbox, client: tk.Spotify) -> None:
    expected = library(served_sandbox.sandbox)
    me = client.current_user()
    liked = list(client.all_items(client.saved_tracks(limit=50)))
    albums = list(client.all_items(client.saved_albums(limit=50)))
    artists = list(client.all_items(client.followed_artists(limit=50)))
    playlists = list(client.all_items(client.followed_playlists(limit=50)))

    assert isinstance(me, PrivateUser)
    assert (me.id, me.account_id) == (CLIENT_USER, me.account_id.strip())
    assert all(isinstance(s, SavedTrack) for s in liked)
    assert [s.track.id for s in liked] == [s["track_id"] for s in expected["liked_songs"]]
    assert all(isinstance(a, SavedAlbum) for a in albums)
    assert [a.album.id for a in albums] == [a["album_id"] for a in expected["saved_albums"]]
    assert sorted(a.id for a in artists) == sorted(expected["followed_artists"])
    assert len(playlists) == len(expected["playlists"])


def local_files_removed_from_first_playlist(sandbox: Sandbox) -> dict[str, Any]:
    """The user's first playlist without its local files (see the next test for why)."""
    section = library(sandbox)
    first = next(p for p in section["playlists"] if isinstance(p, dict))
    first["items"] = [item for item in first["items"] if "local" not in item]
    sandbox.load_user(CLIENT_USER, section)
    return owned_playlist(sandbox)


def test_a_playlist_and_all_its_items_parse(
    served_sandbox: ServedSandbox, client: tk.Spotify
) -> None:
    expected = local_files_removed_from_first_playlist(served_sandbox.sandbox)
    playlist = client.playlist(expected["id"])
    items = list(client.all_items(client.playlist_items(expected["id"], limit=100)))

    assert isinstance(playlist, FullPlaylist)
    assert playlist.snapshot_id == expected["snapshot_id"]
    assert all(isinstance(i, PlaylistTrack) for i in items)
    assert len(items) == len(expected["items"]) > 100
    assert any(i.item is None for i in items), "unavailable tracks parse as None"
    assert all(i.item.track and not i.item.episode for i in items if i.item is not None)


def test_local_files_have_the_shape_of_tekores_local_track(
    served_sandbox: ServedSandbox, client: tk.Spotify
) -> None:
    """tekore 6.2 cannot parse a page holding a local file, from Spotify or the sandbox:
    its item union tries ``FullPlaylistTrack`` first, and that album's ``AlbumType`` enum
    raises AttributeError (not a validation error) on Spotify's ``album_type: null``. So
    the page is read raw (tekore's ``as_tracks``) and each entry is parsed by the model
    tekore has for it: ``LocalPlaylistTrack`` for a local file, ``PlaylistTrack`` else."""
    expected = owned_playlist(served_sandbox.sandbox)
    entries: list[dict[str, Any]] = []
    while len(entries) < len(expected["items"]):
        page = client.playlist_items(expected["id"], as_tracks=True, offset=len(entries))
        entries.extend(page["items"])

    local = [e for e in entries if e["is_local"]]
    parsed_local = [LocalPlaylistTrack(**e["item"]) for e in local]
    parsed_others = [PlaylistTrack(**e) for e in entries if not e["is_local"]]

    assert len(parsed_local) + len(parsed_others) == len(expected["items"])
    assert parsed_local, "the playlist holds local files"
    assert all(t.id is None and t.album.id is None for t in parsed_local)
    assert [LocalPlaylistTrack(**e["track"]) for e in local] == parsed_local


def test_legacy_writes_and_their_inverses(
    served_sandbox: ServedSandbox, client: tk.Spotify
) -> None:
    before = library(served_sandbox.sandbox)
    tracks = [s["track_id"] for s in before["liked_songs"][:3]]
    albums = [a["album_id"] for a in before["saved_albums"][:2]]
    artists = before["followed_artists"][:2]

    client.saved_tracks_delete(tracks)
    client.saved_albums_delete(albums)
    client.artists_unfollow(artists)
    removed = (
        client.saved_tracks_contains(tracks),
        client.saved_albums_contains(albums),
        client.artists_is_following(artists),
    )
    client.saved_tracks_add(tracks)
    client.saved_albums_add(albums)
    client.artists_follow(artists)

    assert removed == ([False] * 3, [False] * 2, [False] * 2)
    after = library(served_sandbox.sandbox)
    assert {s["track_id"] for s in after["liked_songs"]} == {
        s["track_id"] for s in before["liked_songs"]
    }
    assert {a["album_id"] for a in after["saved_albums"]} == {
        a["album_id"] for a in before["saved_albums"]
    }
    assert sorted(after["followed_artists"]) == sorted(before["followed_artists"])
    calls = served_sandbox.sandbox.counters.calls
    for endpoint in ("/v1/me/tracks", "/v1/me/albums", "/v1/me/following"):
        assert (calls[f"DELETE {endpoint}"], calls[f"PUT {endpoint}"]) == (1, 1)


def test_legacy_playlist_removal_and_addition(
    served_sandbox: ServedSandbox, client: tk.Spotify
) -> None:
    playlist = owned_playlist(served_sandbox.sandbox)
    uri = next(i["uri"] for i in playlist["items"] if i.get("uri"))
    count = sum(1 for i in playlist["items"] if i.get("uri") == uri)

    removed = client.playlist_remove(playlist["id"], [uri], snapshot_id=playlist["snapshot_id"])
    added = client.playlist_add(playlist["id"], [uri], position=1)

    assert removed != added
    items = owned_playlist(served_sandbox.sandbox)["items"]
    assert items[1]["uri"] == uri
    assert len(items) == len(playlist["items"]) - count + 1
    by_resource = served_sandbox.sandbox.counters.calls_by_resource
    assert by_resource["POST /v1/playlists/{playlist_id}/tracks"] == {playlist["id"]: 1}
    assert by_resource["DELETE /v1/playlists/{playlist_id}/tracks"] == {playlist["id"]: 1}


def test_errors_are_tekores_own_exceptions(
    served_sandbox: ServedSandbox, client: tk.Spotify
) -> None:
    sandbox = served_sandbox.sandbox
    followed = next(p for p in library(sandbox)["playlists"] if isinstance(p, str))
    track = library(sandbox)["liked_songs"][0]["track_id"]

    with tekore_client(served_sandbox, "not-a-token") as stranger, pytest.raises(tk.Unauthorised):
        stranger.current_user()
    with pytest.raises(tk.NotFound):
        client.playlist("plNobodyHasThis0000000")
    with pytest.raises(tk.Forbidden):
        client.playlist_remove(followed, [f"spotify:track:{track}"])
    with pytest.raises(tk.BadRequest):
        client.saved_albums_delete([library(sandbox)["saved_albums"][0]["album_id"]] * 21)

    sandbox.settings.rate_limit_budget = 1
    sandbox.settings.rate_limit_retry_after = 30
    client.current_user()
    with pytest.raises(tk.TooManyRequests) as limited:
        client.current_user()
    assert limited.value.response.headers["retry-after"] == "30"
    assert sandbox.counters.violations == 0
