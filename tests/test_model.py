"""The animatable model (INS and baselines) on a small constructed dataset, end to end on CPU."""

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from invskin.data.format import load_dataset
from invskin.evaluation.evaluate import evaluate_run
from invskin.export.glb import read_glb_frames
from invskin.mesh.io import load_mesh
from invskin.models.animatable import AnimatableModel
from invskin.models.config import METHODS, ModelConfig, method_config
from invskin.models.pipeline import repose_run
from invskin.models.run import load_run
from invskin.training.run import train_run
from toy_data import make_toy_dataset, toy_body, toy_skeleton, toy_transforms

SMALL = ModelConfig(
    pin_blocks=2, pin_width=16, pin_pose_dim=4, skinning_width=16, skinning_grid=(8, 16, 8),
    shape_width=32, shape_layers=2, broyden_steps=30,
)  # fmt: skip


@pytest.fixture(scope="module")
def toy_data(tmp_path_factory):
    return make_toy_dataset(tmp_path_factory.mktemp("toy") / "data")


def toy_model(method: str, perturb: bool = False) -> AnimatableModel:
    vertices, _, weights = toy_body()
    model = AnimatableModel(
        method_config(method, SMALL),
        toy_skeleton(),
        torch.from_numpy(vertices).float(),
        torch.from_numpy(weights).float(),
    )
    if perturb:  # move every parameter away from the identity initialisation of the PINs
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.05 * torch.randn_like(p))
    return model


def test_methods_table_is_complete() -> None:
    assert set(METHODS) == {
        "ins", "snarf-nc", "snarf", "lbs-body", "ins-no-pin-c", "ins-no-pin-d", "ins-no-pose",
        "ins-no-siren",
    }  # fmt: skip
    assert not method_config("snarf").use_pin_c and method_config("snarf").shape_pose_conditioned
    assert not method_config("lbs-body").learn_skinning
    with pytest.raises(ValueError, match="unknown method"):
        method_config("nerf")


def test_fresh_ins_reposes_like_snarf_nc() -> None:
    # PINs start as the identity, so a fresh ins model is LBS with its skinning field.
    torch.manual_seed(0)
    ins = toy_model("ins")
    snarf_nc = toy_model("snarf-nc")
    snarf_nc.skinning.load_state_dict(ins.skinning.state_dict())
    vertices = torch.from_numpy(toy_body()[0]).float()
    transforms = toy_transforms([0.3, 0.9])
    assert torch.allclose(ins.repose(vertices, transforms), snarf_nc.repose(vertices, transforms))


def test_lbs_body_reposes_with_the_prior_weights() -> None:
    model = toy_model("lbs-body")
    vertices = torch.from_numpy(toy_body()[0]).float()
    identity = torch.eye(4).expand(1, 3, 4, 4)
    assert torch.allclose(model.repose(vertices, identity)[0], vertices, atol=1e-6)


def test_repose_then_canonicalise_round_trip() -> None:
    torch.manual_seed(1)
    model = toy_model("ins", perturb=True)
    vertices = torch.from_numpy(toy_body()[0]).float()
    transforms = toy_transforms([0.4, -0.5])
    posed = model.repose(vertices, transforms)
    assert (posed - vertices).abs().max() > 1e-2  # the pose really moves the points
    back, valid = model.canonicalise(posed, transforms, vertices)
    assert valid.float().mean() > 0.99
    error = (back - vertices).norm(dim=-1)[valid]
    assert error.max() < 1e-4


@pytest.mark.parametrize("method", ["ins", "snarf", "lbs-body", "ins-no-pose", "ins-no-siren"])
def test_losses_are_finite_and_reach_the_parameters(method: str) -> None:
    torch.manual_seed(2)
    model = toy_model(method, perturb=True)
    transforms = toy_transforms([0.2, 0.6])
    points = torch.randn(2, 64, 3) * 0.3 + torch.tensor([0.0, 0.5, 0.0])
    occupancy = (points[..., [0, 2]].norm(dim=-1) < 0.12).float()
    losses = model.losses(points, occupancy, transforms, step=0)
    assert all(torch.isfinite(v) for v in losses.values())
    total = sum(v for k, v in losses.items() if k != "valid_fraction")
    total.backward()
    shape_grad = sum(p.grad.abs().sum() for p in model.shape.parameters() if p.grad is not None)
    assert shape_grad > 0
    if model.pin_c is not None:
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.pin_c.parameters())
    if model.skinning is not None:
        grads = [p.grad for p in model.skinning.parameters()]
        assert any(g is not None and g.abs().sum() > 0 for g in grads)


def test_training_reduces_the_occupancy_loss(toy_data, tmp_path) -> None:
    summary = train_run(
        toy_data, tmp_path / "run", "snarf-nc", "tiny", steps=60, device="cpu", progress=False
    )
    log = [line for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    first, last = eval(log[0].replace("null", "None")), eval(log[-1].replace("null", "None"))
    assert summary.result.steps == 60
    assert last["occupancy"] < first["occupancy"]


@pytest.mark.parametrize("method", ["ins", "snarf-nc", "snarf", "lbs-body"])
def test_train_extract_repose_eval_end_to_end(toy_data, tmp_path, method: str) -> None:
    run = tmp_path / method
    train_run(toy_data, run, method, "tiny", device="cpu", progress=False)
    loaded = load_run(run)
    assert loaded.method == method
    dataset = load_dataset(toy_data)
    test = dataset.split("test-out")
    result = repose_run(
        run, test.transforms, tmp_path / "out", list(test.frame_ids), progress=False
    )
    meshes = [load_mesh(p) for p in result.mesh_files]
    assert len(meshes) == len(test)
    assert all(np.isfinite(m.vertices).all() and m.num_faces > 0 for m in meshes)
    if method == "snarf":
        assert result.glb is None
    else:
        assert all(np.array_equal(m.faces, meshes[0].faces) for m in meshes)
        frames, faces = read_glb_frames(result.glb)
        assert frames.shape == (len(test), meshes[0].num_vertices, 3)
        assert np.allclose(frames[1], meshes[1].vertices, atol=1e-5)
    report = evaluate_run(run, split="test-within", num_points=2000, progress=False)
    assert report["frames"] == 2
    for key in ("iou_bbox", "iou_surface", "fscore_1cm", "normal_consistency"):
        assert 0.0 <= report["summary"][key] <= 1.0
    assert report["summary"]["chamfer_cm"] > 0
    assert (report["correspondence"] is None) == (method == "snarf")
    # Per part (the toy data labels "lower" and "all"): only for methods that keep their vertices.
    assert (report["per_part"] is None) == (method == "snarf")
    written = (run / "eval" / "test-within" / "metrics.json").read_text()
    json.loads(written, parse_constant=lambda name: pytest.fail(f"{name} in metrics.json"))
    if report["per_part"] is not None:
        parts = report["per_part"]["parts"]
        assert set(parts) == {"lower", "all"}
        num_vertices = load_mesh(run / "canonical.ply").num_vertices
        assert parts["all"]["vertices"] == num_vertices
        assert 0 < parts["lower"]["vertices"] < num_vertices
        assert parts["all"]["correspondence_mean_cm"] == pytest.approx(
            report["correspondence"]["mean_cm"]
        )
        assert set(report["per_frame"][0]["per_part"]) == {"lower", "all"}
        assert "| lower |" in (run / "eval" / "test-within" / "metrics.md").read_text()


def test_resume_continues_and_refuses_to_overwrite(toy_data, tmp_path) -> None:
    run = tmp_path / "run"
    train_run(toy_data, run, "snarf-nc", "tiny", steps=2, device="cpu", progress=False)
    with pytest.raises(FileExistsError, match="--resume"):
        train_run(toy_data, run, "snarf-nc", "tiny", steps=2, device="cpu", progress=False)
    summary = train_run(toy_data, run, resume=True, steps=4, device="cpu", progress=False)
    assert summary.result.steps == 4
    assert load_run(run).state["step"] == 4


def test_config_round_trip() -> None:
    config = replace(method_config("ins"), init_bones=(0, 2))
    assert ModelConfig.from_json(config.to_json()) == config
