"""Fixtures: a fresh sandbox per test, its main user, and an HTTP client logged in as it.

Every request from ``sandbox_http`` goes through ``sandbox_transport``, the one place
that decides how the suite reaches the sandbox (in process, checked against Spotify's
published contract).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from enforcer.sandbox import Sandbox
from tests.support.contract import ContractRecorder, ContractTransport

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
