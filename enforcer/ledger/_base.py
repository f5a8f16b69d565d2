"""What every part of the store shares: the engine, checks of input, row locks."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Any, Final, TypeVar

from pydantic import TypeAdapter, ValidationError
from pydantic_core import PydanticSerializationError
from sqlalchemy import Row, Table, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from enforcer.ledger._engine import safe_url
from enforcer.ledger._errors import InvalidLedgerValue, UnknownAccount, UnknownBatch
from enforcer.ledger._tables import ACCOUNTS, BATCHES
from enforcer.tokenstore import InvalidAccountId, check_account_id

_SPOTIFY_ID: Final = re.compile(r"[0-9A-Za-z]{22}")
_ANY_JSON: Final = TypeAdapter[Any](Any)
IN_CLAUSE_CHUNK: Final = 500
"""Values per ``IN (...)``: well under SQLite's and asyncpg's parameter limits."""

T = TypeVar("T")


def account_id_of(value: object) -> str:
    try:
        return check_account_id(value)
    except InvalidAccountId as error:
        raise InvalidLedgerValue(str(error)) from None


def spotify_id_of(value: object, what: str) -> str:
    """``value`` if it is a bare Spotify ID (22 base-62 characters)."""
    if not isinstance(value, str) or not _SPOTIFY_ID.fullmatch(value):
        raise InvalidLedgerValue(
            f"{value!r} is not a Spotify {what} ID: expected 22 letters and digits"
        )
    return value


def text_of(value: object, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidLedgerValue(f"{what} must be non-empty text, not {value!r}")
    return value


def key_of(value: object, what: str, *, max_length: int = 256) -> str:
    """An identifier the ledger makes up or is given (plan, batch, scan, app IDs)."""
    if (
        not isinstance(value, str)
        or not 1 <= len(value) <= max_length
        or not value.isprintable()
        or value != value.strip()
    ):
        raise InvalidLedgerValue(
            f"{value!r} is not a valid {what}: expected 1 to {max_length} printable "
            "characters without surrounding spaces"
        )
    return value


def to_json(value: Any, what: str) -> Any:
    """``value`` as JSON data (pydantic's JSON mode: datetimes, enums, models...)."""
    try:
        return _ANY_JSON.dump_python(value, mode="json")
    except (PydanticSerializationError, ValidationError, TypeError, ValueError) as error:
        raise InvalidLedgerValue(f"{what} cannot be stored as JSON: {error}") from None


def chunks(values: Sequence[T], size: int = IN_CLAUSE_CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def upsert_insert(connection: AsyncConnection, table: Table) -> Any:
    """An INSERT that can say ``ON CONFLICT``: the same on both databases."""
    if connection.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


class StoreBase:
    """The engine, and the checks every part of the store needs."""

    def __init__(self, engine: AsyncEngine, url: URL) -> None:
        self._engine = engine
        self._url = url

    def __repr__(self) -> str:
        return f"{type(self).__name__}({safe_url(self._url)!r})"

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self._url.get_backend_name()

    async def _check_account(
        self, connection: AsyncConnection, account_id: str, *, lock: bool = False
    ) -> None:
        """Raise ``UnknownAccount`` unless it exists; ``lock`` queues other writers of
        the same account behind this transaction (PostgreSQL; SQLite's write
        transactions are exclusive already)."""
        query = select(ACCOUNTS.c.account_id).where(ACCOUNTS.c.account_id == account_id)
        if lock:
            query = query.with_for_update()
        if (await connection.execute(query)).first() is None:
            raise UnknownAccount(account_id)

    async def _batch_row(
        self, connection: AsyncConnection, batch_id: str, *, lock: bool = False
    ) -> Row[Any] | None:
        query = select(BATCHES).where(BATCHES.c.id == batch_id)
        if lock:
            query = query.with_for_update()
        return (await connection.execute(query)).first()

    async def _lock_batch(self, connection: AsyncConnection, batch_id: str) -> Row[Any]:
        """The batch's row, locked against other writers of the batch (PostgreSQL)."""
        row = await self._batch_row(connection, batch_id, lock=True)
        if row is None:
            raise UnknownBatch(batch_id)
        return row

    async def _check_batch(self, connection: AsyncConnection, batch_id: str) -> None:
        if await self._batch_row(connection, batch_id) is None:
            raise UnknownBatch(batch_id)
