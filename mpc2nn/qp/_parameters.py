"""The layout of the QP parameter ``θ = (x, u_prev, x_ref, u_ref)``."""

from __future__ import annotations

import numpy as np

from ..problem import MPCProblem

__all__ = ["parameter_layout"]


def parameter_layout(problem: MPCProblem) -> tuple[list, tuple]:
    """``(sizes, (S_x, S_up, S_xr, S_ur))``: the parts of ``θ = (x, u_prev, x_ref, u_ref)`` the problem
    uses, and the matrices selecting each part from ``θ`` (zero for a part it does not use)."""
    n_x, n_u = problem.n_x, problem.n_u
    sizes = [("x", n_x)] + ([("u_prev", n_u)] if problem.uses_previous_input else []) + (
        [("x_ref", n_x), ("u_ref", n_u)] if problem.tracking else [])
    n_theta = sum(n for _, n in sizes)
    offsets = dict(zip([k for k, _ in sizes], np.cumsum([0] + [n for _, n in sizes])))
    selectors = []
    for k, n in (("x", n_x), ("u_prev", n_u), ("x_ref", n_x), ("u_ref", n_u)):
        S = np.zeros((n, n_theta))
        if k in offsets:
            S[:, offsets[k]:offsets[k] + n] = np.eye(n)
        selectors.append(S)
    return sizes, tuple(selectors)
