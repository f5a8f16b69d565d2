"""Reading a whole library through the client: every page, resumable, nothing dropped."""

from __future__ import annotations

import pytest

from enforcer.sandbox import SandboxSettings, generate_library
from enforcer.spotify import (
    Generation,
    InMemoryGenerationMemory,
    InvalidIdentifier,
    NotFound,
    Operation,
    Track,
)
from tests.spotify.sandbox_client import (
    USER,
    entry,
    library,
    local_entry,
    moment,
    new_sandbox,
    playlist_id,
    sandbox_client,
    track_id,
    track_uri,
)
from tests.support.contract import ContractRecorder


async def test_every_listing_is_read_to_its_last_item(
    contract_recorder: ContractRecorder,
) -> None:
    fixture = generate_library(
        seed=7,
        user_id=USER,
        liked_songs=173,
        playlists=53,
        playlist_size=61,
        saved_albums=57,
        albums=60,
        followed_artists=51,
        artists=60,
    )
    sandbox = new_sandbox(fixture)
    expected = sandbox.dump_user(USER)
    async with sandbox_client(sandbox, contract_recorder) as client:
        liked = await client.all_liked_songs()
        albums = await client.all_saved_albums()
        artists = await client.all_followed_artists()
        playlists = await client.all_playlists()
        first_owned = next(p for p in playlists if p.owner_id == USER)
        items = await client.all_playlist_items(first_owned.id)

    assert [song.track.id for song in liked] == [s["track_id"] for s in expected["liked_songs"]]
    assert [a.album.id for a in albums] == [a["album_id"] for a in expected["saved_albums"]]
    assert sorted(a.id for a in artists) == sorted(expected["followed_artists"])
    assert len(playlists) == len(sandbox.state.users[USER].playlists) == 55  # 53 own, 2 followed
    assert len(items) == first_owned.total_items == 61
    assert [item.position for item in items] == list(range(61))
    # 4 pages of 50 for 173 songs, 2 for 57 albums and 51 artists, 2 for 55 playlists.
    assert client.calls["GET /v1/me/tracks"] == 4
    assert client.calls["GET /v1/me/albums"] == 2
    assert client.calls["GET /v1/me/following"] == 2
    assert client.calls["GET /v1/me/playlists"] == 2
    assert client.calls["GET /v1/playlists/{playlist_id}/items"] == 2
    assert dict(client.calls) == sandbox.counters.calls


async def test_a_listing_resumes_from_a_checkpointed_cursor(
    contract_recorder: ContractRecorder,
) -> None:
    sandbox = new_sandbox(library(tracks=120, liked=120, followed=30))
    async with sandbox_client(sandbox, contract_recorder) as client:
        pages = client.liked_songs_pages()
        first = await anext(pages)
        await pages.aclose()
        assert first.cursor == 0
        assert first.total == 120
        assert first.next_cursor == 50
        rest = [song async for page in client.liked_songs_pages(start=50) for song in page.items]
        last_page = await client.liked_songs_page(100)
    assert [s.track.id for s in first.items + rest] == [track_id(i) for i in range(120)]
    assert last_page.next_cursor is None
    assert len(last_page.items) == 20


async def test_followed_artists_resume_after_the_cursor(
    contract_recorder: ContractRecorder,
) -> None:
    sandbox = new_sandbox(generate_library(seed=3, user_id=USER, followed_artists=120, artists=130))
    async with sandbox_client(sandbox, contract_recorder) as client:
        first = await client.followed_artists_page()
        assert isinstance(first.next_cursor, str)
        rest = [
            a async for page in client.followed_artists_pages(first.next_cursor) for a in page.items
        ]
    ids = [artist.id for artist in first.items + rest]
    assert len(ids) == len(set(ids)) == 120


async def test_unavailable_entries_and_local_files_are_kept_and_marked(
    contract_recorder: ContractRecorder,
) -> None:
    items = [entry(0), local_entry("Demo tape"), entry(1), entry(2), entry(0)]
    sandbox = new_sandbox(library(tracks=5, playlists=[items], unavailable=[1]))
    async with sandbox_client(sandbox, contract_recorder) as client:
        read = await client.all_playlist_items(playlist_id(0))

    assert [item.position for item in read] == [0, 1, 2, 3, 4]
    assert [item.uri for item in read] == [
        track_uri(0),
        read[1].uri,
        None,
        track_uri(2),
        track_uri(0),
    ]
    local, unavailable = read[1], read[2]
    assert local.is_local
    assert not local.unavailable
    assert str(local.uri).startswith("spotify:local:")
    assert isinstance(local.item, Track)
    assert local.item.id is None
    assert local.item.name == "Demo tape"
    assert unavailable.unavailable
    assert not unavailable.is_local
    assert unavailable.added_at == moment(1)
    assert unavailable.added_by == USER
    first = read[0].item
    assert isinstance(first, Track)
    # The primary artist first, then the featured one, as Spotify lists them.
    assert [a.name for a in first.artists] == ["Artist 0", "Artist 1"]


async def test_profile_and_one_playlist(contract_recorder: ContractRecorder) -> None:
    sandbox = new_sandbox(library(tracks=3, playlists=[[entry(0), entry(1)]]))
    async with sandbox_client(sandbox, contract_recorder) as client:
        me = await client.current_user()
        playlist = await client.playlist(f"https://open.spotify.com/playlist/{playlist_id(0)}?si=x")
        with pytest.raises(NotFound):
            await client.playlist(playlist_id(99))
    assert me.id == USER
    assert (playlist.id, playlist.owner_id, playlist.total_items) == (playlist_id(0), USER, 2)
    assert playlist.snapshot_id == sandbox.dump_user(USER)["playlists"][0]["snapshot_id"]


async def test_a_playlist_snapshot_alone_is_one_small_read(
    contract_recorder: ContractRecorder,
) -> None:
    sandbox = new_sandbox(library(tracks=3, playlists=[[entry(0), entry(1)]]))
    loaded = sandbox.dump_user(USER)["playlists"][0]["snapshot_id"]
    async with sandbox_client(sandbox, contract_recorder) as client:
        before = await client.playlist_snapshot_id(playlist_id(0))
        after_add = await client.add_playlist_items(playlist_id(0), [track_uri(2)])
        now = await client.playlist_snapshot_id(playlist_id(0))
        with pytest.raises(NotFound):
            await client.playlist_snapshot_id(playlist_id(99))
    assert before == loaded
    assert now == after_add != before
    assert client.calls["GET /v1/playlists/{playlist_id}"] == 3


async def test_playlist_items_fall_back_to_the_legacy_listing_and_remember_it(
    contract_recorder: ContractRecorder,
) -> None:
    items = [entry(i) for i in range(150)]
    sandbox = new_sandbox(library(tracks=150, playlists=[items]))
    sandbox.settings.closed_endpoints = {"GET /v1/playlists/{playlist_id}/items": 410}
    memory = InMemoryGenerationMemory()
    async with sandbox_client(sandbox, contract_recorder, generations=memory) as client:
        read = await client.all_playlist_items(playlist_id(0))
        again = await client.all_playlist_items(playlist_id(0))
    assert (
        [item.uri for item in read]
        == [track_uri(i) for i in range(150)]
        == [item.uri for item in again]
    )
    assert memory.get(Operation.PLAYLIST_ITEMS_READ) is Generation.LEGACY
    # One refused call, then pages of 100 on the legacy listing: 2 per read.
    assert client.calls["GET /v1/playlists/{playlist_id}/items"] == 1
    assert client.calls["GET /v1/playlists/{playlist_id}/tracks"] == 4


@pytest.mark.parametrize("bad", ["-1", "1.5", "True"])
async def test_a_bad_offset_is_refused_before_any_call(
    contract_recorder: ContractRecorder, bad: str
) -> None:
    sandbox = new_sandbox(library(tracks=3, liked=3))
    offset = {"-1": -1, "1.5": 1.5, "True": True}[bad]
    async with sandbox_client(sandbox, contract_recorder) as client:
        with pytest.raises(ValueError, match=bad):
            await client.liked_songs_page(offset)  # type: ignore[arg-type]
        with pytest.raises(InvalidIdentifier, match="not-a-playlist"):
            client.playlist_items_pages("not-a-playlist")
        assert client.calls.total == 0


@pytest.mark.parametrize("shape", ["album_of_nulls", "null_album"])
async def test_a_local_file_reads_the_same_whichever_shape_spotify_sends(
    shape: str, contract_recorder: ContractRecorder
) -> None:
    # Which shape Spotify sends a local file's album in is an open question (docs/sandbox.md).
    items = [entry(0), local_entry("Demo tape")]
    settings = SandboxSettings.model_validate({"local_file_shape": shape})
    sandbox = new_sandbox(library(tracks=2, playlists=[items]), settings=settings)
    async with sandbox_client(sandbox, contract_recorder) as client:
        read = await client.all_playlist_items(playlist_id(0))

    local = read[1]
    assert isinstance(local.item, Track)
    assert (local.is_local, local.item.id, local.item.name) == (True, None, "Demo tape")
    assert [a.id for a in local.item.artists] == [None]
    assert local.item.album is None or local.item.album.id is None
