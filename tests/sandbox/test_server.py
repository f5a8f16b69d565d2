"""The sandbox as a real HTTP server, started the way a person starts it."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_starter_serves_the_sandbox_on_loopback() -> None:
    port = _free_port()
    command = [sys.executable, "starter.py", "sandbox", "--port", str(port),
               "--fixture", "tests/fixtures/small_library.json"]  # fmt: skip
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
        tokens = httpx.post(f"{base}/__sandbox/users/alice/tokens", timeout=5).json()
        bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
        page = httpx.get(f"{base}/v1/me/tracks", headers=bearer, timeout=5).json()
        assert page["total"] == 4
        assert page["href"].startswith(base + "/v1/me/tracks")
    finally:
        process.terminate()
        process.communicate(timeout=10)  # also closes the pipes, which wait() leaves open
