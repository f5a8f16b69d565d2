"""Column types that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import DateTime
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


def utc_now() -> datetime:
    return datetime.now(UTC)


def require_aware(value: datetime, what: str) -> datetime:
    """``value`` in UTC; a naive datetime is refused, since its zone is anyone's guess."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(
            f"{what}={value.isoformat()!r} has no time zone: the ledger stores aware times only"
        )
    return value.astimezone(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out.

    SQLite keeps no zone, so every value is stored converted to UTC and read back
    with UTC attached; PostgreSQL's ``timestamptz`` is read back converted to UTC.
    Stored as UTC, SQLite's text form also compares in time order.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return require_aware(value, "datetime")

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
