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
from invskin.runs.folder import load_run
from invskin.runs.pipeline import repose_run
from invskin.solvers.inverse_skinning import inverse_lbs
from invskin.training.run import train_run
from invskin.training.schedule import Ramp
from invskin.training.trainer import TrainConfig, build_optimiser, set_learning_rates
from toy_data import make_toy_dataset, toy_animatable, toy_body, toy_skeleton, toy_transforms

SMALL = ModelConfig(
    pin_blocks=2, pin_width=16, pin_pose_dim=4, skinning_width=16, skinning_grid=(8, 16, 8),
    shape_width=32, shape_layers=2, broyden_steps=30,
)  # fmt: skip


@pytest.fixture(scope="module")
def toy_data(tmp_path_factory):
    return make_toy_dataset(tmp_path_factory.mktemp("toy") / "data")


def toy_model(method: str, perturb: bool = False) -> AnimatableModel:
    model = toy_animatable(method_config(method, SMALL))
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


@pytest.mark.parametrize("method", ["ins", "snarf-nc", "lbs-body", "snarf"])
def test_fast_query_matches_the_reference(method: str) -> None:
    # Distinct roots + pre-blended transforms against every candidate + per-bone weights:
    # the same losses and the same gradients (to float tolerance) on the same batch.
    torch.manual_seed(3)
    model = toy_model(method, perturb=True)
    transforms = toy_transforms([0.3, 0.8])
    points = torch.randn(2, 96, 3) * 0.3 + torch.tensor([0.0, 0.5, 0.0])
    occupancy = (points[..., [0, 2]].norm(dim=-1) < 0.12).float()
    results = {}
    for fast in (False, True):
        model.fast_query = fast
        model.zero_grad(set_to_none=True)
        torch.manual_seed(4)
        losses = model.losses(points, occupancy, transforms, step=0)
        total = sum(v for k, v in losses.items() if k != "valid_fraction")
        total.backward()
        grads = [p.grad.clone() if p.grad is not None else None for p in model.parameters()]
        results[fast] = ({k: float(v.detach()) for k, v in losses.items()}, grads)
    (ref_losses, ref_grads), (fast_losses, fast_grads) = results[False], results[True]
    assert ref_losses.keys() == fast_losses.keys()
    for key in ref_losses:
        assert fast_losses[key] == pytest.approx(ref_losses[key], rel=1e-4, abs=1e-6), key
    compared = 0
    for ref, fast in zip(ref_grads, fast_grads):
        assert (ref is None) == (fast is None)
        if ref is not None:
            # Broyden stops each search within 1e-5 m of the root, so the two paths' roots (and
            # the gradients through them) differ at that level, not more.
            assert (fast - ref).norm() <= 2e-3 * ref.norm() + 1e-7
            compared += 1
    assert compared > 0
    # The toy pose really has several candidates per point, some of them duplicates.
    model.fast_query = False
    with torch.no_grad():
        query = model.query(points, transforms)
    assert (query.valid.sum(-1) > 1).float().mean() > 0.5


def test_residual_skinning_starts_at_the_prior_and_learns() -> None:
    vertices, _, weights = toy_body()
    config = replace(method_config("snarf-nc", SMALL), skinning_residual=True)
    model = AnimatableModel(
        config,
        toy_skeleton(),
        torch.from_numpy(vertices).float(),
        torch.from_numpy(weights).float(),
    )
    learned = model.weight_field().grid
    assert torch.allclose(learned, model.prior_grid, atol=1e-3)
    assert model.fit_skinning_to_prior(10) == []  # nothing to fit: it is the prior already
    transforms = toy_transforms([0.3, 0.8])
    points = torch.randn(2, 64, 3) * 0.3 + torch.tensor([0.0, 0.5, 0.0])
    occupancy = (points[..., [0, 2]].norm(dim=-1) < 0.12).float()
    losses = model.losses(points, occupancy, transforms, step=0)
    losses["occupancy"].backward()
    last = model.skinning.mlp.layers[-1]
    assert last.weight.grad is not None and last.weight.grad.abs().sum() > 0


def test_heading_frame_keeps_tilt_and_factors_out_yaw() -> None:
    from invskin.geometry.rotations import axis_angle_to_matrix

    model = AnimatableModel(
        replace(method_config("ins", SMALL), pin_frame="heading"),
        toy_skeleton(),
        torch.from_numpy(toy_body()[0]).float(),
        torch.from_numpy(toy_body()[2]).float(),
    )
    joint = model.root_joint

    def root_pose(axis_angle: list[float]) -> torch.Tensor:
        t = torch.eye(4).repeat(1, 3, 1, 1)
        t[0, :, :3, :3] = axis_angle_to_matrix(torch.tensor(axis_angle))
        t[0, :, :3, 3] = torch.tensor([0.1, 0.2, 0.3]) + joint - t[0, 0, :3, :3] @ joint
        return t

    # A pure pitch (bow) of the root: the frame only translates; the tilt stays in the PIN pose.
    frame = model.body_frame(root_pose([0.6, 0.0, 0.0]))[0]
    assert torch.allclose(frame[:3, :3], torch.eye(3), atol=1e-6)
    assert torch.allclose(frame[:3, 3], torch.tensor([0.1, 0.2, 0.3]), atol=1e-6)
    # A pure yaw: the frame is the root's transform, the PINs see the root in its rest pose.
    yawed = root_pose([0.0, 1.1, 0.0])
    assert torch.allclose(model.body_frame(yawed)[0], yawed[0, 0], atol=1e-6)
    assert torch.allclose(model.pin_pose(yawed)[0, 0], torch.eye(4), atol=1e-6)
    # Still an exact bijection through both PINs.
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    vertices = torch.from_numpy(toy_body()[0]).float()
    transforms = toy_transforms([0.4, -0.5])
    posed = model.repose(vertices, transforms)
    back, valid = model.canonicalise(posed, transforms, vertices)
    assert valid.float().mean() > 0.99
    assert (back - vertices).norm(dim=-1)[valid].max() < 1e-4


def test_diffused_prior_grid_and_residual_on_a_finer_prior_grid() -> None:
    vertices, _, weights = toy_body()
    config = replace(
        method_config("snarf-nc", SMALL),
        skinning_residual=True,
        prior="diffused",
        prior_radius=0.03,
        prior_grid=(12, 24, 12),
    )
    model = AnimatableModel(
        config,
        toy_skeleton(),
        torch.from_numpy(vertices).float(),
        torch.from_numpy(weights).float(),
    )
    assert model.prior_grid.shape == (3, 12, 24, 12)
    field = model.weight_field()
    assert field.grid.shape == (3, 12, 24, 12)
    assert torch.allclose(field.grid, model.prior_grid, atol=1e-3)  # the residual starts at 0
    with torch.no_grad():
        model.skinning.mlp.layers[-1].bias[0] += 0.05  # favour bone 0 everywhere
    assert not torch.allclose(model.weight_field().grid, model.prior_grid, atol=1e-3)


def test_canonicalise_starts_from_every_bone_not_only_the_training_subset() -> None:
    # Training searches start from bone 0 only; the round trip must still find the roots of points
    # carried by the bent bones, which only a start from those bones reaches.
    vertices, _, weights = toy_body()
    model = AnimatableModel(
        replace(method_config("lbs-body", SMALL), init_bones=(0,)),
        toy_skeleton(),
        torch.from_numpy(vertices).float(),
        torch.from_numpy(weights).float(),
    )
    v = torch.from_numpy(vertices).float()
    transforms = toy_transforms([1.2])
    posed = model.repose(v, transforms)
    from_bone_0 = inverse_lbs(posed, model.weight_field(), transforms, [0], max_steps=100)
    back, valid = model.canonicalise(posed, transforms, v)
    assert valid.float().mean() > from_bone_0.valid.any(-1).float().mean()
    assert valid.float().mean() > 0.99
    assert (back - v).norm(dim=-1)[valid].max() < 1e-4


def test_learning_rate_scale_ramps_follow_the_step_and_survive_json() -> None:
    model = toy_model("ins")
    ramp = Ramp(0.1, 1.0, begin=30, finish=40)
    config = TrainConfig(steps=100, lr=1e-3, lr_final_fraction=1.0, lr_scale_ramps={"pin": ramp})
    assert TrainConfig.from_json(json.loads(json.dumps(config.to_json()))) == config
    optimiser = build_optimiser(model, config)
    names = [group["name"] for group in optimiser.param_groups]
    assert sorted(names) == ["other", "pin"]
    for step, pin_scale in [(0, 0.1), (30, 0.1), (35, 0.55), (40, 1.0), (99, 1.0)]:
        set_learning_rates(optimiser, config, step)
        rates = {group["name"]: group["lr"] for group in optimiser.param_groups}
        assert rates["pin"] == pytest.approx(1e-3 * pin_scale)
        assert rates["other"] == pytest.approx(1e-3)
    # Without a ramp the fixed scales apply.
    set_learning_rates(optimiser, replace(config, lr_scale_ramps={}), 99)
    assert {g["name"]: g["lr"] for g in optimiser.param_groups}["pin"] == pytest.approx(1e-4)


def _losses_by_margin(margin_field: str):
    """A perturbed toy ins model, one batch, and ``losses(margin)``: its losses with the config
    field ``margin_field`` set to ``margin``."""
    torch.manual_seed(7)
    model = toy_model("ins", perturb=True)
    transforms = toy_transforms([0.2, 0.6])
    points = torch.randn(2, 64, 3) * 0.3 + torch.tensor([0.0, 0.5, 0.0])
    occupancy = (points[..., [0, 2]].norm(dim=-1) < 0.12).float()

    def losses(margin: float) -> dict[str, torch.Tensor]:
        model.config = replace(model.config, **{margin_field: margin})
        torch.manual_seed(8)
        return model.losses(points, occupancy, transforms, step=0)

    return model, points, transforms, losses


def test_pin_d_body_displacement_counts_the_samples_with_a_root_on_the_skin() -> None:
    model, points, transforms, losses = _losses_by_margin("pin_d_body_margin")

    assert "pin_d_body_displacement" not in losses(0.0)
    everything = losses(100.0)  # every sample with a valid root counts
    query = model.query(points, transforms)
    with_root = query.valid.any(-1).float()
    expected = (query.pin_d_displacement * with_root).sum() / with_root.sum()
    assert float(expected) > 0
    torch.testing.assert_close(everything["pin_d_body_displacement"], expected)
    assert float(losses(1e-9)["pin_d_body_displacement"]) == 0.0  # no root is that close
    everything["pin_d_body_displacement"].backward()  # it reaches PIN_d's parameters
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.pin_d.parameters())
