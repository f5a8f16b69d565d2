"""Spotify tokens at rest: encrypted, one record per account, a key only the owner reads.

``TokenStore`` is what the rest of the service depends on; the ledger keeps the
records (``enforcer.ledger.LedgerTokenStore``, in its accounts table). Here are the
parts that know nothing of where records live: the cipher, and the key, from
``ENFORCER_TOKEN_KEY`` or an owner-only key file in the data directory.
"""

from enforcer.tokenstore._account_ids import check_account_id
from enforcer.tokenstore._cipher import TokenCipher
from enforcer.tokenstore._errors import (
    InvalidAccountId,
    NoStoredLogin,
    TokenKeyError,
    UnreadableTokens,
)
from enforcer.tokenstore._keys import load_or_create_key_file, token_cipher
from enforcer.tokenstore._protocol import TokenStore

__all__ = [
    "InvalidAccountId",
    "NoStoredLogin",
    "TokenCipher",
    "TokenKeyError",
    "TokenStore",
    "UnreadableTokens",
    "check_account_id",
    "load_or_create_key_file",
    "token_cipher",
]
