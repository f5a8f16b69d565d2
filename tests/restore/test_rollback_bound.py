"""The least a rollback can cost, and the playlist as enforcement left it."""

from __future__ import annotations

import pytest

from enforcer.restore import (
    RemovedOccurrence,
    left_by_removal,
    original_playlist,
    playlist_insert_lower_bound,
    rollback_lower_bound,
)


@pytest.mark.parametrize(
    ("positions", "calls"),
    [
        ([], 0),
        ([4], 1),
        ([1, 2, 3], 1),
        ([0, 2, 3, 7], 3),
        ([3, 1, 2], 1),
        (list(range(100)), 1),
        (list(range(101)), 2),
        ([*range(250), 300], 4),
    ],
)
def test_a_playlist_needs_a_call_per_run_split_at_100(positions: list[int], calls: int) -> None:
    assert playlist_insert_lower_bound(positions) == calls


def test_the_bound_adds_dated_songs_by_50_the_rest_by_40_and_the_playlists() -> None:
    assert (
        rollback_lower_bound(
            dated_liked_songs=101, other_library_items=41, playlists=[[0, 1, 5], [2], []]
        )
        == 3 + 2 + 2 + 1
    )
    assert rollback_lower_bound(dated_liked_songs=0, other_library_items=0, playlists=[]) == 0


def occurrence(uri: str, position: int) -> RemovedOccurrence:
    return RemovedOccurrence(uri=uri, position=position, key=f"k:{uri}")


def test_the_playlist_as_left_and_the_original_are_each_others_inverse() -> None:
    original = ("A", "X", "B", None, "X", "C")
    removed = [occurrence("X", 1), occurrence("X", 4)]

    left = left_by_removal(original, removed)

    assert left == ("A", "B", None, "C")
    assert original_playlist(left, removed) == original


def test_removals_that_do_not_fit_the_original_are_refused() -> None:
    with pytest.raises(ValueError, match="not in the original"):
        left_by_removal(("A", "B"), [occurrence("X", 1)])
    with pytest.raises(ValueError, match="not in the original"):
        left_by_removal(("A", "B"), [occurrence("X", 2)])
    with pytest.raises(ValueError, match="beyond"):
        original_playlist(("A",), [occurrence("X", 3)])
