"""Spotify identifiers as people paste them, normalised to IDs and URIs.

A person may give an artist (or track, album, playlist) as a bare 22-character
base-62 ID, as a ``spotify:artist:ID`` URI, or as a link copied from the app:
``https://open.spotify.com/artist/ID?si=...``, possibly localised as
``https://open.spotify.com/intl-de/artist/ID``. Everything else is refused with an
``InvalidIdentifier`` that names the value, before anything is sent.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Final, Literal, cast, get_args

from enforcer.spotify.errors import InvalidIdentifier, SpotifyError

Kind = Literal["artist", "track", "album", "playlist", "episode"]
"""The kinds of Spotify object this project names by ID."""

KINDS: Final[frozenset[Kind]] = frozenset(get_args(Kind))

_ID = r"[0-9A-Za-z]{22}"
_ID_PATTERN: Final = re.compile(_ID)
_URI_PATTERN: Final = re.compile(rf"spotify:(?P<kind>[a-z]+):(?P<id>{_ID})")
_URL_PATTERN: Final = re.compile(
    r"(?:https?://)?open\.spotify\.com/"
    r"(?:intl-[A-Za-z]{2}(?:[-_][A-Za-z]{2,4})?/)?"
    rf"(?P<kind>[a-z]+)/(?P<id>{_ID})/?"
    r"(?:\?[^#\s]*)?(?:#\S*)?"
)


class InvalidURI(InvalidIdentifier):
    """A value given where a Spotify URI of one of several kinds is expected is not one.

    ``InvalidIdentifier``'s message speaks of a single kind; a list that mixes
    tracks, albums and artists needs to name them all.
    """

    def __init__(self, value: str, allowed: Collection[Kind]) -> None:
        names = sorted(allowed)
        expected = " or ".join(names)
        # InvalidIdentifier's own message names a single kind, hence the direct call.
        SpotifyError.__init__(
            self,
            f"{value!r} is not a Spotify {expected} URI: give spotify:KIND:ID, with KIND "
            f"one of {', '.join(names)} and a 22-character base-62 ID, "
            "or an https://open.spotify.com/KIND/ID link",
        )
        self.value = value
        self.expected = expected


def _split(value: str) -> tuple[str, str] | None:
    """(kind, id) from a URI or an open.spotify.com link, None for anything else."""
    text = value.strip()
    match = _URI_PATTERN.fullmatch(text) or _URL_PATTERN.fullmatch(text)
    if match is None:
        return None
    return match["kind"], match["id"]


def parse_id(value: str, kind: Kind) -> str:
    """The bare ID of ``value``, which must name a Spotify object of ``kind``.

    Accepts a bare ID, a ``spotify:{kind}:ID`` URI or an open.spotify.com link;
    a link or URI of another kind (a track where an artist is expected) is an error.
    """
    if not isinstance(value, str):
        raise InvalidIdentifier(repr(value), kind)
    text = value.strip()
    if _ID_PATTERN.fullmatch(text):
        return text
    parts = _split(text)
    if parts is None or parts[0] != kind:
        raise InvalidIdentifier(value, kind)
    return parts[1]


def parse_artist_id(value: str) -> str:
    """The ID of the artist ``value`` names (ID, URI or link)."""
    return parse_id(value, "artist")


def parse_track_id(value: str) -> str:
    """The ID of the track ``value`` names (ID, URI or link)."""
    return parse_id(value, "track")


def parse_album_id(value: str) -> str:
    """The ID of the album ``value`` names (ID, URI or link)."""
    return parse_id(value, "album")


def parse_playlist_id(value: str) -> str:
    """The ID of the playlist ``value`` names (ID, URI or link)."""
    return parse_id(value, "playlist")


def to_uri(kind: Kind, spotify_id: str) -> str:
    """``spotify:{kind}:{id}``; ``spotify_id`` may itself be a URI or link of that kind."""
    if kind not in KINDS:
        raise InvalidURI(f"spotify:{kind}:{spotify_id}", KINDS)
    return f"spotify:{kind}:{parse_id(spotify_id, kind)}"


def parse_uri(value: str, allowed: Collection[Kind] = KINDS) -> tuple[Kind, str]:
    """(kind, id) of a ``spotify:{kind}:{id}`` URI (or an open.spotify.com link).

    A bare ID is refused here: it does not say what it names. So are kinds outside
    ``allowed`` and local files (``spotify:local:...``), which the API cannot
    add or remove by URI.
    """
    parts = _split(value) if isinstance(value, str) else None
    if parts is None or parts[0] not in allowed:
        raise InvalidURI(value if isinstance(value, str) else repr(value), allowed)
    kind, spotify_id = parts
    return cast(Kind, kind), spotify_id


def normalise_uri(value: str, allowed: Collection[Kind] = KINDS) -> str:
    """The canonical ``spotify:{kind}:{id}`` form of a URI or link."""
    kind, spotify_id = parse_uri(value, allowed)
    return f"spotify:{kind}:{spotify_id}"
