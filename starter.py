"""The person's command line: log in, keep the blocklist and the protect list, run the
local Spotify sandbox, plan, enforce a plan and watch, pause, resume or cancel its batch,
roll a batch back (or chosen items of it), keep the library obeying the blocklist on
a schedule (``schedule``), run the whole flow on the sandbox
(``demo``), and make payload keys and serve the Web UI's codec (``codec-key``,
``codec-server``).

This file only assembles the app; the commands live in the ``commands`` package, one
module per group, with what they share in its private modules.
"""

from __future__ import annotations

import typer

from commands._help import Command, Group
from commands._runtime import EXIT_CODES_EPILOG
from commands.account import login
from commands.codec import codec_key, codec_server
from commands.demo import demo
from commands.enforcement import batches, cancel, enforce, pause, resume, status
from commands.lists import blocklist_app, protect_app
from commands.planning import plan, plans, show_plan
from commands.rollback import items, rollback
from commands.sandbox import sandbox
from commands.schedule import schedule_app

app = typer.Typer(
    help="Make your Spotify library obey your artist blocklist.",
    epilog=EXIT_CODES_EPILOG,
    cls=Group,
    no_args_is_help=True,
    add_completion=False,
    # Locals can hold tokens: never show them in a traceback.
    pretty_exceptions_show_locals=False,
)

for name, command in (
    ("login", login),
    ("sandbox", sandbox),
    ("plan", plan),
    ("show-plan", show_plan),
    ("plans", plans),
    ("enforce", enforce),
    ("status", status),
    ("cancel", cancel),
    ("pause", pause),
    ("resume", resume),
    ("batches", batches),
    ("items", items),
    ("rollback", rollback),
    ("demo", demo),
    ("codec-key", codec_key),
    ("codec-server", codec_server),
):
    # Command: flags without a type in --help (commands/_help.py); every help ends
    # with the exit codes.
    app.command(name, cls=Command, epilog=EXIT_CODES_EPILOG)(command)

app.add_typer(blocklist_app, name="blocklist")
app.add_typer(protect_app, name="protect")
app.add_typer(schedule_app, name="schedule")

if __name__ == "__main__":
    app()
