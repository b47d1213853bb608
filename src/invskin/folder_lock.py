"""One writer per folder: ``flock`` locks on a lock file beside each folder a command writes.

The lock of ``parent/name`` is the hidden file ``parent/.name.lock`` (the path resolved first, so
a folder reached through a symbolic link has one lock). It lives beside the folder, not inside it,
because dataset writers build a dataset elsewhere and rename it into place: a lock inside would be
replaced with the folder. Locks are taken with ``flock`` (never ``fcntl``/``lockf`` record locks,
which a process drops as soon as it closes any handle to the file), without waiting:

- **exclusive**: the writer of a folder (``train`` on its run, ``synth`` and ``import`` on their
  ``--out``); no other holder at all.
- **shared**: readers that must not see a folder change under them (``train`` on its dataset,
  ``repose`` on its run); any number at once, never together with an exclusive holder.

The holder writes one JSON line into the lock file (pid, host, command line, start time, mode); a
command that cannot take the lock raises :class:`~invskin.errors.FolderInUse`, naming the holder.
The operating system releases a lock when its process ends, however it ends (``kill -9``
included), so no stale lock is left. A clean release also removes the lock file when no one else
holds it; a file left behind by a killed process holds no lock and is reused. Whoever takes a lock
checks afterwards that the file it locked is still the one at the path (it may have been removed
by the holder that just left) and tries again otherwise.

File systems that cannot lock (``ENOLCK``: an NFS mount without a lock manager; some FUSE mounts)
get a warning and no lock. See ``docs/io.md`` ("One writer per folder") for what ``flock`` does and
does not guarantee on network file systems.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import shlex
import socket
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from invskin.errors import FolderInUse

logger = logging.getLogger(__name__)

UNSUPPORTED = (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS)
"""``flock`` errors of a file system that cannot lock (rather than a lock that is held)."""

_ATTEMPTS = 20  # tries when the lock file is removed between opening and locking it


@dataclass(frozen=True)
class Holder:
    """Who holds (or held) a lock: one line of the lock file."""

    pid: int
    host: str
    command: str
    started: str
    mode: str  # "exclusive" or "shared"

    def describe(self) -> str:
        """``pid 123 (`invskin train ...`, started 2025-01-02 10:00:00, exclusive lock)``."""
        host = "" if self.host == socket.gethostname() else f" on {self.host}"
        return f"pid {self.pid}{host} (`{self.command}`, started {self.started}, {self.mode} lock)"


def lock_path(path: str | os.PathLike[str]) -> Path:
    """The lock file of the folder (or file) ``path``: ``.<name>.lock`` beside it."""
    resolved = Path(path).resolve()
    if resolved.parent == resolved:
        raise ValueError(f"{path} has no parent folder to hold its lock file; choose a sub-folder")
    return resolved.parent / f".{resolved.name}.lock"


def command_line(argv: Sequence[str]) -> str:
    """The command as a person would type it: ``invskin ARGS`` for the console script and for
    ``python -m invskin.cli.main``, else the arguments as given; at most 300 characters."""
    program = Path(argv[0]) if argv else Path()
    if program.name == "invskin" or program.parts[-3:] == ("invskin", "cli", "main.py"):
        text = shlex.join(["invskin", *argv[1:]])
    else:
        text = shlex.join(argv)
    return text if len(text) <= 300 else text[:297] + "..."


def this_process(shared: bool) -> Holder:
    """The :class:`Holder` line of this process."""
    return Holder(
        pid=os.getpid(),
        host=socket.gethostname(),
        command=command_line(sys.argv),
        started=time.strftime("%Y-%m-%d %H:%M:%S"),
        mode="shared" if shared else "exclusive",
    )


def parse_holders(text: str) -> list[Holder]:
    """The holders written in a lock file's text (unreadable lines are skipped)."""
    holders = []
    for line in text.splitlines():
        try:
            holders.append(Holder(**json.loads(line)))
        except (ValueError, TypeError):
            continue
    return holders


def running(holder: Holder) -> bool:
    """Whether ``holder``'s process still runs (always assumed on another host)."""
    if holder.host != socket.gethostname():
        return True
    try:
        os.kill(holder.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def busy_message(path: Path, lock: Path, holders: Sequence[Holder], hint: str) -> str:
    """The refusal: which folder, who holds it (the running holders listed), what to do."""
    live = [h for h in holders if running(h)]
    who = "; ".join(h.describe() for h in live) if live else "another process (it left no record)"
    advice = f" {hint}" if hint else ""
    return (
        f"{path} is in use by {who}.{advice} (Lock file {lock}; the lock is released when that "
        "process ends.)"
    )


def _read(fd: int) -> str:
    """The whole text of the open file ``fd``."""
    size = os.fstat(fd).st_size
    return os.pread(fd, size, 0).decode("utf-8", errors="replace")


def _same_file(fd: int, path: Path) -> bool:
    """Whether ``path`` still names the file open as ``fd``."""
    try:
        named = os.stat(path)
    except FileNotFoundError:
        return False
    opened = os.fstat(fd)
    return (named.st_dev, named.st_ino) == (opened.st_dev, opened.st_ino)


def _open(lock: Path, shared: bool) -> int | None:
    """Open (creating it) the lock file; a shared lock falls back to reading an existing file, or
    to no lock when the folder beside it cannot be written (no writer could replace it either)."""
    try:
        return os.open(lock, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o666)
    except OSError as error:
        if not shared or error.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise
    try:
        return os.open(lock, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None


def _flock(fd: int, operation: int) -> bool:
    """``flock(fd, operation | LOCK_NB)``: True if taken, False if another process holds it."""
    try:
        fcntl.flock(fd, operation | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _record(fd: int, holder: Holder, alone: bool) -> None:
    """Write ``holder`` into the lock file: replacing its text when alone, else appended."""
    try:
        if alone:
            os.ftruncate(fd, 0)
        os.write(fd, (json.dumps(asdict(holder)) + "\n").encode("utf-8"))
    except OSError:
        pass  # a read-only lock file (a shared lock): the lock holds all the same


class FolderLock:
    """A lock held on a folder; :meth:`release` (or the end of :func:`hold_folder`) gives it up."""

    def __init__(self, path: Path, lock: Path, fd: int | None, shared: bool) -> None:
        self.path = path
        self.lock = lock
        self.fd = fd
        self.shared = shared

    @property
    def held(self) -> bool:
        """Whether a lock is held (False after :meth:`release`, or where locks are unsupported)."""
        return self.fd is not None

    def release(self) -> None:
        """Give the lock up; remove the lock file when no other process holds it."""
        if self.fd is None:
            return
        fd, self.fd = self.fd, None
        try:
            if (not self.shared or _flock(fd, fcntl.LOCK_EX)) and _same_file(fd, self.lock):
                self.lock.unlink(missing_ok=True)
        except OSError:
            pass  # the lock file stays; it holds no lock once closed
        finally:
            os.close(fd)


def acquire(path: str | os.PathLike[str], shared: bool = False, hint: str = "") -> FolderLock:
    """Lock ``path`` (a folder or file, existing or not) without waiting.

    Raises :class:`~invskin.errors.FolderInUse` (naming the holder and ending with ``hint``) when
    another process holds a conflicting lock. Creates the parent folder if needed.
    """
    path = Path(path)
    lock = lock_path(path)
    lock.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(_ATTEMPTS):
        fd = _open(lock, shared)
        if fd is None:
            return FolderLock(path, lock, None, shared)
        try:
            taken, alone = _take(fd, shared)
        except OSError as error:
            os.close(fd)
            if error.errno not in UNSUPPORTED:
                raise
            logger.warning(
                "the file system of %s cannot lock (%s): %s is not locked", lock, error, path
            )
            return FolderLock(path, lock, None, shared)
        if not taken:
            holders = parse_holders(_read(fd))
            os.close(fd)
            raise FolderInUse(busy_message(path, lock, holders, hint))
        if _same_file(fd, lock):
            _record(fd, this_process(shared), alone)
            return FolderLock(path, lock, fd, shared)
        os.close(fd)  # the holder before us removed the file as it left: lock the new one
    raise FolderInUse(f"{path}: its lock file {lock} keeps being replaced; try again")


def _take(fd: int, shared: bool) -> tuple[bool, bool]:
    """Take the lock on ``fd``: (taken, alone). A shared lock is first taken exclusively, so that
    a process alone can clear the records of earlier holders, then turned shared."""
    if _flock_exclusive(fd, shared):
        if not shared:
            return True, True
        return _flock(fd, fcntl.LOCK_SH), True
    if shared and _flock(fd, fcntl.LOCK_SH):
        return True, False
    return False, False


def _flock_exclusive(fd: int, shared: bool) -> bool:
    """Try the exclusive lock; for a shared lock, a lock file open read-only counts as busy (NFS,
    which emulates ``flock`` with byte-range locks, refuses it with ``EBADF``)."""
    try:
        return _flock(fd, fcntl.LOCK_EX)
    except OSError as error:
        if shared and error.errno == errno.EBADF:
            return False
        raise


@contextmanager
def hold_folder(
    path: str | os.PathLike[str], shared: bool = False, hint: str = ""
) -> Iterator[FolderLock]:
    """Hold the lock on ``path`` for the block (see :func:`acquire`)."""
    held = acquire(path, shared=shared, hint=hint)
    try:
        yield held
    finally:
        held.release()


def holders(path: str | os.PathLike[str]) -> list[Holder]:
    """The running holders recorded in the lock file of ``path`` (empty when there is none)."""
    try:
        text = lock_path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    return [h for h in parse_holders(text) if running(h)]
