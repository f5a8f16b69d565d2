"""The token store in the ledger's accounts table, encrypted as the file store does.

A store remembers the ciphertext it last read or wrote for each account, so that a
long-lived holder of a login (a worker's warm client) can ask, with one read and no
decryption, whether the stored login changed since (``load_if_changed``).
"""

from __future__ import annotations

from enforcer.ledger._accounts import AccountStore
from enforcer.spotify.tokens import TokenSet
from enforcer.tokenstore import NoStoredLogin, TokenCipher, check_account_id


class LedgerTokenStore:
    """``TokenStore`` keeping each account's login as a ``TokenCipher`` ciphertext."""

    def __init__(self, ledger: AccountStore, cipher: TokenCipher) -> None:
        self._ledger = ledger
        self._cipher = cipher
        self._seen: dict[str, bytes] = {}

    def __repr__(self) -> str:
        return f"LedgerTokenStore({self._ledger!r})"

    async def save(self, account_id: str, tokens: TokenSet) -> None:
        check_account_id(account_id)
        ciphertext = self._cipher.encrypt(account_id, tokens)
        await self._ledger._save_login(account_id, ciphertext)
        self._seen[account_id] = ciphertext

    async def load(self, account_id: str) -> TokenSet:
        check_account_id(account_id)
        ciphertext = await self._ledger._load_login(account_id)
        if ciphertext is None:
            raise NoStoredLogin(account_id)
        tokens = self._cipher.decrypt(account_id, ciphertext)
        self._seen[account_id] = ciphertext
        return tokens

    async def load_if_changed(self, account_id: str) -> TokenSet | None:
        """The account's login if the stored one is not what this store last read or
        wrote (a new login, another process's refresh), else None; decrypted only then.
        Raises ``NoStoredLogin`` when there is none any more."""
        check_account_id(account_id)
        ciphertext = await self._ledger._load_login(account_id)
        if ciphertext is None:
            raise NoStoredLogin(account_id)
        if ciphertext == self._seen.get(account_id):
            return None
        tokens = self._cipher.decrypt(account_id, ciphertext)
        self._seen[account_id] = ciphertext
        return tokens

    async def accounts(self) -> list[str]:
        return await self._ledger._accounts_with_login()
