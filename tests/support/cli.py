"""Fixture: the starter as a person runs it, its settings from the environment, the
in-process sandbox behind it and a fresh SQLite ledger in a temporary data directory."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from typer.testing import CliRunner, Result

import starter
from commands import _runtime
from enforcer.config import Settings
from enforcer.sandbox import Sandbox
from enforcer.session import open_ledger, token_store
from enforcer.spotify import TokenSet
from tests.support.contract import ContractRecorder
from tests.support.sandbox import sandbox_transport

API = "https://api.sandbox.test/v1"
ACCOUNTS = "https://accounts.sandbox.test"
CLIENT_ID = "5a4db0c0ffee4b1d8e5d5a4db0c0ffee"  # the sandbox's registered app


@dataclass
class Cli:
    """The starter, its settings from the environment, the sandbox behind it."""

    runner: CliRunner
    settings: Settings
    sandbox: Sandbox

    def __call__(self, *args: str) -> Result:
        return self.runner.invoke(starter.app, list(args))

    def ok(self, *args: str) -> str:
        result = self(*args)
        assert result.exit_code == 0, (result.stdout, result.stderr)
        return result.stdout

    def fails(self, *args: str) -> str:
        """The error message of a command that must fail cleanly; returns its stderr."""
        result = self(*args)
        assert result.exit_code == 1, (result.stdout, result.stderr)
        assert result.stderr.startswith("error: ")
        assert "Traceback" not in result.stderr + result.stdout
        return result.stderr

    def listed(self, what: str, *args: str) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = json.loads(self.ok(what, "list", "--format", "json", *args))
        return rows

    def log_in(self, user_id: str, display_name: str) -> TokenSet:
        """As if ``user_id`` had run ``starter.py login``: account and tokens in the ledger."""
        body = self.sandbox.issue_tokens(user_id)
        tokens = TokenSet(
            access_token=SecretStr(body["access_token"]),
            refresh_token=SecretStr(body["refresh_token"]),
            expires_at=datetime.now(UTC) + timedelta(seconds=body["expires_in"]),
            scope=body["scope"],
        )

        async def store() -> None:
            async with open_ledger(self.settings) as ledger:
                await ledger.upsert_account(user_id, display_name)
                await token_store(ledger, self.settings).save(user_id, tokens)

        asyncio.run(store())
        return tokens


@pytest.fixture
def cli(
    sandbox: Sandbox,
    contract_recorder: ContractRecorder,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Cli:
    environment = {
        "ENFORCER_SPOTIFY_CLIENT_ID": CLIENT_ID,
        "ENFORCER_API_BASE_URL": API,
        "ENFORCER_ACCOUNTS_BASE_URL": ACCOUNTS,
        "ENFORCER_DATA_DIR": str(tmp_path / "data"),
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    for name in ("ENFORCER_DATABASE_URL", "ENFORCER_TOKEN_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(
        _runtime, "spotify_transport", lambda: sandbox_transport(sandbox, contract_recorder)
    )
    monkeypatch.setenv("COLUMNS", "160")  # rich's table width, so rows stay one line each
    return Cli(CliRunner(), Settings(), sandbox)
