"""The planner a section at a time: fed in slices, it gives ``make_plan``'s plan, item for
item, with the same counts, fingerprint and ID."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import pytest

from enforcer.models import LibrarySnapshot, PlanOptions, Policy
from enforcer.planner import (
    FINGERPRINT_SECTIONS,
    LibraryFingerprint,
    PlanDigest,
    SectionPlanner,
    make_plan,
)
from tests.planner._library import BLOCKLIST, PROTECT, planner_sandbox, read
from tests.support.contract import ContractRecorder

T = TypeVar("T")


def _slices(entries: Sequence[T], size: int) -> list[Sequence[T]]:
    return [entries[start : start + size] for start in range(0, len(entries), size)] or [()]


def _fingerprint(library: LibrarySnapshot, size: int) -> str:
    fingerprint = LibraryFingerprint(library.account_id)
    for section in FINGERPRINT_SECTIONS:
        entries = getattr(library, section)
        fingerprint.section(section, len(entries))
        for entry in entries:
            if section != "playlists":
                fingerprint.entry(entry)
                continue
            fingerprint.begin_playlist(entry.playlist, read=entry.items is not None)
            for items in _slices(entry.items, size) if entry.items is not None else ():
                fingerprint.playlist_items(items)
            fingerprint.end_playlist()
    return fingerprint.hexdigest()


@pytest.mark.parametrize("size", [1, 2, 1_000])
@pytest.mark.parametrize(
    "options",
    [
        PlanOptions(),
        PlanOptions(policy=Policy.PRIMARY),
        PlanOptions(policy=Policy.MENTIONS, include_collaborative=True),
    ],
)
async def test_slices_of_any_size_give_make_plans_plan(
    contract_recorder: ContractRecorder, options: PlanOptions, size: int
) -> None:
    library = await read(planner_sandbox(), contract_recorder, options)
    whole = make_plan(library, BLOCKLIST, PROTECT, options)

    planner = SectionPlanner(library.account_id, BLOCKLIST, PROTECT, options)
    sections = [
        *(planner.liked_songs(songs) for songs in _slices(library.liked_songs, size)),
        *(planner.playlist(scanned) for scanned in library.playlists),
        *(planner.saved_albums(albums) for albums in _slices(library.saved_albums, size)),
        *(planner.followed_artists(a) for a in _slices(library.followed_artists, size)),
    ]
    digest = PlanDigest(
        library.account_id, planner.blocklist, PROTECT, options, _fingerprint(library, size)
    )
    for section in sections:
        digest.add_actions(section.actions)
    for section in sections:
        digest.add_not_enforced(section.not_enforced)

    # The fixture exercises both.
    assert whole.actions
    assert whole.not_enforced
    assert tuple(a for s in sections for a in s.actions) == whole.actions
    assert tuple(e for s in sections for e in s.not_enforced) == whole.not_enforced
    assert planner.counts() == whole.counts
    assert digest.plan_id() == whole.id


async def test_sections_fed_out_of_plan_order_are_refused(
    contract_recorder: ContractRecorder,
) -> None:
    library = await read(planner_sandbox(), contract_recorder)
    planner = SectionPlanner(library.account_id, BLOCKLIST, PROTECT, PlanOptions())
    planner.playlist(library.playlists[0])
    with pytest.raises(ValueError, match="the plan's order is fixed"):
        planner.liked_songs(library.liked_songs)

    digest = PlanDigest(library.account_id, planner.blocklist, PROTECT, PlanOptions(), "0")
    digest.add_not_enforced(())
    with pytest.raises(ValueError, match="actions come before"):
        digest.add_actions(())
