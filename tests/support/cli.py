"""Fixture: the starter as a person runs it, its settings from the environment, the
in-process sandbox behind it and a fresh SQLite ledger in a temporary data directory."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from typer.testing import CliRunner, Result

import starter
from commands import _runtime
from enforcer.config import Settings
from enforcer.models import BlockedArtist
from enforcer.sandbox import Sandbox
from enforcer.session import open_ledger, token_store
from enforcer.spotify import TokenSet
from tests.support.contract import ContractRecorder
from tests.support.sandbox import sandbox_transport
from worker import build_worker
from workflows.connection import configured_data_converter

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

    def shown_at(self, columns: int, *args: str, terminal: bool) -> str:
        """What a person sees of ``args`` ``columns`` characters wide, on a terminal
        (rich's ``TTY_COMPATIBLE``) or written to a pipe."""
        env = {"COLUMNS": str(columns), "TTY_COMPATIBLE": "1" if terminal else "0"}
        result = self.runner.invoke(starter.app, list(args), env=env)
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


BLOCKED_BAND = "arBlockedBand000000000"  # tests/fixtures/small_library.json


class WorkerThread:
    """A worker on its own event loop, as a separate worker process would be; it reaches
    the in-process sandbox, or with ``over_the_network`` the settings' addresses."""

    def __init__(
        self,
        address: str,
        task_queue: str,
        settings: Settings,
        sandbox: Sandbox,
        recorder: ContractRecorder,
        *,
        over_the_network: bool = False,
    ) -> None:
        self._over_the_network = over_the_network
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(
            target=asyncio.run,
            args=(self._serve(address, task_queue, settings, sandbox, recorder),),
            daemon=True,
        )

    async def _serve(
        self,
        address: str,
        task_queue: str,
        settings: Settings,
        sandbox: Sandbox,
        recorder: ContractRecorder,
    ) -> None:
        # The worker's converter comes from the environment, as the starter's does: a
        # test that sets ENFORCER_PAYLOAD_KEYS gets both encrypting with the same keys.
        client = await Client.connect(address, data_converter=configured_data_converter())
        async with open_ledger(settings) as ledger:
            transport = None if self._over_the_network else sandbox_transport(sandbox, recorder)
            async with build_worker(
                client, settings, ledger, task_queue=task_queue, transport=transport
            ):
                self._ready.set()
                await asyncio.to_thread(self._stop.wait)
                await _end_leftovers(client, task_queue)

    def __enter__(self) -> WorkerThread:
        self._thread.start()
        assert self._ready.wait(timeout=30), "the worker did not start"
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)


async def _end_leftovers(client: Client, task_queue: str) -> None:
    """Terminates what a test left running on its task queue. The dev server is shared
    by the whole session and workflow IDs are the account's (a planning's is
    ``plan/alice/...``): a later test's ``plan`` would join a planning left running on a
    queue no worker polls any more, and wait for ever."""
    query = f"TaskQueue = '{task_queue}' AND ExecutionStatus = 'Running'"
    async for execution in client.list_workflows(query):
        handle = client.get_workflow_handle(execution.id, run_id=execution.run_id)
        with contextlib.suppress(RPCError):
            await handle.terminate("the test that started it has ended")


def block(cli: Cli, *artists: BlockedArtist) -> None:
    async def add() -> None:
        async with open_ledger(cli.settings) as ledger:
            await ledger.add_to_blocklist("alice", list(artists), source="id")

    asyncio.run(add())


@pytest.fixture
def worker_cli(
    cli: Cli,
    temporal_env: WorkflowEnvironment,
    task_queue: str,
    contract_recorder: ContractRecorder,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Cli]:
    """The starter with Temporal behind it: alice logged in, and a worker (in a thread of
    its own) whose activities reach the in-process sandbox."""
    address = temporal_env.client.service_client.config.target_host
    monkeypatch.setenv("TEMPORAL_ADDRESS", address)
    monkeypatch.setenv("ENFORCER_TASK_QUEUE", task_queue)
    cli.log_in("alice", "Alice")
    with WorkerThread(address, task_queue, cli.settings, cli.sandbox, contract_recorder):
        yield cli


@pytest.fixture
def enforcer_cli(worker_cli: Cli) -> Cli:
    """``worker_cli`` with the blocked band on alice's blocklist, under a name of its own
    per test: each test gets its own plan ID, and so its own batch on the shared server."""
    block(
        worker_cli, BlockedArtist(artist_id=BLOCKED_BAND, name=f"Blocked Band {uuid.uuid4().hex}")
    )
    return worker_cli
