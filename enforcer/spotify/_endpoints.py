"""Every Spotify endpoint the client calls, with the scopes it needs: the one place for both.

Paths are the templates of ``spotify-openapi.yml``, so that a call is counted under
the same key (``"DELETE /v1/me/library"``) by the client and by the sandbox. Scopes
are those the yml's ``security`` lists for the operation, narrowed where the
reference says which one applies.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import reduce
from typing import Final, ParamSpec, TypeVar


@dataclass(frozen=True, slots=True)
class Endpoint:
    method: str
    path: str
    """Relative to the API base, with ``{name}`` placeholders: ``/playlists/{playlist_id}``."""
    scopes: tuple[str, ...] = ()

    def template(self, base_path: str) -> str:
        """The counting key: ``"GET /v1/playlists/{playlist_id}/items"``."""
        return f"{self.method} {base_path}{self.path}"


CURRENT_USER: Final = Endpoint("GET", "/me")
"""The ID and display name need no scope."""

LIKED_SONGS: Final = Endpoint("GET", "/me/tracks", ("user-library-read",))
SAVED_ALBUMS: Final = Endpoint("GET", "/me/albums", ("user-library-read",))
PLAYLISTS: Final = Endpoint(
    "GET", "/me/playlists", ("playlist-read-private", "playlist-read-collaborative")
)
PLAYLIST: Final = Endpoint(
    "GET", "/playlists/{playlist_id}", ("playlist-read-private", "playlist-read-collaborative")
)
PLAYLIST_ITEMS: Final = Endpoint(
    "GET",
    "/playlists/{playlist_id}/items",
    ("playlist-read-private", "playlist-read-collaborative"),
)
FOLLOWED_ARTISTS: Final = Endpoint("GET", "/me/following", ("user-follow-read",))
# Catalog reads, one object a call: the batch GETs are gone for development-mode apps.
ARTIST: Final = Endpoint("GET", "/artists/{artist_id}")
TRACK: Final = Endpoint("GET", "/tracks/{track_id}")

_LIBRARY_MODIFY: Final = ("user-library-modify", "user-follow-modify")
LIBRARY_SAVE: Final = Endpoint("PUT", "/me/library", _LIBRARY_MODIFY)
LIBRARY_REMOVE: Final = Endpoint("DELETE", "/me/library", _LIBRARY_MODIFY)

_PLAYLIST_MODIFY: Final = ("playlist-modify-public", "playlist-modify-private")
PLAYLIST_ITEMS_ADD: Final = Endpoint("POST", "/playlists/{playlist_id}/items", _PLAYLIST_MODIFY)
PLAYLIST_ITEMS_REMOVE: Final = Endpoint(
    "DELETE", "/playlists/{playlist_id}/items", _PLAYLIST_MODIFY
)

# The generation before February 2026: deprecated, a fallback only.
LEGACY_PLAYLIST_ITEMS: Final = Endpoint(
    "GET",
    "/playlists/{playlist_id}/tracks",
    ("playlist-read-private", "playlist-read-collaborative"),
)
LEGACY_PLAYLIST_ITEMS_ADD: Final = Endpoint(
    "POST", "/playlists/{playlist_id}/tracks", _PLAYLIST_MODIFY
)
LEGACY_PLAYLIST_ITEMS_REMOVE: Final = Endpoint(
    "DELETE", "/playlists/{playlist_id}/tracks", _PLAYLIST_MODIFY
)
LEGACY_LIKED_SONGS_SAVE: Final = Endpoint("PUT", "/me/tracks", ("user-library-modify",))
LEGACY_LIKED_SONGS_REMOVE: Final = Endpoint("DELETE", "/me/tracks", ("user-library-modify",))
LEGACY_ALBUMS_SAVE: Final = Endpoint("PUT", "/me/albums", ("user-library-modify",))
LEGACY_ALBUMS_REMOVE: Final = Endpoint("DELETE", "/me/albums", ("user-library-modify",))
LEGACY_FOLLOW_ARTISTS: Final = Endpoint("PUT", "/me/following", ("user-follow-modify",))
LEGACY_UNFOLLOW_ARTISTS: Final = Endpoint("DELETE", "/me/following", ("user-follow-modify",))


P = ParamSpec("P")
R = TypeVar("R")

ENDPOINTS_ATTRIBUTE: Final = "__spotify_endpoints__"


def uses(*endpoints: Endpoint) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Declares the endpoints (and so the scopes) a client method may call.

    The scopes are appended to the method's docstring and kept on the function,
    where ``scopes_of`` finds them.
    """

    def declare(method: Callable[P, R]) -> Callable[P, R]:
        setattr(method, ENDPOINTS_ATTRIBUTE, endpoints)
        scopes = scopes_of_endpoints(endpoints)
        listed = ", ".join(f"``{scope}``" for scope in sorted(scopes)) or "none"
        method.__doc__ = f"{(method.__doc__ or '').rstrip()}\n\n        Scopes: {listed}.\n"
        return method

    return declare


def scopes_of_endpoints(endpoints: tuple[Endpoint, ...]) -> frozenset[str]:
    return reduce(frozenset.union, (frozenset(e.scopes) for e in endpoints), frozenset())


def scopes_of(method: Callable[..., object]) -> frozenset[str]:
    """The scopes a client method declared with ``uses``."""
    endpoints: tuple[Endpoint, ...] = getattr(method, ENDPOINTS_ATTRIBUTE, ())
    return scopes_of_endpoints(endpoints)
