"""Spotify tokens at rest: encrypted, one record per account, readable by the owner only.

``TokenStore`` is what the rest of the service depends on; ``FileTokenStore`` keeps
the records as files today, and a database table can take its place later. The
cipher knows nothing of files, the files nothing of tokens.
"""

from enforcer.tokenstore._cipher import TokenCipher
from enforcer.tokenstore._errors import (
    InvalidAccountId,
    NoStoredLogin,
    TokenKeyError,
    UnreadableTokens,
)
from enforcer.tokenstore._filestore import FileTokenStore, check_account_id
from enforcer.tokenstore._keys import load_or_create_key_file, token_cipher
from enforcer.tokenstore._protocol import TokenStore

__all__ = [
    "FileTokenStore",
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
