"""``starter.py codec-server`` over real HTTP: the codec server protocol the Temporal
Web UI speaks (encode and decode round trips, CORS and its preflight, bad bodies)."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.contrib.pydantic import pydantic_data_converter

from enforcer.config import PayloadKey, PayloadSettings, format_payload_key
from tests.support.temporal import free_port
from workflows.codec import KEY_ID_METADATA, data_converter

ROOT = Path(__file__).resolve().parents[2]
WEB_UI = "http://127.0.0.1:8233"
KEY = PayloadKey("test-key", os.urandom(32))


@pytest.fixture(scope="module")
def codec_server() -> Iterator[str]:
    """The real command, in a process of its own, with one payload key."""
    port = free_port()
    environment = {
        name: value for name, value in os.environ.items() if not name.startswith("ENFORCER_")
    }
    environment["ENFORCER_PAYLOAD_KEYS"] = format_payload_key(KEY)
    server = subprocess.Popen(  # noqa: S603 (this interpreter, our own starter)
        [sys.executable, "starter.py", "codec-server", "--port", str(port)],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.options(f"{url}/decode", timeout=1)
                break
            except httpx.TransportError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError("the codec server did not start") from None
                time.sleep(0.1)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)
        if server.stderr is not None:
            server.stderr.close()


def body(*payloads: Payload) -> str:
    return json_format.MessageToJson(Payloads(payloads=payloads))


def payloads_of(response: httpx.Response) -> list[Payload]:
    return list(json_format.Parse(response.text, Payloads()).payloads)


async def test_encode_then_decode_gives_the_payload_back(codec_server: str) -> None:
    [plain] = await pydantic_data_converter.encode([{"playlist_id": "37i9dQZF1DXcBWIGoYBM5M"}])

    async with httpx.AsyncClient(base_url=codec_server) as http:
        encoded = await http.post("/encode", content=body(plain))
        decoded = await http.post("/decode", content=encoded.text)

    assert encoded.status_code == 200
    [sealed] = payloads_of(encoded)
    assert sealed.metadata[KEY_ID_METADATA] == b"test-key"
    assert "37i9dQZF1DXcBWIGoYBM5M" not in encoded.text
    assert decoded.status_code == 200
    assert payloads_of(decoded) == [plain]
    # What the worker would read: the same key decodes what the server encoded.
    converter = data_converter(PayloadSettings(payload_keys=format_payload_key(KEY)))
    assert await converter.decode([sealed]) == [{"playlist_id": "37i9dQZF1DXcBWIGoYBM5M"}]


async def test_it_decodes_what_the_worker_encrypted_and_passes_plain_payloads(
    codec_server: str,
) -> None:
    converter = data_converter(PayloadSettings(payload_keys=format_payload_key(KEY)))
    [sealed] = await converter.encode(["spotify:track:4uLU6hMCjMI75M1A2tKUQC"])
    [plain] = await pydantic_data_converter.encode(["plain"])

    async with httpx.AsyncClient(base_url=codec_server) as http:
        decoded = await http.post("/decode", content=body(sealed, plain))

    assert decoded.status_code == 200
    assert await pydantic_data_converter.decode(payloads_of(decoded)) == [
        "spotify:track:4uLU6hMCjMI75M1A2tKUQC",
        "plain",
    ]


def test_the_web_ui_gets_its_cors_preflight_and_headers(codec_server: str) -> None:
    preflight = httpx.options(
        f"{codec_server}/decode",
        headers={
            "Origin": WEB_UI,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,x-namespace",
        },
    )
    answer = httpx.post(
        f"{codec_server}/decode", content=body(), headers={"Origin": WEB_UI, "X-Namespace": "x"}
    )

    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == WEB_UI
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert "x-namespace" in preflight.headers["access-control-allow-headers"].lower()
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == WEB_UI


def test_another_origin_gets_no_cors_headers(codec_server: str) -> None:
    preflight = httpx.options(
        f"{codec_server}/decode",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )

    assert preflight.status_code == 403
    assert "access-control-allow-origin" not in preflight.headers


@pytest.mark.parametrize(
    "content", ["not json", '{"payloads": 3}', '{"payload": []}', json.dumps([1])]
)
def test_a_bad_body_is_a_400_saying_so(codec_server: str, content: str) -> None:
    answer = httpx.post(f"{codec_server}/decode", content=content)

    assert answer.status_code == 400
    assert "the body is not" in answer.json()["error"]


def test_an_unknown_key_is_a_400_naming_its_id(codec_server: str) -> None:
    stranger = Payload(
        metadata={"encoding": b"binary/encrypted", KEY_ID_METADATA: b"other-key"},
        data=os.urandom(40),
    )

    answer = httpx.post(f"{codec_server}/decode", content=body(stranger))

    assert answer.status_code == 400
    assert "'other-key'" in answer.json()["error"]
    assert base64.b64encode(KEY.secret).decode() not in answer.text
