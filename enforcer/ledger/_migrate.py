"""The schema, versioned by Alembic: ``Ledger.open`` upgrades every database to head.

The migrations ship inside the package (``migrations/versions``); a fresh database
is built by them, never by ``create_all``, so that a new database and an upgraded
one have the very same schema.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from enforcer.ledger._engine import writing
from enforcer.ledger._errors import SchemaError
from enforcer.ledger._tables import metadata

MIGRATIONS: Final = Path(__file__).resolve().parent / "migrations"
HEAD: Final = "head"
# Any fixed number: two processes opening a fresh PostgreSQL database migrate in turn.
_PG_MIGRATION_LOCK: Final = 0x6C6564676572


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def revisions() -> list[str]:
    """Every revision, the first one first."""
    script = ScriptDirectory.from_config(alembic_config())
    return [rev.revision for rev in reversed(list(script.walk_revisions()))]


def _current(connection: Connection) -> set[str]:
    return set(MigrationContext.configure(connection).get_current_heads())


def _upgrade(connection: Connection, target: str) -> None:
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_MIGRATION_LOCK})")
    unknown = _current(connection) - set(revisions())
    if unknown:
        raise SchemaError(
            f"the database is at schema revision {', '.join(sorted(unknown))}, which this "
            "version of blocklist-enforcer does not know: it was written by a newer "
            "release; run that release (or newer) against it"
        )
    command.upgrade(alembic_config(connection), target)


async def upgrade(engine: AsyncEngine, target: str = HEAD) -> None:
    """Bring the database to ``target`` (a revision, or head) in one transaction."""
    async with writing(engine) as connection:
        await connection.run_sync(_upgrade, target)


async def current_revision(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as connection:
        return await connection.run_sync(_current)


def _schema_differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, metadata))


async def schema_differences(engine: AsyncEngine) -> list[Any]:
    """What Alembic's autogenerate would change: empty when tables and migrations agree."""
    async with engine.connect() as connection:
        return await connection.run_sync(_schema_differences)
