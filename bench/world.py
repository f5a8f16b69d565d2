"""The real processes of a run on 127.0.0.1: what `make chaos` and `make bench` share.

A Temporal dev server (the venv's ``temporal`` binary, on a SQLite file), ``worker.py``
and ``starter.py sandbox``, each started by ``Children`` in a session of its own, so
that a signal to the terminal does not reach it and ending it ends whatever it started;
``Children.stop_all`` ends every one still running (SIGTERM, then SIGKILL). Nothing
listens beyond 127.0.0.1. ``SandboxAdmin`` is the sandbox's admin API (libraries,
logins, counters, settings, faults) for one user. Every wait is bounded in time.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import httpx
from cryptography.fernet import Fernet
from temporalio.client import Client

from enforcer.config import Settings
from enforcer.sandbox import DEFAULT_CLIENT_ID
from workflows import search_attributes

ROOT: Final = Path(__file__).resolve().parents[1]
POLL: Final = 0.1
SECONDS_TO_START: Final = 60.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


class Children:
    """Every process this run starts, each in a session of its own (so a signal to
    this terminal does not reach it, and ending it ends whatever it started)."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._started: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, argv: Sequence[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        with (self._directory / f"{name}.log").open("ab") as log:
            child = subprocess.Popen(  # noqa: S603 - our own entry points and binary
                list(argv),
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._started.append(child)
        return child

    def log_tail(self, name: str, lines: int = 15) -> str:
        path = self._directory / f"{name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    @staticmethod
    def kill(child: subprocess.Popen[bytes]) -> None:
        """SIGKILL, as a crash would: no handler runs, nothing is drained."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)
        child.wait(timeout=30)

    def stop(self, child: subprocess.Popen[bytes]) -> None:
        """SIGTERM to one process, SIGKILL if it lingers."""
        if child.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGTERM)
            try:
                child.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill(child)

    def stop_all(self) -> None:
        """SIGTERM to each process still running, SIGKILL to any that lingers."""
        running = [child for child in self._started if child.poll() is None]
        for child in running:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for child in running:
            try:
                child.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                self.kill(child)


def clean_environment() -> dict[str, str]:
    """The caller's environment without anything that could point a process elsewhere."""
    return {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("ENFORCER_", "TEMPORAL_"))
    }


async def eventually(check: Callable[[], Awaitable[bool]], within: float, what: str) -> None:
    """Polls ``check`` until it holds; raises after ``within`` seconds."""
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {within:.0f} s for {what}")
        await asyncio.sleep(POLL)


class DevServer:
    """`temporal server start-dev` on one SQLite file and port, killed and restarted at will;
    with task queue fairness on (``matching.enableFairness``) unless told otherwise."""

    def __init__(self, children: Children, directory: Path, *, fairness: bool = True) -> None:
        self._children = children
        self._fairness = fairness
        self._database = directory / "temporal.db"
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None

    async def start(self) -> None:
        binary = os.path.join(sysconfig.get_path("scripts"), "temporal")
        attributes = [
            argument
            for key in search_attributes.ALL
            for argument in ("--search-attribute", f"{key.name}=Keyword")
        ]
        self._process = self._children.start(
            "temporal",
            [
                binary,
                "server",
                "start-dev",
                "--db-filename",
                str(self._database),
                "--ip",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--headless",
                *attributes,
                "--dynamic-config-value",
                f"matching.enableFairness={str(self._fairness).lower()}",
                "--log-level",
                "warn",
            ],
            clean_environment(),
        )

        async def answering() -> bool:
            if self._process is not None and self._process.poll() is not None:
                tail = self._children.log_tail("temporal")
                raise RuntimeError(f"the Temporal dev server exited:\n{tail}")
            try:
                await Client.connect(self.address)
            except RuntimeError:
                return False
            return True

        await eventually(answering, SECONDS_TO_START, f"Temporal on {self.address}")

    def kill(self) -> None:
        assert self._process is not None
        self._children.kill(self._process)


@dataclass
class ServedSandbox:
    """``starter.py sandbox`` on a port of its own: its address, a client of its admin
    API, the settings that reach it (a fresh token key, a data directory of the run's)
    and the environment a ``worker.py`` needs to use it with Temporal at ``address``."""

    base_url: str
    http: httpx.AsyncClient
    settings: Settings
    env: dict[str, str]


@contextlib.asynccontextmanager
async def served_sandbox(
    children: Children,
    directory: Path,
    temporal_address: str,
    *,
    generate: str,
    http_timeout: float,
) -> AsyncIterator[ServedSandbox]:
    """Starts the sandbox (``--generate generate``: its first user's library) and yields
    it once it answers."""
    port = free_port()
    command = [sys.executable, "starter.py", "sandbox", "--port", str(port), "--generate", generate]
    children.start("sandbox", command, clean_environment())
    base = f"http://127.0.0.1:{port}"
    settings = Settings(
        spotify_client_id=DEFAULT_CLIENT_ID,
        api_base_url=f"{base}/v1",
        accounts_base_url=base,
        data_dir=directory / "data",
        token_key=Fernet.generate_key().decode(),
    )
    assert settings.token_key is not None
    env = {
        **clean_environment(),
        "TEMPORAL_ADDRESS": temporal_address,
        "TEMPORAL_NAMESPACE": "default",
        "ENFORCER_SPOTIFY_CLIENT_ID": settings.spotify_client_id,
        "ENFORCER_API_BASE_URL": settings.api_base_url,
        "ENFORCER_ACCOUNTS_BASE_URL": settings.accounts_base_url,
        "ENFORCER_DATA_DIR": str(settings.data_dir),
        "ENFORCER_TOKEN_KEY": settings.token_key.get_secret_value(),
    }
    async with httpx.AsyncClient(base_url=base, timeout=http_timeout) as http:

        async def listening() -> bool:
            try:
                return (await http.get("/__sandbox/counters")).status_code == 200
            except httpx.TransportError:
                return False

        await eventually(listening, SECONDS_TO_START, "the sandbox to listen")
        yield ServedSandbox(base, http, settings, env)


class WorkerProcess:
    """`worker.py` against the run's Temporal, sandbox and ledger; killed and restarted."""

    def __init__(
        self,
        children: Children,
        env: dict[str, str],
        task_queue: str,
        options: Sequence[str] = (),
    ) -> None:
        self._children = children
        self._env = env
        self._argv = [sys.executable, "worker.py", "--task-queue", task_queue, *options]
        self._process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def pid(self) -> int | None:
        """The running worker's process ID (the Python process itself: no shell between)."""
        return None if self._process is None else self._process.pid

    def start(self) -> None:
        self.starts += 1
        self._process = self._children.start("worker", self._argv, self._env)

    def stop(self) -> None:
        """SIGTERM, as an operator would: the worker drains and ends."""
        if self._process is None or self._process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._process.pid, signal.SIGTERM)
        try:
            self._process.wait(timeout=45)
        except subprocess.TimeoutExpired:
            self._children.kill(self._process)

    def kill(self) -> datetime:
        """SIGKILLs the worker; returns when (UTC, as the ledger's times are)."""
        assert self._process is not None
        self._children.kill(self._process)
        return datetime.now(UTC)

    def ensure_running(self) -> None:
        """Starts the worker again if it ended (after a failed scenario)."""
        if self._process is None or self._process.poll() is not None:
            self.start()

    def check_alive(self) -> None:
        """Raises, with the end of its log, if the worker ended on its own."""
        if self._process is not None and self._process.poll() is not None:
            code = self._process.returncode
            raise RuntimeError(
                f"the worker exited by itself (code {code}):\n{self._children.log_tail('worker')}"
            )


# The sandbox --------------------------------------------------------------------------


class SandboxAdmin:
    """The sandbox's admin API: libraries, logins, counters, settings, faults."""

    def __init__(self, http: httpx.AsyncClient, user: str) -> None:
        self._http = http
        self.user_id = user

    async def _call(self, method: str, path: str, body: Any = None) -> Any:
        response = await self._http.request(method, path, json=body)
        response.raise_for_status()
        return response.json() if response.content else None

    async def generate(self, arguments: dict[str, int]) -> None:
        await self._call("POST", f"/__sandbox/users/{self.user_id}/generate", arguments)

    async def user(self) -> dict[str, Any]:
        answer: dict[str, Any] = await self._call("GET", f"/__sandbox/users/{self.user_id}")
        return answer

    async def fixture(self) -> dict[str, Any]:
        answer: dict[str, Any] = await self._call("GET", "/__sandbox/fixture")
        return answer

    async def tokens(self) -> dict[str, Any]:
        answer: dict[str, Any] = await self._call(
            "POST", f"/__sandbox/users/{self.user_id}/tokens", {"client_id": DEFAULT_CLIENT_ID}
        )
        return answer

    async def counters(self) -> dict[str, Any]:
        answer: dict[str, Any] = await self._call("GET", "/__sandbox/counters")
        return answer

    async def reset_counters(self) -> None:
        await self._call("DELETE", "/__sandbox/counters")

    async def faults(self, faults: dict[str, Any]) -> None:
        await self._call("PUT", "/__sandbox/faults", faults)

    async def settings(self, changes: dict[str, Any]) -> None:
        await self._call("PATCH", "/__sandbox/settings", changes)


def calls_received(counters: dict[str, Any]) -> int:
    return sum(int(count) for count in counters["calls"].values())


def machine() -> str:
    memory = "unknown"
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    return (
        f"{os.cpu_count()} CPUs (nproc), {memory} memory, {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}"
    )
