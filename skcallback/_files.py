"""Writing files atomically, and the checksum every saved format carries.

Checkpoints, ``skcallback.save`` files and pickles all end up here: one
writer (so every format survives a crash the same way) and one digest (so a
flipped bit is an error in every format, never a silently different model).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import tempfile
from pathlib import Path

DIGEST_SIZE = 32


def checksum(*parts: bytes) -> bytes:
    """The BLAKE2b digest of ``parts``, one after the other."""
    digest = hashlib.blake2b(digest_size=DIGEST_SIZE)
    for part in parts:
        digest.update(part)
    return digest.digest()


def atomic_write(data: bytes, path: str | os.PathLike, what: str = "the file") -> Path:
    """Write ``data`` to ``path`` atomically: to a temporary file in the same
    folder, flushed, synced, then renamed. A crash never leaves a truncated
    file under ``path``, and no failure (of any kind) leaves the temporary
    file behind.

    Raises
    ------
    OSError
        If the file cannot be written; the message names ``what`` and the path.
    """
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
        tmp = None
    except OSError as exc:
        raise OSError(
            exc.errno, f"Could not write {what} {str(path)!r}: {exc.strerror or exc}"
        ) from exc
    finally:
        if tmp is not None:
            # A failed clean-up must not hide the error that caused it.
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    return path


def check_writable(folder: Path, owner: str, parameter: str) -> None:
    """Raise an ``OSError`` naming ``folder`` and the parameter to change
    unless it is a folder this process may write in, or its nearest existing
    ancestor is one (so it can be made); create nothing. For ``setup``,
    which only checks: ``ensure_writable`` makes the folder once the fit
    starts."""
    path = folder.absolute()
    existing = next(p for p in (path, *path.parents) if p.exists())
    if not existing.is_dir():
        raise NotADirectoryError(
            errno.ENOTDIR,
            f"{owner} cannot write to the folder {str(folder)!r}: {str(existing)!r} is a file; "
            f"choose another {parameter}.",
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        raise PermissionError(
            errno.EACCES,
            f"{owner} cannot write to the folder {str(folder)!r} ({str(existing)!r} is not "
            f"writable); choose a writable {parameter}.",
        )


def ensure_writable(folder: Path, owner: str, parameter: str) -> None:
    """Create ``folder`` and prove a file can be written in it, or raise an
    ``OSError`` naming the folder and the parameter to change."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise OSError(
            exc.errno,
            f"{owner} cannot write to the folder {str(folder)!r} ({exc.strerror or exc}); "
            f"choose a writable {parameter}.",
        ) from exc
