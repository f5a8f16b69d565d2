"""Random playlists, blocklists and selections: a rollback puts back exactly what it
was asked to, in the fewest calls Spotify allows."""

from __future__ import annotations

from itertools import groupby
from math import ceil

from hypothesis import given, settings
from hypothesis import strategies as st

from enforcer.restore import plan_playlist_restore
from enforcer.spotify.limits import PLAYLIST_ITEMS_PER_CALL
from tests.restore._playlists import Playlist, apply, enforce, key_of

KEPT = [f"spotify:track:kept{n}" for n in range(4)] + [None]
BLOCKABLE = [f"spotify:track:blocked{n}" for n in range(4)]

# Runs of up to 250 blockable items, so that runs longer than one call's 100 are common.
blockable_run = st.lists(st.sampled_from(BLOCKABLE), min_size=1, max_size=250)
original_playlists = st.lists(
    st.one_of(st.sampled_from(KEPT).map(lambda uri: [uri]), blockable_run), max_size=12
).map(lambda segments: [uri for segment in segments for uri in segment])

fast = settings(max_examples=150, deadline=None, database=None)


@st.composite
def rollbacks(draw: st.DrawFn) -> tuple[Playlist, set[str], set[str]]:
    """An original playlist, the URIs enforcement removed, the ones a rollback restores."""
    original = draw(original_playlists)
    blocked = draw(st.sets(st.sampled_from(BLOCKABLE)))
    in_playlist = sorted(blocked.intersection(original))
    restored = draw(st.sets(st.sampled_from(in_playlist))) if in_playlist else set()
    return original, blocked, restored


def maximal_runs_split_at_100(playlist: Playlist, restored: set[str]) -> int:
    return sum(
        ceil(len(list(run)) / PLAYLIST_ITEMS_PER_CALL)
        for is_restored, run in groupby(playlist, key=lambda uri: uri in restored)
        if is_restored
    )


@fast
@given(rollbacks())
def test_an_unchanged_playlist_gets_back_the_original_minus_what_stays_removed(
    rollback: tuple[Playlist, set[str], set[str]],
) -> None:
    original, blocked, restored = rollback
    left, removed = enforce(original, blocked)

    plan = plan_playlist_restore(removed, {key_of(uri) for uri in restored}, left)

    expected = [uri for uri in original if uri not in blocked or uri in restored]
    assert apply(plan, left) == expected
    assert all(len(call.uris) <= PLAYLIST_ITEMS_PER_CALL for call in plan.calls)
    assert len(plan.calls) == maximal_runs_split_at_100(expected, restored)


@fast
@given(rollbacks())
def test_knowing_the_enforced_playlist_changes_nothing_when_it_is_unchanged(
    rollback: tuple[Playlist, set[str], set[str]],
) -> None:
    original, blocked, restored = rollback
    left, removed = enforce(original, blocked)
    keys = {key_of(uri) for uri in restored}

    told = plan_playlist_restore(removed, keys, left, left_by_enforcement=left)

    assert told == plan_playlist_restore(removed, keys, left)


@fast
@given(rollbacks(), st.data())
def test_after_the_persons_edits_their_playlist_stays_and_exactly_the_restored_come_back(
    rollback: tuple[Playlist, set[str], set[str]], data: st.DataObject
) -> None:
    original, blocked, restored = rollback
    left, removed = enforce(original, blocked)
    # Some kept items dropped, the rest shuffled, new ones (a blocked song too) added.
    kept_now = data.draw(st.permutations([uri for uri in left if data.draw(st.booleans())]))
    added = data.draw(st.lists(st.sampled_from([*KEPT, *BLOCKABLE]), max_size=5))
    current = list(kept_now)
    for uri in added:
        current.insert(data.draw(st.integers(0, len(current))), uri)

    plan = plan_playlist_restore(
        removed, {key_of(uri) for uri in restored}, current, left_by_enforcement=left
    )
    after = apply(plan, current)

    # Follow each entry through the calls: the person's, untouched and in order, and
    # exactly the restored occurrences.
    tagged: list[tuple[str | None, bool]] = [(uri, False) for uri in current]
    for call in plan.calls:
        tagged[call.position : call.position] = [(uri, True) for uri in call.uris]
    assert [uri for uri, _ in tagged] == after
    assert [uri for uri, restoring in tagged if not restoring] == current
    assert sorted(str(uri) for uri, restoring in tagged if restoring) == sorted(
        o.uri for o in removed if o.uri in restored
    )
    assert all(len(call.uris) <= PLAYLIST_ITEMS_PER_CALL for call in plan.calls)
