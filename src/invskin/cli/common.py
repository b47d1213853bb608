"""Helpers shared by the command-line subcommands."""

from __future__ import annotations


class CommandError(RuntimeError):
    """An error meant for the user: printed as one line, exit code 2, no traceback."""


OUT_IN_USE = "Wait for it to finish, or write to another --out."
"""What to do when another command writes the same --out (:mod:`invskin.folder_lock`)."""

RUN_IN_USE = (
    "Wait for it to finish: a training holds its run until it ends, and a run is written by one "
    "command at a time."
)
"""What to do when the run a command reads or writes is being written by another command."""
