"""``sandbox``: the local Spotify sandbox, for trying everything without a real account."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from commands._inputs import whole_number_from


def sandbox(
    fixture: Annotated[
        Path | None,
        typer.Option(help="A library fixture (JSON) to load.", exists=True, dir_okay=False),
    ] = None,
    port: Annotated[
        int, typer.Option(callback=whole_number_from(1, 65535), help="Port on 127.0.0.1.")
    ] = 8787,
) -> None:
    """Serve the local Spotify sandbox on 127.0.0.1."""
    # Imported here: the server's dependencies are needed by this command alone.
    from enforcer.sandbox.server import serve

    serve(fixture=fixture, port=port)
