"""``login``: the person's Spotify account, its tokens stored encrypted."""

from __future__ import annotations

from typing import Annotated

import typer

from commands import _runtime
from commands._runtime import run
from enforcer.config import Settings
from enforcer.login import login as run_login


def login(
    no_browser: Annotated[
        bool, typer.Option("--no-browser", help="Print the authorization link instead.")
    ] = False,
) -> None:
    """Log in to Spotify (Authorization Code with PKCE) and store the tokens encrypted."""

    async def log_in() -> None:
        # Looked up on the module, not imported by name, so that tests replacing the seam
        # reach this call too.
        transport = _runtime.spotify_transport
        account = await run_login(
            Settings(),
            open_browser=not no_browser,
            accounts_transport=transport(),
            api_transport=transport(),
        )
        typer.echo(f"Logged in as {account}. Tokens are stored encrypted.")

    run(log_in())
