"""The Web API under /v1: strict like Spotify about limits, IDs, scopes and ownership,
and as lenient as Spotify about the forms a request may take.

Invariants:

- Every request is judged at arrival (faults, rate limits, the change itself) and only
  its answer waits for the injected latency (see ``_traffic``).
- A path is served with or without one trailing slash (``GET /v1/me/``), as Spotify does;
  counters key it by the endpoint's template, the request log keeps it as sent.
- Every body form Spotify documents or is known to accept is accepted; where both the
  query and the body say something, Spotify's documented precedence applies (the query's
  ``uris``/``ids`` win), and where it is unknown a setting chooses (docs/sandbox.md).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from . import _contract as rules
from ._accounts import AccessGrant
from ._identifiers import (
    IdentifierError,
    SpotifyUri,
    format_timestamp,
    is_base62_id,
    parse_timestamp,
    parse_uri,
)
from ._objects import ObjectRenderer
from ._state import LibraryState, Playlist, PlaylistItem, Timeline, User
from ._traffic import FaultPlan

if TYPE_CHECKING:
    from ._sandbox import Sandbox

JSON = dict[str, Any]
T = TypeVar("T")
_LIBRARY_TYPES = frozenset(
    {"track", "album", "artist", "episode", "show", "audiobook", "user", "playlist"}
)
_LIBRARY_SCOPE_FAMILY = {
    "track": ("user-library-modify", "user-library-read"),
    "album": ("user-library-modify", "user-library-read"),
    "episode": ("user-library-modify", "user-library-read"),
    "show": ("user-library-modify", "user-library-read"),
    "audiobook": ("user-library-modify", "user-library-read"),
    "artist": ("user-follow-modify", "user-follow-read"),
    "user": ("user-follow-modify", "user-follow-read"),
    "playlist": ("playlist-modify-public", "playlist-read-private"),
}
_PLAYLIST_ITEM_TYPES = frozenset({"track", "episode"})
SENT_PATH = "sandbox.sent_path"
"""Where ``TrailingSlashes`` keeps, in the ASGI scope, the path as the client sent it."""


class TrailingSlashes:
    """ASGI middleware: ``/v1/...path/`` is routed as ``/v1/...path``, as Spotify answers it.

    Not a redirect: Spotify answers the slashed path itself, and a client following a
    redirect would send a second request.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and path.startswith("/v1/") and path.endswith("/"):
            trimmed = path[:-1]
            if trimmed != "/v1":
                raw = scope.get("raw_path")
                scope = {**scope, "path": trimmed, SENT_PATH: path}
                if isinstance(raw, bytes) and raw.endswith(b"/"):
                    scope["raw_path"] = raw[:-1]
        await self.app(scope, receive, send)


def sent_path(request: Request) -> str:
    """The request's path as the client sent it (before ``TrailingSlashes``)."""
    sent = request.scope.get(SENT_PATH)
    return sent if isinstance(sent, str) else request.url.path


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        self.status = status
        self.message = message
        super().__init__(f"{status}: {message}")


def spotify_error(
    status: int, message: str, *, reason: str | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    error: JSON = {"status": status, "message": message}
    if reason is not None:
        error["reason"] = reason
    return JSONResponse({"error": error}, status_code=status, headers=headers)


@dataclass(slots=True)
class Call:
    request: Request
    user: User
    grant: AccessGrant
    state: LibraryState
    render: ObjectRenderer
    now: int
    legacy: bool

    def require_scope(self, scope: str) -> None:
        if scope not in self.grant.scopes:
            raise ApiError(403, "Insufficient client scope")

    def query(self, name: str) -> str | None:
        return self.request.query_params.get(name)


Handler = Callable[[Call], Awaitable[Response]]


@dataclass(frozen=True, slots=True)
class Endpoint:
    key: str
    handler: Handler
    scopes: tuple[str, ...] = ()

    @property
    def method(self) -> str:
        return self.key.split(" ", 1)[0]

    @property
    def path(self) -> str:
        return self.key.split(" ", 1)[1]


# ---- request parsing -------------------------------------------------------------


def _int_param(call: Call, name: str, default: int, low: int, high: int | None) -> int:
    raw = call.query(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, f"Invalid {name}: {raw!r}") from None
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ApiError(400, f"Invalid {name}: {value} (must be {bound})")
    return value


def _limit(call: Call, maximum: int) -> int:
    return _int_param(call, "limit", rules.PAGE_DEFAULT, 1, maximum)


def _offset(call: Call, maximum: int | None = None) -> int:
    return _int_param(call, "offset", 0, 0, maximum)


async def _json_value(call: Call) -> object:
    """The parsed JSON body, whatever its form; None when there is no body."""
    raw = await call.request.body()
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "Error parsing JSON.") from None


async def _json_body(call: Call) -> JSON | None:
    body = await _json_value(call)
    if body is not None and not isinstance(body, dict):
        raise ApiError(400, "Error parsing JSON: expected an object.")
    return body


def _split(raw: str) -> list[str]:
    return [part.strip() for part in raw.split(",")]


async def _ids(call: Call, maximum: int, *, query_only: bool = False) -> list[str]:
    """IDs from ``?ids=`` or, failing that, the body's ``ids`` (as Spotify reads them)."""
    raw = call.query("ids")
    if raw is not None:
        ids = _split(raw)
    elif query_only:
        raise ApiError(400, "Missing required field: ids")
    else:
        body = await _json_body(call)
        value = None if body is None else body.get("ids")
        if value is None:
            raise ApiError(400, "Missing required field: ids")
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ApiError(400, "ids must be an array of strings")
        ids = list(value)
    return _check_ids(ids, maximum)


def _check_ids(ids: list[str], maximum: int) -> list[str]:
    if not ids or ids == [""]:
        raise ApiError(400, "Missing required field: ids")
    if len(ids) > maximum:
        raise ApiError(400, f"Too many ids requested: {len(ids)} (maximum {maximum})")
    for ident in ids:
        if not is_base62_id(ident):
            raise ApiError(400, f"Invalid base62 id: {ident!r}")
    return ids


def _known(ids: Sequence[str], catalog: dict[str, Any], what: str) -> None:
    for ident in ids:
        if ident not in catalog:
            raise ApiError(400, f"Non existing {what} id: {ident!r}")


@dataclass(frozen=True)
class _SavedIds:
    """Liked songs or saved albums: both answer the same legacy writes by ID."""

    timeline: Timeline
    catalog: dict[str, Any]
    what: str
    """What an ID names, in the error for one the catalog lacks."""
    maximum: int
    """How many IDs one request may name."""

    async def save(self, call: Call) -> Response:
        ids = await _ids(call, self.maximum)
        _known(ids, self.catalog, self.what)
        for ident in reversed(ids):
            if ident not in self.timeline:
                self.timeline.put(ident, call.now)
        return Response(status_code=200)

    async def remove(self, call: Call) -> Response:
        ids = await _ids(call, self.maximum)
        _known(ids, self.catalog, self.what)
        for ident in ids:
            self.timeline.remove(ident)
        return Response(status_code=200)

    async def contain(self, call: Call) -> Response:
        ids = await _ids(call, self.maximum, query_only=True)
        return JSONResponse([ident in self.timeline for ident in ids])


def _liked_songs(call: Call) -> _SavedIds:
    return _SavedIds(
        call.user.liked_songs, call.state.catalog.tracks, "track", rules.LEGACY_TRACK_IDS_MAX
    )


def _saved_albums(call: Call) -> _SavedIds:
    return _SavedIds(
        call.user.saved_albums, call.state.catalog.albums, "album", rules.LEGACY_ALBUM_IDS_MAX
    )


def _uris(raw: str | None, maximum: int, allowed: frozenset[str]) -> list[SpotifyUri]:
    if raw is None:
        raise ApiError(400, "Missing required field: uris")
    values = _split(raw)
    if values == [""]:
        raise ApiError(400, "Missing required field: uris")
    if len(values) > maximum:
        raise ApiError(400, f"Too many uris requested: {len(values)} (maximum {maximum})")
    try:
        return [parse_uri(value, allowed) for value in values]
    except IdentifierError as error:
        raise ApiError(400, str(error)) from None


def _playlist(call: Call) -> Playlist:
    playlist_id = call.request.path_params["playlist_id"]
    if not is_base62_id(playlist_id):
        raise ApiError(400, f"Invalid base62 id: {playlist_id!r}")
    playlist = call.state.playlists.get(playlist_id)
    if playlist is None:
        raise ApiError(404, "Resource not found")
    return playlist


def _catalog_entry(call: Call, parameter: str, catalog: dict[str, T]) -> T:
    """The catalog object the path names: 400 for a malformed ID, 404 for an unknown one."""
    ident = call.request.path_params[parameter]
    if not is_base62_id(ident):
        raise ApiError(400, "invalid id")
    entry = catalog.get(ident)
    if entry is None:
        raise ApiError(404, "Resource not found")
    return entry


def _playlist_uris(values: Sequence[object], call: Call) -> list[SpotifyUri]:
    try:
        uris = [parse_uri(value, _PLAYLIST_ITEM_TYPES) for value in values]
    except IdentifierError as error:
        raise ApiError(400, str(error)) from None
    for uri in uris:
        if uri.kind != "track" or uri.id not in call.state.catalog.tracks:
            raise ApiError(400, f"Non existing {uri.kind} id: {str(uri)!r}")
    return uris


# ---- the endpoints ----------------------------------------------------------------


class WebApi:
    """Every /v1 endpoint; each one a coroutine taking an authenticated ``Call``."""

    def __init__(self, sandbox: Sandbox) -> None:
        self._sandbox = sandbox
        legacy_write = ("user-library-modify",)
        self.endpoints = [
            Endpoint("GET /v1/me", self.me),
            Endpoint("GET /v1/me/tracks", self.saved_tracks, ("user-library-read",)),
            Endpoint("PUT /v1/me/tracks", self.save_tracks, legacy_write),
            Endpoint("DELETE /v1/me/tracks", self.remove_tracks, legacy_write),
            Endpoint("GET /v1/me/tracks/contains", self.tracks_contain, ("user-library-read",)),
            Endpoint("GET /v1/me/albums", self.saved_albums, ("user-library-read",)),
            Endpoint("PUT /v1/me/albums", self.save_albums, legacy_write),
            Endpoint("DELETE /v1/me/albums", self.remove_albums, legacy_write),
            Endpoint("GET /v1/me/albums/contains", self.albums_contain, ("user-library-read",)),
            Endpoint("GET /v1/me/following", self.followed, ("user-follow-read",)),
            Endpoint("PUT /v1/me/following", self.follow, ("user-follow-modify",)),
            Endpoint("DELETE /v1/me/following", self.unfollow, ("user-follow-modify",)),
            Endpoint("GET /v1/me/following/contains", self.follows, ("user-follow-read",)),
            Endpoint("PUT /v1/me/library", self.library_save),
            Endpoint("DELETE /v1/me/library", self.library_remove),
            Endpoint("GET /v1/me/library/contains", self.library_contains),
            Endpoint("GET /v1/me/playlists", self.my_playlists, ("playlist-read-private",)),
            Endpoint("GET /v1/playlists/{playlist_id}", self.get_playlist),
            Endpoint(
                "GET /v1/playlists/{playlist_id}/items",
                self.playlist_items,
                ("playlist-read-private",),
            ),
            Endpoint("POST /v1/playlists/{playlist_id}/items", self.add_items),
            Endpoint("DELETE /v1/playlists/{playlist_id}/items", self.remove_items),
            Endpoint(
                "GET /v1/playlists/{playlist_id}/tracks",
                self.playlist_items,
                ("playlist-read-private",),
            ),
            Endpoint("POST /v1/playlists/{playlist_id}/tracks", self.add_items),
            Endpoint("DELETE /v1/playlists/{playlist_id}/tracks", self.remove_items),
            # Single catalog reads: the batch GETs are gone for development-mode apps.
            Endpoint("GET /v1/artists/{artist_id}", self.get_artist),
            Endpoint("GET /v1/tracks/{track_id}", self.get_track),
        ]
        assert tuple(e.key for e in self.endpoints) == rules.ENDPOINTS

    def routes(self) -> list[Route]:
        routes = [
            Route(e.path, self._wrap(e), methods=[e.method], name=e.key) for e in self.endpoints
        ]
        routes.append(
            Route(
                "/v1/{rest:path}",
                self._unknown,
                methods=["GET", "PUT", "POST", "DELETE", "PATCH"],
            )
        )
        return routes

    async def _unknown(self, request: Request) -> Response:
        response = spotify_error(404, "Service not found")
        self._log(request, response.status_code, self._sandbox.clock())
        return response

    def _log(self, request: Request, status: int, arrived_at: float) -> None:
        self._sandbox.traffic.log_request(
            request.method, sent_path(request), request.url.query, status, arrived_at
        )

    def _wrap(self, endpoint: Endpoint) -> Callable[[Request], Awaitable[Response]]:
        sandbox = self._sandbox

        async def run(request: Request) -> Response:
            traffic = sandbox.traffic
            arrived_at = sandbox.clock()
            resource = next(iter(request.path_params.values()), None)
            traffic.count_call(endpoint.key, None if resource is None else str(resource))
            plan = traffic.roll_faults()
            response = await self._judge(endpoint, request, plan)
            self._log(request, response.status_code, arrived_at)
            await plan.delay_answer()
            return response

        return run

    async def _judge(self, endpoint: Endpoint, request: Request, plan: FaultPlan) -> Response:
        """The answer to ``request``, decided (and any change made) now, at its arrival."""
        if plan.storm_retry_after is not None:
            return spotify_error(
                429,
                "API rate limit exceeded",
                headers={"Retry-After": str(plan.storm_retry_after)},
            )
        if plan.server_error is not None and not plan.after_change:
            return spotify_error(plan.server_error, "Server error")
        response = await self._authenticated(endpoint, request, plan.answer_delay)
        if plan.server_error is not None:
            return spotify_error(plan.server_error, "Server error")
        return response

    async def _authenticated(
        self, endpoint: Endpoint, request: Request, answer_delay: float
    ) -> Response:
        sandbox = self._sandbox
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return spotify_error(401, "No token provided")
        grant = sandbox.accounts.lookup(token.strip())
        if isinstance(grant, str):
            return spotify_error(401, grant)
        state = sandbox.state
        user = state.users.get(grant.user_id)
        if user is None:
            return spotify_error(401, "Invalid access token")
        limited = sandbox.traffic.admit(grant.client_id, answer_delay)
        if limited is not None:
            headers = {"Retry-After": str(limited.retry_after)}
            if limited.quota_exceeded:
                return spotify_error(
                    429, "Too many requests", reason="QUOTA_EXCEEDED", headers=headers
                )
            return spotify_error(429, "API rate limit exceeded", headers=headers)
        settings = sandbox.settings
        closed = settings.closed_endpoints.get(endpoint.key)
        if closed is not None:
            return spotify_error(closed, "This endpoint is not available to this app")
        legacy = endpoint.key in rules.LEGACY_ENDPOINTS
        if legacy and settings.legacy_endpoints == "forbidden":
            return spotify_error(403, "Forbidden: endpoint not available in development mode")
        call = Call(
            request=request,
            user=user,
            grant=grant,
            state=state,
            render=sandbox.renderer(str(request.base_url).rstrip("/") + "/v1"),
            now=int(sandbox.clock()),
            legacy=legacy,
        )
        try:
            for scope in endpoint.scopes:
                call.require_scope(scope)
            return await endpoint.handler(call)
        except ApiError as error:
            return spotify_error(error.status, error.message)

    # -- profile

    async def me(self, call: Call) -> Response:
        return JSONResponse(call.render.private_user(call.user))

    # -- catalog

    async def get_artist(self, call: Call) -> Response:
        artist = _catalog_entry(call, "artist_id", call.state.catalog.artists)
        return JSONResponse(call.render.artist_full(artist))

    async def get_track(self, call: Call) -> Response:
        track = _catalog_entry(call, "track_id", call.state.catalog.tracks)
        return JSONResponse(call.render.track_full(track))

    # -- liked songs (current reads, legacy writes)

    async def saved_tracks(self, call: Call) -> Response:
        limit, offset = _limit(call, rules.PAGE_MAX), _offset(call)
        liked = call.user.liked_songs
        render = call.render
        tracks = call.state.catalog.tracks
        items = [
            {"added_at": _iso(at), "track": render.track_full(tracks[track_id])}
            for track_id, at in liked.page(offset, limit)
        ]
        return _page(render, "/me/tracks", items, offset, limit, len(liked))

    async def save_tracks(self, call: Call) -> Response:
        body = await _json_body(call)
        liked = call.user.liked_songs
        if body is not None and "timestamped_ids" in body:
            entries = body["timestamped_ids"]
            if not isinstance(entries, list):
                raise ApiError(400, "timestamped_ids must be an array")
            if len(entries) > rules.LEGACY_TRACK_IDS_MAX:
                maximum = rules.LEGACY_TRACK_IDS_MAX
                raise ApiError(400, f"Too many ids requested: {len(entries)} (maximum {maximum})")
            dated: list[tuple[str, int]] = []
            for entry in entries:
                if not isinstance(entry, dict) or "id" not in entry or "added_at" not in entry:
                    raise ApiError(400, f"timestamped_ids entry needs id and added_at: {entry!r}")
                _check_ids([entry["id"]], 1)
                try:
                    dated.append((entry["id"], parse_timestamp(entry["added_at"])))
                except IdentifierError as error:
                    raise ApiError(400, str(error)) from None
            if not dated:
                raise ApiError(400, "Missing required field: timestamped_ids")
            _known([ident for ident, _ in dated], call.state.catalog.tracks, "track")
            for track_id, added_at in dated:
                liked.put(track_id, added_at)
            return Response(status_code=200)
        return await _liked_songs(call).save(call)

    async def remove_tracks(self, call: Call) -> Response:
        return await _liked_songs(call).remove(call)

    async def tracks_contain(self, call: Call) -> Response:
        return await _liked_songs(call).contain(call)

    # -- saved albums

    async def saved_albums(self, call: Call) -> Response:
        limit, offset = _limit(call, rules.PAGE_MAX), _offset(call)
        saved = call.user.saved_albums
        albums = call.state.catalog.albums
        items = [
            {"added_at": _iso(at), "album": call.render.album_full(albums[album_id])}
            for album_id, at in saved.page(offset, limit)
        ]
        return _page(call.render, "/me/albums", items, offset, limit, len(saved))

    async def save_albums(self, call: Call) -> Response:
        return await _saved_albums(call).save(call)

    async def remove_albums(self, call: Call) -> Response:
        return await _saved_albums(call).remove(call)

    async def albums_contain(self, call: Call) -> Response:
        return await _saved_albums(call).contain(call)

    # -- followed artists

    def _follow_type(self, call: Call, allowed: frozenset[str]) -> str:
        kind = call.query("type")
        if kind is None:
            raise ApiError(400, "Missing required field: type")
        if kind not in allowed:
            raise ApiError(400, f"Invalid type: {kind!r}")
        return kind

    async def followed(self, call: Call) -> Response:
        self._follow_type(call, frozenset({"artist"}))
        limit = _limit(call, rules.PAGE_MAX)
        after = call.query("after")
        if after is not None and not is_base62_id(after):
            raise ApiError(400, f"Invalid after cursor: {after!r}")
        followed = call.user.followed_artists
        ids = followed.page_after(after, limit)
        artists = call.state.catalog.artists
        last = ids[-1] if ids else None
        more = last is not None and followed.has_more_after(last)
        base = f"{call.render.api_base}/me/following?type=artist"
        href = f"{base}&limit={limit}" + (f"&after={after}" if after else "")
        body = {
            "artists": {
                "href": href,
                "items": [call.render.artist_full(artists[a]) for a in ids],
                "limit": limit,
                "next": f"{base}&after={last}&limit={limit}" if more else None,
                "cursors": {"after": last if more else None},
                "total": len(followed),
            }
        }
        return JSONResponse(body)

    async def _follow_ids(self, call: Call, maximum: int) -> tuple[str, list[str]]:
        kind = self._follow_type(call, frozenset({"artist", "user"}))
        ids = await _ids(call, maximum)
        if kind == "artist":
            _known(ids, call.state.catalog.artists, "artist")
        return kind, ids

    async def follow(self, call: Call) -> Response:
        kind, ids = await self._follow_ids(call, rules.LEGACY_FOLLOW_IDS_MAX)
        for ident in ids:
            if kind == "artist":
                call.user.followed_artists.add(ident)
            elif f"spotify:user:{ident}" not in call.user.other_saved:
                call.user.other_saved.put(f"spotify:user:{ident}", call.now)
        return Response(status_code=204)

    async def unfollow(self, call: Call) -> Response:
        kind, ids = await self._follow_ids(call, rules.LEGACY_FOLLOW_IDS_MAX)
        for ident in ids:
            if kind == "artist":
                call.user.followed_artists.remove(ident)
            else:
                call.user.other_saved.remove(f"spotify:user:{ident}")
        return Response(status_code=204)

    async def follows(self, call: Call) -> Response:
        kind = self._follow_type(call, frozenset({"artist", "user"}))
        ids = await _ids(call, rules.LEGACY_FOLLOW_IDS_MAX, query_only=True)
        if kind == "artist":
            return JSONResponse([ident in call.user.followed_artists for ident in ids])
        return JSONResponse([f"spotify:user:{ident}" in call.user.other_saved for ident in ids])

    # -- the current library endpoints

    def _library_uris(self, call: Call, *, write: bool) -> list[SpotifyUri]:
        allowed = _LIBRARY_TYPES
        if write and not self._sandbox.settings.library_accepts_artist_uris:
            allowed = allowed - {"artist"}
        uris = _uris(call.query("uris"), rules.LIBRARY_URIS_MAX, allowed)
        catalog = call.state.catalog
        known: dict[str, Any] = {
            "track": catalog.tracks,
            "album": catalog.albums,
            "artist": catalog.artists,
            "playlist": call.state.playlists,
            "user": call.state.users,
        }
        for uri in uris:
            index = known.get(uri.kind)
            if index is not None and uri.id not in index:
                raise ApiError(400, f"Non existing id: {str(uri)!r}")
            call.require_scope(_LIBRARY_SCOPE_FAMILY[uri.kind][0 if write else 1])
        return uris

    async def library_save(self, call: Call) -> Response:
        uris = self._library_uris(call, write=True)
        user = call.user
        for uri in reversed(uris):
            if uri.kind == "track":
                if uri.id not in user.liked_songs:
                    user.liked_songs.put(uri.id, call.now)
            elif uri.kind == "album":
                if uri.id not in user.saved_albums:
                    user.saved_albums.put(uri.id, call.now)
            elif uri.kind == "artist":
                user.followed_artists.add(uri.id)
            elif uri.kind == "playlist":
                if uri.id not in user.playlists:
                    user.playlists.insert(0, uri.id)
            elif str(uri) not in user.other_saved:
                user.other_saved.put(str(uri), call.now)
        return Response(status_code=200)

    async def library_remove(self, call: Call) -> Response:
        uris = self._library_uris(call, write=True)
        user = call.user
        for uri in uris:
            if uri.kind == "track":
                user.liked_songs.remove(uri.id)
            elif uri.kind == "album":
                user.saved_albums.remove(uri.id)
            elif uri.kind == "artist":
                user.followed_artists.remove(uri.id)
            elif uri.kind == "playlist":
                if uri.id in user.playlists:
                    user.playlists.remove(uri.id)
            else:
                user.other_saved.remove(str(uri))
        return Response(status_code=200)

    async def library_contains(self, call: Call) -> Response:
        uris = _uris(call.query("uris"), rules.LIBRARY_URIS_MAX, _LIBRARY_TYPES)
        for uri in uris:
            call.require_scope(_LIBRARY_SCOPE_FAMILY[uri.kind][1])
        user = call.user
        answers: list[bool] = []
        for uri in uris:
            if uri.kind == "track":
                answers.append(uri.id in user.liked_songs)
            elif uri.kind == "album":
                answers.append(uri.id in user.saved_albums)
            elif uri.kind == "artist":
                answers.append(uri.id in user.followed_artists)
            elif uri.kind == "playlist":
                answers.append(uri.id in user.playlists)
            else:
                answers.append(str(uri) in user.other_saved)
        return JSONResponse(answers)

    # -- playlists

    async def my_playlists(self, call: Call) -> Response:
        limit = _limit(call, rules.PAGE_MAX)
        offset = _offset(call, rules.MY_PLAYLISTS_OFFSET_MAX)
        ids = call.user.playlists
        state = call.state
        items = [
            call.render.playlist_simple(state.playlists[p], state.users[state.playlists[p].owner])
            for p in ids[offset : offset + limit]
        ]
        return _page(call.render, "/me/playlists", items, offset, limit, len(ids))

    async def get_playlist(self, call: Call) -> Response:
        playlist = _playlist(call)
        owner = call.state.users[playlist.owner]
        body = {
            **call.render.playlist_simple(playlist, owner),
            "followers": {"href": None, "total": 0},
        }
        if playlist.can_read_items(call.user.id):
            limit = rules.PLAYLIST_ITEMS_PAGE_MAX
            items = [call.render.playlist_item(i) for i in playlist.items[:limit]]
            total = len(playlist.items)
            render = call.render
            body["items"] = render.paging(
                f"/playlists/{playlist.id}/items", items, offset=0, limit=limit, total=total
            )
            body["tracks"] = render.paging(
                f"/playlists/{playlist.id}/tracks", items, offset=0, limit=limit, total=total
            )
        else:
            del body["items"], body["tracks"]
        return JSONResponse(body)

    async def playlist_items(self, call: Call) -> Response:
        maximum = (
            rules.LEGACY_PLAYLIST_TRACKS_PAGE_MAX if call.legacy else rules.PLAYLIST_ITEMS_PAGE_MAX
        )
        limit, offset = _limit(call, maximum), _offset(call)
        types = call.query("additional_types")
        if types is not None:
            for kind in _split(types):
                if kind not in _PLAYLIST_ITEM_TYPES:
                    raise ApiError(400, f"Invalid additional_types value: {kind!r}")
        playlist = _playlist(call)
        if not playlist.can_read_items(call.user.id):
            raise ApiError(403, "You cannot read the items of a playlist you do not own")
        items = [call.render.playlist_item(i) for i in playlist.items[offset : offset + limit]]
        path = f"/playlists/{playlist.id}/{'tracks' if call.legacy else 'items'}"
        query = {"additional_types": types} if types else None
        page = call.render.paging(
            path, items, offset=offset, limit=limit, total=len(playlist.items), query=query
        )
        return JSONResponse(page)

    def _writable(self, call: Call, playlist: Playlist, verb: str) -> None:
        call.require_scope(
            "playlist-modify-public" if playlist.public else "playlist-modify-private"
        )
        if not playlist.can_write(call.user.id, self._sandbox.settings.collaborator_can_write):
            raise ApiError(403, f"You cannot {verb} a playlist you don't own.")

    async def add_items(self, call: Call) -> Response:
        """Body ``{"uris": [...], "position": n}`` or a bare array of URIs, or ``uris`` and
        ``position`` in the query. The query's ``uris`` win over the body's (the spec says
        so); a ``position`` given both ways: ``settings.position_precedence``."""
        playlist = _playlist(call)
        body = await _json_value(call)
        body_uris: object = None
        body_position: object = None
        if isinstance(body, list):
            body_uris = body
        elif isinstance(body, dict):
            body_uris, body_position = body.get("uris"), body.get("position")
        elif body is not None:
            raise ApiError(400, "Error parsing JSON: expected an object or an array of URIs.")
        raw_query = call.query("uris")
        if raw_query is not None:
            values: list[object] = list(_split(raw_query))
        elif isinstance(body_uris, list):
            values = body_uris
        elif body_uris is None:
            raise ApiError(400, "Missing required field: uris")
        else:
            raise ApiError(400, f"uris must be an array of URIs, got {body_uris!r}")
        if not values or values == [""]:
            raise ApiError(400, "Missing required field: uris")
        if len(values) > rules.PLAYLIST_WRITE_MAX:
            raise ApiError(
                400, f"Too many uris requested: {len(values)} (maximum {rules.PLAYLIST_WRITE_MAX})"
            )
        query_position = call.query("position")
        if self._sandbox.settings.position_precedence == "query":
            position_raw = query_position if query_position is not None else body_position
        else:
            position_raw = body_position if body_position is not None else query_position
        position = len(playlist.items)
        if position_raw is not None:
            if isinstance(position_raw, bool) or not isinstance(position_raw, int | str):
                raise ApiError(400, f"Invalid position: {position_raw!r}")
            try:
                position = int(position_raw)
            except ValueError:
                raise ApiError(400, f"Invalid position: {position_raw!r}") from None
            if not 0 <= position <= len(playlist.items):
                raise ApiError(400, f"Index out of bounds: position {position}")
        uris = _playlist_uris(values, call)
        self._writable(call, playlist, "add tracks to")
        new_items = [PlaylistItem(str(uri), uri.id, None, call.now, call.user.id) for uri in uris]
        playlist.items[position:position] = new_items
        return JSONResponse({"snapshot_id": playlist.changed()}, status_code=201)

    async def remove_items(self, call: Call) -> Response:
        playlist = _playlist(call)
        body = await _json_body(call)
        key = "tracks" if call.legacy else "items"
        keys = [key]
        if self._sandbox.settings.playlist_removal_keys == "either":
            keys.append("items" if call.legacy else "tracks")
        key = next((k for k in keys if body is not None and k in body), key)
        entries = None if body is None else body.get(key)
        if not isinstance(entries, list) or not entries:
            raise ApiError(400, f"Missing required field: {key}")
        if len(entries) > rules.PLAYLIST_WRITE_MAX:
            raise ApiError(
                400,
                f"Too many {key} requested: {len(entries)} (maximum {rules.PLAYLIST_WRITE_MAX})",
            )
        values: list[object] = []
        for entry in entries:
            if not isinstance(entry, dict) or "uri" not in entry:
                raise ApiError(400, f"Each of {key} needs a uri: {entry!r}")
            values.append(entry["uri"])
        uris = {str(uri) for uri in _playlist_uris(values, call)}
        assert body is not None
        snapshot_id = body.get("snapshot_id")
        if snapshot_id is not None and snapshot_id not in playlist.snapshots:
            raise ApiError(400, f"Invalid snapshot_id: {snapshot_id!r}")
        self._writable(call, playlist, "remove tracks from")
        kept = [item for item in playlist.items if item.uri not in uris]
        if len(kept) != len(playlist.items):
            playlist.items = kept
            playlist.changed()
        return JSONResponse({"snapshot_id": playlist.snapshot_id})


def _iso(epoch_seconds: int) -> str:
    return format_timestamp(epoch_seconds)


def _page(
    render: ObjectRenderer, path: str, items: list[Any], offset: int, limit: int, total: int
) -> Response:
    return JSONResponse(render.paging(path, items, offset=offset, limit=limit, total=total))
