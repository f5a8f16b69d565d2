"""Batches and their action items: the audit log of what enforcement and rollback did.

Items are keyed by ``PlannedAction.key`` (stable: no time, no randomness), so
creating them again, or marking them again after a retried activity, is harmless.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import Row, func, insert, literal, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from enforcer.ledger._base import StoreBase, account_id_of, chunks, key_of, to_json, upsert_insert
from enforcer.ledger._columns import utc_now
from enforcer.ledger._engine import reading, writing
from enforcer.ledger._errors import (
    BatchConflict,
    InvalidLedgerValue,
    NotOnList,
    UnknownBatch,
    UnknownPlan,
)
from enforcer.ledger._records import ActionItemRecord, BatchRecord
from enforcer.ledger._tables import ACTION_ITEMS, BATCHES, PLANNED_ACTIONS, PLANS
from enforcer.models import (
    TERMINAL_BATCH_STATUSES,
    TERMINAL_ITEM_STATUSES,
    BatchKind,
    BatchStatus,
    EntityType,
    ItemStatus,
    PlannedAction,
    RemovedCounts,
    status_after_rollback,
)

# Transitions that would rewrite history are ignored, which makes a re-run harmless:
# a completed item never becomes pending, in progress, failed or skipped again; only a
# completed item can be rolled back, and a rolled-back one stays so.
_UNCHANGED_WHEN_MARKED: Final[Mapping[ItemStatus, frozenset[ItemStatus]]] = {
    ItemStatus.PENDING: frozenset({ItemStatus.COMPLETED, ItemStatus.ROLLED_BACK}),
    ItemStatus.IN_PROGRESS: frozenset({ItemStatus.COMPLETED, ItemStatus.ROLLED_BACK}),
    ItemStatus.FAILED: frozenset({ItemStatus.COMPLETED, ItemStatus.ROLLED_BACK}),
    ItemStatus.SKIPPED: frozenset({ItemStatus.COMPLETED, ItemStatus.ROLLED_BACK}),
    ItemStatus.COMPLETED: frozenset({ItemStatus.COMPLETED, ItemStatus.ROLLED_BACK}),
    ItemStatus.ROLLED_BACK: frozenset(ItemStatus) - {ItemStatus.COMPLETED},
}

REMOVED_COUNTS_PAGE: Final = 5_000
"""Items ``removed_counts`` reads in one round trip."""

ITEM_COLUMNS: Final = (
    ACTION_ITEMS.c.batch_id,
    ACTION_ITEMS.c.idempotency_key.label("key"),
    ACTION_ITEMS.c.entity_type,
    ACTION_ITEMS.c.entity_id,
    ACTION_ITEMS.c.container_id,
    ACTION_ITEMS.c.action,
    ACTION_ITEMS.c.uri,
    ACTION_ITEMS.c.name,
    ACTION_ITEMS.c.artist_names,
    ACTION_ITEMS.c.reason.label("reasons"),
    ACTION_ITEMS.c.before_state.label("before"),
    ACTION_ITEMS.c.after_state,
    ACTION_ITEMS.c.status,
    ACTION_ITEMS.c.error,
    ACTION_ITEMS.c.attempts,
    ACTION_ITEMS.c.created_at,
    ACTION_ITEMS.c.updated_at,
    ACTION_ITEMS.c.started_at,
    ACTION_ITEMS.c.finished_at,
    ACTION_ITEMS.c.chunk,
    ACTION_ITEMS.c.lane,
)


_ITEM_IDENTITY: Final = (
    ACTION_ITEMS.c.batch_id,
    ACTION_ITEMS.c.entity_type,
    ACTION_ITEMS.c.entity_id,
    ACTION_ITEMS.c.action,
    ACTION_ITEMS.c.idempotency_key,
)
"""The unique constraint an item is known by: an item added twice is added once."""


@dataclass(frozen=True)
class ItemMark:
    """Items of a batch to move to a status (``mark_items``' arguments), for writes that
    move several sets of items in one transaction."""

    batch_id: str
    keys: tuple[str, ...]
    status: ItemStatus
    after_state: Mapping[str, Any] | None = None
    error: str | None = None


def _item_status(value: str) -> ItemStatus:
    try:
        return ItemStatus(value)
    except ValueError:
        raise InvalidLedgerValue(
            f"{value!r} is not an item status: expected one of "
            f"{', '.join(s.value for s in ItemStatus)}"
        ) from None


def _batch_kind(value: str) -> BatchKind:
    try:
        return BatchKind(value)
    except ValueError:
        raise InvalidLedgerValue(
            f"{value!r} is not a batch kind: expected one of "
            f"{', '.join(k.value for k in BatchKind)}"
        ) from None


def _batch_status(value: str) -> BatchStatus:
    try:
        return BatchStatus(value)
    except ValueError:
        raise InvalidLedgerValue(
            f"{value!r} is not a batch status: expected one of "
            f"{', '.join(s.value for s in BatchStatus)}"
        ) from None


def _item_row(batch_id: str, action: PlannedAction, now: Any) -> dict[str, Any]:
    dumped = action.model_dump(mode="json")
    return {
        "batch_id": batch_id,
        "entity_type": dumped["entity_type"],
        "entity_id": dumped["entity_id"],
        "container_id": dumped["container_id"],
        "action": dumped["action"],
        "idempotency_key": action.key,
        "uri": dumped["uri"],
        "name": dumped["name"],
        "artist_names": dumped["artist_names"],
        "reason": dumped["reasons"],
        "before_state": dumped["before"],
        "after_state": None,
        "status": ItemStatus.PENDING.value,
        "error": None,
        "attempts": 0,
        "created_at": now,
        "updated_at": now,
    }


def _batch_record(row: Row[Any]) -> BatchRecord:
    return BatchRecord.model_validate(row._asdict())


class BatchStore(StoreBase):
    async def create_batch(
        self,
        batch_id: str,
        *,
        account_id: str,
        plan_id: str,
        kind: BatchKind,
        options: Mapping[str, Any],
        rollback_of: str | None = None,
    ) -> BatchRecord:
        """A new pending batch; the existing one if ``batch_id`` was created before.

        An existing batch of another account, plan, kind or ``rollback_of`` is a
        ``BatchConflict``: the ID cannot mean two things.
        """
        key_of(batch_id, "batch ID")
        account_id = account_id_of(account_id)
        kind = _batch_kind(kind)
        if (kind is BatchKind.ROLLBACK) != (rollback_of is not None):
            raise InvalidLedgerValue(
                f"batch {batch_id!r}: a rollback batch names the batch it undoes "
                "(rollback_of), and only a rollback batch does"
            )
        stored_options = to_json(dict(options), f"the options of batch {batch_id!r}")
        async with writing(self._engine) as connection:
            await self._check_account(connection, account_id, lock=True)
            existing = await self._batch_row(connection, batch_id)
            if existing is not None:
                found = _batch_record(existing)
                asked = (account_id, plan_id, kind, rollback_of)
                if (found.account_id, found.plan_id, found.kind, found.rollback_of) != asked:
                    raise BatchConflict(
                        f"batch {batch_id!r} exists already for account {found.account_id!r}, "
                        f"plan {found.plan_id!r}, kind {found.kind.value!r}"
                        + (f", undoing {found.rollback_of!r}" if found.rollback_of else "")
                    )
                return found
            if await connection.scalar(select(PLANS.c.id).where(PLANS.c.id == plan_id)) is None:
                raise UnknownPlan(plan_id)
            if rollback_of is not None and await self._batch_row(connection, rollback_of) is None:
                raise UnknownBatch(rollback_of)
            now = utc_now()
            await connection.execute(
                insert(BATCHES).values(
                    id=batch_id,
                    account_id=account_id,
                    plan_id=plan_id,
                    kind=kind.value,
                    rollback_of=rollback_of,
                    status=BatchStatus.PENDING.value,
                    options=stored_options,
                    summary=None,
                    created_at=now,
                    updated_at=now,
                )
            )
            created = await self._batch_row(connection, batch_id)
        assert created is not None
        return _batch_record(created)

    async def batch(self, batch_id: str) -> BatchRecord:
        async with reading(self._engine) as connection:
            row = await self._batch_row(connection, batch_id)
        if row is None:
            raise UnknownBatch(batch_id)
        return _batch_record(row)

    async def rollbacks_of(self, batch_id: str) -> list[BatchRecord]:
        """The rollback batches that undo ``batch_id`` (whole or chosen items, every
        run), oldest first; none for a batch never rolled back."""
        async with reading(self._engine) as connection:
            await self._check_batch(connection, batch_id)
            rows = await connection.execute(
                select(BATCHES)
                .where(BATCHES.c.rollback_of == batch_id)
                .order_by(BATCHES.c.created_at, BATCHES.c.id)
            )
            return [_batch_record(row) for row in rows]

    async def set_batch_status(
        self, batch_id: str, status: str, *, summary: Mapping[str, Any] | None = None
    ) -> None:
        """Move the batch to ``status``; the first move past pending sets ``started_at``,
        a final status sets ``finished_at`` (kept if it was set before)."""
        new_status = _batch_status(status)
        values: dict[str, Any] = {"status": new_status.value, "updated_at": utc_now()}
        if summary is not None:
            values["summary"] = to_json(dict(summary), f"the summary of batch {batch_id!r}")
        async with writing(self._engine) as connection:
            await self._lock_batch(connection, batch_id)
            now = values["updated_at"]
            if new_status is not BatchStatus.PENDING:
                values["started_at"] = func.coalesce(BATCHES.c.started_at, now)
            values["finished_at"] = (
                func.coalesce(BATCHES.c.finished_at, now)
                if new_status in TERMINAL_BATCH_STATUSES
                else None
            )
            await connection.execute(
                update(BATCHES).where(BATCHES.c.id == batch_id).values(**values)
            )

    async def end_unended_batch(self, batch_id: str, status: str, why: str) -> bool:
        """Ends with ``status`` a batch whose workflow closed without recording its end
        (``why``: "its workflow was terminated", say), in one transaction: True if it
        had not ended, False (nothing changes) if it had. Its unfinished items end too:
        those never sent skipped, those whose request was in flight failed, in doubt
        (Spotify may or may not have carried it out), each saying ``why``."""
        new_status = _batch_status(status)
        if new_status not in TERMINAL_BATCH_STATUSES:
            raise InvalidLedgerValue(f"{new_status.value!r} does not end a batch")
        now = utc_now()
        unended = [ended.value for ended in TERMINAL_BATCH_STATUSES]
        async with writing(self._engine) as connection:
            batch = await self._lock_batch(connection, batch_id)
            result = await connection.execute(
                update(BATCHES)
                .where(BATCHES.c.id == batch_id, BATCHES.c.status.not_in(unended))
                .values(
                    status=new_status.value,
                    updated_at=now,
                    started_at=func.coalesce(BATCHES.c.started_at, now),
                    finished_at=now,
                )
            )
            if not result.rowcount:
                return False
            for before, after, what in (
                (ItemStatus.PENDING, ItemStatus.SKIPPED, f"{why} before it got to it"),
                (
                    ItemStatus.IN_PROGRESS,
                    ItemStatus.FAILED,
                    f"{why} while its request may have been sent: check it in Spotify",
                ),
            ):
                await connection.execute(
                    update(ACTION_ITEMS)
                    .where(
                        ACTION_ITEMS.c.batch_id == batch_id,
                        ACTION_ITEMS.c.status == before.value,
                    )
                    .values(status=after.value, error=what, updated_at=now, finished_at=now)
                )
            if batch.kind == BatchKind.ROLLBACK.value and batch.rollback_of is not None:
                await self._settle_undone(connection, batch.rollback_of, now)
        return True

    @staticmethod
    async def _settle_undone(connection: AsyncConnection, batch_id: str, now: datetime) -> None:
        """The batch a rollback undid, as what its items say now (``finish_rollback``'s
        rule): a rollback that ended unrecorded did not set it."""
        undone = status_after_rollback(await _counts_by_status(connection, batch_id))
        if undone is not None:
            await connection.execute(
                update(BATCHES)
                .where(BATCHES.c.id == batch_id)
                .values(status=undone.value, updated_at=now)
            )

    # Action items -------------------------------------------------------------------

    async def create_action_items(self, batch_id: str, actions: Sequence[PlannedAction]) -> int:
        """Add an item per action, pending; returns how many did not exist yet.

        Once the batch is cut into chunks (``assign_chunks``) its items are fixed: a
        new item then is a ``BatchConflict`` (it would belong to no chunk and never
        run), while actions that are items already still add nothing, harmlessly.
        """
        for action in actions:
            if not isinstance(action, PlannedAction):
                raise InvalidLedgerValue(f"{action!r} is not a PlannedAction")
            if action.entity_type is EntityType.PLAYLIST_ITEM and action.container_id is None:
                raise InvalidLedgerValue(
                    f"playlist item {action.key!r} names no playlist (container_id)"
                )
        now = utc_now()
        rows = [_item_row(batch_id, action, now) for action in actions]
        async with writing(self._engine) as connection:
            await self._lock_batch(connection, batch_id)
            before = await self._item_count(connection, batch_id)
            if rows:
                statement = upsert_insert(connection, ACTION_ITEMS).on_conflict_do_nothing(
                    index_elements=_ITEM_IDENTITY
                )
                for chunk in chunks(rows, 10_000):
                    await connection.execute(statement, list(chunk))
            after = await self._item_count(connection, batch_id)
            if after > before and await self._is_cut(connection, batch_id):
                raise BatchConflict(
                    f"batch {batch_id!r} is cut into chunks already: {after - before} new "
                    "items would belong to none; nothing was added"
                )
        return after - before

    async def add_plan_actions(self, batch_id: str, plan_id: str) -> int:
        """``create_action_items`` with every action of the plan, in plan order, in one
        statement: the plan's rows are copied inside the database, never read into the
        process (10,000 actions in about 0.1 s, where reading them as actions and
        writing them back took 0.9 s). Returns how many items did not exist yet."""
        plan = PLANNED_ACTIONS.c
        key = (
            plan.entity_type
            + ":"
            + func.coalesce(plan.container_id, "-")
            + ":"
            + plan.entity_id
            + ":"
            + plan.action
        )
        now = literal(utc_now(), ACTION_ITEMS.c.created_at.type)
        copied = {
            "batch_id": literal(batch_id, ACTION_ITEMS.c.batch_id.type),
            "entity_type": plan.entity_type,
            "entity_id": plan.entity_id,
            "container_id": plan.container_id,
            "action": plan.action,
            "idempotency_key": key,
            "uri": plan.uri,
            "name": plan.name,
            "artist_names": plan.artist_names,
            "reason": plan.reasons,
            "before_state": plan.before,
            "status": literal(ItemStatus.PENDING.value, ACTION_ITEMS.c.status.type),
            "attempts": literal(0),
            "created_at": now,
            "updated_at": now,
        }
        async with writing(self._engine) as connection:
            await self._lock_batch(connection, batch_id)
            if await connection.scalar(select(PLANS.c.id).where(PLANS.c.id == plan_id)) is None:
                raise UnknownPlan(plan_id)
            before = await self._item_count(connection, batch_id)
            source = select(*copied.values()).where(plan.plan_id == plan_id).order_by(plan.seq)
            await connection.execute(
                upsert_insert(connection, ACTION_ITEMS)
                .from_select(list(copied), source)
                .on_conflict_do_nothing(index_elements=_ITEM_IDENTITY)
            )
            after = await self._item_count(connection, batch_id)
            if after > before and await self._is_cut(connection, batch_id):
                raise BatchConflict(
                    f"batch {batch_id!r} is cut into chunks already: {after - before} new "
                    "items would belong to none; nothing was added"
                )
        return after - before

    async def _is_cut(self, connection: AsyncConnection, batch_id: str) -> bool:
        """Whether ``assign_chunks`` has cut the batch (it gives every item a chunk)."""
        found = await connection.scalar(
            select(ACTION_ITEMS.c.id)
            .where(ACTION_ITEMS.c.batch_id == batch_id, ACTION_ITEMS.c.chunk.is_not(None))
            .limit(1)
        )
        return found is not None

    async def _item_count(self, connection: AsyncConnection, batch_id: str) -> int:
        count = await connection.scalar(
            select(func.count()).where(ACTION_ITEMS.c.batch_id == batch_id)
        )
        return int(count or 0)

    async def action_items(
        self,
        batch_id: str,
        *,
        status: ItemStatus | None = None,
        offset: int = 0,
        limit: int | None = None,
    ) -> list[ActionItemRecord]:
        """The batch's items in the order they were created (plan order)."""
        if offset < 0 or (limit is not None and limit < 0):
            raise InvalidLedgerValue(f"offset {offset} and limit {limit} must not be negative")
        query = select(*ITEM_COLUMNS).where(ACTION_ITEMS.c.batch_id == batch_id)
        if status is not None:
            query = query.where(ACTION_ITEMS.c.status == _item_status(status).value)
        async with reading(self._engine) as connection:
            await self._check_batch(connection, batch_id)
            rows = await connection.execute(
                query.order_by(ACTION_ITEMS.c.id).offset(offset).limit(limit)
            )
            return [ActionItemRecord.model_validate(row._asdict()) for row in rows]

    async def action_items_with_keys(
        self, batch_id: str, keys: Sequence[str]
    ) -> list[ActionItemRecord]:
        """The batch's items of ``keys``, in the order of ``keys``; a key the batch does
        not have is ``InvalidLedgerValue`` naming it."""
        found: dict[str, ActionItemRecord] = {}
        async with reading(self._engine) as connection:
            await self._check_batch(connection, batch_id)
            for part in chunks(list(keys)):
                rows = await connection.execute(
                    select(*ITEM_COLUMNS).where(
                        ACTION_ITEMS.c.batch_id == batch_id,
                        ACTION_ITEMS.c.idempotency_key.in_(part),
                    )
                )
                for row in rows:
                    item = ActionItemRecord.model_validate(row._asdict())
                    found[item.key] = item
        missing = [key for key in keys if key not in found]
        if missing:
            raise InvalidLedgerValue(f"not items of batch {batch_id!r}: {', '.join(missing)}")
        return [found[key] for key in keys]

    async def container_items(self, batch_id: str, container_id: str) -> list[ActionItemRecord]:
        """The batch's items in one playlist (``container_id``), in plan order."""
        async with reading(self._engine) as connection:
            await self._check_batch(connection, batch_id)
            rows = await connection.execute(
                select(*ITEM_COLUMNS)
                .where(
                    ACTION_ITEMS.c.batch_id == batch_id,
                    ACTION_ITEMS.c.container_id == container_id,
                )
                .order_by(ACTION_ITEMS.c.id)
            )
            return [ActionItemRecord.model_validate(row._asdict()) for row in rows]

    async def removed_from(self, batch_id: str, container_id: str) -> list[ActionItemRecord]:
        """The items of the playlist ``container_id`` that any enforcement of the batch's
        account (the batch itself included) removed and that are not back: its completed
        items, in the order they were made."""
        mine = BATCHES.alias("mine")
        query = (
            select(*ITEM_COLUMNS)
            .select_from(
                ACTION_ITEMS.join(BATCHES, BATCHES.c.id == ACTION_ITEMS.c.batch_id).join(
                    mine, mine.c.account_id == BATCHES.c.account_id
                )
            )
            .where(
                mine.c.id == batch_id,
                ACTION_ITEMS.c.container_id == container_id,
                ACTION_ITEMS.c.status == ItemStatus.COMPLETED.value,
                BATCHES.c.kind == BatchKind.ENFORCE.value,
            )
            .order_by(ACTION_ITEMS.c.id)
        )
        async with reading(self._engine) as connection:
            await self._check_batch(connection, batch_id)
            rows = await connection.execute(query)
            return [ActionItemRecord.model_validate(row._asdict()) for row in rows]

    async def removed_since(
        self, account_id: str, entity_type: EntityType, since: datetime
    ) -> set[str]:
        """URIs of the account's ``entity_type`` items an enforcement removed at or after
        ``since`` and no rollback has put back."""
        query = (
            select(ACTION_ITEMS.c.uri)
            .select_from(ACTION_ITEMS.join(BATCHES, BATCHES.c.id == ACTION_ITEMS.c.batch_id))
            .where(
                BATCHES.c.account_id == account_id_of(account_id),
                BATCHES.c.kind == BatchKind.ENFORCE.value,
                ACTION_ITEMS.c.entity_type == entity_type.value,
                ACTION_ITEMS.c.status == ItemStatus.COMPLETED.value,
                ACTION_ITEMS.c.finished_at >= since,
            )
        )
        async with reading(self._engine) as connection:
            return {str(uri) for uri in (await connection.scalars(query))}

    async def removed_by_other_batches(self, batch_id: str) -> dict[str, str]:
        """Items of an enforcement batch that another enforcement of the same account
        removed after this batch's plan saw them: item key -> the batch that removed it.

        Such an item is not this batch's to remove (it is gone already), nor to put back
        (a rollback of the other batch does). One removed before the plan was made was
        seen in the library again by the plan: it is this batch's."""
        other = ACTION_ITEMS.alias("other")
        other_batch = BATCHES.alias("other_batch")
        mine = BATCHES.alias("mine")
        query = (
            select(ACTION_ITEMS.c.idempotency_key, other.c.batch_id)
            .select_from(
                ACTION_ITEMS.join(mine, mine.c.id == ACTION_ITEMS.c.batch_id)
                .join(PLANS, PLANS.c.id == mine.c.plan_id)
                .join(
                    other,
                    (other.c.idempotency_key == ACTION_ITEMS.c.idempotency_key)
                    & (other.c.batch_id != ACTION_ITEMS.c.batch_id),
                )
                .join(other_batch, other_batch.c.id == other.c.batch_id)
            )
            .where(
                ACTION_ITEMS.c.batch_id == batch_id,
                other_batch.c.account_id == mine.c.account_id,
                other_batch.c.kind == BatchKind.ENFORCE.value,
                other.c.status == ItemStatus.COMPLETED.value,
                other.c.finished_at >= PLANS.c.created_at,
            )
            .order_by(other.c.finished_at)
        )
        async with reading(self._engine) as connection:
            await self._check_batch(connection, batch_id)
            rows = await connection.execute(query)
            return {str(key): str(remover) for key, remover in rows}

    async def mark_items(
        self,
        batch_id: str,
        keys: Sequence[str],
        status: ItemStatus,
        *,
        after_state: Mapping[str, Any] | None = None,
        error: str | None = None,
    ) -> None:
        """Move the items ``keys`` to ``status``.

        Moving to in progress counts an attempt. Moves that would rewrite history
        leave an item as it is (see ``_UNCHANGED_WHEN_MARKED``), so a re-run is
        harmless. A key the batch does not have is ``NotOnList``: nothing changes.
        """
        _item_status(status)
        if isinstance(keys, str):
            raise InvalidLedgerValue(f"expected a list of item keys, not the text {keys!r}")
        mark = ItemMark(batch_id, tuple(keys), status, after_state=after_state, error=error)
        if not mark.keys:
            return
        async with writing(self._engine) as connection:
            await self._mark(connection, mark)

    async def _mark(
        self,
        connection: AsyncConnection,
        mark: ItemMark,
        now: datetime | None = None,
        *,
        checked: bool = False,
    ) -> Counter[EntityType]:
        """``mark_items`` inside the caller's write transaction, at ``now`` if given;
        returns how many items of each type it moved (those it left as they were, an
        item already completed say, are not counted). ``checked``: the caller holds the
        batch's lock and has made sure every key is the batch's (the keys were read in
        this transaction, or are checked before it ends), so neither is done again."""
        batch_id = mark.batch_id
        new_status = _item_status(mark.status)
        unique = list(dict.fromkeys(mark.keys))
        moved: Counter[EntityType] = Counter()
        if not unique:
            return moved
        now = now or utc_now()
        values: dict[str, Any] = {"status": new_status.value, "updated_at": now}
        if mark.after_state is not None:
            values["after_state"] = to_json(dict(mark.after_state), "after_state")
        if mark.error is not None:
            values["error"] = mark.error
        elif new_status is ItemStatus.COMPLETED:
            values["error"] = None
        if new_status is ItemStatus.IN_PROGRESS:
            values["attempts"] = ACTION_ITEMS.c.attempts + 1
            values["started_at"] = func.coalesce(ACTION_ITEMS.c.started_at, now)
        values["finished_at"] = now if new_status in TERMINAL_ITEM_STATUSES else None
        unchanged = [s.value for s in _UNCHANGED_WHEN_MARKED[new_status]]
        if not checked:
            await self._lock_batch(connection, batch_id)
            await self._check_keys(connection, batch_id, unique)
        for chunk in chunks(unique):
            changed = await connection.scalars(
                update(ACTION_ITEMS)
                .where(
                    ACTION_ITEMS.c.batch_id == batch_id,
                    ACTION_ITEMS.c.idempotency_key.in_(chunk),
                    ACTION_ITEMS.c.status.not_in(unchanged),
                )
                .values(**values)
                .returning(ACTION_ITEMS.c.entity_type)
            )
            moved.update(EntityType(entity_type) for entity_type in changed)
        return moved

    async def _check_keys(
        self, connection: AsyncConnection, batch_id: str, keys: Sequence[str]
    ) -> None:
        """``NotOnList`` naming those of ``keys`` that are no item of the batch."""
        known: set[str] = set()
        for chunk in chunks(keys):
            known.update(
                await connection.scalars(
                    select(ACTION_ITEMS.c.idempotency_key).where(
                        ACTION_ITEMS.c.batch_id == batch_id,
                        ACTION_ITEMS.c.idempotency_key.in_(chunk),
                    )
                )
            )
        missing = [key for key in keys if key not in known]
        if missing:
            raise NotOnList(f"items of batch {batch_id!r}", missing)

    async def set_after_state(
        self, batch_id: str, key: str, after_state: Mapping[str, Any]
    ) -> None:
        """Replace one item's ``after_state`` and nothing else (status, attempts and
        times stay): where an activity keeps its progress between its Spotify calls.
        Writing the same state again is harmless; an unknown key is ``NotOnList``."""
        values = {"after_state": to_json(dict(after_state), "after_state"), "updated_at": utc_now()}
        async with writing(self._engine) as connection:
            await self._lock_batch(connection, batch_id)
            result = await connection.execute(
                update(ACTION_ITEMS)
                .where(ACTION_ITEMS.c.batch_id == batch_id, ACTION_ITEMS.c.idempotency_key == key)
                .values(**values)
            )
            if not result.rowcount:
                raise NotOnList(f"items of batch {batch_id!r}", [key])

    async def removed_counts(self, batch_id: str) -> RemovedCounts:
        """What the batch removed (its items completed, not since rolled back), by kind
        and by the blocked artist each matched, read ``REMOVED_COUNTS_PAGE`` at a time."""
        by_kind: dict[EntityType, int] = {}
        by_artist: dict[str, int] = {}
        after = 0
        async with reading(self._engine) as connection:
            await self._check_batch(connection, batch_id)
            while True:
                rows = (
                    await connection.execute(
                        select(ACTION_ITEMS.c.id, ACTION_ITEMS.c.entity_type, ACTION_ITEMS.c.reason)
                        .where(
                            ACTION_ITEMS.c.batch_id == batch_id,
                            ACTION_ITEMS.c.status == ItemStatus.COMPLETED.value,
                            ACTION_ITEMS.c.id > after,
                        )
                        .order_by(ACTION_ITEMS.c.id)
                        .limit(REMOVED_COUNTS_PAGE)
                    )
                ).all()
                for row in rows:
                    kind = EntityType(row.entity_type)
                    by_kind[kind] = by_kind.get(kind, 0) + 1
                    for artist in {reason["artist_name"] for reason in row.reason or ()}:
                        by_artist[artist] = by_artist.get(artist, 0) + 1
                if len(rows) < REMOVED_COUNTS_PAGE:
                    return RemovedCounts(by_kind=by_kind, by_artist=by_artist)
                after = rows[-1].id

    async def item_counts(self, batch_id: str) -> dict[ItemStatus, int]:
        """How many of the batch's items are in each status (every status named)."""
        async with reading(self._engine) as connection:
            await self._check_batch(connection, batch_id)
            return await _counts_by_status(connection, batch_id)


async def _counts_by_status(connection: AsyncConnection, batch_id: str) -> dict[ItemStatus, int]:
    """How many of the batch's items are in each status (every status named)."""
    rows = await connection.execute(
        select(ACTION_ITEMS.c.status, func.count())
        .where(ACTION_ITEMS.c.batch_id == batch_id)
        .group_by(ACTION_ITEMS.c.status)
    )
    found = {ItemStatus(status): int(count) for status, count in rows}
    return {status: found.get(status, 0) for status in ItemStatus}
