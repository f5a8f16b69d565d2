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
