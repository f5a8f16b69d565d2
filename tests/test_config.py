"""Settings come from ENFORCER_* variables; a bad one is named with its value, a
secret one is named without."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from enforcer.config import REQUIRED_SCOPES, Settings, SettingsError

CLIENT_ID = "0123456789abcdef0123456789abcdef"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("ENFORCER_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def test_defaults_need_only_the_client_id(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENFORCER_SPOTIFY_CLIENT_ID", CLIENT_ID)

    settings = Settings()

    assert settings.spotify_client_id == CLIENT_ID
    assert settings.api_base_url == "https://api.spotify.com/v1"
    assert settings.accounts_base_url == "https://accounts.spotify.com"
    assert settings.data_dir == Path(".data")
    assert settings.token_key is None
    assert settings.token_key_file == Path(".data/token.key")
    assert settings.redirect_uri == "http://127.0.0.1:8888/callback"
    assert settings.scopes == REQUIRED_SCOPES
    assert len(settings.scopes) == 8
    assert settings.database_url is None
    assert settings.metrics_address is None


def test_every_variable_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    key = Fernet.generate_key().decode()
    monkeypatch.setenv("ENFORCER_SPOTIFY_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("ENFORCER_API_BASE_URL", "http://127.0.0.1:8787/v1/")
    monkeypatch.setenv("ENFORCER_ACCOUNTS_BASE_URL", "http://127.0.0.1:8787")
    monkeypatch.setenv("ENFORCER_DATA_DIR", "/var/lib/enforcer")
    monkeypatch.setenv("ENFORCER_TOKEN_KEY", key)
    monkeypatch.setenv("ENFORCER_REDIRECT_PORT", "9999")
    monkeypatch.setenv("ENFORCER_SCOPES", "user-library-read,user-library-modify user-read-email")
    monkeypatch.setenv("ENFORCER_DATABASE_URL", "postgresql://u:pw@db/enforcer")

    settings = Settings()

    assert settings.api_base_url == "http://127.0.0.1:8787/v1"  # trailing slash dropped
    assert settings.accounts_base_url == "http://127.0.0.1:8787"
    assert settings.data_dir == Path("/var/lib/enforcer")
    assert settings.token_key is not None
    assert settings.token_key.get_secret_value() == key
    assert settings.redirect_uri == "http://127.0.0.1:9999/callback"
    assert settings.scopes == ("user-library-read", "user-library-modify", "user-read-email")
    assert settings.database_url is not None
    assert settings.database_url.get_secret_value() == "postgresql://u:pw@db/enforcer"
    assert key not in repr(settings)
    assert "pw@db" not in repr(settings)


def test_a_missing_client_id_is_named() -> None:
    with pytest.raises(SettingsError, match="ENFORCER_SPOTIFY_CLIENT_ID is not set"):
        Settings()


@pytest.mark.parametrize(
    ("variable", "value", "why"),
    [
        ("ENFORCER_SPOTIFY_CLIENT_ID", "my client", "Client ID"),
        ("ENFORCER_API_BASE_URL", "api.spotify.com/v1", "absolute"),
        ("ENFORCER_API_BASE_URL", "http://api.spotify.com/v1", "plain http"),
        ("ENFORCER_ACCOUNTS_BASE_URL", "ftp://accounts.spotify.com", "absolute"),
        ("ENFORCER_REDIRECT_PORT", "eighty", "integer"),
        ("ENFORCER_REDIRECT_PORT", "80", "1024 to 65535"),
        ("ENFORCER_REDIRECT_PORT", "70000", "1024 to 65535"),
        ("ENFORCER_SCOPES", "user-library-read user-libary-modify", "user-libary-modify"),
        ("ENFORCER_METRICS_ADDRESS", "metrics:9464", "IP address"),
        ("ENFORCER_METRICS_ADDRESS", "127.0.0.1:0", "port from 1 to 65535"),
        ("ENFORCER_METRICS_ADDRESS", "127.0.0.1:70000", "port from 1 to 65535"),
        ("ENFORCER_METRICS_ADDRESS", "127.0.0.1:", "port from 1 to 65535"),
        ("ENFORCER_METRICS_ADDRESS", "::1:9464", "brackets"),
    ],
)
def test_a_bad_value_is_named_with_its_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, why: str
) -> None:
    monkeypatch.setenv("ENFORCER_SPOTIFY_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv(variable, value)

    with pytest.raises(SettingsError) as raised:
        Settings()

    message = str(raised.value)
    assert f"{variable}={value!r}" in message
    assert why in message


@pytest.mark.parametrize(
    ("value", "address"),
    [
        ("9464", "127.0.0.1:9464"),
        (" 127.0.0.1:9464 ", "127.0.0.1:9464"),
        ("localhost:9464", "127.0.0.1:9464"),
        ("0.0.0.0:9464", "0.0.0.0:9464"),
        ("[::1]:9464", "[::1]:9464"),
        ("", None),
    ],
)
def test_the_metrics_address_is_private_unless_a_host_is_named(
    monkeypatch: pytest.MonkeyPatch, value: str, address: str | None
) -> None:
    monkeypatch.setenv("ENFORCER_SPOTIFY_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("ENFORCER_METRICS_ADDRESS", value)

    assert Settings().metrics_address == address


def test_a_data_dir_that_is_a_file_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "afile").write_text("")
    monkeypatch.setenv("ENFORCER_SPOTIFY_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("ENFORCER_DATA_DIR", str(tmp_path / "afile"))

    with pytest.raises(SettingsError, match=r"ENFORCER_DATA_DIR=.*not a directory"):
        Settings()


def test_a_bad_token_key_is_named_but_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    not_a_key = "hunter2-my-very-secret-passphrase"
    monkeypatch.setenv("ENFORCER_SPOTIFY_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("ENFORCER_TOKEN_KEY", not_a_key)

    with pytest.raises(SettingsError) as raised:
        Settings()

    assert "ENFORCER_TOKEN_KEY (value hidden): must be a Fernet key" in str(raised.value)
    assert not_a_key not in str(raised.value)
    assert raised.value.__context__ is None  # pydantic's error, which quotes it, is gone
    assert raised.value.__cause__ is None


def test_several_problems_are_reported_together(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENFORCER_REDIRECT_PORT", "0")
    monkeypatch.setenv("ENFORCER_SCOPES", "")

    with pytest.raises(SettingsError) as raised:
        Settings()

    assert [p.split(" ")[0].split("=")[0] for p in raised.value.problems] == [
        "ENFORCER_SPOTIFY_CLIENT_ID",
        "ENFORCER_REDIRECT_PORT",
        "ENFORCER_SCOPES",
    ]


def test_an_empty_token_key_means_the_key_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENFORCER_SPOTIFY_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("ENFORCER_TOKEN_KEY", "")

    assert Settings().token_key is None


def test_login_asks_for_exactly_the_scopes_the_reference_lists() -> None:
    # shared/reference/spotify-web-api.md section 5: the client's endpoints need these
    # eight and nothing more, so a login asks for no scope it does not use.
    assert set(REQUIRED_SCOPES) == {
        "user-library-read",
        "user-library-modify",
        "playlist-read-private",
        "playlist-read-collaborative",
        "playlist-modify-public",
        "playlist-modify-private",
        "user-follow-read",
        "user-follow-modify",
    }
