"""The PIN pose-dependence diagnostic (``python -m benchmarks pin-pose-dependence``) follows the
model's own chain; ``pin-capacity``'s occupancy fit trains the PINs alone."""

from pathlib import Path

import numpy as np
import torch

from test_model import toy_model
from toy_data import toy_body, toy_transforms

ROOT = Path(__file__).resolve().parents[1]


def _benchmark(monkeypatch, name: str):
    """The module of benchmark ``name`` (``python -m benchmarks NAME``)."""
    monkeypatch.syspath_prepend(str(ROOT))
    import benchmarks

    return benchmarks.load(name)


def test_chain_ends_where_repose_does_and_a_fixed_offset_does_not_vary(monkeypatch) -> None:
    script = _benchmark(monkeypatch, "pin-pose-dependence")
    torch.manual_seed(0)
    model = toy_model("ins", perturb=True).eval()
    vertices = torch.from_numpy(toy_body()[0]).float()
    transforms = toy_transforms([0.3, 0.9, -0.4])
    x1, x2, x3, skinned, rotation = script.chain(model, vertices, transforms)
    assert torch.allclose(x3, model.repose(vertices, transforms), atol=1e-6)
    assert (x1 - vertices).abs().max() > 1e-4 and (x3 - x2).abs().max() > 1e-4  # PINs not identity
    assert torch.allclose(
        rotation @ rotation.transpose(-1, -2), torch.eye(3).expand(3, 3, 3), atol=1e-5
    )
    assert (x3 - skinned).abs().max() > 1e-4
    fresh = toy_model("ins").eval()  # identity PINs: the chain is skinning alone
    _, _, x3, skinned, _ = script.chain(fresh, vertices, transforms)
    assert torch.allclose(x3, skinned, atol=1e-6)
    offset = np.broadcast_to(np.array([0.01, -0.02, 0.03]), (4, 5, 3))
    assert np.abs(script._varying(offset)).max() < 1e-12
    assert abs(script._rms_cm(np.full((2, 3, 3), 0.01)) - 100 * np.sqrt(3) * 0.01) < 1e-9


def test_pin_capacity_occupancy_fit_trains_the_pins_alone(monkeypatch, tmp_path) -> None:
    # python -m benchmarks pin-capacity --fit pins-occupancy: the PINs move, the skinning field and the
    # shape network stay exactly as they were.
    from invskin.data.format import load_dataset
    from toy_data import make_toy_dataset

    script = _benchmark(monkeypatch, "pin-capacity")
    dataset = load_dataset(make_toy_dataset(tmp_path / "toy"))
    torch.manual_seed(0)
    model = toy_model("ins", perturb=True)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    script.fit_occupancy(model, dataset, steps=2, lr=1e-2, seed=0)
    after = model.state_dict()
    moved = {k for k in before if not torch.equal(before[k], after[k])}
    assert moved and all(k.startswith(("pin_c.", "pin_d.")) for k in moved), moved
    assert any(k.startswith("pin_c.") for k in moved) and any(k.startswith("pin_d.") for k in moved)
