"""Small files that only their owner may read (the token key), created so that a
reader never sees half of one."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path

OWNER_ONLY_FILE = 0o600
OWNER_ONLY_DIR = 0o700


def ensure_private_dir(path: Path) -> None:
    """Create ``path`` (and parents) as owner-only; leave an existing one as it is."""
    path.mkdir(mode=OWNER_ONLY_DIR, parents=True, exist_ok=True)


def loose_permissions(path: Path) -> int | None:
    """The mode bits that let others than the owner in, or None if there are none."""
    if os.name != "posix":
        return None
    mode = stat.S_IMODE(path.stat().st_mode)
    return mode if mode & 0o077 else None


def _write_temporary(directory: Path, data: bytes) -> Path:
    # mkstemp creates the file with mode 0600 before anything is written to it.
    handle, name = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".partial")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name)
        raise
    return Path(name)


def create_private_file(path: Path, data: bytes) -> bool:
    """Create ``path`` with ``data``, mode 0600, unless it exists already.

    Returns whether this call created it: of two processes racing to create the
    same file, exactly one wins and the other reads the winner's complete file.
    """
    temporary = _write_temporary(path.parent, data)
    try:
        os.link(temporary, path)
    except FileExistsError:
        return False
    finally:
        temporary.unlink()
    return True
