"""Geometry core: pure functions for rotations, transforms, kinematics and skinning.

Everything here is stateless; modules elsewhere register buffers and call these. Conventions for the
whole package: metres, right-handed, y up, column vectors, 4x4 homogeneous transforms, bone
transforms canonical-to-posed.
"""

from invskin.geometry.kinematics import check_parents, forward_kinematics, local_from_world
from invskin.geometry.rotations import (
    axis_angle_to_matrix,
    matrix_to_axis_angle,
    matrix_to_quaternion,
    matrix_to_rotation_6d,
    quaternion_to_axis_angle,
    rotation_6d_offset,
    rotation_6d_to_matrix,
    skew,
)
from invskin.geometry.skinning import blend_transforms, lbs, lbs_jacobian, unpose
from invskin.geometry.transforms import (
    apply_pointwise_transform,
    apply_transform,
    identity_transforms,
    invert_affine,
    invert_rigid,
    make_transform,
    scale_translations,
    transforms_problem,
)

__all__ = [
    "apply_pointwise_transform",
    "apply_transform",
    "axis_angle_to_matrix",
    "blend_transforms",
    "check_parents",
    "forward_kinematics",
    "identity_transforms",
    "invert_affine",
    "invert_rigid",
    "lbs",
    "unpose",
    "lbs_jacobian",
    "local_from_world",
    "make_transform",
    "matrix_to_axis_angle",
    "matrix_to_quaternion",
    "matrix_to_rotation_6d",
    "rotation_6d_offset",
    "quaternion_to_axis_angle",
    "rotation_6d_to_matrix",
    "scale_translations",
    "skew",
    "transforms_problem",
]
