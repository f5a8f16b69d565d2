"""Fixtures: a fresh sandbox per test, its main user, and an HTTP client logged in as it.

Every request from ``sandbox_http`` goes through ``sandbox_transport``, the one place
that decides how the suite reaches the sandbox (in process, checked against Spotify's
published contract).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.types import ASGIApp

from enforcer.sandbox import Sandbox, generate_library
from tests.support.contract import ContractRecorder, ContractRecordingApp, ContractTransport

SMALL_LIBRARY = Path(__file__).resolve().parent.parent / "fixtures" / "small_library.json"
SANDBOX_BASE_URL = "http://sandbox.test"
MAIN_USER = "alice"


def sandbox_transport(sandbox: Sandbox, recorder: ContractRecorder) -> httpx.AsyncBaseTransport:
    """The sandbox's ASGI app in process, every exchange checked against the contract."""
    return ContractTransport(httpx.ASGITransport(app=sandbox.app), recorder)


@pytest.fixture
def sandbox() -> Sandbox:
    """A fresh sandbox holding tests/fixtures/small_library.json."""
    fresh = Sandbox()
    fresh.load_fixture(SMALL_LIBRARY)
    return fresh


@pytest.fixture
def sandbox_user() -> str:
    return MAIN_USER


@pytest.fixture
async def sandbox_http(
    sandbox: Sandbox, sandbox_user: str, contract_recorder: ContractRecorder
) -> AsyncIterator[httpx.AsyncClient]:
    """An ``httpx.AsyncClient`` on the sandbox with a bearer token of the main user."""
    token = sandbox.issue_tokens(sandbox_user)["access_token"]
    async with httpx.AsyncClient(
        base_url=SANDBOX_BASE_URL,
        transport=sandbox_transport(sandbox, contract_recorder),
        headers={"Authorization": f"Bearer {token}"},
    ) as client:
        yield client


@contextmanager
def served_on_loopback(app: ASGIApp) -> Iterator[str]:
    """``app`` served by uvicorn in a thread on 127.0.0.1 (a free port); yields its base URL.

    For clients that speak HTTP through their own stack (requests, a sync httpx client).
    """
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive(), "the server stopped while starting"
        assert time.monotonic() < deadline, "the server did not start in 10 s"
        time.sleep(0.005)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        listener.close()


# A library whose listings span several pages (liked songs, playlist items, the cursor of
# followed artists) and whose playlists hold duplicates, local files and unavailable tracks.
CLIENT_LIBRARY: dict[str, Any] = {
    "seed": 7,
    "liked_songs": 120,
    "playlists": 3,
    "playlist_size": 130,
    "artists": 70,
    "albums": 40,
    "saved_albums": 20,
    "followed_artists": 60,
    "local_rate": 0.05,
    "unavailable_rate": 0.03,
    "duplicate_rate": 0.05,
    "followed_playlists": 1,
}
CLIENT_USER = "user"


@dataclass
class ServedSandbox:
    """A sandbox on a loopback socket, every exchange checked against Spotify's contract."""

    sandbox: Sandbox
    base_url: str
    recorder: ContractRecorder

    def token(self, user_id: str = CLIENT_USER) -> str:
        token: str = self.sandbox.issue_tokens(user_id)["access_token"]
        return token


@pytest.fixture
def served_sandbox(contract_recorder: ContractRecorder) -> Iterator[ServedSandbox]:
    """A fresh sandbox holding ``CLIENT_LIBRARY`` for ``CLIENT_USER``, served over HTTP."""
    sandbox = Sandbox()
    sandbox.load_fixture(generate_library(**CLIENT_LIBRARY, user_id=CLIENT_USER))
    with served_on_loopback(ContractRecordingApp(sandbox.app, contract_recorder)) as base_url:
        yield ServedSandbox(sandbox, base_url, contract_recorder)
