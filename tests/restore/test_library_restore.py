"""Liked songs, saved albums and followed artists: which save calls, in which order."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from enforcer.restore import (
    LikedSong,
    LikedSongsEndpoint,
    liked_song_uris,
    plan_library_restore,
    plan_liked_songs_restore,
)

START = datetime(2020, 1, 1, tzinfo=UTC)
T = TypeVar("T")


def spotify_id(prefix: str, n: int) -> str:
    return f"{prefix}{n:020d}"


def liked_songs(count: int) -> list[LikedSong]:
    """``count`` songs liked a day apart, oldest first."""
    return [LikedSong(spotify_id("tr", n), START + timedelta(days=n)) for n in range(count)]


def shuffled(items: Sequence[T]) -> tuple[T, ...]:
    mixed = list(items)
    random.Random(5).shuffle(mixed)
    return tuple(mixed)


def test_with_the_legacy_endpoint_songs_go_back_with_their_dates_50_a_call() -> None:
    songs = liked_songs(120)

    plan = plan_liked_songs_restore(shuffled(songs), dates_available=True)

    assert plan.endpoint is LikedSongsEndpoint.TIMESTAMPED_IDS
    assert plan.calls == (tuple(songs[:50]), tuple(songs[50:100]), tuple(songs[100:]))
    assert plan.dates_lost == ()
    assert plan.order_kept


def test_through_the_library_songs_are_saved_oldest_first_40_a_call_and_lose_their_dates() -> None:
    songs = liked_songs(90)

    plan = plan_liked_songs_restore(shuffled(songs), dates_available=False)

    assert plan.endpoint is LikedSongsEndpoint.LIBRARY
    assert plan.calls == (tuple(songs[:40]), tuple(songs[40:80]), tuple(songs[80:]))
    assert plan.dates_lost == tuple(songs)
    assert not plan.order_kept
    assert liked_song_uris(plan.calls[2][:1]) == (f"spotify:track:{songs[80].track_id}",)


def test_songs_liked_at_the_same_time_keep_the_order_they_were_given_in() -> None:
    same_time = [(spotify_id("tr", n), START) for n in (3, 1, 2)]

    plan = plan_liked_songs_restore(same_time, dates_available=False)

    assert [song.track_id for song in plan.dates_lost] == [id_ for id_, _ in same_time]


def test_no_songs_is_no_call() -> None:
    assert plan_liked_songs_restore([], dates_available=True).calls == ()
    assert plan_liked_songs_restore([], dates_available=False).calls == ()
    assert plan_library_restore([], []).calls == ()


def test_albums_oldest_first_then_artists_40_uris_a_call() -> None:
    albums = [(spotify_id("al", n), START + timedelta(days=n)) for n in range(30)]
    artists = [spotify_id("ar", n) for n in range(25)]

    plan = plan_library_restore(shuffled(albums), artists)

    uris = [f"spotify:album:{album_id}" for album_id, _ in albums]
    uris += [f"spotify:artist:{artist_id}" for artist_id in artists]
    assert plan.calls == (tuple(uris[:40]), tuple(uris[40:]))
