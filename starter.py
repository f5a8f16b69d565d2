"""The person's command line: log in, run the local Spotify sandbox, and (soon) plan,
enforce, watch, cancel and roll back."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    help="Make your Spotify library obey your artist blocklist.",
    no_args_is_help=True,
    add_completion=False,
    # Locals can hold tokens: never show them in a traceback.
    pretty_exceptions_show_locals=False,
)


@app.command()
def login(
    no_browser: Annotated[
        bool, typer.Option("--no-browser", help="Print the authorization link instead.")
    ] = False,
) -> None:
    """Log in to Spotify (Authorization Code with PKCE) and store the tokens encrypted."""
    from enforcer.config import Settings
    from enforcer.login import login as run_login
    from enforcer.spotify.errors import SpotifyError

    try:
        account = asyncio.run(run_login(Settings(), open_browser=not no_browser))
    except (SpotifyError, ValueError) as error:
        # Settings, key and login errors name what is wrong and never a secret.
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"Logged in as {account}. Tokens are stored encrypted.")


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


if __name__ == "__main__":
    app()
