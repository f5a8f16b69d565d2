"""Requests to Spotify as they happen, and whose turn it is to write to an account.

Traffic is counted per owner (a batch, or a planning scan) in the ledger rather than
in a workflow or a heartbeat: a request is counted ``sent`` before it leaves, so a
worker killed while Spotify answers still leaves it counted, and the summary agrees
with what Spotify received. Every count is an atomic upsert-increment, safe from any
number of workers at once.

An account's turn is one row per account naming the batch that may write to its
library; taking it is an atomic insert-or-check, so two batches can never both hold it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncConnection

from enforcer.ledger._base import StoreBase, account_id_of, key_of, upsert_insert
from enforcer.ledger._columns import require_aware, utc_now
from enforcer.ledger._engine import reading, writing
from enforcer.ledger._errors import InvalidLedgerValue
from enforcer.ledger._tables import ACCOUNT_TURNS, API_CALLS, RATE_LIMIT_WAITS
from enforcer.models import ApiTraffic, WaitPeriod, waited_seconds


def call_rows(owner_id: str, counts: Mapping[tuple[str, str], int]) -> list[dict[str, Any]]:
    """The rows ``add_calls`` writes, each checked: a bad count changes nothing."""
    key_of(owner_id, "owner of API calls")
    rows = []
    for (endpoint, outcome), count in counts.items():
        key_of(endpoint, "endpoint", max_length=128)
        key_of(outcome, "call outcome", max_length=32)
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise InvalidLedgerValue(f"a call count must be a positive integer, not {count!r}")
        rows.append(
            {"owner_id": owner_id, "endpoint": endpoint, "outcome": outcome, "count": count}
        )
    return rows


async def add_calls(connection: AsyncConnection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Adds the counts of ``rows`` (from ``call_rows``) inside the caller's transaction."""
    for row in rows:
        insert = upsert_insert(connection, API_CALLS).values(**row)
        await connection.execute(
            insert.on_conflict_do_update(
                index_elements=[API_CALLS.c.owner_id, API_CALLS.c.endpoint, API_CALLS.c.outcome],
                set_={"count": API_CALLS.c.count + insert.excluded.count},
            )
        )


async def read_traffic(connection: AsyncConnection, owner_id: str) -> ApiTraffic:
    """Everything the owner's requests did so far, as the caller's transaction sees it."""
    calls = await connection.execute(
        select(API_CALLS.c.endpoint, API_CALLS.c.outcome, API_CALLS.c.count).where(
            API_CALLS.c.owner_id == owner_id
        )
    )
    by_endpoint: dict[str, dict[str, int]] = {}
    for endpoint, outcome, count in calls:
        by_endpoint.setdefault(endpoint, {})[outcome] = count
    waits = await connection.execute(
        select(RATE_LIMIT_WAITS.c.started_at, RATE_LIMIT_WAITS.c.ended_at).where(
            RATE_LIMIT_WAITS.c.owner_id == owner_id
        )
    )
    periods = [WaitPeriod(start=start, end=end) for start, end in waits]
    return ApiTraffic(
        calls={e: dict(sorted(o.items())) for e, o in sorted(by_endpoint.items())},
        waited_seconds=waited_seconds(periods),
    )


class TrafficStore(StoreBase):
    async def count_calls(self, owner_id: str, counts: Mapping[tuple[str, str], int]) -> None:
        """Adds ``counts[(endpoint, outcome)]`` to the owner's traffic, in one transaction."""
        rows = call_rows(owner_id, counts)
        if not rows:
            return
        async with writing(self._engine) as connection:
            await add_calls(connection, rows)

    async def record_wait(self, owner_id: str, start: datetime, end: datetime) -> None:
        """The owner's requests were kept waiting from ``start`` to ``end``."""
        key_of(owner_id, "owner of API calls")
        try:
            start, end = require_aware(start, "start"), require_aware(end, "end")
        except ValueError as error:
            raise InvalidLedgerValue(str(error)) from None
        if end < start:
            raise InvalidLedgerValue(f"a wait cannot end ({end}) before it starts ({start})")
        async with writing(self._engine) as connection:
            await connection.execute(
                RATE_LIMIT_WAITS.insert().values(owner_id=owner_id, started_at=start, ended_at=end)
            )

    async def traffic(self, owner_id: str) -> ApiTraffic:
        """Everything the owner's requests did so far (nothing yet: all zero)."""
        async with reading(self._engine) as connection:
            return await read_traffic(connection, owner_id)

    async def take_turn(self, account_id: str, batch_id: str) -> str:
        """Gives the account's turn to ``batch_id`` unless another batch holds it;
        returns the holder (``batch_id`` itself when it got, or already had, the turn)."""
        account_id_of(account_id)
        key_of(batch_id, "batch ID")
        async with writing(self._engine) as connection:
            await self._check_account(connection, account_id, lock=True)
            insert = upsert_insert(connection, ACCOUNT_TURNS).values(
                account_id=account_id, batch_id=batch_id, taken_at=utc_now()
            )
            await connection.execute(
                insert.on_conflict_do_nothing(index_elements=[ACCOUNT_TURNS.c.account_id])
            )
            holder = (
                await connection.execute(
                    select(ACCOUNT_TURNS.c.batch_id).where(ACCOUNT_TURNS.c.account_id == account_id)
                )
            ).scalar_one()
        return str(holder)

    async def turn_holder(self, account_id: str) -> str | None:
        async with reading(self._engine) as connection:
            holder = (
                await connection.execute(
                    select(ACCOUNT_TURNS.c.batch_id).where(ACCOUNT_TURNS.c.account_id == account_id)
                )
            ).scalar_one_or_none()
        return None if holder is None else str(holder)

    async def give_up_turn(self, account_id: str, batch_id: str) -> bool:
        """Ends ``batch_id``'s turn; False (and nothing changes) if it did not hold it."""
        async with writing(self._engine) as connection:
            result = await connection.execute(
                delete(ACCOUNT_TURNS).where(
                    ACCOUNT_TURNS.c.account_id == account_id,
                    ACCOUNT_TURNS.c.batch_id == batch_id,
                )
            )
        return bool(result.rowcount)
