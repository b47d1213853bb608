"""The ``invskin`` command line: one tyro subcommand per dataclass, each with a ``run()`` method."""

from __future__ import annotations

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
        command.run()
    except CommandError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
