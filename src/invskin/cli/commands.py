"""The table of subcommands. Each value is a dataclass (its fields are the options, its docstring
the help text) with a ``main()`` method."""

from __future__ import annotations

from invskin.cli.demo_bench import Bench, Demo
from invskin.cli.io_commands import Export, Import
from invskin.cli.model_commands import Eval, Extract, Repose, Train
from invskin.cli.synth import Synth
from invskin.cli.view import View

COMMANDS: dict[str, type] = {
    "synth": Synth,
    "train": Train,
    "extract": Extract,
    "repose": Repose,
    "eval": Eval,
    "demo": Demo,
    "bench": Bench,
    "import": Import,
    "export": Export,
    "view": View,
}
