"""Tokens to ciphertext and back, independent of where the ciphertext is kept."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from cryptography.fernet import Fernet, InvalidToken
from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError

from enforcer.spotify.tokens import TokenSet
from enforcer.tokenstore._errors import UnreadableTokens


class _Record(BaseModel):
    """The plaintext inside one ciphertext. The account is inside too, so a record
    copied to another account's place is refused instead of silently used."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: Literal[1] = 1
    account_id: str
    access_token: str
    refresh_token: str
    expires_at: datetime
    scope: str


class TokenCipher:
    """Authenticated encryption of a ``TokenSet`` (Fernet: AES-128-CBC + HMAC-SHA256)."""

    def __init__(self, key: SecretStr) -> None:
        self._fernet = Fernet(key.get_secret_value().encode("ascii"))

    def __repr__(self) -> str:
        return "TokenCipher(key=SecretStr('**********'))"

    @staticmethod
    def generate_key() -> SecretStr:
        return SecretStr(Fernet.generate_key().decode("ascii"))

    def encrypt(self, account_id: str, tokens: TokenSet) -> bytes:
        record = _Record(
            account_id=account_id,
            access_token=tokens.access_token.get_secret_value(),
            refresh_token=tokens.refresh_token.get_secret_value(),
            expires_at=tokens.expires_at,
            scope=tokens.scope,
        )
        return self._fernet.encrypt(record.model_dump_json().encode("utf-8"))

    def decrypt(self, account_id: str, ciphertext: bytes) -> TokenSet:
        try:
            plaintext = self._fernet.decrypt(ciphertext)
        except InvalidToken:
            raise UnreadableTokens(account_id, "wrong key or damaged record") from None
        try:
            record = _Record.model_validate_json(plaintext)
        except ValidationError:
            # The error would quote the plaintext, tokens included.
            raise UnreadableTokens(account_id, "unknown record format") from None
        if record.account_id != account_id:
            raise UnreadableTokens(account_id, f"it belongs to {record.account_id!r}")
        return TokenSet(
            access_token=SecretStr(record.access_token),
            refresh_token=SecretStr(record.refresh_token),
            expires_at=record.expires_at,
            scope=record.scope,
        )
