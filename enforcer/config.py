"""Settings from the environment and a ``.env`` file: every variable is ``ENFORCER_`` +
the field name.

Both ``Settings`` and ``PayloadSettings`` read the environment first, then the dotenv
file ``ENFORCER_ENV_FILE`` names (default: ``.env`` in the working directory; set it
empty to read none): a variable set in the environment always wins over the file, and a
missing file is no error. The file is read by pydantic-settings (``KEY=VALUE`` lines,
``#`` comments, optional quotes); only variables of the class reading it are taken from
it, so one file can hold every ``ENFORCER_*`` setting. Variables read straight from the
environment elsewhere (``TEMPORAL_*``, ``ENFORCER_TASK_QUEUE``,
``ENFORCER_SPOTIFY_ACTIVITIES_PER_SECOND``) are not read from it.

``Settings()`` either returns a complete, checked configuration or raises
``SettingsError`` naming each bad variable and its value (a secret's value is never
shown). Nothing is created on disk here: the token key file is handled by
``enforcer.tokenstore`` when tokens are first stored or read.

``PayloadSettings()`` reads the payload keys alone (``ENFORCER_PAYLOAD_KEYS``,
``ENFORCER_PAYLOAD_KEY_ID``), so that a command that only encrypts or decrypts Temporal
payloads needs no Spotify settings. Key material never appears in an error, a repr or
a log line; key IDs are not secret and are named.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Self
from urllib.parse import urlsplit

from dotenv import dotenv_values
from pydantic import (
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

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
DEFAULT_SCAN_MAX_AGE = 7 * 86_400.0
"""A week: what an incremental scan cannot see (a deep removal balanced by a deep
addition, docs/architecture.md) lasts at most this long."""
LONGEST_SPOTIFY_UNREACHABLE_TIMEOUT = 86_400.0


ENV_FILE_VARIABLE = f"{ENV_PREFIX}ENV_FILE"
DEFAULT_ENV_FILE = ".env"


def env_file() -> Path | None:
    """The dotenv file settings are read from after the environment, or None for none."""
    named = os.environ.get(ENV_FILE_VARIABLE, DEFAULT_ENV_FILE)
    return Path(named) if named.strip() else None


def environment() -> dict[str, str]:
    """The environment over the dotenv file's variables (``env_file``; the environment
    wins): for what reads variables without a settings class (Temporal's ``TEMPORAL_*``,
    the task queue, the worker's rate cap), so that ``.env`` serves them too."""
    file = env_file()
    in_file = dotenv_values(file) if file is not None and file.is_file() else {}
    return {**{name: value for name, value in in_file.items() if value is not None}, **os.environ}


def _from_env_file(problems: list[str], file: Path | None) -> list[str]:
    """Each problem with a value the environment did not give says that it came from the
    file, where the person will look for it."""
    if file is None or not file.is_file():
        return problems
    # pydantic-settings matches names case-insensitively.
    in_environment = {name.upper() for name in os.environ}
    return [
        f"{problem} (set in {file})"
        if problem.startswith(ENV_PREFIX)
        and not problem.endswith(" is not set")
        and problem.split("=", 1)[0].split(" ", 1)[0] not in in_environment
        else problem
        for problem in problems
    ]


class _OwnVariables(PydanticBaseSettingsSource):
    """A dotenv source that passes on only the reading class's own fields: the file may
    hold variables of other readers (the payload keys, the task queue), which a class
    that forbids unknown inputs would otherwise refuse."""

    def __init__(self, settings_cls: type[BaseSettings], source: PydanticBaseSettingsSource):
        super().__init__(settings_cls)
        self.source = source

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ answers for every field at once

    def __call__(self) -> dict[str, Any]:
        fields = self.settings_cls.model_fields
        return {name: value for name, value in self.source().items() if name in fields}


class SettingsError(ValueError):
    """One or more ``ENFORCER_*`` variables are missing or wrong."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid settings:\n" + "\n".join(f"  - {p}" for p in problems))


def env_name(field: str) -> str:
    """The environment variable that sets ``field``."""
    return f"{ENV_PREFIX}{field.upper()}"


def describe_errors(error: ValidationError, secret_fields: frozenset[str]) -> list[str]:
    """One line per problem, naming its variable; a secret's value is never quoted."""
    problems = []
    for detail in error.errors(include_url=False):
        # A model validator's error belongs to no field: its message names the variables.
        name = str(detail["loc"][0]) if detail["loc"] else None
        message = str(detail["msg"]).removeprefix("Value error, ")
        if name is None:
            problems.append(message)
        elif detail["type"] == "missing":
            problems.append(f"{env_name(name)} is not set")
        elif name in secret_fields:
            problems.append(f"{env_name(name)} (value hidden): {message}")
        else:
            problems.append(f"{env_name(name)}={detail['input']!r}: {message}")
    return problems


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


def metrics_bind_address(value: str) -> str:
    """``HOST:PORT`` (an IP address, ``[IPv6]`` or ``localhost``) or ``PORT`` alone, which
    means 127.0.0.1: a metrics endpoint is private unless a host is named."""
    text = value.strip()
    host, colon, port_text = text.rpartition(":")
    if not colon:
        host = "127.0.0.1"
    if host == "localhost":
        host = "127.0.0.1"
    bracketed = host.startswith("[") and host.endswith("]")
    try:
        address = ipaddress.ip_address(host[1:-1] if bracketed else host)
    except ValueError:
        raise ValueError(
            "must be HOST:PORT with HOST an IP address (127.0.0.1, 0.0.0.0, [::1]) or "
            "localhost, or a PORT alone for 127.0.0.1"
        ) from None
    if address.version == 6 and not bracketed:
        raise ValueError("an IPv6 host is written in brackets: [::1]:PORT")
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ValueError("must end in a port from 1 to 65535")
    shown = f"[{address}]" if address.version == 6 else str(address)
    return f"{shown}:{int(port_text)}"


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
    spotify_request_timeout: float = Field(
        default=10.0,
        gt=0,
        le=300,
        allow_inf_nan=False,
        description=(
            "Seconds one request to Spotify may take before it counts as failed and is "
            "retried: Spotify answers in well under a second, so a hung request costs "
            "this long, not the half-minute httpx would wait."
        ),
    )
    spotify_unreachable_timeout: float = Field(
        default=DEFAULT_SPOTIFY_UNREACHABLE_TIMEOUT,
        gt=0,
        le=LONGEST_SPOTIFY_UNREACHABLE_TIMEOUT,
        allow_inf_nan=False,
        description="Seconds `plan` waits on a Spotify it cannot reach before giving up.",
    )

    scan_max_age: float = Field(
        default=DEFAULT_SCAN_MAX_AGE,
        gt=0,
        allow_inf_nan=False,
        description=(
            "Seconds a completed scan of a library may stand for what has not changed "
            "since: a planning after that reads the whole library again."
        ),
    )

    log_format: Literal["text", "json"] = Field(
        default="text",
        description="The worker's log: one line per event, as text or as a JSON object.",
    )
    metrics_address: str | None = Field(
        default=None,
        description=(
            "Where the worker serves Prometheus metrics (GET /metrics): HOST:PORT, or a "
            "PORT alone for 127.0.0.1:PORT; unset or empty, no metrics endpoint."
        ),
    )

    def __init__(self, **values: Any) -> None:
        file = values.setdefault("_env_file", env_file())
        try:
            super().__init__(**values)
        except ValidationError as error:
            problems = _from_env_file(self._describe(error), file)
        else:
            return
        # Raised outside the handler: pydantic's error repeats every input, secrets
        # included, and must not travel along as this error's context.
        raise SettingsError(problems)

    @classmethod
    def _describe(cls, error: ValidationError) -> list[str]:
        return describe_errors(error, cls._secret_fields)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The environment before the file: the first source to give a field wins.
        own = _OwnVariables(settings_cls, dotenv_settings)
        return init_settings, env_settings, own, file_secret_settings

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

    @field_validator("metrics_address")
    @classmethod
    def _metrics_address(cls, value: str | None) -> str | None:
        return None if value is None or not value.strip() else metrics_bind_address(value)

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


PAYLOAD_KEY_BYTES = 32
"""AES-256: the only key size accepted for payload encryption."""

_PAYLOAD_KEY_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


@dataclass(frozen=True)
class PayloadKey:
    """One payload key: its ID (written, in clear, next to every payload it encrypts)
    and its 32 bytes (never shown)."""

    key_id: str
    secret: bytes = field(repr=False)


def parse_payload_keys(text: str) -> tuple[PayloadKey, ...]:
    """``keyid:base64key`` entries, comma-separated, in the order given.

    Raises ``ValueError`` naming the entry (by position, and by key ID when it has a
    valid one), never quoting key material.
    """
    keys: list[PayloadKey] = []
    seen: set[str] = set()
    entries = [entry.strip() for entry in text.split(",")]
    for position, entry in enumerate(entries, start=1):
        if not entry:
            raise ValueError(f"entry {position} is empty (stray comma?)")
        key_id, colon, encoded = entry.partition(":")
        key_id, encoded = key_id.strip(), encoded.strip()
        if not colon:
            raise ValueError(f"entry {position} is not KEY_ID:BASE64_KEY")
        if not _PAYLOAD_KEY_ID.fullmatch(key_id):
            raise ValueError(
                f"entry {position}: a key ID is 1 to 64 letters, digits, '.', '_' or '-'"
            )
        if key_id in seen:
            raise ValueError(f"key ID {key_id!r} appears more than once")
        seen.add(key_id)
        try:
            secret = base64.b64decode(encoded.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError, ValueError):
            raise ValueError(f"key {key_id!r} is not base64") from None
        if len(secret) != PAYLOAD_KEY_BYTES:
            raise ValueError(
                f"key {key_id!r} is {len(secret)} bytes; an AES-256 key is "
                f"{PAYLOAD_KEY_BYTES} (make one with `starter.py codec-key`)"
            )
        keys.append(PayloadKey(key_id, secret))
    return tuple(keys)


def format_payload_key(key: PayloadKey) -> str:
    """The ``keyid:base64key`` entry ``ENFORCER_PAYLOAD_KEYS`` takes for ``key``."""
    return f"{key.key_id}:{base64.b64encode(key.secret).decode('ascii')}"


class PayloadSettings(BaseSettings):
    """Encryption of Temporal payloads, read from ``ENFORCER_PAYLOAD_KEYS`` and
    ``ENFORCER_PAYLOAD_KEY_ID``.

    No keys: payloads are plain. Keys: every payload is encrypted with the current key
    (``payload_key_id``, by default the first listed); every listed key decrypts.
    Rotation adds a key and makes it current; the old ones stay listed for what they
    encrypted.
    """

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    _secret_fields: ClassVar[frozenset[str]] = frozenset({"payload_keys"})

    payload_keys: SecretStr | None = Field(
        default=None,
        description="Comma-separated KEY_ID:BASE64_KEY entries (32-byte AES keys).",
    )
    payload_key_id: str | None = Field(
        default=None, description="The ID of the key that encrypts; default: the first."
    )
    _keys: tuple[PayloadKey, ...] = PrivateAttr(default=())

    def __init__(self, **values: Any) -> None:
        file = values.setdefault("_env_file", env_file())
        try:
            super().__init__(**values)
        except ValidationError as error:
            problems = _from_env_file(describe_errors(error, self._secret_fields), file)
        else:
            return
        # Raised outside the handler, so that pydantic's error (which quotes every
        # input, keys included) does not travel along as its context.
        raise SettingsError(problems)

    @field_validator("payload_keys")
    @classmethod
    def _payload_keys(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        parse_payload_keys(value.get_secret_value())
        return value

    @field_validator("payload_key_id")
    @classmethod
    def _payload_key_id(cls, value: str | None) -> str | None:
        return value.strip() or None if value is not None else None

    @model_validator(mode="after")
    def _current_key(self) -> Self:
        if self.payload_keys is not None:
            self._keys = parse_payload_keys(self.payload_keys.get_secret_value())
        known = [key.key_id for key in self._keys]
        if self.payload_key_id is not None and self.payload_key_id not in known:
            listed = f"the keys listed are {', '.join(known)}" if known else "no key is set"
            raise ValueError(
                f"{env_name('payload_key_id')}={self.payload_key_id!r}: not a key of "
                f"{env_name('payload_keys')} ({listed})"
            )
        return self

    @property
    def keys(self) -> tuple[PayloadKey, ...]:
        """Every key that decrypts, in the order listed; empty when encryption is off."""
        return self._keys

    @property
    def current_key(self) -> PayloadKey | None:
        """The key that encrypts new payloads; None when encryption is off."""
        if not self._keys:
            return None
        wanted = self.payload_key_id or self._keys[0].key_id
        return next(key for key in self._keys if key.key_id == wanted)
