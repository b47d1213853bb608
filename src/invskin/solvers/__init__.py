"""Root finding: batched Broyden, inverse linear blend skinning, implicit gradients through roots."""

from invskin.solvers.broyden_solver import RootResult, broyden
from invskin.solvers.inverse_skinning import (
    InverseSkinningResult,
    apply_implicit_correction,
    default_init_bones,
    implicit_correction,
    implicit_roots,
    initial_guesses,
    inverse_lbs,
    pointwise_jacobian,
)

__all__ = [
    "InverseSkinningResult",
    "RootResult",
    "apply_implicit_correction",
    "broyden",
    "default_init_bones",
    "implicit_correction",
    "implicit_roots",
    "initial_guesses",
    "inverse_lbs",
    "pointwise_jacobian",
]
