"""Broyden's method for many independent small (3D) root-finding problems at once.

Conventions: problems are rows of ``x0`` ``(*p, 3)``, flattened to ``M`` rows inside; the residual
function is called on the **active rows only**, as ``fn(x, rows)`` with ``x`` ``(m, 3)`` and
``rows`` ``(m,)`` their flat indices into ``M`` (so it can look up per-row targets), and returns the
residuals ``(m, 3)``. Each row carries its own inverse-Jacobian estimate ``(3, 3)``, updated by the
"good" Broyden rank-1 rule, batched:

    dx = -J_inv g;  J_inv += (dx - J_inv dg) (dx^T J_inv) / (dx^T J_inv dg)

A row stops when its residual norm falls below ``cvg_thresh`` (converged) or exceeds
``dvg_thresh`` (diverged), or after ``max_steps``. The iterate with the lowest residual is
returned. The solver runs without autograd (gradients through roots come from implicit
differentiation, :func:`invskin.solvers.inverse_skinning.implicit_correction`) and never writes
into its inputs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor

ResidualFn = Callable[[Float[Tensor, "m 3"], Int[Tensor, " m"]], Float[Tensor, "m 3"]]


@dataclass(frozen=True)
class RootResult:
    """Roots (best iterate per row), their residual norms, convergence flags, final ``J^-1``."""

    x: Float[Tensor, "*p 3"]
    residual_norm: Float[Tensor, "*p"]
    converged: Bool[Tensor, "*p"]
    inverse_jacobian: Float[Tensor, "*p 3 3"]


@torch.no_grad()
def broyden(
    fn: ResidualFn,
    x0: Float[Tensor, "*p 3"],
    jacobian_inv0: Float[Tensor, "*p 3 3"],
    max_steps: int = 50,
    cvg_thresh: float = 1e-5,
    dvg_thresh: float = 1.0,
) -> RootResult:
    """Solve ``fn(x) = 0`` row by row from ``x0`` with initial inverse Jacobians ``jacobian_inv0``."""
    shape = x0.shape[:-1]
    x = x0.detach().reshape(-1, 3).clone()
    jac_inv = jacobian_inv0.detach().reshape(-1, 3, 3).clone()
    rows = torch.arange(x.shape[0], device=x.device)
    g = fn(x, rows)
    best_x = x.clone()
    best_norm = g.norm(dim=-1)
    keep = (best_norm >= cvg_thresh) & (best_norm < dvg_thresh)
    rows, x_a, g_a, jac_a = rows[keep], x[keep], g[keep], jac_inv[keep]
    tiny = torch.finfo(x.dtype).tiny ** 0.5
    for _ in range(max_steps):
        if rows.numel() == 0:
            break
        dx = -(jac_a @ g_a[..., None])[..., 0]
        x_a = x_a + dx
        g_new = fn(x_a, rows)
        dg = g_new - g_a
        g_a = g_new
        # Good Broyden update of the inverse Jacobian; skipped where the denominator vanishes.
        jdg = (jac_a @ dg[..., None])[..., 0]
        v = (dx[..., None, :] @ jac_a)[..., 0, :]  # dx^T J_inv
        denom = (v * dg).sum(-1)
        ok = denom.abs() > tiny
        scale = torch.where(ok, 1.0 / torch.where(ok, denom, torch.ones_like(denom)), 0.0)
        jac_a = jac_a + (scale[:, None] * (dx - jdg))[..., :, None] * v[..., None, :]
        norm = g_a.norm(dim=-1)
        better = norm < best_norm[rows]
        best_norm[rows[better]] = norm[better]
        best_x[rows[better]] = x_a[better]
        jac_inv[rows] = jac_a
        keep = (norm >= cvg_thresh) & (norm < dvg_thresh) & torch.isfinite(norm)
        rows, x_a, g_a, jac_a = rows[keep], x_a[keep], g_a[keep], jac_a[keep]
    return RootResult(
        x=best_x.reshape(*shape, 3),
        residual_norm=best_norm.reshape(shape),
        converged=(best_norm < cvg_thresh).reshape(shape),
        inverse_jacobian=jac_inv.reshape(*shape, 3, 3),
    )
