"""Plans: saved once, read back whole and equal, page by page, newest first."""

from __future__ import annotations

from datetime import UTC, timedelta

import pytest

from enforcer.ledger import Ledger, LedgerError, UnknownAccount, UnknownPlan
from enforcer.ledger._plans import ACTION_COLUMNS, NOT_ENFORCED_COLUMNS
from enforcer.models import LikedSongBefore, NotEnforced, PlannedAction, PlaylistItemBefore
from tests.ledger.builders import ACCOUNT, ADDED, liked_song, make_plan


@pytest.fixture
async def account(ledger: Ledger) -> str:
    await ledger.upsert_account(ACCOUNT, "Alice")
    return ACCOUNT


def test_every_field_of_an_action_has_a_column() -> None:
    assert set(ACTION_COLUMNS) == set(PlannedAction.model_fields)
    assert set(NOT_ENFORCED_COLUMNS) == set(NotEnforced.model_fields)


async def test_a_plan_reads_back_equal_to_what_was_saved(ledger: Ledger, account: str) -> None:
    plan = make_plan()
    assert await ledger.save_plan(plan) is True

    loaded = await ledger.load_plan(plan.id)

    assert loaded == plan
    before = loaded.actions[0].before
    assert isinstance(before, LikedSongBefore)
    # Times inside a before state keep their instant and stay aware.
    assert before.added_at == ADDED + timedelta(minutes=1)
    assert before.added_at.utcoffset() is not None
    playlist_before = loaded.actions[1].before
    assert isinstance(playlist_before, PlaylistItemBefore)
    assert [o.position for o in playlist_before.occurrences] == [3, 17]


async def test_saving_the_same_plan_again_changes_nothing(ledger: Ledger, account: str) -> None:
    plan = make_plan()
    await ledger.save_plan(plan)
    record = await ledger.plan_record(plan.id)

    assert await ledger.save_plan(plan) is False
    assert await ledger.plan_record(plan.id) == record
    assert await ledger.load_plan(plan.id) == plan


async def test_the_plan_record_and_the_list_of_plans(ledger: Ledger, account: str) -> None:
    older, newer = make_plan("plan-a"), make_plan("plan-b", actions=(liked_song(9),))
    await ledger.save_plan(older)
    await ledger.save_plan(newer)

    record = await ledger.plan_record("plan-a")
    assert (record.account_id, record.options, record.counts, record.blocklist) == (
        ACCOUNT,
        older.options,
        older.counts,
        older.blocklist,
    )
    assert record.created_at.tzinfo == UTC
    assert [p.id for p in await ledger.plans(ACCOUNT)] == ["plan-b", "plan-a"]


async def test_actions_are_read_page_by_page_in_plan_order(ledger: Ledger, account: str) -> None:
    plan = make_plan(actions=tuple(liked_song(n) for n in range(25)))
    await ledger.save_plan(plan)

    pages = [await ledger.plan_actions(plan.id, offset=o, limit=10) for o in (0, 10, 20)]

    assert [len(page) for page in pages] == [10, 10, 5]
    assert tuple(a for page in pages for a in page) == plan.actions
    assert await ledger.plan_actions(plan.id, offset=25) == []


async def test_unknown_plans_and_accounts_are_named(ledger: Ledger, account: str) -> None:
    for read in (ledger.plan_record, ledger.load_plan, ledger.plan_actions):
        with pytest.raises(UnknownPlan, match="no plan 'nope'"):
            await read("nope")
    with pytest.raises(UnknownAccount, match="'bob'"):
        await ledger.save_plan(make_plan(account_id="bob"))
    assert await ledger.plans(ACCOUNT) == []


async def _stage(ledger: Ledger, scan_id: str, section: str, rows: list[dict[str, object]]) -> None:
    for index, start in enumerate(range(0, len(rows), 3)):
        await ledger.save_scan_page(scan_id, ACCOUNT, section, index, rows[start : start + 3])


async def test_a_staged_plan_is_stored_equal_to_the_plan_whole(
    ledger: Ledger, account: str
) -> None:
    plan = make_plan()
    scan_id = "plan/alice/featured/run"
    await _stage(ledger, scan_id, "plan:actions", [a.model_dump(mode="json") for a in plan.actions])
    await _stage(ledger, scan_id, "plan:ne", [e.model_dump(mode="json") for e in plan.not_enforced])
    header = plan.model_copy(update={"actions": (), "not_enforced": ()})
    staged = {"scan_id": scan_id, "actions_section": "plan:actions"}

    assert await ledger.save_staged_plan(header, **staged, not_enforced_section="plan:ne")
    assert await ledger.load_plan(plan.id) == plan
    # Again (a retried activity): nothing changes.
    assert not await ledger.save_staged_plan(header, **staged, not_enforced_section="plan:ne")
    assert await ledger.load_plan(plan.id) == plan


async def test_a_staged_plan_missing_rows_is_not_stored_at_all(
    ledger: Ledger, account: str
) -> None:
    plan = make_plan()
    scan_id = "plan/alice/featured/run"
    rows = [a.model_dump(mode="json") for a in plan.actions]
    await _stage(ledger, scan_id, "plan:actions", rows[:-1])  # one row short
    await _stage(ledger, scan_id, "plan:ne", [e.model_dump(mode="json") for e in plan.not_enforced])
    header = plan.model_copy(update={"actions": (), "not_enforced": ()})

    with pytest.raises(LedgerError, match="rows staged"):
        await ledger.save_staged_plan(
            header, scan_id=scan_id, actions_section="plan:actions", not_enforced_section="plan:ne"
        )
    with pytest.raises(UnknownPlan):
        await ledger.plan_record(plan.id)
