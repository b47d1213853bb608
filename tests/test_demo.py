"""``invskin demo`` end to end on the small synthetic preset with the tiny training preset: every
output is written and holds what it should (pixels of the error figure, colours in PLY and GLB,
frames of the GIF, the drift table)."""

import json

import numpy as np
import pytest
from PIL import Image

from invskin.demo import demo_data_preset, run_demo
from invskin.export.glb import read_glb_colors, read_glb_frames
from invskin.export.texture import load_ply_colors
from invskin.mesh.render import colormap


def test_demo_preset_keeps_the_default_training_clips():
    demo, default = demo_data_preset("demo"), demo_data_preset("default")
    assert (demo.train_clips, demo.frames_per_clip, demo.train_motions) == (
        default.train_clips, default.frames_per_clip, default.train_motions)  # fmt: skip
    assert demo.test_out_motions == ("run",) and demo.within_frames == 0
    assert demo.num_frames == default.num_frames - 48 - 39


@pytest.mark.anny
@pytest.mark.slow
def test_demo_small_tiny(tmp_path):
    pytest.importorskip("anny")
    out = tmp_path / "demo"
    result = run_demo(out, data_preset="small", train_preset="tiny", cache=tmp_path / "cache",
                      num_points=2000)  # fmt: skip
    timing = json.loads((out / "timing.json").read_text())
    assert set(timing) >= {"dataset", "training", "evaluation", "figures", "total"}
    assert "Texture drift" in result.table.read_text()
    # The error figure: grey ground truth and error-coloured methods, with a colour bar.
    figure = np.asarray(Image.open(result.renders).convert("RGB")).astype(int)
    assert figure.shape[0] >= 3 * 440 and figure.shape[1] >= 2 * 300
    palette = colormap(np.linspace(0, 5, 64), 0.0, 5.0).astype(int)
    saturated = figure[(figure.max(-1) - figure.min(-1)) > 60]
    near = np.abs(saturated[:: max(1, len(saturated) // 5000), None] - palette[None]).max(-1)
    assert len(saturated) > 5000 and (near.min(-1) < 80).mean() > 0.5
    # Texture: the same colours on the canonical mesh, every PLY and the GLB.
    repose = out / "repose" / "ins"
    plys = sorted(repose.glob("*.ply"))
    colors = load_ply_colors(plys[0])
    assert len(np.unique(colors, axis=0)) > 10
    for ply in plys[1:]:
        np.testing.assert_array_equal(load_ply_colors(ply), colors)
    np.testing.assert_array_equal(read_glb_colors(result.glb), colors)
    assert read_glb_frames(result.glb)[0].shape[0] == len(plys)
    with Image.open(result.gif) as gif:
        assert gif.n_frames == len(plys) and gif.size[0] > 3 * 200  # truth, ins, snarf-nc


def test_drift_table_reads_eval_reports():
    from invskin.demo import drift_table

    reports = [
        # The layout invskin eval writes (evaluation/evaluate.py): per_part -> parts -> name.
        {"method": "ins", "correspondence": {"mean_cm": 1.234, "p95_cm": 4.5},
         "per_part": {"stretch_threshold": 1.5, "chamfer_points": 25000, "seconds": 0.5,
                      "parts": {"skirt": {"correspondence_mean_cm": 3.0,
                                          "correspondence_p95_cm": 9.25, "stretch_p99": 1.7},
                                "body": {"correspondence_mean_cm": None}}}},
        {"method": "snarf", "correspondence": None},
    ]  # fmt: skip
    table = drift_table(reports)
    assert "| ins | all | 1.23 | 4.50 | - |" in table
    assert "| ins | skirt | 3.00 | 9.25 | 1.70 |" in table
    assert "| ins | body | - | - | - |" in table
    assert "snarf" not in table
    assert "| ins | parts |" not in table and "stretch_threshold" not in table
