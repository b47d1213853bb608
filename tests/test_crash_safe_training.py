"""Crash-safe training: exact resume, checkpoints on SIGINT / SIGTERM, survival of SIGKILL.

Training runs use the ``tiny`` preset on the small sphere dataset of ``fixtures_data``, on CPU.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from fixtures_data import write_dataset
from invskin.training.checkpoint import OLD, load_checkpoint, save_checkpoint
from invskin.training.run import train_run
from invskin.training.trainer import TrainingInterrupted

REPO = Path(__file__).resolve().parents[1]
STEPS = 8


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("data") / "spheres"
    write_dataset(root)
    return root


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(run).model


def _interrupt_at(step: int, signum: int = signal.SIGINT):
    """An ``on_log`` hook that sends this process ``signum`` once ``step`` steps are done."""

    def on_log(done: int, losses: dict[str, float]) -> None:
        if done == step:
            os.kill(os.getpid(), signum)

    return on_log


def test_resume_continues_bit_for_bit(data: Path, tmp_path: Path) -> None:
    """STEPS straight equals STEPS/2, a SIGINT (checkpoint at that step), --resume, STEPS/2."""
    straight = tmp_path / "straight"
    train_run(data, straight, "ins", "tiny", steps=STEPS, device="cpu", progress=False)

    halves = tmp_path / "halves"
    with pytest.raises(TrainingInterrupted, match=rf"SIGINT at step {STEPS // 2}.*--resume"):
        train_run(
            data,
            halves,
            "ins",
            "tiny",
            steps=STEPS,
            device="cpu",
            progress=False,
            on_log=_interrupt_at(STEPS // 2),
        )
    state = load_checkpoint(halves).state
    assert state["step"] == STEPS // 2 and state["finished"] is False
    torch.manual_seed(1234)  # whatever the process did in between must not matter
    train_run(data, halves, device="cpu", resume=True, progress=False)

    a, b = _weights(straight), _weights(halves)
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, f"weights differ after resume: {different}"
    log = lambda run: [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]  # noqa: E731
    losses = lambda run: [{k: v for k, v in r.items() if k != "seconds"} for r in log(run)]  # noqa: E731
    assert losses(straight) == losses(halves)
    assert load_checkpoint(halves).state["finished"] is True


def test_resume_refuses_fewer_steps_and_steps_must_be_positive(data: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    train_run(data, run, "ins", "tiny", steps=4, device="cpu", progress=False)
    with pytest.raises(ValueError, match="already at step 4; to continue it, pass --steps above 4"):
        train_run(data, run, steps=2, device="cpu", resume=True, progress=False)
    for steps in (0, -3):
        with pytest.raises(ValueError, match=f"--steps must be a positive .* got {steps}"):
            train_run(data, tmp_path / "other", "ins", "tiny", steps=steps, progress=False)
    assert not (tmp_path / "other").exists()


def _train_command(data: Path, run: Path, steps: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", "invskin.cli.main", "train", "--data", str(data), "--out",
            str(run), "--preset", "tiny", "--device", "cpu", "--steps", str(steps), *extra]  # fmt: skip


def _wait_for_log_lines(
    run: Path, count: int, process: subprocess.Popen, timeout: float = 120
) -> None:
    deadline = time.monotonic() + timeout
    log = run / "log.jsonl"
    while time.monotonic() < deadline:
        if log.exists() and len(log.read_text().splitlines()) >= count:
            return
        if process.poll() is not None:
            raise AssertionError(f"training ended early: {process.communicate()}")
        time.sleep(0.02)
    raise AssertionError("training did not start in time")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signal_writes_a_checkpoint_at_the_current_step(
    data: Path, tmp_path: Path, signum: int
) -> None:
    run = tmp_path / "run"
    process = subprocess.Popen(
        _train_command(data, run, 100_000), stderr=subprocess.PIPE, text=True, cwd=tmp_path
    )
    _wait_for_log_lines(run, 3, process)
    process.send_signal(signum)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 128 + signum, err
    state = load_checkpoint(run).state
    logged = [json.loads(line)["step"] for line in (run / "log.jsonl").read_text().splitlines()]
    # The checkpoint is at the last step done (logged every step by the tiny preset), not at the
    # last periodic checkpoint (every 2 steps).
    assert state["step"] == logged[-1] and state["finished"] is False
    assert f"stopped by {signal.Signals(signum).name} at step {state['step']}" in err
    assert "--resume" in err and "Traceback" not in err
    assert sorted(p.name for p in run.iterdir()) == ["checkpoint", "log.jsonl"]


KILL_LOOP = """
import sys, torch
from invskin.training.checkpoint import save_checkpoint
run = sys.argv[1]
step = 0
while True:
    step += 1
    # About 24 MB per checkpoint, every value equal to the step: a torn write would show.
    weights = {f"w{i}": torch.full((1_000_000,), float(step)) for i in range(6)}
    save_checkpoint(run, weights, {"step": step}, {"state": {}, "param_groups": []},
                    {"sampler": torch.full((8,), step % 256, dtype=torch.uint8)})
    print(step, flush=True)
"""


def test_checkpoints_survive_sigkill_at_any_moment(tmp_path: Path) -> None:
    """SIGKILL a process that writes checkpoints back to back, at spread-out moments: each time
    the last good checkpoint loads, complete and consistent, and the next save cleans up."""
    run = tmp_path / "run"
    script = tmp_path / "loop.py"
    script.write_text(KILL_LOOP)
    delays = [0.0, 0.01, 0.04, 0.09, 0.16, 0.25]
    kills_with_leftovers = 0
    for delay in delays:
        process = subprocess.Popen(
            [sys.executable, str(script), str(run)], stdout=subprocess.PIPE, text=True
        )
        # Wait until this process has written one checkpoint (torch takes a while to import).
        assert process.stdout is not None and process.stdout.readline().strip() == "1"
        time.sleep(delay)
        process.kill()
        process.wait()
        leftovers = [p.name for p in run.iterdir() if p.name not in ("checkpoint",)]
        kills_with_leftovers += bool(leftovers)
        print(f"SIGKILL after {delay} s: left {sorted(leftovers)}")
        ckpt = load_checkpoint(run)
        step = ckpt.state["step"]
        assert step >= 1 and set(ckpt.model) == {f"w{i}" for i in range(6)}
        for tensor in ckpt.model.values():
            assert torch.equal(tensor, torch.full((1_000_000,), float(step)))
        assert ckpt.rng is not None and int(ckpt.rng["sampler"][0]) == step % 256
    # The kills landed inside writes at least some of the time (temporary folder or
    # checkpoint.old left behind), so the test exercised the crash paths.
    assert kills_with_leftovers >= 1
    save_checkpoint(run, {"w": torch.ones(1)}, {"step": 0})
    assert sorted(p.name for p in run.iterdir()) == ["checkpoint"]


def test_swap_never_deletes_the_only_good_copy(tmp_path: Path) -> None:
    """An earlier crash between the two renames left only checkpoint.old (and a temporary)."""
    save_checkpoint(tmp_path, {"w": torch.ones(2)}, {"step": 3})
    (tmp_path / "checkpoint").rename(tmp_path / OLD)
    (tmp_path / ".checkpoint-crashed").mkdir()
    (tmp_path / ".checkpoint-crashed" / "model.safetensors").write_bytes(b"half")

    class Unserialisable:
        pass

    # The next save fails while writing its temporary folder: the old copy is still there.
    with pytest.raises(TypeError):
        save_checkpoint(tmp_path, {"w": torch.zeros(2)}, {"step": 4, "bad": Unserialisable()})
    assert load_checkpoint(tmp_path).state["step"] == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == [OLD]
    save_checkpoint(tmp_path, {"w": torch.zeros(2)}, {"step": 5})
    assert load_checkpoint(tmp_path).state["step"] == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint"]


def test_kill_during_training_then_resume(data: Path, tmp_path: Path) -> None:
    """SIGKILL a training process (checkpoint every 2 steps): --resume continues from the last
    good checkpoint and finishes."""
    run = tmp_path / "run"
    process = subprocess.Popen(
        _train_command(data, run, 100_000), stderr=subprocess.PIPE, text=True, cwd=tmp_path
    )
    _wait_for_log_lines(run, 5, process)
    process.kill()
    process.communicate()
    step = load_checkpoint(run).state["step"]
    assert step >= 4 and step % 2 == 0
    result = subprocess.run(
        _train_command(data, run, step + 3, "--resume"), capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    state = load_checkpoint(run).state
    assert state["step"] == step + 3 and state["finished"] is True
    # The log lost the steps done after the checkpoint and then logged them again, once.
    logged = [json.loads(line)["step"] for line in (run / "log.jsonl").read_text().splitlines()]
    assert logged == list(range(1, step + 4))
    assert sorted(p.name for p in run.iterdir()) == ["checkpoint", "log.jsonl"]


def test_canonical_mesh_follows_the_checkpoint(data: Path, tmp_path: Path) -> None:
    """A resumed run's old canonical.ply is not paired with the new weights: repose and eval
    extract it again (at the resolution it was extracted at) and record the new checkpoint."""
    from invskin.cli.main import main
    from invskin.evaluation.evaluate import evaluate_run
    from invskin.mesh.io import load_mesh

    run = tmp_path / "run"
    train_run(data, run, "ins", "tiny", steps=4, device="cpu", progress=False)
    main(["extract", "--run", str(run), "--resolution", "24"])
    first = json.loads((run / "canonical.json").read_text())
    assert first == {
        "step": 4,
        "weights_sha256": load_checkpoint(run).weights_sha256,
        "resolution": 24,
    }
    mesh_before = load_mesh(run / "canonical.ply")
    main(["repose", "--run", str(run), "--poses", str(data), "--out", str(tmp_path / "a")])
    assert json.loads((run / "canonical.json").read_text()) == first  # reused, same weights

    train_run(data, run, steps=6, device="cpu", resume=True, progress=False)
    evaluate_run(run, split="test-within", num_points=2000, progress=False)
    second = json.loads((run / "canonical.json").read_text())
    assert second["step"] == 6 and second["resolution"] == 24
    assert (
        second["weights_sha256"] == load_checkpoint(run).weights_sha256 != first["weights_sha256"]
    )
    mesh_after = load_mesh(run / "canonical.ply")
    assert (
        mesh_after.vertices.shape != mesh_before.vertices.shape
        or not (mesh_after.vertices == mesh_before.vertices).all()
    )
    # A mesh with no record (or a record of other weights) is never trusted.
    (run / "canonical.json").unlink()
    main(["repose", "--run", str(run), "--poses", str(data), "--out", str(tmp_path / "b")])
    assert (
        json.loads((run / "canonical.json").read_text())["weights_sha256"]
        == second["weights_sha256"]
    )
    timing = json.loads((tmp_path / "b" / "timing.json").read_text())
    assert timing["extraction_seconds"] > 0
