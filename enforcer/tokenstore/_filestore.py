"""The token store as one encrypted file per account under ``data_dir/tokens``."""

from __future__ import annotations

import asyncio
from pathlib import Path
from urllib.parse import quote, unquote

from enforcer.config import Settings
from enforcer.spotify.tokens import TokenSet
from enforcer.tokenstore._cipher import TokenCipher
from enforcer.tokenstore._errors import InvalidAccountId, NoStoredLogin
from enforcer.tokenstore._files import ensure_private_dir, write_private_file
from enforcer.tokenstore._keys import token_cipher

_SUFFIX = ".token"


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


class FileTokenStore:
    """``TokenStore`` keeping each account's encrypted tokens in its own 0600 file."""

    def __init__(self, directory: Path, cipher: TokenCipher) -> None:
        self.directory = directory
        self._cipher = cipher

    @classmethod
    def from_settings(cls, settings: Settings) -> FileTokenStore:
        return cls(settings.data_dir / "tokens", token_cipher(settings))

    def __repr__(self) -> str:
        return f"FileTokenStore({str(self.directory)!r})"

    def path_of(self, account_id: str) -> Path:
        # Percent-encoding keeps any user ID a single, reversible file name.
        return self.directory / (quote(check_account_id(account_id), safe="") + _SUFFIX)

    async def save(self, account_id: str, tokens: TokenSet) -> None:
        path = self.path_of(account_id)
        ciphertext = self._cipher.encrypt(account_id, tokens)
        await asyncio.to_thread(self._write, path, ciphertext)

    async def load(self, account_id: str) -> TokenSet:
        path = self.path_of(account_id)
        try:
            ciphertext = await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            raise NoStoredLogin(account_id) from None
        return self._cipher.decrypt(account_id, ciphertext)

    async def accounts(self) -> list[str]:
        return await asyncio.to_thread(self._list)

    def _write(self, path: Path, ciphertext: bytes) -> None:
        ensure_private_dir(self.directory)
        write_private_file(path, ciphertext)

    def _list(self) -> list[str]:
        if not self.directory.is_dir():
            return []
        return sorted(
            unquote(path.name.removesuffix(_SUFFIX))
            for path in self.directory.iterdir()
            if path.name.endswith(_SUFFIX) and path.is_file()
        )
