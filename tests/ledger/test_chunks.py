"""A batch cut into chunks once, read back chunk by chunk, and what its items came to."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from enforcer.ledger import (
    BatchConflict,
    BatchKind,
    ChunksNotAssigned,
    InvalidLedgerValue,
    ItemMark,
    ItemStatus,
    Ledger,
    NotOnList,
    UnknownBatch,
)
from enforcer.models import (
    ChunkLanes,
    ChunkLayout,
    EntityType,
    ItemError,
    ItemTally,
    Plan,
    PlannedAction,
    SkipReason,
)
from tests.ledger.builders import (
    ACCOUNT,
    GUEST,
    followed_artist,
    liked_song,
    make_plan,
    playlist_item,
    saved_album,
    spotify_id,
)

BATCH = "enforce/alice/plan"
FIRST_PLAYLIST = spotify_id(2, "p")  # "B" below: its first item comes first in the plan
SECOND_PLAYLIST = spotify_id(1, "p")  # "A"
THIRD_PLAYLIST = spotify_id(3, "p")  # "C"

# Library (L) and playlist items interleaved, as a plan lists them.
ACTIONS: tuple[PlannedAction, ...] = (
    liked_song(1),  # 0  L
    playlist_item(10, FIRST_PLAYLIST),  # 1  B
    saved_album(2),  # 2  L
    playlist_item(10, SECOND_PLAYLIST),  # 3  A: the same track, another playlist
    playlist_item(12, FIRST_PLAYLIST),  # 4  B
    followed_artist(),  # 5  L
    playlist_item(13, FIRST_PLAYLIST),  # 6  B
    liked_song(3),  # 7  L
    playlist_item(14, SECOND_PLAYLIST),  # 8  A
    playlist_item(15, THIRD_PLAYLIST),  # 9  C
    followed_artist(GUEST),  # 10 L
    playlist_item(16, FIRST_PLAYLIST),  # 11 B
    playlist_item(17, FIRST_PLAYLIST),  # 12 B
)
# With 2 library items and 2 playlist items per chunk: the plan positions in each chunk.
EXPECTED_CHUNKS = ([0, 2], [5, 7], [10], [1, 4], [6, 11], [12], [3, 8], [9])
EXPECTED_LANES = (-1, -1, -1, 0, 0, 0, 1, 2)
EXPECTED_LAYOUT = ChunkLayout(
    chunks=8,
    library_chunks=3,
    playlist_chunks=5,
    totals={
        EntityType.LIKED_SONG: 2,
        EntityType.PLAYLIST_ITEM: 8,
        EntityType.SAVED_ALBUM: 1,
        EntityType.FOLLOWED_ARTIST: 2,
    },
)


async def new_batch(
    ledger: Ledger, actions: tuple[PlannedAction, ...] = ACTIONS, batch_id: str = BATCH
) -> Plan:
    await ledger.upsert_account(ACCOUNT, "Alice")
    plan = make_plan(actions=actions)
    await ledger.save_plan(plan)
    await ledger.create_batch(
        batch_id, account_id=ACCOUNT, plan_id=plan.id, kind=BatchKind.ENFORCE, options={}
    )
    await ledger.create_action_items(batch_id, plan.actions)
    return plan


async def chunk_keys(ledger: Ledger, layout: ChunkLayout) -> list[list[str]]:
    return [[item.key for item in await ledger.chunk_items(BATCH, n)] for n in range(layout.chunks)]


async def test_library_items_come_first_then_each_playlist_in_order_of_its_first_item(
    ledger: Ledger,
) -> None:
    await new_batch(ledger)
    layout = await ledger.assign_chunks(BATCH, library_chunk_size=2, playlist_chunk_size=2)

    assert layout == EXPECTED_LAYOUT
    assert await chunk_keys(ledger, layout) == [
        [ACTIONS[position].key for position in chunk] for chunk in EXPECTED_CHUNKS
    ]
    assert await ledger.chunk_lanes(BATCH, 0, layout.chunks) == ChunkLanes(
        first=0, lanes=EXPECTED_LANES
    )
    items = await ledger.chunk_items(BATCH, 6)
    assert [(item.chunk, item.lane, item.container_id) for item in items] == [
        (6, 1, SECOND_PLAYLIST),
        (6, 1, SECOND_PLAYLIST),
    ]
    assert {item.status for item in items} == {ItemStatus.PENDING}


async def test_liked_songs_can_be_cut_apart_first(ledger: Ledger) -> None:
    await new_batch(ledger)
    layout = await ledger.assign_chunks(
        BATCH, library_chunk_size=2, playlist_chunk_size=2, liked_song_chunk_size=5
    )

    # Songs (0, 7) in a chunk of their own, then album and artists two by two.
    assert await chunk_keys(ledger, layout) == [
        [ACTIONS[position].key for position in chunk]
        for chunk in ([0, 7], [2, 5], [10], *EXPECTED_CHUNKS[3:])
    ]
    assert layout == EXPECTED_LAYOUT


async def test_a_batch_is_cut_once_whatever_sizes_come_later(ledger: Ledger) -> None:
    await new_batch(ledger)
    assert await ledger.chunk_layout(BATCH) is None

    first = await ledger.assign_chunks(BATCH, library_chunk_size=2, playlist_chunk_size=2)
    before = await chunk_keys(ledger, first)
    again = await ledger.assign_chunks(BATCH, library_chunk_size=40, playlist_chunk_size=100)

    assert again == first == await ledger.chunk_layout(BATCH) == EXPECTED_LAYOUT
    assert await chunk_keys(ledger, again) == before


async def test_two_cuts_at_once_make_one(ledger: Ledger) -> None:
    await new_batch(ledger)
    small, large = await asyncio.gather(
        ledger.assign_chunks(BATCH, library_chunk_size=1, playlist_chunk_size=1),
        ledger.assign_chunks(BATCH, library_chunk_size=40, playlist_chunk_size=100),
    )
    # Whichever ran first decided: the other found its cut and returned it.
    assert small == large == await ledger.chunk_layout(BATCH)
    keys = [key for chunk in await chunk_keys(ledger, small) for key in chunk]
    assert sorted(keys) == sorted(action.key for action in ACTIONS)


async def test_lanes_are_clipped_at_the_last_chunk(ledger: Ledger) -> None:
    await new_batch(ledger)
    await ledger.assign_chunks(BATCH, library_chunk_size=2, playlist_chunk_size=2)

    assert await ledger.chunk_lanes(BATCH, 2, 3) == ChunkLanes(first=2, lanes=(-1, 0, 0))
    assert await ledger.chunk_lanes(BATCH, 6, 100) == ChunkLanes(first=6, lanes=(1, 2))
    assert await ledger.chunk_lanes(BATCH, 8, 10) == ChunkLanes(first=8, lanes=())
    assert await ledger.chunk_lanes(BATCH, 0, 0) == ChunkLanes(first=0, lanes=())


async def test_a_batch_without_items_has_no_chunks(ledger: Ledger) -> None:
    await new_batch(ledger, actions=())
    empty = ChunkLayout(chunks=0, library_chunks=0, playlist_chunks=0, totals={})

    assert await ledger.assign_chunks(BATCH, library_chunk_size=40, playlist_chunk_size=100) == (
        empty
    )
    assert await ledger.chunk_layout(BATCH) == empty
    assert await ledger.chunk_lanes(BATCH, 0, 10) == ChunkLanes(first=0, lanes=())
    with pytest.raises(InvalidLedgerValue, match="has no chunk 0: its chunks are none"):
        await ledger.chunk_items(BATCH, 0)
    assert await ledger.tallies(BATCH) == {}
    assert await ledger.item_errors(BATCH, limit=10) == ([], 0)


async def test_chunks_are_read_only_once_cut(ledger: Ledger) -> None:
    await new_batch(ledger)
    with pytest.raises(ChunksNotAssigned, match=f"batch '{BATCH}' has not been cut"):
        await ledger.chunk_items(BATCH, 0)
    with pytest.raises(ChunksNotAssigned, match="call assign_chunks first"):
        await ledger.chunk_lanes(BATCH, 0, 4)


async def test_bad_sizes_and_chunk_numbers_are_refused_by_name_changing_nothing(
    ledger: Ledger,
) -> None:
    await new_batch(ledger)
    refused = {
        "library_chunk_size must be a whole number of at least 1, not 0": (0, 100),
        "playlist_chunk_size must be a whole number of at least 1, not -5": (40, -5),
        "library_chunk_size must be a whole number of at least 1, not True": (True, 100),
        "playlist_chunk_size must be a whole number of at least 1, not '100'": (40, "100"),
    }
    for message, (library, playlist) in refused.items():
        with pytest.raises(InvalidLedgerValue, match=message):
            await ledger.assign_chunks(
                BATCH,
                library_chunk_size=library,
                playlist_chunk_size=playlist,  # type: ignore[arg-type]
            )
    assert await ledger.chunk_layout(BATCH) is None

    await ledger.assign_chunks(BATCH, library_chunk_size=2, playlist_chunk_size=2)
    with pytest.raises(
        InvalidLedgerValue, match=f"'{BATCH}' has no chunk 8: its chunks are 0 to 7"
    ):
        await ledger.chunk_items(BATCH, 8)
    with pytest.raises(InvalidLedgerValue, match="chunk must be a whole number of at least 0"):
        await ledger.chunk_items(BATCH, -1)
    with pytest.raises(InvalidLedgerValue, match=r"first must be .* at least 0, not -1"):
        await ledger.chunk_lanes(BATCH, -1, 4)
    with pytest.raises(InvalidLedgerValue, match=r"count must be .* at least 0, not -4"):
        await ledger.chunk_lanes(BATCH, 0, -4)
    with pytest.raises(InvalidLedgerValue, match=r"limit must be .* at least 0, not -1"):
        await ledger.item_errors(BATCH, limit=-1)
    with pytest.raises(InvalidLedgerValue, match="reason for skipping must be non-empty"):
        await ledger.skip_unfinished(BATCH, " ")
    assert await ledger.item_counts(BATCH) == {
        status: len(ACTIONS) if status is ItemStatus.PENDING else 0 for status in ItemStatus
    }


UNKNOWN_BATCH_CALLS: dict[str, Callable[[Ledger], Awaitable[object]]] = {
    "assign_chunks": lambda ledger: ledger.assign_chunks(
        "nope", library_chunk_size=40, playlist_chunk_size=100
    ),
    "chunk_layout": lambda ledger: ledger.chunk_layout("nope"),
    "chunk_lanes": lambda ledger: ledger.chunk_lanes("nope", 0, 4),
    "chunk_items": lambda ledger: ledger.chunk_items("nope", 0),
    "skip_unfinished": lambda ledger: ledger.skip_unfinished("nope", "cancelled"),
    "tallies": lambda ledger: ledger.tallies("nope"),
    "item_errors": lambda ledger: ledger.item_errors("nope", limit=5),
}


@pytest.mark.parametrize("method", UNKNOWN_BATCH_CALLS)
async def test_an_unknown_batch_is_named(ledger: Ledger, method: str) -> None:
    with pytest.raises(UnknownBatch, match="no batch 'nope'"):
        await UNKNOWN_BATCH_CALLS[method](ledger)


async def test_a_cut_batch_takes_no_new_items(ledger: Ledger) -> None:
    plan = await new_batch(ledger)
    await ledger.assign_chunks(BATCH, library_chunk_size=2, playlist_chunk_size=2)

    # A retried activity copies the plan again: nothing new, nothing refused.
    assert await ledger.create_action_items(BATCH, plan.actions) == 0
    with pytest.raises(BatchConflict, match=f"'{BATCH}' is cut into chunks already: 1 new"):
        await ledger.create_action_items(BATCH, (*plan.actions[:2], liked_song(99)))
    assert sum((await ledger.item_counts(BATCH)).values()) == len(ACTIONS)
    assert await ledger.chunk_layout(BATCH) == EXPECTED_LAYOUT


async def test_a_playlist_item_names_its_playlist(ledger: Ledger) -> None:
    await new_batch(ledger, actions=())
    orphan = playlist_item(1).model_copy(update={"container_id": None})
    with pytest.raises(InvalidLedgerValue, match=r"playlist item 'playlist_item:-:.*' names no"):
        await ledger.create_action_items(BATCH, (liked_song(1), orphan))
    assert sum((await ledger.item_counts(BATCH)).values()) == 0


async def test_skipping_the_unfinished_ends_every_item(ledger: Ledger) -> None:
    await new_batch(ledger)
    await ledger.assign_chunks(BATCH, library_chunk_size=2, playlist_chunk_size=2)
    keys = [action.key for action in ACTIONS]
    await ledger.mark_items(BATCH, keys[:2], ItemStatus.COMPLETED)
    await ledger.mark_items(BATCH, keys[2:3], ItemStatus.FAILED, error="400 bad request")
    await ledger.mark_items(BATCH, keys[3:5], ItemStatus.IN_PROGRESS)

    assert await ledger.skip_unfinished(BATCH, "the batch was cancelled") == len(ACTIONS) - 3
    assert await ledger.skip_unfinished(BATCH, "again") == 0

    items = {item.key: item for item in await ledger.action_items(BATCH)}
    assert [items[key].status for key in keys[:3]] == [
        ItemStatus.COMPLETED,
        ItemStatus.COMPLETED,
        ItemStatus.FAILED,
    ]
    assert items[keys[2]].error == "400 bad request"
    skipped = [items[key] for key in keys[3:]]
    assert {(item.status, item.error) for item in skipped} == {
        (ItemStatus.SKIPPED, "the batch was cancelled")
    }
    assert all(item.finished_at is not None for item in skipped)

    # A chunk that was in flight when the batch was cancelled records what it did.
    await ledger.mark_items(BATCH, keys[3:4], ItemStatus.COMPLETED)
    assert (await ledger.chunk_items(BATCH, 6))[0].status is ItemStatus.COMPLETED


async def test_tallies_count_final_statuses_per_entity_type(ledger: Ledger) -> None:
    await new_batch(ledger)
    await ledger.mark_items(BATCH, [ACTIONS[0].key, ACTIONS[7].key], ItemStatus.COMPLETED)
    await ledger.mark_items(BATCH, [ACTIONS[7].key], ItemStatus.ROLLED_BACK)
    await ledger.mark_items(BATCH, [ACTIONS[1].key], ItemStatus.FAILED, error="500")
    await ledger.mark_items(BATCH, [ACTIONS[3].key, ACTIONS[4].key], ItemStatus.SKIPPED)
    await ledger.mark_items(BATCH, [ACTIONS[6].key], ItemStatus.IN_PROGRESS)

    assert await ledger.tallies(BATCH) == {
        EntityType.LIKED_SONG: ItemTally(completed=2),
        EntityType.PLAYLIST_ITEM: ItemTally(failed=1, skipped=2),
        EntityType.SAVED_ALBUM: ItemTally(),
        EntityType.FOLLOWED_ARTIST: ItemTally(),
    }


async def test_item_errors_list_the_first_failed_and_skipped_in_plan_order(
    ledger: Ledger,
) -> None:
    await new_batch(ledger)
    keys = [action.key for action in ACTIONS]
    await ledger.mark_items(BATCH, [keys[9], keys[2]], ItemStatus.IN_PROGRESS)
    await ledger.mark_items(BATCH, [keys[9]], ItemStatus.IN_PROGRESS)
    await ledger.mark_items(BATCH, [keys[9]], ItemStatus.FAILED, error="403 not the owner")
    await ledger.mark_items(BATCH, [keys[2]], ItemStatus.SKIPPED, error="404 album gone")
    await ledger.mark_items(BATCH, [keys[5]], ItemStatus.SKIPPED)
    await ledger.mark_items(BATCH, [keys[0]], ItemStatus.COMPLETED)

    everything = [
        ItemError(key=keys[2], name=ACTIONS[2].name, error="404 album gone", attempts=1),
        ItemError(key=keys[5], name=ACTIONS[5].name, error="no reason recorded", attempts=0),
        ItemError(key=keys[9], name=ACTIONS[9].name, error="403 not the owner", attempts=2),
    ]
    assert await ledger.item_errors(BATCH, limit=10) == (everything, 3)
    assert await ledger.item_errors(BATCH, limit=2) == (everything[:2], 3)
    assert await ledger.item_errors(BATCH, limit=0) == ([], 3)
    # A skipped item is not an error: the failed alone, or the skipped alone.
    failed = await ledger.item_errors(BATCH, limit=10, status=ItemStatus.FAILED)
    assert failed == ([everything[2]], 1)
    skipped = await ledger.item_errors(BATCH, limit=10, status=ItemStatus.SKIPPED)
    assert skipped == (everything[:2], 2)
    with pytest.raises(InvalidLedgerValue, match="items in 'completed' have no error"):
        await ledger.item_errors(BATCH, limit=10, status=ItemStatus.COMPLETED)


async def test_skip_reasons_count_the_skipped_items_by_reason_most_first(
    ledger: Ledger,
) -> None:
    await new_batch(ledger)
    keys = [action.key for action in ACTIONS]
    await ledger.mark_items(BATCH, keys[:1], ItemStatus.COMPLETED)
    await ledger.mark_items(BATCH, keys[1:2], ItemStatus.FAILED, error="400 bad request")
    await ledger.mark_items(BATCH, keys[2:3], ItemStatus.SKIPPED, error="404 album gone")
    await ledger.mark_items(BATCH, keys[3:4], ItemStatus.SKIPPED)
    await ledger.skip_unfinished(BATCH, "the batch was cancelled")

    cancelled = SkipReason(reason="the batch was cancelled", items=len(ACTIONS) - 4)
    gone = SkipReason(reason="404 album gone", items=1)
    unknown = SkipReason(reason="no reason recorded", items=1)
    assert await ledger.skip_reasons(BATCH, limit=10) == ([cancelled, gone, unknown], 3)
    assert await ledger.skip_reasons(BATCH, limit=1) == ([cancelled], 3)
    with pytest.raises(UnknownBatch, match="no batch 'nope'"):
        await ledger.skip_reasons("nope", limit=1)


async def test_an_items_after_state_is_replaced_alone(ledger: Ledger) -> None:
    await new_batch(ledger)
    key = ACTIONS[0].key
    await ledger.mark_items(BATCH, [key], ItemStatus.IN_PROGRESS)
    await ledger.set_after_state(BATCH, key, {"restore": {"calls_done": 2}})
    await ledger.set_after_state(BATCH, key, {"restore": {"calls_done": 3}})

    item = (await ledger.action_items(BATCH))[0]
    assert (item.key, item.status, item.attempts) == (key, ItemStatus.IN_PROGRESS, 1)
    assert item.after_state == {"restore": {"calls_done": 3}}
    with pytest.raises(NotOnList):
        await ledger.set_after_state(BATCH, "no:such:key", {})


async def test_items_skipped_before_the_cut_ride_along_without_taking_a_place(
    ledger: Ledger,
) -> None:
    await new_batch(ledger)
    # What prepare_enforcement_batch does to items another batch removed meanwhile.
    skipped = [ACTIONS[2].key, ACTIONS[4].key]
    await ledger.mark_items(BATCH, skipped, ItemStatus.SKIPPED, error="removed elsewhere")
    layout = await ledger.assign_chunks(BATCH, library_chunk_size=2, playlist_chunk_size=2)

    assert await chunk_keys(ledger, layout) == [
        [ACTIONS[position].key for position in chunk]
        for chunk in ([0, 2, 5], [7, 10], [1, 4, 6], [11, 12], [3, 8], [9])
    ]
    assert (layout.chunks, layout.library_chunks, layout.playlist_chunks) == (6, 2, 4)


async def test_claiming_a_chunk_counts_an_attempt_on_what_is_left_of_it(ledger: Ledger) -> None:
    await new_batch(ledger)
    await ledger.assign_chunks(BATCH, library_chunk_size=2, playlist_chunk_size=2)
    done, left = (ACTIONS[position].key for position in EXPECTED_CHUNKS[3])
    await ledger.mark_items(BATCH, [done], ItemStatus.COMPLETED)

    claimed = await ledger.claim_chunk(BATCH, 3)

    # What it returns is what the ledger now holds, without a second read.
    assert claimed == await ledger.chunk_items(BATCH, 3)
    by_key = {item.key: item for item in claimed}
    assert (by_key[done].status, by_key[done].attempts) == (ItemStatus.COMPLETED, 0)
    assert (by_key[left].status, by_key[left].attempts) == (ItemStatus.IN_PROGRESS, 1)
    again = {item.key: item for item in await ledger.claim_chunk(BATCH, 3)}
    assert again[left].attempts == 2
    assert again[left].started_at == by_key[left].started_at


async def test_a_chunks_end_marks_counts_and_reads_in_one_transaction(ledger: Ledger) -> None:
    await new_batch(ledger)
    await ledger.assign_chunks(BATCH, library_chunk_size=2, playlist_chunk_size=2)
    first, second = (ACTIONS[position].key for position in EXPECTED_CHUNKS[0])
    await ledger.count_calls(BATCH, {("DELETE /me/library", "sent"): 1})
    await ledger.claim_chunk(BATCH, 0)

    end = await ledger.finish_chunk(
        BATCH,
        0,
        [
            ItemMark(BATCH, (first,), ItemStatus.COMPLETED, after_state={"present": False}),
            ItemMark(BATCH, (second,), ItemStatus.SKIPPED, error="403: not yours"),
        ],
        calls={("DELETE /me/library", "200"): 1},
    )

    assert end.tallies == {
        EntityType.LIKED_SONG: ItemTally(completed=1),
        EntityType.SAVED_ALBUM: ItemTally(skipped=1),
    }
    assert end.traffic == await ledger.traffic(BATCH)
    assert end.traffic.calls == {"DELETE /me/library": {"200": 1, "sent": 1}}
    items = {item.key: item for item in await ledger.chunk_items(BATCH, 0)}
    assert items[first].after_state == {"present": False}
    assert items[second].error == "403: not yours"


async def test_a_chunks_end_claims_the_next_chunk_in_the_same_transaction(
    ledger: Ledger,
) -> None:
    await new_batch(ledger)
    await ledger.assign_chunks(BATCH, library_chunk_size=2, playlist_chunk_size=2)
    first = ACTIONS[EXPECTED_CHUNKS[0][0]].key
    await ledger.claim_chunk(BATCH, 0)

    end = await ledger.finish_chunk(
        BATCH, 0, [ItemMark(BATCH, (first,), ItemStatus.COMPLETED)], claim=1
    )

    assert end.claimed == await ledger.chunk_items(BATCH, 1)
    assert {(item.status, item.attempts) for item in end.claimed} == {(ItemStatus.IN_PROGRESS, 1)}
    assert end.tallies[EntityType.LIKED_SONG] == ItemTally(completed=1)
    assert (await ledger.finish_chunk(BATCH, 1)).claimed is None

    with pytest.raises(InvalidLedgerValue, match="has no chunk 99"):
        await ledger.finish_chunk(
            BATCH, 2, [ItemMark(BATCH, (ACTIONS[10].key,), ItemStatus.COMPLETED)], claim=99
        )
    assert {item.status for item in await ledger.chunk_items(BATCH, 2)} == {ItemStatus.PENDING}


async def test_a_chunks_end_may_mark_another_batchs_items_checked_as_theirs(
    ledger: Ledger,
) -> None:
    plan = await new_batch(ledger)
    other = "enforce/alice/other"
    await new_batch(ledger, batch_id=other)
    await ledger.assign_chunks(BATCH, library_chunk_size=2, playlist_chunk_size=2)
    first = ACTIONS[EXPECTED_CHUNKS[0][0]].key
    mine, theirs = (
        ItemMark(BATCH, (first,), ItemStatus.COMPLETED),
        ItemMark(other, (plan.actions[5].key,), ItemStatus.SKIPPED, error="undone"),
    )

    await ledger.finish_chunk(BATCH, 0, [mine, theirs])

    assert {i.key: i.status for i in await ledger.action_items(other)}[plan.actions[5].key] is (
        ItemStatus.SKIPPED
    )
    with pytest.raises(NotOnList, match="no-such-item"):
        await ledger.finish_chunk(
            BATCH, 1, [ItemMark(other, ("no-such-item",), ItemStatus.COMPLETED)]
        )
    # A key of this batch but of another chunk is checked as the batch's: it is.
    await ledger.finish_chunk(BATCH, 1, [ItemMark(BATCH, (ACTIONS[10].key,), ItemStatus.FAILED)])
    assert {i.key: i.status for i in await ledger.action_items(BATCH)}[ACTIONS[10].key] is (
        ItemStatus.FAILED
    )


async def test_a_chunks_end_counts_only_the_items_it_completed(ledger: Ledger) -> None:
    await new_batch(ledger)
    await ledger.assign_chunks(BATCH, library_chunk_size=2, playlist_chunk_size=2)
    first, second = (ACTIONS[position].key for position in EXPECTED_CHUNKS[0])
    both = ItemMark(BATCH, (first, second), ItemStatus.COMPLETED)

    once = await ledger.finish_chunk(BATCH, 0, [both])
    # An attempt run again, or a mark of another status, completes nothing more.
    again = await ledger.finish_chunk(
        BATCH, 0, [both, ItemMark(BATCH, (first,), ItemStatus.FAILED, error="late")]
    )

    assert once.newly_completed == {EntityType.LIKED_SONG: 1, EntityType.SAVED_ALBUM: 1}
    assert again.newly_completed == {}
    assert again.tallies == once.tallies


async def test_a_chunks_end_with_a_bad_mark_writes_nothing(ledger: Ledger) -> None:
    await new_batch(ledger)
    await ledger.assign_chunks(BATCH, library_chunk_size=2, playlist_chunk_size=2)
    first = ACTIONS[0].key

    with pytest.raises(NotOnList):
        await ledger.finish_chunk(
            BATCH,
            0,
            [
                ItemMark(BATCH, (first,), ItemStatus.COMPLETED),
                ItemMark(BATCH, ("no-such-item",), ItemStatus.COMPLETED),
            ],
            calls={("DELETE /me/library", "200"): 1},
        )

    assert {item.status for item in await ledger.chunk_items(BATCH, 0)} == {ItemStatus.PENDING}
    assert (await ledger.traffic(BATCH)).calls == {}
