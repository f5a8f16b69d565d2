"""Real processes for workflow tests: the sandbox served by `starter.py sandbox`,
`worker.py`, and the environment that points a worker at a test's world."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx
from temporalio.client import Client

from enforcer.config import Settings
from tests.support.temporal import free_port

ROOT = Path(__file__).resolve().parents[2]
POLL = 0.05


@contextmanager
def process(args: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``python ARGS`` from the project's root, its output in ``log``; terminated on exit
    if it still runs."""
    with log.open("wb") as out:
        child = subprocess.Popen(  # noqa: S603 - our own entry points
            [sys.executable, *args], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )
        try:
            yield child
        finally:
            if child.poll() is None:
                child.terminate()
                child.wait(timeout=30)


async def eventually(check: Callable[[], Awaitable[bool]], *, within: float, what: str) -> None:
    """Polls ``check`` until it holds; fails after ``within`` seconds, however long each
    check takes (a CLI run, a query)."""
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {within} s for {what}")
        await asyncio.sleep(POLL)


@asynccontextmanager
async def sandbox_server(
    tmp_path: Path, library: dict[str, Any]
) -> AsyncIterator[httpx.AsyncClient]:
    """`starter.py sandbox` serving ``library``; yields an admin client on it."""
    fixture = tmp_path / "library.json"
    fixture.write_text(json.dumps(library))
    port = free_port()
    args = ["starter.py", "sandbox", "--fixture", str(fixture), "--port", str(port)]
    with process(args, dict(os.environ), tmp_path / "sandbox.log"):
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as admin:

            async def up() -> bool:
                try:
                    return (await admin.get("/__sandbox/counters")).status_code == 200
                except httpx.TransportError:
                    return False

            await eventually(up, within=60, what="the sandbox server to listen")
            yield admin


def sandbox_urls(admin: httpx.AsyncClient) -> tuple[str, str]:
    """The served sandbox's API and accounts base URLs, for ``settings_for``."""
    base = str(admin.base_url).rstrip("/")
    return f"{base}/v1", base


def worker_environment(client: Client, settings: Settings) -> dict[str, str]:
    """What `worker.py` needs to reach the test's Temporal server, sandbox and ledger."""
    assert settings.token_key is not None, "a test world always has its own token key"
    # Nothing of the environment the suite runs in may point the worker elsewhere.
    inherited = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("ENFORCER_", "TEMPORAL_"))
    }
    return {
        **inherited,
        "TEMPORAL_ADDRESS": client.service_client.config.target_host,
        "TEMPORAL_NAMESPACE": client.namespace,
        "ENFORCER_SPOTIFY_CLIENT_ID": settings.spotify_client_id,
        "ENFORCER_API_BASE_URL": settings.api_base_url,
        "ENFORCER_ACCOUNTS_BASE_URL": settings.accounts_base_url,
        "ENFORCER_DATA_DIR": str(settings.data_dir),
        "ENFORCER_TOKEN_KEY": settings.token_key.get_secret_value(),
    }
