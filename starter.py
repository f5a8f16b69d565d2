"""The person's command line: log in, keep the blocklist and the protect list, run the
local Spotify sandbox, and (soon) plan, enforce, watch, cancel and roll back.

Each command is a small function; what they share is here once: ``run`` (errors to
stderr and exit code 1, never a traceback or a secret), ``account_session`` (settings,
ledger, the account, and a Spotify client for it), the parsing of what a person pastes
(``read_inputs``), and ``emit`` for ``--format table|json|csv``.
"""

from __future__ import annotations

import asyncio
import csv
import json
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal, NoReturn, TypeVar

import httpx
import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from enforcer.config import Settings
from enforcer.ledger import Ledger, LedgerError
from enforcer.login import login as run_login
from enforcer.models import BlockedArtist
from enforcer.session import open_ledger, resolve_account, spotify_client
from enforcer.spotify import (
    NotFound,
    RateLimited,
    SpotifyClient,
    SpotifyError,
    parse_artist_id,
    parse_id,
)
from enforcer.spotify.ids import parse_uri

app = typer.Typer(
    help="Make your Spotify library obey your artist blocklist.",
    no_args_is_help=True,
    add_completion=False,
    # Locals can hold tokens: never show them in a traceback.
    pretty_exceptions_show_locals=False,
)
blocklist_app = typer.Typer(
    help="The artists you never want to hear.", no_args_is_help=True, add_completion=False
)
protect_app = typer.Typer(
    help="Tracks and playlists enforcement never touches, whatever the blocklist says.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(blocklist_app, name="blocklist")
app.add_typer(protect_app, name="protect")

T = TypeVar("T")
ProtectKind = Literal["track", "playlist"]


# --- shared: running a command, its account, its output ------------------------------


def spotify_transport() -> httpx.AsyncBaseTransport | None:
    """How commands reach Spotify and its accounts service: None is the network.

    The one seam for tests, which replace this function to reach an in-process sandbox.
    """
    return None


class InputError(ValueError):
    """What the person gave cannot be used; the message names each bad value."""


# Errors a person can act on: each message names what is wrong and never a secret.
# Anything else is a bug, and its traceback (without locals) is worth seeing.
_PERSONS_ERRORS = (SpotifyError, LedgerError, ValueError, OSError)


def fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


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


class OutputFormat(StrEnum):
    TABLE = "table"
    JSON = "json"
    CSV = "csv"


@dataclass(frozen=True)
class Column:
    key: str
    """The field's name in JSON and CSV."""
    header: str
    """Its heading in the table."""


Row = dict[str, str | datetime | None]


def emit(
    rows: Sequence[Row],
    columns: Sequence[Column],
    output: OutputFormat,
    *,
    title: str,
    empty: str,
) -> None:
    """``rows`` on stdout as a table (``empty`` when there are none), JSON or CSV.

    Timestamps are ISO 8601 in JSON and CSV, and to the minute in the table.
    """
    if output is OutputFormat.JSON:
        records = [{c.key: _machine(row[c.key]) for c in columns} for row in rows]
        typer.echo(json.dumps(records, indent=2, ensure_ascii=False))
    elif output is OutputFormat.CSV:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow([c.key for c in columns])
        writer.writerows([_machine(row[c.key]) for c in columns] for row in rows)
    elif not rows:
        typer.echo(empty)
    else:
        table = Table(title=title, title_justify="left")
        for column in columns:
            table.add_column(column.header, overflow="fold")
        for row in rows:
            table.add_row(*(_human(row[c.key]) for c in columns))
        Console().print(table)


def _machine(value: str | datetime | None) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else value


def _human(value: str | datetime | None) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return value or ""


AccountOption = Annotated[
    str | None,
    typer.Option(
        "--account", help="The Spotify user ID to act for (needed when several are logged in)."
    ),
]
FormatOption = Annotated[
    OutputFormat, typer.Option("--format", case_sensitive=False, help="How to print the list.")
]
FileOption = Annotated[
    Path | None,
    typer.Option(
        "--file",
        dir_okay=False,
        help="A file of values, one per line; blank lines and # comments are ignored.",
    ),
]


# --- what a person pastes: values and files of them ----------------------------------


@dataclass(frozen=True)
class Given:
    """One value as the person gave it, and where: enough to name it in an error."""

    value: str
    where: str
    """``argument 2`` or ``artists.txt line 7``."""
    source: str
    """How it was given, as the ledger records it: id, uri, url or file:NAME."""


def read_inputs(values: Sequence[str], file: Path | None) -> list[Given]:
    """The command line's values, then the file's, each with where it came from."""
    given = [
        Given(value, f"argument {number}", form_of(value))
        for number, value in enumerate(values, start=1)
    ]
    if file is not None:
        given.extend(read_list_file(file))
    if not given:
        raise InputError("nothing given: name at least one value, or a --file of them")
    return given


def read_list_file(file: Path) -> Iterator[Given]:
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{file}: no such file") from None
    except UnicodeDecodeError:
        raise InputError(f"{file}: not a UTF-8 text file") from None
    for number, line in enumerate(text.splitlines(), start=1):
        # A comment starts a line or follows a space: IDs, URIs and links hold neither.
        value = line.split(" #", 1)[0].split("\t#", 1)[0].strip()
        if value and not value.startswith("#"):
            yield Given(value, f"{file.name} line {number}", f"file:{file.name}")


def form_of(value: str) -> str:
    text = value.strip()
    if text.startswith("spotify:"):
        return "uri"
    return "url" if "/" in text else "id"


def parse_all(given: Sequence[Given], parse: Callable[[str], T]) -> list[tuple[Given, T]]:
    """Every value parsed, or an ``InputError`` naming each one that is not valid."""
    parsed: list[tuple[Given, T]] = []
    problems: list[str] = []
    for item in given:
        try:
            parsed.append((item, parse(item.value)))
        except SpotifyError as error:  # InvalidIdentifier names the value and the forms
            problems.append(f"{item.where}: {error}")
    if problems:
        raise InputError(_listing("not valid, nothing was changed:", problems))
    return parsed


def _listing(heading: str, problems: Sequence[str]) -> str:
    return heading + "".join(f"\n  {problem}" for problem in problems)


def unique(parsed: Sequence[tuple[Given, T]]) -> list[tuple[Given, T]]:
    """The first mention of each target; later mentions of it are dropped."""
    seen: set[T] = set()
    kept = []
    for item, target in parsed:
        if target not in seen:
            seen.add(target)
            kept.append((item, target))
    return kept


async def look_up_all(
    parsed: Sequence[tuple[Given, T]],
    look_up: Callable[[T], Awaitable[str]],
    describe: Callable[[T], str],
) -> list[str]:
    """The name of every target, in order, or an ``InputError`` naming each unknown one.

    One lookup at a time: a person's list is short, and Spotify's rate window is shared
    with everything else this app does. Any other error (a 429, a lost login) stops at once.
    """
    names: list[str] = []
    unknown: list[str] = []
    for item, target in parsed:
        try:
            names.append(await look_up(target))
        except NotFound:
            named = describe(target)
            given_as = "" if item.value.strip() in named else f" (given as {item.value!r})"
            unknown.append(f"{item.where}: {named}{given_as}")
    if unknown:
        raise InputError(_listing("unknown to Spotify, nothing was changed:", unknown))
    return names


def report_added(what: str, added: Sequence[str], already: Sequence[str]) -> None:
    if added:
        typer.echo(f"Added to the {what}:")
        for line in added:
            typer.echo(f"  {line}")
    if already:
        typer.echo(f"Already on the {what}:")
        for line in already:
            typer.echo(f"  {line}")


# --- login and the sandbox ----------------------------------------------------------


@app.command()
def login(
    no_browser: Annotated[
        bool, typer.Option("--no-browser", help="Print the authorization link instead.")
    ] = False,
) -> None:
    """Log in to Spotify (Authorization Code with PKCE) and store the tokens encrypted."""

    async def log_in() -> None:
        account = await run_login(
            Settings(),
            open_browser=not no_browser,
            accounts_transport=spotify_transport(),
            api_transport=spotify_transport(),
        )
        typer.echo(f"Logged in as {account}. Tokens are stored encrypted.")

    run(log_in())


@app.command()
def sandbox(
    fixture: Annotated[
        Path | None,
        typer.Option(help="A library fixture (JSON) to load.", exists=True, dir_okay=False),
    ] = None,
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 8787,
) -> None:
    """Serve the local Spotify sandbox on 127.0.0.1."""
    from enforcer.sandbox.server import serve

    serve(fixture=fixture, port=port)


# --- blocklist ----------------------------------------------------------------------

BLOCKLIST_COLUMNS = (
    Column("name", "Artist"),
    Column("artist_id", "ID"),
    Column("source", "Added as"),
    Column("added_at", "Added"),
)


def _artist_line(artist: BlockedArtist) -> str:
    return f"{artist.name} ({artist.artist_id})"


@blocklist_app.command("add")
def blocklist_add(
    values: Annotated[
        list[str] | None,
        typer.Argument(help="Artist IDs, spotify:artist: URIs or open.spotify.com links."),
    ] = None,
    file: FileOption = None,
    account: AccountOption = None,
) -> None:
    """Block artists. Every one is checked with Spotify first: one bad value adds none."""
    run(_blocklist_add(values or [], file, account))


async def _blocklist_add(values: Sequence[str], file: Path | None, account: str | None) -> None:
    parsed = unique(parse_all(read_inputs(values, file), parse_artist_id))
    async with account_session(account) as session:
        async with session.spotify() as client:

            async def name_of(artist_id: str) -> str:
                return (await client.artist(artist_id)).name

            names = await look_up_all(parsed, name_of, lambda i: f"unknown artist ID {i!r}")
        artists = [
            (item.source, BlockedArtist(artist_id=artist_id, name=name))
            for (item, artist_id), name in zip(parsed, names, strict=True)
        ]
        added: list[BlockedArtist] = []
        for source in dict.fromkeys(source for source, _ in artists):
            batch = [artist for given_as, artist in artists if given_as == source]
            added += await session.ledger.add_to_blocklist(session.account_id, batch, source)
    new = {artist.artist_id for artist in added}
    report_added(
        "blocklist",
        [_artist_line(artist) for _, artist in artists if artist.artist_id in new],
        [_artist_line(artist) for _, artist in artists if artist.artist_id not in new],
    )


@blocklist_app.command("remove")
def blocklist_remove(
    values: Annotated[list[str], typer.Argument(help="Artist IDs, URIs or links to unblock.")],
    account: AccountOption = None,
) -> None:
    """Unblock artists. A value not on the blocklist removes none."""
    run(_blocklist_remove(values, account))


async def _blocklist_remove(values: Sequence[str], account: str | None) -> None:
    parsed = unique(parse_all(read_inputs(values, None), parse_artist_id))
    async with account_session(account) as session:
        removed = await session.ledger.remove_from_blocklist(
            session.account_id, [artist_id for _, artist_id in parsed]
        )
    typer.echo("Removed from the blocklist:")
    for artist in removed:
        typer.echo(f"  {_artist_line(artist)}")


@blocklist_app.command("list")
def blocklist_list(
    output: FormatOption = OutputFormat.TABLE, account: AccountOption = None
) -> None:
    """Show the blocklist."""
    run(_blocklist_list(output, account))


async def _blocklist_list(output: OutputFormat, account: str | None) -> None:
    async with account_session(account) as session:
        entries = await session.ledger.blocklist(session.account_id)
        account_id = session.account_id
    rows: list[Row] = [
        {
            "name": entry.name,
            "artist_id": entry.artist_id,
            "source": entry.source,
            "added_at": entry.added_at,
        }
        for entry in entries
    ]
    emit(
        rows,
        BLOCKLIST_COLUMNS,
        output,
        title=f"Blocklist of {account_id} ({len(rows)})",
        empty=f"The blocklist of {account_id} is empty: add artists with `blocklist add`.",
    )


# --- protect list -------------------------------------------------------------------

PROTECT_COLUMNS = (
    Column("kind", "Kind"),
    Column("name", "Name"),
    Column("spotify_id", "ID"),
    Column("added_at", "Added"),
)
PROTECTABLE: tuple[ProtectKind, ...] = ("track", "playlist")

KindOption = Annotated[
    str,
    typer.Option(
        "--kind",
        help="What a bare ID names: track or playlist. URIs and links say it themselves.",
    ),
]


def protect_target_parser(default_kind: str) -> Callable[[str], tuple[ProtectKind, str]]:
    """Parses a track or playlist: a URI or link names its kind, a bare ID takes ``--kind``."""
    if default_kind not in PROTECTABLE:
        raise InputError(f"--kind {default_kind!r}: must be track or playlist")
    kind: ProtectKind = "track" if default_kind == "track" else "playlist"

    def parse(value: str) -> tuple[ProtectKind, str]:
        if ":" not in value and "/" not in value:
            return kind, parse_id(value, kind)
        named, spotify_id = parse_uri(value, PROTECTABLE)
        return ("track" if named == "track" else "playlist"), spotify_id

    return parse


@protect_app.command("add")
def protect_add(
    values: Annotated[
        list[str] | None,
        typer.Argument(help="Tracks or playlists: IDs, spotify: URIs or open.spotify.com links."),
    ] = None,
    file: FileOption = None,
    kind: KindOption = "track",
    account: AccountOption = None,
) -> None:
    """Protect tracks and playlists. Every one is checked with Spotify first."""
    run(_protect_add(values or [], file, kind, account))


async def _protect_add(
    values: Sequence[str], file: Path | None, kind: str, account: str | None
) -> None:
    parse = protect_target_parser(kind)
    parsed = unique(parse_all(read_inputs(values, file), parse))
    async with account_session(account) as session:
        async with session.spotify() as client:

            async def name_of(target: tuple[ProtectKind, str]) -> str:
                what, spotify_id = target
                if what == "track":
                    return (await client.track(spotify_id)).name
                return (await client.playlist(spotify_id)).name

            names = await look_up_all(
                parsed, name_of, lambda target: f"unknown {target[0]} ID {target[1]!r}"
            )
        targets = [(target, name) for (_, target), name in zip(parsed, names, strict=True)]
        added: set[tuple[str, str]] = set()
        for what in PROTECTABLE:
            items = [(spotify_id, name) for (k, spotify_id), name in targets if k == what]
            if items:
                entries = await session.ledger.add_protected(session.account_id, what, items)
                added |= {(entry.kind, entry.spotify_id) for entry in entries}
    lines = [(target in added, f"{target[0]} {name} ({target[1]})") for target, name in targets]
    report_added(
        "protect list",
        [line for new, line in lines if new],
        [line for new, line in lines if not new],
    )


@protect_app.command("remove")
def protect_remove(
    values: Annotated[list[str], typer.Argument(help="Tracks or playlists to stop protecting.")],
    kind: KindOption = "track",
    account: AccountOption = None,
) -> None:
    """Stop protecting tracks or playlists. A value not on the list removes none."""
    run(_protect_remove(values, kind, account))


async def _protect_remove(values: Sequence[str], kind: str, account: str | None) -> None:
    parse = protect_target_parser(kind)
    parsed = unique(parse_all(read_inputs(values, None), parse))
    async with account_session(account) as session:
        ledger, account_id = session.ledger, session.account_id
        listed = {(entry.kind, entry.spotify_id) for entry in await ledger.protected(account_id)}
        # Checked across both kinds first, so that a missing one removes nothing at all.
        missing = [f"{item.where}: {item.value!r}" for item, t in parsed if t not in listed]
        if missing:
            raise InputError(_listing("not on the protect list, nothing was removed:", missing))
        removed = []
        for what in PROTECTABLE:
            ids = [spotify_id for _, (k, spotify_id) in parsed if k == what]
            if ids:
                removed += await ledger.remove_protected(account_id, what, ids)
    typer.echo("Removed from the protect list:")
    for entry in removed:
        typer.echo(f"  {entry.kind} {entry.name} ({entry.spotify_id})")


@protect_app.command("list")
def protect_list(output: FormatOption = OutputFormat.TABLE, account: AccountOption = None) -> None:
    """Show the protected tracks and playlists."""
    run(_protect_list(output, account))


async def _protect_list(output: OutputFormat, account: str | None) -> None:
    async with account_session(account) as session:
        entries = await session.ledger.protected(session.account_id)
        account_id = session.account_id
    rows: list[Row] = [
        {
            "kind": entry.kind,
            "name": entry.name,
            "spotify_id": entry.spotify_id,
            "added_at": entry.added_at,
        }
        for entry in entries
    ]
    emit(
        rows,
        PROTECT_COLUMNS,
        output,
        title=f"Protected for {account_id} ({len(rows)})",
        empty=f"Nothing is protected for {account_id}: add tracks or playlists with `protect add`.",
    )


if __name__ == "__main__":
    app()
