"""The app-wide rate-limit gate: shared by every ledger on the database, only extended."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from enforcer.ledger import Gate, InvalidLedgerValue, Ledger

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


async def test_an_unknown_app_has_an_open_gate(ledger: Ledger) -> None:
    gate = await ledger.gate("client-1")
    assert gate == Gate(blocked_until=None, reason=None)
    assert gate.wait(NOW) == timedelta(0)


async def test_the_gate_only_ever_extends(ledger: Ledger) -> None:
    long = await ledger.close_gate("client-1", NOW + timedelta(hours=3), "daily quota")
    short = await ledger.close_gate("client-1", NOW + timedelta(seconds=30), "Retry-After: 30")

    assert long == short == Gate(blocked_until=NOW + timedelta(hours=3), reason="daily quota")
    assert short.wait(NOW) == timedelta(hours=3)
    later = await ledger.close_gate("client-1", NOW + timedelta(hours=4), "429 again")
    assert later == Gate(blocked_until=NOW + timedelta(hours=4), reason="429 again")
    assert await ledger.gate("client-2") == Gate()


async def test_two_ledgers_on_one_database_share_the_gate(
    ledger: Ledger, ledger_database_url: str
) -> None:
    other = await Ledger.open(ledger_database_url)
    try:
        await ledger.close_gate("client-1", NOW + timedelta(minutes=1), "first worker")
        assert (await other.gate("client-1")).reason == "first worker"

        # Both processes hit 429s at once: the latest time wins, whatever the order.
        waits = [timedelta(seconds=s) for s in (5, 90, 30, 61, 2, 89, 7, 45)]
        await asyncio.gather(
            *(
                (ledger if i % 2 else other).close_gate("client-1", NOW + wait, f"wait {wait}")
                for i, wait in enumerate(waits)
            )
        )
        expected = Gate(blocked_until=NOW + timedelta(seconds=90), reason="wait 0:01:30")
        assert await ledger.gate("client-1") == expected == await other.gate("client-1")
    finally:
        await other.close()


async def test_a_time_without_zone_is_refused(ledger: Ledger) -> None:
    with pytest.raises(InvalidLedgerValue, match="until='2026-05-01T12:00:00' has no time zone"):
        await ledger.close_gate("client-1", NOW.replace(tzinfo=None), "429")
    assert await ledger.gate("client-1") == Gate()
