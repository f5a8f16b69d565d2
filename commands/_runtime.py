"""Running a command: its errors, its account, and how it reaches Spotify.

``run`` turns a person's error into a message on stderr and exit code 1, never a
traceback or a secret; ``account_session`` gives a command its settings, ledger,
account and a Spotify client for it.

Exit codes, the same for every command: 0 done; 1 bad input or an error (``fail``);
2 a usage error, which typer itself reports (an unknown option, a missing argument);
3 a batch the command waited for or showed ended failed or cancelled
(``exit_for_batch``, ``batch_failed``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any, Final, NoReturn

import httpx
import typer
from pydantic import ValidationError

from enforcer.config import Settings
from enforcer.ledger import Ledger, LedgerError
from enforcer.models import BatchStatus
from enforcer.session import open_ledger, resolve_account, spotify_client
from enforcer.spotify import RateLimited, SpotifyClient, SpotifyError
from workflows.connection import configured_account_label


def spotify_transport() -> httpx.AsyncBaseTransport | None:
    """How commands reach Spotify and its accounts service: None is the network.

    The one seam for tests, which replace this function to reach an in-process sandbox.
    Callers outside this module must look it up as ``_runtime.spotify_transport`` at call
    time, so that the replacement is the one they get.
    """
    return None


class InputError(ValueError):
    """What the person gave cannot be used; the message names each bad value."""


# Errors a person can act on: each message names what is wrong and never a secret.
# Anything else is a bug, and its traceback (without locals) is worth seeing.
_PERSONS_ERRORS = (SpotifyError, LedgerError, ValueError, OSError)


EXIT_ERROR: Final = 1
"""Bad input, or an error a person can act on."""
EXIT_USAGE: Final = 2
"""typer's (click's) own: the command line itself is wrong."""
EXIT_BATCH_UNSUCCESSFUL: Final = 3
"""The batch waited for or shown ended failed or cancelled."""
UNSUCCESSFUL: Final = frozenset({BatchStatus.FAILED, BatchStatus.CANCELLED})

EXIT_CODES_EPILOG: Final = (
    "Exit codes: 0 done; 1 bad input or error; 2 usage error; "
    "3 the batch waited for or shown ended failed or cancelled."
)


def fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(EXIT_ERROR)


def batch_failed(message: str) -> NoReturn:
    """The batch's workflow itself failed: its message on stderr, exit 3."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(EXIT_BATCH_UNSUCCESSFUL)


def exit_for_batch(status: BatchStatus) -> None:
    """Ends the command with exit 3 when the batch it waited for or showed, in the
    status just printed, ended failed or cancelled; else returns."""
    if status in UNSUCCESSFUL:
        raise typer.Exit(EXIT_BATCH_UNSUCCESSFUL)


def run(command: Coroutine[Any, Any, None]) -> None:
    """Runs one command's coroutine: a person's error ends it with its message, exit 1."""
    try:
        asyncio.run(command)
    except ValidationError:
        raise  # data this program made or read is malformed: a bug, and it may quote values
    except RateLimited as error:
        fail(f"{error}: Spotify asks to wait {error.retry_after:.0f} s; nothing was changed")
    except _PERSONS_ERRORS as error:
        fail(str(error))


@dataclass(frozen=True)
class AccountSession:
    """What a command about one account works with."""

    settings: Settings
    ledger: Ledger
    account_id: str

    @property
    def account_label(self) -> str:
        """What Temporal's unencrypted fields (workflow IDs, search attributes) call the
        account: its ID, or a keyed hash of it when payloads are encrypted."""
        return configured_account_label(self.account_id)

    def spotify(self) -> AbstractAsyncContextManager[SpotifyClient]:
        return spotify_client(
            self.settings, self.ledger, self.account_id, transport=spotify_transport()
        )


@asynccontextmanager
async def account_session(account: str | None) -> AsyncIterator[AccountSession]:
    """The settings, the ledger they name, and the account (``--account``, else the only one)."""
    settings = Settings()
    async with open_ledger(settings) as ledger:
        yield AccountSession(settings, ledger, await resolve_account(ledger, account))


AccountOption = Annotated[
    str | None,
    typer.Option(
        "--account", help="The Spotify user ID to act for (needed when several are logged in)."
    ),
]
