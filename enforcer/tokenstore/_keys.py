"""Where the token key comes from: the environment, or a key file of the owner's."""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr

from enforcer.config import Settings, check_fernet_key
from enforcer.tokenstore._cipher import TokenCipher
from enforcer.tokenstore._errors import TokenKeyError
from enforcer.tokenstore._files import (
    create_private_file,
    ensure_private_dir,
    loose_permissions,
)


def load_or_create_key_file(path: Path) -> SecretStr:
    """The key in ``path``, made (mode 0600) on first use.

    A key file that others may read is refused rather than fixed: it may already
    have been read, and the person should know.
    """
    if not path.exists():
        ensure_private_dir(path.parent)
        create_private_file(path, TokenCipher.generate_key().get_secret_value().encode())
    if not path.is_file():
        raise TokenKeyError(f"token key file {path} is not a regular file")
    loose = loose_permissions(path)
    if loose is not None:
        raise TokenKeyError(
            f"token key file {path} has mode {loose:04o}: it holds the key to your "
            f"Spotify tokens and must be readable by its owner only "
            f"(run `chmod 600 {path}`, and log in again if others may have read it)"
        )
    key = path.read_text(encoding="ascii", errors="replace").strip()
    try:
        check_fernet_key(key)
    except ValueError as error:
        raise TokenKeyError(f"token key file {path} {error}") from None
    return SecretStr(key)


def token_cipher(settings: Settings) -> TokenCipher:
    """The cipher for ``ENFORCER_TOKEN_KEY``, or else for the key file in ``data_dir``."""
    key = settings.token_key or load_or_create_key_file(settings.token_key_file)
    return TokenCipher(key)
