"""The errors the Spotify layer raises: callers never see a bare ``httpx`` exception.

The hierarchy is layered like httpx's own, so that a caller can catch as broadly or
as narrowly as it needs::

    SpotifyError
    ├── InvalidIdentifier        bad input from a person, nothing was sent
    ├── LoginRequired            the refresh token is gone: only a new login helps
    ├── TransientError           5xx, timeouts, broken connections: try again later
    │   └── SpotifyUnreachable   no connection could be made at all (names the address)
    └── SpotifyHTTPError         Spotify answered with a 4xx
        ├── BadRequest           400
        ├── AccessTokenExpired   401 that survived one refresh
        ├── Forbidden            403, with Spotify's reason
        ├── NotFound             404
        ├── EndpointGone         410
        └── RateLimited          429, with the exact Retry-After
"""

from __future__ import annotations


class SpotifyError(Exception):
    """Base class of every error raised by ``enforcer.spotify``."""


class InvalidIdentifier(SpotifyError, ValueError):
    """A value given as a Spotify artist, track, album or playlist is not one."""

    def __init__(self, value: str, expected: str) -> None:
        self.value = value
        self.expected = expected
        super().__init__(
            f"{value!r} is not a Spotify {expected}: give a 22-character ID, "
            f"a spotify:{expected}:ID URI or an https://open.spotify.com/{expected}/ID link"
        )


class LoginRequired(SpotifyError):
    """The refresh token was rejected (``invalid_grant``): the person must log in again."""


class TransientError(SpotifyError):
    """A failure that says nothing about the request: 5xx, timeout, lost connection."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        self.status = status
        super().__init__(message)


class SpotifyUnreachable(TransientError):
    """No connection to Spotify (or the sandbox) could be made: a wrong address, no
    network, or nothing listening. ``address`` is the scheme, host and port tried."""

    def __init__(self, address: str, what: str, failure: str) -> None:
        self.address = address
        super().__init__(f"cannot reach {address} ({what} failed: {failure})")


def unreachable_address(url: str) -> str:
    """The part of a URL a person checks when nothing answers: scheme, host and port."""
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}"


class SpotifyHTTPError(SpotifyError):
    """Spotify answered a request with a client error."""

    def __init__(self, status: int, message: str, *, endpoint: str) -> None:
        self.status = status
        self.message = message
        self.endpoint = endpoint
        super().__init__(f"{endpoint} answered {status}: {message}")


class BadRequest(SpotifyHTTPError):
    """400: the request is malformed; sending it again will not help."""


class AccessTokenExpired(SpotifyHTTPError):
    """401 even after a fresh access token."""


class Forbidden(SpotifyHTTPError):
    """403: re-authenticating will not help (not the owner, endpoint closed to the app...)."""

    def __init__(
        self, status: int, message: str, *, endpoint: str, reason: str | None = None
    ) -> None:
        self.reason = reason
        super().__init__(status, message, endpoint=endpoint)


class NotFound(SpotifyHTTPError):
    """404."""


class EndpointGone(SpotifyHTTPError):
    """410: the endpoint was retired."""


class RateLimited(SpotifyHTTPError):
    """429. The client never sleeps on it: the caller decides how to wait, durably."""

    def __init__(
        self,
        message: str,
        *,
        endpoint: str,
        retry_after: float,
        quota_exceeded: bool = False,
    ) -> None:
        self.retry_after = retry_after
        self.quota_exceeded = quota_exceeded
        super().__init__(429, message, endpoint=endpoint)
