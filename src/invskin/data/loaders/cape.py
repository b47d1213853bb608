"""Convert one subject + outfit of the CAPE release (https://cape.is.tue.mpg.de) to invskin format.

Input layout (the CAPE release, metres)::

    CAPE/sequences/<subject>/<outfit>_<motion>/<outfit>_<motion>.<frame>.npz
                                         keys v_posed (6890, 3), pose (72,), transl (3,)
    CAPE/minimal_body_shape/<subject>/<subject>_minimal.npy      (6890, 3) minimal body, T-pose
    CAPE/misc/subj_genders.pkl                                   {subject: 'male' | 'female'}
    CAPE/misc/smpl_tris.npy                                      (13776, 3) SMPL faces

Recipe (as SNARF): the scan of a frame is ``v_posed - transl`` with SMPL's faces (global translation
removed); bone transforms come from our SMPL forward pass with the subject's minimal body as
``v_template``, zero betas and the frame's ``pose``, canonical-to-posed relative to the star pose
(:mod:`invskin.body.smpl`). The prior is that minimal body in the star pose with SMPL's weights.
The registered meshes share one topology, so the dataset also gets known correspondences
(:func:`set_registered_correspondence`): vertex ``i`` is the same point of the clothing in every frame.

Split (UNIF's protocol, seeded): the subject+outfit's clips are sorted, shuffled with
``numpy.random.default_rng(seed)``; the first ``floor(0.8 n)`` clips (at least 1, at most n - 1)
are training motions, the rest ``test-out``. In a training clip, frame positions ``k`` with
``k % frame_interval == 0`` are ``train`` and ``k % frame_interval == frame_interval // 2`` are
``test-within``; test-out clips keep every ``frame_interval``-th frame. Other frames are not
converted. ``test_out_motions`` overrides the random choice.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from invskin.body.smpl import SMPLFileError, SMPLModel, find_smpl_file
from invskin.data.format import BodyPrior, DataError, Dataset, DatasetWriter
from invskin.data.loaders.common import (
    ConversionReport,
    FrameJob,
    check_array,
    interval_split,
    load_npz,
    load_plain_pickle,
    num_train_clips,
    report_info,
    run_frames,
    safe_frame_id,
    scan_to_metres,
    written_splits,
)
from invskin.geometry import unpose
from invskin.mesh.io import TriMesh


def cape_clips(cape_root: Path, subject: str, outfit: str) -> dict[str, list[Path]]:
    """``{motion: sorted frame files}`` of one subject + outfit (error lists what exists)."""
    subject_dir = cape_root / "sequences" / subject
    if not subject_dir.is_dir():
        sequences = cape_root / "sequences"
        found = (
            sorted(p.name for p in sequences.iterdir() if p.is_dir()) if sequences.is_dir() else []
        )
        raise DataError(
            f"{subject_dir} does not exist; pass the CAPE release folder (holding sequences/, "
            f"minimal_body_shape/, misc/) and one of its subjects: {found}"
        )
    clips = {}
    for clip in sorted(subject_dir.iterdir()):
        if clip.is_dir() and clip.name.startswith(f"{outfit}_"):
            clips[clip.name[len(outfit) + 1 :]] = sorted(clip.glob("*.npz"))
    if not clips:
        outfits = sorted({p.name.split("_")[0] for p in subject_dir.iterdir() if p.is_dir()})
        raise DataError(
            f"{subject_dir} has no clips of outfit {outfit!r} (folders {outfit}_<motion>); "
            f"its outfits are {outfits}"
        )
    empty = [motion for motion, files in clips.items() if not files]
    if empty:
        raise DataError(
            f"{subject_dir}: clips {[f'{outfit}_{m}' for m in empty]} hold no .npz frames; "
            "remove them or re-download the CAPE release"
        )
    return clips


def split_clips(
    motions: list[str],
    test_out_fraction: float = 0.2,
    seed: int = 0,
    test_out_motions: list[str] | None = None,
) -> tuple[list[str], list[str]]:
    """(training motions, test-out motions), see the module docstring."""
    if test_out_motions is not None:
        unknown = sorted(set(test_out_motions) - set(motions))
        if unknown:
            raise DataError(f"test_out_motions {unknown} are not clips of this outfit: {motions}")
        return [m for m in motions if m not in test_out_motions], list(test_out_motions)
    order = [motions[i] for i in np.random.default_rng(seed).permutation(len(motions))]
    keep = num_train_clips(len(order), test_out_fraction)
    return order[:keep], order[keep:]


def convert_cape(
    cape_root: Path | str,
    out: Path | str,
    smpl_model_path: Path | str,
    subject: str,
    outfit: str,
    *,
    frame_interval: int = 10,
    test_out_fraction: float = 0.2,
    test_out_motions: list[str] | None = None,
    seed: int = 0,
    gender: str | None = None,
    skip_bad_frames: bool = False,
    progress: bool = True,
    name: str | None = None,
) -> Dataset:
    """Convert CAPE ``subject`` + ``outfit`` into an invskin dataset at ``out``; return it.

    ``smpl_model_path`` is the user's SMPL model file, or a folder with one per gender (the
    subject's gender comes from ``misc/subj_genders.pkl`` unless ``gender`` is given).
    """
    cape_root = Path(cape_root)
    clips = cape_clips(cape_root, subject, outfit)
    misc = cape_root / "misc"
    if gender is None:
        genders = load_plain_pickle(misc / "subj_genders.pkl", "CAPE's {subject: gender} dict")
        if not isinstance(genders, dict) or subject not in genders:
            raise DataError(
                f"{misc / 'subj_genders.pkl'} has no gender for subject {subject!r}; "
                "pass gender='male' or 'female'"
            )
        gender = str(genders[subject])
    try:
        model = SMPLModel.load(find_smpl_file(smpl_model_path, gender))
    except SMPLFileError as error:
        raise DataError(str(error)) from error

    faces_path = misc / "smpl_tris.npy"
    faces = _load_npy(faces_path, (None, 3), "SMPL's faces (13776, 3)").astype(np.int64)
    minimal_path = cape_root / "minimal_body_shape" / subject / f"{subject}_minimal.npy"
    minimal = _load_npy(minimal_path, (model.num_vertices, 3), "the subject's minimal body")
    if faces.min() < 0 or faces.max() >= model.num_vertices:
        raise DataError(
            f"{faces_path}: face indices out of range for {model.num_vertices} vertices"
        )
    template = torch.from_numpy(minimal)

    train_motions, test_motions = split_clips(
        list(clips), test_out_fraction, seed, test_out_motions
    )
    splits: dict[str, list[str]] = {"train": [], "test-within": [], "test-out": []}
    jobs: list[FrameJob] = []
    params: dict[str, tuple] = {}
    for motion in train_motions + test_motions:
        files = clips[motion]
        kept, held = interval_split(len(files), frame_interval)
        if motion in test_motions:
            chosen = [(k, "test-out") for k in kept]
        else:
            chosen = sorted([(k, "train") for k in kept] + [(k, "test-within") for k in held])
        for k, split in chosen:
            frame_id = safe_frame_id(f"{motion}_{_frame_number(files[k])}")
            splits[split].append(frame_id)
            load = _frame_loader(files[k], frame_id, model, template, faces, params)
            jobs.append(FrameJob(frame_id, files[k], motion, load))

    skeleton = model.skeleton(v_template=template)
    prior = BodyPrior(
        vertices=model.canonical_vertices(v_template=template).float(),
        faces=torch.from_numpy(faces),
        weights=model.weights.float(),
    )
    info = {
        "dataset": "CAPE",
        "subject": subject,
        "outfit": outfit,
        "gender": gender,
        "smpl_model": Path(model.source).name,
        "canonical_pose": "star: SMPL hips at +-pi/6 about z",
        "split": (
            f"clips shuffled with seed {seed}; train motions {sorted(train_motions)}, test-out "
            f"motions {sorted(test_motions)}; frame_interval {frame_interval}"
        ),
    }
    out = Path(out)
    report = ConversionReport()
    with DatasetWriter(
        out,
        name or f"cape-{subject}-{outfit}",
        skeleton,
        prior=prior,
        source=f"CAPE {cape_root} subject {subject} outfit {outfit}",
        info=info,
    ) as writer:
        run_frames(
            writer,
            jobs,
            source=cape_root / "sequences" / subject,
            skip_bad_frames=skip_bad_frames,
            report=report,
            progress=progress,
            total=len(jobs),
        )
        writer.set_splits(written_splits(splits, report))
        ids = writer.frame_ids
        set_registered_correspondence(writer, faces, params, ids, splits["train"])
        writer.set_body_params(
            pose=np.stack([params[i][0] for i in ids]).astype(np.float32),
            transl=np.stack([params[i][1] for i in ids]).astype(np.float32),
        )
        writer.info.update(report_info(report))
        return writer.finish()


def set_registered_correspondence(
    writer: DatasetWriter,
    faces: np.ndarray,
    params: dict[str, tuple],
    ids: list[str] | tuple[str, ...],
    train_ids: list[str],
) -> None:
    """Known correspondences of registered meshes (one topology in every frame): vertex ``i`` of
    every scan is the same material point. Its canonical position is the mean, over the written
    ``train`` frames, of the scan's vertex unposed by SMPL's weights (test frames do not shape it);
    its posed positions are the scans' vertices."""
    written = set(ids)
    written_train = [i for i in train_ids if i in written]
    if not written_train:
        return
    canonical = np.mean([params[i][3] for i in written_train], axis=0)
    writer.set_correspondence(canonical, faces, np.stack([params[i][2] for i in ids]))


def _frame_number(path: Path) -> str:
    """``longshort_ATUsquat.000123.npz`` -> ``000123`` (the whole stem if there is no dot)."""
    return path.stem.rsplit(".", 1)[-1]


def _load_npy(path: Path, shape: tuple[int | None, ...], what: str) -> np.ndarray:
    if not path.is_file():
        raise DataError(f"{path} is missing; expected {what} (part of the CAPE release)")
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise DataError(f"{path} is not a readable .npy file ({error}); expected {what}") from error
    return check_array({"array": array}, "array", shape, path)


def _read_frame(path: Path, num_vertices: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    with load_npz(path, "a CAPE frame with v_posed, pose, transl") as data:
        v_posed = check_array(data, "v_posed", (num_vertices, 3), path)
        pose = check_array(data, "pose", (None,), path)
        transl = check_array(data, "transl", (3,), path)
    return v_posed, pose, transl


def _frame_loader(
    path: Path,
    frame_id: str,
    model: SMPLModel,
    template: torch.Tensor,
    faces: np.ndarray,
    params: dict[str, tuple],
) -> Callable[[], tuple[TriMesh, np.ndarray]]:
    def load() -> tuple[TriMesh, np.ndarray]:
        v_posed, pose, transl = _read_frame(path, model.num_vertices)
        if pose.shape != (3 * model.num_joints,):
            raise DataError(
                f"{path}: 'pose' has {pose.shape[0]} values for {model.num_joints} SMPL joints "
                f"(expected {3 * model.num_joints}); is this SMPL-H/SMPL-X data?"
            )
        scan = scan_to_metres(TriMesh(v_posed - transl, faces), str(path), units="m")
        transforms = model.bone_transforms(torch.from_numpy(pose), v_template=template)
        vertices = torch.as_tensor(scan.vertices, dtype=torch.float64)
        unposed = unpose(vertices, model.weights.double(), transforms.double())
        params[frame_id] = (pose, transl, scan.vertices, unposed.numpy())
        return scan, transforms.numpy()

    return load
