"""``blocklist`` and ``protect``: the two lists a person keeps, checked with Spotify on the way in.

``blocklist_app`` and ``protect_app`` are the sub-apps ``starter.py`` registers. A
change of the blocklist runs the account's schedule, if it has one
(``commands.schedule.blocklist_changed``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Annotated, Literal

import typer
from pydantic import BaseModel

from commands._help import Command, Group
from commands._inputs import (
    FileOption,
    listing,
    look_up_all,
    parse_all,
    read_inputs,
    unique,
)
from commands._output import Column, FormatOption, OutputFormat, Row, emit
from commands._runtime import EXIT_CODES_EPILOG, AccountOption, InputError, account_session, run
from commands.schedule import blocklist_changed
from enforcer.models import BlockedArtist
from enforcer.spotify import parse_artist_id, parse_id
from enforcer.spotify.ids import parse_uri

blocklist_app = typer.Typer(
    help="The artists you never want to hear.",
    cls=Group,
    no_args_is_help=True,
    add_completion=False,
)
protect_app = typer.Typer(
    help="Tracks and playlists enforcement never touches, whatever the blocklist says.",
    cls=Group,
    no_args_is_help=True,
    add_completion=False,
)

ProtectKind = Literal["track", "playlist"]


def report_added(what: str, added: Sequence[str], already: Sequence[str]) -> None:
    if added:
        _echo_section(f"Added to the {what}:", added)
    if already:
        _echo_section(f"Already on the {what}:", already)


def _echo_section(heading: str, lines: Iterable[str]) -> None:
    typer.echo(heading)
    for line in lines:
        typer.echo(f"  {line}")


def _entry_rows(entries: Iterable[BaseModel], columns: Sequence[Column]) -> list[Row]:
    """One row per entry: each column shows the entry's field of the same name."""
    keys = {column.key for column in columns}
    return [entry.model_dump(include=keys) for entry in entries]


# --- blocklist ----------------------------------------------------------------------

BLOCKLIST_COLUMNS = (
    Column("name", "Artist"),
    Column("artist_id", "ID", whole=True),
    Column("source", "Added as"),
    Column("added_at", "Added"),
)


def _artist_line(artist: BlockedArtist) -> str:
    return f"{artist.name} ({artist.artist_id})"


@blocklist_app.command("add", cls=Command, epilog=EXIT_CODES_EPILOG)
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
        if added:
            await blocklist_changed(session)
    new = {artist.artist_id for artist in added}
    report_added(
        "blocklist",
        [_artist_line(artist) for _, artist in artists if artist.artist_id in new],
        [_artist_line(artist) for _, artist in artists if artist.artist_id not in new],
    )


@blocklist_app.command("remove", cls=Command, epilog=EXIT_CODES_EPILOG)
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
        await blocklist_changed(session)
    _echo_section("Removed from the blocklist:", map(_artist_line, removed))


@blocklist_app.command("list", cls=Command, epilog=EXIT_CODES_EPILOG)
def blocklist_list(
    output: FormatOption = OutputFormat.TABLE, account: AccountOption = None
) -> None:
    """Show the blocklist."""
    run(_blocklist_list(output, account))


async def _blocklist_list(output: OutputFormat, account: str | None) -> None:
    async with account_session(account) as session:
        entries = await session.ledger.blocklist(session.account_id)
        account_id = session.account_id
    rows = _entry_rows(entries, BLOCKLIST_COLUMNS)
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
    Column("spotify_id", "ID", whole=True),
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


@protect_app.command("add", cls=Command, epilog=EXIT_CODES_EPILOG)
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


@protect_app.command("remove", cls=Command, epilog=EXIT_CODES_EPILOG)
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
            raise InputError(listing("not on the protect list, nothing was removed:", missing))
        removed = []
        for what in PROTECTABLE:
            ids = [spotify_id for _, (k, spotify_id) in parsed if k == what]
            if ids:
                removed += await ledger.remove_protected(account_id, what, ids)
    _echo_section(
        "Removed from the protect list:",
        (f"{entry.kind} {entry.name} ({entry.spotify_id})" for entry in removed),
    )


@protect_app.command("list", cls=Command, epilog=EXIT_CODES_EPILOG)
def protect_list(output: FormatOption = OutputFormat.TABLE, account: AccountOption = None) -> None:
    """Show the protected tracks and playlists."""
    run(_protect_list(output, account))


async def _protect_list(output: OutputFormat, account: str | None) -> None:
    async with account_session(account) as session:
        entries = await session.ledger.protected(session.account_id)
        account_id = session.account_id
    rows = _entry_rows(entries, PROTECT_COLUMNS)
    emit(
        rows,
        PROTECT_COLUMNS,
        output,
        title=f"Protected for {account_id} ({len(rows)})",
        empty=f"Nothing is protected for {account_id}: add tracks or playlists with `protect add`.",
    )
