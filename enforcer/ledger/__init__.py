"""The ledger: the durable record of accounts, blocklists, plans and every change made.

SQLModel tables behind an async store: SQLite (aiosqlite) in ``data_dir`` by
default, PostgreSQL (asyncpg) when ``ENFORCER_DATABASE_URL`` names one. The schema
is versioned by Alembic and upgraded by ``Ledger.open``. docs/ledger.md has the
tables, the upgrade procedure and the differences between the two databases.

Workflow code must not import this package (it defines SQLModel tables, which
Temporal's sandbox would define twice): activities use it, workflows carry IDs.
"""

from enforcer.ledger._engine import ledger_url
from enforcer.ledger._errors import (
    BatchConflict,
    InvalidLedgerValue,
    LedgerError,
    NotOnList,
    SchemaError,
    UnknownAccount,
    UnknownBatch,
    UnknownPlan,
)
from enforcer.ledger._ledger import Ledger
from enforcer.ledger._records import (
    TERMINAL_BATCH_STATUSES,
    TERMINAL_ITEM_STATUSES,
    AccountRecord,
    ActionItemRecord,
    BatchKind,
    BatchRecord,
    BatchStatus,
    BlocklistEntry,
    Gate,
    ItemStatus,
    PlanRecord,
    ProtectedEntry,
    ProtectedKind,
)
from enforcer.ledger._tokenstore import LedgerTokenStore

__all__ = [
    "TERMINAL_BATCH_STATUSES",
    "TERMINAL_ITEM_STATUSES",
    "AccountRecord",
    "ActionItemRecord",
    "BatchConflict",
    "BatchKind",
    "BatchRecord",
    "BatchStatus",
    "BlocklistEntry",
    "Gate",
    "InvalidLedgerValue",
    "ItemStatus",
    "Ledger",
    "LedgerError",
    "LedgerTokenStore",
    "NotOnList",
    "PlanRecord",
    "ProtectedEntry",
    "ProtectedKind",
    "SchemaError",
    "UnknownAccount",
    "UnknownBatch",
    "UnknownPlan",
    "ledger_url",
]
