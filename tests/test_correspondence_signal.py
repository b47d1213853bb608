"""The correspondence training signal: batches, the loss, the preset switch and a training run."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from invskin.data.format import load_dataset
from invskin.data.samples import SampleConfig
from invskin.models.config import ModelConfig, method_config
from invskin.models.signals import CorrespondenceBatch
from invskin.training.presets import CORRESPONDENCE_WEIGHT, make_preset
from invskin.training.run import train_run, training_data
from invskin.training.trainer import TrainingData
from toy_data import make_toy_dataset, toy_animatable, toy_body, toy_transforms

SMALL = ModelConfig(
    pin_blocks=2, pin_width=16, pin_pose_dim=4, skinning_width=16, skinning_grid=(8, 16, 8),
    shape_width=32, shape_layers=2, broyden_steps=20,
)  # fmt: skip
FEW_SAMPLES = SampleConfig(num_near=256, num_coarse=128, num_uniform=128)


@pytest.fixture(scope="module")
def toy_data(tmp_path_factory) -> Path:
    return make_toy_dataset(tmp_path_factory.mktemp("toy") / "data")


def _data(canonical: bool = True) -> TrainingData:
    generator = torch.Generator().manual_seed(1)
    frames, samples, vertices = 5, 50, 40
    return TrainingData(
        torch.randn(frames, samples, 3, generator=generator),
        (torch.rand(frames, samples, generator=generator) > 0.5).float(),
        torch.eye(4).repeat(frames, 3, 1, 1),
        torch.randn(vertices, 3, generator=generator) if canonical else None,
        torch.randn(frames, vertices, 3, generator=generator) if canonical else None,
    )


def test_batch_without_correspondences_draws_what_batch_draws() -> None:
    data = _data()
    plain = data.batch(torch.Generator().manual_seed(3), 2, 7, torch.device("cpu"))
    points, occupancy, transforms, corr = data.batch_with_correspondence(
        torch.Generator().manual_seed(3), 2, 7, 0, torch.device("cpu")
    )
    assert corr is None
    for a, b in zip(plain, (points, occupancy, transforms), strict=True):
        assert torch.equal(a, b)


def test_correspondence_batch_pairs_each_canonical_point_with_its_own_frame() -> None:
    data = _data()
    points, _, _, corr = data.batch_with_correspondence(
        torch.Generator().manual_seed(4), 3, 11, 9, torch.device("cpu")
    )
    assert corr is not None and corr.canonical.shape == corr.posed.shape == (3, 9, 3)
    # The occupancy samples are the same as without correspondences (drawn first).
    same, *_ = data.batch(torch.Generator().manual_seed(4), 3, 11, torch.device("cpu"))
    assert torch.equal(points, same)
    for b in range(3):
        for m in range(9):
            v = int((data.canonical == corr.canonical[b, m]).all(-1).nonzero()[0, 0])
            frames = (data.posed[:, v] == corr.posed[b, m]).all(-1).nonzero()[:, 0]
            assert frames.numel() == 1  # the posed point is vertex v's in exactly one frame
            sample_frame = (data.points == points[b, 0]).all(-1).any(-1).nonzero()[:, 0]
            assert int(frames[0]) in sample_frame.tolist()


def test_data_without_correspondences_refuses_them() -> None:
    with pytest.raises(ValueError, match="no known correspondences|needs known correspondences"):
        _data(canonical=False).batch_with_correspondence(
            torch.Generator(), 1, 4, 4, torch.device("cpu")
        )


@pytest.mark.parametrize("method", ["ins", "snarf-nc"])
def test_correspondence_loss_is_the_chain_error_and_reaches_the_deformation(method: str) -> None:
    torch.manual_seed(0)
    model = toy_animatable(method_config(method, SMALL))
    vertices = torch.from_numpy(toy_body()[0]).float()
    transforms = toy_transforms([0.4, 0.9])
    canonical = vertices[None, :64].expand(2, -1, -1).contiguous()
    with torch.no_grad():
        field = model.weight_field()
        expected_posed = model.deform(canonical, transforms, field)
    target = expected_posed + torch.tensor([0.0, 0.0, 0.02])  # 2 cm off what the chain gives
    points = torch.randn(2, 32, 3) * 0.2 + torch.tensor([0.0, 0.5, 0.0])
    occupancy = torch.zeros(2, 32)
    losses = model.losses(
        points, occupancy, transforms, 0, correspondence=CorrespondenceBatch(canonical, target)
    )
    assert float(losses["correspondence"]) == pytest.approx(0.02**2, rel=1e-4)
    # In the canonical pose the chain of a fresh model is the identity.
    assert float(losses["correspondence_rest"]) == pytest.approx(0.0, abs=1e-12)
    plain = model.losses(points, occupancy, transforms, 0)
    assert "correspondence" not in plain and "correspondence_rest" not in plain
    model.zero_grad()
    losses["correspondence"].backward()
    moved = model.pin_c if method == "ins" else model.skinning
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in moved.parameters())


def test_preset_switches_the_signal_on() -> None:
    plain = make_preset("cpu-quick", "ins")
    told = make_preset("cpu-quick", "ins", signal="correspondence")
    assert plain.train.correspondences == 0
    assert plain.train.loss_weights.weight("correspondence", 0) == 0.0
    assert told.train.correspondences > 0
    last = told.train.steps - 1
    assert told.train.loss_weights.weight("correspondence", last) == CORRESPONDENCE_WEIGHT
    # Told where the cloth went, ins trains a body-anchored PIN_c and no PIN_d; snarf-nc is as it was.
    assert told.model.pin_c_coupling == "anchored" and not told.model.use_pin_d
    assert plain.model.pin_c_coupling == "" and plain.model.use_pin_d
    snarf = make_preset("cpu-quick", "snarf-nc", signal="correspondence")
    assert snarf.model == make_preset("cpu-quick", "snarf-nc").model
    with pytest.raises(ValueError, match="unknown training signal"):
        make_preset("cpu-quick", "ins", signal="colour-by-magic")


def test_training_data_keeps_the_training_frames_correspondences(toy_data: Path) -> None:
    dataset = load_dataset(toy_data)
    train = dataset.split("train")
    data = training_data(train, FEW_SAMPLES, progress=False, correspondence=True)
    truth = dataset.correspondence
    assert data.canonical is not None and data.posed is not None
    assert data.posed.shape[0] == len(train) == len(dataset.splits["train"])
    expected = truth.posed_vertices[list(dataset.splits["train"])].float()
    assert torch.equal(data.posed, expected)
    assert training_data(train, FEW_SAMPLES, progress=False).canonical is None


def test_train_with_correspondences_logs_the_loss_and_records_the_signal(
    toy_data: Path, tmp_path: Path
) -> None:
    preset = make_preset("tiny", "ins", steps=4, signal="correspondence")
    preset = replace(preset, train=replace(preset.train, log_every=1))
    run = tmp_path / "run"
    train_run(toy_data, run, preset=preset, device="cpu", progress=False)
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert len(records) == 4 and all(r["correspondence"] > 0 for r in records)
    state = json.loads((run / "checkpoint" / "state.json").read_text())
    assert state["signal"] == "correspondence"


def test_dataset_without_correspondences_is_refused_before_sampling(tmp_path: Path) -> None:
    data = tmp_path / "no-truth"
    make_toy_dataset(data)
    manifest = data / "invskin-dataset.json"
    content = json.loads(manifest.read_text())
    content["correspondence"] = None
    content.get("info", {}).pop("correspondence_parts", None)
    manifest.write_text(json.dumps(content))
    with pytest.raises(ValueError, match="--signal occupancy"):
        train_run(
            data, tmp_path / "run", "ins", "tiny", device="cpu", signal="correspondence",
            progress=False,
        )  # fmt: skip
    assert not (data / "cache").exists()  # nothing was sampled


def test_correspondence_training_pulls_the_chain_onto_the_truth(toy_data: Path) -> None:
    """A few steps on the correspondence loss alone bring a perturbed skinning back to the truth."""
    torch.manual_seed(0)
    model = toy_animatable(method_config("snarf-nc", SMALL))
    with torch.no_grad():
        for p in model.skinning.parameters():
            p.add_(0.3 * torch.randn_like(p))
    dataset = load_dataset(toy_data)
    truth = dataset.correspondence
    canonical = truth.canonical_vertices.float()
    frames = list(dataset.splits["train"])
    transforms = dataset.transforms[frames].float()
    target = truth.posed_vertices[frames].float()

    def error() -> float:
        with torch.no_grad():
            posed = model.deform(
                canonical.expand(len(frames), -1, -1), transforms, model.weight_field()
            )
        return float((posed - target).norm(dim=-1).mean())

    before = error()
    optimiser = torch.optim.Adam(model.skinning.parameters(), lr=3e-3)
    batch = CorrespondenceBatch(canonical.expand(len(frames), -1, -1), target)
    points = target[:, ::8].contiguous()
    occupancy = torch.ones(points.shape[:2])
    for _ in range(30):
        loss = model.losses(points, occupancy, transforms, 0, correspondence=batch)[
            "correspondence"
        ]
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    assert error() < 0.5 * before


def test_cape_import_writes_registered_correspondences(tmp_path: Path) -> None:
    """CAPE's registered meshes share one topology: every scan vertex is a known correspondence,
    its canonical position the mean of the training scans' vertex unposed by SMPL's weights."""
    from fixtures_data import write_cape
    from invskin.body.smpl import SMPLModel
    from invskin.data.loaders import convert_cape
    from invskin.geometry import lbs, unpose

    cape, smpl = tmp_path / "cape_release", tmp_path / "smpl"
    write_cape(cape, smpl)
    dataset = convert_cape(cape, tmp_path / "data", smpl, "00032", "longshort", frame_interval=2,
                           progress=False)  # fmt: skip
    truth = dataset.correspondence
    assert truth is not None and truth.posed_vertices.shape[0] == len(dataset)
    for i in range(len(dataset)):
        assert np.allclose(truth.posed_vertices[i].numpy(), dataset.scan(i).vertices, atol=1e-5)
    weights = SMPLModel.load(smpl / "SMPL_MALE.npz").weights.double()
    train = list(dataset.splits["train"])
    unposed = [
        unpose(truth.posed_vertices[i].double(), weights, dataset.transforms[i].double())
        for i in train
    ]
    assert torch.allclose(
        truth.canonical_vertices.double(), torch.stack(unposed).mean(0), atol=1e-4
    )
    # Unposing is the exact inverse of skinning with those weights.
    back = lbs(unposed[0], weights, dataset.transforms[train[0]].double())
    assert torch.allclose(back, truth.posed_vertices[train[0]].double(), atol=1e-6)


def test_saved_configs_with_retired_settings_load_and_unknown_ones_are_refused() -> None:
    saved = make_preset("cpu-quick", "ins", signal="correspondence").model.to_json()
    retired = {**saved, "pin_fourier_frequencies": 4, "pin_pooled_pose": True}
    assert ModelConfig.from_json(retired) == ModelConfig.from_json(saved)
    with pytest.raises(ValueError, match="pin_fourier_frequencies"):
        ModelConfig.from_json({**saved, "pin_fourier_frequencies": 6})
    with pytest.raises(ValueError, match="texture_field"):
        ModelConfig.from_json({**saved, "texture_field": True})


def test_rest_loss_sees_a_pin_c_that_moves_the_canonical_pose() -> None:
    torch.manual_seed(0)
    model = toy_animatable(method_config("ins", SMALL))
    with torch.no_grad():
        for p in model.pin_c.parameters():
            p.add_(0.05 * torch.randn_like(p))
    vertices = torch.from_numpy(toy_body()[0]).float()
    canonical = vertices[None, :64].expand(2, -1, -1).contiguous()
    transforms = toy_transforms([0.4, 0.9])
    rest = torch.eye(4).expand(1, 3, 4, 4)
    with torch.no_grad():
        moved = model.deform(canonical[:1], rest, model.weight_field())
    expected = float((moved - canonical[:1]).square().sum(-1).mean())
    assert expected > 1e-8
    points = torch.randn(2, 16, 3) * 0.2
    batch = CorrespondenceBatch(canonical, canonical)
    losses = model.losses(points, torch.zeros(2, 16), transforms, 0, correspondence=batch)
    assert float(losses["correspondence_rest"]) == pytest.approx(expected, rel=1e-4)
