"""Engines for the two databases the ledger runs on, and their write transactions.

SQLite: every connection gets WAL, a busy timeout and foreign keys, and writing
transactions start with ``BEGIN IMMEDIATE`` so that two processes queue for the
write lock instead of failing halfway. PostgreSQL: writers lock the row they
change first (``SELECT ... FOR UPDATE``), see the store modules.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Final

from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from enforcer.config import Settings
from enforcer.ledger._errors import InvalidLedgerValue

DATABASE_FILE: Final = "enforcer.db"
SQLITE_BUSY_TIMEOUT_MS: Final = 30_000
_WRITE: Final = "ledger_write"

_DRIVERS: Final = {
    "sqlite": "sqlite+aiosqlite",
    "sqlite+aiosqlite": "sqlite+aiosqlite",
    "postgres": "postgresql+asyncpg",
    "postgresql": "postgresql+asyncpg",
    "postgresql+asyncpg": "postgresql+asyncpg",
}


def ledger_url(settings: Settings) -> str:
    """``ENFORCER_DATABASE_URL`` if set, else the SQLite file in ``data_dir`` (created)."""
    if settings.database_url is not None:
        return settings.database_url.get_secret_value()
    directory = settings.data_dir.expanduser().resolve()
    # The directory also holds the token key: owner only.
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    return f"sqlite+aiosqlite:///{directory / DATABASE_FILE}"


def parse_url(url: str) -> URL:
    """The async-driver URL for ``url``; any other database is refused by name."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        # The text may hold a password: name only what it does not look like.
        raise InvalidLedgerValue(
            "the database URL is not a URL: expected sqlite+aiosqlite:///PATH or "
            "postgresql+asyncpg://USER@HOST:PORT/DB"
        ) from None
    driver = _DRIVERS.get(parsed.drivername)
    if driver is None:
        raise InvalidLedgerValue(
            f"database {parsed.drivername!r} is not supported: use sqlite+aiosqlite:///PATH "
            "or postgresql+asyncpg://USER@HOST:PORT/DB"
        )
    parsed = parsed.set(drivername=driver)
    if parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:"):
        raise InvalidLedgerValue(
            "the ledger needs an SQLite file (sqlite+aiosqlite:///PATH), not a memory database"
        )
    return parsed


def safe_url(url: URL) -> str:
    return url.render_as_string(hide_password=True)


def is_sqlite(url: URL) -> bool:
    return url.get_backend_name() == "sqlite"


def create_engine(url: URL) -> AsyncEngine:
    if not is_sqlite(url):
        return create_async_engine(url, pool_pre_ping=True)
    if url.database:
        Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url)
    event.listen(engine.sync_engine, "connect", _configure_sqlite_connection)
    event.listen(engine.sync_engine, "begin", _begin_sqlite_transaction)
    return engine


def _configure_sqlite_connection(dbapi_connection: Any, _record: Any) -> None:
    # The driver's own implicit BEGIN is switched off: ``_begin_sqlite_transaction``
    # decides between a deferred and an immediate one.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


def _begin_sqlite_transaction(connection: Connection) -> None:
    writing = connection.get_execution_options().get(_WRITE, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if writing else "BEGIN")


@asynccontextmanager
async def writing(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """One write transaction: committed when the block ends, rolled back if it raises."""
    async with engine.connect() as connection:
        await connection.execution_options(**{_WRITE: True})
        async with connection.begin():
            yield connection


@asynccontextmanager
async def reading(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """One read transaction: a consistent view of the ledger."""
    async with engine.connect() as connection, connection.begin():
        yield connection
