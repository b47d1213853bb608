"""The model on a CUDA device against the CPU: reposing, root finding, a few training steps.

Skipped where torch sees no CUDA device (the CI machines): ``scripts/gpu_checks.sh`` runs these on a
lent GPU. TF32 is off throughout, so the two devices differ by float32 rounding only.
``INVSKIN_TEST_DEVICE=cpu`` runs them with the CPU in CUDA's place: a check of the tests themselves.
"""

import math
import os
from dataclasses import replace

import pytest
import torch

from invskin.geometry import lbs
from invskin.nets import SkinningGrid
from invskin.runs.folder import load_run
from invskin.solvers.inverse_skinning import inverse_lbs
from invskin.training.run import train_run
from test_fast_repose import PRESET_LIKE, perturbed_model, posed_frames
from test_root_finding import bar_points, bar_weights, bent_bar
from toy_data import make_toy_dataset, toy_body

CUDA = torch.device(os.environ.get("INVSKIN_TEST_DEVICE", "cuda"))
pytestmark = pytest.mark.skipif(
    CUDA.type == "cuda" and not torch.cuda.is_available(), reason="needs a CUDA device"
)


@pytest.fixture(autouse=True)
def no_tf32():
    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before


@pytest.mark.parametrize("coupling", ["affine", "spline"])
def test_repose_on_cuda_matches_cpu(coupling: str) -> None:
    torch.manual_seed(0)
    model = perturbed_model("ins", replace(PRESET_LIKE, pin_coupling=coupling, pin_spline_bins=4))
    vertices = torch.from_numpy(toy_body()[0]).float()
    transforms = posed_frames()
    with torch.no_grad():
        on_cpu = model.repose(vertices, transforms)
        on_cuda = model.to(CUDA).repose(vertices.to(CUDA), transforms.to(CUDA))
    assert on_cuda.device.type == CUDA.type
    torch.testing.assert_close(on_cuda.cpu(), on_cpu, atol=5e-5, rtol=1e-5)


def test_root_finding_on_cuda_matches_cpu() -> None:
    # The pre-blended search: PyTorch's on CUDA against the CPU's (C where built).
    torch.manual_seed(3)
    grid = SkinningGrid.from_field(
        bar_weights, torch.tensor([[-1.0, -1, -0.3], [1, 1, 0.3]]), (40, 12, 8)
    )
    transforms = bent_bar([math.radians(60), math.radians(-30)])
    canonical = bar_points(2, 500)
    posed = lbs(canonical, bar_weights(canonical), transforms)
    on_cpu = inverse_lbs(posed, grid, transforms, [0, 1], pre_blend=True)
    grid_cuda = SkinningGrid(grid.grid.to(CUDA), grid.bounds.to(CUDA))
    on_cuda = inverse_lbs(posed.to(CUDA), grid_cuda, transforms.to(CUDA), [0, 1], pre_blend=True)
    valid = on_cuda.valid.cpu()
    assert (valid == on_cpu.valid).float().mean() > 0.995
    both = valid & on_cpu.valid
    assert both.float().mean() > 0.5
    assert (on_cuda.points.cpu() - on_cpu.points).norm(dim=-1)[both].max() < 1e-4


def test_training_and_reposing_a_run_on_cuda(tmp_path) -> None:
    data = make_toy_dataset(tmp_path / "toy")
    summary = train_run(
        data, tmp_path / "run", preset="tiny", steps=3, device=str(CUDA), progress=False
    )
    assert all(math.isfinite(v) for v in summary.result.final_losses.values())
    vertices = torch.from_numpy(toy_body()[0]).float()
    transforms = posed_frames()
    with torch.no_grad():
        on_cuda = load_run(tmp_path / "run", device=CUDA).model.repose(
            vertices.to(CUDA), transforms.to(CUDA)
        )
        on_cpu = load_run(tmp_path / "run", device="cpu").model.repose(vertices, transforms)
    torch.testing.assert_close(on_cuda.cpu(), on_cpu, atol=5e-5, rtol=1e-5)
