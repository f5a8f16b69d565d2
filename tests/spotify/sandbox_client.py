"""A ``SpotifyClient`` wired to the in-process sandbox, and small libraries made to measure.

``SandboxTokens`` is a test-only ``AccessTokenProvider``: it takes its first tokens
from the sandbox's Python API and refreshes through the sandbox's real
``/api/token`` refresh grant, over the same ASGI transport the client uses.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from enforcer.sandbox import DEFAULT_CLIENT_ID, Sandbox
from enforcer.spotify import AccessTokenProvider, GenerationMemory, LoginRequired, SpotifyClient
from tests.support.contract import ContractRecorder, ContractTransport

SANDBOX_ORIGIN = "http://sandbox.test"
API_BASE_URL = f"{SANDBOX_ORIGIN}/v1"
USER = "alice"
ARTISTS = 30
ALBUMS = 20
EPOCH = datetime(2020, 1, 1, tzinfo=UTC)


class SandboxTokens:
    """Tokens for one sandbox user, refreshed through the sandbox's token endpoint."""

    def __init__(
        self,
        sandbox: Sandbox,
        user_id: str,
        transport: httpx.AsyncBaseTransport,
        scopes: str | None = None,
    ) -> None:
        issued: dict[str, Any] = sandbox.issue_tokens(user_id, scopes)
        self._access: str = issued["access_token"]
        self._refresh: str = issued["refresh_token"]
        self._transport = transport
        self.refreshes = 0

    def __repr__(self) -> str:
        return f"<SandboxTokens refreshes={self.refreshes}>"

    async def access_token(self) -> str:
        return self._access

    async def refresh_after_rejection(self, rejected: str) -> str:
        if rejected != self._access:
            return self._access
        async with httpx.AsyncClient(transport=self._transport, base_url=SANDBOX_ORIGIN) as http:
            response = await http.post(
                "/api/token",
                data={
                    "grant_type": "refresh_token",
                    "refresh_token": self._refresh,
                    "client_id": DEFAULT_CLIENT_ID,
                },
            )
        body = response.json()
        if response.status_code == 400 and body.get("error") == "invalid_grant":
            raise LoginRequired("the refresh token was refused (invalid_grant): log in again")
        response.raise_for_status()
        self._access = body["access_token"]
        self._refresh = body.get("refresh_token", self._refresh)
        self.refreshes += 1
        return self._access


class ObservingTransport(httpx.AsyncBaseTransport):
    """Keeps every request that passes, so a test can read what was sent."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.requests: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return await self.inner.handle_async_request(request)

    def sent(self, method: str, path_suffix: str) -> list[httpx.Request]:
        return [r for r in self.requests if r.method == method and r.url.path.endswith(path_suffix)]


def sandbox_transport(
    sandbox: Sandbox, recorder: ContractRecorder | None
) -> httpx.AsyncBaseTransport:
    inner = httpx.ASGITransport(app=sandbox.app)
    return inner if recorder is None else ContractTransport(inner, recorder)


@asynccontextmanager
async def sandbox_client(
    sandbox: Sandbox,
    recorder: ContractRecorder | None,
    *,
    user_id: str = USER,
    generations: GenerationMemory | None = None,
    tokens: AccessTokenProvider | None = None,
    scopes: str | None = None,
    request_timeout: float = 5.0,
    observer: ObservingTransport | None = None,
) -> AsyncIterator[SpotifyClient]:
    """``observer``, if given, must wrap ``sandbox_transport(sandbox, recorder)``."""
    transport = observer or sandbox_transport(sandbox, recorder)
    provider = tokens or SandboxTokens(sandbox, user_id, transport, scopes)
    async with SpotifyClient(
        provider,
        api_base_url=API_BASE_URL,
        transport=transport,
        timeout=request_timeout,
        generations=generations,
    ) as client:
        yield client


# Libraries made to measure ------------------------------------------------------------


def spotify_id(prefix: str, number: int) -> str:
    """A valid 22-character base-62 ID, readable in a failure message."""
    return f"{prefix}{number:0>{22 - len(prefix)}d}"


def track_id(number: int) -> str:
    return spotify_id("tr", number)


def track_uri(number: int) -> str:
    return f"spotify:track:{track_id(number)}"


def album_id(number: int) -> str:
    return spotify_id("al", number)


def artist_id(number: int) -> str:
    return spotify_id("ar", number)


def moment(number: int) -> datetime:
    """A distinct whole-second moment per number, later for bigger numbers."""
    return EPOCH + timedelta(hours=number)


def stamp(number: int) -> str:
    return moment(number).strftime("%Y-%m-%dT%H:%M:%SZ")


def playlist_id(number: int) -> str:
    return spotify_id("pl", number)


def library(
    *,
    tracks: int = 100,
    liked: int = 0,
    saved_albums: int = 0,
    followed: int = 0,
    playlists: Sequence[Sequence[dict[str, Any]]] = (),
    unavailable: Sequence[int] = (),
) -> dict[str, Any]:
    """A fixture for ``USER``: ``tracks`` catalog tracks, the first ``liked`` of them liked
    (track 0 newest), the first albums saved, the first artists followed, and one owned
    playlist per entry list of ``playlists``; tracks in ``unavailable`` are gone from the
    catalogue."""
    catalog = {
        "artists": [{"id": artist_id(i), "name": f"Artist {i}"} for i in range(ARTISTS)],
        "albums": [
            {
                "id": album_id(i),
                "name": f"Album {i}",
                "artist_ids": [artist_id(i % ARTISTS)],
                "release_date": "2001-02-03",
            }
            for i in range(ALBUMS)
        ],
        "tracks": [
            {
                "id": track_id(i),
                "name": f"Song {i}",
                "duration_ms": 200_000,
                "artist_ids": [artist_id(i % ARTISTS), artist_id((i + 1) % ARTISTS)],
                "album_id": album_id(i % ALBUMS),
                "available": i not in unavailable,
            }
            for i in range(tracks)
        ],
    }
    owned = [
        {"id": playlist_id(index), "name": f"Playlist {index}", "owner": USER, "items": list(items)}
        for index, items in enumerate(playlists)
    ]
    user = {
        "id": USER,
        "display_name": "Alice",
        "liked_songs": [
            {"track_id": track_id(i), "added_at": stamp(liked - i)} for i in range(liked)
        ],
        "saved_albums": [
            {"album_id": album_id(i), "added_at": stamp(saved_albums - i)}
            for i in range(saved_albums)
        ],
        "followed_artists": [artist_id(i) for i in range(followed)],
        "playlists": [entry["id"] for entry in owned],
    }
    return {"catalog": catalog, "playlists": owned, "users": [user]}


def entry(number: int) -> dict[str, Any]:
    """A playlist entry for track ``number``, added by ``USER`` at ``moment(number)``."""
    return {"uri": track_uri(number), "added_at": stamp(number), "added_by": USER}


def local_entry(name: str) -> dict[str, Any]:
    return {"local": {"name": name, "artist": "Me", "album": "Tapes", "duration_ms": 1000}}


def new_sandbox(fixture: dict[str, Any], **sandbox_arguments: Any) -> Sandbox:
    sandbox = Sandbox(**sandbox_arguments)
    sandbox.load_fixture(fixture)
    return sandbox


class Clock:
    """A sandbox clock that moves only when told."""

    def __init__(self, start: datetime = datetime(2026, 6, 1, 12, tzinfo=UTC)) -> None:
        self.now = start.timestamp()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
