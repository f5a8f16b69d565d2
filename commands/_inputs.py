"""What a person pastes: values on the command line and files of them, parsed and looked up.

Every value keeps where it came from, so that an error can name each bad one, and a
command changes nothing until all of them are good.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, TypeVar

import typer

from commands._runtime import InputError
from enforcer.config import LONGEST_SPOTIFY_UNREACHABLE_TIMEOUT
from enforcer.spotify import NotFound, SpotifyError

T = TypeVar("T")

FileOption = Annotated[
    Path | None,
    typer.Option(
        "--file",
        dir_okay=False,
        help="A file of values, one per line; blank lines and # comments are ignored.",
    ),
]


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
        raise InputError(listing("not valid, nothing was changed:", problems))
    return parsed


def listing(heading: str, problems: Sequence[str]) -> str:
    """An error message: the heading, then each problem on its own indented line."""
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
        raise InputError(listing("unknown to Spotify, nothing was changed:", unknown))
    return names


def whole_number_from(low: int, high: int) -> Callable[[int], int]:
    """A typer callback: a whole number from ``low`` to ``high``, the error naming the
    value given (typer's own range check does not)."""

    def check(value: int) -> int:
        if not low <= value <= high:
            raise typer.BadParameter(f"{value} is not a whole number from {low} to {high}")
        return value

    return check


def seconds(option: str, given: str | None) -> float | None:
    """``given`` as a number of seconds above 0 and at most a day; None when not given.

    Taken as text so that the error names what was typed, whatever it was (``nan`` and
    ``inf`` included, which a float option's range check lets through)."""
    if given is None:
        return None
    try:
        value = float(given)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or not 0 < value <= LONGEST_SPOTIFY_UNREACHABLE_TIMEOUT:
        raise typer.BadParameter(
            f"{given!r} is not a number of seconds above 0 and at most "
            f"{LONGEST_SPOTIFY_UNREACHABLE_TIMEOUT:g}",
            param_hint=f"'{option}'",
        )
    return value
