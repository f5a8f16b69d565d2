"""What every command that talks to Temporal needs: describing a workflow, turning the
server's refusals and a workflow's failures into words, and the Web UI's address.

Invariants: a workflow Temporal does not know is ``None``, never an exception; any
other refusal of the server is a ``ConnectionError`` naming the server's address (a
person's error: ``_runtime.run`` prints it, exit 1); no function here changes anything.
"""

from __future__ import annotations

import os
from typing import Any, Final

from temporalio.client import (
    Client,
    WorkflowExecutionDescription,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.envconfig import ClientConfig
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    CancelledError,
    ChildWorkflowError,
)
from temporalio.service import RPCError, RPCStatusCode

from enforcer.markdown import workflow_page

UI_URL_VARIABLE: Final = "TEMPORAL_UI_URL"
"""Where the Web UI is, when it is not at the dev server's default (the gRPC port + 1000)."""


async def describe(handle: WorkflowHandle[Any, Any]) -> WorkflowExecutionDescription | None:
    """The workflow's latest run, or None when Temporal does not know the ID (never
    started, or dropped after its retention period)."""
    try:
        return await handle.describe()
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return None
        raise temporal_error(error) from None


def temporal_error(error: RPCError) -> ConnectionError:
    address = ClientConfig.load_client_connect_config().get("target_host", "localhost:7233")
    return ConnectionError(f"the Temporal server at {address} refused the request: {error}")


def root_cause(error: BaseException) -> str:
    """The message a person can act on, under Temporal's layers of wrapping."""
    while (
        isinstance(
            error,
            WorkflowFailureError | WorkflowUpdateFailedError | ActivityError | ChildWorkflowError,
        )
        and error.cause is not None
    ):
        error = error.cause
    if isinstance(error, ApplicationError):
        return error.message
    return str(error)


def ended_canceled(error: WorkflowFailureError) -> bool:
    """Whether the workflow ended Canceled (a cancelled batch: its summary is the
    ledger's, since a Canceled execution returns no result), rather than failed."""
    return isinstance(error.cause, CancelledError)


def web_ui_url(temporal: Client, workflow_id: str) -> str:
    """The page of ``workflow_id`` in the Web UI."""
    return f"{web_ui_base(temporal)}{workflow_page(temporal.namespace, workflow_id)}"


def web_ui_base(temporal: Client) -> str:
    """The Web UI: ``TEMPORAL_UI_URL`` if set, otherwise where ``temporal server start-dev``
    puts it, on the server's host at its gRPC port + 1000 (7233 -> 8233)."""
    configured = os.environ.get(UI_URL_VARIABLE, "").strip().rstrip("/")
    if configured:
        return configured
    target = temporal.service_client.config.target_host
    host, _, port = target.rpartition(":")
    try:
        return f"http://{host or 'localhost'}:{int(port) + 1000}"
    except ValueError:
        return f"http://{target}:8233"
