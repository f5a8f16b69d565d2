"""The ledger's tables. Only ``enforcer.ledger`` imports this module (and sqlmodel):
workflow code must never define them a second time in Temporal's sandbox.

A change here needs a migration in ``migrations/versions`` (docs/ledger.md); the
test suite compares these tables with what the migrations build.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Column,
    Index,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from enforcer.ledger._columns import UTCDateTime

# Named constraints: SQLite can only alter a table by rebuilding it, and Alembic's
# batch mode needs names to carry the constraints across.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)


class LedgerTable(SQLModel, registry=registry(metadata=metadata)):
    """The ledger's own registry, apart from any other SQLModel tables in the process."""


ID = String(64)
"""Spotify IDs are 22 characters; user IDs and plan hashes are longer."""
KIND = String(32)


def _json(*, nullable: bool = False) -> Any:
    return Field(sa_column=Column(JSON(none_as_null=True), nullable=nullable))


def _when(*, nullable: bool = False) -> Any:
    return Field(sa_type=UTCDateTime, nullable=nullable)


class Account(LedgerTable, table=True):
    __tablename__ = "accounts"

    account_id: str = Field(sa_type=String(256), primary_key=True)
    display_name: str | None = Field(default=None, sa_type=Text)
    tokens: bytes | None = Field(default=None, sa_type=LargeBinary)
    """A ``TokenCipher`` ciphertext: never plaintext."""
    generations: dict[str, str] = _json()
    """Operation name -> endpoint generation that answered it last."""
    created_at: datetime = _when()
    updated_at: datetime = _when()


class BlocklistRow(LedgerTable, table=True):
    __tablename__ = "blocklist_entries"
    __table_args__ = (UniqueConstraint("account_id", "artist_id"),)

    id: int | None = Field(default=None, primary_key=True)
    account_id: str = Field(sa_type=String(256), foreign_key="accounts.account_id")
    artist_id: str = Field(sa_type=ID)
    name: str = Field(sa_type=Text)
    source: str = Field(sa_type=Text)
    added_at: datetime = _when()


class ProtectedRow(LedgerTable, table=True):
    __tablename__ = "protected_entries"
    __table_args__ = (
        UniqueConstraint("account_id", "kind", "spotify_id"),
        CheckConstraint("kind IN ('track', 'playlist')", name="kind"),
    )

    id: int | None = Field(default=None, primary_key=True)
    account_id: str = Field(sa_type=String(256), foreign_key="accounts.account_id")
    kind: str = Field(sa_type=KIND)
    spotify_id: str = Field(sa_type=ID)
    name: str = Field(sa_type=Text)
    added_at: datetime = _when()


class ScanPageRow(LedgerTable, table=True):
    __tablename__ = "scan_pages"

    scan_id: str = Field(sa_type=String(256), primary_key=True)
    section: str = Field(sa_type=String(256), primary_key=True)
    page_index: int = Field(primary_key=True)
    account_id: str = Field(sa_type=String(256), foreign_key="accounts.account_id")
    item_count: int
    payload: bytes = Field(sa_type=LargeBinary)
    """zlib-compressed JSON array of the page's items."""
    saved_at: datetime = _when()


class PlanRow(LedgerTable, table=True):
    __tablename__ = "plans"
    __table_args__ = (Index(None, "account_id", "created_at"),)

    id: str = Field(sa_type=String(128), primary_key=True)
    account_id: str = Field(sa_type=String(256), foreign_key="accounts.account_id")
    options: dict[str, Any] = _json()
    counts: dict[str, Any] = _json()
    blocklist: list[dict[str, Any]] = _json()
    created_at: datetime = _when()


class PlannedActionRow(LedgerTable, table=True):
    """One ``PlannedAction``; the columns after ``seq`` are its fields, by name."""

    __tablename__ = "planned_actions"

    plan_id: str = Field(sa_type=String(128), foreign_key="plans.id", primary_key=True)
    seq: int = Field(primary_key=True)
    entity_type: str = Field(sa_type=KIND)
    entity_id: str = Field(sa_type=ID)
    container_id: str | None = Field(default=None, sa_type=ID)
    action: str = Field(sa_type=KIND)
    uri: str = Field(sa_type=Text)
    name: str = Field(sa_type=Text)
    artist_names: list[str] = _json()
    reasons: list[dict[str, Any]] = _json()
    before: dict[str, Any] = _json()


class NotEnforcedRow(LedgerTable, table=True):
    """One ``NotEnforced``; the columns after ``seq`` are its fields, by name."""

    __tablename__ = "plan_not_enforced"

    plan_id: str = Field(sa_type=String(128), foreign_key="plans.id", primary_key=True)
    seq: int = Field(primary_key=True)
    why: str = Field(sa_type=KIND)
    entity_type: str = Field(sa_type=KIND)
    name: str = Field(sa_type=Text)
    uri: str | None = Field(default=None, sa_type=Text)
    container_id: str | None = Field(default=None, sa_type=ID)
    container_name: str | None = Field(default=None, sa_type=Text)
    positions: list[int] = _json()
    reasons: list[dict[str, Any]] = _json()


class BatchRow(LedgerTable, table=True):
    __tablename__ = "batches"
    __table_args__ = (
        Index(None, "account_id", "created_at"),
        CheckConstraint("kind IN ('enforce', 'rollback')", name="kind"),
    )

    id: str = Field(sa_type=String(256), primary_key=True)
    account_id: str = Field(sa_type=String(256), foreign_key="accounts.account_id")
    plan_id: str = Field(sa_type=String(128), foreign_key="plans.id")
    kind: str = Field(sa_type=KIND)
    rollback_of: str | None = Field(default=None, sa_type=String(256), foreign_key="batches.id")
    status: str = Field(sa_type=KIND)
    options: dict[str, Any] = _json()
    summary: dict[str, Any] | None = _json(nullable=True)
    created_at: datetime = _when()
    updated_at: datetime = _when()
    started_at: datetime | None = _when(nullable=True)
    finished_at: datetime | None = _when(nullable=True)


class ActionItemRow(LedgerTable, table=True):
    __tablename__ = "action_items"
    __table_args__ = (
        UniqueConstraint("batch_id", "entity_type", "entity_id", "action", "idempotency_key"),
        Index(None, "batch_id", "status"),
        # Named: the convention would give it the (batch, status) index's name.
        Index("ix_action_items_batch_id_chunk", "batch_id", "chunk"),
        # Marking items finds them by key: without it, every mark reads the whole batch.
        Index("ix_action_items_batch_id_key", "batch_id", "idempotency_key"),
        CheckConstraint(
            "status IN ('pending', 'in_progress', 'completed', 'failed', 'skipped', 'rolled_back')",
            name="status",
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    """Creation order, which is plan order: items are listed by it."""
    batch_id: str = Field(sa_type=String(256), foreign_key="batches.id")
    entity_type: str = Field(sa_type=KIND)
    entity_id: str = Field(sa_type=ID)
    container_id: str | None = Field(default=None, sa_type=ID)
    action: str = Field(sa_type=KIND)
    idempotency_key: str = Field(sa_type=String(256))
    uri: str = Field(sa_type=Text)
    name: str = Field(sa_type=Text)
    artist_names: list[str] = _json()
    reason: list[dict[str, Any]] = _json()
    before_state: dict[str, Any] = _json()
    after_state: dict[str, Any] | None = _json(nullable=True)
    status: str = Field(sa_type=KIND)
    error: str | None = Field(default=None, sa_type=Text)
    attempts: int = 0
    created_at: datetime = _when()
    updated_at: datetime = _when()
    started_at: datetime | None = _when(nullable=True)
    finished_at: datetime | None = _when(nullable=True)
    chunk: int | None = None
    """The Spotify call the item belongs to, numbered from 0 per batch; None until cut."""
    lane: int | None = None
    """-1: the library (no order between chunks); 0, 1...: one playlist, chunks in order."""


class GateRow(LedgerTable, table=True):
    __tablename__ = "rate_limit_gates"

    app_id: str = Field(sa_type=String(256), primary_key=True)
    blocked_until: datetime = _when()
    reason: str = Field(sa_type=Text)
    updated_at: datetime = _when()


class ApiCallRow(LedgerTable, table=True):
    """Requests to Spotify made for one owner (a batch, or a planning scan), counted by
    endpoint and outcome: ``sent`` before a request leaves, its HTTP status once
    answered, ``held_back`` when the rate gate kept it in. Written as they happen, so
    the count survives a worker that dies between a request and its answer."""

    __tablename__ = "api_calls"

    owner_id: str = Field(sa_type=String(256), primary_key=True)
    endpoint: str = Field(sa_type=String(128), primary_key=True)
    outcome: str = Field(sa_type=String(32), primary_key=True)
    count: int = 0


class RateLimitWaitRow(LedgerTable, table=True):
    """A period an owner's request was kept waiting by a 429 (its own, or another's
    that closed the app's gate); overlapping periods are merged when read."""

    __tablename__ = "rate_limit_waits"
    __table_args__ = (Index("ix_rate_limit_waits_owner_id", "owner_id"),)

    id: int | None = Field(default=None, primary_key=True)
    owner_id: str = Field(sa_type=String(256))
    started_at: datetime = _when()
    ended_at: datetime = _when()


class AccountTurnRow(LedgerTable, table=True):
    """Whose turn it is to write to an account's library: one batch at a time."""

    __tablename__ = "account_turns"

    account_id: str = Field(
        sa_type=String(256), primary_key=True, foreign_key="accounts.account_id"
    )
    batch_id: str = Field(sa_type=String(256))
    taken_at: datetime = _when()


def table(model: type[LedgerTable]) -> Table:
    found = metadata.tables[str(model.__tablename__)]
    return found


ACCOUNTS = table(Account)
BLOCKLIST = table(BlocklistRow)
PROTECTED = table(ProtectedRow)
SCAN_PAGES = table(ScanPageRow)
PLANS = table(PlanRow)
PLANNED_ACTIONS = table(PlannedActionRow)
NOT_ENFORCED = table(NotEnforcedRow)
BATCHES = table(BatchRow)
ACTION_ITEMS = table(ActionItemRow)
GATES = table(GateRow)
API_CALLS = table(ApiCallRow)
RATE_LIMIT_WAITS = table(RateLimitWaitRow)
ACCOUNT_TURNS = table(AccountTurnRow)
