"""How many things Spotify accepts per call, and the one helper that cuts lists to fit.

Every number comes from the project's contract, the steering repo's
``shared/reference/spotify-web-api.md`` (section 2 "Write operations and their exact
limits" and section 3 "Reads and pagination"), checked against ``spotify-openapi.yml``
beside it. Never from memory: the sandbox takes its own copy of these rules from the
same contract, so a number written wrong here is caught by it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Final, TypeVar

# Writes (section 2).
LIBRARY_URIS_PER_CALL: Final = 40
"""``PUT``/``DELETE /me/library?uris=``: 40 URIs, which may mix tracks, albums and artists."""

PLAYLIST_ITEMS_PER_CALL: Final = 100
"""``DELETE /playlists/{id}/items``: 100 objects; ``POST /playlists/{id}/items``: 100 URIs."""

LEGACY_LIKED_SONGS_PER_CALL: Final = 50
"""Legacy ``DELETE``/``PUT /me/tracks`` (``ids`` or ``timestamped_ids``): 50."""

LEGACY_ALBUMS_PER_CALL: Final = 20
"""Legacy ``DELETE``/``PUT /me/albums``: 20 (the spec also says 50 in the body; 20 is safe)."""

LEGACY_ARTISTS_PER_CALL: Final = 50
"""Legacy ``DELETE``/``PUT /me/following?type=artist&ids=``: 50."""

# Reads (section 3; the yml's ``QueryLimit`` caps ``limit`` at 50).
LIKED_SONGS_PAGE: Final = 50
SAVED_ALBUMS_PAGE: Final = 50
PLAYLISTS_PAGE: Final = 50
PLAYLIST_ITEMS_PAGE: Final = 50
"""``GET /playlists/{id}/items`` takes the shared ``QueryLimit``: at most 50."""

LEGACY_PLAYLIST_ITEMS_PAGE: Final = 100
"""``GET /playlists/{id}/tracks`` declares its own ``limit`` with a maximum of 100."""

FOLLOWED_ARTISTS_PAGE: Final = 50

T = TypeVar("T")


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """Consecutive slices of ``items``, each at most ``size`` long, in order."""
    if size < 1:
        raise ValueError(f"a chunk size must be at least 1, not {size!r}")
    for start in range(0, len(items), size):
        yield items[start : start + size]
