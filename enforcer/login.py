"""``starter.py login``: the browser dance of Authorization Code with PKCE, end to end.

A one-shot HTTP listener on ``127.0.0.1:redirect_port`` receives Spotify's redirect;
the code is redeemed, the account is identified with ``GET /me``, and the account and
its tokens (encrypted) are stored in the ledger. Only then does the browser hear that
it may close the tab, so what it shows is the truth. No token, code or verifier is
ever printed or logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import html
import logging
import webbrowser
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from types import TracebackType
from urllib.parse import parse_qsl, urlsplit

import httpx
from pydantic import SecretStr

from enforcer.config import Settings
from enforcer.ledger import Ledger
from enforcer.session import open_ledger, token_store
from enforcer.spotify import retry_after_seconds
from enforcer.spotify.auth import (
    OAuthClient,
    Pkce,
    build_authorize_url,
    new_state,
    states_match,
)
from enforcer.spotify.errors import (
    AccessTokenExpired,
    Forbidden,
    RateLimited,
    SpotifyError,
    SpotifyHTTPError,
    TransientError,
)
from enforcer.tokenstore import TokenStore, check_account_id

log = logging.getLogger(__name__)

DEFAULT_LOGIN_TIMEOUT = 300.0
_CALLBACK_HOST = "127.0.0.1"
_CALLBACK_PATH = "/callback"
_REQUEST_READ_TIMEOUT = 10.0
_REPLY_DELIVERY_TIMEOUT = 5.0


class LoginError(SpotifyError):
    """The login did not complete; nothing was stored."""


class LoginDenied(LoginError):
    """The person (or Spotify) declined the authorization in the browser."""


class StateMismatch(LoginError):
    """The redirect does not answer this login's request (possible forgery)."""


class LoginTimedOut(LoginError):
    """No redirect arrived in time."""


class CallbackPortUnavailable(LoginError):
    """The redirect port cannot be listened on."""


async def login(
    settings: Settings,
    *,
    open_browser: bool,
    browser: Callable[[str], bool] = webbrowser.open,
    echo: Callable[[str], None] = print,
    ledger: Ledger | None = None,
    accounts_transport: httpx.AsyncBaseTransport | None = None,
    api_transport: httpx.AsyncBaseTransport | None = None,
    wait_for_browser: float = DEFAULT_LOGIN_TIMEOUT,
) -> str:
    """Log in one Spotify account and store it in the ledger; returns its Spotify user ID.

    ``browser`` opens a URL (``webbrowser.open`` unless a test acts as the browser);
    ``echo`` shows the person what to do; ``wait_for_browser`` is how many seconds
    the redirect may take. ``ledger`` is where the account and its tokens go (the one
    the settings name unless given). The transports reach the accounts service and
    the Web API (Spotify itself unless given).
    """
    if wait_for_browser <= 0:
        raise ValueError(f"wait_for_browser={wait_for_browser!r} must be a positive number")
    # A ledger the caller gave stays open; one opened here is closed on the way out.
    async with contextlib.AsyncExitStack() as opened_here:
        if ledger is None:
            # Opened before the browser dance, so a broken ledger fails before the person acts.
            ledger = await opened_here.enter_async_context(open_ledger(settings))
        return await _login(
            settings,
            ledger=ledger,
            open_browser=open_browser,
            browser=browser,
            echo=echo,
            accounts_transport=accounts_transport,
            api_transport=api_transport,
            wait_for_browser=wait_for_browser,
        )


async def _login(
    settings: Settings,
    *,
    ledger: Ledger,
    open_browser: bool,
    browser: Callable[[str], bool],
    echo: Callable[[str], None],
    accounts_transport: httpx.AsyncBaseTransport | None,
    api_transport: httpx.AsyncBaseTransport | None,
    wait_for_browser: float,
) -> str:
    # The key is read (or made) before the browser dance, so a bad one fails first.
    store = token_store(ledger, settings)
    pkce = Pkce.generate()
    state = new_state()
    redirect_uri = settings.redirect_uri
    authorize_url = build_authorize_url(
        settings.accounts_base_url,
        client_id=settings.spotify_client_id,
        redirect_uri=redirect_uri,
        scopes=settings.scopes,
        code_challenge=pkce.challenge,
        state=state,
    )
    async with _CallbackListener(_CALLBACK_HOST, settings.redirect_port, _CALLBACK_PATH) as cb:
        if open_browser and browser(authorize_url):
            echo(f"Your browser is open at Spotify's login page. If not, open:\n{authorize_url}")
        else:
            echo(f"Open this link to log in to Spotify:\n{authorize_url}")
        echo(
            f"Waiting up to {wait_for_browser:.0f} s for Spotify to redirect to {redirect_uri} ..."
        )
        try:
            async with asyncio.timeout(wait_for_browser):
                callback = await cb.next_callback()
        except TimeoutError:
            raise LoginTimedOut(
                f"no answer from the browser within {wait_for_browser:.0f} s: run "
                "`starter.py login` again (if Spotify said 'Invalid redirect URI', add "
                f"{redirect_uri} to the redirect URIs of your app at developer.spotify.com)"
            ) from None
        try:
            account_id = await _complete(
                callback.params,
                settings=settings,
                state=state,
                pkce=pkce,
                redirect_uri=redirect_uri,
                ledger=ledger,
                store=store,
                accounts_transport=accounts_transport,
                api_transport=api_transport,
            )
        except LoginDenied as error:
            callback.reply(HTTPStatus.FORBIDDEN, "Login cancelled", str(error))
            raise
        except Exception as error:
            message = str(error) if isinstance(error, SpotifyError) else type(error).__name__
            callback.reply(HTTPStatus.BAD_REQUEST, "Login failed", message)
            raise
        callback.reply(
            HTTPStatus.OK,
            "Logged in",
            f"blocklist-enforcer is logged in as {account_id}. You can close this tab.",
        )
    log.info("logged in as Spotify user %s; tokens stored", account_id)
    return account_id


async def _complete(
    params: dict[str, str],
    *,
    settings: Settings,
    state: str,
    pkce: Pkce,
    redirect_uri: str,
    ledger: Ledger,
    store: TokenStore,
    accounts_transport: httpx.AsyncBaseTransport | None,
    api_transport: httpx.AsyncBaseTransport | None,
) -> str:
    """From the redirect's parameters to a stored account and tokens; returns its ID."""
    # The state is checked first: an answer to someone else's request is not read.
    if not states_match(state, params.get("state")):
        raise StateMismatch(
            "the redirect's state does not match this login's request: it was not started "
            "here (or was forged); nothing was stored. Run `starter.py login` again"
        )
    if "error" in params:
        reason = params["error"]
        if reason == "access_denied":
            raise LoginDenied(
                "access was denied in the browser (error=access_denied): nothing was stored"
            )
        raise LoginError(f"Spotify refused the authorization (error={reason!r})")
    code = params.get("code")
    if not code:
        raise LoginError("the redirect carries neither a code nor an error")
    async with OAuthClient(
        settings.accounts_base_url, settings.spotify_client_id, transport=accounts_transport
    ) as oauth:
        tokens = await oauth.exchange_code(code, pkce.verifier, redirect_uri)
    account_id, display_name = await _current_user(
        settings.api_base_url, tokens.access_token, api_transport
    )
    missing = set(settings.scopes) - tokens.scopes
    if tokens.scope and missing:
        log.warning("Spotify granted fewer scopes than asked; missing: %s", sorted(missing))
    await ledger.upsert_account(account_id, display_name)
    await store.save(account_id, tokens)
    return account_id


async def _current_user(
    api_base_url: str, access_token: SecretStr, transport: httpx.AsyncBaseTransport | None
) -> tuple[str, str | None]:
    """The user's ID and display name (``GET /me``)."""
    endpoint = "GET /me"
    async with httpx.AsyncClient(base_url=api_base_url, transport=transport, timeout=15) as http:
        try:
            response = await http.get(
                "/me", headers={"Authorization": f"Bearer {access_token.get_secret_value()}"}
            )
        except httpx.TimeoutException:
            raise TransientError(f"{endpoint} timed out") from None
        except httpx.TransportError as error:
            raise TransientError(f"{endpoint} failed: {type(error).__name__}") from None
    status = response.status_code
    if status == 200:
        try:
            body = response.json()
        except ValueError:
            body = None
        user_id = body.get("id") if isinstance(body, dict) else None
        display_name = body.get("display_name") if isinstance(body, dict) else None
        try:
            account_id = check_account_id(user_id)
        except ValueError:
            raise TransientError(f"{endpoint} answered without a usable user id") from None
        return account_id, display_name if isinstance(display_name, str) else None
    message = _api_error_message(response)
    if status >= 500:
        raise TransientError(f"{endpoint} answered {status}: {message}", status=status)
    if status == 401:
        raise AccessTokenExpired(status, message, endpoint=endpoint)
    if status == 403:
        raise Forbidden(
            status,
            f"{message} (in development mode, the account must be added to the app's "
            "users at developer.spotify.com)",
            endpoint=endpoint,
        )
    if status == 429:
        raise RateLimited(message, endpoint=endpoint, retry_after=retry_after_seconds(response))
    raise SpotifyHTTPError(status, message, endpoint=endpoint)


def _api_error_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    return message if isinstance(message, str) and message else f"HTTP {response.status_code}"


# --- the one-shot callback listener -------------------------------------------------


@dataclass
class _Callback:
    """One redirect to the callback path, waiting for the page to show in the browser."""

    params: dict[str, str] = field(repr=False)
    response: asyncio.Future[bytes] = field(repr=False)
    delivered: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    def reply(self, status: HTTPStatus, title: str, message: str) -> None:
        if not self.response.done():
            self.response.set_result(_http_response(status, _page(title, message)))


class _CallbackListener:
    """Listens on ``host:port`` until exit; hands over the first request to ``path``.

    Anything else (a favicon, a second redirect) gets a short answer and is ignored.
    Hand-rolled on ``asyncio`` so that no access log ever records the query string,
    which carries the authorization code.
    """

    def __init__(self, host: str, port: int, path: str) -> None:
        self._host = host
        self._port = port
        self._path = path
        self._server: asyncio.Server | None = None
        self._arrived: asyncio.Future[_Callback] | None = None
        self._callback: _Callback | None = None
        self._connections: set[asyncio.StreamWriter] = set()

    async def __aenter__(self) -> _CallbackListener:
        self._arrived = asyncio.get_running_loop().create_future()
        try:
            self._server = await asyncio.start_server(self._serve, self._host, self._port)
        except OSError as error:
            reason = "is in use" if error.errno == errno.EADDRINUSE else f"failed: {error}"
            raise CallbackPortUnavailable(
                f"listening on {self._host}:{self._port} {reason}: free the port, or set "
                "ENFORCER_REDIRECT_PORT to another port and register "
                f"http://{self._host}:PORT{self._path} as a redirect URI of your Spotify app"
            ) from None
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        assert self._server is not None
        self._server.close()
        if self._callback is not None:
            self._callback.reply(HTTPStatus.INTERNAL_SERVER_ERROR, "Login failed", "see terminal")
            # Let the browser receive its page before the caller's event loop may end.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_REPLY_DELIVERY_TIMEOUT):
                    await self._callback.delivered.wait()
        for writer in list(self._connections):
            writer.close()
        await self._server.wait_closed()

    async def next_callback(self) -> _Callback:
        assert self._arrived is not None
        return await asyncio.shield(self._arrived)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._connections.add(writer)
        callback: _Callback | None = None
        try:
            async with asyncio.timeout(_REQUEST_READ_TIMEOUT):
                head = await reader.readuntil(b"\r\n\r\n")
            method, target = _request_line(head)
            parts = urlsplit(target)
            if method != "GET" or parts.path != self._path:
                writer.write(_http_response(HTTPStatus.NOT_FOUND, b""))
            elif self._callback is not None or self._arrived is None or self._arrived.done():
                writer.write(
                    _http_response(
                        HTTPStatus.CONFLICT,
                        _page("Already answered", "This login has already received its answer."),
                    )
                )
            else:
                callback = _Callback(
                    params=dict(parse_qsl(parts.query, keep_blank_values=True)),
                    response=asyncio.get_running_loop().create_future(),
                )
                self._callback = callback
                self._arrived.set_result(callback)
                writer.write(await callback.response)
            await writer.drain()
        except (TimeoutError, ValueError, ConnectionError, asyncio.IncompleteReadError):
            pass  # a browser's idle pre-connection, or a client that went away
        finally:
            self._connections.discard(writer)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
            if callback is not None:
                callback.delivered.set()


def _request_line(head: bytes) -> tuple[str, str]:
    """Method and target of an HTTP/1.x request head; ``ValueError`` if it is none."""
    method, target, version = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ")
    if not version.startswith("HTTP/1."):
        raise ValueError(version)
    return method, target


def _page(title: str, message: str) -> bytes:
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title></head>"
        "<body style='font-family:sans-serif;margin:3em'>"
        f"<h1>{html.escape(title)}</h1><p>{html.escape(message)}</p></body></html>"
    ).encode()


def _http_response(status: HTTPStatus, body: bytes) -> bytes:
    head = (
        f"HTTP/1.1 {status.value} {status.phrase}\r\n"
        "Content-Type: text/html; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Cache-Control: no-store\r\n"
        "Referrer-Policy: no-referrer\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode("ascii") + body
