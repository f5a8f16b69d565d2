"""The person's command line: log in, keep the blocklist and the protect list, run the
local Spotify sandbox, plan, enforce a plan and watch, pause, resume or cancel its batch,
roll a batch back (or chosen items of it), run the whole flow on the sandbox
(``demo``), and make payload keys and serve the Web UI's codec (``codec-key``,
``codec-server``).

This file only assembles the app; the commands live in the ``commands`` package, one
module per group, with what they share in its private modules.
"""

from __future__ import annotations

import typer

from commands.account import login
from commands.codec import codec_key, codec_server
from commands.demo import demo
from commands.enforcement import batches, cancel, enforce, pause, resume, status
from commands.lists import blocklist_app, protect_app
from commands.planning import plan, plans, show_plan
from commands.rollback import items, rollback
from commands.sandbox import sandbox

app = typer.Typer(
    help="Make your Spotify library obey your artist blocklist.",
    no_args_is_help=True,
    add_completion=False,
    # Locals can hold tokens: never show them in a traceback.
    pretty_exceptions_show_locals=False,
)

app.command()(login)
app.command()(sandbox)
app.command()(plan)
app.command("show-plan")(show_plan)
app.command()(plans)
app.command()(enforce)
app.command()(status)
app.command()(cancel)
app.command()(pause)
app.command()(resume)
app.command()(batches)
app.command()(items)
app.command()(rollback)
app.command()(demo)
app.command("codec-key")(codec_key)
app.command("codec-server")(codec_server)

app.add_typer(blocklist_app, name="blocklist")
app.add_typer(protect_app, name="protect")

if __name__ == "__main__":
    app()
