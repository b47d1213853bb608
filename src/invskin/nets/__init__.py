"""Neural building blocks: pose encoder, PIN (invertible), occupancy SIREN, skinning-weight fields."""

from invskin.nets.mlp import Mlp
from invskin.nets.pin import (
    PIN,
    AffineCoupling,
    AnchoredCoupling,
    CouplingKind,
    PINConfig,
    PINOutput,
    PoseAwareCoupling,
    SplineCoupling,
    make_coupling,
)
from invskin.nets.pose_encoder import PoseCode, PoseEncoder, bone_features
from invskin.nets.siren import Siren, SirenConfig
from invskin.nets.skinning_field import (
    NearestVertexWeights,
    PriorFitConfig,
    SkinningField,
    SkinningFieldConfig,
    SkinningGrid,
    SkinningWeights,
    WeightField,
    nearest_vertex_weights,
)

__all__ = [
    "PIN",
    "Mlp",
    "PINConfig",
    "PINOutput",
    "PoseAwareCoupling",
    "AffineCoupling",
    "SplineCoupling",
    "AnchoredCoupling",
    "CouplingKind",
    "make_coupling",
    "PoseCode",
    "PoseEncoder",
    "PriorFitConfig",
    "Siren",
    "SirenConfig",
    "SkinningField",
    "SkinningFieldConfig",
    "SkinningGrid",
    "SkinningWeights",
    "WeightField",
    "bone_features",
    "NearestVertexWeights",
    "nearest_vertex_weights",
]
