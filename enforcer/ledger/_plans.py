"""Plans: a header row, and one row per planned action and per thing left alone.

The action and not-enforced rows carry the models' fields under the same names,
so a field added to ``PlannedAction`` or ``NotEnforced`` without a column (and a
migration) fails on the first save instead of being dropped silently.

A plan too large to hold is written as it is made: its actions and not-enforced
entries are staged as pages of its scan (``save_scan_page``), then copied into the plan,
a few pages at a time, in the one transaction that creates the plan
(``save_staged_plan``): a plan is stored whole or not at all.
"""

from __future__ import annotations

from typing import Any, Final

from sqlalchemy import Row, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from enforcer.ledger._base import StoreBase, key_of
from enforcer.ledger._columns import utc_now
from enforcer.ledger._engine import reading, writing
from enforcer.ledger._errors import InvalidLedgerValue, LedgerError, UnknownPlan
from enforcer.ledger._records import PlanRecord
from enforcer.ledger._scans import pages_of
from enforcer.ledger._tables import NOT_ENFORCED, PLANNED_ACTIONS, PLANS
from enforcer.models import NotEnforced, Plan, PlannedAction

_ROW_KEYS: Final = ("plan_id", "seq")
ACTION_COLUMNS: Final = tuple(c.name for c in PLANNED_ACTIONS.c if c.name not in _ROW_KEYS)
NOT_ENFORCED_COLUMNS: Final = tuple(c.name for c in NOT_ENFORCED.c if c.name not in _ROW_KEYS)
_INSERT_CHUNK: Final = 10_000
"""Rows per executemany: bounds the memory of one round of a 100,000-action plan."""
_STAGED_INSERT_ROWS: Final = 500
"""Rows per executemany when a staged plan is copied: its memory stays a few MB."""


def _plan_record(row: Row[Any]) -> PlanRecord:
    return PlanRecord.model_validate(row._asdict())


def _action(row: Row[Any]) -> PlannedAction:
    values = row._mapping
    return PlannedAction.model_validate({name: values[name] for name in ACTION_COLUMNS})


def _not_enforced(row: Row[Any]) -> NotEnforced:
    values = row._mapping
    return NotEnforced.model_validate({name: values[name] for name in NOT_ENFORCED_COLUMNS})


class PlanStore(StoreBase):
    async def save_plan(self, plan: Plan) -> bool:
        """Store ``plan``; False (and nothing changes) if a plan with its ID exists."""
        if not isinstance(plan, Plan):
            raise InvalidLedgerValue(f"{type(plan).__name__} is not a Plan")
        key_of(plan.id, "plan ID", max_length=128)
        async with writing(self._engine) as connection:
            await self._check_account(connection, plan.account_id, lock=True)
            if await self._plan_exists(connection, plan.id):
                return False
            await _insert_header(connection, plan)
            for start in range(0, len(plan.actions), _INSERT_CHUNK):
                await connection.execute(
                    insert(PLANNED_ACTIONS),
                    [
                        {"plan_id": plan.id, "seq": seq, **action.model_dump(mode="json")}
                        for seq, action in enumerate(
                            plan.actions[start : start + _INSERT_CHUNK], start
                        )
                    ],
                )
            if plan.not_enforced:
                await connection.execute(
                    insert(NOT_ENFORCED),
                    [
                        {"plan_id": plan.id, "seq": seq, **entry.model_dump(mode="json")}
                        for seq, entry in enumerate(plan.not_enforced)
                    ],
                )
        return True

    async def save_staged_plan(
        self, header: Plan, *, scan_id: str, actions_section: str, not_enforced_section: str
    ) -> bool:
        """Store the plan ``header`` names (its own actions and entries must be empty),
        with the actions and not-enforced entries staged, in plan order, as the pages of
        ``actions_section`` and ``not_enforced_section`` of scan ``scan_id`` (read a page
        at a time: keep them a few hundred rows each). False (and
        nothing changes) if a plan with its ID exists; ``LedgerError`` (and nothing
        changes) if the staged rows are not as many as ``header.counts`` says. The staged
        pages stay (they go with the scan)."""
        if not isinstance(header, Plan):
            raise InvalidLedgerValue(f"{type(header).__name__} is not a Plan")
        if header.actions or header.not_enforced:
            raise InvalidLedgerValue("a staged plan's header carries no actions or entries")
        key_of(header.id, "plan ID", max_length=128)
        async with writing(self._engine) as connection:
            await self._check_account(connection, header.account_id, lock=True)
            if await self._plan_exists(connection, header.id):
                return False
            await _insert_header(connection, header)
            for table, section, expected in (
                (PLANNED_ACTIONS, actions_section, sum(header.counts.actions.values())),
                (NOT_ENFORCED, not_enforced_section, sum(header.counts.not_enforced.values())),
            ):
                seq = 0
                rows: list[dict[str, Any]] = []
                async for page in pages_of(connection, scan_id, section, per_read=1):
                    for row in page:
                        rows.append({**row, "plan_id": header.id, "seq": seq})
                        seq += 1
                    if len(rows) >= _STAGED_INSERT_ROWS:
                        await connection.execute(insert(table), rows)
                        rows = []
                if rows:
                    await connection.execute(insert(table), rows)
                if seq != expected:  # the transaction is rolled back: no plan in part
                    raise LedgerError(
                        f"plan {header.id!r}: {seq} rows staged in {section!r} of scan "
                        f"{scan_id!r}, where its counts say {expected}"
                    )
        return True

    async def _plan_exists(self, connection: AsyncConnection, plan_id: str) -> bool:
        found = await connection.scalar(select(PLANS.c.id).where(PLANS.c.id == plan_id))
        return found is not None

    async def plan_record(self, plan_id: str) -> PlanRecord:
        async with reading(self._engine) as connection:
            row = (await connection.execute(select(PLANS).where(PLANS.c.id == plan_id))).first()
        if row is None:
            raise UnknownPlan(plan_id)
        return _plan_record(row)

    async def plans(self, account_id: str) -> list[PlanRecord]:
        """The account's plans, newest first."""
        async with reading(self._engine) as connection:
            await self._check_account(connection, account_id)
            rows = await connection.execute(
                select(PLANS)
                .where(PLANS.c.account_id == account_id)
                .order_by(PLANS.c.created_at.desc(), PLANS.c.id)
            )
            return [_plan_record(row) for row in rows]

    async def plan_actions(
        self, plan_id: str, *, offset: int = 0, limit: int | None = None
    ) -> list[PlannedAction]:
        """The plan's actions in plan order, ``limit`` of them from ``offset``."""
        if offset < 0 or (limit is not None and limit < 0):
            raise InvalidLedgerValue(f"offset {offset} and limit {limit} must not be negative")
        async with reading(self._engine) as connection:
            if not await self._plan_exists(connection, plan_id):
                raise UnknownPlan(plan_id)
            rows = await connection.execute(
                select(PLANNED_ACTIONS)
                .where(PLANNED_ACTIONS.c.plan_id == plan_id, PLANNED_ACTIONS.c.seq >= offset)
                .order_by(PLANNED_ACTIONS.c.seq)
                .limit(limit)
            )
            return [_action(row) for row in rows]

    async def load_plan(self, plan_id: str) -> Plan:
        """The whole plan, equal to the one saved."""
        async with reading(self._engine) as connection:
            header = (await connection.execute(select(PLANS).where(PLANS.c.id == plan_id))).first()
            if header is None:
                raise UnknownPlan(plan_id)
            actions = await connection.execute(
                select(PLANNED_ACTIONS)
                .where(PLANNED_ACTIONS.c.plan_id == plan_id)
                .order_by(PLANNED_ACTIONS.c.seq)
            )
            planned = tuple(_action(row) for row in actions)
            left = await connection.execute(
                select(NOT_ENFORCED)
                .where(NOT_ENFORCED.c.plan_id == plan_id)
                .order_by(NOT_ENFORCED.c.seq)
            )
            not_enforced = tuple(
                NotEnforced.model_validate(
                    {name: row._mapping[name] for name in NOT_ENFORCED_COLUMNS}
                )
                for row in left
            )
        record = _plan_record(header)
        return Plan(
            id=record.id,
            account_id=record.account_id,
            options=record.options,
            blocklist=record.blocklist,
            actions=planned,
            not_enforced=not_enforced,
            counts=record.counts,
        )


async def _insert_header(connection: AsyncConnection, plan: Plan) -> None:
    """The plan's own row (its actions and entries go in tables of their own)."""
    await connection.execute(
        insert(PLANS).values(
            id=plan.id,
            account_id=plan.account_id,
            options=plan.options.model_dump(mode="json"),
            counts=plan.counts.model_dump(mode="json"),
            blocklist=[artist.model_dump(mode="json") for artist in plan.blocklist],
            created_at=utc_now(),
        )
    )
