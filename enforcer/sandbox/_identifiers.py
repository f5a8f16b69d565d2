"""Spotify identifiers, URIs and timestamps, checked the way Spotify checks them."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote_plus

BASE62_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_BASE62_ID = re.compile(r"[0-9A-Za-z]{22}")
# Spotify user names predate base-62 IDs: legacy accounts chose their own.
_USER_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")

CATALOG_TYPES = frozenset({"track", "album", "artist", "episode", "show", "audiobook"})
URI_TYPES = CATALOG_TYPES | {"user", "playlist"}


class IdentifierError(ValueError):
    """A value that is not a Spotify ID or URI of the expected kind."""


def is_base62_id(value: str) -> bool:
    return _BASE62_ID.fullmatch(value) is not None


def is_user_id(value: str) -> bool:
    return _USER_ID.fullmatch(value) is not None


def require_base62_id(value: object, what: str = "id") -> str:
    if not isinstance(value, str) or not is_base62_id(value):
        raise IdentifierError(f"Invalid base62 {what}: {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class SpotifyUri:
    kind: str
    id: str

    def __str__(self) -> str:
        return f"spotify:{self.kind}:{self.id}"


def parse_uri(value: object, allowed: frozenset[str] = URI_TYPES) -> SpotifyUri:
    """``spotify:{type}:{id}`` with a known type and a well-formed id."""
    if not isinstance(value, str):
        raise IdentifierError(f"Invalid Spotify URI: {value!r}")
    parts = value.split(":")
    if len(parts) != 3 or parts[0] != "spotify":
        raise IdentifierError(f"Invalid Spotify URI: {value!r}")
    kind, ident = parts[1], parts[2]
    if kind == "local":
        raise IdentifierError(f"Local file URIs cannot be used here: {value!r}")
    if kind not in allowed:
        raise IdentifierError(f"Unsupported URI type {kind!r} in {value!r}")
    valid = is_user_id(ident) if kind == "user" else is_base62_id(ident)
    if not valid:
        raise IdentifierError(f"Invalid base62 id in URI: {value!r}")
    return SpotifyUri(kind, ident)


def local_file_uri(artist: str, album: str, name: str, duration_ms: int) -> str:
    """The ``spotify:local:`` URI Spotify gives a local file (fields URL-encoded)."""
    fields = (quote_plus(artist), quote_plus(album), quote_plus(name), str(duration_ms // 1000))
    return "spotify:local:" + ":".join(fields)


def base62_from_bytes(data: bytes, length: int) -> str:
    number = int.from_bytes(data, "big")
    chars = []
    for _ in range(length):
        number, digit = divmod(number, 62)
        chars.append(BASE62_ALPHABET[digit])
    return "".join(chars)


def next_snapshot_id(playlist_id: str, previous: str, version: int) -> str:
    """Opaque, deterministic: a replay of the same changes gives the same snapshots."""
    digest = hashlib.sha256(f"{playlist_id}:{previous}:{version}".encode()).digest()
    return base62_from_bytes(digest, 32)


def stable_token(seed: str, length: int) -> str:
    """``length`` base-62 characters derived from ``seed``: the same seed, the same token."""
    return base62_from_bytes(hashlib.sha256(seed.encode()).digest(), length)


def stable_digits(seed: str, length: int) -> str:
    """``length`` decimal digits derived from ``seed``, like ``stable_token``."""
    number = int.from_bytes(hashlib.sha256(seed.encode()).digest(), "big")
    return str(number % 10**length).zfill(length)


def parse_timestamp(value: object) -> int:
    """ISO 8601 (``Z`` or an offset) to whole epoch seconds."""
    if not isinstance(value, str):
        raise IdentifierError(f"Invalid timestamp: {value!r}")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise IdentifierError(f"Invalid timestamp: {value!r}") from None
    if parsed.tzinfo is None:
        raise IdentifierError(f"Timestamp without a time zone: {value!r}")
    return int(parsed.timestamp())


def format_timestamp(epoch_seconds: int) -> str:
    return datetime.fromtimestamp(epoch_seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
