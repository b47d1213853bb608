"""Atomic checkpoints and GLB export."""

import json

import numpy as np
import pytest
import torch

from invskin.export.glb import read_glb_frames, write_glb
from invskin.training.checkpoint import find_checkpoint, load_checkpoint, save_checkpoint


def test_checkpoint_round_trip(tmp_path) -> None:
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(model.parameters())
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    save_checkpoint(tmp_path, model.state_dict(), {"step": 7}, opt.state_dict())
    ckpt = load_checkpoint(tmp_path)
    assert ckpt.state["step"] == 7
    assert torch.equal(ckpt.model["weight"], model.weight.detach())
    assert ckpt.optimizer is not None and ckpt.optimizer["state"]


def test_failed_save_keeps_the_good_checkpoint(tmp_path) -> None:
    save_checkpoint(tmp_path, {"w": torch.ones(2)}, {"step": 1})

    class Unserialisable:
        pass

    with pytest.raises(TypeError):
        save_checkpoint(tmp_path, {"w": torch.zeros(2)}, {"step": 2, "bad": Unserialisable()})
    ckpt = load_checkpoint(tmp_path)
    assert ckpt.state["step"] == 1 and torch.equal(ckpt.model["w"], torch.ones(2))
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint"]


def test_missing_and_corrupt_checkpoints_give_clear_errors(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="train first"):
        load_checkpoint(tmp_path)
    folder = save_checkpoint(tmp_path, {"w": torch.ones(2)}, {"step": 1})
    (folder / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="corrupt"):
        load_checkpoint(tmp_path)
    # An interrupted swap leaves only checkpoint.old: it is still found.
    save_checkpoint(tmp_path, {"w": torch.ones(2)}, {"step": 3})
    (tmp_path / "checkpoint").rename(tmp_path / "checkpoint.old")
    assert find_checkpoint(tmp_path) == tmp_path / "checkpoint.old"
    assert json.loads((tmp_path / "checkpoint.old" / "state.json").read_text())["step"] == 3


def test_glb_round_trip_keeps_frames_and_faces(tmp_path) -> None:
    rng = np.random.default_rng(0)
    frames = rng.normal(size=(4, 10, 3)).astype(np.float32)
    faces = rng.integers(0, 10, size=(6, 3))
    write_glb(tmp_path / "anim.glb", frames, faces, fps=10.0)
    back, back_faces = read_glb_frames(tmp_path / "anim.glb")
    assert np.allclose(back, frames, atol=1e-6)
    assert np.array_equal(back_faces, faces)
    with pytest.raises(ValueError, match="NaN"):
        write_glb(tmp_path / "bad.glb", np.full((2, 3, 3), np.nan), faces[:1] % 3)
    assert not (tmp_path / "bad.glb").exists()
