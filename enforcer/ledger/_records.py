"""What the ledger hands back: frozen pydantic records, never table rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict

from enforcer.models import (
    Action,
    BatchKind,
    BatchStatus,
    BeforeState,
    BlockedArtist,
    EntityType,
    ItemStatus,
    PlanCounts,
    PlannedAction,
    PlanOptions,
    Reason,
)

ProtectedKind = Literal["track", "playlist"]


class Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class AccountRecord(Record):
    account_id: str
    display_name: str | None
    created_at: AwareDatetime


class BlocklistEntry(Record):
    artist_id: str
    name: str
    source: str
    """How it was added: "id", "uri", "url" or "file:NAME"."""
    added_at: AwareDatetime

    @property
    def artist(self) -> BlockedArtist:
        return BlockedArtist(artist_id=self.artist_id, name=self.name)


class ProtectedEntry(Record):
    kind: ProtectedKind
    spotify_id: str
    name: str
    added_at: AwareDatetime


class PlanRecord(Record):
    """A plan's header: everything but its actions and what it leaves alone."""

    id: str
    account_id: str
    options: PlanOptions
    counts: PlanCounts
    blocklist: tuple[BlockedArtist, ...]
    created_at: AwareDatetime


class BatchRecord(Record):
    id: str
    account_id: str
    plan_id: str
    kind: BatchKind
    rollback_of: str | None
    status: BatchStatus
    options: dict[str, Any]
    summary: dict[str, Any] | None
    created_at: AwareDatetime
    updated_at: AwareDatetime
    started_at: AwareDatetime | None
    finished_at: AwareDatetime | None


class ActionItemRecord(Record):
    """One planned action inside a batch, with its progress and what it changed."""

    batch_id: str
    key: str
    """The idempotency key: ``PlannedAction.key``, stable across runs."""
    entity_type: EntityType
    entity_id: str
    container_id: str | None
    action: Action
    uri: str
    name: str
    artist_names: tuple[str, ...]
    reasons: tuple[Reason, ...]
    before: BeforeState
    after_state: dict[str, Any] | None
    status: ItemStatus
    error: str | None
    attempts: int
    chunk: int | None = None
    """The Spotify call this item belongs to (``Ledger.assign_chunks``); None before."""
    lane: int | None = None
    """-1 for the library; 0, 1, 2... one per playlist, whose chunks run in order."""
    created_at: AwareDatetime
    updated_at: AwareDatetime
    started_at: AwareDatetime | None
    finished_at: AwareDatetime | None

    @property
    def planned(self) -> PlannedAction:
        """The planned action this item carries out."""
        return PlannedAction(
            entity_type=self.entity_type,
            entity_id=self.entity_id,
            container_id=self.container_id,
            uri=self.uri,
            name=self.name,
            artist_names=self.artist_names,
            action=self.action,
            reasons=self.reasons,
            before=self.before,
        )


class Gate(Record):
    """The app-wide rate-limit gate: no Spotify call before ``blocked_until``."""

    blocked_until: AwareDatetime | None = None
    reason: str | None = None

    def wait(self, now: datetime | None = None) -> timedelta:
        """How long a caller must still wait (zero when the gate is open)."""
        if self.blocked_until is None:
            return timedelta(0)
        return max(timedelta(0), self.blocked_until - (now or datetime.now(UTC)))
