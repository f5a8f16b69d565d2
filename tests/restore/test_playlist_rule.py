"""Where items go back when the person changed the playlist after the enforcement,
and the plan's other promises, case by case."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from enforcer.models import (
    EntityType,
    LikedSongBefore,
    MatchRule,
    Occurrence,
    PlannedAction,
    PlaylistItemBefore,
    Reason,
)
from enforcer.restore import RemovedOccurrence, plan_playlist_restore, removed_occurrences
from tests.restore._playlists import Playlist, apply, enforce, key_of

A, B, C, D, N = (f"spotify:track:{name}" for name in ("A", "B", "C", "D", "N"))
X, Y = "spotify:track:X", "spotify:track:Y"


def roll_back(
    original: Sequence[str | None],
    blocked: set[str],
    current: Sequence[str | None],
    restored: set[str] | None = None,
) -> Playlist:
    """The playlist after rolling back, the person having made it ``current`` since."""
    left, removed = enforce(original, blocked)
    keys = {key_of(uri) for uri in (blocked if restored is None else restored)}
    return apply(plan_playlist_restore(removed, keys, current, left_by_enforcement=left), current)


def test_an_item_added_at_the_start_moves_nothing_relative_to_the_neighbours() -> None:
    assert roll_back([A, X, B, X, C], {X}, [N, A, B, C]) == [N, A, X, B, X, C]


def test_without_the_enforced_playlist_items_keep_their_count_of_items_before_them() -> None:
    _, removed = enforce([A, X, B, X, C], {X})
    current = [N, A, B, C]

    plan = plan_playlist_restore(removed, {key_of(X)}, current)

    assert apply(plan, current) == [N, X, A, X, B, C]


def test_an_item_the_person_removed_hands_its_run_to_the_item_before_it() -> None:
    # The second X followed B; B is gone, so it follows A, right behind the first X.
    assert roll_back([A, X, B, X, C], {X}, [A, C]) == [A, X, X, C]


def test_a_reorder_takes_each_item_along_with_the_neighbour_before_it() -> None:
    assert roll_back([A, X, B, Y, C], {X, Y}, [C, B, A]) == [C, B, Y, A, X]


def test_with_no_neighbour_left_before_it_an_item_goes_to_the_start() -> None:
    assert roll_back([A, X, B], {X}, [B, N]) == [X, B, N]


def test_a_restored_item_is_the_neighbour_of_the_next_when_the_kept_one_is_gone() -> None:
    # Y followed A, which is gone; before A came X, restored: Y follows X.
    assert roll_back([X, A, Y, B], {X, Y}, [B]) == [X, Y, B]


def test_copies_of_the_neighbour_are_told_apart_by_count() -> None:
    original = [A, X, A, Y, C]

    assert roll_back(original, {X, Y}, [A, A, C]) == original
    # The first A removed: the one left is the first now, the second is gone.
    assert roll_back(original, {X, Y}, [A, C]) == [A, X, Y, C]
    # A copy added before them: the first A now is the new one.
    assert roll_back(original, {X, Y}, [A, A, A, C]) == [A, X, A, Y, A, C]


def test_unavailable_and_local_entries_are_neighbours_too() -> None:
    assert roll_back([None, X, A, None, Y], {X, Y}, [A, None, None]) == [
        A,
        None,
        X,
        None,
        Y,
    ]


def test_only_the_chosen_items_come_back_after_edits() -> None:
    assert roll_back([A, X, B, Y, C, Y], {X, Y}, [N, C, B, A], restored={Y}) == [
        N,
        C,
        Y,
        B,
        Y,
        A,
    ]


def test_every_occurrence_of_a_duplicated_track_returns_in_one_call_per_run() -> None:
    original = [X, X, A, X, B, Y, X, Y]
    left, removed = enforce(original, {X, Y})

    plan = plan_playlist_restore(removed, {key_of(X), key_of(Y)}, left)

    assert [(call.position, call.uris) for call in plan.calls] == [
        (0, (X, X)),
        (3, (X,)),
        (5, (Y, X, Y)),
    ]
    assert apply(plan, left) == original


def test_a_run_longer_than_a_call_is_sent_in_consecutive_calls_of_100() -> None:
    original = [A, *[X, Y] * 120, B]
    left, removed = enforce(original, {X, Y})

    plan = plan_playlist_restore(removed, {key_of(X), key_of(Y)}, left)

    assert [(call.position, len(call.uris)) for call in plan.calls] == [
        (1, 100),
        (101, 100),
        (201, 40),
    ]
    assert apply(plan, left) == original


def test_each_call_keeps_the_occurrences_it_restores_with_their_original_details() -> None:
    occurrence = RemovedOccurrence(uri=X, position=1, key=key_of(X), added_by="alice")

    plan = plan_playlist_restore([occurrence], {key_of(X)}, [A, B])

    assert plan.calls[0].occurrences == (occurrence,)
    assert plan.calls[0].expected_after == (A, X, B)
    assert plan.expected_before(0) == (A, B)


def test_nothing_to_restore_is_no_call() -> None:
    left, removed = enforce([A, X, B], {X})

    assert plan_playlist_restore(removed, set(), left).calls == ()


@pytest.mark.parametrize(
    ("removed", "restore", "left", "message"),
    [
        ([RemovedOccurrence(uri=X, position=0, key=key_of(X))], {key_of(Y)}, None, "nothing here"),
        (
            [
                RemovedOccurrence(uri=X, position=1, key=key_of(X)),
                RemovedOccurrence(uri=Y, position=1, key=key_of(Y)),
            ],
            set(),
            None,
            "share a position",
        ),
        ([RemovedOccurrence(uri=X, position=-1, key=key_of(X))], set(), None, "negative"),
        ([RemovedOccurrence(uri=X, position=3, key=key_of(X))], set(), [A, B], "beyond"),
    ],
)
def test_inconsistent_inputs_are_refused(
    removed: list[RemovedOccurrence], restore: set[str], left: Playlist | None, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        plan_playlist_restore(removed, restore, [A, B], left_by_enforcement=left)


def test_a_planned_removal_gives_its_every_occurrence() -> None:
    action = PlannedAction(
        entity_type=EntityType.PLAYLIST_ITEM,
        entity_id="X",
        container_id="pl",
        uri=X,
        name="X",
        reasons=(Reason(artist_id="ar", artist_name="Blocked", rule=MatchRule.PRIMARY_ARTIST),),
        before=PlaylistItemBefore(
            playlist_id="pl",
            playlist_name="Mix",
            snapshot_id="s0",
            occurrences=(Occurrence(position=2, added_by="bob"), Occurrence(position=5)),
        ),
    )

    assert removed_occurrences(action) == (
        RemovedOccurrence(uri=X, position=2, key=action.key, added_by="bob"),
        RemovedOccurrence(uri=X, position=5, key=action.key),
    )
    assert action.key == key_of(X)


def test_only_a_playlist_item_has_occurrences() -> None:
    action = PlannedAction(
        entity_type=EntityType.LIKED_SONG,
        entity_id="X",
        uri=X,
        name="X",
        reasons=(),
        before=LikedSongBefore(added_at=datetime(2024, 1, 1, tzinfo=UTC)),
    )

    with pytest.raises(ValueError, match="not a playlist item"):
        removed_occurrences(action)
