"""Tokens at rest: encrypted, one 0600 record per account, a key only the owner reads."""

from __future__ import annotations

import asyncio
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr

from enforcer.config import Settings
from enforcer.spotify.errors import LoginRequired
from enforcer.spotify.tokens import TokenSet
from enforcer.tokenstore import (
    FileTokenStore,
    InvalidAccountId,
    NoStoredLogin,
    TokenCipher,
    TokenKeyError,
    UnreadableTokens,
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


@pytest.fixture
def store(tmp_path: Path) -> FileTokenStore:
    return FileTokenStore(tmp_path / "tokens", TokenCipher(TokenCipher.generate_key()))


async def test_saved_tokens_load_back_equal(store: FileTokenStore) -> None:
    await store.save("alice", tokens())

    loaded = await store.load("alice")

    assert loaded == tokens()
    assert loaded.expires_at.tzinfo is not None


async def test_the_record_on_disk_holds_no_token_text_and_is_owner_only(
    store: FileTokenStore,
) -> None:
    await store.save("alice", tokens())

    record = store.path_of("alice")
    assert ACCESS.encode() not in record.read_bytes()
    assert REFRESH.encode() not in record.read_bytes()
    assert mode(record) == 0o600
    assert mode(store.directory) == 0o700
    assert [p.name for p in store.directory.iterdir()] == [record.name]  # no leftovers


async def test_saving_again_replaces_the_login(store: FileTokenStore) -> None:
    await store.save("alice", tokens())
    await store.save("alice", tokens(access="newer-access"))

    assert (await store.load("alice")).access_token.get_secret_value() == "newer-access"


async def test_accounts_lists_every_stored_login(store: FileTokenStore) -> None:
    assert await store.accounts() == []

    await asyncio.gather(
        store.save("bob", tokens()),
        store.save("alice", tokens()),
        store.save("odd/name.with?chars%", tokens()),
    )

    assert await store.accounts() == ["alice", "bob", "odd/name.with?chars%"]
    assert await store.load("odd/name.with?chars%") == tokens()
    assert {p.parent for p in store.directory.iterdir()} == {store.directory}


async def test_an_account_without_a_login_says_how_to_get_one(store: FileTokenStore) -> None:
    message = r"no login for account 'carol': run `starter\.py login`"
    with pytest.raises(NoStoredLogin, match=message):
        await store.load("carol")
    with pytest.raises(LoginRequired):  # the class the rest of the service catches
        await store.load("carol")


@pytest.mark.parametrize("bad", ["", "two words", "tab\there", "x" * 257, "new\nline"])
async def test_a_bad_account_id_is_refused_and_nothing_written(
    store: FileTokenStore, bad: str
) -> None:
    with pytest.raises(InvalidAccountId, match="is not a Spotify user ID"):
        await store.save(bad, tokens())

    assert not store.directory.exists()


async def test_another_key_cannot_read_the_record(store: FileTokenStore) -> None:
    await store.save("alice", tokens())
    other = FileTokenStore(store.directory, TokenCipher(TokenCipher.generate_key()))

    with pytest.raises(UnreadableTokens, match=r"'alice' cannot be read.*wrong key") as raised:
        await other.load("alice")
    assert isinstance(raised.value, LoginRequired)


async def test_a_record_moved_to_another_account_is_refused(store: FileTokenStore) -> None:
    await store.save("alice", tokens())
    store.path_of("alice").rename(store.path_of("mallory"))

    with pytest.raises(UnreadableTokens, match="belongs to 'alice'"):
        await store.load("mallory")


async def test_a_tampered_record_is_refused(store: FileTokenStore) -> None:
    await store.save("alice", tokens())
    record = store.path_of("alice")
    data = bytearray(record.read_bytes())
    data[40] ^= 1
    record.write_bytes(bytes(data))

    with pytest.raises(UnreadableTokens):
        await store.load("alice")


def test_nothing_secret_in_reprs(store: FileTokenStore) -> None:
    key = TokenCipher.generate_key()

    assert key.get_secret_value() not in repr(TokenCipher(key))
    assert ACCESS not in repr(tokens())
    assert REFRESH not in repr(tokens())
    assert ACCESS not in str(tokens().model_dump())


def test_the_key_file_is_created_owner_only_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "data" / "token.key"

    first = load_or_create_key_file(path)
    second = load_or_create_key_file(path)

    assert mode(path) == 0o600
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


async def test_the_key_from_the_environment_wins_and_no_key_file_is_made(
    tmp_path: Path,
) -> None:
    key = TokenCipher.generate_key()
    settings = Settings(spotify_client_id="client", data_dir=tmp_path, token_key=key)
    store = FileTokenStore(tmp_path, token_cipher(settings))

    await store.save("alice", tokens())

    assert not settings.token_key_file.exists()
    assert await FileTokenStore(tmp_path, TokenCipher(key)).load("alice") == tokens()


async def test_the_store_from_settings_uses_the_key_file(tmp_path: Path) -> None:
    settings = Settings(spotify_client_id="client", data_dir=tmp_path / "data")

    await FileTokenStore.from_settings(settings).save("alice", tokens())
    reopened = FileTokenStore.from_settings(settings)

    assert mode(settings.token_key_file) == 0o600
    assert await reopened.load("alice") == tokens()
    assert await reopened.accounts() == ["alice"]


async def test_expiry_survives_the_round_trip_exactly(store: FileTokenStore) -> None:
    moment = datetime.now(UTC) + timedelta(seconds=3599, microseconds=123456)
    await store.save("alice", tokens().model_copy(update={"expires_at": moment}))

    assert (await store.load("alice")).expires_at == moment
