"""Small C kernels for the CPU fast paths (the reposing spline, the training root finder), compiled
on first use.

Each kernel is one C file beside this module, with a readable PyTorch reference elsewhere in the
package that the tests compare it with. A kernel is compiled the first time it is asked for (never at
import) with the system's C compiler (``$CC``, else ``cc``), for this machine's CPU
(``-march=native``), into ``$INVSKIN_CACHE/native`` (default ``~/.cache/invskin/native``), under a
name that hashes the source, the compiler's version, the flags and the CPU, so a cache shared between
machines never hands one machine another's build. The library is written to a temporary file and
renamed into place, so a failed or concurrent build never leaves a half-written one.

Where no compiler is found, the build fails, or ``INVSKIN_NATIVE=0`` is set, :func:`rq_spline_kernel`
and :func:`broyden_lbs_kernel` return None (and :func:`unavailable_reason` says why): callers fall
back to their PyTorch path.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch
from torch import Tensor

from invskin.fileio import atomic_path, cache_dir

FLAGS = ("-O3", "-march=native", "-fno-trapping-math", "-shared", "-fPIC")
"""Compiler flags. ``-fno-trapping-math`` lets the compiler turn the spline's selects into blends.
No fast-math: no reassociation and no assumption that values are finite (the compiler may still fuse
a multiply and an add, so results differ from PyTorch's by rounding)."""

_lock = threading.Lock()
_loaded: dict[str, ctypes.CDLL | None] = {}
_reasons: dict[str, str] = {}


def _cpu_key() -> str:
    """The CPU's model and feature flags (what ``-march=native`` compiles for)."""
    lines = []
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.startswith(("model name", "flags", "Features", "CPU part")):
                    lines.append(line.strip())
                if line.strip() == "" and lines:
                    break  # the first processor describes them all
    except OSError:
        pass
    return platform.machine() + "\n" + "\n".join(lines)


def _compiler() -> str | None:
    return shutil.which(os.environ.get("CC") or "cc")


def _build(name: str) -> ctypes.CDLL:
    """Compile ``name.c`` (if not cached) and load it; raises RuntimeError with the reason."""
    compiler = _compiler()
    if compiler is None:
        raise RuntimeError(f"no C compiler found (looked for {os.environ.get('CC') or 'cc'!r})")
    source = Path(__file__).with_name(f"{name}.c")
    text = source.read_bytes()
    try:
        version = subprocess.run(
            [compiler, "--version"], capture_output=True, text=True, timeout=60, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError) as error:
        raise RuntimeError(f"{compiler} --version failed: {error}") from error
    key = hashlib.sha256(
        b"\0".join([text, version.encode(), " ".join(FLAGS).encode(), _cpu_key().encode()])
    ).hexdigest()[:16]
    folder = cache_dir() / "native"
    library = folder / f"{name}-{key}.so"
    if not library.exists():
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(library) as partial:
            result = subprocess.run(
                [compiler, *FLAGS, "-o", str(partial), str(source)],
                capture_output=True,
                text=True,
                timeout=300,
            )
            if result.returncode != 0:
                raise RuntimeError(f"compiling {source.name} failed:\n{result.stderr.strip()}")
    return ctypes.CDLL(str(library))  # CDLL: the call releases the interpreter lock


def _library(name: str) -> ctypes.CDLL | None:
    with _lock:
        if name not in _loaded:
            if os.environ.get("INVSKIN_NATIVE", "1") == "0":
                _loaded[name] = None
                _reasons[name] = "disabled by INVSKIN_NATIVE=0"
            else:
                try:
                    _loaded[name] = _build(name)
                except (RuntimeError, OSError, subprocess.SubprocessError) as error:
                    _loaded[name] = None
                    _reasons[name] = str(error)
        return _loaded[name]


def unavailable_reason(name: str = "spline") -> str | None:
    """Why the kernel ``name`` (``"spline"``, ``"broyden"``) is not available (None if it is, or
    was never asked for)."""
    return _reasons.get(name)


class RqSpline:
    """The C rational-quadratic spline (``spline.c``): :func:`invskin.nets.pin.rational_quadratic`
    forward, without the log-det, on feature-major rows (see :meth:`__call__`)."""

    def __init__(self, library: ctypes.CDLL) -> None:
        self._fn = library.invskin_rq_spline
        self._fn.restype = ctypes.c_int
        self._fn.argtypes = [
            ctypes.c_long,
            ctypes.c_int,
            ctypes.c_int,
            ctypes.c_void_p,
            ctypes.c_void_p,
            ctypes.c_void_p,
            ctypes.c_float,
            ctypes.c_float,
            ctypes.c_float,
        ]

    def __call__(
        self,
        x: Tensor,
        raw: Tensor,
        out: Tensor,
        bound: float,
        min_bin: float,
        unit_slope: float,
    ) -> Tensor:
        """Move ``x`` ``(F, R)`` by the splines whose parameters are ``raw`` ``(F, 3 K - 1, R)``
        (``K`` width logits, ``K`` height logits, ``K - 1`` interior slope logits per coordinate)
        into ``out`` ``(F, R)``; all float32, contiguous, on the CPU, ``out`` apart from both."""
        nfree, rows = x.shape
        bins = (raw.shape[1] + 1) // 3
        for name, t in (("x", x), ("raw", raw), ("out", out)):
            if t.dtype != torch.float32 or t.device.type != "cpu" or not t.is_contiguous():
                raise ValueError(f"{name} must be a contiguous float32 CPU tensor")
        if raw.shape != (nfree, 3 * bins - 1, rows) or out.shape != (nfree, rows):
            raise ValueError(
                f"shapes x {tuple(x.shape)}, raw {tuple(raw.shape)}, out {tuple(out.shape)} do "
                "not match (F, R), (F, 3 K - 1, R), (F, R)"
            )
        status = self._fn(
            rows, nfree, bins, x.data_ptr(), raw.data_ptr(), out.data_ptr(), bound, min_bin,
            unit_slope,
        )  # fmt: skip
        if status != 0:
            raise ValueError(f"the C spline supports 2 to 64 bins, got {bins}")
        return out


class BroydenLbs:
    """The C root finder (``broyden.c``): :func:`invskin.solvers.broyden_solver.broyden` on the
    residual ``LBS(x) - target`` read from a :class:`invskin.nets.skinning_field.BlendedTransformGrid`,
    one row at a time (see :meth:`__call__`)."""

    def __init__(self, library: ctypes.CDLL) -> None:
        self._fn = library.invskin_broyden_lbs
        self._fn.restype = None
        pointer, long = ctypes.c_void_p, ctypes.c_long
        self._fn.argtypes = [long, pointer, long, long, long, pointer, pointer, pointer, pointer]
        self._fn.argtypes += [pointer, ctypes.c_int, ctypes.c_float, ctypes.c_float]
        self._fn.argtypes += [pointer, pointer, pointer]

    def __call__(
        self,
        table: Tensor,
        sizes: tuple[int, int, int],
        lo: Tensor,
        hi: Tensor,
        frame: Tensor,
        target: Tensor,
        x0: Tensor,
        max_steps: int,
        cvg_thresh: float,
        dvg_thresh: float,
        workers: int = 1,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Roots of ``LBS(x) = target`` from ``x0`` ``(R, 3)`` for rows of frames ``frame`` ``(R,)``
        (int64) in the grid ``table`` ``(B * nz * ny * nx, 12)`` of ``sizes`` ``(nx, ny, nz)`` nodes
        over ``[lo, hi]``: ``(best x (R, 3), best residual norm (R,), final J^-1 (R, 3, 3))``. Rows
        are split into ``workers`` contiguous parts run on as many threads."""
        tensors = {"table": table, "lo": lo, "hi": hi, "target": target, "x0": x0}
        for name, t in tensors.items():
            if t.dtype != torch.float32 or t.device.type != "cpu" or not t.is_contiguous():
                raise ValueError(f"{name} must be a contiguous float32 CPU tensor")
        if frame.dtype != torch.int64 or not frame.is_contiguous():
            raise ValueError("frame must be a contiguous int64 tensor")
        rows = x0.shape[0]
        nx, ny, nz = sizes
        if table.shape[1:] != (12,) or table.shape[0] % (nx * ny * nz) != 0:
            raise ValueError(f"table {tuple(table.shape)} is not (B * {nz} * {ny} * {nx}, 12)")
        if x0.shape != (rows, 3) or target.shape != (rows, 3) or frame.shape != (rows,):
            raise ValueError("x0, target and frame must be (R, 3), (R, 3) and (R,)")
        if rows and (int(frame.min()) < 0 or int(frame.max()) >= table.shape[0] // (nx * ny * nz)):
            raise ValueError("frame holds an index outside the grid's frames")
        best_x = torch.empty_like(x0)
        best_norm = x0.new_empty(rows)
        jac_inv = x0.new_empty(rows, 3, 3)

        def run(start: int, stop: int) -> None:
            self._fn(
                stop - start, table.data_ptr(), nx, ny, nz, lo.data_ptr(), hi.data_ptr(),
                frame[start:].data_ptr(), target[start:].data_ptr(), x0[start:].data_ptr(),
                max_steps, cvg_thresh, dvg_thresh, best_x[start:].data_ptr(),
                best_norm[start:].data_ptr(), jac_inv[start:].data_ptr(),
            )  # fmt: skip

        if workers <= 1 or rows < 2 * workers:
            run(0, rows)
        else:
            bounds = [rows * w // workers for w in range(workers + 1)]
            futures = [_pool(workers).submit(run, a, b) for a, b in zip(bounds, bounds[1:])]
            for future in futures:
                future.result()
        return best_x, best_norm, jac_inv


_pools: dict[int, ThreadPoolExecutor] = {}
if hasattr(os, "register_at_fork"):  # a forked child has none of its parent's threads
    os.register_at_fork(after_in_child=_pools.clear)


def _pool(workers: int) -> ThreadPoolExecutor:
    with _lock:
        if workers not in _pools:
            _pools[workers] = ThreadPoolExecutor(workers, thread_name_prefix="invskin-native")
        return _pools[workers]


_kernels: dict[str, RqSpline | BroydenLbs | None] = {}


_WRAPPERS = {"spline": RqSpline, "broyden": BroydenLbs}


def _kernel(name: str) -> RqSpline | BroydenLbs | None:
    """The kernel ``name`` wrapped once per process (None where it cannot be built)."""
    if name not in _kernels:
        library = _library(name)
        with _lock:
            _kernels.setdefault(name, None if library is None else _WRAPPERS[name](library))
    return _kernels[name]


def kernel_or_fallback(
    name: str, native: bool | None, what: str, fallback: str, stacklevel: int = 2
) -> RqSpline | BroydenLbs | None:
    """The kernel ``name`` for a caller that has a PyTorch fallback. Where it cannot be built:
    with ``native=True`` a RuntimeError saying why; with ``native=None`` None and a warning that
    ``fallback`` runs instead, unless ``INVSKIN_NATIVE=0`` asked for that; with ``native=False``
    (which never builds it) None. ``what`` names the kernel in the messages; ``stacklevel`` is the
    warning's, counted from the caller."""
    if native is False:
        return None
    kernel = _kernel(name)
    if kernel is None:
        reason = _reasons.get(name)
        if native:
            raise RuntimeError(f"the C {what} is unavailable: {reason}")
        if os.environ.get("INVSKIN_NATIVE", "1") != "0":
            warnings.warn(
                f"{fallback}: the C {what} is unavailable: {reason}. Install a C compiler (cc or "
                "$CC) to build it",
                stacklevel=stacklevel + 1,
            )
    return kernel


def broyden_lbs_kernel() -> BroydenLbs | None:
    """The C root finder, compiled on first use; None where it cannot be (see the module
    docstring)."""
    return _kernel("broyden")


def rq_spline_kernel() -> RqSpline | None:
    """The C spline, compiled on first use; None where it cannot be (see the module docstring)."""
    return _kernel("spline")
