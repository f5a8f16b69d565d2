"""What the ledger refuses, each error naming the value it could not accept."""

from __future__ import annotations

from collections.abc import Iterable


class LedgerError(Exception):
    """Base of every error the ledger raises on purpose."""


class InvalidLedgerValue(LedgerError, ValueError):
    """A value given to the ledger cannot be stored: nothing was changed."""


class UnknownAccount(LedgerError, LookupError):
    def __init__(self, account_id: str) -> None:
        self.account_id = account_id
        super().__init__(f"no account {account_id!r}: run `starter.py login`")


class UnknownPlan(LedgerError, LookupError):
    def __init__(self, plan_id: str) -> None:
        self.plan_id = plan_id
        super().__init__(f"no plan {plan_id!r}: run `starter.py plan` to make one")


class UnknownBatch(LedgerError, LookupError):
    def __init__(self, batch_id: str) -> None:
        self.batch_id = batch_id
        super().__init__(f"no batch {batch_id!r}")


class BatchConflict(LedgerError):
    """A batch ID is already taken by a batch of another account, plan or kind."""


class ChunksNotAssigned(LedgerError):
    """The batch's items have not been cut into chunks yet: ``assign_chunks`` first."""

    def __init__(self, batch_id: str) -> None:
        self.batch_id = batch_id
        super().__init__(
            f"batch {batch_id!r} has not been cut into chunks yet: call assign_chunks first"
        )


class NotOnList(LedgerError, LookupError):
    """Some of the entries asked to be removed (or updated) are not there: nothing changed."""

    def __init__(self, what: str, missing: Iterable[str]) -> None:
        self.missing = tuple(missing)
        listed = ", ".join(repr(m) for m in self.missing)
        super().__init__(f"not on the {what}: {listed}; nothing was changed")


class SchemaError(LedgerError):
    """The database cannot be opened by this version of the program."""
