"""From settings to live objects: the ledger, an account's tokens, its Spotify client.

The one place that wires configuration to resources, so that the command line and the
Temporal activities open them the same way: the ledger named by the settings, the
token store inside it, the account a command is about, and a ``SpotifyClient`` whose
tokens refresh through the ledger and whose endpoint generations are remembered in it.

Two ways to a client. ``spotify_client`` opens one for one task and closes it (the
command line). ``SpotifyClients`` keeps one warm per account for a long-lived process (a
worker): one connection pool and one OAuth client for every account, the tokens and the
generations loaded once. Per use it costs one ledger read (has the stored login
changed? decrypted only if it has: a new login, another process's refresh; the store is
the truth) and, when the client learned a generation, one write.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

import httpx

from enforcer.config import Settings
from enforcer.ledger import Ledger, LedgerTokenStore, ledger_url
from enforcer.spotify import Generation, InMemoryGenerationMemory, SpotifyClient
from enforcer.spotify.auth import OAuthClient, TokenManager
from enforcer.tokenstore import token_cipher

__all__ = [
    "AccountNotChosen",
    "SpotifyClients",
    "open_ledger",
    "resolve_account",
    "spotify_client",
    "token_store",
]


class AccountNotChosen(ValueError):
    """No account is logged in, or several are and the caller did not name one."""


@asynccontextmanager
async def open_ledger(settings: Settings) -> AsyncIterator[Ledger]:
    """The ledger the settings name (migrated to the current schema), closed on exit."""
    ledger = await Ledger.open(ledger_url(settings))
    try:
        yield ledger
    finally:
        await ledger.close()


def token_store(ledger: Ledger, settings: Settings) -> LedgerTokenStore:
    """The accounts' tokens in ``ledger``, encrypted with the settings' token key."""
    return LedgerTokenStore(ledger, token_cipher(settings))


async def resolve_account(ledger: Ledger, account: str | None) -> str:
    """The account a command is about: the one named, else the only one logged in.

    A named account must be in the ledger (``UnknownAccount``); with none named,
    zero or several logged-in accounts are an ``AccountNotChosen`` that says what to do.
    """
    if account is not None:
        return (await ledger.require_account(account)).account_id
    known = sorted(record.account_id for record in await ledger.accounts())
    if not known:
        raise AccountNotChosen("no account: run `starter.py login`")
    if len(known) > 1:
        raise AccountNotChosen(
            f"{len(known)} accounts are logged in ({', '.join(map(repr, known))}): "
            "name one with --account"
        )
    return known[0]


@asynccontextmanager
async def spotify_client(
    settings: Settings,
    ledger: Ledger,
    account_id: str,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
) -> AsyncIterator[SpotifyClient]:
    """A ``SpotifyClient`` for ``account_id`` with its tokens and generations from ``ledger``.

    Tokens refresh through the ledger's token store (``NoStoredLogin`` when the account
    never logged in). The endpoint generations the client learns are written back on
    exit, also after an error, since what it learned stays true; only when they changed.
    ``transport`` reaches both the accounts service and the Web API (Spotify itself
    unless given: tests pass the sandbox's).
    """
    known = await ledger.generations(account_id)
    memory = InMemoryGenerationMemory(known)
    async with OAuthClient(
        settings.accounts_base_url, settings.spotify_client_id, transport=transport
    ) as oauth:
        tokens = await TokenManager.from_store(
            account_id, oauth=oauth, store=token_store(ledger, settings)
        )
        try:
            async with SpotifyClient(
                tokens,
                api_base_url=settings.api_base_url,
                transport=transport,
                timeout=settings.spotify_request_timeout,
                generations=memory,
            ) as client:
                yield client
        finally:
            learned = memory.snapshot()
            if learned != known:
                await ledger.save_generations(account_id, learned)


class _Borrowed(httpx.AsyncBaseTransport):
    """A transport shared by several clients: closing one of them leaves it open (its
    owner, ``SpotifyClients``, closes it once, at the end)."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self._inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        pass


class _WarmAccount:
    """One account's client, its token manager and what it last knew of the ledger."""

    def __init__(
        self,
        account_id: str,
        client: SpotifyClient,
        tokens: TokenManager,
        store: LedgerTokenStore,
        memory: InMemoryGenerationMemory,
        saved: Mapping[str, Generation],
    ) -> None:
        self.account_id = account_id
        self.client = client
        self.tokens = tokens
        self.store = store
        self.memory = memory
        self.saved = dict(saved)

    async def follow_the_store(self) -> None:
        """Takes the stored login if it changed since this process last read or wrote it."""
        stored = await self.store.load_if_changed(self.account_id)
        if stored is not None:
            self.tokens.adopt(stored)


class SpotifyClients:
    """A warm ``SpotifyClient`` per account for a long-lived process; ``aclose`` at the end.

    ``transport`` reaches both the accounts service and the Web API (a new pool for
    Spotify itself unless given; a given one is the caller's to close)."""

    def __init__(
        self,
        settings: Settings,
        ledger: Ledger,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._settings = settings
        self._ledger = ledger
        self._own_transport = transport is None
        self._transport = httpx.AsyncHTTPTransport() if transport is None else transport
        self._oauth: OAuthClient | None = None
        self._accounts: dict[str, _WarmAccount] = {}
        self._opening = asyncio.Lock()

    @asynccontextmanager
    async def client(self, account_id: str) -> AsyncIterator[SpotifyClient]:
        """The account's client for one task (``NoStoredLogin`` when it never logged in).

        The endpoint generations it learned are written back on exit, also after an
        error, since what it learned stays true; only when they changed."""
        account = await self._account(account_id)
        await account.follow_the_store()
        try:
            yield account.client
        finally:
            learned = account.memory.snapshot()
            if learned != account.saved:
                await self._ledger.save_generations(account_id, learned)
                account.saved = dict(learned)

    async def _account(self, account_id: str) -> _WarmAccount:
        account = self._accounts.get(account_id)
        if account is not None:
            return account
        async with self._opening:
            account = self._accounts.get(account_id)
            if account is None:
                account = await self._open(account_id)
                self._accounts[account_id] = account
        return account

    async def _open(self, account_id: str) -> _WarmAccount:
        settings = self._settings
        if self._oauth is None:
            self._oauth = OAuthClient(
                settings.accounts_base_url,
                settings.spotify_client_id,
                transport=_Borrowed(self._transport),
            )
        store = token_store(self._ledger, settings)
        tokens = await TokenManager.from_store(account_id, oauth=self._oauth, store=store)
        known = await self._ledger.generations(account_id)
        memory = InMemoryGenerationMemory(known)
        client = SpotifyClient(
            tokens,
            api_base_url=settings.api_base_url,
            transport=_Borrowed(self._transport),
            timeout=settings.spotify_request_timeout,
            generations=memory,
        )
        return _WarmAccount(account_id, client, tokens, store, memory, known)

    async def aclose(self) -> None:
        accounts, self._accounts = list(self._accounts.values()), {}
        for account in accounts:
            await account.client.aclose()
        if self._oauth is not None:
            await self._oauth.aclose()
            self._oauth = None
        if self._own_transport:
            await self._transport.aclose()
