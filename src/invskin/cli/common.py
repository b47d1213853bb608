"""Helpers shared by the command-line subcommands."""

from __future__ import annotations


class CommandError(RuntimeError):
    """An error meant for the user: printed as one line, exit code 2, no traceback."""
