"""What the Web API client needs from whoever holds the person's tokens.

The client never sees a refresh token or a client secret: it asks an
``AccessTokenProvider`` for a bearer token, and tells it when Spotify rejected one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from pydantic import BaseModel, ConfigDict, SecretStr


class TokenSet(BaseModel):
    """One account's tokens as Spotify's accounts service handed them out."""

    model_config = ConfigDict(frozen=True)

    access_token: SecretStr
    refresh_token: SecretStr
    expires_at: datetime
    scope: str = ""

    @property
    def scopes(self) -> frozenset[str]:
        return frozenset(self.scope.split())


class AccessTokenProvider(Protocol):
    """Hands the client a valid access token, refreshing it when needed."""

    async def access_token(self) -> str:
        """A token valid for a while yet: refreshed ahead of its expiry."""
        ...

    async def refresh_after_rejection(self, rejected: str) -> str:
        """Spotify answered 401 to ``rejected``: refresh once (unless another caller
        already did) and return the new token. Raises ``LoginRequired`` on
        ``invalid_grant``."""
        ...
