"""Fixtures: a fresh, migrated ledger per test, on SQLite and on PostgreSQL.

``ledger`` (and ``ledger_database_url``) are parametrized over both databases. The PostgreSQL
variant makes a database with a unique name on the server named by
``ENFORCER_TEST_POSTGRES_URL`` (default: user postgres on 127.0.0.1:5432, database
``test``) and drops it afterwards. When that server cannot be reached the variant is
skipped, saying so; with ``ENFORCER_TEST_REQUIRE_POSTGRES=1`` (CI) it fails instead.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Final

import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine

from enforcer.ledger import Ledger

POSTGRES_ADMIN_URL: Final = os.environ.get(
    "ENFORCER_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
REQUIRE_POSTGRES: Final = os.environ.get("ENFORCER_TEST_REQUIRE_POSTGRES") == "1"
BACKENDS: Final = ("sqlite", pytest.param("postgres", marks=pytest.mark.postgres))


async def _on_server(statement: str) -> None:
    """Run ``statement`` outside a transaction (as CREATE/DROP DATABASE must be)."""
    url = make_url(POSTGRES_ADMIN_URL).set(drivername="postgresql+asyncpg")
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.exec_driver_sql(statement)
    except (OSError, DBAPIError) as error:
        message = (
            f"PostgreSQL is unreachable at {url.render_as_string(hide_password=True)} "
            f"({type(error).__name__}: {str(error).splitlines()[0]}): the PostgreSQL "
            "variant of this test did not run (CI runs it; ENFORCER_TEST_POSTGRES_URL "
            "names another server)"
        )
        if REQUIRE_POSTGRES:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    finally:
        await engine.dispose()


async def new_postgres_database() -> str:
    """Create an empty database with a unique name; returns its URL."""
    name = f"ledger_test_{uuid.uuid4().hex}"
    await _on_server(f'CREATE DATABASE "{name}"')
    return (
        make_url(POSTGRES_ADMIN_URL)
        .set(drivername="postgresql+asyncpg", database=name)
        .render_as_string(hide_password=False)
    )


async def drop_postgres_database(url: str) -> None:
    await _on_server(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')


@pytest.fixture(params=BACKENDS)
def ledger_backend(request: pytest.FixtureRequest) -> str:
    backend: str = request.param
    return backend


@pytest.fixture
async def ledger_database_url(ledger_backend: str, tmp_path: Path) -> AsyncIterator[str]:
    """The URL of an empty database of ``ledger_backend``, gone after the test."""
    if ledger_backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'ledger' / 'enforcer.db'}"
        return
    url = await new_postgres_database()
    try:
        yield url
    finally:
        await drop_postgres_database(url)


@pytest.fixture
async def ledger(ledger_database_url: str) -> AsyncIterator[Ledger]:
    """A ledger migrated to head on a fresh database."""
    opened = await Ledger.open(ledger_database_url)
    try:
        yield opened
    finally:
        await opened.close()
