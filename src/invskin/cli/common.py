"""Helpers shared by the command-line subcommands."""

from __future__ import annotations

import sys


class CommandError(RuntimeError):
    """An error meant for the user: printed as one line, exit code 2, no traceback."""


def not_implemented(command: str, issue: str) -> None:
    """Say clearly that a subcommand exists but is not implemented yet, and exit with code 2."""
    print(
        f"invskin {command}: not implemented yet ({issue}). "
        "Run 'invskin --help' to see what works today.",
        file=sys.stderr,
    )
    raise SystemExit(2)
