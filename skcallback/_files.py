"""Writing files atomically, and the checksum every saved format carries.

Checkpoints, ``skcallback.save`` files and pickles all end up here: one
writer (so every format survives a crash the same way) and one digest (so a
flipped bit is an error in every format, never a silently different model).
"""

from __future__ import annotations

import contextlib
import errno
import glob
import hashlib
import os
import tempfile
import time
from pathlib import Path

DIGEST_SIZE = 32
#: A temporary file untouched this long (seconds) whose writer is gone is
#: the leftover of a killed write; a live write touches its file sooner.
STALE_AFTER_S = 120.0


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
    file behind. A write killed outright (SIGKILL, power loss) does leave
    one: the next write to ``path`` removes those (see ``_remove_leftovers``).

    Raises
    ------
    OSError
        If the file cannot be written; the message names ``what`` and the path.
    """
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_leftovers(path.parent, glob.escape(path.name))
        # The writer's process id in the name tells a later write whether
        # the writer is gone.
        prefix = f".{path.name}.{os.getpid()}."
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=prefix, suffix=".tmp")
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


def remove_leftovers(folder: Path, names: str) -> None:
    """Remove the temporary files that killed writes of files named like
    ``names`` (a glob pattern) left in ``folder``: untouched for
    ``STALE_AFTER_S`` and written by a process that is gone (or by one that
    did not say, before the writer's id was in the name). A write in
    progress, here or on another machine, keeps its file. Each removal is
    best effort: a file that went meanwhile is no error."""
    now = time.time()
    for leftover in Path(folder).glob(f".{names}.*.tmp"):
        # .<name>.<writer's pid>.<random>.tmp (the random part has no dot)
        writer = leftover.name[: -len(".tmp")].rsplit(".", 2)[1]
        with contextlib.suppress(OSError):
            if now - leftover.stat().st_mtime > STALE_AFTER_S and not _alive(writer):
                leftover.unlink()


def _alive(writer: str) -> bool:
    """Whether the process of id ``writer`` (a name's part) runs here; False
    for a part that is not an id."""
    if not writer.isdigit():
        return False
    try:
        os.kill(int(writer), 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError):
        return True  # another user's process, or an id this OS cannot ask about
    return True
