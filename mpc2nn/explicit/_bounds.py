"""A-posteriori error bounds of a network's iterate: the duality gap of its dual iterate with a feasible point,
and the KKT residuals of a point polished on its active set (checked in extended precision).
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.linalg
import scipy.optimize

from ..qp import CondensedQP

__all__ = ["dual_gap_bound", "kkt_bound", "ROUNDING_SLACK", "LD_UNIT"]


#: Relative allowance for float64 rounding added to the a-posteriori bounds (times ``max(1, ‖U_out‖∞)``): it
#: covers the float64 steps of the bounds and the rounding of the reference solutions they are checked against
#: (the certified exact solver and DAQP differ by up to 4e-12 on the double integrator, and the polished bound
#: is otherwise tight to ~1e-15).
ROUNDING_SLACK = 1e-10
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


#: Unit roundoff of the extended precision used to check a polished point (``np.longdouble``: 2⁻⁶⁴ on x86-64;
#: where it is plain float64 the bound is as rigorous, only less tight).
LD_UNIT = float(np.finfo(np.longdouble).eps) / 2.0
#: The active rows of a polished point are tightened by this many rounding bounds of their slack, so that
#: the point is feasible with room for the rounding of its check.
TIGHTEN = 8.0
#: Iterative-refinement steps of the polished KKT solve (residuals in extended precision).
REFINE_STEPS = 2


def kkt_bound(qp: CondensedQP, X: np.ndarray, active: np.ndarray, Z_out: np.ndarray) -> np.ndarray:
    """Per-sample bound on ``‖T z_out - T z*‖∞`` from a polished primal-dual point (tighter than the gap bound).

    For an active-set guess ``A`` (the sign of a network's layer state) the equality-constrained KKT system
    ``H z + Fθ + G_Aᵀ λ_A = 0``, ``G_A z = h_A - ε_A`` is solved (``ε_A`` a few rounding units, so that the
    point is strictly feasible on ``A``), refined with residuals in extended precision, and ``λ = max(λ_A, 0)``.
    For any feasible ``z̃`` and any ``λ >= 0`` with ``r = H z̃ + Fθ + Gᵀλ``, the KKT conditions of ``z*`` give

        ‖z̃ - z*‖²_H <= (z̃ - z*)ᵀ r + λᵀ(h - G z̃),  so  ‖z̃ - z*‖_H <= ‖r‖_{H⁻¹} + sqrt(λᵀ(h - G z̃)),

    and ``|tᵢᵀ(z_out - z*)| <= |tᵢᵀ(z_out - z̃)| + sqrt(tᵢᵀ H⁻¹ tᵢ) ‖z̃ - z*‖_H`` for each output row ``tᵢ``.
    Feasibility and ``r`` are checked in extended precision with a bound on their rounding errors, so the
    bound holds for the exact ``z*`` (``inf`` where the polished point is not feasible or anything is NaN);
    like :func:`dual_gap_bound` it adds :data:`ROUNDING_SLACK` ``· max(1, ‖z_out‖∞)``, which also covers the
    rounding of reference solutions it is compared with.
    With a correct active set the bound is the network's own error plus ~1e-9: it certifies tolerances that
    the square root of a duality gap cannot.

    Parameters
    ----------
    qp : CondensedQP
        The QP (the unpruned one: the bound is with respect to it).
    X : array_like, shape (B, n_θ)
        Parameters.
    active : ndarray of bool, shape (B, m)
        Active-set guesses.
    Z_out : ndarray, shape (B, n_z)
        The decision vectors to bound.

    Returns
    -------
    ndarray, shape (B,)
        The bounds (``inf`` where the polished point is not feasible or anything is NaN).
    """
    X = qp.check_parameters(X)
    B, m, n = X.shape[0], qp.m, qp.n_z
    active = np.asarray(active, bool).reshape(B, m)
    Z_out = np.asarray(Z_out, float).reshape(B, n)
    ld = np.longdouble
    H, F, G, E, w = (np.asarray(a, dtype=ld) for a in (qp.H, qp.F, qp.G, qp.E, qp.w))
    Xl = X.astype(ld)
    h = w + Xl @ E.T
    h_abs = np.abs(w) + np.abs(Xl) @ np.abs(E).T
    q = Xl @ F.T
    Z = np.zeros((B, n), dtype=ld)
    lam = np.zeros((B, m), dtype=ld)
    ok = np.all(np.isfinite(X), axis=1) & np.all(np.isfinite(Z_out), axis=1)
    keys, inverse = np.unique(np.packbits(active, axis=1), axis=0, return_inverse=True)
    inverse = inverse.ravel()
    for k in range(keys.shape[0]):
        idx = np.flatnonzero((inverse == k) & ok)
        if idx.size == 0:
            continue
        A = np.flatnonzero(active[idx[0]])
        z, lam_A, good = _polish(qp, H, G, A, q[idx], h[idx], h_abs[idx])
        Z[idx], ok[idx] = z, ok[idx] & good
        lam[np.ix_(idx, A)] = np.maximum(lam_A, 0)
    gam = lambda k: k * LD_UNIT / (1.0 - k * LD_UNIT)  # noqa: E731  (Higham's γ_k)
    s = h - Z @ G.T
    mu = gam(n + qp.n_theta + 2) * (h_abs + np.abs(Z) @ np.abs(G).T)
    feasible = np.all(s >= mu, axis=1)
    r = Z @ H + q + lam @ G
    dr = gam(n + qp.n_theta + m + 2) * (np.abs(Z) @ np.abs(H) + np.abs(Xl) @ np.abs(F).T + lam @ np.abs(G))
    eig = np.linalg.eigvalsh(qp.H)
    lo = eig[0] - 4 * n * np.finfo(float).eps * eig[-1]
    r_norm = np.sqrt(np.sum(((np.abs(r) + dr).astype(float)) ** 2, axis=1)) / np.sqrt(lo) if lo > 0 else np.inf
    gap = np.sum(lam * (np.maximum(s, 0) + mu), axis=1).astype(float) * (1 + gam(m + 1))
    e_H = (r_norm + np.sqrt(gap)) * (1 + 1e-12)
    T = np.eye(n) if qp.output_map is None else qp.output_map
    cond = eig[-1] / lo if lo > 0 else np.inf
    c = np.sqrt(np.einsum("ij,jk,ik->i", T, qp.H_inv, T) * (1 + 8 * n * np.finfo(float).eps * cond))
    d = np.abs((Z_out.astype(ld) - Z) @ np.asarray(T, dtype=ld).T).astype(float) * (1 + 1e-12)
    with np.errstate(invalid="ignore", over="ignore"):
        bound = (np.max(d + c[None, :] * e_H[:, None], axis=1, initial=0.0) * (1 + 1e-12)
                 + ROUNDING_SLACK * np.maximum(1.0, np.abs(Z_out).max(axis=1, initial=0.0)))
    bound = np.where(ok & feasible & np.isfinite(bound), bound, np.inf)
    return bound


def _polish(qp: CondensedQP, H, G, A: np.ndarray, q, h, h_abs):
    """``(z, λ_A, good)`` of ``H z + q + G_Aᵀλ_A = 0``, ``G_A z = h_A - ε_A`` for a batch with one active set."""
    ld = np.longdouble
    n, k = qp.n_z, A.size
    K = np.zeros((n + k, n + k))
    K[:n, :n] = qp.H
    K[:n, n:] = qp.G[A].T
    K[n:, :n] = qp.G[A]
    good = np.ones(q.shape[0], bool)
    try:
        with warnings.catch_warnings():  # a singular system (dependent active rows) is refused just below
            warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
            lu = scipy.linalg.lu_factor(K, check_finite=False)
        if not np.all(np.isfinite(lu[0])) or np.min(np.abs(np.diag(lu[0]))) <= 1e-14 * np.abs(K).max():
            raise np.linalg.LinAlgError
    except (np.linalg.LinAlgError, ValueError):
        return np.zeros((q.shape[0], n), dtype=ld), np.zeros((q.shape[0], k), dtype=ld), ~good
    rhs_z = -q
    # tighten the active rows by a few rounding units of their slack (computed at the first solution)
    sol = scipy.linalg.lu_solve(lu, np.hstack([rhs_z, h[:, A]]).astype(float).T, check_finite=False).T.astype(ld)
    z = sol[:, :n]
    eps = TIGHTEN * (n + q.shape[1] + 2) * LD_UNIT * (h_abs[:, A] + np.abs(z) @ np.abs(G[A]).T)
    rhs = np.hstack([rhs_z, h[:, A] - eps])
    GA = G[A]
    for _ in range(REFINE_STEPS + 1):
        res = rhs - np.hstack([sol[:, :n] @ H + sol[:, n:] @ GA, sol[:, :n] @ GA.T])
        sol = sol + scipy.linalg.lu_solve(lu, res.astype(float).T, check_finite=False).T.astype(ld)
    good &= np.all(np.isfinite(sol.astype(float)), axis=1)
    return sol[:, :n], sol[:, n:], good
