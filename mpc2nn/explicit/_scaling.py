"""Diagonal row scalings of the constraints, folded into the fixed weights of an unrolled network.

Scaling row ``i`` of ``Gz <= w + Eθ`` by ``r_i > 0`` changes neither the feasible set nor the solution,
and ADMM with a scalar penalty ``ρ`` on the scaled rows is ADMM with the per-row penalty ``ρ r_i²`` on
the original rows. Only positive *diagonal* scalings keep the projection a clamp (a ReLU) and the
fixed points where they are; a block preconditioner would move them.
"""

from __future__ import annotations

import numpy as np

from ..exceptions import ProblemDefinitionError
from ..qp import CondensedQP

__all__ = ["SCALINGS", "row_scaling", "theta_rows", "RUIZ_ITERATIONS"]

#: The row scalings by name:
#: ``"norm"`` rows at unit Euclidean norm (the construction of mpc2nn 0.x, ``ρ`` in units of ``trace(H)/m``);
#: ``"jacobi"`` rows at unit diagonal of the dual Hessian ``M = G H⁻¹ Gᵀ``;
#: ``"ruiz"`` OSQP-style Ruiz equilibration of the KKT matrix ``[[H, Gᵀ], [G, 0]]`` (its row factors);
#: ``"none"`` the rows as given (``ρ`` absolute, the plain ADMM of ReLU-QP and OSQP without scaling).
SCALINGS = ("norm", "jacobi", "ruiz", "none")

#: Sweeps of the Ruiz equilibration (OSQP's default is 10; 25 reaches its fixed point to ~1e-3 on the
#: public problems).
RUIZ_ITERATIONS = 25

#: Rows or columns whose infinity norm is below this are left unscaled by Ruiz (OSQP's ``MIN_SCALING``).
RUIZ_MIN_NORM = 1e-4


def theta_rows(qp: CondensedQP) -> np.ndarray:
    """``(m,)`` bool: the rows whose right-hand side depends on ``θ`` (state rows, rates at ``k = 0``)."""
    return np.abs(qp.E).max(axis=1, initial=0.0) > 0


def row_scaling(qp: CondensedQP, kind: str, state_rho: float = 1.0) -> np.ndarray:
    """``(m,)`` positive row factors ``r`` of the scaling ``kind`` (see :data:`SCALINGS`).

    ``"jacobi"`` and ``"ruiz"`` are normalised so that the geometric mean of ``r_i² M_ii`` is 1: a penalty
    ``ρ ≈ 1`` is then of the order of the inverse dual curvature. ``state_rho`` multiplies the penalty of
    the rows that depend on ``θ`` (:func:`theta_rows`), i.e. their factor by ``sqrt(state_rho)``.

    Parameters
    ----------
    qp : CondensedQP
        The QP whose rows are scaled.
    kind : str
        One of :data:`SCALINGS`.
    state_rho : float
        Penalty factor ``> 0`` of the rows that depend on ``θ``.

    Returns
    -------
    ndarray, shape (m,)
    """
    if kind not in SCALINGS:
        raise ProblemDefinitionError(f"scaling: expected one of {SCALINGS}, got {kind!r}")
    if qp.m == 0:
        return np.ones(0)
    G = qp.G
    norms = np.linalg.norm(G, axis=1)
    if kind == "none":
        r = np.ones(qp.m)
    elif kind == "norm":
        r = 1.0 / np.where(norms > 0, norms, 1.0)
    else:
        if kind == "jacobi":
            d = np.diag(qp.dual_hessian)
            r = 1.0 / np.sqrt(np.where(d > 0, d, 1.0))
        else:
            r = _ruiz(qp.H, G)
        d = np.diag(qp.dual_hessian)
        ok = d > 0
        if ok.any():
            r = r / np.exp(0.5 * np.mean(np.log(r[ok] ** 2 * d[ok])))
    return r * np.where(theta_rows(qp), np.sqrt(float(state_rho)), 1.0)


def _ruiz(H: np.ndarray, G: np.ndarray) -> np.ndarray:
    """Row factors ``E`` of the Ruiz equilibration ``[[DHD, DGᵀE], [EGD, 0]]`` (infinity norms towards 1)."""
    n, m = H.shape[0], G.shape[0]
    D, E = np.ones(n), np.ones(m)
    for _ in range(RUIZ_ITERATIONS):
        Hs = D[:, None] * H * D[None, :]
        Gs = E[:, None] * G * D[None, :]
        col = np.maximum(np.abs(Hs).max(axis=0), np.abs(Gs).max(axis=0, initial=0.0))
        row = np.abs(Gs).max(axis=1, initial=0.0)
        D = D / np.sqrt(np.where(col > RUIZ_MIN_NORM, col, 1.0))
        E = E / np.sqrt(np.where(row > RUIZ_MIN_NORM, row, 1.0))
    return E
