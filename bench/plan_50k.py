"""How long planning a large library takes, and how much memory it needs.

    .venv/bin/python bench/plan_50k.py [--liked 50000] [--playlists 500] [--size 40]

Generates a seeded library (``enforcer.sandbox.generate_library``), reads it whole
through the real client from the in-process sandbox (``read_library``), then plans it
under the ``mentions`` policy (the most work: credits and titles) against a blocklist
of 25 of its artists. Prints the read time, the planning time (best of three) and the
planning's peak memory (tracemalloc, measured in a separate run since tracing slows
Python down).
"""

from __future__ import annotations

import argparse
import asyncio
import time
import tracemalloc
from typing import Any

import httpx

from enforcer.library import read_library
from enforcer.models import BlockedArtist, LibrarySnapshot, PlanOptions, Policy, ProtectList
from enforcer.planner import make_plan
from enforcer.sandbox import Sandbox, generate_library
from enforcer.spotify import SpotifyClient

USER = "bench"
BLOCKED_ARTISTS = 25


class _SandboxToken:
    """The sandbox's first access token, valid for longer than the benchmark runs."""

    def __init__(self, token: str) -> None:
        self._token = token

    def __repr__(self) -> str:
        return "<_SandboxToken>"

    async def access_token(self) -> str:
        return self._token

    async def refresh_after_rejection(self, rejected: str) -> str:
        raise RuntimeError("the sandbox refused its own token: the benchmark ran too long")


async def _read(fixture: dict[str, Any]) -> tuple[LibrarySnapshot, int]:
    sandbox = Sandbox()
    sandbox.load_fixture(fixture)
    token = _SandboxToken(sandbox.issue_tokens(USER)["access_token"])
    async with SpotifyClient(
        token,
        api_base_url="http://sandbox.test/v1",
        transport=httpx.ASGITransport(app=sandbox.app),
    ) as client:
        library = await read_library(client, USER, PlanOptions())
        return library, client.calls.total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--liked", type=int, default=50_000)
    parser.add_argument("--playlists", type=int, default=500)
    parser.add_argument("--size", type=int, default=40)
    arguments = parser.parse_args()

    started = time.perf_counter()
    fixture = generate_library(
        seed=50,
        user_id=USER,
        liked_songs=arguments.liked,
        playlists=arguments.playlists,
        playlist_size=arguments.size,
        artists=1_000,
        albums=2_000,
        saved_albums=500,
        followed_artists=200,
    )
    generated = time.perf_counter() - started

    started = time.perf_counter()
    library, calls = asyncio.run(_read(fixture))
    read_seconds = time.perf_counter() - started

    blocklist = [
        BlockedArtist(artist_id=artist["id"], name=artist["name"])
        for artist in fixture["catalog"]["artists"][:: 1_000 // BLOCKED_ARTISTS]
    ]
    options = PlanOptions(policy=Policy.MENTIONS)
    timings = []
    for _ in range(3):
        started = time.perf_counter()
        plan = make_plan(library, blocklist, ProtectList(), options)
        timings.append(time.perf_counter() - started)

    tracemalloc.start()
    make_plan(library, blocklist, ProtectList(), options)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    playlist_items = sum(len(p.items or ()) for p in library.playlists)
    print(
        f"library: {len(library.liked_songs)} liked songs, {len(library.playlists)} playlists "
        f"({playlist_items} entries read), {len(library.saved_albums)} saved albums, "
        f"{len(library.followed_artists)} followed artists; generated in {generated:.2f} s"
    )
    print(f"read through the client and sandbox: {read_seconds:.2f} s, {calls} API calls")
    print(
        f"plan ({len(blocklist)} blocked artists, mentions policy): "
        f"{len(plan.actions)} actions, {len(plan.not_enforced)} not enforced"
    )
    print(
        f"make_plan: best {min(timings):.3f} s of {', '.join(f'{t:.3f}' for t in timings)}; "
        f"peak traced memory {peak / 2**20:.1f} MiB"
    )


if __name__ == "__main__":
    main()
