"""The ``Sandbox``: state, accounts, traffic rules and the ASGI app that serves them."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route

from ._accounts import DEFAULT_SCOPES, Accounts, ScopeError, parse_scopes
from ._admin import AdminApi
from ._api import TrailingSlashes, WebApi
from ._fixture import (
    FixtureError,
    build_state,
    dump_state,
    dump_user_library,
    merge_generated_user,
    merge_user,
    read_fixture,
)
from ._generator import generate_library, generator_arguments
from ._objects import ObjectRenderer
from ._settings import DEFAULT_CLIENT_ID, Counters, Faults, SandboxSettings
from ._state import Catalog, LibraryState
from ._traffic import Traffic


class Sandbox:
    """A local, stateful Spotify Web API and accounts service for any number of users.

    ``clock`` (epoch seconds) drives rate windows, token expiry and the ``added_at`` of
    new saves, so a test can move time without waiting for it.
    """

    def __init__(
        self,
        settings: SandboxSettings | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings if settings is not None else SandboxSettings()
        self.clock = clock
        self.state = LibraryState(Catalog({}, {}, {}), {}, {})
        self.traffic = Traffic(clock, lambda: self.settings)
        self.accounts = Accounts(
            clock,
            lambda: self.settings,
            lambda user_id: user_id in self.state.users,
            lambda: next(iter(self.state.users), None),
        )
        self._renderers: dict[tuple[str, str], ObjectRenderer] = {}
        routes: list[Route] = [
            Route("/authorize", self.accounts.authorize, methods=["GET"]),
            Route("/api/token", self.accounts.token, methods=["POST"]),
        ]
        routes += AdminApi(self).routes()
        routes += WebApi(self).routes()
        self.app = Starlette(routes=routes, middleware=[Middleware(TrailingSlashes)])

    def __repr__(self) -> str:
        return (
            f"<Sandbox users={len(self.state.users)} playlists={len(self.state.playlists)} "
            f"tracks={len(self.state.catalog.tracks)}>"
        )

    def renderer(self, api_base: str) -> ObjectRenderer:
        """Object rendering for one base URL; its caches live as long as the catalog."""
        shape = self.settings.local_file_shape
        renderer = self._renderers.get((api_base, shape))
        if renderer is None or renderer.catalog is not self.state.catalog:
            renderer = ObjectRenderer(self.state.catalog, api_base, shape)
            self._renderers[(api_base, shape)] = renderer
        return renderer

    # -- state

    def load_fixture(self, data: Mapping[str, Any] | Path | str) -> None:
        """Replace the whole state (catalog, users, playlists). Invalid: nothing changes."""
        self._replace_state(build_state(read_fixture(data)))

    def load_user(self, user_id: str, library: Mapping[str, Any]) -> None:
        """Create or replace one user (see ``dump_user`` for the format)."""
        self._replace_state(build_state(merge_user(self.dump(), user_id, dict(library))))

    def generate_user(self, user_id: str, arguments: Mapping[str, Any]) -> None:
        """Replace ``user_id``'s library (liked songs, albums, artists, the playlists it owns
        and follows) with ``generate_library(user_id=user_id, **arguments)``.

        The generated catalog joins the existing one; the playlists it follows belong to
        ``curator``. Bad arguments raise ``ValueError`` naming the value; nothing changes.
        """
        checked = generator_arguments(arguments)
        if "user_id" in checked:
            given = checked["user_id"]
            raise ValueError(f"user_id: given by the path, not the arguments: {given!r}")
        generated = generate_library(**checked, user_id=user_id)
        self._replace_state(build_state(merge_generated_user(self.dump(), user_id, generated)))

    def dump_user(self, user_id: str) -> dict[str, Any]:
        """The user's section of the fixture, with the playlists it owns inline."""
        if user_id not in self.state.users:
            raise FixtureError(f"unknown user: {user_id!r}")
        return dump_user_library(self.state, user_id)

    def dump(self) -> dict[str, Any]:
        return dump_state(self.state)

    def _replace_state(self, state: LibraryState) -> None:
        for user_id in set(self.state.users) - set(state.users):
            self.accounts.forget_user(user_id)
        self.state = state
        self._renderers.clear()

    # -- accounts

    def issue_tokens(
        self, user_id: str, scopes: str | None = None, client_id: str = DEFAULT_CLIENT_ID
    ) -> dict[str, Any]:
        """Tokens as ``/api/token`` would hand them out after the user agreed."""
        if user_id not in self.state.users:
            raise ValueError(f"unknown user: {user_id!r}")
        try:
            granted = parse_scopes(DEFAULT_SCOPES if scopes is None else scopes)
        except ScopeError as error:
            raise ValueError(str(error)) from None
        return self.accounts.issue(user_id, granted, client_id)

    def revoke_refresh_tokens(self, user_id: str) -> int:
        return self.accounts.revoke_refresh_tokens(user_id)

    # -- traffic

    @property
    def counters(self) -> Counters:
        return self.traffic.counters

    def reset_counters(self) -> None:
        """Zero the counters and empty the request log."""
        self.traffic.reset_counters()

    @property
    def requests(self) -> list[dict[str, Any]]:
        """The latest API requests, oldest first: method, path, query, status, arrived_at."""
        return list(self.traffic.requests)

    def set_faults(self, faults: Faults) -> None:
        self.traffic.set_faults(faults)
