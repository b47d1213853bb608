"""Skeletons and body models: bones, canonical poses and per-vertex skinning weights."""

from invskin.body.skeleton import Skeleton, merge_weights

__all__ = ["Skeleton", "merge_weights"]
