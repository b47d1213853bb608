"""The colour training signal: the colour field, the photometric loss, its training run, the
coloured extracted mesh and the colour-accuracy metric."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from invskin.data.format import BodyPrior, DatasetWriter
from invskin.geometry import lbs
from invskin.mesh.io import TriMesh, load_mesh
from invskin.metrics import colour_error
from invskin.models.config import ModelConfig, method_config
from invskin.models.signals import ColourBatch
from invskin.nets.colour_field import ColourField, brightness_gain
from invskin.training.presets import make_preset, without_losses
from invskin.training.run import train_run
from toy_data import toy_animatable, toy_body, toy_skeleton, toy_transforms

SMALL = ModelConfig(
    pin_blocks=2, pin_width=16, pin_pose_dim=4, skinning_width=16, skinning_grid=(8, 16, 8),
    shape_width=32, shape_layers=2, broyden_steps=20, colour_field=True,
)  # fmt: skip
BRIGHTNESS = np.array([1.0, 0.8, 1.2, 0.9, 1.1, 0.75, 1.25, 0.95, 1.05, 0.85])


def print_colours(vertices: np.ndarray) -> np.ndarray:
    """Bands of three colours along the capsule, 10 cm each (a print fixed to the surface)."""
    palette = np.array([[0.7, 0.1, 0.1], [0.1, 0.6, 0.2], [0.2, 0.2, 0.7]])
    return palette[np.floor(vertices[:, 1] / 0.1).astype(int) % 3]


def make_coloured_toy(out: Path, colour: bool = True) -> Path:
    """The toy capsule in ten poses, its scans coloured by the print and lit per frame."""
    vertices, faces, weights = toy_body()
    angles = [0.0, 0.2, 0.4, 0.6, 0.8, -0.3, 0.3, 0.7, 1.0, -0.6]
    transforms = toy_transforms(angles)
    v, w = torch.from_numpy(vertices).float(), torch.from_numpy(weights).float()
    posed = lbs(v.expand(len(angles), -1, -1), w.expand(len(angles), -1, -1), transforms)
    colours = print_colours(vertices)
    ids = [f"f{i:02d}" for i in range(len(angles))]
    prior = BodyPrior(v, torch.from_numpy(faces), w)
    with DatasetWriter(out, "toy", toy_skeleton(), prior, source="tests") as writer:
        for i, frame_id in enumerate(ids):
            lit = np.clip(colours * BRIGHTNESS[i], 0, 1) if colour else None
            scan = TriMesh(posed[i].double().numpy(), faces, colors=lit)
            writer.add_frame(frame_id, scan, transforms[i].numpy(), "bend")
        writer.set_splits({"train": ids[:6], "test-within": ids[6:8], "test-out": ids[8:]})
        parts = {"lower": np.flatnonzero(vertices[:, 1] < 0.5), "all": np.arange(len(vertices))}
        writer.set_correspondence(
            vertices,
            faces,
            posed.numpy(),
            parts,
            colors=colours if colour else None,
            brightness=BRIGHTNESS if colour else None,
        )
        writer.finish()
    return out


@pytest.fixture(scope="module")
def coloured_toy(tmp_path_factory) -> Path:
    return make_coloured_toy(tmp_path_factory.mktemp("colour") / "data")


def test_colour_field_starts_grey_and_has_a_gradient_in_space() -> None:
    field = ColourField(torch.tensor([[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]]))
    points = torch.rand(5, 7, 3) * 2 - 1
    assert torch.allclose(field(points), torch.full((5, 7, 3), 0.5))
    with torch.no_grad():
        for grid in field.levels:
            grid.normal_()
    points.requires_grad_(True)
    field(points).sum().backward()
    assert points.grad is not None and points.grad.abs().sum() > 0


def test_brightness_gain_is_the_least_squares_factor() -> None:
    generator = torch.Generator().manual_seed(0)
    predicted = torch.rand(3, 20, 3, generator=generator)
    observed = torch.rand(3, 20, 3, generator=generator)
    mask = torch.rand(3, 20, generator=generator) > 0.3
    gain = brightness_gain(predicted, observed, mask)
    for b in range(3):
        p, o = predicted[b][mask[b]].reshape(-1, 1), observed[b][mask[b]].reshape(-1)
        expected = torch.linalg.lstsq(p, o).solution[0]
        assert torch.isclose(gain[b], expected, atol=1e-5)


def _lit_batch(model, brightness: torch.Tensor) -> tuple[ColourBatch, torch.Tensor, torch.Tensor]:
    """Canonical surface points of the toy body posed by the model's own chain, coloured by the
    model's colour field times each frame's brightness."""
    vertices, _, _ = toy_body()
    canonical = torch.from_numpy(vertices[::7]).float()
    transforms = toy_transforms([0.3, 0.7])
    with torch.no_grad():
        posed = model.deform(canonical.expand(2, -1, -1), transforms, model.weight_field())
        colours = model.colour(canonical).expand(2, -1, -1) * brightness[:, None, None]
    return ColourBatch(posed, colours), transforms, canonical


def test_photometric_loss_carries_scan_points_back_and_ignores_lighting() -> None:
    torch.manual_seed(0)
    model = toy_animatable(method_config("ins", SMALL))
    with torch.no_grad():
        for grid in model.colour.levels:
            grid.normal_()
    batch, transforms, canonical = _lit_batch(model, torch.tensor([0.8, 1.2]))
    x_c, valid = model.canonical_surface(batch.points, transforms, model.weight_field())
    assert valid.float().mean() > 0.95
    back = (x_c - canonical).norm(dim=-1)[valid]
    assert back.median() < 1e-3  # the chain's own images come back to where they started
    losses = model.photometric(batch, transforms, model.weight_field())
    assert losses["colour"] < 1e-3  # each frame's lighting is absorbed by its gain
    unlit = ((model.colour(x_c) - batch.colours).square().sum(-1))[valid].mean()
    assert unlit > 20 * losses["colour"]  # without the gain, the lighting would cost


def _colour_gradients(**changes) -> dict[str, float]:
    """Summed absolute gradient of the photometric loss (noisy colours, random colour field) in
    the colour field, the skinning field and PIN_c of a toy ``ins`` model with ``changes``."""
    torch.manual_seed(1)
    model = toy_animatable(replace(method_config("ins", SMALL), use_pin_d=False, **changes))
    with torch.no_grad():
        for grid in model.colour.levels:
            grid.normal_()
    batch, transforms, _ = _lit_batch(model, torch.tensor([1.0, 1.0]))
    noisy = ColourBatch(batch.points, (batch.colours + 0.1 * torch.randn_like(batch.colours)))
    model.photometric(noisy, transforms, model.weight_field())["colour"].backward()
    return {
        name: sum(float(p.grad.abs().sum()) for p in part.parameters() if p.grad is not None)
        for name, part in (("colour", model.colour), ("skinning", model.skinning),
                           ("pin_c", model.pin_c))
    }  # fmt: skip


def test_colour_loss_reaches_the_field_the_skinning_and_the_pins() -> None:
    moved = _colour_gradients()
    assert all(value > 0 for value in moved.values()), moved


def test_colour_can_be_kept_off_the_skinning() -> None:
    moved = _colour_gradients(colour_moves_skinning=False)
    assert moved["colour"] > 0 and moved["pin_c"] > 0 and moved["skinning"] == 0, moved


def test_colour_preset_and_switching_losses_off() -> None:
    preset = make_preset("cpu-quick", "ins", signal="colour")
    assert preset.model.colour_field and preset.model.pin_c_coupling == "anchored"
    assert not preset.model.use_pin_d and preset.train.colour_points > 0
    assert preset.train.loss_weights.weight("colour", 0) > 0
    off = make_preset("cpu-quick", "ins", signal="colour", no_loss=("colour", "colour_level"))
    assert off.model == preset.model and off.train.colour_points == 0
    assert off.train.loss_weights.weight("colour", 0) == 0
    snarf = make_preset("cpu-quick", "snarf-nc", signal="colour")
    assert snarf.model.colour_field and not snarf.model.use_pin_c
    with pytest.raises(ValueError, match="no loss named nonsense"):
        without_losses(preset.train, ("nonsense",))
    occupancy = make_preset("cpu-quick", "ins")
    assert not occupancy.model.colour_field and occupancy.train.colour_points == 0


def test_train_with_colour_extract_and_evaluate(coloured_toy: Path, tmp_path: Path) -> None:
    from invskin.evaluation.evaluate import evaluate_run

    preset = make_preset("tiny", "ins", steps=4, signal="colour")
    preset = replace(preset, train=replace(preset.train, log_every=1))
    run = tmp_path / "run"
    train_run(coloured_toy, run, preset=preset, device="cpu", progress=False)
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert len(records) == 4 and all(r["colour"] > 0 for r in records)
    state = json.loads((run / "checkpoint" / "state.json").read_text())
    assert state["signal"] == "colour"
    report = evaluate_run(run, split="test-within", num_points=2000, progress=False)
    mesh = load_mesh(run / "canonical.ply")
    assert mesh.colors is not None and mesh.colors.shape == (mesh.num_vertices, 3)
    colour = report["colour"]
    assert colour is not None and set(colour["per_part"]) == {"lower", "all"}
    assert 0 <= colour["mean"] <= 255
    assert all("colour_error" in frame for frame in report["per_frame"])


def test_train_without_the_colour_loss_records_it(coloured_toy: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    train_run(
        coloured_toy, run, "ins", "tiny", steps=2, device="cpu", signal="colour",
        no_loss=("colour", "colour_level"), progress=False,
    )  # fmt: skip
    state = json.loads((run / "checkpoint" / "state.json").read_text())
    assert state["signal"] == "colour" and state["no_loss"] == ["colour", "colour_level"]
    assert state["train_config"]["colour_points"] == 0
    record = json.loads((run / "log.jsonl").read_text().splitlines()[-1])
    assert "colour" not in record


def test_dataset_without_colour_is_refused_before_sampling(tmp_path: Path) -> None:
    data = make_coloured_toy(tmp_path / "grey", colour=False)
    with pytest.raises(ValueError, match="carry no colour"):
        train_run(data, tmp_path / "run", "ins", "tiny", device="cpu", signal="colour",
                  progress=False)  # fmt: skip
    assert not (data / "cache").exists()


def test_colour_error_sees_sliding_along_the_surface() -> None:
    vertices, faces, _ = toy_body()
    colours = print_colours(vertices)
    posed = vertices[None]
    parts = {"all": np.ones(len(vertices), dtype=bool)}
    exact = colour_error(posed, colours, faces, posed, colours, parts)
    assert exact["mean"] < 1e-6 and exact["per_part"]["all"] < 1e-6
    slid = posed + np.array([0.0, 0.1, 0.0])  # every vertex slid one band along the capsule
    moved = colour_error(slid, colours, faces, posed, colours, parts)
    assert moved["mean"] > 50  # most vertices now sit on another band's colour
    grey = colour_error(posed, np.full_like(colours, 0.5), faces, posed, colours)
    expected = 255 * np.abs(0.5 - colours).mean()
    assert grey["mean"] == pytest.approx(expected, rel=0.05) and "per_part" not in grey
    with pytest.raises(TypeError, match="v=258"):  # shape check: 257 colours for 258 vertices
        colour_error(posed, colours[:-1], faces, posed, colours)
