"""The ``Sandbox``: state, accounts, traffic rules and the ASGI app that serves them."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.routing import Route

from ._accounts import DEFAULT_SCOPES, Accounts, ScopeError, parse_scopes
from ._admin import AdminApi
from ._api import WebApi
from ._fixture import (
    FixtureError,
    build_state,
    dump_state,
    dump_user_library,
    merge_user,
    read_fixture,
)
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
        self._renderers: dict[str, ObjectRenderer] = {}
        routes: list[Route] = [
            Route("/authorize", self.accounts.authorize, methods=["GET"]),
            Route("/api/token", self.accounts.token, methods=["POST"]),
        ]
        routes += AdminApi(self).routes()
        routes += WebApi(self).routes()
        self.app = Starlette(routes=routes)

    def __repr__(self) -> str:
        return (
            f"<Sandbox users={len(self.state.users)} playlists={len(self.state.playlists)} "
            f"tracks={len(self.state.catalog.tracks)}>"
        )

    def renderer(self, api_base: str) -> ObjectRenderer:
        """Object rendering for one base URL; its caches live as long as the catalog."""
        renderer = self._renderers.get(api_base)
        if renderer is None or renderer.catalog is not self.state.catalog:
            renderer = ObjectRenderer(self.state.catalog, api_base)
            self._renderers[api_base] = renderer
        return renderer

    # -- state

    def load_fixture(self, data: Mapping[str, Any] | Path | str) -> None:
        """Replace the whole state (catalog, users, playlists). Invalid: nothing changes."""
        self._replace_state(build_state(read_fixture(data)))

    def load_user(self, user_id: str, library: Mapping[str, Any]) -> None:
        """Create or replace one user (see ``dump_user`` for the format)."""
        self._replace_state(build_state(merge_user(self.dump(), user_id, dict(library))))

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
        self.traffic.reset_counters()

    def set_faults(self, faults: Faults) -> None:
        self.traffic.set_faults(faults)
