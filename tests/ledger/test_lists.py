"""The blocklist and the protect list: atomic changes, original entries kept."""

from __future__ import annotations

from datetime import UTC

import pytest

from enforcer.ledger import InvalidLedgerValue, Ledger, NotOnList, UnknownAccount
from enforcer.models import BlockedArtist, ProtectList
from tests.ledger.builders import ACCOUNT, BLOCKED, GUEST, PLAYLIST_ID

THIRD = BlockedArtist(artist_id="3TVXtAsR1Inumwj472S9r4", name="Third")
TRACK = "4uLU6hMCjMI75M1A2tKUQC"


@pytest.fixture
async def account(ledger: Ledger) -> str:
    await ledger.upsert_account(ACCOUNT, "Alice")
    return ACCOUNT


async def test_adding_artists_returns_the_new_ones_and_keeps_first_entries(
    ledger: Ledger, account: str
) -> None:
    assert await ledger.add_to_blocklist(account, [BLOCKED, GUEST], "file:artists.txt") == [
        BLOCKED,
        GUEST,
    ]
    first = await ledger.blocklist(account)
    renamed = BlockedArtist(artist_id=BLOCKED.artist_id, name="Another name")

    assert await ledger.add_to_blocklist(account, [renamed, THIRD, THIRD], "uri") == [THIRD]
    entries = await ledger.blocklist(account)

    assert [e.artist for e in entries] == [BLOCKED, GUEST, THIRD]
    assert entries[:2] == first
    assert [e.source for e in entries] == ["file:artists.txt", "file:artists.txt", "uri"]
    assert all(e.added_at.tzinfo == UTC for e in entries)


async def test_one_bad_artist_in_a_batch_adds_none_of_them(ledger: Ledger, account: str) -> None:
    bad = BlockedArtist(artist_id="not-an-id", name="Nobody")
    with pytest.raises(InvalidLedgerValue, match="'not-an-id' is not a Spotify artist ID"):
        await ledger.add_to_blocklist(account, [BLOCKED, bad], "id")
    nameless = BlockedArtist(artist_id=GUEST.artist_id, name=" ")
    with pytest.raises(InvalidLedgerValue, match=GUEST.artist_id):
        await ledger.add_to_blocklist(account, [BLOCKED, nameless], "id")
    with pytest.raises(InvalidLedgerValue, match="'spotify' is not a blocklist source"):
        await ledger.add_to_blocklist(account, [BLOCKED], "spotify")
    assert await ledger.blocklist(account) == []


async def test_removing_takes_all_or_nothing(ledger: Ledger, account: str) -> None:
    await ledger.add_to_blocklist(account, [BLOCKED, GUEST, THIRD], "id")

    with pytest.raises(NotOnList, match=r"'0{22}'; nothing was changed") as error:
        await ledger.remove_from_blocklist(account, [BLOCKED.artist_id, "0" * 22])
    assert error.value.missing == ("0" * 22,)
    assert [e.artist for e in await ledger.blocklist(account)] == [BLOCKED, GUEST, THIRD]

    removed = await ledger.remove_from_blocklist(account, [THIRD.artist_id, BLOCKED.artist_id])
    assert removed == [THIRD, BLOCKED]
    assert [e.artist for e in await ledger.blocklist(account)] == [GUEST]


async def test_lists_of_an_unknown_account_are_refused(ledger: Ledger) -> None:
    with pytest.raises(UnknownAccount, match="'nobody'"):
        await ledger.add_to_blocklist("nobody", [BLOCKED], "id")
    with pytest.raises(UnknownAccount, match="'nobody'"):
        await ledger.blocklist("nobody")
    with pytest.raises(UnknownAccount, match="'nobody'"):
        await ledger.add_protected("nobody", "track", [(TRACK, "Song")])


async def test_the_protect_list_keeps_tracks_and_playlists_apart(
    ledger: Ledger, account: str
) -> None:
    added = await ledger.add_protected(account, "track", [(TRACK, "Our song")])
    assert [(e.kind, e.spotify_id, e.name) for e in added] == [("track", TRACK, "Our song")]
    await ledger.add_protected(account, "playlist", [(PLAYLIST_ID, "Road trip")])
    assert await ledger.add_protected(account, "track", [(TRACK, "Renamed")]) == []

    assert await ledger.protect_list(account) == ProtectList(
        track_ids=frozenset({TRACK}), playlist_ids=frozenset({PLAYLIST_ID})
    )
    entries = await ledger.protected(account)
    assert [(e.kind, e.name) for e in entries] == [("playlist", "Road trip"), ("track", "Our song")]

    # A playlist ID is not a protected track.
    with pytest.raises(NotOnList, match=PLAYLIST_ID):
        await ledger.remove_protected(account, "track", [TRACK, PLAYLIST_ID])
    assert len(await ledger.protected(account)) == 2

    removed = await ledger.remove_protected(account, "playlist", [PLAYLIST_ID])
    assert [e.spotify_id for e in removed] == [PLAYLIST_ID]
    assert await ledger.protect_list(account) == ProtectList(track_ids=frozenset({TRACK}))


async def test_bad_protect_entries_change_nothing(ledger: Ledger, account: str) -> None:
    with pytest.raises(InvalidLedgerValue, match="'album' cannot be protected"):
        await ledger.add_protected(account, "album", [(TRACK, "x")])  # type: ignore[arg-type]
    with pytest.raises(InvalidLedgerValue, match="'garbage' is not a Spotify track ID"):
        await ledger.add_protected(account, "track", [(TRACK, "Song"), ("garbage", "x")])
    assert await ledger.protected(account) == []
