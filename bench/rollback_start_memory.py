"""What choosing a rollback's items costs in memory: the order kept, not the items.

    .venv/bin/python bench/rollback_start_memory.py [--items 100000]

Stores a plan of ``--items`` actions (half liked songs, half playlist entries over 50
playlists) and an enforcement batch of them, every item completed, in a SQLite ledger
in a temporary directory; then, under ``tracemalloc``, reads the batch's items the way
``start_rollback`` did before (every record kept, a page at a time) and the way it
chooses them now (``activities.rollback.completed_chosen``: a page at a time, only the
key, playlist, chunk and date each item's place needs). Prints each one's peak of
Python allocations and its time, and checks that both choose every item.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

ROOT: Final = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

from activities.rollback import ITEMS_PER_READ, completed_chosen  # noqa: E402
from enforcer.ledger import BatchKind, ItemStatus, Ledger  # noqa: E402
from enforcer.models import (  # noqa: E402
    BlockedArtist,
    EntityType,
    LikedSongBefore,
    MatchRule,
    Occurrence,
    Plan,
    PlanCounts,
    PlannedAction,
    PlanOptions,
    PlaylistItemBefore,
    Reason,
)

ACCOUNT: Final = "bench"
BLOCKED: Final = BlockedArtist(artist_id="0TnOYISbd1XYRBk9myaseg", name="Blocked Artist")
REASONS: Final = (
    Reason(artist_id=BLOCKED.artist_id, artist_name=BLOCKED.name, rule=MatchRule.PRIMARY_ARTIST),
)
SAVED: Final = datetime(2024, 3, 1, tzinfo=UTC)


def _action(number: int, half: int) -> PlannedAction:
    track = f"t{number:021d}"
    if number < half:
        return PlannedAction(
            entity_type=EntityType.LIKED_SONG,
            entity_id=track,
            uri=f"spotify:track:{track}",
            name=f"Song {number}",
            artist_names=(BLOCKED.name,),
            reasons=REASONS,
            before=LikedSongBefore(added_at=SAVED + timedelta(minutes=number)),
        )
    playlist = f"p{number % 50:021d}"
    return PlannedAction(
        entity_type=EntityType.PLAYLIST_ITEM,
        entity_id=track,
        container_id=playlist,
        uri=f"spotify:track:{track}",
        name=f"Song {number}",
        artist_names=(BLOCKED.name,),
        reasons=REASONS,
        before=PlaylistItemBefore(
            playlist_id=playlist,
            playlist_name="Mix",
            snapshot_id="snapshot",
            occurrences=(Occurrence(position=number // 50, added_at=SAVED, added_by=ACCOUNT),),
        ),
    )


async def _completed_batch(ledger: Ledger, items: int) -> str:
    actions = tuple(_action(number, items // 2) for number in range(items))
    counts: dict[EntityType, int] = {}
    for action in actions:
        counts[action.entity_type] = counts.get(action.entity_type, 0) + 1
    plan = Plan(
        id="plan-" + "0" * 59,
        account_id=ACCOUNT,
        options=PlanOptions(),
        blocklist=(BLOCKED,),
        actions=actions,
        not_enforced=(),
        counts=PlanCounts(
            scanned=counts, actions=counts, not_enforced={}, playlists_read=50, playlists_touched=50
        ),
    )
    await ledger.upsert_account(ACCOUNT, "Bench")
    await ledger.save_plan(plan)
    batch = "enforce/bench/plan"
    await ledger.create_batch(
        batch, account_id=ACCOUNT, plan_id=plan.id, kind=BatchKind.ENFORCE, options={}
    )
    for first in range(0, items, ITEMS_PER_READ):
        part = actions[first : first + ITEMS_PER_READ]
        await ledger.create_action_items(batch, part)
        await ledger.mark_items(batch, [action.key for action in part], ItemStatus.COMPLETED)
    return batch


async def measure(items: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as directory:
        ledger = await Ledger.open(f"sqlite+aiosqlite:///{Path(directory) / 'ledger.db'}")
        try:
            batch = await _completed_batch(ledger, items)
            tracemalloc.start()
            started = time.perf_counter()
            kept = []
            offset = 0
            while page := await ledger.action_items(batch, offset=offset, limit=ITEMS_PER_READ):
                kept.extend(page)
                offset += len(page)
            every_record = tracemalloc.get_traced_memory()[1], time.perf_counter() - started
            chosen_before = len(kept)
            del kept, page
            tracemalloc.reset_peak()
            started = time.perf_counter()
            order, _ = await completed_chosen(ledger, batch, None)
            order_only = tracemalloc.get_traced_memory()[1], time.perf_counter() - started
            tracemalloc.stop()
        finally:
            await ledger.close()
    if chosen_before != items or len(order) != items:
        raise RuntimeError(f"{items} items, but {chosen_before} and {len(order)} chosen")
    return {
        "items": items,
        "every_record_mib": every_record[0] / 2**20,
        "every_record_s": every_record[1],
        "order_only_mib": order_only[0] / 2**20,
        "order_only_s": order_only[1],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    figures = asyncio.run(measure(parser.parse_args().items))
    print(
        f"{figures['items']:,} completed items, peak of Python allocations while choosing:\n"
        f"  every record kept (before): {figures['every_record_mib']:.0f} MiB, "
        f"{figures['every_record_s']:.1f} s\n"
        f"  the order only (now):       {figures['order_only_mib']:.0f} MiB, "
        f"{figures['order_only_s']:.1f} s"
    )


if __name__ == "__main__":
    main()
