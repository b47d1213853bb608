"""Motions without a mapping file: skeleton families by name, structure, rest-posture alignment.

Ground truth is constructed: a humanoid rig in a star pose (arms 45 degrees down, legs 27 degrees
out, the anny rig's posture and names) receives motions of other families recorded from a T-pose;
the angles at knees and elbows of the retargeted rig must equal the source's, and the source's
T-pose must put the star-posed rig's arms level.
"""

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from invskin.body.anny_model import KEPT_BONES
from invskin.body.skeleton import Skeleton
from invskin.body.smpl import SMPL_JOINT_NAMES
from invskin.geometry import make_transform
from invskin.motion import load_motion
from invskin.motion.bvh import write_bvh
from invskin.motion.families import (
    chain_shift,
    detect_family,
    forward_direction,
    split_side,
    structure_match,
)

MIXAMO = (
    "Hips", "Spine", "Spine1", "Spine2", "Neck", "Head", "LeftShoulder", "LeftArm",
    "LeftForeArm", "LeftHand", "RightShoulder", "RightArm", "RightForeArm", "RightHand",
    "LeftUpLeg", "LeftLeg", "LeftFoot", "LeftToeBase", "RightUpLeg", "RightLeg", "RightFoot",
    "RightToeBase",
)  # fmt: skip
CMU = ("Hips", "LowerBack", "Spine", "Spine1", "Neck", "Head", "LeftShoulder", "LeftArm",
       "LeftForeArm", "LeftHand", "LeftUpLeg", "LeftLeg", "LeftFoot", "LeftToeBase")  # fmt: skip
RIGIFY = ("spine", "spine.001", "spine.002", "spine.003", "spine.004", "spine.006", "shoulder.L",
          "upper_arm.L", "forearm.L", "hand.L", "thigh.L", "shin.L", "foot.L", "toe.L")  # fmt: skip
HUMANOID = ("Hips", "Spine", "Chest", "UpperChest", "Neck", "Head", "Shoulder.L", "UpperArm.L",
            "LowerArm.L", "Hand.L", "UpperLeg.L", "LowerLeg.L", "Foot.L", "Toes.L")  # fmt: skip


def test_names_split_into_side_and_base() -> None:
    assert split_side("mixamorig:LeftUpLeg") == ("left", "upleg")
    assert split_side("upperleg01.L") == ("left", "upperleg01")
    assert split_side("L_Hip") == ("left", "hip")
    assert split_side("right_shoulder") == ("right", "shoulder")
    assert split_side("upper_arm.R") == ("right", "upperarm")
    assert split_side("spine.001") == (None, "spine001")
    assert split_side("Hips") == (None, "hips")


@pytest.mark.parametrize(
    ("names", "family"),
    [(SMPL_JOINT_NAMES, "smpl"), (KEPT_BONES, "anny"),
     (tuple(f"mixamorig:{n}" for n in MIXAMO), "mixamo"), (CMU, "bvh"), (RIGIFY, "rigify"),
     (HUMANOID, "humanoid"), (("root", "middle", "tip"), None)],
)  # fmt: skip
def test_families_are_detected(names, family) -> None:
    found, roles = detect_family(names)
    assert found == family
    if family is not None:
        assert names[roles["left_knee"]] in {
            "left_knee", "lowerleg01.L", "mixamorig:LeftLeg", "LeftLeg", "shin.L", "LowerLeg.L",
        }  # fmt: skip


# -- a star-posed anny-named rig and T-pose sources -----------------------------------------------

# anny's reduced rig: name -> (parent, T-pose position) in metres, y up, facing +z, left at +x.
T_POSE = {
    "root": (None, (0.0, 1.0, 0.0)),
    "upperleg01.L": ("root", (0.1, 0.95, 0.0)), "lowerleg01.L": ("upperleg01.L", (0.1, 0.5, 0.0)),
    "foot.L": ("lowerleg01.L", (0.1, 0.08, 0.0)),
    "upperleg01.R": ("root", (-0.1, 0.95, 0.0)),
    "lowerleg01.R": ("upperleg01.R", (-0.1, 0.5, 0.0)),
    "foot.R": ("lowerleg01.R", (-0.1, 0.08, 0.0)),
    "spine04": ("root", (0.0, 1.1, 0.0)), "spine02": ("spine04", (0.0, 1.25, 0.0)),
    "spine01": ("spine02", (0.0, 1.4, 0.0)),
    "clavicle.L": ("spine01", (0.05, 1.45, 0.0)), "upperarm01.L": ("clavicle.L", (0.2, 1.45, 0.0)),
    "lowerarm01.L": ("upperarm01.L", (0.48, 1.45, 0.0)),
    "wrist.L": ("lowerarm01.L", (0.74, 1.45, 0.0)),
    "clavicle.R": ("spine01", (-0.05, 1.45, 0.0)),
    "upperarm01.R": ("clavicle.R", (-0.2, 1.45, 0.0)),
    "lowerarm01.R": ("upperarm01.R", (-0.48, 1.45, 0.0)),
    "wrist.R": ("lowerarm01.R", (-0.74, 1.45, 0.0)),
    "neck01": ("spine01", (0.0, 1.5, 0.0)), "head": ("neck01", (0.0, 1.6, 0.0)),
}  # fmt: skip
ANNY_TO_MIXAMO = {
    "root": "Hips", "spine04": "Spine", "spine02": "Spine1", "spine01": "Spine2",
    "neck01": "Neck", "head": "Head", **{
        f"{a}.{s[0]}": f"{s}{b}" for s in ("Left", "Right") for a, b in (
            ("upperleg01", "UpLeg"), ("lowerleg01", "Leg"), ("foot", "Foot"),
            ("clavicle", "Shoulder"), ("upperarm01", "Arm"), ("lowerarm01", "ForeArm"),
            ("wrist", "Hand"))
    },
}  # fmt: skip
NAMES = tuple(KEPT_BONES)
PARENTS = tuple(-1 if T_POSE[n][0] is None else NAMES.index(T_POSE[n][0]) for n in NAMES)


def _positions(names=NAMES) -> np.ndarray:
    return np.array([T_POSE[n][1] for n in names], dtype=np.float64)


def _star_pose() -> np.ndarray:
    """The T-pose turned into anny's star pose: arms 45 degrees down, legs 27 degrees out."""
    pos = _positions()
    for side, sign in (("L", 1.0), ("R", -1.0)):
        for chain, pivot, angle in (
            (("lowerarm01", "wrist"), "upperarm01", -45.0),
            (("lowerleg01", "foot"), "upperleg01", 27.0),
        ):
            turn = Rotation.from_euler("z", sign * angle, degrees=True).as_matrix()
            origin = pos[NAMES.index(f"{pivot}.{side}")]
            for name in chain:
                j = NAMES.index(f"{name}.{side}")
                pos[j] = origin + turn @ (pos[j] - origin)
    return pos


def _skeleton(positions: np.ndarray) -> Skeleton:
    canonical = torch.stack(
        [make_transform(torch.eye(3), torch.tensor(p, dtype=torch.float32)) for p in positions]
    )
    return Skeleton(NAMES, PARENTS, canonical)


def _mixamo_bvh(path, angles_by_bone: dict[str, tuple[float, float, float]], frames: int = 3):
    """A Mixamo-named BVH of the T-pose rig (centimetres) with constant ZXY local angles."""
    names = [ANNY_TO_MIXAMO[n] for n in NAMES]
    pos = _positions()
    offsets = np.stack([pos[j] - (pos[p] if p >= 0 else 0) for j, p in enumerate(PARENTS)])
    angles = np.zeros((frames, len(NAMES), 3))
    for bone, zxy in angles_by_bone.items():
        angles[:, names.index(bone)] = zxy
    write_bvh(path, names, list(PARENTS), offsets * 100, angles,
              np.repeat(offsets[:1] * 100, frames, 0))  # fmt: skip


def _posed_joints(transforms: torch.Tensor, skeleton: Skeleton) -> np.ndarray:
    joints = skeleton.canonical[:, :3, 3].double()
    t = transforms.double()
    return (t[..., :3, :3] @ joints[:, :, None])[..., 0].numpy() + t[..., :3, 3].numpy()


def _angle(joints: np.ndarray, a: str, b: str, c: str) -> float:
    u = joints[NAMES.index(a)] - joints[NAMES.index(b)]
    v = joints[NAMES.index(c)] - joints[NAMES.index(b)]
    return float(np.degrees(np.arccos(u @ v / np.linalg.norm(u) / np.linalg.norm(v))))


def test_mixamo_bvh_t_pose_puts_the_star_posed_rig_in_a_t_pose(tmp_path, capsys) -> None:
    _mixamo_bvh(tmp_path / "t.bvh", {})
    star = _skeleton(_star_pose())
    posed = _posed_joints(load_motion(tmp_path / "t.bvh", star), star)[0]
    assert np.allclose(posed - posed[0], _positions() - _positions()[0], atol=1e-5)
    table = capsys.readouterr().err
    assert "families anny <- mixamo" in table and "upperleg01.L" in table and "LeftUpLeg" in table


def test_knee_and_elbow_angles_travel_across_families(tmp_path) -> None:
    # Knee bent 60 degrees (about x), elbow 50 degrees (about y: forward in the T-pose).
    _mixamo_bvh(tmp_path / "bend.bvh", {"LeftLeg": (0.0, 60.0, 0.0), "RightForeArm": (0, 0, 50)})
    star = _skeleton(_star_pose())
    posed = _posed_joints(load_motion(tmp_path / "bend.bvh", star, verbose=False), star)[0]
    knee = _angle(posed, "upperleg01.L", "lowerleg01.L", "foot.L")
    elbow = _angle(posed, "upperarm01.R", "lowerarm01.R", "wrist.R")
    assert knee == pytest.approx(180.0 - 60.0, abs=0.5)
    assert elbow == pytest.approx(180.0 - 50.0, abs=0.5)
    straight = _angle(posed, "upperleg01.R", "lowerleg01.R", "foot.R")
    assert straight == pytest.approx(180.0, abs=0.5)


def test_amass_t_pose_on_the_star_posed_anny_rig(tmp_path) -> None:
    poses = np.zeros((2, 72))
    poses[:, 0] = np.pi / 2  # SMPL's y-up body standing in AMASS's z-up world
    np.savez(tmp_path / "amass.npz", poses=poses, trans=np.zeros((2, 3)))
    star = _skeleton(_star_pose())
    posed = _posed_joints(load_motion(tmp_path / "amass.npz", star, verbose=False), star)[0]
    for side, sign in (("L", 1.0), ("R", -1.0)):
        arm = posed[NAMES.index(f"wrist.{side}")] - posed[NAMES.index(f"upperarm01.{side}")]
        leg = posed[NAMES.index(f"foot.{side}")] - posed[NAMES.index(f"upperleg01.{side}")]
        assert np.allclose(arm / np.linalg.norm(arm), [sign, 0.0, 0.0], atol=1e-5)
        assert np.allclose(leg / np.linalg.norm(leg), [0.0, -1.0, 0.0], atol=1e-5)


def test_mapping_file_still_overrides(tmp_path) -> None:
    import json

    _mixamo_bvh(tmp_path / "bend.bvh", {"LeftLeg": (0.0, 60.0, 0.0)})
    (tmp_path / "map.json").write_text(json.dumps({"bones": {"root": "Hips"}}))
    star = _skeleton(_star_pose())
    got = load_motion(tmp_path / "bend.bvh", star, tmp_path / "map.json")
    assert torch.allclose(got[:, 1:], torch.eye(4).expand_as(got[:, 1:]), atol=1e-5)


# -- structure ------------------------------------------------------------------------------------


def test_structure_match_pairs_renamed_limbs_by_side() -> None:
    pos = _positions()
    order = np.random.default_rng(0).permutation(len(NAMES))
    order = np.concatenate([[0], order[order != 0]])  # keep the root first
    inverse = np.argsort(order)
    parents = [-1 if PARENTS[o] < 0 else int(inverse[PARENTS[o]]) for o in order]
    matched = structure_match(PARENTS, _star_pose(), parents, pos[order])
    assert [order[m] for m in matched] == list(range(len(NAMES)))


def test_chain_shift_skips_an_extra_collar_or_toe() -> None:
    assert chain_shift(np.array([0.0, 0.3, 0.6]), np.array([0.0, 0.3, 0.6, 0.65])) == 0.0
    assert chain_shift(np.array([0.0, 0.3, 0.6]), np.array([0.0, 0.1, 0.4, 0.7])) == (
        pytest.approx(0.1)
    )


def test_forward_direction_from_the_toes() -> None:
    parents = [-1, 0, 1, 0, 3]
    positions = np.array(
        [[0, 1, 0], [0.1, 0.1, 0], [0.1, 0.0, 0.15], [-0.1, 0.1, 0], [-0.1, 0.0, 0.15]], float
    )
    assert np.allclose(forward_direction(parents, positions), [0, 0, 1])
    turned = positions @ Rotation.from_euler("y", 90, degrees=True).as_matrix().T
    assert np.allclose(forward_direction(parents, turned), [1, 0, 0], atol=1e-9)
    # Legs that end at the ankle, a little behind the knee (the anny rig): no facing from them.
    ankles = np.array(
        [[0, 1, 0], [0.1, 0.5, 0.0], [0.15, 0.05, -0.04], [-0.1, 0.5, 0], [-0.15, 0.05, -0.04]]
    )
    assert forward_direction(parents, ankles) is None
    # Short toe bones pointing down and forward (CesiumMan's, facing +x) still give the facing.
    toes = np.array(
        [[0, 1, 0], [0.0, 0.1, 0.1], [0.03, 0.035, 0.1], [0.0, 0.1, -0.1], [0.03, 0.035, -0.1]]
    )
    assert np.allclose(forward_direction(parents, toes), [1, 0, 0], atol=1e-9)


# -- a source with more spine joints than the target -----------------------------------------------


def _chain_world(heights: list[float], bends: dict[int, float]) -> np.ndarray:
    """World transforms of a vertical chain of joints at ``heights`` (x = 0), joint ``k`` bent by
    ``bends[k]`` degrees about z (the bend turns everything above it)."""
    world, rotation, position = [], np.eye(3), np.array([0.0, heights[0], 0.0])
    for k, height in enumerate(heights):
        if k:
            position = position + rotation @ np.array([0.0, height - heights[k - 1], 0.0])
        rotation = rotation @ Rotation.from_euler("z", bends.get(k, 0.0), degrees=True).as_matrix()
        world.append(np.eye(4))
        world[-1][:3, :3], world[-1][:3, 3] = rotation, position
    return np.stack(world)


def test_bends_of_source_joints_the_target_lacks_are_carried_by_the_chord() -> None:
    """A five-joint source spine bent at a joint the three-joint target has no bone for: the
    target's spine bone points along the source's chord (lower to upper spine joint), and its
    trunk (neck minus hips) within a degree of the source's, where the spine's own rotation alone
    (the bent joint is above it) would leave the target's trunk upright."""
    from invskin.motion.retarget import BoneMapping, Motion, retarget

    heights = [1.0, 1.1, 1.2, 1.3, 1.4]
    angles = (0.0, 25.0, -40.0)
    motion = Motion(
        names=("pelvis", "lower", "chest", "upper", "neck"),
        parents=(-1, 0, 1, 2, 3),
        rest=_chain_world(heights, {}),
        world=np.stack([_chain_world(heights, {2: angle}) for angle in angles]),
        fps=30.0,
        source="test",
    )
    canonical = torch.as_tensor(_chain_world([1.0, 1.1, 1.3, 1.4], {}), dtype=torch.float32)
    skeleton = Skeleton(("hips", "spine", "chest", "neck"), (-1, 0, 1, 2), canonical)
    mapping = BoneMapping({"hips": "pelvis", "spine": "lower", "chest": "upper", "neck": "neck"})
    posed = (retarget(motion, skeleton, mapping) @ canonical.double().numpy())[..., :3, 3]
    source = motion.world[:, [0, 1, 3, 4]][..., :3, 3]

    def directions(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        d = b - a
        return d / np.linalg.norm(d, axis=-1, keepdims=True)

    chord = (directions(posed[:, 1], posed[:, 2]) * directions(source[:, 1], source[:, 2])).sum(-1)
    assert np.allclose(chord, 1.0, atol=1e-9)
    trunk = (directions(posed[:, 0], posed[:, 3]) * directions(source[:, 0], source[:, 3])).sum(-1)
    assert np.degrees(np.arccos(np.clip(trunk, -1, 1))).max() < 1.0
    upright = directions(source[:, 0], source[:, 3])[:, 1]
    assert np.degrees(np.arccos(upright)).max() > 10.0


def test_amass_subject_rest_joints_from_an_smpl_model(tmp_path) -> None:
    """The subject's rest (from an SMPL-layout model and the file's betas) has its arms 30 degrees
    below level: the file's zero pose puts the star-posed anny rig's arms along the subject's rest
    arms, where a T-pose rest levels them; legs and knees stay as the rest has them."""
    from fixtures_data import fake_smpl_arrays
    from invskin.motion.amass import smpl_rest_joints

    arrays = fake_smpl_arrays()
    arrays["shapedirs"] = np.zeros_like(arrays["shapedirs"])  # the betas change nothing here
    owner = np.arange(len(arrays["v_template"])) % 24
    template = arrays["v_template"]
    for shoulder, chain, sign in ((16, (18, 20, 22), 1.0), (17, (19, 21, 23), -1.0)):
        turn = Rotation.from_euler("z", -sign * 30.0, degrees=True).as_matrix()
        pivot = arrays["J_regressor"][shoulder] @ template
        for j in chain:
            template[owner == j] = pivot + (template[owner == j] - pivot) @ turn.T
    np.savez(tmp_path / "SMPL_MALE.npz", **arrays)
    poses = np.zeros((2, 72))
    poses[:, 0] = np.pi / 2
    np.savez(tmp_path / "amass.npz", poses=poses, trans=np.zeros((2, 3)), betas=np.ones(16),
             gender=np.array("male"))  # fmt: skip
    rest = smpl_rest_joints(tmp_path / "amass.npz", tmp_path)
    assert np.allclose(rest, arrays["J_regressor"] @ template)
    star = _skeleton(_star_pose())
    posed = _posed_joints(
        load_motion(tmp_path / "amass.npz", star, verbose=False, smpl=tmp_path), star
    )[0]
    for side, shoulder, wrist in (("L", 16, 20), ("R", 17, 21)):
        arm = posed[NAMES.index(f"wrist.{side}")] - posed[NAMES.index(f"upperarm01.{side}")]
        expected = rest[wrist] - rest[shoulder]
        assert np.allclose(
            arm / np.linalg.norm(arm), expected / np.linalg.norm(expected), atol=1e-5
        )
        assert np.degrees(np.arcsin(-arm[1] / np.linalg.norm(arm))) == pytest.approx(30.0, abs=1.0)
    without = _posed_joints(load_motion(tmp_path / "amass.npz", star, verbose=False), star)[0]
    arm = without[NAMES.index("wrist.L")] - without[NAMES.index("upperarm01.L")]
    assert np.allclose(arm / np.linalg.norm(arm), [1.0, 0.0, 0.0], atol=1e-5)
