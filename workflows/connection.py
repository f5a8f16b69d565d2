"""How the starter and the worker reach Temporal: its standard environment settings.

``TEMPORAL_ADDRESS``, ``TEMPORAL_NAMESPACE``, TLS and profiles are read the way every
Temporal tool reads them (``temporalio.envconfig``), so one configuration serves the
CLI, the Web UI and this project alike; from the environment, then ``.env``
(``enforcer.config.environment``), as every setting of the project. The data converter
comes from ``ENFORCER_PAYLOAD_*`` (``workflows.codec``): the starter and the worker both
build it here, so they always agree on whether and how payloads are encrypted.
"""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta
from typing import Final

from temporalio.client import Client
from temporalio.converter import DataConverter
from temporalio.envconfig import ClientConfig
from temporalio.runtime import Runtime
from temporalio.service import RPCError

from enforcer.config import PayloadSettings, environment
from workflows import codec

DEFAULT_TASK_QUEUE: Final = "blocklist-enforcer"
SPOTIFY_TASK_QUEUE: Final = "spotify-api"
"""Every activity that writes to Spotify: the queue's server-side rate cap
(``max_task_queue_activities_per_second``) protects the app's quota across workers."""


def spotify_task_queue(main_queue: str) -> str:
    """The Spotify queue that goes with a main queue: ``spotify-api`` for the default
    one, a queue of its own for any other (a test run, a second deployment)."""
    if main_queue == DEFAULT_TASK_QUEUE:
        return SPOTIFY_TASK_QUEUE
    return f"{main_queue}/{SPOTIFY_TASK_QUEUE}"


def configured_task_queue() -> str:
    """The queue of the workflows and of the activities that read and plan.

    ``ENFORCER_TASK_QUEUE`` lets several deployments (or test runs) share a namespace.
    """
    return environment().get("ENFORCER_TASK_QUEUE") or DEFAULT_TASK_QUEUE


CONNECT_TIMEOUT: Final = timedelta(seconds=5)
DEFAULT_ADDRESS: Final = "localhost:7233"


class TemporalUnreachable(ConnectionError):
    """The Temporal server did not answer: nothing was started."""


def configured_data_converter() -> DataConverter:
    """The pydantic data converter, with the AES-GCM codec when payload keys are set
    (a bad key setting raises ``SettingsError`` naming it)."""
    return codec.data_converter(PayloadSettings())


def configured_account_label(account_id: str) -> str:
    """What workflow IDs and search attributes call the account: its ID, or a keyed
    hash of it when payloads are encrypted (``workflows.codec.account_label``)."""
    return codec.account_label(PayloadSettings(), account_id)


async def connect_temporal(runtime: Runtime | None = None) -> Client:
    """A client for the server the environment names, failing within seconds if none;
    on ``runtime`` when given (the worker's, serving its metrics), else the default."""
    config = ClientConfig.load_client_connect_config(override_env_vars=environment())
    config.setdefault("target_host", DEFAULT_ADDRESS)
    address = config["target_host"]
    converter = configured_data_converter()
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT.total_seconds()):
            return await Client.connect(**config, data_converter=converter, runtime=runtime)
    except (RPCError, RuntimeError, TimeoutError) as error:
        raise TemporalUnreachable(
            f"cannot reach the Temporal server at {address}: {_gist(error)}. Start one "
            "(`make demo` or `temporal server start-dev`) or set TEMPORAL_ADDRESS."
        ) from error


def _gist(error: BaseException) -> str:
    """What went wrong, without the Rust transport's nesting around the system's words
    (``... Os { code: 111, kind: ConnectionRefused, message: "Connection refused" } ...``)."""
    if isinstance(error, TimeoutError):
        return f"no answer within {CONNECT_TIMEOUT.total_seconds():g} s"
    text = str(error)
    system = re.search(r'message: "([^"]+)"', text)
    return system.group(1) if system else text
