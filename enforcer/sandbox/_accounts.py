"""Spotify's accounts service: /authorize, /api/token, and the tokens behind every bearer."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response

from ._settings import SandboxSettings

KNOWN_SCOPES = frozenset(
    {
        "app-remote-control",
        "playlist-read-private",
        "playlist-read-collaborative",
        "playlist-modify-public",
        "playlist-modify-private",
        "user-library-read",
        "user-library-modify",
        "user-read-private",
        "user-read-email",
        "user-follow-read",
        "user-follow-modify",
        "user-top-read",
        "user-read-playback-position",
        "user-read-playback-state",
        "user-read-recently-played",
        "user-read-currently-playing",
        "user-modify-playback-state",
        "ugc-image-upload",
        "streaming",
    }
)
# What an app that manages a library asks for; used when a test does not say.
DEFAULT_SCOPES = (
    "user-read-private user-read-email user-library-read user-library-modify "
    "playlist-read-private playlist-read-collaborative playlist-modify-public "
    "playlist-modify-private user-follow-read user-follow-modify"
)
_CODE_LIFETIME = 600.0
_VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}")
_CHALLENGE = re.compile(r"[A-Za-z0-9\-_]{43}")


class ScopeError(ValueError):
    """A scope string naming a scope Spotify does not have."""


def parse_scopes(scope: str) -> frozenset[str]:
    scopes = frozenset(scope.split())
    unknown = sorted(scopes - KNOWN_SCOPES)
    if unknown:
        raise ScopeError(f"unknown scope {unknown[0]!r}")
    return scopes


@dataclass(frozen=True, slots=True)
class AccessGrant:
    user_id: str
    client_id: str
    scopes: frozenset[str]
    expires_at: float


@dataclass(frozen=True, slots=True)
class RefreshGrant:
    user_id: str
    client_id: str
    scopes: frozenset[str]


@dataclass(frozen=True, slots=True)
class AuthorizationCode:
    user_id: str
    client_id: str
    redirect_uri: str
    code_challenge: str
    scopes: frozenset[str]
    expires_at: float


class Accounts:
    """Issues and checks tokens; the tokens themselves never appear in a message or repr."""

    def __init__(
        self,
        clock: Callable[[], float],
        settings: Callable[[], SandboxSettings],
        user_exists: Callable[[str], bool],
        default_user: Callable[[], str | None],
    ) -> None:
        self._clock = clock
        self._settings = settings
        self._user_exists = user_exists
        self._default_user = default_user
        self._access: dict[str, AccessGrant] = {}
        self._refresh: dict[str, RefreshGrant] = {}
        self._codes: dict[str, AuthorizationCode] = {}

    def __repr__(self) -> str:
        return f"<Accounts access_tokens={len(self._access)} refresh_tokens={len(self._refresh)}>"

    def issue(
        self, user_id: str, scopes: frozenset[str], client_id: str, *, refresh: str | None = None
    ) -> dict[str, Any]:
        """A fresh access token; a new refresh token unless ``refresh`` is kept."""
        lifetime = self._settings().access_token_lifetime
        access = secrets.token_urlsafe(32)
        self._access[access] = AccessGrant(user_id, client_id, scopes, self._clock() + lifetime)
        body: dict[str, Any] = {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": lifetime,
            "scope": " ".join(sorted(scopes)),
        }
        if refresh is None:
            refresh = secrets.token_urlsafe(48)
            self._refresh[refresh] = RefreshGrant(user_id, client_id, scopes)
            body["refresh_token"] = refresh
        return body

    def lookup(self, access_token: str) -> AccessGrant | str:
        """The grant behind a bearer, or why there is none."""
        grant = self._access.get(access_token)
        if grant is None:
            return "Invalid access token"
        if self._clock() >= grant.expires_at:
            return "The access token expired"
        return grant

    def revoke_refresh_tokens(self, user_id: str) -> int:
        revoked = [token for token, grant in self._refresh.items() if grant.user_id == user_id]
        for token in revoked:
            del self._refresh[token]
        return len(revoked)

    def forget_user(self, user_id: str) -> None:
        self.revoke_refresh_tokens(user_id)
        for token in [t for t, grant in self._access.items() if grant.user_id == user_id]:
            del self._access[token]

    async def authorize(self, request: Request) -> Response:
        params = request.query_params
        settings = self._settings()

        def bad(message: str) -> Response:
            return PlainTextResponse(f"Bad request: {message}", status_code=400)

        if params.get("response_type") != "code":
            return bad(f"response_type must be 'code', got {params.get('response_type')!r}")
        client_id = params.get("client_id", "")
        if not client_id:
            return bad("missing client_id")
        known = settings.known_client_ids
        if known is not None and client_id not in known:
            return bad(f"INVALID_CLIENT: unknown client_id {client_id!r}")
        redirect_uri = params.get("redirect_uri", "")
        problem = _redirect_uri_problem(redirect_uri)
        if problem:
            return bad(f"INVALID_CLIENT: Invalid redirect URI {redirect_uri!r}: {problem}")
        if params.get("code_challenge_method") != "S256":
            method = params.get("code_challenge_method")
            return bad(f"code_challenge_method must be 'S256', got {method!r}")
        challenge = params.get("code_challenge", "")
        if _CHALLENGE.fullmatch(challenge) is None:
            return bad(f"code_challenge is not a base64url SHA-256 digest: {challenge!r}")
        try:
            scopes = parse_scopes(params.get("scope", ""))
        except ScopeError as error:
            return bad(f"invalid scope: {error}")
        user_id = settings.authorize_as or self._default_user()
        if user_id is None or not self._user_exists(user_id):
            return bad(f"no user to authorize as: {user_id!r}")
        code = secrets.token_urlsafe(32)
        self._codes[code] = AuthorizationCode(
            user_id, client_id, redirect_uri, challenge, scopes, self._clock() + _CODE_LIFETIME
        )
        answer = {"code": code}
        if "state" in params:
            answer["state"] = params["state"]
        separator = "&" if urlsplit(redirect_uri).query else "?"
        return RedirectResponse(redirect_uri + separator + urlencode(answer), status_code=302)

    async def token(self, request: Request) -> Response:
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != "application/x-www-form-urlencoded":
            return _oauth_error(
                "invalid_request", "the body must be application/x-www-form-urlencoded"
            )
        # Parsed by hand: Starlette's form parser needs python-multipart for nothing more.
        body = (await request.body()).decode("utf-8", errors="replace")
        fields = dict(parse_qsl(body, keep_blank_values=True))
        client_id = fields.get("client_id") or _basic_client_id(request)
        if not client_id:
            return _oauth_error("invalid_client", "Invalid client")
        known = self._settings().known_client_ids
        if known is not None and client_id not in known:
            return _oauth_error("invalid_client", "Invalid client", status=400)
        grant_type = fields.get("grant_type")
        if grant_type == "authorization_code":
            return self._exchange_code(fields, client_id)
        if grant_type == "refresh_token":
            return self._refresh_grant(fields, client_id)
        return _oauth_error(
            "unsupported_grant_type",
            f"grant_type must be authorization_code or refresh_token, got {grant_type!r}",
        )

    def _exchange_code(self, fields: dict[str, str], client_id: str) -> Response:
        code = self._codes.pop(fields.get("code", ""), None)
        if code is None or self._clock() >= code.expires_at:
            return _oauth_error("invalid_grant", "Invalid authorization code")
        if code.client_id != client_id:
            return _oauth_error("invalid_grant", "Invalid authorization code")
        if fields.get("redirect_uri") != code.redirect_uri:
            return _oauth_error("invalid_grant", "Invalid redirect URI")
        verifier = fields.get("code_verifier", "")
        if _VERIFIER.fullmatch(verifier) is None:
            return _oauth_error("invalid_request", "code_verifier must be 43-128 characters")
        digest = hashlib.sha256(verifier.encode("ascii")).digest()
        expected = base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
        if not hmac.compare_digest(expected, code.code_challenge):
            return _oauth_error("invalid_grant", "code_verifier was incorrect")
        if not self._user_exists(code.user_id):
            return _oauth_error("invalid_grant", "The user no longer exists")
        return JSONResponse(self.issue(code.user_id, code.scopes, client_id))

    def _refresh_grant(self, fields: dict[str, str], client_id: str) -> Response:
        token = fields.get("refresh_token", "")
        grant = self._refresh.get(token)
        if grant is None or grant.client_id != client_id:
            return _oauth_error("invalid_grant", "Invalid refresh token")
        if not self._user_exists(grant.user_id):
            return _oauth_error("invalid_grant", "Refresh token revoked")
        if self._settings().rotate_refresh_tokens:
            del self._refresh[token]
            return JSONResponse(self.issue(grant.user_id, grant.scopes, client_id))
        return JSONResponse(self.issue(grant.user_id, grant.scopes, client_id, refresh=token))


def _oauth_error(error: str, description: str, *, status: int = 400) -> Response:
    return JSONResponse({"error": error, "error_description": description}, status_code=status)


def _basic_client_id(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:], validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded.partition(":")[0] or None


def _redirect_uri_problem(redirect_uri: str) -> str | None:
    """Why Spotify would refuse this redirect URI (loopback IP literals only), or None."""
    try:
        parts = urlsplit(redirect_uri)
        port = parts.port
    except ValueError:
        return "not a URL"
    if parts.scheme != "http":
        return "the sandbox accepts only http:// loopback redirect URIs"
    if parts.hostname == "localhost":
        return "'localhost' is not allowed; use 127.0.0.1 or [::1]"
    try:
        address = ipaddress.ip_address(parts.hostname or "")
    except ValueError:
        return "the host must be a loopback IP literal"
    if not address.is_loopback:
        return "the host must be a loopback IP literal"
    if port is None:
        return "a port is required"
    return None
