"""Accounts, their endpoint generations, and the token store in the accounts table."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import select

from enforcer.ledger import (
    InvalidLedgerValue,
    Ledger,
    LedgerTokenStore,
    UnknownAccount,
)
from enforcer.ledger._tables import ACCOUNTS
from enforcer.spotify import Generation
from enforcer.spotify.tokens import TokenSet
from enforcer.tokenstore import InvalidAccountId, NoStoredLogin, TokenCipher, UnreadableTokens

ACCESS = "BQD-access-token-text-that-must-never-be-seen"
REFRESH = "AQB-refresh-token-text-that-must-never-be-seen"


def tokens(access: str = ACCESS) -> TokenSet:
    return TokenSet(
        access_token=SecretStr(access),
        refresh_token=SecretStr(REFRESH),
        expires_at=datetime(2026, 7, 1, 12, 0, tzinfo=UTC),
        scope="user-library-read user-library-modify",
    )


async def test_an_account_is_created_then_renamed_keeping_its_creation_time(
    ledger: Ledger,
) -> None:
    await ledger.upsert_account("alice", None)
    first = await ledger.require_account("alice")
    await ledger.upsert_account("alice", "Alice A.")
    await ledger.upsert_account("bob", "Bob")

    renamed = await ledger.require_account("alice")
    assert renamed.display_name == "Alice A."
    assert renamed.created_at == first.created_at
    assert renamed.created_at.tzinfo == UTC
    assert [a.account_id for a in await ledger.accounts()] == ["alice", "bob"]


async def test_an_unknown_account_is_named_with_what_to_do(ledger: Ledger) -> None:
    with pytest.raises(UnknownAccount, match=r"no account 'carol': run `starter.py login`"):
        await ledger.require_account("carol")
    with pytest.raises(UnknownAccount, match="carol"):
        await ledger.generations("carol")


async def test_an_impossible_account_id_is_refused_and_nothing_is_stored(ledger: Ledger) -> None:
    with pytest.raises(InvalidLedgerValue, match="'two words' is not a Spotify user ID"):
        await ledger.upsert_account("two words", "x")
    assert await ledger.accounts() == []


async def test_generations_are_remembered_per_operation_and_merged(ledger: Ledger) -> None:
    await ledger.upsert_account("alice", "Alice")
    assert await ledger.generations("alice") == {}

    await ledger.save_generations("alice", {"library.remove": Generation.LEGACY})
    await ledger.save_generations(
        "alice", {"playlist.items.add": Generation.CURRENT, "library.remove": Generation.CURRENT}
    )

    assert await ledger.generations("alice") == {
        "library.remove": Generation.CURRENT,
        "playlist.items.add": Generation.CURRENT,
    }


async def test_a_bad_generation_is_refused_and_changes_nothing(ledger: Ledger) -> None:
    await ledger.upsert_account("alice", "Alice")
    await ledger.save_generations("alice", {"library.remove": Generation.LEGACY})
    bad = {"library.save": Generation.CURRENT, "library.remove": "future"}
    with pytest.raises(InvalidLedgerValue, match=r"'future' \(for 'library.remove'\)"):
        await ledger.save_generations("alice", bad)  # type: ignore[arg-type]
    assert await ledger.generations("alice") == {"library.remove": Generation.LEGACY}
    with pytest.raises(UnknownAccount, match="bob"):
        await ledger.save_generations("bob", {"library.remove": Generation.LEGACY})


async def test_the_token_store_gives_back_the_last_login(ledger: Ledger) -> None:
    store = LedgerTokenStore(ledger, TokenCipher(TokenCipher.generate_key()))
    await ledger.upsert_account("alice", "Alice")
    await store.save("alice", tokens("first"))
    await store.save("alice", tokens())
    await store.save("bob", tokens())

    loaded = await store.load("alice")
    assert loaded.access_token.get_secret_value() == ACCESS
    assert loaded.refresh_token.get_secret_value() == REFRESH
    assert loaded.expires_at == datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
    assert await store.accounts() == ["alice", "bob"]
    # Logging in keeps the name the account was given.
    assert (await ledger.require_account("alice")).display_name == "Alice"


async def test_the_token_store_refuses_what_the_file_store_refuses(ledger: Ledger) -> None:
    store = LedgerTokenStore(ledger, TokenCipher(TokenCipher.generate_key()))
    await ledger.upsert_account("carol", "Carol")  # an account, but never logged in
    with pytest.raises(NoStoredLogin, match="no login for account 'carol'"):
        await store.load("carol")
    with pytest.raises(NoStoredLogin, match="'dave'"):
        await store.load("dave")
    with pytest.raises(InvalidAccountId):
        await store.save("a b", tokens())
    assert await store.accounts() == []

    await store.save("carol", tokens())
    other_key = LedgerTokenStore(ledger, TokenCipher(TokenCipher.generate_key()))
    with pytest.raises(UnreadableTokens, match="wrong key"):
        await other_key.load("carol")


async def test_tokens_are_not_readable_in_the_database(
    ledger: Ledger, ledger_backend: str, ledger_database_url: str
) -> None:
    store = LedgerTokenStore(ledger, TokenCipher(TokenCipher.generate_key()))
    await store.save("alice", tokens())

    async with ledger._engine.connect() as connection:
        stored = await connection.scalar(select(ACCOUNTS.c.tokens))
    assert stored is not None
    assert ACCESS.encode() not in stored
    assert REFRESH.encode() not in stored
    assert ACCESS not in repr(store)
    assert ACCESS not in repr(ledger)
    if ledger_backend == "sqlite":
        await ledger.close()  # checkpoints the WAL into the file
        database = Path(ledger_database_url.removeprefix("sqlite+aiosqlite:///"))
        for path in database.parent.iterdir():
            content = path.read_bytes()
            assert ACCESS.encode() not in content
            assert REFRESH.encode() not in content
