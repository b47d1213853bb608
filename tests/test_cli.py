"""The command line: every subcommand has help; bad input gives one line and exit code 2."""

import numpy as np
import pytest

from invskin.cli.commands import COMMANDS
from invskin.cli.main import main


def test_help_lists_every_subcommand(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for name in ("synth", "train", "extract", "repose", "eval", "demo", "bench"):
        assert name in out
    assert set(COMMANDS) == {"synth", "train", "extract", "repose", "eval", "demo", "bench"}


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_subcommand_help(name: str, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([name, "--help"])
    assert exit_info.value.code == 0
    assert "usage" in capsys.readouterr().out.lower()


def expect_error(args: list[str], capsys, words: str) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and words in err and "Traceback" not in err


def test_bad_input_gives_one_clear_line(tmp_path, capsys) -> None:
    expect_error(["eval", "--run", str(tmp_path / "none")], capsys, "train first")
    expect_error(
        ["train", "--data", str(tmp_path), "--out", str(tmp_path / "r")], capsys, "dataset"
    )
    for steps in ("0", "-2"):
        expect_error(
            ["train", "--data", str(tmp_path), "--out", str(tmp_path / "r"), "--steps", steps],
            capsys,
            f"--steps must be a positive number of training steps, got {steps}",
        )
    poses = np.tile(np.eye(4), (3, 5, 1, 1))
    poses[2, 1, 0, 0] = np.nan
    np.savez(tmp_path / "nan.npz", transforms=poses)
    np.savez(tmp_path / "key.npz", poses=poses)
    (tmp_path / "run").mkdir()
    for name, words in [("nan.npz", "frames [2] hold NaN"), ("key.npz", "no 'transforms'")]:
        # The poses are read before the run is loaded, so no trained run is needed here.
        args = ["repose", "--run", str(tmp_path / "run"), "--poses", str(tmp_path / name)]
        expect_error([*args, "--out", str(tmp_path / "out")], capsys, words)
