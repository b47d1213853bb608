"""Helpers that build small data fixtures: skeletons, meshes, invskin datasets, fake SMPL files.

The fake SMPL model has SMPL's layout (24 joints, SMPL kinematic tree, 207 pose blend-shape
columns) but only a few hundred vertices and random blend shapes; it is made by the tests, never a
real SMPL file.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch
import trimesh

from invskin.body import Skeleton
from invskin.data.format import BodyPrior, Dataset, DatasetWriter
from invskin.geometry import identity_transforms, make_transform
from invskin.mesh.io import TriMesh

# SMPL's kinematic tree (parent of each of the 24 joints), a public fact of the model layout.
SMPL_PARENTS = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21)

# Rough SMPL-like T-pose joint positions (metres, y up, the person faces +z, left is +x).
SMPL_LIKE_JOINTS = np.array(
    [
        [0.0, 0.0, 0.0],  # pelvis
        [0.08, -0.08, 0.0],  # left hip
        [-0.08, -0.08, 0.0],  # right hip
        [0.0, 0.1, 0.0],  # spine1
        [0.1, -0.45, 0.0],  # left knee
        [-0.1, -0.45, 0.0],  # right knee
        [0.0, 0.25, 0.0],  # spine2
        [0.1, -0.85, 0.0],  # left ankle
        [-0.1, -0.85, 0.0],  # right ankle
        [0.0, 0.3, 0.0],  # spine3
        [0.1, -0.9, 0.1],  # left foot
        [-0.1, -0.9, 0.1],  # right foot
        [0.0, 0.5, 0.0],  # neck
        [0.08, 0.42, 0.0],  # left collar
        [-0.08, 0.42, 0.0],  # right collar
        [0.0, 0.6, 0.0],  # head
        [0.18, 0.45, 0.0],  # left shoulder
        [-0.18, 0.45, 0.0],  # right shoulder
        [0.45, 0.45, 0.0],  # left elbow
        [-0.45, 0.45, 0.0],  # right elbow
        [0.7, 0.45, 0.0],  # left wrist
        [-0.7, 0.45, 0.0],  # right wrist
        [0.78, 0.45, 0.0],  # left hand
        [-0.78, 0.45, 0.0],  # right hand
    ]
)


def chain_skeleton(num_bones: int = 3) -> Skeleton:
    """A vertical chain of bones 0.3 m apart, root at the origin."""
    translations = torch.zeros(num_bones, 3)
    translations[:, 1] = torch.arange(num_bones) * 0.3
    canonical = make_transform(torch.eye(3).expand(num_bones, 3, 3), translations)
    return Skeleton(
        names=tuple(f"bone{j}" for j in range(num_bones)),
        parents=tuple(range(-1, num_bones - 1)),
        canonical=canonical,
    )


def sphere(radius: float = 0.5, center: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> TriMesh:
    """A closed, outward-facing icosphere (642 vertices)."""
    mesh = trimesh.creation.icosphere(subdivisions=3, radius=radius)
    return TriMesh(np.asarray(mesh.vertices) + np.asarray(center), np.asarray(mesh.faces))


def frame_transforms(num_bones: int, shift: float) -> torch.Tensor:
    """(J, 4, 4) transforms: every bone translated by ``shift`` along x."""
    transforms = identity_transforms(num_bones)
    transforms[:, 0, 3] = shift
    return transforms


def write_dataset(
    out: Path, num_frames: int = 4, num_bones: int = 3, with_extras: bool = True
) -> Dataset:
    """A small valid dataset: spheres shifted along x; two motions; standard splits."""
    skeleton = chain_skeleton(num_bones)
    prior = None
    if with_extras:
        body = sphere(0.4)
        weights = torch.full((body.num_vertices, num_bones), 1.0 / num_bones)
        prior = BodyPrior(
            torch.from_numpy(body.vertices).float(), torch.from_numpy(body.faces), weights
        )
    with DatasetWriter(out, "tiny", skeleton, prior=prior, source="tests") as writer:
        posed = []
        for f in range(num_frames):
            shift = 0.1 * f
            scan = sphere(0.5, (shift, 0.0, 0.0))
            motion = "walk" if f < num_frames - 1 else "jump"
            writer.add_frame(f"{motion}_{f:03d}", scan, frame_transforms(num_bones, shift), motion)
            posed.append(scan.vertices)
        ids = writer.frame_ids
        writer.set_splits({"train": ids[:-2], "test-within": ids[-2:-1], "test-out": ids[-1:]})
        if with_extras:
            base = sphere(0.5)
            writer.set_correspondence(base.vertices, base.faces, np.stack(posed))
            writer.set_body_params(pose=np.zeros((num_frames, 72)))
        return writer.finish()


def fake_smpl_arrays(
    num_vertices: int = 300, num_betas: int = 10, seed: int = 0, blend_scale: float = 0.01
) -> dict[str, np.ndarray]:
    """Arrays of a fake SMPL model in SMPL's layout and dtypes (random, few vertices).

    Vertices are scattered around the SMPL-like joints; each vertex is skinned to its nearest joint
    (weight 0.8) and that joint's parent (0.2), or 1.0 for the root's vertices.
    """
    rng = np.random.default_rng(seed)
    num_joints = len(SMPL_PARENTS)
    owner = np.arange(num_vertices) % num_joints
    v_template = SMPL_LIKE_JOINTS[owner] + rng.normal(scale=0.03, size=(num_vertices, 3))
    weights = np.zeros((num_vertices, num_joints))
    for v, j in enumerate(owner):
        parent = SMPL_PARENTS[j]
        if parent < 0:
            weights[v, j] = 1.0
        else:
            weights[v, j], weights[v, parent] = 0.8, 0.2
    # J_regressor: each joint is the mean of its own vertices, offset to hit the joint exactly.
    regressor = np.zeros((num_joints, num_vertices))
    for j in range(num_joints):
        members = np.flatnonzero(owner == j)
        regressor[j, members] = 1.0 / len(members)
    v_template += SMPL_LIKE_JOINTS[owner] - (regressor @ v_template)[owner]
    kintree = np.array(
        [[4294967295] + list(SMPL_PARENTS[1:]), list(range(num_joints))], dtype=np.int64
    )
    faces = rng.integers(0, num_vertices, size=(2 * num_vertices, 3)).astype(np.uint32)
    return {
        "v_template": v_template,
        "shapedirs": rng.normal(scale=blend_scale, size=(num_vertices, 3, num_betas)),
        "posedirs": rng.normal(scale=blend_scale, size=(num_vertices, 3, 9 * (num_joints - 1))),
        "J_regressor": regressor,
        "weights": weights,
        "kintree_table": kintree,
        "f": faces,
    }


def write_fake_smpl(path: Path, **kwargs: object) -> Path:
    """Write a fake SMPL model file (.npz, or .pkl with plain numpy arrays) and return its path."""
    arrays = fake_smpl_arrays(**kwargs)  # type: ignore[arg-type]
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".pkl":
        with open(path, "wb") as handle:
            pickle.dump(arrays, handle)
    else:
        np.savez(path, **arrays)
    return path


def write_cape(
    root: Path,
    smpl_dir: Path,
    subject: str = "00032",
    outfit: str = "longshort",
    frames_per_clip: dict[str, int] | None = None,
    gender: str = "male",
    seed: int = 0,
) -> dict[str, dict[str, np.ndarray]]:
    """A CAPE-release-shaped folder made with the fake SMPL model; returns the frames written.

    Frames are ``{file stem: {"pose", "transl", "v_posed"}}``; the fake model is saved as
    ``smpl_dir/SMPL_<GENDER>.npz``.
    """
    from invskin.body.smpl import SMPLModel

    frames_per_clip = frames_per_clip or {"ATUsquat": 4, "hips": 4, "pose_model": 4}
    arrays = fake_smpl_arrays()
    write_fake_smpl(smpl_dir / f"SMPL_{gender.upper()}.npz")
    model = SMPLModel.from_arrays(arrays)
    rng = np.random.default_rng(seed)
    minimal = arrays["v_template"] * 1.05
    (root / "minimal_body_shape" / subject).mkdir(parents=True)
    np.save(root / "minimal_body_shape" / subject / f"{subject}_minimal.npy", minimal)
    (root / "misc").mkdir(parents=True)
    np.save(root / "misc" / "smpl_tris.npy", arrays["f"].astype(np.int64))
    with open(root / "misc" / "subj_genders.pkl", "wb") as handle:
        pickle.dump({subject: gender, "99999": "female"}, handle)
    written = {}
    for motion, count in frames_per_clip.items():
        clip = root / "sequences" / subject / f"{outfit}_{motion}"
        clip.mkdir(parents=True)
        for k in range(count):
            pose = rng.normal(scale=0.3, size=72)
            transl = rng.normal(scale=0.5, size=3)
            out = model(
                torch.from_numpy(pose),
                transl=torch.from_numpy(transl),
                v_template=torch.from_numpy(minimal),
            )
            stem = f"{outfit}_{motion}.{k + 1:06d}"
            frame = {"pose": pose, "transl": transl, "v_posed": out.vertices.numpy()}
            np.savez(clip / f"{stem}.npz", **frame)
            written[stem] = frame
    # A clip of another outfit, which must be ignored.
    other = root / "sequences" / subject / "shortshort_hips"
    other.mkdir(parents=True)
    return written


def write_obj(path: Path, mesh: TriMesh) -> None:
    """A plain-text OBJ (1-based faces), as scanners export."""
    lines = [f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in mesh.vertices]
    lines += [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in mesh.faces]
    path.write_text("\n".join(lines) + "\n")


def write_clothseq(
    style_dir: Path,
    smpl_dir: Path,
    num_frames: int = 10,
    millimetres: bool = False,
    with_frames: bool = True,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """A ClothSeq style folder: ``scans/%06d.obj`` spheres at ``trans`` + registration npz."""
    rng = np.random.default_rng(seed)
    write_fake_smpl(smpl_dir / "SMPL_MALE.npz")
    write_fake_smpl(smpl_dir / "SMPL_FEMALE.npz", seed=1)
    (style_dir / "scans").mkdir(parents=True)
    thetas = rng.normal(scale=0.3, size=(num_frames, 72))
    trans = rng.normal(scale=0.2, size=(num_frames, 3))
    scale = 1000.0 if millimetres else 1.0
    for k in range(num_frames):
        body = sphere(0.6, tuple(trans[k]))
        write_obj(style_dir / "scans" / f"{k:06d}.obj", TriMesh(body.vertices * scale, body.faces))
    registration = {"betas": rng.normal(size=10), "thetas": thetas, "trans": trans}
    if with_frames:
        registration["frames"] = np.arange(num_frames)
    np.savez(style_dir / "smpl_registrations.npz", **registration)
    return registration


def write_plain_folder(src: Path, num_frames: int = 4, num_bones: int = 3) -> np.ndarray:
    """A plain input folder: skeleton.json, bone_transforms.npz, meshes/walk_%03d.ply, splits."""
    from invskin.mesh.io import save_mesh

    (src / "meshes").mkdir(parents=True)
    chain_skeleton(num_bones).save(src / "skeleton.json")
    transforms = np.stack([frame_transforms(num_bones, 0.1 * f).numpy() for f in range(num_frames)])
    np.savez(src / "bone_transforms.npz", transforms=transforms)
    for f in range(num_frames):
        save_mesh(src / "meshes" / f"walk_{f:03d}.ply", sphere(0.5, (0.1 * f, 0.0, 0.0)))
    return transforms
