"""Alembic's entry point, both for ``Ledger.open`` and for the ``alembic`` command.

``Ledger.open`` hands over its connection (``config.attributes["connection"]``).
From the command line (making a new revision, docs/ledger.md) the database is
``-x url=...``, else ``ENFORCER_DATABASE_URL``.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy import JSON
from sqlalchemy.engine import Connection

from enforcer.ledger._columns import UTCDateTime
from enforcer.ledger._engine import create_engine, parse_url
from enforcer.ledger._tables import metadata


def _render_item(kind: str, item: Any, _context: AutogenContext) -> str | Literal[False]:
    """Migrations name plain SQLAlchemy types: a revision must never change because
    the application's column classes did."""
    if kind == "type" and isinstance(item, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    if kind == "type" and isinstance(item, JSON):
        return "sa.JSON()"
    return False


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        render_item=_render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_from_command_line() -> None:
    url = context.get_x_argument(as_dictionary=True).get("url") or os.environ.get(
        "ENFORCER_DATABASE_URL"
    )
    if not url:
        raise SystemExit("name the database: alembic ... -x url=sqlite+aiosqlite:///PATH")
    engine = create_engine(parse_url(url))
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_run)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    raise SystemExit("the ledger's migrations run against a database, not offline")

shared = context.config.attributes.get("connection")
if shared is not None:
    _run(shared)
else:
    asyncio.run(_run_from_command_line())
