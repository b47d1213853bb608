"""The one reader of pickles from outside the project (CAPE's, SMPL's, object arrays in ``.npz``).

A pickle is a program: every class or function it names is looked up and may be called. This module
looks up only the exact ``(module, name)`` pairs of :data:`ALLOWED`, each resolved to a fixed object
here (no module named by the file is ever imported):

- numpy array, dtype and scalar reconstruction (``numpy.core`` of numpy 1 and ``numpy._core`` of
  numpy 2, as written by either);
- scipy's CSC and CSR sparse matrices and arrays (``scipy.sparse.csc`` of old pickles and
  ``scipy.sparse._csc`` of new ones, the same for CSR);
- the plain containers and values pickles need a name for (``set``, ``frozenset``, ``bytes``,
  ``bytearray``, ``complex``, ``_codecs.encode`` for bytes, ``copyreg._reconstructor`` with
  ``object`` for protocol 0/1 objects).

Anything else (``eval``, ``os.system``, ``subprocess.Popen``, ``builtins.getattr``, chumpy, ...) is
refused before it is looked up, with :class:`PickleRefused`, a :class:`~invskin.errors.DataError`
naming the file and the object. The loaded value is then checked and rebuilt: only dicts, lists,
tuples, sets, numbers, strings, bytes, numpy arrays and scalars, and CSC/CSR matrices rebuilt from
their validated ``data``, ``indices``, ``indptr`` and shape. Every other failure (truncated file,
wrong opcode, memory) is a :class:`~invskin.errors.DataError` too.

:func:`read_npz` reads every array of an ``.npz``; object arrays (which ``np.load`` can only read
with ``allow_pickle=True``, i.e. with no restriction) go through the same safe unpickler.
"""

from __future__ import annotations

import importlib
import io
import pickle
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from invskin.errors import NPZ_READ_ERRORS, DataError

MAX_DEPTH = 64
"""Deepest nesting of containers accepted in a loaded value."""


class PickleRefused(DataError):
    """A pickle names an object outside :data:`ALLOWED`; nothing it names was looked up or run."""

    def __init__(self, source: str, module: str, name: str) -> None:
        self.module, self.name = module, name
        super().__init__(
            f"{source}: refused to load the object {module}.{name}: invskin reads only numpy "
            "arrays, scipy CSC/CSR sparse matrices and plain containers from a pickle, so that a "
            "data file can never run code (nothing from this file was run)"
        )


def _numpy_core(module: str) -> Callable[[], Any]:
    """The numpy 2 ``numpy._core.<module>`` (``numpy.core.<module>`` on numpy 1)."""

    def resolve() -> Any:
        try:
            return importlib.import_module(f"numpy._core.{module}")
        except ImportError:  # numpy < 2
            return importlib.import_module(f"numpy.core.{module}")

    return resolve


def _scipy_sparse() -> Any:
    return importlib.import_module("scipy.sparse")


def _builtins() -> Any:
    return importlib.import_module("builtins")


def _module(name: str) -> Callable[[], Any]:
    return lambda: importlib.import_module(name)


def _allowed() -> dict[tuple[str, str], tuple[Callable[[], Any], str]]:
    table: dict[tuple[str, str], tuple[Callable[[], Any], str]] = {}
    for core in ("numpy.core", "numpy._core"):
        table[(f"{core}.multiarray", "_reconstruct")] = (_numpy_core("multiarray"), "_reconstruct")
        table[(f"{core}.multiarray", "scalar")] = (_numpy_core("multiarray"), "scalar")
        table[(f"{core}.numeric", "_frombuffer")] = (_numpy_core("numeric"), "_frombuffer")
    table[("numpy", "ndarray")] = (_module("numpy"), "ndarray")
    table[("numpy", "dtype")] = (_module("numpy"), "dtype")
    for fmt in ("csc", "csr"):
        for module in ("scipy.sparse", f"scipy.sparse.{fmt}", f"scipy.sparse._{fmt}"):
            for kind in ("matrix", "array"):
                table[(module, f"{fmt}_{kind}")] = (_scipy_sparse, f"{fmt}_{kind}")
    for module in ("builtins", "__builtin__"):
        for name in ("set", "frozenset", "bytes", "bytearray", "complex", "object"):
            table[(module, name)] = (_builtins, name)
    table[("_codecs", "encode")] = (_module("_codecs"), "encode")
    for module in ("copyreg", "copy_reg"):
        table[(module, "_reconstructor")] = (_module("copyreg"), "_reconstructor")
    return table


ALLOWED = _allowed()
"""The only ``(module, name)`` pairs a pickle may name, each with where it is resolved."""


class _SafeUnpickler(pickle.Unpickler):
    def __init__(self, data: bytes, source: str) -> None:
        super().__init__(io.BytesIO(data), encoding="latin1")
        self.source = source

    def find_class(self, module: str, name: str) -> Any:
        entry = ALLOWED.get((module, name))
        if entry is None:
            raise PickleRefused(self.source, module, name)
        resolve, attribute = entry
        return getattr(resolve(), attribute)

    def persistent_load(self, pid: Any) -> Any:
        raise DataError(f"{self.source}: the pickle refers to outside objects; it cannot be read")


def _sparse_classes() -> tuple[type, ...]:
    sparse = _scipy_sparse()
    return (sparse.csc_matrix, sparse.csr_matrix, sparse.csc_array, sparse.csr_array)


def _plain_array(value: Any, what: str, source: str) -> np.ndarray:
    if type(value) is not np.ndarray or value.dtype.hasobject:
        raise DataError(f"{source}: the {what} of a sparse matrix is not a numeric array")
    return value


def _rebuild_sparse(value: Any, source: str) -> Any:
    """A fresh sparse matrix of the same class from the instance's stored fields."""
    state = vars(value)
    shape = state.get("_shape", state.get("shape"))
    if not (
        isinstance(shape, tuple)
        and len(shape) == 2
        and all(isinstance(n, (int, np.integer)) and not isinstance(n, bool) for n in shape)
        and min(shape) >= 0
    ):
        raise DataError(f"{source}: a sparse matrix has no valid shape ({shape!r})")
    parts = [_plain_array(state.get(key), key, source) for key in ("data", "indices", "indptr")]
    try:
        return type(value)(tuple(parts), shape=tuple(int(n) for n in shape))
    except (ValueError, TypeError, IndexError, OverflowError, MemoryError) as error:
        raise DataError(f"{source}: an invalid sparse matrix ({error})") from error


def _checked(value: Any, source: str, depth: int = 0) -> Any:
    """``value`` rebuilt from allowed pieces only, or a :class:`DataError`."""
    if depth > MAX_DEPTH:
        raise DataError(f"{source}: the pickle nests containers deeper than {MAX_DEPTH} levels")
    kind = type(value)
    if value is None or kind in (bool, int, float, complex, str, bytes, bytearray):
        return value
    if kind is dict:
        return {
            _checked(k, source, depth + 1): _checked(v, source, depth + 1) for k, v in value.items()
        }
    if kind in (list, tuple, set, frozenset):
        return kind(_checked(item, source, depth + 1) for item in value)
    if kind is np.ndarray:
        if not value.dtype.hasobject:
            return value
        if value.dtype.fields is not None:
            raise DataError(f"{source}: structured arrays holding Python objects are not read")
        checked = np.empty(value.shape, dtype=object)
        for index, item in np.ndenumerate(value):
            checked[index] = _checked(item, source, depth + 1)
        return checked
    if isinstance(value, np.generic) and not isinstance(value, np.void):
        return value
    if kind in _sparse_classes():
        return _rebuild_sparse(value, source)
    raise DataError(
        f"{source}: the pickle holds a {kind.__qualname__}, which invskin does not read"
    )


def loads(data: bytes, source: str) -> Any:
    """The value pickled in ``data`` (``source`` names it in errors); see the module docstring."""
    try:
        value = _SafeUnpickler(data, source).load()
    except DataError:
        raise
    except (pickle.UnpicklingError, EOFError) as error:
        raise DataError(f"{source} is not a readable pickle ({error or 'truncated'})") from error
    except RecursionError as error:
        raise DataError(f"{source}: the pickle nests too deeply to be read") from error
    except MemoryError as error:
        raise DataError(f"{source}: the pickle asks for more memory than there is") from error
    except Exception as error:  # an allowed constructor given bad arguments, a bad opcode, ...
        raise DataError(
            f"{source} is not a readable pickle ({type(error).__name__}: {error})"
        ) from error
    try:
        return _checked(value, source)
    except RecursionError as error:
        raise DataError(f"{source}: the pickle nests too deeply to be read") from error


def load(path: Path | str, what: str) -> Any:
    """The value pickled in the file ``path``, which should hold ``what`` (named in errors)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} is missing; expected {what}")
    try:
        data = path.read_bytes()
    except OSError as error:
        raise DataError(f"{path} cannot be read ({error}); expected {what}") from error
    try:
        return loads(data, str(path))
    except PickleRefused:
        raise
    except DataError as error:
        raise DataError(f"{error}; expected {what}") from error


def _read_npy(handle: Any, source: str) -> np.ndarray:
    """One ``.npy`` stream; an object array is unpickled by :func:`loads`."""
    from numpy.lib import format as npy

    try:
        version = npy.read_magic(handle)
        if version == (1, 0):
            shape, fortran, dtype = npy.read_array_header_1_0(handle)
        elif version == (2, 0):
            shape, fortran, dtype = npy.read_array_header_2_0(handle)
        else:
            raise DataError(f"{source}: .npy format version {version} is not read")
    except (ValueError, OSError, EOFError) as error:
        raise DataError(f"{source}: not a valid .npy entry ({error})") from error
    if not dtype.hasobject:
        raise DataError(f"{source}: expected an object array")
    value = loads(handle.read(), source)
    if type(value) is not np.ndarray or value.shape != tuple(shape):
        raise DataError(f"{source}: the pickled array does not match its header {tuple(shape)}")
    return value


def read_npz(path: Path | str, keys: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
    """The arrays of an ``.npz`` (only ``keys`` if given); object arrays through :func:`loads`.

    Raises :class:`DataError` for a missing or unreadable file; a missing key is simply absent.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} is missing")
    arrays: dict[str, np.ndarray] = {}
    try:
        with np.load(path, allow_pickle=False) as data:
            for key in data.files:
                if keys is not None and key not in keys:
                    continue
                try:
                    arrays[key] = data[key]
                except ValueError as error:
                    if "allow_pickle" not in str(error):
                        raise
                    with zipfile.ZipFile(path) as archive, archive.open(f"{key}.npy") as member:
                        arrays[key] = _read_npy(member, f"{path}[{key}]")
    except DataError:
        raise
    except (*NPZ_READ_ERRORS, KeyError) as error:
        raise DataError(f"{path} is not a readable .npz file ({error})") from error
    return arrays
