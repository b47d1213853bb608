"""PINs saved before their couplings were one class per kind load into today's classes with the
same parameter names and give the same outputs.

``tests/assets/pin-couplings.pt`` holds, per coupling kind, the state dict of a perturbed PIN built
by :func:`saved_pin` below, a batch of points and poses, and the forward and inverse points and log
determinants that PIN gave when the file was written.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from invskin.nets.anchored import BodyTable
from invskin.nets.pin import PIN, PINConfig
from toy_data import toy_body, toy_transforms

ASSET = Path(__file__).parent / "assets" / "pin-couplings.pt"
KINDS = ("affine", "spline", "anchored")
TABLE_SPACING = 0.05
"""A coarse body table (metres), so that the saved file stays small."""


def saved_pin(kind: str) -> PIN:
    """The architecture of the saved PIN of coupling ``kind`` (its weights come from the file)."""
    config = PINConfig(
        num_blocks=2, hidden_width=16, projection_dim=8, pose_embed_dim=4, pose_hidden_width=8,
        pooled_dim=8, coupling=kind, spline_bins=4,
    )  # fmt: skip
    table = None
    if kind == "anchored":
        vertices, faces, _ = toy_body()
        v = torch.from_numpy(vertices).float()
        table = BodyTable(v.min(0).values - 0.02, v.max(0).values + 0.02, TABLE_SPACING)
    return PIN(3, config, table)


def write_asset(path: Path) -> None:
    """Write the file (with the PIN classes of the time): perturbed PINs and their outputs."""
    torch.manual_seed(5)
    vertices, faces, _ = toy_body()
    saved = {}
    for kind in KINDS:
        pin = saved_pin(kind)
        if kind == "anchored":
            pin.table.fill(torch.from_numpy(vertices).float(), torch.from_numpy(faces))
        with torch.no_grad():
            for parameter in pin.parameters():
                parameter.add_(0.1 * torch.randn_like(parameter))
        points = torch.randn(2, 64, 3) * 0.2 + torch.tensor([0.0, 0.5, 0.0])
        pose = toy_transforms([0.4, 1.1])
        with torch.no_grad():
            forward = pin.forward_with_log_det(points, pose)
            inverse = pin.inverse_with_log_det(points, pose)
        saved[kind] = {
            "state": pin.state_dict(),
            "points": points,
            "pose": pose,
            "forward": forward.points,
            "forward_log_det": forward.log_det,
            "inverse": inverse.points,
            "inverse_log_det": inverse.log_det,
        }
    torch.save(saved, path)


@pytest.mark.parametrize("kind", KINDS)
def test_a_saved_pin_loads_with_the_same_names_and_gives_the_same_outputs(kind: str) -> None:
    saved = torch.load(ASSET, weights_only=True)[kind]
    pin = saved_pin(kind)
    assert sorted(pin.state_dict()) == sorted(saved["state"])
    pin.load_state_dict(saved["state"])  # strict: no key missing, none left over
    with torch.no_grad():
        forward = pin.forward_with_log_det(saved["points"], saved["pose"])
        inverse = pin.inverse_with_log_det(saved["points"], saved["pose"])
    assert not torch.allclose(saved["forward"], saved["points"], atol=1e-3)  # the PIN moves points
    torch.testing.assert_close(forward.points, saved["forward"])
    torch.testing.assert_close(forward.log_det, saved["forward_log_det"])
    torch.testing.assert_close(inverse.points, saved["inverse"])
    torch.testing.assert_close(inverse.log_det, saved["inverse_log_det"])
