"""What a person pastes as an artist, track, album or playlist, and what the client makes of it."""

from __future__ import annotations

import pytest

from enforcer.spotify import (
    InvalidIdentifier,
    InvalidURI,
    normalise_uri,
    parse_album_id,
    parse_artist_id,
    parse_playlist_id,
    parse_track_id,
    parse_uri,
    to_uri,
)

ARTIST = "0TnOYISbd1XYRBk9myaseg"
TRACK = "4iV5W9uYEdYUVa79Axb7Rh"


@pytest.mark.parametrize(
    "pasted",
    [
        ARTIST,
        f"  {ARTIST}\n",
        f"spotify:artist:{ARTIST}",
        f"https://open.spotify.com/artist/{ARTIST}",
        f"https://open.spotify.com/artist/{ARTIST}?si=AbC123xyz_-",
        f"https://open.spotify.com/intl-de/artist/{ARTIST}?si=1",
        f"https://open.spotify.com/intl-pt-BR/artist/{ARTIST}",
        f"open.spotify.com/intl-fr/artist/{ARTIST}",
        f"http://open.spotify.com/artist/{ARTIST}/",
    ],
)
def test_every_form_a_person_pastes_gives_the_artist_id(pasted: str) -> None:
    assert parse_artist_id(pasted) == ARTIST


@pytest.mark.parametrize(
    "pasted",
    [
        "",
        "Daft Punk",
        ARTIST[:-1],  # 21 characters
        ARTIST + "x",  # 23 characters
        ARTIST[:-1] + "!",  # not base-62
        f"spotify:track:{TRACK}",  # a track where an artist is expected
        f"https://open.spotify.com/track/{TRACK}?si=1",
        f"spotify:artist:{ARTIST[:-1]}",
        f"https://example.com/artist/{ARTIST}",
        f"https://open.spotify.com/artist/{ARTIST}/albums",
        f"spotify:artist:{ARTIST}:extra",
    ],
)
def test_anything_else_is_refused_naming_the_value(pasted: str) -> None:
    with pytest.raises(InvalidIdentifier) as refused:
        parse_artist_id(pasted)
    assert refused.value.value == pasted
    assert repr(pasted) in str(refused.value)
    assert "artist" in str(refused.value)


def test_each_kind_has_its_own_parser() -> None:
    assert parse_track_id(f"spotify:track:{TRACK}") == TRACK
    assert parse_album_id(f"https://open.spotify.com/album/{TRACK}") == TRACK
    assert parse_playlist_id(f"spotify:playlist:{TRACK}") == TRACK
    with pytest.raises(InvalidIdentifier, match="playlist"):
        parse_playlist_id(f"spotify:album:{TRACK}")


def test_uris_round_trip() -> None:
    assert to_uri("track", TRACK) == f"spotify:track:{TRACK}"
    assert to_uri("artist", f"https://open.spotify.com/artist/{ARTIST}") == (
        f"spotify:artist:{ARTIST}"
    )
    assert parse_uri(f"spotify:album:{TRACK}") == ("album", TRACK)
    assert normalise_uri(f"https://open.spotify.com/track/{TRACK}?si=9") == (
        f"spotify:track:{TRACK}"
    )
    with pytest.raises(InvalidIdentifier):
        to_uri("track", "not-an-id")


@pytest.mark.parametrize(
    "value",
    [
        TRACK,  # a bare ID does not say what it names
        "spotify:local:Artist:Album:Title:215",  # local files cannot be written by URI
        f"spotify:show:{TRACK}",
        f"spotify:track:{TRACK[:-2]}",
    ],
)
def test_a_uri_must_say_what_it_names(value: str) -> None:
    with pytest.raises(InvalidURI) as refused:
        parse_uri(value, ("track", "album", "artist"))
    assert refused.value.value == value
    assert repr(value) in str(refused.value)
    assert "album or artist or track" in str(refused.value)
