"""How ``--help`` shows a command: typer's own rich rendering, flags without a type.

typer 0.27 changed its help on purpose ("Update metavar printing", fastapi/typer#1863,
shown throughout its tutorial): a required argument is ``{name}`` in the usage line and
a value's type is in angle brackets (``<str>``, ``<table|json|csv>``). That is kept.
The same docs leave a flag's type column blank (``--help``, ``--formal``), and typer
0.27's rich help dropped any ``bool`` type on purpose; typer 0.29.2 prints ``<bool>``
after every flag, ``--help`` included, though a flag takes no value. ``Command`` and
``Group`` blank a flag's type, so that the help reads as typer documents it.

Invariant: only the help changes; parsing and every other option's type are typer's.
"""

from __future__ import annotations

from typing import Any

from typer.core import TyperCommand, TyperGroup, TyperOption

NO_TYPE = ""
"""The metavar of a flag: rich help prints a metavar in place of the type."""


def _without_flag_types(params: list[Any]) -> list[Any]:
    for param in params:
        if isinstance(param, TyperOption) and param.is_flag and param.metavar is None:
            param.metavar = NO_TYPE
    return params


class Command(TyperCommand):
    """A command whose flags (``--watch``, ``--help``...) show no type in ``--help``."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _without_flag_types(super().get_params(ctx))


class Group(TyperGroup):
    """The same for an app of commands (``starter.py --help``, ``blocklist --help``)."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _without_flag_types(super().get_params(ctx))
