"""The project's error for bad input files, defined at the bottom of the package.

:class:`DataError` is re-exported by :mod:`invskin.data.format` (where most readers raise it); it
lives here so that low-level readers (:mod:`invskin.safe_pickle`, :mod:`invskin.body.smpl`) can
raise it without importing the dataset format.
"""

from __future__ import annotations

import tokenize
import zipfile


class DataError(ValueError):
    """A dataset or input file is missing, malformed or inconsistent; the message says what to do."""


NPZ_READ_ERRORS = (
    OSError,
    ValueError,
    TypeError,
    EOFError,
    MemoryError,
    RuntimeError,
    SyntaxError,
    tokenize.TokenError,
    zipfile.BadZipFile,
)
"""What numpy and zipfile raise for a corrupt, truncated, encrypted or oversized ``.npy``/``.npz``
(a garbled header is parsed as Python literals, hence ``SyntaxError`` and ``TokenError``); readers
turn these into :class:`DataError`."""


class FolderInUse(OSError):
    """Another command holds the lock of a folder this one would write (or read while it is
    written); the message names the holder (pid, command, start time) and says what to do."""
