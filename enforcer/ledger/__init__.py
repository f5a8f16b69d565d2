"""The ledger: the durable record of accounts, blocklists, plans and every change made.

SQLModel tables behind an async store: SQLite (aiosqlite) in ``data_dir`` by
default, PostgreSQL (asyncpg) when ``ENFORCER_DATABASE_URL`` names one. The schema
is versioned by Alembic and upgraded by ``Ledger.open``. docs/ledger.md has the
tables, the upgrade procedure and the differences between the two databases.

Workflow code must not import this package (it defines SQLModel tables, which
Temporal's sandbox would define twice): activities use it, workflows carry IDs.
"""

from enforcer.ledger._batches import ItemMark
from enforcer.ledger._chunks import ChunkEnd
from enforcer.ledger._engine import ledger_url
from enforcer.ledger._errors import (
    BatchConflict,
    ChunksNotAssigned,
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
    AccountRecord,
    ActionItemRecord,
    BatchRecord,
    BlocklistEntry,
    Gate,
    PlanRecord,
    ProtectedEntry,
    ProtectedKind,
)
from enforcer.ledger._tokenstore import LedgerTokenStore

# Defined with the domain's types, where workflows can use them without importing the
# tables; re-exported so that the ledger's callers need one import.
from enforcer.models import (
    TERMINAL_BATCH_STATUSES,
    TERMINAL_ITEM_STATUSES,
    BatchKind,
    BatchStatus,
    ItemStatus,
)

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
    "ChunkEnd",
    "ChunksNotAssigned",
    "Gate",
    "InvalidLedgerValue",
    "ItemMark",
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
