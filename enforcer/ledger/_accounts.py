"""Accounts: who logged in, their encrypted tokens, the endpoint generations they need."""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import select, update

from enforcer.ledger._base import StoreBase, account_id_of, upsert_insert
from enforcer.ledger._columns import utc_now
from enforcer.ledger._engine import reading, writing
from enforcer.ledger._errors import InvalidLedgerValue, UnknownAccount
from enforcer.ledger._records import AccountRecord
from enforcer.ledger._tables import ACCOUNTS
from enforcer.spotify import Generation

# What an AccountRecord holds: never the tokens, nor the generations.
_RECORD_COLUMNS = (ACCOUNTS.c.account_id, ACCOUNTS.c.display_name, ACCOUNTS.c.created_at)


class AccountStore(StoreBase):
    async def upsert_account(self, account_id: str, display_name: str | None) -> None:
        """Create the account, or update its display name."""
        account_id = account_id_of(account_id)
        if display_name is not None and not isinstance(display_name, str):
            raise InvalidLedgerValue(f"display name must be text, not {display_name!r}")
        await self._upsert(account_id, {"display_name": display_name})

    async def accounts(self) -> list[AccountRecord]:
        """Every account, by ID."""
        async with reading(self._engine) as connection:
            rows = await connection.execute(
                select(*_RECORD_COLUMNS).order_by(ACCOUNTS.c.account_id)
            )
            return [AccountRecord.model_validate(row._asdict()) for row in rows]

    async def require_account(self, account_id: str) -> AccountRecord:
        async with reading(self._engine) as connection:
            row = (
                await connection.execute(
                    select(*_RECORD_COLUMNS).where(ACCOUNTS.c.account_id == account_id)
                )
            ).first()
        if row is None:
            raise UnknownAccount(account_id)
        return AccountRecord.model_validate(row._asdict())

    async def generations(self, account_id: str) -> dict[str, Generation]:
        """The endpoint generation each operation needed last time, for this account."""
        async with reading(self._engine) as connection:
            stored = await connection.scalar(
                select(ACCOUNTS.c.generations).where(ACCOUNTS.c.account_id == account_id)
            )
        if stored is None:
            raise UnknownAccount(account_id)
        return {operation: Generation(value) for operation, value in stored.items()}

    async def save_generations(
        self, account_id: str, generations: Mapping[str, Generation]
    ) -> None:
        """Remember these operations' generations; other operations keep theirs, so
        two workers that each learned something lose nothing."""
        learned: dict[str, str] = {}
        for operation, value in generations.items():
            if not isinstance(operation, str) or not operation:
                raise InvalidLedgerValue(f"{operation!r} is not an operation name")
            try:
                learned[operation] = Generation(value).value
            except ValueError:
                raise InvalidLedgerValue(
                    f"{value!r} (for {operation!r}) is not an endpoint generation: "
                    f"expected one of {', '.join(g.value for g in Generation)}"
                ) from None
        async with writing(self._engine) as connection:
            stored = await connection.scalar(
                select(ACCOUNTS.c.generations)
                .where(ACCOUNTS.c.account_id == account_id)
                .with_for_update()
            )
            if stored is None:
                raise UnknownAccount(account_id)
            await connection.execute(
                update(ACCOUNTS)
                .where(ACCOUNTS.c.account_id == account_id)
                .values(generations={**stored, **learned}, updated_at=utc_now())
            )

    # For LedgerTokenStore: ciphertext only, the ledger never sees a token.

    async def _save_login(self, account_id: str, ciphertext: bytes) -> None:
        account_id = account_id_of(account_id)
        await self._upsert(account_id, {"tokens": ciphertext})

    async def _load_login(self, account_id: str) -> bytes | None:
        async with reading(self._engine) as connection:
            ciphertext: bytes | None = await connection.scalar(
                select(ACCOUNTS.c.tokens).where(ACCOUNTS.c.account_id == account_id)
            )
        return ciphertext

    async def _accounts_with_login(self) -> list[str]:
        async with reading(self._engine) as connection:
            found = await connection.scalars(
                select(ACCOUNTS.c.account_id)
                .where(ACCOUNTS.c.tokens.is_not(None))
                .order_by(ACCOUNTS.c.account_id)
            )
            return list(found)

    async def _upsert(self, account_id: str, columns: Mapping[str, object]) -> None:
        """Create the account with ``columns``, or set just those on the one there is."""
        now = utc_now()
        async with writing(self._engine) as connection:
            insert = upsert_insert(connection, ACCOUNTS).values(
                account_id=account_id,
                generations={},
                created_at=now,
                updated_at=now,
                **columns,
            )
            await connection.execute(
                insert.on_conflict_do_update(
                    index_elements=[ACCOUNTS.c.account_id],
                    set_={**columns, "updated_at": now},
                )
            )
