"""Which generation of Spotify's endpoints answers an operation, remembered per account.

Spotify moved library and playlist writes to new endpoints in February 2026 and
answers the old ones with 403 for development-mode apps, while extended-quota
apps may still need the old ones. The client tries the remembered generation
first (the current one when nothing is remembered), switches when an endpoint
answers 403, 404 or 410, and remembers what worked, per operation.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from enum import StrEnum
from typing import Final, Protocol, TypeVar

from enforcer.spotify._http import INSUFFICIENT_SCOPE
from enforcer.spotify.errors import EndpointGone, Forbidden, NotFound, SpotifyHTTPError


class Generation(StrEnum):
    CURRENT = "current"
    """``/me/library``, ``/playlists/{id}/items``: the endpoints since February 2026."""
    LEGACY = "legacy"
    """``/me/tracks``, ``/me/albums``, ``/me/following``, ``/playlists/{id}/tracks``."""

    @property
    def other(self) -> Generation:
        return Generation.LEGACY if self is Generation.CURRENT else Generation.CURRENT


class Operation:
    """The stable names under which a generation is remembered."""

    LIBRARY_REMOVE: Final = "library.remove"
    LIBRARY_SAVE: Final = "library.save"
    ARTISTS_UNFOLLOW: Final = "library.remove.artists"
    """Current: artist URIs in ``DELETE /me/library``; legacy: ``DELETE /me/following``."""
    ARTISTS_FOLLOW: Final = "library.save.artists"
    LIKED_SONGS_SAVE_WITH_DATES: Final = "liked_songs.save_with_dates"
    """Legacy (``timestamped_ids``) keeps the dates; current (``/me/library``) cannot."""
    PLAYLIST_ITEMS_READ: Final = "playlist.items.read"
    PLAYLIST_ITEMS_REMOVE: Final = "playlist.items.remove"
    PLAYLIST_ITEMS_ADD: Final = "playlist.items.add"


class GenerationMemory(Protocol):
    """Where the client keeps, per account, the generation each operation needs."""

    def get(self, operation: str) -> Generation | None: ...

    def set(self, operation: str, generation: Generation) -> None: ...


class InMemoryGenerationMemory:
    """A ``GenerationMemory`` that lives as long as the object: seed it, read it back."""

    def __init__(self, initial: Mapping[str, Generation] | None = None) -> None:
        self._choices: dict[str, Generation] = dict(initial or {})

    def get(self, operation: str) -> Generation | None:
        return self._choices.get(operation)

    def set(self, operation: str, generation: Generation) -> None:
        self._choices[operation] = Generation(generation)

    def snapshot(self) -> dict[str, Generation]:
        """Every remembered choice, to persist."""
        return dict(self._choices)

    def __repr__(self) -> str:
        return f"InMemoryGenerationMemory({self._choices!r})"


REFUSALS: Final = (Forbidden, NotFound, EndpointGone)
"""What one generation answers when the account must use the other."""

T = TypeVar("T")


async def with_fallback(
    memory: GenerationMemory,
    operation: str,
    attempts: Mapping[Generation, Callable[[], Awaitable[T]]],
    *,
    preferred: Generation = Generation.CURRENT,
    refusals: tuple[type[SpotifyHTTPError], ...] = REFUSALS,
) -> tuple[T, Generation]:
    """Runs ``operation`` on the remembered (else ``preferred``) generation, then the other.

    An answer of one of the ``refusals`` types switches generation; what worked is
    remembered. When both refuse, the Forbidden (the first one if both forbade) is
    raised, else the first refusal: it is the one that explains.
    """
    first = memory.get(operation) or preferred
    refused: list[SpotifyHTTPError] = []
    for generation in (first, first.other):
        try:
            result = await attempts[generation]()
        except refusals as refusal:
            if isinstance(refusal, Forbidden) and refusal.reason == INSUFFICIENT_SCOPE:
                raise  # the other generation needs the same scopes: only a new login helps
            refused.append(refusal)
            continue
        if memory.get(operation) != generation:
            memory.set(operation, generation)
        return result, generation
    forbidden = [refusal for refusal in refused if isinstance(refusal, Forbidden)]
    raise (forbidden or refused)[0]
