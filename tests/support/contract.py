"""Fixtures: every request to the Spotify Web API and every answer, checked against its spec.

``ContractTransport`` wraps any ``httpx`` transport (in the suite: the sandbox's ASGI
transport). Each exchange that passes through it is checked against Spotify's published
OpenAPI description (``tests/contract/spotify-openapi.yml``, a copy kept in the repo so a
fresh clone needs nothing beside it), and the outcome lands in a ``ContractRecorder``:
violations, and which operations were exercised. The ``contract_recorder`` fixture fails
the test that produced any violation, so every test that talks to the sandbox through it
is also a contract test.

What is checked, and how:

- The request's URL is moved onto the spec's server (``https://api.spotify.com``): the
  sandbox serves the API under ``/v1`` on whatever host. The accounts service
  (``/authorize``, ``/api/token``) and the sandbox's admin API (``/__sandbox/...``) are not
  in the spec and are skipped; any other path the spec does not know is a violation.
- The request: path, query and header parameters, body, and a bearer token (the spec's
  ``oauth2`` scheme, which openapi-core does not check by itself).
- The answer: its status must be declared for the operation, and its body must match the
  declared schema. Spotify documents one error body for every endpoint
  (``{"error": {"status", "message"}}``), but the spec declares only some error statuses
  per operation: an undeclared 4xx/5xx is checked against that common error envelope.
- Known faults of the spec where the reference (``spotify-web-api.md``) wins are listed
  one by one in ``KNOWN_SPEC_GAPS`` and ``ENVELOPE_ERROR_BODIES``, each with its reason;
  a violation they excuse is kept in ``ContractRecorder.excused``, never dropped silently.

Cost: openapi-core takes about 15 ms to check a 50-track page and 1-2 ms to check a
request, and some tests page through libraries of 50,000 songs (1,000 pages). So each
(operation, status) is checked in full for its first ``FULL_CHECKS_PER_OPERATION``
exchanges in a test and then every ``FULL_CHECK_EVERY``-th. In between, the answer's body
is checked on a skeleton (every array cut to its first element) by the same schema,
compiled once, which still catches a wrong envelope, paging object or item shape on every
page; and a request that differs from one already checked only in its paging position
(``offset``, ``after``) gets that one's verdict. Every other request is checked in full.
Measured: reading 50,000 liked songs through the client takes ~1.2 s more with the checks
(~6 s without).
"""

from __future__ import annotations

import functools
import json
import re
import warnings
from collections import Counter
from collections.abc import Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

import httpx
import pytest
import yaml
from jsonschema.exceptions import ValidationError as SchemaError  # type: ignore[import-untyped]
from jsonschema_path import SchemaPath
from openapi_core import OpenAPI
from openapi_core.datatypes import RequestParameters
from openapi_core.security.exceptions import SecurityProviderError
from openapi_core.security.factories import SecurityProviderFactory
from openapi_core.security.providers import BaseProvider
from openapi_core.templating.paths.datatypes import PathOperationServer
from openapi_core.templating.paths.exceptions import OperationNotFound, PathError
from openapi_core.templating.paths.finders import APICallPathFinder
from openapi_core.templating.responses.exceptions import ResponseNotFound
from openapi_core.validation.request.exceptions import (
    MissingParameterError,
    ParameterValidationError,
    RequestBodyValidationError,
    SecurityValidationError,
)
from openapi_core.validation.request.validators import V30RequestValidator
from openapi_core.validation.response.exceptions import DataValidationError, MissingData
from openapi_core.validation.response.validators import V30ResponseValidator
from openapi_schema_validator import OAS30ReadValidator
from werkzeug.datastructures import Headers, ImmutableMultiDict

SPEC_PATH: Final = Path(__file__).resolve().parent.parent / "contract" / "spotify-openapi.yml"
SPEC_ORIGIN: Final = "https://api.spotify.com"
API_PREFIX: Final = "/v1/"

# Served by the sandbox but described nowhere in the Web API spec.
UNSPECIFIED_PATHS: Final = frozenset({"/authorize", "/api/token"})
UNSPECIFIED_PATH_PREFIXES: Final = ("/__sandbox/",)

FULL_CHECKS_PER_OPERATION: Final = 5
FULL_CHECK_EVERY: Final = 20

_MESSAGE_LIMIT: Final = 240
_YAMLLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

Part = Literal["request", "response"]


@dataclass(frozen=True)
class KnownSpecGap:
    """One place where the spec is wrong and the reference doc, which the sandbox follows, wins.

    ``rule`` is compared to ``Violation.rule`` (for example ``"query.ids: required"`` or
    ``"body.items[].track.id: null"``), so each entry excuses one rule on one field of one
    operation; any other fault of the same field is still a violation.
    """

    operation_id: str
    part: Part
    rule: str
    reason: str


# A local file's track, as Spotify sends it (reference §3; tekore's LocalTrack model): no
# catalog object behind it, so its links and IDs are null, and its album is either an
# album object of nulls without `total_tracks` or null itself (an open question the
# sandbox's `local_file_shape` setting chooses; docs/sandbox.md), with `external_ids` {}
# or null to match. Each rule is excused under both `item` and the legacy `track` key.
_LOCAL_FILE_NULLS: Final = (
    "id",
    "href",
    "album",
    "external_ids",
    "artists[].id",
    "artists[].href",
    "artists[].uri",
    *(f"album.{field}" for field in ("album_type", "href", "id", "uri")),
    *(f"album.{field}" for field in ("release_date", "release_date_precision")),
)
_LOCAL_FILE_GAPS: Final = tuple(
    (f"{entry}.{rule}", "reference §3: what Spotify sends for a local file")
    for entry in ("item", "track")
    for rule in (
        *(f"{field}: null" for field in _LOCAL_FILE_NULLS),
        "album.total_tracks: required",
    )
)

KNOWN_SPEC_GAPS: Final[tuple[KnownSpecGap, ...]] = (
    *(
        KnownSpecGap(
            operation_id,
            "request",
            "body: type",
            # spotipy 2.26's playlist_add_items posts `["spotify:track:...", ...]`.
            "reference §2: clients send a bare JSON array of URIs, and Spotify accepts it",
        )
        for operation_id in ("add-items-to-playlist", "add-tracks-to-playlist")
    ),
    KnownSpecGap(
        "remove-tracks-user",
        "request",
        "query.ids: required",
        # The spec's own body schema documents `ids`; the query form is the deprecated one.
        "reference §2: legacy DELETE /me/tracks sends the IDs as a JSON body {'ids': [...]}",
    ),
    *(
        KnownSpecGap(
            operation_id,
            "request",
            "query.ids: required",
            # Each documents a body `ids` ("if the `ids` parameter is present in the query
            # string, any IDs listed here in the body will be ignored"), yet requires the query.
            "the spec's own body schema documents `ids` in the body; the query wins if both",
        )
        for operation_id in (
            "save-albums-user",
            "remove-albums-user",
            "follow-artists-users",
            "unfollow-artists-users",
        )
    ),
    KnownSpecGap(
        "save-tracks-user",
        "request",
        "body.ids: required",
        # The spec's description says `timestamped_ids` overrides `ids`, yet requires `ids`.
        "reference §2: PUT /me/tracks restores original dates with a body of only "
        "{'timestamped_ids': [...]}",
    ),
    *(
        KnownSpecGap(operation_id, "response", f"{entries}.{rule}", reason)
        for operation_id, entries in (
            ("get-playlists-items", "body.items[]"),
            ("get-playlists-tracks", "body.items[]"),
            # A playlist carries its first page of entries twice: `items` and legacy `tracks`.
            ("get-playlist", "body.items.items[]"),
            ("get-playlist", "body.tracks.items[]"),
        )
        for rule, reason in (
            ("item: null", "reference §3: an unavailable entry's content is null"),
            ("track: null", "reference §3: an unavailable entry's content is null"),
            ("added_at: null", "the spec's own text: very old playlists return null here"),
            ("added_by: null", "the spec's own text: very old playlists return null here"),
            *_LOCAL_FILE_GAPS,
        )
    ),
    *(
        KnownSpecGap(
            "get-followed",
            "response",
            f"body.artists.{field}: null",
            "reference §3: the last page of followed artists has no next page, so null",
        )
        for field in ("next", "cursors.after")
    ),
)

# (operation, status) pairs whose declared body is a bare ErrorObject, while Spotify wraps
# every error as {"error": ErrorObject} (reference: "Error body everywhere").
ENVELOPE_ERROR_BODIES: Final[Mapping[tuple[str, int], str]] = {
    (operation_id, 400): "the spec declares a bare ErrorObject; reference: {'error': {...}}"
    for operation_id in ("save-library-items", "remove-library-items", "check-library-contains")
}


# The spec's one correction, applied in memory at load time (the copy stays verbatim): its
# TrackObject|EpisodeObject discriminators have no mapping, so by OpenAPI's rules the value
# "track" names #/components/schemas/track, which does not exist, and every playlist entry
# would fail. Each such discriminator gets the mapping its values mean (schema -> value).
_DISCRIMINATOR_MAPPINGS: Final[Mapping[str, str]] = {
    "#/components/schemas/TrackObject": "track",
    "#/components/schemas/EpisodeObject": "episode",
}


def _apply_spec_corrections(node: Any) -> None:
    if isinstance(node, list):
        for item in node:
            _apply_spec_corrections(item)
        return
    if not isinstance(node, dict):
        return
    discriminator = node.get("discriminator")
    if isinstance(discriminator, dict) and "mapping" not in discriminator:
        references = [choice.get("$ref") for choice in node.get("oneOf", ())]
        if references and all(ref in _DISCRIMINATOR_MAPPINGS for ref in references):
            discriminator["mapping"] = {_DISCRIMINATOR_MAPPINGS[ref]: ref for ref in references}
    for value in node.values():
        _apply_spec_corrections(value)


@dataclass(frozen=True)
class Violation:
    """One way an exchange broke the contract."""

    method: str
    path: str
    status: int
    part: Part
    operation_id: str | None
    rule: str
    message: str

    def __str__(self) -> str:
        operation = self.operation_id or "unknown operation"
        return (
            f"{self.method} {self.path} -> {self.status} ({operation}): "
            f"{self.part} {self.rule}: {self.message}"
        )


@dataclass(frozen=True)
class Exchange:
    """One request and its answer, with bodies already read (and decoded)."""

    method: str
    url: httpx.URL
    request_headers: httpx.Headers
    request_body: bytes
    status: int
    response_headers: httpx.Headers
    response_body: bytes

    @classmethod
    def of(cls, request: httpx.Request, response: httpx.Response) -> Exchange:
        """From a request and response whose contents are in memory (hand-built ones)."""
        return cls(
            method=request.method,
            url=request.url,
            request_headers=request.headers,
            request_body=request.content,
            status=response.status_code,
            response_headers=response.headers,
            response_body=response.content,
        )


@dataclass(frozen=True)
class Verdict:
    """What checking one exchange found."""

    operation_id: str | None
    violations: tuple[Violation, ...]
    excused: tuple[tuple[Violation, KnownSpecGap], ...] = ()
    skipped: bool = False


class _OpenAPIRequest:
    """An exchange's request, in openapi-core's ``Request`` protocol, moved onto the spec's host."""

    def __init__(self, exchange: Exchange, path: str) -> None:
        self.method = exchange.method.lower()
        self.host_url = SPEC_ORIGIN
        self.path = path
        self.body: bytes | None = exchange.request_body or None
        self.content_type = exchange.request_headers.get("content-type", "").lower()
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(exchange.url.params.multi_items()),
            header=Headers(list(exchange.request_headers.items())),
        )


@dataclass(frozen=True)
class _OpenAPIResponse:
    status_code: int
    content_type: str
    headers: Headers
    data: bytes | None


class _BearerTokenProvider(BaseProvider):
    """The spec's ``oauth2`` scheme means a bearer token: check one is sent, never its value."""

    def __call__(self, parameters: RequestParameters) -> Any:
        scheme, _, token = str(parameters.header.get("Authorization", "")).partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise SecurityProviderError("no 'Authorization: Bearer <token>' header")
        return None


class _SecurityProviders(SecurityProviderFactory):
    PROVIDERS = {**SecurityProviderFactory.PROVIDERS, "oauth2": _BearerTokenProvider}  # noqa: RUF012


class _CachingPathFinder(APICallPathFinder):
    """Finding an operation walks every path template (~0.8 ms): remember what was found."""

    CAPACITY: Final = 4096

    def __init__(self, spec: SchemaPath, base_url: str | None = None) -> None:
        super().__init__(spec, base_url=base_url)
        self._found: dict[tuple[str, str], PathOperationServer] = {}

    def find(self, method: str, name: str) -> PathOperationServer:
        key = (method, name)
        found = self._found.get(key)
        if found is None:
            if len(self._found) >= self.CAPACITY:
                self._found.clear()
            found = self._found[key] = super().find(method, name)
        return found


class SpotifyContract:
    """Spotify's OpenAPI description, loaded and compiled once, able to check an exchange."""

    def __init__(self, spec_path: Path = SPEC_PATH) -> None:
        with spec_path.open(encoding="utf-8") as spec_file:
            document: dict[str, Any] = yaml.load(spec_file, Loader=_YAMLLoader)  # noqa: S506
        _apply_spec_corrections(document)
        self.openapi = OpenAPI.from_dict(document, base_uri=spec_path.as_uri())
        spec: SchemaPath = self.openapi.spec
        self._paths = _CachingPathFinder(spec)
        self._requests = V30RequestValidator(
            spec,
            path_finder_cls=_CachingPathFinder,
            security_provider_factory=_SecurityProviders(),
        )
        self._responses = V30ResponseValidator(spec, path_finder_cls=_CachingPathFinder)
        self._components: dict[str, Any] = document["components"]
        self._operations: dict[str, dict[str, Any]] = {
            operation["operationId"]: operation
            for path_item in document["paths"].values()
            for operation in path_item.values()
            if isinstance(operation, dict) and "operationId" in operation
        }
        self.operation_ids: frozenset[str] = frozenset(self._operations)
        envelope = self._components["responses"]["BadRequest"]["content"]["application/json"]
        self._error_envelope = self._schema_validator(envelope["schema"])
        self._body_validators: dict[tuple[str, int], OAS30ReadValidator | None] = {}
        self._request_verdicts: dict[Hashable, tuple[tuple[str, str], ...]] = {}

    def _schema_validator(self, schema: Mapping[str, Any]) -> OAS30ReadValidator:
        # The components ride along so that the schema's "#/components/..." references resolve.
        return OAS30ReadValidator(
            {"allOf": [schema], "components": self._components},
            format_checker=OAS30ReadValidator.FORMAT_CHECKER,
        )

    def _declared_body_validator(self, operation_id: str, status: int) -> OAS30ReadValidator | None:
        """A compiled validator of the JSON body declared for this status, if there is one."""
        key = (operation_id, status)
        if key not in self._body_validators:
            response = self._operations[operation_id].get("responses", {}).get(str(status))
            if isinstance(response, dict) and "$ref" in response:
                response = self._components["responses"][response["$ref"].rsplit("/", 1)[-1]]
            schema = (response or {}).get("content", {}).get("application/json", {}).get("schema")
            self._body_validators[key] = None if schema is None else self._schema_validator(schema)
        return self._body_validators[key]

    def operation_id(self, method: str, path: str) -> str | None:
        """The operationId serving ``method path`` (a path as the sandbox sees it), if any."""
        try:
            found = self._paths.find(method.lower(), SPEC_ORIGIN + _without_trailing_slash(path))
        except PathError:
            return None
        return str((found.operation / "operationId").read_str())

    def check(self, exchange: Exchange, *, full: bool = True) -> Verdict:
        """Check one exchange; with ``full=False`` the response body is checked as a skeleton."""
        path = _without_trailing_slash(exchange.url.path)
        if path in UNSPECIFIED_PATHS or path.startswith(UNSPECIFIED_PATH_PREFIXES):
            return Verdict(operation_id=None, violations=(), skipped=True)

        def violation(part: Part, operation_id: str | None, rule: str, message: str) -> Violation:
            return Violation(
                method=exchange.method,
                path=path,
                status=exchange.status,
                part=part,
                operation_id=operation_id,
                rule=rule,
                message=_shorten(message),
            )

        if not path.startswith(API_PREFIX):
            return Verdict(
                operation_id=None,
                violations=(
                    violation("request", None, "path: not in spec", f"{path} is not under /v1"),
                ),
            )

        request = _OpenAPIRequest(exchange, path)
        try:
            found = self._paths.find(request.method, SPEC_ORIGIN + path)
        except OperationNotFound:
            return Verdict(
                None,
                (violation("request", None, "method: not in spec", f"no {exchange.method}"),),
            )
        except PathError:
            return Verdict(
                None, (violation("request", None, "path: not in spec", f"{path} is unknown"),)
            )
        operation_id = str((found.operation / "operationId").read_str())

        found_problems: list[tuple[Part, str, str]] = []
        with warnings.catch_warnings():
            # Deprecated (legacy) operations and parameters are used on purpose.
            warnings.simplefilter("ignore", DeprecationWarning)
            found_problems.extend(
                ("request", r, m) for r, m in self._request_problems(exchange, request, full=full)
            )
            found_problems.extend(
                ("response", r, m)
                for r, m in self._response_findings(exchange, request, operation_id, full=full)
            )

        violations: list[Violation] = []
        excused: list[tuple[Violation, KnownSpecGap]] = []
        for part, rule, message in dict.fromkeys(found_problems):
            found_violation = violation(part, operation_id, rule, message)
            gap = _known_gap(operation_id, part, rule)
            if gap is None:
                violations.append(found_violation)
            else:
                excused.append((found_violation, gap))
        return Verdict(operation_id, tuple(violations), tuple(excused))

    def _request_problems(
        self, exchange: Exchange, request: _OpenAPIRequest, *, full: bool
    ) -> tuple[tuple[str, str], ...]:
        signature = _request_signature(exchange)
        if not full and signature in self._request_verdicts:
            return self._request_verdicts[signature]
        problems = tuple(
            problem
            for error in self._requests.iter_errors(request)
            for problem in _request_findings(error)
        )
        if len(self._request_verdicts) >= _CachingPathFinder.CAPACITY:
            self._request_verdicts.clear()
        self._request_verdicts[signature] = problems
        return problems

    def _response_findings(
        self, exchange: Exchange, request: _OpenAPIRequest, operation_id: str, *, full: bool
    ) -> Iterator[tuple[str, str]]:
        body = exchange.response_body
        is_error = exchange.status >= 400
        if is_error and (operation_id, exchange.status) in ENVELOPE_ERROR_BODIES:
            yield from self._envelope_findings(body)
            return
        declared = self._declared_body_validator(operation_id, exchange.status)
        if not full and declared is not None and body:
            # The cheap path for the pages between full checks: the compiled schema on a
            # skeleton, instead of openapi-core's whole pipeline on the whole page.
            try:
                document = json.loads(body)
            except ValueError:
                yield "body: not JSON", "the declared body is JSON"
                return
            for error in declared.iter_errors(_first_of_each_array(document)):
                yield from _schema_findings(error, "body")
            return
        response = _OpenAPIResponse(
            status_code=exchange.status,
            content_type=exchange.response_headers.get("content-type", "").lower(),
            headers=Headers(list(exchange.response_headers.items())),
            data=body or None,
        )
        for error in self._responses.iter_errors(request, response):
            if isinstance(error, ResponseNotFound):
                if is_error:
                    yield from self._envelope_findings(body)
                else:
                    yield "status: not declared", f"{exchange.status} is not declared"
            elif isinstance(error, MissingData):
                yield "body: missing", "the declared body is empty"
            elif isinstance(error, DataValidationError):
                yield from _cause_findings(error, "body")
            else:
                yield f"{type(error).__name__}", str(error)

    def _envelope_findings(self, body: bytes) -> Iterator[tuple[str, str]]:
        try:
            document = json.loads(body)
        except ValueError:
            yield "body: not JSON", "an error answer must carry Spotify's JSON error body"
            return
        for error in self._error_envelope.iter_errors(document):
            yield from _schema_findings(error, "body")


@functools.cache
def load_spotify_contract() -> SpotifyContract:
    """The contract, compiled once per process (loading and checking the spec takes ~0.5 s)."""
    return SpotifyContract()


class ContractRecorder:
    """Collects what ``ContractTransport`` saw: violations, excused gaps and covered operations."""

    def __init__(self, contract: SpotifyContract | None = None) -> None:
        self.contract = contract or load_spotify_contract()
        self.violations: list[Violation] = []
        self.excused: set[tuple[Violation, KnownSpecGap]] = set()
        self.covered: set[str] = set()
        self.seen: set[tuple[str, int]] = set()
        self._checks: Counter[tuple[str | None, str, int]] = Counter()

    def record(self, exchange: Exchange) -> Verdict:
        """Check one exchange and keep the outcome."""
        operation = self.contract.operation_id(exchange.method, exchange.url.path)
        key = (operation, exchange.url.path if operation is None else "", exchange.status)
        self._checks[key] += 1
        count = self._checks[key]
        full = count <= FULL_CHECKS_PER_OPERATION or count % FULL_CHECK_EVERY == 0
        verdict = self.contract.check(exchange, full=full)
        self.violations.extend(verdict.violations)
        self.excused.update(verdict.excused)
        if verdict.operation_id is not None:
            self.seen.add((verdict.operation_id, exchange.status))
            if 200 <= exchange.status < 300:
                self.covered.add(verdict.operation_id)
        return verdict

    def take_violations(self) -> list[Violation]:
        """Hand over the violations found so far and forget them.

        For a test that breaks the contract on purpose (say, a request without ``uris`` to
        see the sandbox answer 400): it asserts on what it takes, and the fixture's final
        check then sees only what the test did not expect.
        """
        taken, self.violations = self.violations, []
        return taken

    def report(self) -> str:
        return "\n".join(f"  - {violation}" for violation in self.violations)


class ContractTransport(httpx.AsyncBaseTransport):
    """Forwards to ``inner`` and has ``recorder`` check every request and its answer."""

    def __init__(self, inner: httpx.AsyncBaseTransport, recorder: ContractRecorder) -> None:
        self.inner = inner
        self.recorder = recorder

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        request_body = await request.aread()
        response = await self.inner.handle_async_request(request)
        try:
            raw = b"".join([chunk async for chunk in response.aiter_raw()])
        finally:
            await response.aclose()
        # The raw bytes go back to the caller untouched; the check reads a decoded copy.
        decoded = httpx.Response(
            response.status_code, headers=response.headers, stream=httpx.ByteStream(raw)
        ).read()
        self.recorder.record(
            Exchange(
                method=request.method,
                url=request.url,
                request_headers=request.headers,
                request_body=request_body,
                status=response.status_code,
                response_headers=response.headers,
                response_body=decoded,
            )
        )
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            stream=httpx.ByteStream(raw),
            extensions=response.extensions,
            request=request,
        )

    async def aclose(self) -> None:
        await self.inner.aclose()


class ContractRecordingApp:
    """ASGI middleware: every exchange the wrapped app serves is checked by ``recorder``.

    For clients that reach the sandbox over a real socket (spotipy, tekore), where no
    ``httpx`` transport of ours sits in between. Bodies are kept whole in memory.
    """

    def __init__(self, app: Any, recorder: ContractRecorder) -> None:
        self.app = app
        self.recorder = recorder

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_body = bytearray()
        response_start: dict[str, Any] = {}
        response_body = bytearray()

        async def receive_and_keep() -> Any:
            message = await receive()
            if message["type"] == "http.request":
                request_body.extend(message.get("body", b""))
            return message

        async def send_and_keep(message: Any) -> None:
            if message["type"] == "http.response.start":
                response_start.update(message)
            elif message["type"] == "http.response.body":
                response_body.extend(message.get("body", b""))
            await send(message)

        await self.app(scope, receive_and_keep, send_and_keep)
        query = scope.get("query_string", b"").decode("latin-1")
        url = httpx.URL(f"http://sandbox.test{scope['path']}" + (f"?{query}" if query else ""))
        self.recorder.record(
            Exchange(
                method=scope["method"],
                url=url,
                request_headers=httpx.Headers(
                    [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
                ),
                request_body=bytes(request_body),
                status=int(response_start.get("status", 0)),
                response_headers=httpx.Headers(
                    [
                        (k.decode("latin-1"), v.decode("latin-1"))
                        for k, v in response_start.get("headers", [])
                    ]
                ),
                response_body=bytes(response_body),
            )
        )


@pytest.fixture(scope="session")
def spotify_contract() -> SpotifyContract:
    return load_spotify_contract()


@pytest.fixture
def contract_recorder(spotify_contract: SpotifyContract) -> Iterator[ContractRecorder]:
    """A recorder for this test; the test fails if any exchange broke the contract."""
    recorder = ContractRecorder(spotify_contract)
    yield recorder
    if recorder.violations:
        pytest.fail(
            f"{len(recorder.violations)} Spotify Web API contract violation(s) "
            f"(spec: {SPEC_PATH.name}):\n{recorder.report()}",
            pytrace=False,
        )


# Where one page of a listing differs from the next; a request that differs from one already
# checked only there gets the same verdict (integers and cursors, set by the client).
_PAGING_POSITION: Final = frozenset({"offset", "after"})


def _request_signature(exchange: Exchange) -> Hashable:
    scheme, _, token = exchange.request_headers.get("authorization", "").partition(" ")
    return (
        exchange.method,
        exchange.url.path,
        tuple(
            sorted(
                item
                for item in exchange.url.params.multi_items()
                if item[0] not in _PAGING_POSITION
            )
        ),
        (scheme.lower(), bool(token.strip())),
        exchange.request_headers.get("content-type", ""),
        exchange.request_body,
    )


def _without_trailing_slash(path: str) -> str:
    """Spotify answers ``/v1/me/`` as ``/v1/me`` (spotipy and tekore both ask for ``me/``);
    the spec lists paths without the slash, so one trailing slash is not a violation."""
    if path.startswith(API_PREFIX) and path.endswith("/") and len(path) > len(API_PREFIX):
        return path[:-1]
    return path


def _known_gap(operation_id: str, part: Part, rule: str) -> KnownSpecGap | None:
    for gap in KNOWN_SPEC_GAPS:
        if (gap.operation_id, gap.part, gap.rule) == (operation_id, part, rule):
            return gap
    return None


def _request_findings(error: Exception) -> Iterator[tuple[str, str]]:
    if isinstance(error, SecurityValidationError):
        cause = error.__cause__
        reasons = getattr(cause, "schema_errors", None) or [cause]
        yield "security: bearer token", "; ".join(str(reason) for reason in reasons)
    elif isinstance(error, MissingParameterError):
        yield f"{error.location}.{error.name}: required", f"missing {error.location} parameter"
    elif isinstance(error, ParameterValidationError):
        yield from _cause_findings(error, f"{error.location}.{error.name}")
    elif isinstance(error, RequestBodyValidationError):
        yield from _cause_findings(error, "body")
    else:
        yield f"{type(error).__name__}", str(error)


def _cause_findings(error: Exception, where: str) -> Iterator[tuple[str, str]]:
    cause = error.__cause__
    schema_errors: Sequence[Exception] = list(getattr(cause, "schema_errors", ()) or ())
    if not schema_errors:
        # Not a schema failure: a value that could not be parsed, an undeclared media type...
        kind = type(cause).__name__ if cause is not None else type(error).__name__
        yield f"{where}: {kind}", str(cause if cause is not None else error)
        return
    for schema_error in schema_errors:
        if isinstance(schema_error, SchemaError):
            yield from _schema_findings(schema_error, where)
        else:
            yield f"{where}: {type(schema_error).__name__}", str(schema_error)


_REQUIRED_PROPERTY = re.compile(r"^'(?P<name>[^']+)' is a required property")


def _schema_findings(error: SchemaError, where: str) -> Iterator[tuple[str, str]]:
    """Field-level findings: a failed ``oneOf``/``anyOf`` is explained by its closest branch.

    A ``null`` the schema does not allow is reported as rule ``null``, whatever keyword
    caught it (``nullable``, ``type`` or a ``oneOf`` of objects).
    """
    location = where + _location(error.absolute_path)
    if error.instance is None:
        yield f"{location}: null", "the spec allows no null here"
        return
    if error.validator in ("oneOf", "anyOf") and error.context:
        branches: dict[Any, list[SchemaError]] = {}
        for branch_error in error.context:
            branches.setdefault(branch_error.relative_schema_path[0], []).append(branch_error)
        closest = min(branches.values(), key=len)
        for branch_error in closest:
            yield from _schema_findings(branch_error, where)
        return
    required = _REQUIRED_PROPERTY.match(error.message)
    if error.validator == "required" and required:
        yield f"{location}.{required['name']}: required", error.message
    else:
        yield f"{location}: {error.validator}", error.message


def _location(path: Iterable[Any]) -> str:
    return "".join("[]" if isinstance(step, int) else f".{step}" for step in path)


def _shorten(message: str) -> str:
    message = " ".join(message.split())
    if len(message) <= _MESSAGE_LIMIT:
        return message
    return message[: _MESSAGE_LIMIT - 1] + "…"


def _first_of_each_array(node: Any) -> Any:
    if isinstance(node, list):
        return [_first_of_each_array(item) for item in node[:1]]
    if isinstance(node, dict):
        return {key: _first_of_each_array(value) for key, value in node.items()}
    return node
