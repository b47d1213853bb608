"""Data-parallel training: 2 real processes started by torchrun (gloo, CPU) against one process."""

import json
import os
import subprocess
import sys

import pytest
import torch

from invskin.data.format import load_dataset
from invskin.data.samples import SampleConfig
from invskin.models.build import build_model
from invskin.training.checkpoint import load_checkpoint
from invskin.training.distributed import rank_rng, rank_seed
from invskin.training.presets import make_preset
from invskin.training.run import training_data
from invskin.training.trainer import _learning_rate, build_optimiser
from toy_data import make_toy_dataset


@pytest.fixture(scope="module")
def toy_data(tmp_path_factory):
    data = make_toy_dataset(tmp_path_factory.mktemp("ddp") / "data")
    training_data(load_dataset(data).split("train"), SampleConfig(), progress=False)  # cache
    return data


def torchrun_train(data, run, *extra: str) -> None:
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
        "-m", "invskin.cli.main", "train", "--data", str(data), "--out", str(run),
        "--method", "ins", "--preset", "tiny", "--device", "cpu", *extra,
    ]  # fmt: skip
    env = dict(os.environ, OMP_NUM_THREADS="1")
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


def one_process_step(data, ranks: tuple[int, ...]) -> torch.nn.Module:
    """One step in this process on the batches ranks ``ranks`` draw, gradients averaged."""
    preset = make_preset("tiny", "ins", steps=1, seed=0)
    dataset = load_dataset(data)
    torch.manual_seed(0)  # as train_run: the same initial weights on every rank
    samples = training_data(dataset.split("train"), SampleConfig(), progress=False)
    model = build_model(preset.model, dataset.skeleton, dataset.prior)
    model.fit_skinning_to_prior(preset.prior_fit_steps)
    config = preset.train
    optimiser = build_optimiser(model, config)
    for group in optimiser.param_groups:
        group["lr"] = _learning_rate(config, 0) * group["lr_scale"]
    model.train()
    optimiser.zero_grad()
    for rank in ranks:
        generator = torch.Generator().manual_seed(rank_seed(config.seed, rank))
        if rank > 0:
            torch.manual_seed(rank_seed(config.seed, rank))
        batch = samples.batch(
            generator, config.batch_frames, config.points_per_frame, torch.device("cpu")
        )
        losses = model.losses(*batch, 0)
        total = sum(config.loss_weights.weight(k, 0) * v for k, v in losses.items())
        (total / len(ranks)).backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
    optimiser.step()
    return model


def test_two_ranks_step_like_one_process_with_both_batches(toy_data, tmp_path) -> None:
    run = tmp_path / "ddp"
    torchrun_train(toy_data, run, "--steps", "1")
    ckpt = load_checkpoint(run)
    assert ckpt.state["step"] == 1 and ckpt.state["world_size"] == 2
    both = one_process_step(toy_data, (0, 1)).state_dict()
    alone = one_process_step(toy_data, (0,)).state_dict()
    moved = 0.0
    for name, value in both.items():
        torch.testing.assert_close(ckpt.model[name], value, atol=1e-6, rtol=1e-5)
        moved = max(moved, float((value - alone[name]).abs().max()))
    assert moved > 1e-5  # rank 1's batch changed the step: the comparison is not vacuous
    # Only rank 0 wrote: one log, one checkpoint; both ranks' random states are in it.
    assert len((run / "log.jsonl").read_text().splitlines()) == 1
    assert set(rank_rng(ckpt.rng, 1)) == set(rank_rng(ckpt.rng, 0))

    # --resume continues both ranks from their own random states.
    torchrun_train(toy_data, run, "--resume", "--steps", "3")
    resumed = load_checkpoint(run)
    assert resumed.state["step"] == 3
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3]
    assert all(torch.isfinite(v).all() for v in resumed.model.values() if v.is_floating_point())
