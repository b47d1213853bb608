"""The C kernels of ``invskin.native`` against their PyTorch references, and how they are built."""

import os
import signal
import subprocess
import sys

import pytest
import torch

from invskin import native
from invskin.nets.pin import SPLINE_MIN_BIN, SPLINE_UNIT_SLOPE, rational_quadratic


@pytest.fixture(scope="module")
def kernel() -> native.RqSpline:
    spline = native.rq_spline_kernel()
    assert spline is not None, native.unavailable_reason()  # CI machines have a C compiler
    return spline


def reference(x: torch.Tensor, raw: torch.Tensor, bound: float) -> torch.Tensor:
    """``rational_quadratic`` in float64 on the kernel's feature-major layout."""
    moved, _ = rational_quadratic(x.double().T, raw.double().permute(2, 0, 1), bound)
    return moved.T


@pytest.mark.parametrize(
    ("nfree", "bins", "rows"), [(1, 16, 1000), (2, 16, 333), (2, 2, 70), (1, 5, 9)]
)
@pytest.mark.parametrize("scale", [0.3, 1.5])
def test_spline_kernel_matches_rational_quadratic(
    kernel: native.RqSpline, nfree: int, bins: int, rows: int, scale: float
) -> None:
    # Rows not a multiple of the kernel's block of 64; points inside and outside [-bound, bound].
    torch.manual_seed(bins + rows)
    bound = 1.0
    x = torch.randn(nfree, rows) * 0.5
    x[0, 0] = bound  # exactly on the interval's ends (the identity there)
    x[-1, -1] = -bound
    raw = torch.randn(nfree, 3 * bins - 1, rows) * scale
    out = kernel(x, raw, torch.empty_like(x), bound, SPLINE_MIN_BIN, SPLINE_UNIT_SLOPE)
    expected = reference(x, raw, bound)
    # Float32 rounding against float64 (the float32 reference is as far: about 1e-5 at scale 1).
    torch.testing.assert_close(out.double(), expected, atol=2e-5 * scale, rtol=1e-5)
    outside = x.abs() >= bound
    assert outside.any() and (out[outside] == x[outside]).all()
    assert (out[~outside] != x[~outside]).float().mean() > 0.9  # the spline does move the points


def test_spline_kernel_zero_parameters_is_identity(kernel: native.RqSpline) -> None:
    # Zero logits: equal bins and slopes of 1 (SPLINE_UNIT_SLOPE), i.e. the identity map.
    x = torch.linspace(-1.2, 1.2, 301)[None]
    out = kernel(
        x, torch.zeros(1, 47, 301), torch.empty_like(x), 1.0, SPLINE_MIN_BIN, SPLINE_UNIT_SLOPE
    )
    torch.testing.assert_close(out, x, atol=1e-6, rtol=0)


def test_spline_kernel_rejects_bad_input(kernel: native.RqSpline) -> None:
    x = torch.zeros(2, 10)
    with pytest.raises(ValueError, match="do not match"):
        kernel(x, torch.zeros(2, 46, 10), torch.empty_like(x), 1.0, 1e-3, 0.5)
    with pytest.raises(ValueError, match="contiguous float32"):
        kernel(x.double(), torch.zeros(2, 47, 10), torch.empty_like(x), 1.0, 1e-3, 0.5)
    with pytest.raises(ValueError, match="contiguous float32"):
        kernel(torch.zeros(10, 2).T, torch.zeros(2, 47, 10), torch.empty_like(x), 1.0, 1e-3, 0.5)
    with pytest.raises(ValueError, match="2 to 64 bins"):
        kernel(x, torch.zeros(2, 3 * 65 - 1, 10), torch.empty_like(x), 1.0, 1e-3, 0.5)


def test_build_without_compiler_says_why(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("CC", "no-such-compiler-invskin")
    monkeypatch.setenv("INVSKIN_CACHE", str(tmp_path))
    with pytest.raises(RuntimeError, match="no C compiler found"):
        native._build("spline")
    assert not (tmp_path / "native").exists()


def test_failed_build_leaves_nothing(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    # A "compiler" that writes junk to its output and fails: no library and no partial file is
    # left in the cache.
    fake = tmp_path / "fakecc"
    fake.write_text(
        '#!/bin/sh\nif [ "$1" = --version ]; then echo fake 1.0; exit 0; fi\n'
        'echo broken >&2; out=; for a; do [ "$out" = next ] && out=$a; [ "$a" = -o ] && out=next; '
        'done; echo junk > "$out"; exit 1\n'
    )
    fake.chmod(0o755)
    monkeypatch.setenv("CC", str(fake))
    monkeypatch.setenv("INVSKIN_CACHE", str(tmp_path / "cache"))
    with pytest.raises(RuntimeError, match="compiling spline.c failed:\nbroken"):
        native._build("spline")
    assert list((tmp_path / "cache" / "native").iterdir()) == []


def test_disabled_by_environment(tmp_path) -> None:
    # A fresh interpreter: INVSKIN_NATIVE=0 gives no kernel and the fast path's PyTorch spline.
    code = (
        "from invskin import native; print(native.rq_spline_kernel(), native.unavailable_reason())"
    )
    env = dict(os.environ, INVSKIN_NATIVE="0", INVSKIN_CACHE=str(tmp_path))
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True,
        check=True,
    ).stdout  # fmt: skip
    assert out.strip() == "None disabled by INVSKIN_NATIVE=0"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_root_finder_threads_work_in_a_forked_child() -> None:
    # The worker pool is made in the parent; a forked child must get its own, not hang on it.
    kernel = native.broyden_lbs_kernel()
    assert kernel is not None, native.unavailable_reason("broyden")
    table = torch.zeros(8, 12)
    table[:, 0] = table[:, 5] = table[:, 10] = 1.0  # the identity transform at every node
    lo, hi = -torch.ones(3), torch.ones(3)
    x = torch.rand(64, 3) - 0.5
    frame = torch.zeros(64, dtype=torch.long)

    def solve() -> torch.Tensor:
        return kernel(table, (2, 2, 2), lo, hi, frame, x, x + 0.01, 10, 1e-6, 1.0, workers=2)[0]

    torch.testing.assert_close(solve(), x)  # the parent's pool exists now
    pid = os.fork()
    if pid == 0:  # child: exit 0 only if the threaded solve finishes (within 30 s) and is right
        ok = False
        try:
            signal.alarm(30)  # a hung child is killed by SIGALRM
            ok = torch.allclose(solve(), x, atol=1e-6)
        finally:
            os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_concurrent_first_builds_share_one_library(tmp_path) -> None:
    # Two processes (say two torchrun ranks) building into the same empty cache at once: both load
    # a working kernel, and the cache holds one library and no partial file.
    code = (
        "import torch\n"
        "from invskin import native\n"
        "k = native.rq_spline_kernel()\n"
        "assert k is not None, native.unavailable_reason()\n"
        "x = torch.zeros(1, 8)\n"
        "k(x, torch.zeros(1, 47, 8), torch.empty_like(x), 1.0, 1e-3, 0.5)\n"
    )
    env = dict(os.environ, INVSKIN_CACHE=str(tmp_path), INVSKIN_NATIVE="1")
    procs = [
        subprocess.Popen([sys.executable, "-c", code], env=env, stderr=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    files = sorted(p.name for p in (tmp_path / "native").iterdir())
    assert len(files) == 1 and files[0].startswith("spline-") and files[0].endswith(".so"), files
