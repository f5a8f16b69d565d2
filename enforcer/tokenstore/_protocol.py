"""The one thing the rest of the service needs from wherever tokens are kept."""

from __future__ import annotations

from typing import Protocol

from enforcer.spotify.tokens import TokenSet


class TokenStore(Protocol):
    """One encrypted record per account. Async so a database can stand behind it."""

    async def save(self, account_id: str, tokens: TokenSet) -> None:
        """Store ``tokens`` as the account's current login, replacing any before."""
        ...

    async def load(self, account_id: str) -> TokenSet:
        """The account's current login. Raises ``NoStoredLogin`` when there is none."""
        ...

    async def accounts(self) -> list[str]:
        """Every account with a stored login, sorted."""
        ...
