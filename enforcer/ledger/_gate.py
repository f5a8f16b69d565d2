"""The app-wide rate-limit gate: after a 429, no call of the app before the time it named.

Shared through the database by every worker of the app. Closing is one atomic
upsert that only ever moves the time later, so two workers closing at once end
with the later of their two times, whatever the order.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import case, select

from enforcer.ledger._base import StoreBase, key_of, text_of, upsert_insert
from enforcer.ledger._columns import require_aware, utc_now
from enforcer.ledger._engine import reading, writing
from enforcer.ledger._errors import InvalidLedgerValue
from enforcer.ledger._records import Gate
from enforcer.ledger._tables import GATES


class GateStore(StoreBase):
    async def gate(self, app_id: str) -> Gate:
        """The gate of ``app_id`` (open, with no time, if it was never closed)."""
        async with reading(self._engine) as connection:
            row = (
                await connection.execute(
                    select(GATES.c.blocked_until, GATES.c.reason).where(GATES.c.app_id == app_id)
                )
            ).first()
        return Gate() if row is None else Gate.model_validate(row._asdict())

    async def close_gate(self, app_id: str, until: datetime, reason: str) -> Gate:
        """Keep every call of ``app_id`` waiting until ``until`` at least; returns the gate
        as it now is (a later time set before stays, with its reason)."""
        key_of(app_id, "app ID")
        text_of(reason, "the reason the gate closes")
        if not isinstance(until, datetime):
            raise InvalidLedgerValue(f"until={until!r} is not a datetime")
        try:
            until = require_aware(until, "until")
        except ValueError as error:
            raise InvalidLedgerValue(str(error)) from None
        async with writing(self._engine) as connection:
            insert = upsert_insert(connection, GATES).values(
                app_id=app_id, blocked_until=until, reason=reason, updated_at=utc_now()
            )
            later = insert.excluded.blocked_until > GATES.c.blocked_until
            await connection.execute(
                insert.on_conflict_do_update(
                    index_elements=[GATES.c.app_id],
                    set_={
                        "blocked_until": case(
                            (later, insert.excluded.blocked_until), else_=GATES.c.blocked_until
                        ),
                        "reason": case((later, insert.excluded.reason), else_=GATES.c.reason),
                        "updated_at": case(
                            (later, insert.excluded.updated_at), else_=GATES.c.updated_at
                        ),
                    },
                )
            )
            row = (
                await connection.execute(
                    select(GATES.c.blocked_until, GATES.c.reason).where(GATES.c.app_id == app_id)
                )
            ).one()
        return Gate.model_validate(row._asdict())
