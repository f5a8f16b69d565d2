"""The schema: built by the migrations, upgraded without losing the audit log, and
equal to the tables in the code (a table changed without a migration fails here).

A new revision extends the upgrade test: rows as the oldest revision wrote them must
read back, and what the new revision adds must work on them."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from enforcer.config import Settings
from enforcer.ledger import (
    BatchStatus,
    InvalidLedgerValue,
    ItemStatus,
    Ledger,
    LedgerError,
    SchemaError,
    ledger_url,
)
from enforcer.ledger._engine import create_engine, parse_url
from enforcer.ledger._migrate import current_revision, revisions, schema_differences, upgrade
from enforcer.models import EntityType

# Rows as the first revision's schema holds them, written the way that release wrote them.
FIRST_REVISION_ROWS = [
    "INSERT INTO accounts (account_id, display_name, tokens, generations, created_at, "
    "updated_at) VALUES ('alice', 'Alice', NULL, '{\"library.remove\": \"legacy\"}', "
    "'2025-01-02 03:04:05.000000', '2025-01-02 03:04:05.000000')",
    "INSERT INTO blocklist_entries (account_id, artist_id, name, source, added_at) VALUES "
    "('alice', '0TnOYISbd1XYRBk9myaseg', 'Blocked Artist', 'id', '2025-01-02 03:04:05.000000')",
    "INSERT INTO plans (id, account_id, options, counts, blocklist, created_at) VALUES "
    "('plan-1', 'alice', '{\"policy\": \"featured\", \"include_collaborative\": false}', "
    '\'{"scanned": {"liked_song": 1}, "actions": {"liked_song": 1}, "not_enforced": {}, '
    '"playlists_read": 0, "playlists_touched": 0}\', '
    '\'[{"artist_id": "0TnOYISbd1XYRBk9myaseg", "name": "Blocked Artist"}]\', '
    "'2025-01-02 03:04:05.000000')",
    "INSERT INTO batches (id, account_id, plan_id, kind, rollback_of, status, options, summary, "
    "created_at, updated_at, started_at, finished_at) VALUES ('batch-1', 'alice', 'plan-1', "
    "'enforce', NULL, 'completed', '{}', '{\"removed\": 1}', '2025-01-02 03:04:05.000000', "
    "'2025-01-02 03:05:00.000000', '2025-01-02 03:04:06.000000', '2025-01-02 03:05:00.000000')",
    "INSERT INTO action_items (batch_id, entity_type, entity_id, container_id, action, "
    "idempotency_key, uri, name, artist_names, reason, before_state, after_state, status, "
    "error, attempts, created_at, updated_at, started_at, finished_at) VALUES ('batch-1', "
    "'liked_song', 't000000000000000000001', NULL, 'remove', "
    "'liked_song:-:t000000000000000000001:remove', 'spotify:track:t000000000000000000001', "
    '\'Song\', \'["Blocked Artist"]\', \'[{"artist_id": "0TnOYISbd1XYRBk9myaseg", '
    '"artist_name": "Blocked Artist", "rule": "primary_artist"}]\', '
    '\'{"kind": "liked_song", "added_at": "2020-05-06T07:08:09Z"}\', NULL, \'completed\', '
    "NULL, 1, '2025-01-02 03:04:05.000000', '2025-01-02 03:05:00.000000', "
    "'2025-01-02 03:04:06.000000', '2025-01-02 03:05:00.000000')",
]


async def test_the_migrations_build_exactly_the_tables_in_the_code(ledger: Ledger) -> None:
    assert await schema_differences(ledger._engine) == []


async def test_a_database_of_the_first_revision_upgrades_keeping_its_audit_log(
    ledger_database_url: str,
) -> None:
    assert revisions()[:2] == ["0001", "0002"]
    engine = create_engine(parse_url(ledger_database_url))
    try:
        await upgrade(engine, "0001")
        assert await current_revision(engine) == {"0001"}
        async with engine.begin() as connection:
            for row in FIRST_REVISION_ROWS:
                await connection.execute(text(row))
    finally:
        await engine.dispose()

    async with await Ledger.open(ledger_database_url) as ledger:
        assert await current_revision(ledger._engine) == {revisions()[-1]}
        batch = await ledger.batch("batch-1")
        assert (batch.status, batch.summary) == (BatchStatus.COMPLETED, {"removed": 1})
        [item] = await ledger.action_items("batch-1")
        assert (item.status, item.attempts) == (ItemStatus.COMPLETED, 1)
        assert item.before.kind == "liked_song"
        assert [e.name for e in await ledger.blocklist("alice")] == ["Blocked Artist"]
        assert (await ledger.plan_record("plan-1")).blocklist[0].name == "Blocked Artist"
        assert (await ledger.generations("alice"))["library.remove"] == "legacy"
        assert batch.created_at.isoformat() == "2025-01-02T03:04:05+00:00"

        # 0002: items gain a chunk and a lane, empty until the batch is cut.
        assert (item.chunk, item.lane) == (None, None)
        assert await ledger.chunk_layout("batch-1") is None
        layout = await ledger.assign_chunks(
            "batch-1", library_chunk_size=40, playlist_chunk_size=100
        )
        assert (layout.chunks, layout.library_chunks, layout.totals) == (
            1,
            1,
            {EntityType.LIKED_SONG: 1},
        )
        [chunked] = await ledger.chunk_items("batch-1", 0)
        assert chunked.model_dump(exclude={"chunk", "lane"}) == item.model_dump(
            exclude={"chunk", "lane"}
        )
        assert (chunked.chunk, chunked.lane) == (0, -1)


async def test_opening_again_keeps_everything(ledger: Ledger, ledger_database_url: str) -> None:
    await ledger.upsert_account("alice", "Alice")
    async with await Ledger.open(ledger_database_url) as again:
        assert [a.account_id for a in await again.accounts()] == ["alice"]


async def test_a_database_of_a_newer_release_is_refused(
    ledger: Ledger, ledger_database_url: str
) -> None:
    async with ledger._engine.begin() as connection:
        await connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(SchemaError, match=r"schema revision 9999.*newer release"):
        await Ledger.open(ledger_database_url)


def test_unsupported_databases_are_refused_without_showing_a_password() -> None:
    with pytest.raises(InvalidLedgerValue, match="database 'mysql' is not supported") as error:
        parse_url("mysql://root:hunter2@db/enforcer")
    assert "hunter2" not in str(error.value)
    with pytest.raises(InvalidLedgerValue, match="not a memory database"):
        parse_url("sqlite+aiosqlite://")
    assert parse_url("postgresql://u:pw@h/db").drivername == "postgresql+asyncpg"


async def test_an_unreachable_database_is_named_without_its_password() -> None:
    with pytest.raises(LedgerError, match=r"cannot open the ledger at .*127\.0\.0\.1:9") as error:
        await Ledger.open("postgresql+asyncpg://enforcer:hunter2@127.0.0.1:9/enforcer")
    assert "hunter2" not in str(error.value)


def test_the_default_ledger_is_a_file_in_the_data_dir(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    settings = Settings(spotify_client_id="abc123", data_dir=data_dir)
    assert ledger_url(settings) == f"sqlite+aiosqlite:///{data_dir.resolve()}/enforcer.db"
    assert data_dir.is_dir()

    chosen = "postgresql+asyncpg://enforcer:pw@db.internal/enforcer"
    settings = Settings(spotify_client_id="abc123", data_dir=data_dir, database_url=chosen)
    assert ledger_url(settings) == chosen
