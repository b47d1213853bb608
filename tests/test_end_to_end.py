"""End to end on the embedded synthetic data (small preset): train a few steps, extract, repose.

Every method of the comparison goes through the same commands a user runs; the outputs must be
well formed: one mesh per frame, finite, in metres, identical faces for the methods that extract
once (and a GLB that holds the same frames), a per-frame mesh for ``snarf``.
"""

import numpy as np
import pytest

from invskin.cli.main import main
from invskin.data.format import load_dataset
from invskin.export.glb import read_glb_frames
from invskin.mesh.io import load_mesh

pytestmark = [pytest.mark.anny, pytest.mark.slow]


@pytest.fixture(scope="module")
def synth_small(tmp_path_factory):
    pytest.importorskip("anny")
    out = tmp_path_factory.mktemp("synth") / "dress"
    main(["synth", "--out", str(out), "--outfit", "dress", "--preset", "small", "--no-progress"])
    return out


@pytest.mark.parametrize("method", ["ins", "snarf-nc", "snarf", "lbs-body"])
def test_train_extract_repose(synth_small, tmp_path, method: str) -> None:
    run = tmp_path / "run"
    main(["train", "--data", str(synth_small), "--out", str(run), "--method", method,
          "--preset", "tiny", "--device", "cpu"])  # fmt: skip
    dataset = load_dataset(synth_small)
    test_out = dataset.split("test-out")
    if method != "snarf":
        main(["extract", "--run", str(run), "--resolution", "48"])
        canonical = load_mesh(run / "canonical.ply")
        assert canonical.num_faces > 100
    out = tmp_path / "out"
    main(["repose", "--run", str(run), "--poses", str(synth_small), "--split", "test-out",
          "--out", str(out)])  # fmt: skip
    meshes = [load_mesh(out / f"{frame_id}.ply") for frame_id in test_out.frame_ids]
    for mesh in meshes:
        assert np.isfinite(mesh.vertices).all() and mesh.num_faces > 100
        assert np.ptp(mesh.vertices, axis=0).max() < 3.0  # metres, a body-sized mesh
    if method == "snarf":
        assert not (out / "animation.glb").exists()
    else:
        assert all(np.array_equal(m.faces, canonical.faces) for m in meshes)
        frames, faces = read_glb_frames(out / "animation.glb")
        assert np.array_equal(faces, canonical.faces)
        assert np.allclose(frames, np.stack([m.vertices for m in meshes]), atol=1e-5)
