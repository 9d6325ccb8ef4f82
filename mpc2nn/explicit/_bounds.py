"""The a-posteriori error bound of a dual iterate (duality gap with a feasible point)."""

from __future__ import annotations

import numpy as np
import scipy.optimize

from ..qp import CondensedQP

__all__ = ["dual_gap_bound", "ROUNDING_SLACK"]


#: Relative allowance for float64 rounding added to the a-posteriori bound.
ROUNDING_SLACK = 1e-12
#: Upper bound on the radius variable of the Chebyshev-centre LP: it keeps the LP bounded where the
#: feasible set is unbounded (any centre with a positive radius serves as the segment's end point).
CHEBYSHEV_RADIUS_CAP = 1.0


def dual_gap_bound(qp: CondensedQP, X: np.ndarray, lam: np.ndarray, U_out: np.ndarray) -> np.ndarray:
    """Per-sample bound on ``‖U_out - U*‖∞`` from a dual point ``λ >= 0``.

    With ``U(λ) = -H⁻¹(Fx + Gᵀλ)`` (the minimiser of the Lagrangian) and any
    feasible ``Ũ`` (``GŨ <= w + Ex``), strong convexity of the Lagrangian and
    weak duality give

        ½‖U(λ) - U*‖²_H  <=  f(Ũ) - L(U(λ), λ)  =  λᵀ(w + Ex - GŨ) + ½‖Ũ - U(λ)‖²_H,

    (both terms are nonnegative, no cancellation), and
    ``|e_i| <= sqrt((H⁻¹)_ii) ‖e‖_H``. ``Ũ`` is ``U(λ)`` or ``U_out`` when
    feasible, else the point of the segment towards a Chebyshev centre of the
    feasible set (one LP per such state) where it becomes feasible. The bound
    is ``‖U_out - U(λ)‖∞ + max_i sqrt((H⁻¹)_ii) sqrt(2·gap)``; it assumes only
    ``λ >= 0``; :data:`ROUNDING_SLACK` ``· max(1, ‖U_out‖∞)`` is added for float64 rounding. Where the
    feasible set has no interior the bound is ``inf`` unless a candidate is feasible.

    For a QP with an output map ``U = T z`` the bound also holds for ``‖T z - T z*‖∞``:
    each row of ``T`` (move blocking, slacks dropped) is a unit vector.

    Parameters
    ----------
    qp : CondensedQP
        The QP (unpruned: the bound refers to its solution).
    X : array_like, shape (B, n_θ) or (n_θ,)
        Parameters (states for a plain problem).
    lam : array_like, shape (B, m)
        Dual point; negative entries are clipped to 0.
    U_out : array_like, shape (B, n_z)
        The decision vector to bound.

    Returns
    -------
    ndarray, shape (B,)
        Upper bounds on ``‖U_out - z*‖∞`` (``inf`` where none could be proved).
    """
    X = qp.check_parameters(X)
    lam = np.maximum(np.asarray(lam, float), 0.0)
    U_out = np.asarray(U_out, float)
    Hinv = qp.H_inv
    U_l = -(X @ qp.F.T + lam @ qp.G) @ Hinv
    h = qp.w + X @ qp.E.T
    c_H = float(np.sqrt(np.diag(Hinv)).max())
    best = np.full(X.shape[0], np.inf)
    centre: dict[int, np.ndarray | None] = {}
    for cand in (U_l, U_out):
        s = h - cand @ qp.G.T
        viol = np.maximum(-s, 0.0)
        U_t = cand.copy()
        for i in (int(k) for k in np.flatnonzero(viol.max(axis=1, initial=0.0) > 0)):
            if i not in centre:
                centre[i] = _chebyshev_centre(qp, h[i])
            Uc = centre[i]
            if Uc is None:
                U_t[i] = np.nan
                continue
            sc = h[i] - qp.G @ Uc
            rows = viol[i] > 0
            theta = float(np.max(viol[i, rows] / (viol[i, rows] + sc[rows])))
            U_t[i] = cand[i] + theta * (Uc - cand[i])
        s_t = np.maximum(h - U_t @ qp.G.T, 0.0)
        d = U_t - U_l
        gap = np.einsum("bi,bi->b", lam, s_t) + 0.5 * np.einsum("bi,ij,bj->b", d, qp.H, d)
        with np.errstate(invalid="ignore"):
            b = (np.abs(U_out - U_l).max(axis=1, initial=0.0) + c_H * np.sqrt(2.0 * np.maximum(gap, 0.0))
                 + ROUNDING_SLACK * np.maximum(1.0, np.abs(U_out).max(axis=1, initial=0.0)))
        best = np.fmin(best, np.where(np.isnan(b), np.inf, b))
    return best


def _chebyshev_centre(qp: CondensedQP, h: np.ndarray) -> np.ndarray | None:
    """A point of ``{z : Gz <= h}`` with the largest normalised slack (``None`` if that slack is <= 0)."""
    n = qp.n_z
    norms = np.linalg.norm(qp.G, axis=1)
    c = np.zeros(n + 1)
    c[-1] = -1.0
    A = np.hstack([qp.G, norms[:, None]])
    res = scipy.optimize.linprog(c, A_ub=A, b_ub=h, bounds=[(None, None)] * n + [(None, CHEBYSHEV_RADIUS_CAP)],
                                 method="highs")
    if res.status != 0 or res.x[-1] <= 0:
        return None
    return res.x[:n]
