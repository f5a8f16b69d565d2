"""`make up` / `make down`, the README's real-use path, with a served sandbox in
Spotify's place: the settings in an env file (as a person's .env), `make up` starts the
Temporal dev server with its Web UI and the worker, a login (tokens stored as
`starter.py login` stores them), then `starter.py enforce --plan-now --watch --yes` run
as a person runs it, whose removals the sandbox sees. A second `make up` starts no second
copy; `make down` stops both and removes their pid files; `make down` again says that
nothing runs, exit 0. Real processes throughout, on free ports and in a temporary state
directory, so that a developer's `make up` or `make demo` is never touched."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr
from typer.testing import CliRunner, Result

import starter
from enforcer.config import Settings
from enforcer.sandbox import Sandbox
from enforcer.session import open_ledger, token_store
from enforcer.spotify import TokenSet
from scripts import worker_health
from tests.support.cli import BLOCKED_BAND, CLIENT_ID
from tests.support.sandbox import MAIN_USER, SMALL_LIBRARY, served_on_loopback
from tests.support.temporal import free_port

ROOT = Path(__file__).resolve().parent.parent


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by init) is gone for every purpose here.
    return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"


class Up:
    """`make up` / `make down` with a state directory and ports of the test's own."""

    def __init__(self, state: Path, env_file: Path) -> None:
        self.state = state
        self.temporal_port = free_port()
        self.ui_port = free_port()
        # The person's shell: nothing ENFORCER_ or TEMPORAL_ but the env file's name.
        self.environment = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith(("ENFORCER_", "TEMPORAL_"))
        }
        self.environment["ENFORCER_ENV_FILE"] = str(env_file)

    def make(self, target: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # noqa: S603 - our own Makefile
            [  # noqa: S607 - make from PATH, as a person runs it
                "make",
                "--no-print-directory",
                "-C",
                str(ROOT),
                target,
                f"STATE_DIR={self.state}",
                f"TEMPORAL_PORT={self.temporal_port}",
                f"TEMPORAL_UI_PORT={self.ui_port}",
            ],
            env=self.environment,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def starter(self, monkeypatch: pytest.MonkeyPatch, *args: str) -> Result:
        """The starter with the person's settings (in-process: a second interpreter would
        cost seconds of imports on a loaded machine, and prove nothing more)."""
        monkeypatch.setenv("TEMPORAL_ADDRESS", f"127.0.0.1:{self.temporal_port}")
        monkeypatch.setenv("COLUMNS", "160")
        return CliRunner().invoke(starter.app, list(args))

    def pid(self, name: str) -> int:
        return int((self.state / f"{name}.pid").read_text())


@pytest.fixture
def served() -> Iterator[tuple[Sandbox, str]]:
    sandbox = Sandbox()
    sandbox.load_fixture(SMALL_LIBRARY)
    with served_on_loopback(sandbox.app) as base_url:
        yield sandbox, base_url


@pytest.fixture
def up(
    tmp_path: Path, served: tuple[Sandbox, str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[Up]:
    _, base_url = served
    env_file = tmp_path / "settings.env"
    env_file.write_text(
        f"ENFORCER_SPOTIFY_CLIENT_ID={CLIENT_ID}\n"
        f"ENFORCER_API_BASE_URL={base_url}/v1\n"
        f"ENFORCER_ACCOUNTS_BASE_URL={base_url}\n"
        f"ENFORCER_DATA_DIR={tmp_path / 'data'}\n"
    )
    for name in list(os.environ):
        if name.startswith("ENFORCER_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("ENFORCER_ENV_FILE", str(env_file))
    running = Up(tmp_path / "state", env_file)
    try:
        yield running
    finally:
        running.make("down")


def log_in(user_id: str, sandbox: Sandbox) -> None:
    """What `starter.py login` leaves behind: the account and its tokens in the ledger."""
    body = sandbox.issue_tokens(user_id)
    tokens = TokenSet(
        access_token=SecretStr(body["access_token"]),
        refresh_token=SecretStr(body["refresh_token"]),
        expires_at=datetime.now(UTC) + timedelta(seconds=body["expires_in"]),
        scope=body["scope"],
    )

    async def store() -> None:
        settings = Settings()  # from the env file, as the worker's
        async with open_ledger(settings) as ledger:
            await ledger.upsert_account(user_id, "Alice")
            await token_store(ledger, settings).save(user_id, tokens)

    asyncio.run(store())


def liked_artists(sandbox: Sandbox) -> set[str]:
    library = sandbox.dump_user(MAIN_USER)
    tracks = {track["id"]: track for track in sandbox.dump()["catalog"]["tracks"]}
    return {
        artist
        for entry in library["liked_songs"]
        for artist in tracks[entry["track_id"]]["artist_ids"]
    }


def test_make_up_runs_the_real_use_path_and_make_down_stops_it(
    up: Up, served: tuple[Sandbox, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sandbox, _ = served
    assert BLOCKED_BAND in liked_artists(sandbox)

    started = up.make("up")

    assert started.returncode == 0, started.stdout + started.stderr
    assert "worker: polling task queue blocklist-enforcer" in started.stdout
    temporal, worker = up.pid("temporal"), up.pid("worker")
    assert alive(temporal)
    assert alive(worker)
    with urllib.request.urlopen(f"http://127.0.0.1:{up.ui_port}", timeout=5) as page:
        assert page.status == 200  # the Web UI
    assert (up.state / "temporal.db").is_file()
    # The compose's worker healthcheck sees this host's worker on the queue, and no
    # worker on a queue nobody polls.
    monkeypatch.setenv("TEMPORAL_ADDRESS", f"127.0.0.1:{up.temporal_port}")
    assert worker_health.main() == 0
    monkeypatch.setenv("ENFORCER_TASK_QUEUE", "nobody-polls-this")
    assert worker_health.main() == 1
    monkeypatch.delenv("ENFORCER_TASK_QUEUE")

    again = up.make("up")
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"temporal: running (pid {temporal}), reused" in again.stdout
    assert f"worker: running (pid {worker}), reused" in again.stdout
    assert (up.pid("temporal"), up.pid("worker")) == (temporal, worker)

    log_in(MAIN_USER, sandbox)
    added = up.starter(monkeypatch, "blocklist", "add", BLOCKED_BAND)
    assert added.exit_code == 0, added.stdout + added.stderr
    enforced = up.starter(monkeypatch, "enforce", "--plan-now", "--watch", "--yes")
    assert enforced.exit_code == 0, enforced.stdout + enforced.stderr
    assert "completed" in enforced.stdout
    assert BLOCKED_BAND not in liked_artists(sandbox)  # the worker of `make up` did it
    assert sandbox.counters.violations == 0

    stopped = up.make("down")

    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert f"worker: stopped (pid {worker})" in stopped.stdout
    assert f"temporal: stopped (pid {temporal})" in stopped.stdout
    assert not alive(worker)
    assert not alive(temporal)
    assert not list(up.state.glob("*.pid"))

    idle = up.make("down")
    assert idle.returncode == 0, idle.stdout + idle.stderr
    assert "nothing to stop" in idle.stdout


def test_make_up_refuses_a_port_taken_by_another_server(up: Up) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", up.temporal_port))
        taken.listen()

        refused = up.make("up")

    assert refused.returncode != 0
    assert f"something else listens on 127.0.0.1:{up.temporal_port}" in refused.stderr
    assert not list(up.state.glob("*.pid"))


def documented_sqlite_backup() -> str:
    """The SQLite backup command of docs/operations.md, as a person would paste it."""
    text = (ROOT / "docs" / "operations.md").read_text()
    section = text[text.index("**SQLite**") :]
    block = section[section.index("```sh\n") + len("```sh\n") :]
    return block[: block.index("```")]


def run_documented_backup() -> subprocess.CompletedProcess[str]:
    command = documented_sqlite_backup().replace(".venv/bin/python", sys.executable)
    return subprocess.run(  # noqa: S603 - the documented command, this interpreter
        ["/bin/bash", "-c", command], capture_output=True, text=True, timeout=60, check=False
    )


def test_the_documented_sqlite_backup_copies_a_ledger_in_use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The backup, taken while a connection holds the ledger open in WAL mode (as a
    running worker does), holds the last committed writes, and opens as a ledger."""
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("ENFORCER_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("ENFORCER_SPOTIFY_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("ENFORCER_ENV_FILE", "")

    async def write_then_back_up() -> None:
        async with open_ledger(Settings()) as ledger:
            await ledger.upsert_account(MAIN_USER, "Alice")
            backup = await asyncio.to_thread(run_documented_backup)
            assert backup.returncode == 0, backup.stderr

    asyncio.run(write_then_back_up())

    async def read_backup() -> list[str]:
        (tmp_path / "restored").mkdir()
        (tmp_path / "enforcer-backup.db").rename(tmp_path / "restored" / "enforcer.db")
        monkeypatch.setenv("ENFORCER_DATA_DIR", str(tmp_path / "restored"))
        async with open_ledger(Settings()) as ledger:
            return [account.account_id for account in await ledger.accounts()]

    assert asyncio.run(read_backup()) == [MAIN_USER]
