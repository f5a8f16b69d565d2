"""One authenticated request to the Web API, answered with JSON or a typed error.

This layer owns the connection pool, the bearer token (one refresh after a 401),
the per-request deadline, the call counters and the translation of every failure
into ``enforcer.spotify.errors``. It never retries a 429 or a 5xx and never sleeps:
waiting belongs to the caller (a Temporal activity's retry, durable for hours).
"""

from __future__ import annotations

import asyncio
import email.utils
import json as jsonlib
import math
from collections import Counter
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import quote, urlsplit

import httpx

from enforcer.spotify._endpoints import Endpoint
from enforcer.spotify.errors import (
    AccessTokenExpired,
    BadRequest,
    EndpointGone,
    Forbidden,
    NotFound,
    RateLimited,
    SpotifyHTTPError,
    SpotifyUnreachable,
    TransientError,
    unreachable_address,
)
from enforcer.spotify.tokens import AccessTokenProvider

QueryParams = Mapping[str, str | int]

_QUOTA_EXCEEDED: Final = "QUOTA_EXCEEDED"
ENDPOINT_EXTENSION: Final = "spotify_endpoint"
"""The httpx request extension naming the endpoint (``"METHOD /v1/path/{template}"``),
for a transport that gates or counts requests by endpoint."""
INSUFFICIENT_SCOPE: Final = "INSUFFICIENT_SCOPE"
"""``Forbidden.reason`` when the token lacks a scope (Spotify: "Insufficient client scope")."""
_ERRORS_BY_STATUS: Final[dict[int, type[SpotifyHTTPError]]] = {
    400: BadRequest,
    404: NotFound,
    410: EndpointGone,
}


class CallCounts(Mapping[str, int]):
    """Requests sent, keyed ``"METHOD /v1/path/{template}"`` like the sandbox's counters.

    Every request that left the client counts, including the one retried after a
    401 and the ones that failed or timed out; one that a transport held back (the
    rate gate) does not. A key never called reads as 0.
    """

    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()

    def record(self, key: str) -> None:
        self._counts[key] += 1

    @property
    def total(self) -> int:
        return sum(self._counts.values())

    def __getitem__(self, key: str) -> int:
        return self._counts[key]

    def __contains__(self, key: object) -> bool:
        return key in self._counts

    def __iter__(self) -> Iterator[str]:
        return iter(self._counts)

    def __len__(self) -> int:
        return len(self._counts)

    def __repr__(self) -> str:
        return f"CallCounts(total={self.total}, {dict(self._counts)!r})"


class Sender:
    """Sends requests through one ``httpx.AsyncClient`` with the person's bearer token."""

    def __init__(
        self,
        tokens: AccessTokenProvider,
        *,
        api_base_url: str,
        transport: httpx.AsyncBaseTransport | None,
        timeout: float,
    ) -> None:
        if not timeout > 0:
            raise ValueError(f"timeout must be a positive number of seconds, not {timeout!r}")
        base = httpx.URL(api_base_url)
        if base.scheme not in ("http", "https") or not base.host:
            raise ValueError(f"api_base_url must be an http(s) URL, not {api_base_url!r}")
        self._tokens = tokens
        self._timeout = timeout
        self._base_path = urlsplit(api_base_url).path.rstrip("/")
        self._http = httpx.AsyncClient(
            base_url=api_base_url.rstrip("/"),
            transport=transport,
            timeout=timeout,
            headers={"Accept": "application/json"},
        )
        self.calls = CallCounts()

    async def aclose(self) -> None:
        await self._http.aclose()

    def key(self, endpoint: Endpoint) -> str:
        return endpoint.template(self._base_path)

    async def request(
        self,
        endpoint: Endpoint,
        *,
        path: Mapping[str, str] | None = None,
        params: QueryParams | None = None,
        json: Any = None,
    ) -> Any:
        """The decoded JSON body of a successful answer (None when it has none)."""
        key = self.key(endpoint)
        url = endpoint.path.format_map({k: quote(v, safe="") for k, v in (path or {}).items()})
        token = await self._tokens.access_token()
        response = await self._send(key, endpoint.method, url, token, params, json)
        if response.status_code == 401:
            token = await self._tokens.refresh_after_rejection(token)
            response = await self._send(key, endpoint.method, url, token, params, json)
            if response.status_code == 401:
                raise AccessTokenExpired(401, _message(response), endpoint=key)
        return _result(response, endpoint, key)

    async def _send(
        self,
        key: str,
        method: str,
        url: str,
        token: str,
        params: QueryParams | None,
        json: Any,
    ) -> httpx.Response:
        request = self._http.build_request(
            method,
            url,
            params=params,
            json=json,
            headers={"Authorization": f"Bearer {token}"},
            extensions={ENDPOINT_EXTENSION: key},
        )
        try:
            # ASGITransport ignores httpx's timeouts: the deadline is enforced here too.
            async with asyncio.timeout(self._timeout):
                response = await self._http.send(request)
        except TimeoutError as exc:
            self.calls.record(key)
            raise TransientError(f"{key} did not answer within {self._timeout:g} s") from exc
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            # No cause chain: httpx's and httpcore's add nothing a person can act on.
            raise SpotifyUnreachable(
                unreachable_address(str(request.url)), key, f"{type(exc).__name__}: {exc}"
            ) from None
        except httpx.TransportError as exc:
            self.calls.record(key)
            raise TransientError(f"{key} failed: {type(exc).__name__}: {exc}") from exc
        # Counted once it was sent: a transport that holds a request back (the rate
        # gate) raises its own error, and that request never reached Spotify.
        self.calls.record(key)
        return response


def _result(response: httpx.Response, endpoint: Endpoint, key: str) -> Any:
    status = response.status_code
    if 200 <= status < 300:
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise TransientError(f"{key} answered {status} with a body that is not JSON") from exc
    message = _message(response)
    if status == 429:
        raise RateLimited(
            message,
            endpoint=key,
            retry_after=retry_after_seconds(response),
            quota_exceeded=_reason(response) == _QUOTA_EXCEEDED,
        )
    if status == 403:
        reason = _reason(response)
        if reason is None and "scope" in message.lower():
            reason = INSUFFICIENT_SCOPE
        if endpoint.scopes:
            message = f"{message} (this call needs the scopes {', '.join(endpoint.scopes)})"
        raise Forbidden(403, message, endpoint=key, reason=reason)
    if status in _ERRORS_BY_STATUS:
        raise _ERRORS_BY_STATUS[status](status, message, endpoint=key)
    if 400 <= status < 500:
        raise SpotifyHTTPError(status, message, endpoint=key)
    raise TransientError(f"{key} answered {status}: {message}", status=status)


def _error_object(response: httpx.Response) -> dict[str, Any]:
    try:
        body = jsonlib.loads(response.content)
    except ValueError:
        return {}
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return error
    if isinstance(error, str):
        return {"message": body.get("error_description") or error}
    return {}


def _message(response: httpx.Response) -> str:
    message = _error_object(response).get("message")
    return str(message) if message else response.reason_phrase or "no message"


def _reason(response: httpx.Response) -> str | None:
    reason = _error_object(response).get("reason")
    return str(reason) if reason else None


def retry_after_seconds(response: httpx.Response) -> float:
    """A 429's ``Retry-After`` in seconds, exactly as sent; 0 when missing or unreadable."""
    return _retry_after(response.headers.get("Retry-After"))


def _retry_after(header: str | None) -> float:
    """Retry-After in seconds exactly as sent; 0 when missing or unreadable."""
    if header is None:
        return 0.0
    text = header.strip()
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return max(seconds, 0.0) if math.isfinite(seconds) else 0.0
    try:
        moment = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return 0.0
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max((moment - datetime.now(UTC)).total_seconds(), 0.0)
