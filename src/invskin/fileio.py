"""Atomic file writes: a half-written file never replaces a good one. Also :func:`cache_dir`, the
folder where invskin caches what it builds.

Write to a temporary file in the destination's folder (same file system), flush it to disk, give it
the usual permissions (``mkstemp`` makes files private) and rename it onto the destination, which
POSIX guarantees to be atomic. On any failure the temporary file is removed and the destination is
untouched.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; it replaces ``path`` when the block succeeds."""
    path = Path(path)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return write_bytes_atomic(path, text.encode("utf-8"))


def cache_dir() -> Path:
    """invskin's cache folder: ``$INVSKIN_CACHE`` if set, else ``~/.cache/invskin``."""
    return Path(os.environ.get("INVSKIN_CACHE") or Path.home() / ".cache" / "invskin")
