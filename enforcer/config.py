"""Settings from the environment: every variable is ``ENFORCER_`` + the field name.

``Settings()`` either returns a complete, checked configuration or raises
``SettingsError`` naming each bad variable and its value (a secret's value is never
shown). Nothing is created on disk here: the token key file is handled by
``enforcer.tokenstore`` when tokens are first stored or read.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from pathlib import Path
from typing import Annotated, Any, ClassVar
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from enforcer.spotify.client import REQUIRED_SCOPES as CLIENT_SCOPES

ENV_PREFIX = "ENFORCER_"

# What a login asks for: every scope some client method declares it needs, so the
# two can never drift apart.
REQUIRED_SCOPES: tuple[str, ...] = tuple(sorted(CLIENT_SCOPES))

# Every scope in Spotify's published OpenAPI description: a typo is caught here
# rather than as an "invalid scope" page in the browser.
KNOWN_SCOPES: frozenset[str] = frozenset(
    {
        *REQUIRED_SCOPES,
        "app-remote-control",
        "streaming",
        "ugc-image-upload",
        "user-modify-playback-state",
        "user-read-currently-playing",
        "user-read-email",
        "user-read-playback-position",
        "user-read-playback-state",
        "user-read-private",
        "user-read-recently-played",
        "user-top-read",
    }
)

_CLIENT_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")

DEFAULT_SPOTIFY_UNREACHABLE_TIMEOUT = 180.0
"""Three minutes: a network that comes back usually does within that; a wrong address
never does, and a person at the terminal should not wait longer to learn of it."""
LONGEST_SPOTIFY_UNREACHABLE_TIMEOUT = 86_400.0


class SettingsError(ValueError):
    """One or more ``ENFORCER_*`` variables are missing or wrong."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid settings:\n" + "\n".join(f"  - {p}" for p in problems))


def env_name(field: str) -> str:
    """The environment variable that sets ``field``."""
    return f"{ENV_PREFIX}{field.upper()}"


def _check_base_url(value: str) -> str:
    """An absolute http(s) URL; plain http only to a loopback address (the sandbox)."""
    parts = urlsplit(value.strip())
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValueError("must be an absolute http:// or https:// URL")
    if parts.query or parts.fragment:
        raise ValueError("must not carry a query or a fragment")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise ValueError("plain http is allowed only to 127.0.0.1, [::1] or localhost")
    return value.strip().rstrip("/")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_fernet_key(key: str) -> None:
    """Raise ``ValueError`` unless ``key`` is a Fernet key (never echoing it)."""
    try:
        raw = base64.urlsafe_b64decode(key.encode("ascii"))
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raw = b""
    if len(raw) != 32:
        raise ValueError(
            "must be a Fernet key: 44 url-safe base64 characters encoding 32 bytes "
            '(make one with: python -c "from cryptography.fernet import Fernet; '
            'print(Fernet.generate_key().decode())")'
        )


class Settings(BaseSettings):
    """The service's configuration, read from ``ENFORCER_*`` environment variables."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid")

    _secret_fields: ClassVar[frozenset[str]] = frozenset({"token_key", "database_url"})

    spotify_client_id: str = Field(
        description="The Client ID of your app at developer.spotify.com (no secret: PKCE)."
    )
    api_base_url: str = "https://api.spotify.com/v1"
    accounts_base_url: str = "https://accounts.spotify.com"
    data_dir: Path = Path(".data")
    token_key: SecretStr | None = Field(
        default=None,
        description="A Fernet key for the token store; without it, data_dir/token.key.",
    )
    redirect_port: int = Field(
        default=8888,
        description="Port of http://127.0.0.1:PORT/callback, registered as a redirect URI.",
    )
    scopes: Annotated[tuple[str, ...], NoDecode] = REQUIRED_SCOPES
    database_url: SecretStr | None = None
    spotify_unreachable_timeout: float = Field(
        default=DEFAULT_SPOTIFY_UNREACHABLE_TIMEOUT,
        gt=0,
        le=LONGEST_SPOTIFY_UNREACHABLE_TIMEOUT,
        allow_inf_nan=False,
        description="Seconds `plan` waits on a Spotify it cannot reach before giving up.",
    )

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as error:
            problems = self._describe(error)
        else:
            return
        # Raised outside the handler: pydantic's error repeats every input, secrets
        # included, and must not travel along as this error's context.
        raise SettingsError(problems)

    @classmethod
    def _describe(cls, error: ValidationError) -> list[str]:
        problems = []
        for detail in error.errors(include_url=False):
            field = str(detail["loc"][0]) if detail["loc"] else "?"
            message = str(detail["msg"]).removeprefix("Value error, ")
            if detail["type"] == "missing":
                problems.append(f"{env_name(field)} is not set")
            elif field in cls._secret_fields:
                problems.append(f"{env_name(field)} (value hidden): {message}")
            else:
                problems.append(f"{env_name(field)}={detail['input']!r}: {message}")
        return problems

    @field_validator("spotify_client_id")
    @classmethod
    def _client_id(cls, value: str) -> str:
        value = value.strip()
        if not _CLIENT_ID.fullmatch(value):
            raise ValueError(
                "must be the Client ID shown in your app's settings at "
                "developer.spotify.com (letters and digits)"
            )
        return value

    @field_validator("api_base_url", "accounts_base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        return _check_base_url(value)

    @field_validator("data_dir")
    @classmethod
    def _data_dir(cls, value: Path) -> Path:
        if not str(value).strip():
            raise ValueError("must name a directory")
        if value.exists() and not value.is_dir():
            raise ValueError("exists and is not a directory")
        return value

    @field_validator("token_key")
    @classmethod
    def _token_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        check_fernet_key(value.get_secret_value().strip())
        return SecretStr(value.get_secret_value().strip())

    @field_validator("redirect_port")
    @classmethod
    def _redirect_port(cls, value: int) -> int:
        if not 1024 <= value <= 65535:
            raise ValueError("must be a port from 1024 to 65535")
        return value

    @field_validator("scopes", mode="before")
    @classmethod
    def _scopes(cls, value: object) -> object:
        if isinstance(value, str):
            value = tuple(value.replace(",", " ").split())
        if isinstance(value, list | tuple):
            unknown = [s for s in value if s not in KNOWN_SCOPES]
            if unknown:
                raise ValueError(f"unknown Spotify scope(s): {', '.join(map(str, unknown))}")
            if not value:
                raise ValueError("must list at least one scope")
            return tuple(dict.fromkeys(value))
        return value

    @property
    def redirect_uri(self) -> str:
        """The loopback redirect URI to register in the Spotify app's settings."""
        return f"http://127.0.0.1:{self.redirect_port}/callback"

    @property
    def token_key_file(self) -> Path:
        """Where the token key lives when ``ENFORCER_TOKEN_KEY`` is not set."""
        return self.data_dir / "token.key"
