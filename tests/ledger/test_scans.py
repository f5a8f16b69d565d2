"""Scan pages: durable, idempotent per page, read back in page order."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from enforcer.ledger import InvalidLedgerValue, Ledger, LedgerError, UnknownAccount

ITEMS = [{"added_at": "2024-03-01T09:30:15Z", "track": {"id": "t" * 22, "name": "Ünïcode ♫"}}]


@pytest.fixture
async def account(ledger: Ledger) -> str:
    await ledger.upsert_account("alice", "Alice")
    return "alice"


async def test_pages_come_back_in_order_and_a_retried_page_replaces_itself(
    ledger: Ledger, account: str
) -> None:
    for index in (2, 0, 1):
        await ledger.save_scan_page("scan-1", account, "liked", index, [{"page": index}])
    await ledger.save_scan_page("scan-1", account, "liked", 1, [{"page": 1, "retried": True}])
    await ledger.save_scan_page("scan-1", account, "albums", 0, ITEMS)

    assert await ledger.scan_pages("scan-1", "liked") == [
        [{"page": 0}],
        [{"page": 1, "retried": True}],
        [{"page": 2}],
    ]
    assert await ledger.scan_page_count("scan-1", "liked") == 3
    assert await ledger.scan_pages("scan-1", "albums") == [ITEMS]
    assert await ledger.scan_pages("scan-2", "liked") == []


async def test_pages_hold_what_pydantic_dumps_as_json(ledger: Ledger, account: str) -> None:
    when = datetime(2024, 3, 1, 9, 30, tzinfo=UTC)
    await ledger.save_scan_page("scan-1", account, "liked", 0, [{"added_at": when}])
    assert await ledger.scan_pages("scan-1", "liked") == [[{"added_at": "2024-03-01T09:30:00Z"}]]


async def test_a_missing_page_is_an_error_not_a_smaller_library(
    ledger: Ledger, account: str
) -> None:
    await ledger.save_scan_page("scan-1", account, "liked", 0, ITEMS)
    await ledger.save_scan_page("scan-1", account, "liked", 2, ITEMS)
    with pytest.raises(LedgerError, match="scan 'scan-1' has no page 1 of 'liked'"):
        await ledger.scan_pages("scan-1", "liked")


async def test_deleting_a_scan_forgets_only_that_scan(ledger: Ledger, account: str) -> None:
    await ledger.save_scan_page("scan-1", account, "liked", 0, ITEMS)
    await ledger.save_scan_page("scan-2", account, "liked", 0, ITEMS)
    await ledger.delete_scan("scan-1")
    await ledger.delete_scan("scan-1")
    assert await ledger.scan_page_count("scan-1", "liked") == 0
    assert await ledger.scan_pages("scan-2", "liked") == [ITEMS]


async def test_bad_pages_are_refused(ledger: Ledger, account: str) -> None:
    with pytest.raises(InvalidLedgerValue, match="page index -1"):
        await ledger.save_scan_page("scan-1", account, "liked", -1, ITEMS)
    with pytest.raises(InvalidLedgerValue, match="page 0 of 'liked' in scan 'scan-1'"):
        await ledger.save_scan_page("scan-1", account, "liked", 0, [{"x": object()}])
    with pytest.raises(UnknownAccount, match="'bob'"):
        await ledger.save_scan_page("scan-1", "bob", "liked", 0, ITEMS)
    assert await ledger.scan_page_count("scan-1", "liked") == 0


async def test_a_plan_keeps_its_playlists_past_the_scan(ledger: Ledger, account: str) -> None:
    uris: list[str | None] = [f"spotify:track:{n:022d}" for n in range(12_000)]
    uris[3] = None
    await ledger.save_planned_playlist("plan-1", account, "p" * 22, uris)
    await ledger.save_planned_playlist("plan-1", account, "e" * 22, [])
    await ledger.delete_scan("scan-of-plan-1")

    assert await ledger.planned_playlist("plan-1", "p" * 22) == tuple(uris)
    assert await ledger.planned_playlist("plan-1", "e" * 22) == ()
    assert await ledger.planned_playlist("plan-1", "x" * 22) is None
    assert await ledger.planned_playlist("plan-2", "p" * 22) is None


async def test_a_completed_scan_is_kept_as_the_accounts_last_and_forgets_the_one_before(
    ledger: Ledger, account: str
) -> None:
    await ledger.upsert_account("bob", "Bob")
    assert await ledger.last_completed_scan(account) is None
    for scan_id in ("scan-1", "scan-2"):
        await ledger.save_scan_page(scan_id, account, "liked", 0, ITEMS)
        await ledger.save_scan_page(scan_id, account, "plan:actions", 0, [{"staged": 1}])
    await ledger.save_scan_page("scan-bob", "bob", "liked", 0, ITEMS)
    await ledger.complete_scan("scan-bob", "bob")

    await ledger.complete_scan("scan-1", account)
    last = await ledger.last_completed_scan(account)
    assert last is not None
    assert last[0] == "scan-1"
    assert last[1] == await ledger.scan_completed_at("scan-1")
    # The staged plan rows go; the library's pages stay.
    assert await ledger.scan_page_count("scan-1", "plan:actions") == 0
    assert await ledger.scan_pages("scan-1", "liked") == [ITEMS]

    await ledger.complete_scan("scan-2", account)
    assert (await ledger.last_completed_scan(account) or ("",))[0] == "scan-2"
    assert await ledger.scan_page_count("scan-1", "liked") == 0
    assert await ledger.scan_completed_at("scan-1") is None
    # Another account's completed scan is its own.
    assert (await ledger.last_completed_scan("bob") or ("",))[0] == "scan-bob"
    assert await ledger.scan_pages("scan-bob", "liked") == [ITEMS]


async def test_a_section_is_copied_whole_inside_the_ledger_and_a_copy_again_replaces_it(
    ledger: Ledger, account: str
) -> None:
    for index in range(3):
        await ledger.save_scan_page("scan-1", account, "playlist:p", index, [{"page": index}])
    await ledger.save_scan_page("scan-2", account, "playlist:p", 3, [{"stale": True}])
    assert await ledger.copy_scan_section("scan-1", "scan-2", "playlist:p") == 3
    assert await ledger.copy_scan_section("scan-1", "scan-2", "playlist:p") == 3
    assert await ledger.scan_pages("scan-2", "playlist:p") == [[{"page": i}] for i in range(3)]
    assert await ledger.scan_item_count("scan-2", "playlist:p") == 3
    # Nothing to copy: nothing copied, and the caller reads the playlist itself.
    assert await ledger.copy_scan_section("gone", "scan-2", "playlist:p") == 0
    assert await ledger.scan_page_count("scan-2", "playlist:p") == 0


async def test_pages_from_an_index_on_are_forgotten(ledger: Ledger, account: str) -> None:
    for index in range(4):
        await ledger.save_scan_page("scan-1", account, "liked", index, [{"page": index}])
    await ledger.delete_scan_pages("scan-1", "liked", 2)
    assert await ledger.scan_pages("scan-1", "liked") == [[{"page": 0}], [{"page": 1}]]
