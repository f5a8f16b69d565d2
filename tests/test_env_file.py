"""Settings from a .env file: the starter, run in a directory holding one, uses what it
says; the environment wins over it; a bad value in it is named, with the file, in one
clean error; ENFORCER_ENV_FILE names another file, or none."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

import starter
import worker
from enforcer.config import PayloadSettings, Settings

CLIENT_ID = "0123456789abcdef0123456789abcdef"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A working directory of its own and no ENFORCER_* variable, not even the suite's
    ENFORCER_ENV_FILE (tests/conftest.py): the default .env is read, as for a person."""
    for name in list(os.environ):
        if name.startswith("ENFORCER_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def run(*args: str) -> Result:
    return CliRunner().invoke(starter.app, list(args))


def write_env(path: Path, **variables: str) -> None:
    lines = ["# settings for this machine", *(f"{k}={v}" for k, v in variables.items())]
    path.write_text("\n".join(lines) + "\n")


def test_the_command_uses_what_dotenv_says(tmp_path: Path) -> None:
    write_env(
        tmp_path / ".env",
        ENFORCER_SPOTIFY_CLIENT_ID=CLIENT_ID,
        ENFORCER_DATA_DIR="from-dotenv",
    )

    result = run("blocklist", "list")

    # No account yet: the command opened the ledger where the file says, then stopped.
    assert result.exit_code == 1, result.output
    assert "no account" in result.stderr
    assert (tmp_path / "from-dotenv" / "enforcer.db").is_file()
    assert not (tmp_path / ".data").exists()


def test_the_environment_wins_over_dotenv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_env(
        tmp_path / ".env",
        ENFORCER_SPOTIFY_CLIENT_ID=CLIENT_ID,
        ENFORCER_DATA_DIR="from-dotenv",
    )
    monkeypatch.setenv("ENFORCER_DATA_DIR", "from-environment")

    result = run("blocklist", "list")

    assert "no account" in result.stderr
    assert (tmp_path / "from-environment" / "enforcer.db").is_file()
    assert not (tmp_path / "from-dotenv").exists()


def test_a_bad_value_in_dotenv_is_named_with_the_file(tmp_path: Path) -> None:
    write_env(
        tmp_path / ".env",
        ENFORCER_SPOTIFY_CLIENT_ID=CLIENT_ID,
        ENFORCER_REDIRECT_PORT="80",
        ENFORCER_TOKEN_KEY="not-a-fernet-key",
    )

    result = run("blocklist", "list")

    assert result.exit_code == 1
    assert result.stderr.startswith("error: invalid settings:")
    assert "ENFORCER_REDIRECT_PORT='80': must be a port from 1024 to 65535 (set in .env)" in (
        result.stderr
    )
    assert "ENFORCER_TOKEN_KEY (value hidden)" in result.stderr
    assert "not-a-fernet-key" not in result.output + result.stderr
    assert "Traceback" not in result.output + result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_a_bad_value_from_the_environment_does_not_blame_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_env(tmp_path / ".env", ENFORCER_SPOTIFY_CLIENT_ID=CLIENT_ID)
    monkeypatch.setenv("ENFORCER_REDIRECT_PORT", "80")

    result = run("blocklist", "list")

    assert "ENFORCER_REDIRECT_PORT='80': must be a port from 1024 to 65535\n" in result.stderr


def test_one_file_holds_other_readers_variables(tmp_path: Path) -> None:
    """The payload keys, the task queue, Compose's passwords: the settings that do not
    take them leave them alone instead of refusing them as unknown."""
    write_env(
        tmp_path / ".env",
        ENFORCER_SPOTIFY_CLIENT_ID=CLIENT_ID,
        ENFORCER_TASK_QUEUE="elsewhere",
        ENFORCER_SPOTIFY_ACTIVITIES_PER_SECOND="5",
        ENFORCER_PAYLOAD_KEYS="",
        POSTGRES_PASSWORD="compose-only",
    )

    result = run("blocklist", "list")

    assert result.exit_code == 1
    assert result.stderr == "error: no account: run `starter.py login`\n"


def test_enforcer_env_file_names_another_file_or_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_env(tmp_path / ".env", ENFORCER_SPOTIFY_CLIENT_ID=CLIENT_ID, ENFORCER_DATA_DIR="dot")
    write_env(tmp_path / "prod.env", ENFORCER_SPOTIFY_CLIENT_ID=CLIENT_ID, ENFORCER_DATA_DIR="prod")

    monkeypatch.setenv("ENFORCER_ENV_FILE", "prod.env")
    run("blocklist", "list")
    assert (tmp_path / "prod" / "enforcer.db").is_file()
    assert not (tmp_path / "dot").exists()

    monkeypatch.setenv("ENFORCER_ENV_FILE", "")
    result = run("blocklist", "list")
    assert result.stderr.startswith("error: invalid settings:")
    assert "ENFORCER_SPOTIFY_CLIENT_ID is not set" in result.stderr


def test_the_example_file_filled_in_is_read_by_every_settings_class(tmp_path: Path) -> None:
    """`cp .env.example .env` and the client ID set: nothing else needs filling in."""
    example = (Path(__file__).resolve().parent.parent / ".env.example").read_text()
    (tmp_path / ".env").write_text(
        example.replace(
            "ENFORCER_SPOTIFY_CLIENT_ID=\n", f"ENFORCER_SPOTIFY_CLIENT_ID={CLIENT_ID}\n"
        )
    )

    settings = Settings()
    payloads = PayloadSettings()

    assert settings.spotify_client_id == CLIENT_ID
    assert settings.token_key is None  # empty: the key file, as without the line
    assert payloads.current_key is None  # empty: payloads stay plain


def test_temporal_the_task_queue_and_the_rate_cap_come_from_dotenv_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in list(os.environ):
        if name.startswith("TEMPORAL_"):
            monkeypatch.delenv(name)
    write_env(
        tmp_path / ".env",
        TEMPORAL_ADDRESS="127.0.0.1:1",
        ENFORCER_TASK_QUEUE="from-dotenv",
        ENFORCER_SPOTIFY_ACTIVITIES_PER_SECOND="3",
    )

    result = run("schedule", "list")

    assert result.exit_code == 1, result.output
    assert "127.0.0.1:1" in result.stderr  # the server the file names, unreachable
    arguments = worker.parse_arguments([])
    assert arguments.task_queue == "from-dotenv"
    assert arguments.spotify_activities_per_second == 3

    # The environment wins over the file.
    monkeypatch.setenv("TEMPORAL_ADDRESS", "127.0.0.1:2")
    monkeypatch.setenv("ENFORCER_TASK_QUEUE", "from-environment")
    assert "127.0.0.1:2" in run("schedule", "list").stderr
    assert worker.parse_arguments([]).task_queue == "from-environment"
