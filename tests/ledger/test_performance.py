"""Large plans and scans on SQLite take seconds: measured, printed (pytest -s), bounded."""

from __future__ import annotations

import time
from pathlib import Path

from enforcer.ledger import Ledger
from tests.ledger.builders import ACCOUNT, liked_song, make_plan

# Generous bounds for a loaded 2-core CI machine; the figures measured are in
# docs/ledger.md. Minutes would mean a row-by-row insert crept back in.
PLAN_SAVE_SECONDS = 30
SCAN_SECONDS = 20


async def test_a_100000_action_plan_and_1000_scan_pages_take_seconds(tmp_path: Path) -> None:
    async with await Ledger.open(f"sqlite+aiosqlite:///{tmp_path / 'enforcer.db'}") as ledger:
        await ledger.upsert_account(ACCOUNT, "Alice")
        plan = make_plan(actions=tuple(liked_song(n) for n in range(100_000)))

        started = time.perf_counter()
        assert await ledger.save_plan(plan)
        saved = time.perf_counter() - started

        page = [
            {
                "added_at": "2024-03-01T09:30:15Z",
                "track": {
                    "id": f"t{n:021d}",
                    "name": f"Song number {n}",
                    "uri": f"spotify:track:t{n:021d}",
                    "artists": [{"id": "0TnOYISbd1XYRBk9myaseg", "name": "Blocked Artist"}],
                    "album": {"id": "a" * 22, "name": "An album", "release_date": "2020"},
                    "duration_ms": 201_000,
                    "is_local": False,
                },
            }
            for n in range(50)
        ]
        started = time.perf_counter()
        for index in range(1000):
            await ledger.save_scan_page("scan-1", ACCOUNT, "liked", index, page)
        scanned = time.perf_counter() - started

        started = time.perf_counter()
        pages = await ledger.scan_pages("scan-1", "liked")
        read = time.perf_counter() - started

    print(
        f"\nSQLite: plan of 100,000 actions saved in {saved:.1f} s; 1,000 pages of 50 "
        f"liked songs written in {scanned:.1f} s, read back in {read:.1f} s"
    )
    assert sum(len(p) for p in pages) == 50_000
    assert saved < PLAN_SAVE_SECONDS
    assert scanned < SCAN_SECONDS
