"""What a command prints: a table for a person, JSON or CSV for a program.

Invariant: an ID or a key (a batch ID, a plan ID, an item key) is never broken across
lines, so that it can be copied from the screen whole. Text goes through ``terminal()``,
which does not wrap lines (the terminal may fold a long one on screen; copied, it is one
line). A table is drawn only on a terminal wide enough to hold its identifiers whole,
folding its other columns first; elsewhere (a narrower terminal, a pipe, a file) its
rows are plain lines, one row a line, columns aligned.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Final

import typer
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text


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
    whole: bool = False
    """An identifier: never broken across lines (other columns fold first)."""


Cell = str | datetime | None
"""One field of a row; a timestamp is written to suit the format."""
Row = dict[str, Cell]

FormatOption = Annotated[
    OutputFormat,
    typer.Option(
        "--format",
        case_sensitive=False,
        help="table for a person; json or csv for a program.",
    ),
]


def emit(
    # Mapping, not Row: its values are covariant, so rows typed narrower than Cell fit too.
    rows: Sequence[Mapping[str, Cell]],
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
        cells = [[_human(row[c.key]) for c in columns] for row in rows]
        print_rows(terminal(), title, columns, cells)


def terminal(*, stderr: bool = False) -> Console:
    """Where a command writes for a person: lines are never wrapped by us (see the
    module's invariant)."""
    return Console(stderr=stderr, soft_wrap=True)


def print_rows(
    out: Console, title: str, columns: Sequence[Column], cells: Sequence[Sequence[str]]
) -> None:
    """``cells`` under ``columns``: a table where its identifiers fit whole, else plain
    aligned lines (see the module's invariant)."""
    widths = [
        max([len(column.header), *(len(row[i]) for row in cells)])
        for i, column in enumerate(columns)
    ]
    if out.is_terminal and _table_fits(columns, widths, out.width):
        table = Table(title=title, title_justify="left")
        for column, width in zip(columns, widths, strict=True):
            if column.whole:
                table.add_column(column.header, no_wrap=True, min_width=width)
            else:
                table.add_column(column.header, overflow="fold")
        for row in cells:
            table.add_row(*row)
        out.print(table)
        return
    out.print(title, markup=False, highlight=False)
    for line in ([c.header for c in columns], *cells):
        padded = [value.ljust(width) for value, width in zip(line, widths, strict=True)]
        out.print("  ".join(padded).rstrip(), markup=False, highlight=False)


class Facts:
    """Lines of a label and its value, labels aligned, values never wrapped: a value
    that holds an ID (a batch undone, a batch waited for) stays whole."""

    def __init__(self) -> None:
        self._rows: list[tuple[str, str]] = []

    def add_row(self, label: str, value: str) -> None:
        self._rows.append((label, value))

    def __rich__(self) -> Group:
        width = max((len(label) for label, _ in self._rows), default=0)
        return Group(
            *(
                Text(f"{label:<{width}}  {value}", no_wrap=True, overflow="ignore")
                for label, value in self._rows
            )
        )


_NARROWEST_FOLDED: Final = 6
"""Characters a folded column keeps at the least (a word of its heading, a number)."""


def _table_fits(columns: Sequence[Column], widths: Sequence[int], width: int) -> bool:
    # A rich table's column costs its text, a space either side and one rule.
    needed = 1 + sum(
        (w if c.whole else min(w, _NARROWEST_FOLDED)) + 3
        for c, w in zip(columns, widths, strict=True)
    )
    return needed <= width


def _machine(value: Cell) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else value


def _human(value: Cell) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return value or ""
