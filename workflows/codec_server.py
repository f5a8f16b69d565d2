"""The codec server: the Temporal Web UI's way to show encrypted payloads decrypted.

Temporal's codec server protocol: ``POST /encode`` and ``POST /decode`` take and return
``{"payloads": [...]}``, payloads in protobuf JSON form (metadata values and data in
base64). The Web UI calls it from the browser, so the allowed Web UI origins get CORS
headers and ``OPTIONS`` preflights are answered; any other origin gets no CORS header
and the browser refuses to read the answer.

Invariants: it listens on 127.0.0.1 unless told otherwise (whoever reaches it reads
every payload in clear); a body that is not a payload list is a 400 naming what is
wrong; a payload it cannot decrypt is a 400 naming its key ID, never a key; it logs
no payload and no key.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Final

import uvicorn
from google.protobuf import json_format
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from temporalio.api.common.v1 import Payload, Payloads

from workflows.codec import AesGcmPayloadCodec, PayloadDecryptionError

DEFAULT_PORT: Final = 8081
DEFAULT_HOST: Final = "127.0.0.1"
DEFAULT_WEB_UI_ORIGINS: Final = ("http://127.0.0.1:8233", "http://localhost:8233")
"""Where `temporal server start-dev` serves its Web UI (and `make demo`'s)."""

# The Web UI sends the namespace in X-Namespace, and JSON.
_ALLOWED_HEADERS: Final = "Content-Type, X-Namespace, Authorization"

Transform = Callable[[Sequence[Payload]], Awaitable[list[Payload]]]


def codec_app(codec: AesGcmPayloadCodec, web_ui_origins: Sequence[str]) -> Starlette:
    """The ASGI app: ``/encode`` and ``/decode`` with ``codec``, CORS for the origins."""
    allowed = frozenset(origin.rstrip("/") for origin in web_ui_origins)

    def cors(request: Request) -> dict[str, str]:
        origin = request.headers.get("origin")
        if origin is None or origin not in allowed:
            return {}
        return {
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Methods": "POST, OPTIONS",
            "Access-Control-Allow-Headers": _ALLOWED_HEADERS,
            "Access-Control-Allow-Credentials": "true",
            "Vary": "Origin",
        }

    def endpoint(transform: Transform) -> Callable[[Request], Awaitable[Response]]:
        async def handle(request: Request) -> Response:
            headers = cors(request)
            if request.method == "OPTIONS":
                return Response(status_code=204 if headers else 403, headers=headers)
            try:
                payloads = json_format.Parse(await request.body(), Payloads())
            except (json_format.ParseError, UnicodeDecodeError) as error:
                return _bad_request(f'the body is not {{"payloads": [...]}}: {error}', headers)
            try:
                transformed = await transform(payloads.payloads)
            except PayloadDecryptionError as error:
                return _bad_request(str(error), headers)
            return Response(
                json_format.MessageToJson(Payloads(payloads=transformed)),
                media_type="application/json",
                headers=headers,
            )

        return handle

    return Starlette(
        routes=[
            Route("/encode", endpoint(codec.encode), methods=["POST", "OPTIONS"]),
            Route("/decode", endpoint(codec.decode), methods=["POST", "OPTIONS"]),
        ]
    )


def _bad_request(message: str, headers: dict[str, str]) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=400, headers=headers)


def serve(
    codec: AesGcmPayloadCodec,
    *,
    port: int = DEFAULT_PORT,
    host: str = DEFAULT_HOST,
    web_ui_origins: Sequence[str] = DEFAULT_WEB_UI_ORIGINS,
) -> None:
    """Serves the codec until interrupted, without an access log: who decoded what, and
    when, is nobody else's business."""
    uvicorn.run(
        codec_app(codec, web_ui_origins), host=host, port=port, access_log=False, log_level="info"
    )
