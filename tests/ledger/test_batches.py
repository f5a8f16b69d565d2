"""Batches and action items: idempotent creation, history that re-runs cannot rewrite."""

from __future__ import annotations

from datetime import UTC

import pytest

from enforcer.ledger import (
    ActionItemRecord,
    BatchConflict,
    BatchKind,
    BatchStatus,
    InvalidLedgerValue,
    ItemStatus,
    Ledger,
    NotOnList,
    UnknownBatch,
    UnknownPlan,
)
from enforcer.models import Plan
from tests.ledger.builders import ACCOUNT, make_plan


@pytest.fixture
async def plan(ledger: Ledger) -> Plan:
    await ledger.upsert_account(ACCOUNT, "Alice")
    saved = make_plan()
    await ledger.save_plan(saved)
    return saved


async def enforce_batch(ledger: Ledger, plan: Plan, batch_id: str = "enforce/alice/p") -> str:
    await ledger.create_batch(
        batch_id,
        account_id=ACCOUNT,
        plan_id=plan.id,
        kind=BatchKind.ENFORCE,
        options={"atomic": True},
    )
    return batch_id


async def test_creating_a_batch_twice_returns_the_first(ledger: Ledger, plan: Plan) -> None:
    first = await ledger.create_batch(
        "b1", account_id=ACCOUNT, plan_id=plan.id, kind=BatchKind.ENFORCE, options={"chunk": 40}
    )
    again = await ledger.create_batch(
        "b1", account_id=ACCOUNT, plan_id=plan.id, kind=BatchKind.ENFORCE, options={"chunk": 99}
    )
    assert again == first == await ledger.batch("b1")
    assert (first.status, first.options, first.summary) == (
        BatchStatus.PENDING,
        {"chunk": 40},
        None,
    )
    assert first.created_at.tzinfo == UTC
    assert first.started_at is None

    with pytest.raises(BatchConflict, match="batch 'b1' exists already"):
        await ledger.create_batch(
            "b1",
            account_id=ACCOUNT,
            plan_id=plan.id,
            kind=BatchKind.ROLLBACK,
            options={},
            rollback_of="b1",
        )


async def test_a_rollback_batch_names_an_existing_batch(ledger: Ledger, plan: Plan) -> None:
    await enforce_batch(ledger, plan, "b1")
    undo = await ledger.create_batch(
        "rollback/b1",
        account_id=ACCOUNT,
        plan_id=plan.id,
        kind=BatchKind.ROLLBACK,
        options={},
        rollback_of="b1",
    )
    assert (undo.kind, undo.rollback_of) == ("rollback", "b1")
    with pytest.raises(UnknownBatch, match="no batch 'b9'"):
        await ledger.create_batch(
            "rollback/b9",
            account_id=ACCOUNT,
            plan_id=plan.id,
            kind=BatchKind.ROLLBACK,
            options={},
            rollback_of="b9",
        )
    with pytest.raises(InvalidLedgerValue, match="rollback_of"):
        await ledger.create_batch(
            "rollback/b2", account_id=ACCOUNT, plan_id=plan.id, kind=BatchKind.ROLLBACK, options={}
        )
    with pytest.raises(UnknownPlan, match="no plan 'nope'"):
        await ledger.create_batch(
            "b3", account_id=ACCOUNT, plan_id="nope", kind=BatchKind.ENFORCE, options={}
        )
    with pytest.raises(InvalidLedgerValue, match="'undo' is not a batch kind: expected one of"):
        await ledger.create_batch(
            "b4",
            account_id=ACCOUNT,
            plan_id=plan.id,
            kind="undo",  # type: ignore[arg-type]
            options={},
        )
    with pytest.raises(UnknownBatch, match="'b3'"):
        await ledger.batch("b3")
    with pytest.raises(UnknownBatch, match="'b4'"):
        await ledger.batch("b4")


async def test_items_are_created_once_in_plan_order(ledger: Ledger, plan: Plan) -> None:
    batch = await enforce_batch(ledger, plan)
    assert await ledger.create_action_items(batch, plan.actions[:3]) == 3
    assert await ledger.create_action_items(batch, plan.actions) == len(plan.actions) - 3
    assert await ledger.create_action_items(batch, plan.actions) == 0

    items = await ledger.action_items(batch)
    assert tuple(item.planned for item in items) == plan.actions
    assert [item.key for item in items] == [action.key for action in plan.actions]
    assert {(item.status, item.attempts) for item in items} == {(ItemStatus.PENDING, 0)}
    assert [i.key for i in await ledger.action_items(batch, offset=1, limit=2)] == [
        a.key for a in plan.actions[1:3]
    ]


async def test_a_plans_actions_copied_whole_are_the_items_one_by_one_would_be(
    ledger: Ledger, plan: Plan
) -> None:
    by_copy = await enforce_batch(ledger, plan, "enforce/alice/copied")
    one_by_one = await enforce_batch(ledger, plan, "enforce/alice/listed")
    await ledger.create_action_items(one_by_one, plan.actions)

    assert await ledger.add_plan_actions(by_copy, plan.id) == len(plan.actions)
    assert await ledger.add_plan_actions(by_copy, plan.id) == 0

    def fields(item: ActionItemRecord) -> tuple[object, ...]:
        return (item.planned, item.key, item.status, item.attempts, item.after_state, item.error)

    copied = await ledger.action_items(by_copy)
    assert [fields(item) for item in copied] == [
        fields(item) for item in await ledger.action_items(one_by_one)
    ]
    assert [item.key for item in copied] == [action.key for action in plan.actions]
    assert {item.created_at.tzinfo for item in copied} == {UTC}


async def test_copying_a_plan_into_a_cut_batch_or_from_no_plan_changes_nothing(
    ledger: Ledger, plan: Plan
) -> None:
    batch = await enforce_batch(ledger, plan)
    await ledger.create_action_items(batch, plan.actions[:2])
    await ledger.assign_chunks(batch, library_chunk_size=40, playlist_chunk_size=100)

    with pytest.raises(BatchConflict, match="cut into chunks already"):
        await ledger.add_plan_actions(batch, plan.id)
    with pytest.raises(UnknownPlan, match="'no-such-plan'"):
        await ledger.add_plan_actions(batch, "no-such-plan")
    with pytest.raises(UnknownBatch, match="'enforce/nobody/p'"):
        await ledger.add_plan_actions("enforce/nobody/p", plan.id)
    assert [item.key for item in await ledger.action_items(batch)] == [
        action.key for action in plan.actions[:2]
    ]


async def test_marking_items_records_attempts_and_never_undoes_completion(
    ledger: Ledger, plan: Plan
) -> None:
    batch = await enforce_batch(ledger, plan)
    await ledger.create_action_items(batch, plan.actions)
    done, failing = plan.actions[0].key, plan.actions[1].key

    await ledger.mark_items(batch, [done, failing], ItemStatus.IN_PROGRESS)
    await ledger.mark_items(batch, [done], ItemStatus.COMPLETED, after_state={"snapshot_id": "s2"})
    await ledger.mark_items(batch, [failing], ItemStatus.FAILED, error="403 not the owner")
    # A retried activity runs again: the completed item stays completed.
    await ledger.mark_items(batch, [done, failing], ItemStatus.IN_PROGRESS)
    await ledger.mark_items(batch, [done], ItemStatus.PENDING)

    items = {item.key: item for item in await ledger.action_items(batch)}
    assert (items[done].status, items[done].attempts) == (ItemStatus.COMPLETED, 1)
    assert items[done].after_state == {"snapshot_id": "s2"}
    finished_at = items[done].finished_at
    assert finished_at is not None
    assert finished_at.tzinfo == UTC
    assert (items[failing].status, items[failing].attempts) == (ItemStatus.IN_PROGRESS, 2)
    assert items[failing].error == "403 not the owner"

    completed = await ledger.action_items(batch, status=ItemStatus.COMPLETED)
    assert [item.key for item in completed] == [done]
    counts = await ledger.item_counts(batch)
    assert counts[ItemStatus.COMPLETED] == 1
    assert counts[ItemStatus.IN_PROGRESS] == 1
    assert sum(counts.values()) == len(plan.actions)


async def test_only_completed_items_can_be_rolled_back(ledger: Ledger, plan: Plan) -> None:
    batch = await enforce_batch(ledger, plan)
    await ledger.create_action_items(batch, plan.actions)
    done, untouched = plan.actions[0].key, plan.actions[1].key
    await ledger.mark_items(batch, [done], ItemStatus.COMPLETED)

    await ledger.mark_items(batch, [done, untouched], ItemStatus.ROLLED_BACK)
    await ledger.mark_items(batch, [done], ItemStatus.COMPLETED)

    items = {item.key: item.status for item in await ledger.action_items(batch)}
    assert items[done] == ItemStatus.ROLLED_BACK
    assert items[untouched] == ItemStatus.PENDING


async def test_an_unknown_key_marks_nothing(ledger: Ledger, plan: Plan) -> None:
    batch = await enforce_batch(ledger, plan)
    await ledger.create_action_items(batch, plan.actions)
    with pytest.raises(NotOnList, match="'liked_song:-:nope:remove'"):
        await ledger.mark_items(
            batch, [plan.actions[0].key, "liked_song:-:nope:remove"], ItemStatus.COMPLETED
        )
    with pytest.raises(InvalidLedgerValue, match="'done' is not an item status"):
        await ledger.mark_items(batch, [plan.actions[0].key], "done")  # type: ignore[arg-type]
    assert {item.status for item in await ledger.action_items(batch)} == {ItemStatus.PENDING}
    with pytest.raises(UnknownBatch, match="'other'"):
        await ledger.create_action_items("other", plan.actions)


async def test_a_batch_names_the_rollbacks_that_undo_it_oldest_first(
    ledger: Ledger, plan: Plan
) -> None:
    await enforce_batch(ledger, plan, "b1")
    await enforce_batch(ledger, plan, "b2")
    assert await ledger.rollbacks_of("b1") == []
    for rollback_id in ("rollback/b1/chosen", "rollback/b1", "rollback/b1#2"):
        await ledger.create_batch(
            rollback_id,
            account_id=ACCOUNT,
            plan_id=plan.id,
            kind=BatchKind.ROLLBACK,
            options={},
            rollback_of="b1",
        )

    undoing = await ledger.rollbacks_of("b1")

    assert [record.id for record in undoing] == [
        "rollback/b1/chosen",
        "rollback/b1",
        "rollback/b1#2",
    ]
    assert await ledger.rollbacks_of("b2") == []
    with pytest.raises(UnknownBatch, match="'nope'"):
        await ledger.rollbacks_of("nope")


async def test_batch_status_sets_its_times_and_summary(ledger: Ledger, plan: Plan) -> None:
    batch = await enforce_batch(ledger, plan)
    await ledger.set_batch_status(batch, BatchStatus.RUNNING)
    running = await ledger.batch(batch)
    assert running.started_at is not None
    assert running.finished_at is None

    await ledger.set_batch_status(batch, "completed", summary={"removed": 5, "api_calls": 2})
    await ledger.set_batch_status(batch, BatchStatus.RUNNING)  # a late duplicate signal
    await ledger.set_batch_status(batch, BatchStatus.COMPLETED)
    finished = await ledger.batch(batch)
    assert finished.status == BatchStatus.COMPLETED
    assert finished.started_at == running.started_at
    assert finished.summary == {"removed": 5, "api_calls": 2}
    assert finished.finished_at is not None
    assert finished.finished_at >= finished.started_at

    with pytest.raises(InvalidLedgerValue, match="'finished' is not a batch status"):
        await ledger.set_batch_status(batch, "finished")
    with pytest.raises(UnknownBatch, match="'nope'"):
        await ledger.set_batch_status("nope", "running")


async def test_a_batch_whose_workflow_closed_unrecorded_ends_once_with_its_items(
    ledger: Ledger, plan: Plan
) -> None:
    batch = await enforce_batch(ledger, plan)
    await ledger.create_action_items(batch, plan.actions)
    done, in_flight, never_sent = (action.key for action in plan.actions[:3])
    await ledger.set_batch_status(batch, BatchStatus.RUNNING)
    await ledger.mark_items(batch, [done, in_flight], ItemStatus.IN_PROGRESS)
    await ledger.mark_items(batch, [done], ItemStatus.COMPLETED)

    why = "its workflow was terminated"
    assert await ledger.end_unended_batch(batch, BatchStatus.FAILED, why)
    # Asked again (another worker, the starter): it has ended; nothing changes.
    assert not await ledger.end_unended_batch(batch, BatchStatus.CANCELLED, "another reason")

    ended = await ledger.batch(batch)
    assert ended.status == BatchStatus.FAILED
    assert ended.finished_at is not None
    items = {item.key: item for item in await ledger.action_items(batch)}
    assert items[done].status == ItemStatus.COMPLETED
    assert items[in_flight].status == ItemStatus.FAILED
    assert items[in_flight].error == (
        f"{why} while its request may have been sent: check it in Spotify"
    )
    assert items[never_sent].status == ItemStatus.SKIPPED
    assert items[never_sent].error == f"{why} before it got to it"
    assert (await ledger.item_counts(batch))[ItemStatus.PENDING] == 0

    with pytest.raises(InvalidLedgerValue, match="'running' does not end a batch"):
        await ledger.end_unended_batch(batch, BatchStatus.RUNNING, why)
    with pytest.raises(UnknownBatch, match="'nope'"):
        await ledger.end_unended_batch("nope", BatchStatus.FAILED, why)


async def test_items_are_read_by_key_in_the_order_asked(ledger: Ledger, plan: Plan) -> None:
    batch = await enforce_batch(ledger, plan)
    await ledger.create_action_items(batch, plan.actions)
    keys = [action.key for action in reversed(plan.actions)]

    assert [item.key for item in await ledger.action_items_with_keys(batch, keys)] == keys
    with pytest.raises(InvalidLedgerValue, match=r"not items of batch .*: nope$"):
        await ledger.action_items_with_keys(batch, [keys[0], "nope"])


async def test_a_rollback_ended_unrecorded_leaves_the_batch_it_undid_as_its_items_say(
    ledger: Ledger, plan: Plan
) -> None:
    batch = await enforce_batch(ledger, plan)
    await ledger.create_action_items(batch, plan.actions)
    back, still_removed = plan.actions[0].key, plan.actions[1].key
    await ledger.mark_items(batch, [back, still_removed], ItemStatus.COMPLETED)
    await ledger.set_batch_status(batch, BatchStatus.COMPLETED)
    undo = f"rollback/{batch}"
    await ledger.create_batch(
        undo, account_id=ACCOUNT, plan_id=plan.id, kind=BatchKind.ROLLBACK, options={},
        rollback_of=batch,
    )  # fmt: skip
    await ledger.set_batch_status(undo, BatchStatus.RUNNING)
    # The rollback put one item back, then its workflow was terminated.
    await ledger.mark_items(batch, [back], ItemStatus.ROLLED_BACK)

    assert await ledger.end_unended_batch(undo, BatchStatus.FAILED, "its workflow was terminated")

    assert (await ledger.batch(undo)).status == BatchStatus.FAILED
    assert (await ledger.batch(batch)).status == BatchStatus.PARTLY_ROLLED_BACK
