"""A plan's ID: the same library, blocklist, protect list and policy give the same ID;
any change to them, or to the library, gives another."""

from __future__ import annotations

import os
import subprocess
import sys

from enforcer.models import BlockedArtist, PlanOptions, Policy, ProtectList
from enforcer.planner import make_plan
from enforcer.sandbox import Sandbox
from tests.planner._library import (
    ACCOUNT,
    ALICE_MIX,
    BLOCKLIST,
    DUO_SONG,
    GOOD_MORNING,
    PROTECT,
    SHINE,
    planner_sandbox,
    read,
    track_uri,
)
from tests.spotify.sandbox_client import sandbox_client
from tests.support.contract import ContractRecorder

OPTIONS = PlanOptions()


async def test_the_same_library_and_inputs_give_the_same_id(
    contract_recorder: ContractRecorder,
) -> None:
    sandbox = planner_sandbox()
    first = make_plan(await read(sandbox, contract_recorder), BLOCKLIST, PROTECT, OPTIONS)
    second = make_plan(await read(sandbox, contract_recorder), BLOCKLIST, PROTECT, OPTIONS)

    reloaded = Sandbox()
    reloaded.load_fixture(sandbox.dump())
    third = make_plan(await read(reloaded, contract_recorder), BLOCKLIST, PROTECT, OPTIONS)

    assert len(first.id) == 16
    assert int(first.id, 16) >= 0
    assert first.id == second.id == third.id
    assert first == second == third


async def test_a_changed_library_gives_another_id(contract_recorder: ContractRecorder) -> None:
    sandbox = planner_sandbox()
    before = make_plan(await read(sandbox, contract_recorder), BLOCKLIST, PROTECT, OPTIONS)

    async with sandbox_client(sandbox, contract_recorder, user_id=ACCOUNT) as client:
        await client.save_to_library([track_uri(DUO_SONG)])
    liked_one_more = make_plan(await read(sandbox, contract_recorder), BLOCKLIST, PROTECT, OPTIONS)

    async with sandbox_client(sandbox, contract_recorder, user_id=ACCOUNT) as client:
        await client.add_playlist_items(ALICE_MIX, [track_uri(GOOD_MORNING)])
    playlist_changed = make_plan(
        await read(sandbox, contract_recorder), BLOCKLIST, PROTECT, OPTIONS
    )

    # Liking a song by no blocked artist changes no action, yet the library is another.
    assert liked_one_more.actions == before.actions
    assert liked_one_more.id != before.id
    # Adding to a playlist gives it a new snapshot, which its planned removals carry.
    assert playlist_changed.actions != liked_one_more.actions
    assert len({before.id, liked_one_more.id, playlist_changed.id}) == 3


async def test_another_policy_blocklist_or_protect_list_gives_another_id(
    contract_recorder: ContractRecorder,
) -> None:
    library = await read(planner_sandbox(), contract_recorder)
    without_nova = BLOCKLIST[:2]
    renamed = (*BLOCKLIST[:2], BlockedArtist(artist_id=BLOCKLIST[2].artist_id, name="NOVA"))

    plans = {
        "featured": make_plan(library, BLOCKLIST, PROTECT, OPTIONS),
        "primary": make_plan(library, BLOCKLIST, PROTECT, PlanOptions(policy=Policy.PRIMARY)),
        "mentions": make_plan(library, BLOCKLIST, PROTECT, PlanOptions(policy=Policy.MENTIONS)),
        "collaborative": make_plan(
            library, BLOCKLIST, PROTECT, PlanOptions(include_collaborative=True)
        ),
        "without Nova": make_plan(library, without_nova, PROTECT, OPTIONS),
        "renamed Nova": make_plan(library, renamed, PROTECT, OPTIONS),
        "nothing protected": make_plan(library, BLOCKLIST, ProtectList(), OPTIONS),
        "Shine protected": make_plan(
            library,
            BLOCKLIST,
            ProtectList(track_ids=PROTECT.track_ids | {SHINE}, playlist_ids=PROTECT.playlist_ids),
            OPTIONS,
        ),
    }

    # Nova matches nothing under "featured", and Shine is not matched there either: the
    # actions are the same, the inputs are not.
    assert plans["without Nova"].actions == plans["featured"].actions
    assert plans["Shine protected"].actions == plans["featured"].actions
    assert len({plan.id for plan in plans.values()}) == len(plans)


_PLAN_IN_ANOTHER_PROCESS = """
from enforcer.models import *
from enforcer.planner import make_plan
from enforcer.spotify.models import SavedTrack, SimplifiedArtist, Track
song = Track(id="t1", name="S", uri="spotify:track:t1",
             artists=[SimplifiedArtist(id="b1", name="B1")])
library = LibrarySnapshot(account_id="me", liked_songs=(
    SavedTrack(added_at="2024-01-01T00:00:00Z", track=song),))
blocklist = [BlockedArtist(artist_id=f"b{i}", name=f"B{i}") for i in range(9)]
protect = ProtectList(track_ids=frozenset(f"x{i}" for i in range(9)),
                      playlist_ids=frozenset(f"p{i}" for i in range(9)))
print(make_plan(library, blocklist, protect, PlanOptions()).id)
"""


def test_the_id_does_not_depend_on_the_process_that_computes_it() -> None:
    # Sets iterate in an order that changes with PYTHONHASHSEED from process to process.
    ids = {
        subprocess.run(  # noqa: S603 - our own interpreter on our own code
            [sys.executable, "-c", _PLAN_IN_ANOTHER_PROCESS],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        for seed in ("1", "2", "3")
    }
    assert len(ids) == 1
    assert len(ids.pop()) == 16
