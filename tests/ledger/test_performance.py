"""Large plans, scans and batches on SQLite take seconds: measured, printed (pytest -s),
bounded."""

from __future__ import annotations

import time
from pathlib import Path

from enforcer.ledger import BatchKind, Ledger
from enforcer.models import EntityType, PlannedAction
from tests.ledger.builders import (
    ACCOUNT,
    liked_song,
    make_plan,
    playlist_item,
    saved_album,
    spotify_id,
)

# Generous bounds for a loaded 2-core CI machine; the figures measured are in
# docs/ledger.md. Minutes would mean a row-by-row insert (or update) crept back in.
PLAN_SAVE_SECONDS = 30
SCAN_SECONDS = 20
ITEMS_SECONDS = 30
CUT_SECONDS = 15
READ_SECONDS = 5


def large_plan_actions() -> tuple[PlannedAction, ...]:
    """100,000 actions: 70,000 liked songs, 10,000 albums, and 20,000 items of 160
    playlists (125 each, so two chunks each), interleaved as a planner writes them."""
    library = [liked_song(n) for n in range(70_000)] + [saved_album(n) for n in range(10_000)]
    playlists = [playlist_item(n, spotify_id(n % 160, "p")) for n in range(100_000, 120_000)]
    mixed: list[PlannedAction] = []
    for start in range(0, 20_000, 1_000):
        mixed += library[start * 4 : (start + 1_000) * 4] + playlists[start : start + 1_000]
    return tuple(mixed)


async def test_a_100000_action_plan_its_batch_and_1000_scan_pages_take_seconds(
    tmp_path: Path,
) -> None:
    async with await Ledger.open(f"sqlite+aiosqlite:///{tmp_path / 'enforcer.db'}") as ledger:
        await ledger.upsert_account(ACCOUNT, "Alice")
        plan = make_plan(actions=large_plan_actions())
        assert len(plan.actions) == 100_000

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

        batch = "enforce/alice/large"
        await ledger.create_batch(
            batch, account_id=ACCOUNT, plan_id=plan.id, kind=BatchKind.ENFORCE, options={}
        )
        started = time.perf_counter()
        for start in range(0, len(plan.actions), 10_000):
            await ledger.create_action_items(batch, plan.actions[start : start + 10_000])
        itemized = time.perf_counter() - started

        started = time.perf_counter()
        layout = await ledger.assign_chunks(batch, library_chunk_size=40, playlist_chunk_size=100)
        cut = time.perf_counter() - started

        started = time.perf_counter()
        again = await ledger.assign_chunks(batch, library_chunk_size=40, playlist_chunk_size=100)
        lanes = await ledger.chunk_lanes(batch, 1_990, 20)
        last = await ledger.chunk_items(batch, layout.chunks - 1)
        tallies = await ledger.tallies(batch)
        reread = time.perf_counter() - started

    print(
        f"\nSQLite: plan of 100,000 actions saved in {saved:.1f} s; 1,000 pages of 50 "
        f"liked songs written in {scanned:.1f} s, read back in {read:.1f} s; 100,000 "
        f"action items created in {itemized:.1f} s, cut into {layout.chunks:,} chunks in "
        f"{cut:.1f} s; cut again, lanes, a chunk's items and the tallies read in {reread:.2f} s"
    )
    assert sum(len(p) for p in pages) == 50_000
    assert (layout.chunks, layout.library_chunks, layout.playlist_chunks) == (2_320, 2_000, 320)
    assert again == layout
    assert lanes.lanes == (-1,) * 10 + (0, 0, 1, 1, 2, 2, 3, 3, 4, 4)
    assert [item.entity_id for item in last] == [
        spotify_id(n) for n in range(100_000 + 159 + 160 * 100, 120_000, 160)
    ]
    assert tallies[EntityType.PLAYLIST_ITEM].done == 0
    assert saved < PLAN_SAVE_SECONDS
    assert scanned < SCAN_SECONDS
    assert itemized < ITEMS_SECONDS
    assert cut < CUT_SECONDS
    assert reread < READ_SECONDS
