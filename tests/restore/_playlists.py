"""Playlists as lists of URIs, enforced and restored the way Spotify would."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from enforcer.restore import PlaylistRestorePlan, RemovedOccurrence

Playlist = list[str | None]


def key_of(uri: str) -> str:
    """The ``PlannedAction.key`` of a playlist item (one playlist: its ID is fixed)."""
    return f"playlist_item:pl:{uri.rsplit(':', 1)[-1]}:remove"


def enforce(
    original: Sequence[str | None], blocked: Collection[str]
) -> tuple[Playlist, list[RemovedOccurrence]]:
    """The playlist enforcement leaves (every occurrence of a blocked URI removed) and
    the occurrences it removed, as the plan records them."""
    left = [uri for uri in original if uri not in blocked]
    removed = [
        RemovedOccurrence(uri=uri, position=position, key=key_of(uri))
        for position, uri in enumerate(original)
        if uri is not None and uri in blocked
    ]
    return left, removed


def apply(plan: PlaylistRestorePlan, playlist: Sequence[str | None]) -> Playlist:
    """Send the plan's calls with POST-with-position semantics: the URIs go in at
    ``position``, what was there and after it moves along. Each playlist in between
    must be the one the plan expects."""
    result = list(playlist)
    assert tuple(result) == plan.starting_from
    for index, call in enumerate(plan.calls):
        assert tuple(result) == plan.expected_before(index)
        assert 0 <= call.position <= len(result), (call.position, len(result))
        result[call.position : call.position] = call.uris
        assert tuple(result) == call.expected_after
    return result
