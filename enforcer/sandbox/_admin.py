"""The admin API under /__sandbox/: what a test or a demo uses to set the stage and to see
what arrived. Bad input gets a 400 naming the bad value, and changes nothing."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ._settings import DEFAULT_CLIENT_ID, Faults, SandboxSettings

if TYPE_CHECKING:
    from ._sandbox import Sandbox


class AdminError(Exception):
    def __init__(self, status: int, message: str) -> None:
        self.status = status
        self.message = message
        super().__init__(message)


def describe_validation_error(error: ValidationError) -> str:
    problems = []
    for detail in error.errors():
        where = ".".join(str(part) for part in detail["loc"]) or "value"
        problems.append(f"{where}: {detail['msg']} (got {detail.get('input')!r})")
    return "; ".join(problems)


async def _body(request: Request, *, optional: bool = False) -> Any:
    raw = await request.body()
    if not raw.strip():
        if optional:
            return {}
        raise AdminError(400, "a JSON body is required")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as error:
        raise AdminError(400, f"the body is not valid JSON: {error}") from None


class AdminApi:
    def __init__(self, sandbox: Sandbox) -> None:
        self._sandbox = sandbox

    def routes(self) -> list[Route]:
        table: list[tuple[str, str, Callable[[Request], Awaitable[Any]]]] = [
            ("GET", "/__sandbox/fixture", self.get_fixture),
            ("PUT", "/__sandbox/fixture", self.put_fixture),
            ("GET", "/__sandbox/users/{user_id}", self.get_user),
            ("PUT", "/__sandbox/users/{user_id}", self.put_user),
            ("POST", "/__sandbox/users/{user_id}/generate", self.generate),
            ("POST", "/__sandbox/users/{user_id}/tokens", self.tokens),
            ("POST", "/__sandbox/users/{user_id}/revoke", self.revoke),
            ("GET", "/__sandbox/counters", self.get_counters),
            ("DELETE", "/__sandbox/counters", self.reset_counters),
            ("GET", "/__sandbox/requests", self.get_requests),
            ("GET", "/__sandbox/settings", self.get_settings),
            ("PATCH", "/__sandbox/settings", self.patch_settings),
            ("GET", "/__sandbox/faults", self.get_faults),
            ("PUT", "/__sandbox/faults", self.put_faults),
        ]
        return [
            Route(path, self._wrap(handler), methods=[method]) for method, path, handler in table
        ]

    @staticmethod
    def _wrap(
        handler: Callable[[Request], Awaitable[Any]],
    ) -> Callable[[Request], Awaitable[Response]]:
        async def run(request: Request) -> Response:
            try:
                result = await handler(request)
            except AdminError as error:
                body = {"error": {"status": error.status, "message": error.message}}
                return JSONResponse(body, status_code=error.status)
            except ValueError as error:
                body = {"error": {"status": 400, "message": str(error)}}
                return JSONResponse(body, status_code=400)
            if isinstance(result, Response):
                return result
            return JSONResponse(result)

        return run

    def _user_id(self, request: Request, *, existing: bool) -> str:
        user_id: str = request.path_params["user_id"]
        if existing and user_id not in self._sandbox.state.users:
            raise AdminError(404, f"unknown user {user_id!r}")
        return user_id

    async def get_fixture(self, request: Request) -> Any:
        return self._sandbox.dump()

    async def put_fixture(self, request: Request) -> Any:
        self._sandbox.load_fixture(await _body(request))
        return Response(status_code=204)

    async def get_user(self, request: Request) -> Any:
        return self._sandbox.dump_user(self._user_id(request, existing=True))

    async def put_user(self, request: Request) -> Any:
        self._sandbox.load_user(self._user_id(request, existing=False), await _body(request))
        return Response(status_code=204)

    async def generate(self, request: Request) -> Any:
        user_id = self._user_id(request, existing=False)
        body = await _body(request, optional=True)
        if not isinstance(body, dict):
            raise AdminError(400, f"expected a JSON object of generator arguments, got {body!r}")
        self._sandbox.generate_user(user_id, body)
        user = self._sandbox.state.users[user_id]
        return {
            "user_id": user_id,
            "liked_songs": len(user.liked_songs),
            "saved_albums": len(user.saved_albums),
            "followed_artists": len(user.followed_artists),
            "playlists": len(user.playlists),
        }

    async def tokens(self, request: Request) -> Any:
        user_id = self._user_id(request, existing=True)
        body = await _body(request, optional=True)
        if not isinstance(body, dict):
            raise AdminError(400, f"expected a JSON object, got {body!r}")
        unknown = set(body) - {"scopes", "client_id"}
        if unknown:
            raise AdminError(400, f"unknown field {sorted(unknown)[0]!r}")
        scopes = body.get("scopes")
        client_id = body.get("client_id", DEFAULT_CLIENT_ID)
        if scopes is not None and not isinstance(scopes, str):
            raise AdminError(400, f"scopes must be a space-separated string, got {scopes!r}")
        if not isinstance(client_id, str) or not client_id:
            raise AdminError(400, f"client_id must be a non-empty string, got {client_id!r}")
        return self._sandbox.issue_tokens(user_id, scopes, client_id)

    async def revoke(self, request: Request) -> Any:
        user_id = self._user_id(request, existing=True)
        return {"revoked": self._sandbox.revoke_refresh_tokens(user_id)}

    async def get_counters(self, request: Request) -> Any:
        counters = self._sandbox.counters
        return {**counters.model_dump(), "total_calls": counters.total_calls}

    async def reset_counters(self, request: Request) -> Any:
        self._sandbox.reset_counters()
        return Response(status_code=204)

    async def get_requests(self, request: Request) -> Any:
        return {
            "size": self._sandbox.settings.request_log_size,
            "requests": self._sandbox.requests,
        }

    async def get_settings(self, request: Request) -> Any:
        return self._sandbox.settings.model_dump(mode="json")

    async def patch_settings(self, request: Request) -> Any:
        body = await _body(request)
        if not isinstance(body, dict):
            raise AdminError(400, f"expected a JSON object, got {body!r}")
        merged = {**self._sandbox.settings.model_dump(), **body}
        try:
            self._sandbox.settings = SandboxSettings.model_validate(merged)
        except ValidationError as error:
            raise AdminError(400, describe_validation_error(error)) from None
        return self._sandbox.settings.model_dump(mode="json")

    async def get_faults(self, request: Request) -> Any:
        return self._sandbox.traffic.faults.model_dump()

    async def put_faults(self, request: Request) -> Any:
        body = await _body(request)
        try:
            faults = Faults.model_validate(body)
        except ValidationError as error:
            raise AdminError(400, describe_validation_error(error)) from None
        self._sandbox.set_faults(faults)
        return faults.model_dump()
