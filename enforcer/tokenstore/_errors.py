"""What can go wrong when tokens are stored or read."""

from __future__ import annotations

from enforcer.spotify.errors import LoginRequired


class NoStoredLogin(LoginRequired):
    """No tokens were ever stored for this account (or they were removed)."""

    def __init__(self, account_id: str) -> None:
        self.account_id = account_id
        super().__init__(f"no login for account {account_id!r}: run `starter.py login`")


class UnreadableTokens(LoginRequired):
    """The account's record exists but this key cannot decrypt it."""

    def __init__(self, account_id: str, why: str) -> None:
        self.account_id = account_id
        super().__init__(
            f"the stored login of account {account_id!r} cannot be read ({why}): "
            "was ENFORCER_TOKEN_KEY or the token.key file changed? "
            "Restore the key, or run `starter.py login` again"
        )


class TokenKeyError(ValueError):
    """The key file is unsafe or does not hold a key. Its content is never shown."""


class InvalidAccountId(ValueError):
    """A value given as a Spotify account (user) ID cannot be one."""

    def __init__(self, value: object) -> None:
        self.value = value
        super().__init__(
            f"{value!r} is not a Spotify user ID: expected 1 to 256 printable characters "
            "without spaces"
        )
