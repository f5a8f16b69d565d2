"""Tokens at rest: encrypted in the ledger, readable only with a key only the owner reads.

The cipher and the key handling live in ``enforcer.tokenstore``; the records live in
the ledger's accounts table (``LedgerTokenStore``), reached as the service does, through
``enforcer.session`` on a real SQLite ledger in a temporary data directory.
"""

from __future__ import annotations

import stat
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr

from enforcer.config import Settings
from enforcer.ledger import Ledger
from enforcer.session import open_ledger, token_store
from enforcer.spotify.errors import LoginRequired
from enforcer.spotify.tokens import TokenSet
from enforcer.tokenstore import (
    InvalidAccountId,
    NoStoredLogin,
    TokenCipher,
    TokenKeyError,
    UnreadableTokens,
    check_account_id,
    load_or_create_key_file,
    token_cipher,
)

ACCESS = "BQD-access-token-text-that-must-never-be-seen"
REFRESH = "AQB-refresh-token-text-that-must-never-be-seen"


def tokens(access: str = ACCESS, refresh: str = REFRESH) -> TokenSet:
    return TokenSet(
        access_token=SecretStr(access),
        refresh_token=SecretStr(refresh),
        expires_at=datetime(2026, 7, 1, 12, 0, tzinfo=UTC),
        scope="user-library-read user-library-modify",
    )


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def every_byte_under(directory: Path) -> bytes:
    """The database file and its WAL and shared-memory files, and anything else there."""
    return b"".join(path.read_bytes() for path in sorted(directory.rglob("*")) if path.is_file())


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(spotify_client_id="client", data_dir=tmp_path / "data")


@pytest.fixture
async def ledger(settings: Settings) -> AsyncIterator[Ledger]:
    async with open_ledger(settings) as opened:
        yield opened


@pytest.fixture
def cipher() -> TokenCipher:
    return TokenCipher(TokenCipher.generate_key())


# --- the cipher ---------------------------------------------------------------------


def test_a_record_round_trips_and_holds_no_token_text(cipher: TokenCipher) -> None:
    record = cipher.encrypt("alice", tokens())

    assert ACCESS.encode() not in record
    assert REFRESH.encode() not in record
    assert cipher.decrypt("alice", record) == tokens()


def test_expiry_survives_the_round_trip_exactly(cipher: TokenCipher) -> None:
    moment = datetime.now(UTC) + timedelta(seconds=3599, microseconds=123456)
    later = tokens().model_copy(update={"expires_at": moment})

    assert cipher.decrypt("alice", cipher.encrypt("alice", later)).expires_at == moment


def test_another_key_cannot_read_a_record(cipher: TokenCipher) -> None:
    other = TokenCipher(TokenCipher.generate_key())

    with pytest.raises(UnreadableTokens, match=r"'alice' cannot be read.*wrong key") as raised:
        other.decrypt("alice", cipher.encrypt("alice", tokens()))
    assert isinstance(raised.value, LoginRequired)  # the class the service catches


def test_a_record_moved_to_another_account_is_refused(cipher: TokenCipher) -> None:
    with pytest.raises(UnreadableTokens, match="belongs to 'alice'"):
        cipher.decrypt("mallory", cipher.encrypt("alice", tokens()))


def test_a_tampered_record_is_refused(cipher: TokenCipher) -> None:
    record = bytearray(cipher.encrypt("alice", tokens()))
    record[40] ^= 1

    with pytest.raises(UnreadableTokens):
        cipher.decrypt("alice", bytes(record))


def test_nothing_secret_in_reprs() -> None:
    key = TokenCipher.generate_key()

    assert key.get_secret_value() not in repr(TokenCipher(key))
    assert ACCESS not in repr(tokens())
    assert REFRESH not in repr(tokens())
    assert ACCESS not in str(tokens().model_dump())


@pytest.mark.parametrize("bad", ["", "two words", "tab\there", "x" * 257, "new\nline", None])
def test_a_bad_account_id_is_named(bad: object) -> None:
    with pytest.raises(InvalidAccountId, match="is not a Spotify user ID"):
        check_account_id(bad)


# --- the key ------------------------------------------------------------------------


def test_the_key_file_is_created_owner_only_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "data" / "token.key"

    first = load_or_create_key_file(path)
    second = load_or_create_key_file(path)

    assert mode(path) == 0o600
    assert mode(path.parent) == 0o700
    assert first.get_secret_value() == second.get_secret_value()
    assert path.read_text() == first.get_secret_value()


@pytest.mark.parametrize("loose", [0o644, 0o640, 0o604, 0o666])
def test_a_key_file_others_can_read_is_refused(tmp_path: Path, loose: int) -> None:
    path = tmp_path / "token.key"
    load_or_create_key_file(path)
    path.chmod(loose)

    with pytest.raises(TokenKeyError, match=rf"{path} has mode {loose:04o}.*chmod 600"):
        load_or_create_key_file(path)
    assert mode(path) == loose  # refused, not silently fixed


def test_a_key_file_without_a_key_is_refused_without_showing_it(tmp_path: Path) -> None:
    path = tmp_path / "token.key"
    path.write_text("my secret passphrase")
    path.chmod(0o600)

    with pytest.raises(TokenKeyError, match="must be a Fernet key") as raised:
        load_or_create_key_file(path)
    assert "passphrase" not in str(raised.value)


def test_the_key_from_the_environment_wins_and_no_key_file_is_made(tmp_path: Path) -> None:
    key = TokenCipher.generate_key()
    settings = Settings(spotify_client_id="client", data_dir=tmp_path, token_key=key)
    record = token_cipher(settings).encrypt("alice", tokens())

    assert not settings.token_key_file.exists()
    assert TokenCipher(key).decrypt("alice", record) == tokens()


# --- the records, in the ledger -----------------------------------------------------


async def test_saved_tokens_load_back_equal_and_the_database_holds_no_token_text(
    settings: Settings, ledger: Ledger
) -> None:
    store = token_store(ledger, settings)

    await store.save("alice", tokens())

    assert await store.load("alice") == tokens()
    assert await store.accounts() == ["alice"]
    on_disk = every_byte_under(settings.data_dir)
    assert ACCESS.encode() not in on_disk
    assert REFRESH.encode() not in on_disk
    assert mode(settings.token_key_file) == 0o600


async def test_saving_again_replaces_the_login(settings: Settings, ledger: Ledger) -> None:
    store = token_store(ledger, settings)
    await store.save("alice", tokens())
    await store.save("alice", tokens(access="newer-access"))

    assert (await store.load("alice")).access_token.get_secret_value() == "newer-access"


async def test_an_account_without_a_login_says_how_to_get_one(
    settings: Settings, ledger: Ledger
) -> None:
    await ledger.upsert_account("carol", "Carol")  # known, but never logged in

    with pytest.raises(
        NoStoredLogin, match=r"no login for account 'carol': run `starter\.py login`"
    ):
        await token_store(ledger, settings).load("carol")
    with pytest.raises(NoStoredLogin):
        await token_store(ledger, settings).load("dave")


async def test_the_login_survives_reopening_with_the_key_file(settings: Settings) -> None:
    async with open_ledger(settings) as ledger:
        await token_store(ledger, settings).save("alice", tokens())

    async with open_ledger(settings) as reopened:
        assert await token_store(reopened, settings).load("alice") == tokens()


async def test_another_key_cannot_read_the_stored_login(settings: Settings, ledger: Ledger) -> None:
    await token_store(ledger, settings).save("alice", tokens())
    other_key = settings.model_copy(update={"token_key": TokenCipher.generate_key()})

    with pytest.raises(UnreadableTokens, match="wrong key"):
        await token_store(ledger, other_key).load("alice")
