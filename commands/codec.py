"""``codec-key`` and ``codec-server``: private payloads (``docs/operations.md``).

``codec-key`` prints a new payload key as the line to put in the environment, and
nothing else on stdout; ``codec-server`` lets the Temporal Web UI show encrypted
payloads decrypted, on 127.0.0.1 only.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Annotated

import typer

from commands._runtime import fail
from enforcer.config import (
    PAYLOAD_KEY_BYTES,
    PayloadKey,
    PayloadSettings,
    SettingsError,
    env_name,
    format_payload_key,
    parse_payload_keys,
)
from workflows.codec import payload_codec
from workflows.codec_server import DEFAULT_PORT, DEFAULT_WEB_UI_ORIGINS


def codec_key(
    key_id: Annotated[
        str | None,
        typer.Option("--key-id", help="The new key's ID (default: key-YYYYMMDD, today in UTC)."),
    ] = None,
) -> None:
    """Make a new AES-256 payload key and print it as ENFORCER_PAYLOAD_KEYS wants it."""
    new_id = key_id if key_id is not None else f"key-{datetime.now(UTC):%Y%m%d}"
    key = PayloadKey(new_id, os.urandom(PAYLOAD_KEY_BYTES))
    entry = format_payload_key(key)
    try:
        parse_payload_keys(entry)  # the same checks as when it is read back
    except ValueError:
        fail(f"--key-id {new_id!r}: a key ID is 1 to 64 letters, digits, '.', '_' or '-'")
    try:
        existing = PayloadSettings()
    except SettingsError as error:
        fail(str(error))
    if any(known.key_id == new_id for known in existing.keys):
        fail(f"key ID {new_id!r} is in {env_name('payload_keys')} already: choose another --key-id")
    keys_variable = env_name("payload_keys")
    if existing.keys:
        typer.echo(
            f"Append this entry to {keys_variable} (comma-separated, keep the old keys: they "
            f"decrypt what they encrypted), then set {env_name('payload_key_id')}={new_id}:",
            err=True,
        )
        typer.echo(entry)
    else:
        typer.echo("Put this in the environment of the worker and the starter:", err=True)
        typer.echo(f"{keys_variable}={entry}")


def codec_server(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = DEFAULT_PORT,
    web_ui_origin: Annotated[
        list[str] | None,
        typer.Option(
            "--web-ui-origin",
            help="A Web UI origin allowed to call it (repeatable; default: "
            + ", ".join(DEFAULT_WEB_UI_ORIGINS)
            + ").",
        ),
    ] = None,
) -> None:
    """Serve the payload codec for the Temporal Web UI (start-dev --ui-codec-endpoint)."""
    try:
        codec = payload_codec(PayloadSettings())
    except SettingsError as error:
        fail(str(error))
    if codec is None:
        fail(
            f"{env_name('payload_keys')} is not set: payloads are not encrypted, so there is "
            "nothing to decode (`starter.py codec-key` makes a key)"
        )
    if not 1 <= port <= 65535:
        fail(f"--port {port}: must be a port from 1 to 65535")
    origins = tuple(web_ui_origin) if web_ui_origin else DEFAULT_WEB_UI_ORIGINS
    for origin in origins:
        if not origin.startswith(("http://", "https://")):
            fail(f"--web-ui-origin {origin!r}: must be an origin such as http://127.0.0.1:8233")
    # Imported here: the server's dependencies are needed by this command alone.
    from workflows.codec_server import serve

    typer.echo(
        f"Codec server on http://127.0.0.1:{port} (current key {codec.current_key_id!r}); "
        f"Web UI origins: {', '.join(origins)}",
        err=True,
    )
    serve(codec, port=port, web_ui_origins=origins)
