"""The benchmark suite's entry point: ``python -m benchmarks --list`` names every benchmark, each
module it names exists with a ``main()``, and the benchmarks use invskin's public API only."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def suite(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT))
    import benchmarks

    return benchmarks


def test_list_names_every_benchmark(suite) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--list"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for benchmark in suite.available():
        assert f"  {benchmark.name} " in out, benchmark.name
    assert {"quality-table", "repose-speed", "train-throughput", "memory", "export"} <= {
        b.name for b in suite.available()
    }


def test_unknown_benchmark_is_refused() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "no-such-benchmark"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode != 0 and "unknown benchmark 'no-such-benchmark'" in done.stderr


def test_every_module_has_a_main(suite) -> None:
    for benchmark in suite.available():
        if benchmark.module:
            tree = ast.parse((suite.HERE / f"{benchmark.module}.py").read_text())
            assert any(
                isinstance(node, ast.FunctionDef) and node.name == "main" for node in tree.body
            ), benchmark.module


def test_benchmarks_use_public_api_only(suite) -> None:
    """No ``obj._private`` attribute and no ``from invskin... import _private`` in a benchmark."""
    private = []
    for benchmark in suite.available():
        if not benchmark.module:
            continue
        path = suite.HERE / f"{benchmark.module}.py"
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Attribute):
                names = [node.attr]
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("invskin"):
                names = [alias.name for alias in node.names]
            private += [
                f"{path.name}:{node.lineno} {name}"
                for name in names
                if name.startswith("_") and not name.startswith("__")
            ]
    assert not private, private


def test_help_of_a_benchmark_comes_from_its_own_command_line() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "round-trip", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "python -m benchmarks round-trip" in done.stdout and "--run" in done.stdout
