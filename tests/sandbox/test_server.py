"""The sandbox as a real HTTP server, started the way a person starts it."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from starter import app

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def _started(*options: str) -> Iterator[str]:
    """``starter.py sandbox OPTIONS`` on a free port, as a person starts it; its base URL."""
    port = _free_port()
    command = [sys.executable, "starter.py", "sandbox", "--port", str(port), *options]
    process = subprocess.Popen(  # noqa: S603 - a fixed command: this interpreter, our starter
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(f"{base}/__sandbox/settings", timeout=1)
                break
            except httpx.TransportError:
                assert process.poll() is None, process.stderr.read() if process.stderr else ""
                assert time.monotonic() < deadline, "the sandbox did not start in 20 s"
                time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        process.communicate(timeout=10)  # also closes the pipes, which wait() leaves open


def _liked_songs_total(base: str, user_id: str) -> int:
    tokens = httpx.post(f"{base}/__sandbox/users/{user_id}/tokens", timeout=5).json()
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    page = httpx.get(f"{base}/v1/me/tracks", headers=bearer, timeout=5).json()
    assert page["href"].startswith(base + "/v1/me/tracks")
    total: int = page["total"]
    return total


def test_starter_serves_the_sandbox_on_loopback() -> None:
    with _started("--fixture", "tests/fixtures/small_library.json") as base:
        assert _liked_songs_total(base, "alice") == 4


def test_starter_serves_a_generated_library_of_the_sizes_given() -> None:
    with _started("--generate", "liked_songs=321,playlists=4,seed=9,user_id=dana") as base:
        assert _liked_songs_total(base, "dana") == 321
        dana = httpx.get(f"{base}/__sandbox/users/dana", timeout=5).json()
        assert len([p for p in dana["playlists"] if isinstance(p, dict)]) == 4


@pytest.mark.parametrize(
    ("spec", "named"),
    [
        ("liked_songs=lots", "'lots'"),
        ("liked_songs=-5", "-5"),
        ("tracks=5", "'tracks'"),
        ("local_rate=2", "2"),
        ("playlists", "'playlists'"),
    ],
)
def test_bad_generator_sizes_are_refused_naming_the_value(spec: str, named: str) -> None:
    result = CliRunner().invoke(app, ["sandbox", "--generate", spec, "--port", "1"])
    assert result.exit_code == 2
    assert "--generate" in result.output
    assert named in " ".join(result.output.split())
