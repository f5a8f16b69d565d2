"""``starter.py login`` end to end: the sandbox's /authorize and /api/token, a real
callback listener on 127.0.0.1, a test acting as the person's browser, and the account
and its tokens landing in a real SQLite ledger."""

from __future__ import annotations

import asyncio
import logging
import socket
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import httpx
import pytest

from enforcer.config import Settings
from enforcer.login import (
    CallbackPortUnavailable,
    LoginDenied,
    LoginTimedOut,
    StateMismatch,
    login,
)
from enforcer.models import BlockedArtist
from enforcer.sandbox import Sandbox
from enforcer.session import open_ledger, token_store
from enforcer.spotify import TokenSet
from tests.support.contract import ContractRecorder
from tests.support.sandbox import sandbox_transport
from tests.support.temporal import free_port

ACCOUNTS = "https://accounts.sandbox.test"
API = "https://api.sandbox.test/v1"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def stored_accounts(settings: Settings) -> list[tuple[str, str | None]]:
    """The accounts in the ledger, with their display names."""
    async with open_ledger(settings) as ledger:
        return [(a.account_id, a.display_name) for a in await ledger.accounts()]


async def stored_tokens(settings: Settings, account_id: str) -> TokenSet:
    async with open_ledger(settings) as ledger:
        return await token_store(ledger, settings).load(account_id)


def every_byte_under(directory: Path) -> bytes:
    """The database file and its WAL and shared-memory files, and anything else there."""
    return b"".join(path.read_bytes() for path in sorted(directory.rglob("*")) if path.is_file())


@pytest.fixture
def settings(sandbox: Sandbox, tmp_path: Path) -> Settings:
    return Settings(
        spotify_client_id="5a4db0c0ffee4b1d8e5d5a4db0c0ffee",
        accounts_base_url=ACCOUNTS,
        api_base_url=API,
        data_dir=tmp_path / "data",
        redirect_port=free_port(),
    )


@pytest.fixture
def transport(sandbox: Sandbox, contract_recorder: ContractRecorder) -> httpx.AsyncBaseTransport:
    return sandbox_transport(sandbox, contract_recorder)


Tamper = Callable[[str], str]


@dataclass(frozen=True)
class Page:
    status: int
    text: str


async def visit(url: str) -> Page:
    """GET ``url`` over a plain loopback connection, as a browser would.

    Not through httpx: its log line would record the callback's code, and this test
    checks that nothing of the code under test does.
    """
    parts = urlsplit(url)
    assert parts.hostname is not None
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    writer.write(f"GET {target} HTTP/1.1\r\nHost: {parts.netloc}\r\n\r\n".encode())
    await writer.drain()
    answer = await reader.read()  # the listener closes the connection after its page
    writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    return Page(int(head.split(b" ")[1]), body.decode())


class Browser:
    """What a browser does with the authorize link: asks the accounts service, then
    follows its redirect to the callback listener over a real loopback connection."""

    def __init__(self, accounts: httpx.AsyncBaseTransport, *, tamper: Tamper | None = None):
        self._accounts = accounts
        self._tamper = tamper or (lambda location: location)
        self.opened: list[str] = []
        self.redirects: list[str] = []
        self.pages: list[Page] = []
        self._visits: list[asyncio.Task[None]] = []

    def __call__(self, url: str) -> bool:
        self.opened.append(url)
        self._visits.append(asyncio.get_running_loop().create_task(self._visit(url)))
        return True

    async def _visit(self, url: str) -> None:
        async with httpx.AsyncClient(transport=self._accounts) as accounts:
            approval = await accounts.get(url)
        assert approval.status_code == 302, approval.text
        location = self._tamper(approval.headers["location"])
        self.redirects.append(location)
        parts = urlsplit(location)
        favicon = await visit(f"{parts.scheme}://{parts.netloc}/favicon.ico")
        assert favicon.status == 404
        self.pages.append(await visit(location))

    async def finished(self) -> None:
        await asyncio.gather(*self._visits)


def replace_query(location: str, **changes: str) -> str:
    parts = urlsplit(location)
    query = {key: values[0] for key, values in parse_qs(parts.query).items()}
    query.update(changes)
    return urlunsplit(parts._replace(query=urlencode(query)))


async def run_login(
    settings: Settings,
    transport: httpx.AsyncBaseTransport,
    browser: Callable[[str], bool],
) -> str:
    return await login(
        settings,
        open_browser=True,
        browser=browser,
        accounts_transport=transport,
        api_transport=transport,
        wait_for_browser=10,
    )


async def me(transport: httpx.AsyncBaseTransport, access_token: str) -> httpx.Response:
    async with httpx.AsyncClient(transport=transport, base_url=API) as api:
        return await api.get("/me", headers={"Authorization": f"Bearer {access_token}"})


async def test_login_stores_encrypted_tokens_the_api_accepts(
    settings: Settings,
    transport: httpx.AsyncBaseTransport,
    sandbox_user: str,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    browser = Browser(transport)

    account = await run_login(settings, transport, browser)
    await browser.finished()

    assert account == sandbox_user
    assert await stored_accounts(settings) == [(sandbox_user, "Alice")]
    tokens = await stored_tokens(settings, sandbox_user)
    answer = await me(transport, tokens.access_token.get_secret_value())
    assert answer.status_code == 200
    assert answer.json()["id"] == sandbox_user
    assert tokens.scopes >= set(settings.scopes)

    on_disk = every_byte_under(settings.data_dir)
    secrets = [
        tokens.access_token.get_secret_value(),
        tokens.refresh_token.get_secret_value(),
        parse_qs(urlsplit(browser.redirects[0]).query)["code"][0],
    ]
    for secret in secrets[:2]:
        assert secret.encode() not in on_disk
    assert mode(settings.token_key_file) == 0o600

    page = browser.pages[0]
    assert page.status == 200
    assert "You can close this tab" in page.text
    assert sandbox_user in page.text

    printed = capsys.readouterr()
    assert browser.opened[0] in printed.out  # the link, in case no browser showed up
    everything = caplog.text + printed.out + printed.err + page.text
    for secret in secrets:
        assert secret not in everything


async def test_logging_in_again_replaces_the_tokens_and_keeps_the_blocklist(
    settings: Settings, transport: httpx.AsyncBaseTransport, sandbox_user: str
) -> None:
    await run_login(settings, transport, browser := Browser(transport))
    await browser.finished()
    first = await stored_tokens(settings, sandbox_user)
    band = BlockedArtist(artist_id="arBlockedBand000000000", name="Blocked Band")
    async with open_ledger(settings) as ledger:
        await ledger.add_to_blocklist(sandbox_user, [band], "id")

    async with open_ledger(settings) as ledger:  # a ledger handed in is used, not reopened
        again = Browser(transport)
        await login(
            settings,
            open_browser=True,
            browser=again,
            ledger=ledger,
            accounts_transport=transport,
            api_transport=transport,
            wait_for_browser=10,
        )
        await again.finished()
        blocklist = [entry.artist_id for entry in await ledger.blocklist(sandbox_user)]

    second = await stored_tokens(settings, sandbox_user)
    assert second.refresh_token != first.refresh_token
    assert blocklist == [band.artist_id]
    assert await stored_accounts(settings) == [(sandbox_user, "Alice")]


async def test_the_link_is_printed_when_no_browser_is_wanted(
    settings: Settings, transport: httpx.AsyncBaseTransport, sandbox_user: str
) -> None:
    browser = Browser(transport)
    never_opened: list[str] = []
    printed: list[str] = []

    def no_browser(url: str) -> bool:
        never_opened.append(url)
        return True

    def echo(line: str) -> None:
        printed.append(line)
        if "http" in line and "/authorize?" in line:
            browser(line.splitlines()[-1])  # the person copies the link into a browser

    account = await login(
        settings,
        open_browser=False,
        browser=no_browser,
        echo=echo,
        accounts_transport=transport,
        api_transport=transport,
        wait_for_browser=10,
    )
    await browser.finished()

    assert account == sandbox_user
    assert never_opened == []
    assert printed[0].startswith("Open this link to log in to Spotify:")


async def test_a_redirect_with_another_state_stores_nothing(
    settings: Settings, transport: httpx.AsyncBaseTransport
) -> None:
    browser = Browser(transport, tamper=lambda loc: replace_query(loc, state="forged-state"))

    with pytest.raises(StateMismatch, match=r"state does not match.*nothing was stored"):
        await run_login(settings, transport, browser)
    await browser.finished()

    assert await stored_accounts(settings) == []
    assert browser.pages[0].status == 400
    assert "state does not match" in browser.pages[0].text


async def test_access_denied_in_the_browser_is_a_clear_error(
    settings: Settings, transport: httpx.AsyncBaseTransport
) -> None:
    def deny(location: str) -> str:
        parts = urlsplit(location)
        state = parse_qs(parts.query)["state"][0]
        return urlunsplit(
            parts._replace(query=urlencode({"error": "access_denied", "state": state}))
        )

    browser = Browser(transport, tamper=deny)

    with pytest.raises(
        LoginDenied, match=r"access was denied in the browser \(error=access_denied\)"
    ):
        await run_login(settings, transport, browser)
    await browser.finished()

    assert await stored_accounts(settings) == []
    assert browser.pages[0].status == 403
    assert "Login cancelled" in browser.pages[0].text


async def test_no_redirect_in_time_is_a_clear_error(
    settings: Settings, transport: httpx.AsyncBaseTransport
) -> None:
    with pytest.raises(LoginTimedOut, match=r"no answer from the browser within 0 s"):
        await login(
            settings,
            open_browser=True,
            browser=lambda url: True,
            echo=lambda line: None,
            accounts_transport=transport,
            api_transport=transport,
            wait_for_browser=0.2,
        )

    assert await stored_accounts(settings) == []
    with socket.create_server(("127.0.0.1", settings.redirect_port)):
        pass  # the listener is gone: the port is free again


async def test_a_busy_redirect_port_is_named(
    settings: Settings, transport: httpx.AsyncBaseTransport
) -> None:
    with (
        socket.create_server(("127.0.0.1", settings.redirect_port)),
        pytest.raises(
            CallbackPortUnavailable, match=rf"127.0.0.1:{settings.redirect_port} is in use"
        ),
    ):
        await run_login(settings, transport, Browser(transport))
