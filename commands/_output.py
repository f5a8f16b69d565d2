"""What a command prints: a table for a person, JSON or CSV for a program."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table


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


Cell = str | datetime | None
"""One field of a row; a timestamp is written to suit the format."""
Row = dict[str, Cell]

FormatOption = Annotated[
    OutputFormat, typer.Option("--format", case_sensitive=False, help="How to print the list.")
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
        table = Table(title=title, title_justify="left")
        for column in columns:
            table.add_column(column.header, overflow="fold")
        for row in rows:
            table.add_row(*(_human(row[c.key]) for c in columns))
        Console().print(table)


def _machine(value: Cell) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else value


def _human(value: Cell) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return value or ""
