"""From settings to live objects: the ledger, an account's tokens, its Spotify client.

The one place that wires configuration to resources, so that the command line and the
Temporal activities open them the same way: the ledger named by the settings, the
token store inside it, the account a command is about, and a ``SpotifyClient`` whose
tokens refresh through the ledger and whose endpoint generations are remembered in it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

from enforcer.config import Settings
from enforcer.ledger import Ledger, LedgerTokenStore, ledger_url
from enforcer.spotify import InMemoryGenerationMemory, SpotifyClient
from enforcer.spotify.auth import OAuthClient, TokenManager
from enforcer.tokenstore import token_cipher

__all__ = [
    "AccountNotChosen",
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
