"""The token store in the ledger's accounts table, encrypted as the file store does."""

from __future__ import annotations

from enforcer.ledger._accounts import AccountStore
from enforcer.spotify.tokens import TokenSet
from enforcer.tokenstore import NoStoredLogin, TokenCipher, check_account_id


class LedgerTokenStore:
    """``TokenStore`` keeping each account's login as a ``TokenCipher`` ciphertext."""

    def __init__(self, ledger: AccountStore, cipher: TokenCipher) -> None:
        self._ledger = ledger
        self._cipher = cipher

    def __repr__(self) -> str:
        return f"LedgerTokenStore({self._ledger!r})"

    async def save(self, account_id: str, tokens: TokenSet) -> None:
        check_account_id(account_id)
        await self._ledger._save_login(account_id, self._cipher.encrypt(account_id, tokens))

    async def load(self, account_id: str) -> TokenSet:
        check_account_id(account_id)
        ciphertext = await self._ledger._load_login(account_id)
        if ciphertext is None:
            raise NoStoredLogin(account_id)
        return self._cipher.decrypt(account_id, ciphertext)

    async def accounts(self) -> list[str]:
        return await self._ledger._accounts_with_login()
