"""The table of subcommands. Each value is a dataclass (its fields are the options, its docstring the
help text) with a ``run()`` method; the dataclasses live next to the code they drive."""

from __future__ import annotations

from invskin.cli.stubs import Bench, Demo, Eval, Extract, Repose, Synth, Train

COMMANDS: dict[str, type] = {
    "synth": Synth,
    "train": Train,
    "extract": Extract,
    "repose": Repose,
    "eval": Eval,
    "demo": Demo,
    "bench": Bench,
}
