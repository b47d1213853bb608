"""The ``invskin`` command line: one tyro subcommand per dataclass, each with a ``main()`` method."""

from __future__ import annotations

import os
import sys

import tyro

from invskin.cli.commands import COMMANDS
from invskin.cli.common import CommandError


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``invskin`` console script."""
    command = tyro.extras.subcommand_cli_from_dict(
        COMMANDS,
        args=argv,
        description="invskin: Invertible Neural Skinning (learn, extract once, repose).",
    )
    try:
        command.main()
    except (CommandError, ValueError, OSError, KeyError, FloatingPointError) as error:
        # Errors about the user's input or files: one line that says what to do, no traceback
        # (set INVSKIN_DEBUG=1 to see it).
        if os.environ.get("INVSKIN_DEBUG"):
            raise
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt as stopped:
        # TrainingInterrupted (SIGINT/SIGTERM during training) has written a checkpoint and says
        # how to resume: exit 128 + the signal number, as the shell does for a signal.
        signum = getattr(stopped, "signum", None)
        if signum is None or os.environ.get("INVSKIN_DEBUG"):
            raise
        print(stopped, file=sys.stderr)
        raise SystemExit(128 + signum) from None


if __name__ == "__main__":
    main()
