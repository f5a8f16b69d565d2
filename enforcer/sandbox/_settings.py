"""What a test can tune: the app's quota mode, rate limits, token lifetimes and faults."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ._contract import ENDPOINTS

DEFAULT_CLIENT_ID = "5a4db0c0ffee4b1d8e5d5a4db0c0ffee"


class SandboxSettings(BaseModel):
    """Behaviour switches of the sandbox. Mutable: tests change them between requests."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    access_token_lifetime: int = Field(default=3600, ge=1)
    legacy_endpoints: Literal["working", "forbidden"] = "working"
    closed_endpoints: dict[str, int] = Field(default_factory=dict)
    library_accepts_artist_uris: bool = True
    collaborator_can_write: bool = False
    rotate_refresh_tokens: bool = False
    rate_limit_budget: int | None = Field(default=None, ge=1)
    rate_limit_window: float = Field(default=30.0, gt=0)
    rate_limit_retry_after: int | None = Field(
        default=None,
        ge=0,
        description="Fixed Retry-After for window 429s; None: seconds until the window frees.",
    )
    penalty_extends_on_violation: bool = False
    in_flight_grace_seconds: float = Field(
        default=0.05,
        ge=0,
        description="A request arriving this long after a 429's answer (decision time plus "
        "that answer's injected latency) could not yet have known of it: in flight.",
    )
    daily_quota: int | None = Field(default=None, ge=1)
    known_client_ids: set[str] | None = None
    authorize_as: str | None = None
    # Open questions (docs/sandbox.md): where Spotify's behaviour is unknown, these choose.
    local_file_shape: Literal["album_of_nulls", "null_album"] = Field(
        default="album_of_nulls",
        description="A local file's album: an object of nulls (and external_ids {}), or null "
        "(and external_ids null).",
    )
    position_precedence: Literal["query", "body"] = Field(
        default="query",
        description="Adding playlist items with `position` both in the query and the body: "
        "which one counts.",
    )
    playlist_removal_keys: Literal["documented", "either"] = Field(
        default="documented",
        description="Removing playlist items: `documented` takes only `items` on /items and "
        "`tracks` on legacy /tracks; `either` takes both keys on both paths.",
    )
    request_log_size: int = Field(
        default=1000, ge=0, description="How many requests GET /__sandbox/requests keeps."
    )

    @field_validator("closed_endpoints")
    @classmethod
    def _statuses_are_errors(cls, value: dict[str, int]) -> dict[str, int]:
        for endpoint, status in value.items():
            if endpoint not in ENDPOINTS:
                raise ValueError(
                    f"unknown endpoint {endpoint!r}: use 'METHOD /v1/path/{{template}}'"
                )
            if not 400 <= status <= 599:
                raise ValueError(f"status {status} for {endpoint!r} is not an HTTP error (400-599)")
        return value


class Faults(BaseModel):
    """Misbehaviour injected before a request is handled; deterministic given ``seed``."""

    model_config = ConfigDict(extra="forbid")

    seed: int = 0
    server_error_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    latency_ms: float = Field(default=0.0, ge=0)
    jitter_ms: float = Field(default=0.0, ge=0)
    timeout_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    timeout_seconds: float = Field(default=30.0, ge=0)
    storm_requests: int = Field(default=0, ge=0)
    storm_retry_after: int = Field(default=1, ge=0)
    # A 5xx after the change was applied: the client cannot know whether it happened.
    server_error_after_change: bool = False


class Counters(BaseModel):
    """What the sandbox saw: API calls by endpoint and by resource, 429s and misbehaviour
    after them."""

    calls: dict[str, int] = Field(default_factory=dict)
    calls_by_resource: dict[str, dict[str, int]] = Field(
        default_factory=dict,
        description="Endpoint template -> the ID in its path (playlist, artist, track) -> calls.",
    )
    rate_limited: int = 0
    violations: int = 0
    in_flight_violations: int = 0
    server_errors: int = 0
    timeouts: int = 0

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())
