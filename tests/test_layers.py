"""The package's layers: every import of ``invskin`` points down, and no modules import each other.

Every module under ``src/invskin`` is parsed (not imported), and every import statement counts,
function-local ones and those under ``if TYPE_CHECKING:`` included: a deferred import still ties
the two modules together. The order is written down in docs/method.md ("Package layers").
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors", "fileio", "safe_pickle", "folder_lock", "native"),  # no invskin below them
    ("geometry", "mesh", "body"),  # pure maths, triangle meshes (and their renderer), skeletons
    ("metrics",),  # quality measures between meshes
    ("motion", "data"),  # motion files read onto a skeleton; the dataset format and importers
    ("export",),  # file writers for engines: glTF (skinned, per-frame), the avatar's look
    ("nets", "solvers"),  # PINs, SIREN, skinning fields; root finding through them
    ("models",),  # the animatable model (networks and losses), its fast reposing path
    ("training",),  # the trainer, presets, checkpoints, data-parallel training
    ("runs",),  # run folders: load, extract once, repose, bulk repose, export, poses
    ("evaluation", "view", "bench"),  # what is done with runs: metrics, the viewer, timings
    ("demo",),  # everything from nothing
    ("cli",),  # the command line
)
"""Top-level packages (and modules) of invskin from the bottom up. A package may import itself and
what comes before it, in this order (within a layer too): nothing after it."""

ORDER = [name for layer in LAYERS for name in layer]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


MODULES = {module_name(path): path for path in sorted((SRC / "invskin").rglob("*.py"))}


def imports_of(module: str) -> list[tuple[str, int]]:
    """The invskin modules ``module`` imports, with line numbers. ``from invskin.x import y``
    counts as an import of ``invskin.x.y`` where that is a module, else of ``invskin.x``."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(parent + ([base] if base else []))
            for alias in node.names:
                name = f"{base}.{alias.name}"
                found.append((name if name in MODULES else base, node.lineno))
    return [(name, line) for name, line in found if name.split(".")[0] == "invskin"]


def top(module: str) -> str:
    """The top-level package (or module) of invskin that ``module`` belongs to."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_every_package_has_a_layer():
    missing = sorted({top(m) for m in MODULES} - set(ORDER) - {""})
    assert not missing, f"add {missing} to LAYERS (and to docs/method.md's 'Package layers')"


def test_imports_point_down():
    upward = []
    for module in MODULES:
        for name, line in imports_of(module):
            own, other = top(module), top(name)
            if other == "" and own != "":
                upward.append(f"{module}:{line} imports the package root {name}")
            elif own and other and ORDER.index(other) > ORDER.index(own):
                upward.append(f"{module}:{line} imports {name} ({other} is above {own})")
    assert not upward, "upward imports:\n" + "\n".join(sorted(set(upward)))


def test_no_import_cycles():
    graph = {m: {n for n, _ in imports_of(m) if n in MODULES and n != m} for m in MODULES}
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles = []

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for other in sorted(graph[module]):
            if state.get(other) == 1:
                cycles.append(" -> ".join(path[path.index(other) :] + [module, other]))
            elif other not in state:
                visit(other, path + [module])
        state[module] = 2

    for module in MODULES:
        if module not in state:
            visit(module, [])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from invskin.cli.common import CommandError", "invskin.cli.common"),
        ("def f():\n    from invskin.runs import folder", "invskin.runs.folder"),
        ("import invskin.geometry", "invskin.geometry"),
        ("from invskin import safe_pickle", "invskin.safe_pickle"),
    ],
)
def test_imports_are_found(source, expected, monkeypatch, tmp_path):
    """The parser sees module-level, function-local and package-root imports."""
    path = tmp_path / "invskin" / "probe.py"
    path.parent.mkdir()
    path.write_text(source)
    monkeypatch.setitem(MODULES, "invskin.probe", path)
    assert [name for name, _ in imports_of("invskin.probe")] == [expected]
