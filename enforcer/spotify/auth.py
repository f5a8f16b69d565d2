"""Spotify's Authorization Code flow with PKCE, and keeping one account's tokens fresh.

Spotify treats this app as a public client: no client secret exists anywhere. The
code verifier proves that whoever redeems the authorization code is whoever asked
for it, and ``state`` proves that the redirect answers our own request.

- ``Pkce``, ``new_state``, ``check_redirect_uri``, ``build_authorize_url``: the
  browser half.
- ``OAuthClient``: the two grants of ``POST {accounts}/api/token``.
- ``TokenManager``: an ``AccessTokenProvider`` for one account, refreshing ahead of
  expiry and once after a rejection, persisting every new ``TokenSet``. Several
  processes may hold a manager of one account: each reads the store before it refreshes
  and again when its grant is refused, and takes the stored tokens when another process
  refreshed first, so one process's refresh never ends another's login.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import ipaddress
import logging
import secrets
import string
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import quote, urlencode, urlsplit

import httpx
from pydantic import SecretStr

from enforcer.spotify._http import retry_after_seconds
from enforcer.spotify.errors import (
    BadRequest,
    EndpointGone,
    Forbidden,
    LoginRequired,
    NotFound,
    RateLimited,
    SpotifyError,
    SpotifyHTTPError,
    SpotifyUnreachable,
    TransientError,
    unreachable_address,
)
from enforcer.spotify.tokens import TokenSet

if TYPE_CHECKING:
    from enforcer.tokenstore import TokenStore

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]

VERIFIER_ALPHABET = string.ascii_letters + string.digits + "-._~"
VERIFIER_MIN_LENGTH = 43
VERIFIER_MAX_LENGTH = 128
GRANT_ENDPOINT = "POST /api/token"
DEFAULT_REFRESH_MARGIN = timedelta(seconds=60)


def utc_now() -> datetime:
    return datetime.now(UTC)


# --- the browser half -------------------------------------------------------------


def code_challenge(verifier: str) -> str:
    """The S256 challenge: base64url(SHA-256(verifier)) without padding (RFC 7636)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class Pkce:
    """A code verifier (kept secret until the code is redeemed) and its challenge."""

    verifier: SecretStr
    challenge: str = field(init=False)

    def __post_init__(self) -> None:
        value = self.verifier.get_secret_value()
        if not VERIFIER_MIN_LENGTH <= len(value) <= VERIFIER_MAX_LENGTH or any(
            c not in VERIFIER_ALPHABET for c in value
        ):
            raise ValueError(
                f"a PKCE code verifier is {VERIFIER_MIN_LENGTH} to {VERIFIER_MAX_LENGTH} "
                "characters of A-Z, a-z, 0-9 and -._~ (the value is not shown)"
            )
        object.__setattr__(self, "challenge", code_challenge(value))

    @classmethod
    def generate(cls, length: int = 64) -> Pkce:
        if not VERIFIER_MIN_LENGTH <= length <= VERIFIER_MAX_LENGTH:
            raise ValueError(
                f"PKCE verifier length {length} is outside "
                f"{VERIFIER_MIN_LENGTH}..{VERIFIER_MAX_LENGTH}"
            )
        verifier = "".join(secrets.choice(VERIFIER_ALPHABET) for _ in range(length))
        return cls(SecretStr(verifier))


def new_state() -> str:
    """An unguessable ``state`` for one authorization request."""
    return secrets.token_urlsafe(32)


def states_match(expected: str, received: str | None) -> bool:
    return received is not None and hmac.compare_digest(
        expected.encode("utf-8"), received.encode("utf-8")
    )


def check_redirect_uri(redirect_uri: str) -> str:
    """``redirect_uri`` if Spotify accepts it for a local app, else ``ValueError``.

    Since 2025-11-27 plain http is allowed only to loopback IP literals; the name
    ``localhost`` is refused by Spotify, so it is refused here first.
    """
    parts = urlsplit(redirect_uri)
    host = parts.hostname or ""
    try:
        loopback_ip = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback_ip = False
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme != "http" or not loopback_ip or port is None or not parts.path:
        hint = " (Spotify refuses `localhost`: use 127.0.0.1)" if host == "localhost" else ""
        raise ValueError(
            f"redirect URI {redirect_uri!r} must be http://127.0.0.1:PORT/PATH or "
            f"http://[::1]:PORT/PATH{hint}"
        )
    return redirect_uri


def build_authorize_url(
    accounts_base_url: str,
    *,
    client_id: str,
    redirect_uri: str,
    scopes: Iterable[str],
    code_challenge: str,
    state: str,
) -> str:
    """The page where the person approves the app: ``GET {accounts}/authorize?...``."""
    query = urlencode(
        {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": check_redirect_uri(redirect_uri),
            "scope": " ".join(scopes),
            "code_challenge_method": "S256",
            "code_challenge": code_challenge,
            "state": state,
        },
        quote_via=quote,
    )
    return f"{accounts_base_url.rstrip('/')}/authorize?{query}"


# --- the token endpoint -----------------------------------------------------------


def _json_object(response: httpx.Response) -> dict[str, Any] | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _token_error(response: httpx.Response, *secrets_sent: str) -> SpotifyError:
    """The typed error for a failed ``/api/token`` call.

    The accounts service answers ``{"error": "invalid_grant", "error_description": ...}``,
    unlike the Web API's ``{"error": {"status", "message"}}``.
    """
    status = response.status_code
    body = _json_object(response) or {}
    code = body.get("error")
    code = code if isinstance(code, str) else ""
    description = body.get("error_description")
    message = (
        ": ".join(
            part for part in (code, description if isinstance(description, str) else "") if part
        )
        or f"HTTP {status}"
    )
    for secret in secrets_sent:
        message = message.replace(secret, "**********")
    if code == "invalid_grant":
        return LoginRequired(f"Spotify refused the grant ({message}): run `starter.py login` again")
    if status >= 500:
        return TransientError(f"{GRANT_ENDPOINT} answered {status}: {message}", status=status)
    if status == 429:
        return RateLimited(
            message, endpoint=GRANT_ENDPOINT, retry_after=retry_after_seconds(response)
        )
    by_status: dict[int, type[SpotifyHTTPError]] = {
        400: BadRequest,
        403: Forbidden,
        404: NotFound,
        410: EndpointGone,
    }
    return by_status.get(status, SpotifyHTTPError)(status, message, endpoint=GRANT_ENDPOINT)


class OAuthClient:
    """``POST {accounts}/api/token`` for a public (PKCE) client: no client secret."""

    def __init__(
        self,
        accounts_base_url: str,
        client_id: str,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 15.0,
        clock: Clock = utc_now,
    ) -> None:
        self.accounts_base_url = accounts_base_url.rstrip("/")
        self.client_id = client_id
        self._clock = clock
        self._http = httpx.AsyncClient(
            base_url=self.accounts_base_url,
            transport=transport,
            timeout=timeout,
            headers={"Accept": "application/json"},
        )

    def __repr__(self) -> str:
        return f"OAuthClient({self.accounts_base_url!r}, client_id={self.client_id!r})"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def exchange_code(
        self, code: str, verifier: SecretStr | str, redirect_uri: str
    ) -> TokenSet:
        """Redeem an authorization code; ``redirect_uri`` must be the one authorized."""
        verifier_value = _reveal(verifier)
        tokens = await self._grant(
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect_uri,
                "client_id": self.client_id,
                "code_verifier": verifier_value,
            },
            secrets_sent=(code, verifier_value),
            previous_refresh_token=None,
        )
        log.info("authorization code redeemed for new tokens")
        return tokens

    async def refresh(self, refresh_token: SecretStr | str) -> TokenSet:
        """New tokens for ``refresh_token``; Spotify may or may not rotate it, and when
        it does not, the old refresh token stays valid and is kept."""
        refresh_value = _reveal(refresh_token)
        tokens = await self._grant(
            {
                "grant_type": "refresh_token",
                "refresh_token": refresh_value,
                "client_id": self.client_id,
            },
            secrets_sent=(refresh_value,),
            previous_refresh_token=refresh_value,
        )
        log.info("access token refreshed")
        return tokens

    async def _grant(
        self,
        form: dict[str, str],
        *,
        secrets_sent: tuple[str, ...],
        previous_refresh_token: str | None,
    ) -> TokenSet:
        try:
            response = await self._http.post("/api/token", data=form)
        except (httpx.ConnectError, httpx.ConnectTimeout) as error:
            address = unreachable_address(str(self._http.base_url))
            raise SpotifyUnreachable(address, GRANT_ENDPOINT, type(error).__name__) from None
        except httpx.TimeoutException:
            raise TransientError(f"{GRANT_ENDPOINT} timed out") from None
        except httpx.TransportError as error:
            raise TransientError(f"{GRANT_ENDPOINT} failed: {type(error).__name__}") from None
        if response.status_code != 200:
            raise _token_error(response, *secrets_sent)
        return self._token_set(response, previous_refresh_token)

    def _token_set(self, response: httpx.Response, previous_refresh_token: str | None) -> TokenSet:
        # Parsed by hand: a validation error would quote the tokens it failed on.
        body = _json_object(response) or {}
        access_token = body.get("access_token")
        token_type = body.get("token_type", "Bearer")
        expires_in = body.get("expires_in")
        refresh_token = body.get("refresh_token") or previous_refresh_token
        scope = body.get("scope", "")
        if (
            not isinstance(access_token, str)
            or not access_token
            or not isinstance(token_type, str)
            or token_type.lower() != "bearer"
            or not isinstance(expires_in, int | float)
            or isinstance(expires_in, bool)
            or expires_in <= 0
            or not isinstance(scope, str)
        ):
            raise TransientError(
                f"{GRANT_ENDPOINT} answered 200 without a usable bearer token "
                f"(fields present: {', '.join(sorted(body)) or 'none'})",
                status=200,
            )
        if not isinstance(refresh_token, str) or not refresh_token:
            raise SpotifyError(
                f"{GRANT_ENDPOINT} issued no refresh token: the login cannot be kept"
            )
        return TokenSet(
            access_token=SecretStr(access_token),
            refresh_token=SecretStr(refresh_token),
            expires_at=self._clock() + timedelta(seconds=expires_in),
            scope=scope,
        )


def _reveal(value: SecretStr | str) -> str:
    return value.get_secret_value() if isinstance(value, SecretStr) else value


# --- keeping one account's tokens fresh ---------------------------------------------


class TokenManager:
    """``AccessTokenProvider`` for one account.

    Refreshes ``margin`` ahead of expiry and once after Spotify rejects a token.
    A lock makes concurrent callers share one refresh, and every new ``TokenSet``
    is saved before it is handed out, so another process (or the next run) starts
    from the newest refresh token.
    """

    def __init__(
        self,
        account_id: str,
        tokens: TokenSet,
        *,
        oauth: OAuthClient,
        store: TokenStore,
        clock: Clock = utc_now,
        margin: timedelta = DEFAULT_REFRESH_MARGIN,
    ) -> None:
        if margin < timedelta(0):
            raise ValueError(f"refresh margin {margin} must not be negative")
        self.account_id = account_id
        self._tokens = tokens
        self._oauth = oauth
        self._store = store
        self._clock = clock
        self._margin = margin
        self._lock = asyncio.Lock()

    @classmethod
    async def from_store(
        cls,
        account_id: str,
        *,
        oauth: OAuthClient,
        store: TokenStore,
        clock: Clock = utc_now,
        margin: timedelta = DEFAULT_REFRESH_MARGIN,
    ) -> TokenManager:
        """The manager for a stored login (``NoStoredLogin`` if there is none)."""
        tokens = await store.load(account_id)
        return cls(account_id, tokens, oauth=oauth, store=store, clock=clock, margin=margin)

    def __repr__(self) -> str:
        return f"TokenManager(account_id={self.account_id!r}, expires_at={self._tokens.expires_at})"

    @property
    def tokens(self) -> TokenSet:
        return self._tokens

    def adopt(self, tokens: TokenSet) -> None:
        """Use ``tokens`` from now on: the stored login changed under a long-lived
        manager (a new login, or another process's refresh), and the store is the truth."""
        self._tokens = tokens

    async def access_token(self) -> str:
        if self._due(self._tokens):
            async with self._lock:
                if self._due(self._tokens):
                    await self._refresh()
        return self._tokens.access_token.get_secret_value()

    async def refresh_after_rejection(self, rejected: str) -> str:
        async with self._lock:
            if self._is_current(rejected):
                await self._refresh()
            return self._tokens.access_token.get_secret_value()

    def _due(self, tokens: TokenSet) -> bool:
        return self._clock() >= tokens.expires_at - self._margin

    def _is_current(self, access_token: str) -> bool:
        return hmac.compare_digest(
            self._tokens.access_token.get_secret_value().encode(), access_token.encode()
        )

    async def _refresh(self) -> None:
        stored = await self._newer_stored_tokens()
        if stored is not None:
            # Another process refreshed already; with rotating refresh tokens, ours
            # may no longer be valid.
            self._tokens = stored
            return
        try:
            fresh = await self._oauth.refresh(self._tokens.refresh_token)
        except LoginRequired:
            # Another process may have refreshed between our read and our grant: with
            # rotating refresh tokens, its grant made ours invalid, and its tokens are in
            # the store (or soon: it saves before it hands them out).
            stored = await self._newer_stored_tokens()
            if stored is None:
                raise
            self._tokens = stored
            return
        if not fresh.scope:
            fresh = fresh.model_copy(update={"scope": self._tokens.scope})
        self._tokens = fresh
        await self._store.save(self.account_id, fresh)

    async def _newer_stored_tokens(self) -> TokenSet | None:
        try:
            stored = await self._store.load(self.account_id)
        except LoginRequired:
            return None
        if self._is_current(stored.access_token.get_secret_value()) or self._due(stored):
            return None
        return stored
