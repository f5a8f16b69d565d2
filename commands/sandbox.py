"""``sandbox``: the local Spotify sandbox, for trying everything without a real account."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from commands._inputs import whole_number_from


def sandbox(
    fixture: Annotated[
        Path | None,
        typer.Option(help="A library fixture (JSON) to load.", exists=True, dir_okay=False),
    ] = None,
    generate: Annotated[
        str | None,
        typer.Option(
            help="Serve a generated library instead: the generator's arguments as "
            "comma-separated name=value pairs, e.g. 'liked_songs=20000,playlists=300,seed=7' "
            "(also playlist_size, artists, albums, saved_albums, followed_artists, "
            "followed_playlists, featured_rate, duplicate_rate, local_rate, "
            "unavailable_rate, user_id). Its user is 'user' unless user_id is given.",
            metavar="NAME=VALUE,...",
        ),
    ] = None,
    port: Annotated[
        int, typer.Option(callback=whole_number_from(1, 65535), help="Port on 127.0.0.1.")
    ] = 8787,
) -> None:
    """Serve the local Spotify sandbox on 127.0.0.1."""
    # Imported here: the server's dependencies are needed by this command alone.
    from enforcer.sandbox.server import build_sandbox, generated_sandbox, serve_sandbox

    if fixture is not None and generate is not None:
        raise typer.BadParameter("give either --fixture or --generate, not both")
    if generate is None:
        built = build_sandbox(fixture)
    else:
        try:
            built = generated_sandbox(generate)
        except ValueError as error:
            raise typer.BadParameter(str(error), param_hint="'--generate'") from None
    serve_sandbox(built, port)
