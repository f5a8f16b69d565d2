"""Serve the sandbox over HTTP on 127.0.0.1 (``starter.py sandbox``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import uvicorn

from ._generator import generate_library, parse_generator_spec
from ._sandbox import Sandbox

# A small library to click through when no fixture is given.
DEMO_LIBRARY: dict[str, Any] = {
    "seed": 2026,
    "liked_songs": 120,
    "playlists": 6,
    "playlist_size": 25,
    "artists": 30,
    "albums": 20,
    "saved_albums": 8,
    "followed_artists": 10,
}


def generated_sandbox(spec: str) -> Sandbox:
    """A sandbox holding ``generate_library`` of ``"liked_songs=20000,playlists=300,..."``.

    Raises ``ValueError`` naming the bad name or value (unknown, mistyped, out of range).
    """
    return build_sandbox(None, generate=parse_generator_spec(spec))


def build_sandbox(fixture: Path | None, *, generate: dict[str, Any] | None = None) -> Sandbox:
    if fixture is not None and generate is not None:
        raise ValueError("give either a fixture or generator arguments, not both")
    sandbox = Sandbox()
    if fixture is not None:
        sandbox.load_fixture(fixture)
    else:
        sandbox.load_fixture(generate_library(**(generate or DEMO_LIBRARY)))
    return sandbox


def serve_sandbox(sandbox: Sandbox, port: int) -> None:
    """Run until interrupted, bound to the loopback interface only."""
    uvicorn.run(sandbox.app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def serve(fixture: Path | None, port: int, *, generate: dict[str, Any] | None = None) -> None:
    """Run until interrupted, bound to the loopback interface only."""
    serve_sandbox(build_sandbox(fixture, generate=generate), port)
