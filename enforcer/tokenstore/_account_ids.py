"""What can be a Spotify account (user) ID, wherever tokens are kept under one."""

from __future__ import annotations

from enforcer.tokenstore._errors import InvalidAccountId


def check_account_id(account_id: object) -> str:
    """``account_id`` if it can be a Spotify user ID, else ``InvalidAccountId``."""
    if (
        not isinstance(account_id, str)
        or not 1 <= len(account_id) <= 256
        or not account_id.isprintable()
        or any(c.isspace() for c in account_id)
    ):
        raise InvalidAccountId(account_id)
    return account_id
