"""A fresh model for a dataset: its skeleton and skinning-weight prior."""

from __future__ import annotations

from typing import Any

from invskin.body import Skeleton
from invskin.models.animatable import AnimatableModel
from invskin.models.config import ModelConfig


def build_model(config: ModelConfig, skeleton: Skeleton, prior: Any) -> AnimatableModel:
    """A fresh model for a dataset's skeleton and skinning-weight prior (``BodyPrior``)."""
    if prior is None:
        raise ValueError(
            "the dataset has no skinning-weight prior (prior.npz: a canonical body mesh with "
            "per-vertex weights); every method needs one to initialise skinning. Convert the data "
            "with a body model (see docs/data-format.md)"
        )
    return AnimatableModel(
        config, skeleton, prior.vertices.float(), prior.weights.float(), prior_faces=prior.faces
    )
