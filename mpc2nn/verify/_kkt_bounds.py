"""Proven big-M bounds for the KKT encoding of the MPC law over a cell of ``θ``: multipliers and slacks.

The condensed QP is ``min_z f(z) = ½zᵀHz + θᵀFᵀz`` s.t. ``Gz <= w + Eθ``. On a cell (``θ = c + h ⊙ ξ`` with
``ξ`` in a polytope of the unit box) the bounds are proven as follows (see the theory page):

1. **A strictly feasible affine policy** ``z̄(ξ) = Pξ + p`` is found by one LP (robust feasibility over the
   cell by LP duality): every row's slack ``σ_i(ξ) = w̃_i + Ẽ_i ξ - G_i z̄(ξ)`` is at least ``τ·‖G_i‖`` on
   the whole cell, ``τ`` as large as the LP finds (then relaxed to half of it to keep ``z̄`` near the
   unconstrained minimiser). Its slacks' minima ``σ̲_i`` over the cell are re-computed by LPs (the proof
   does not rest on the first LP).
2. **Slater's bound on every multiplier**: for any optimal ``z*`` and any multiplier ``λ >= 0`` of the QP at
   ``θ``, ``f(z*) = min_z L(z, λ) <= L(z̄, λ) = f(z̄) - λᵀσ``, so ``Σ_i λ_i σ_i <= f(z̄) - f(z*) <=
   f(z̄) - f_unc = ½‖Lᵀ(z̄ + H⁻¹Fθ)‖² <= N̄`` (``H = LLᵀ``; ``N̄`` from LPs bounding each entry of
   ``Lᵀ(z̄ + H⁻¹Fθ)`` over the cell). As every term is non-negative, ``λ_i <= N̄ / σ̲_i`` and
   ``Σ_i σ̲_i λ_i <= N̄`` (a valid cut).
3. **The optimum lies near the unconstrained minimiser**: ``½‖Lᵀ(z* - z_unc)‖² = f(z*) - f_unc <= N̄`` gives
   ``|z*_k - z_unc,k| <= sqrt(2 N̄ (H⁻¹)_kk)``.
4. **Slack bounds** ``s̲_i <= s_i <= s̄_i`` by LPs over ``{(ξ, z): ξ in the cell, Gz <= w̃ + Ẽξ, z in the box
   of 3}``; a row with ``s̲_i > 0`` is never active (its multiplier is 0, no binary).

Where step 1 finds no policy with positive slack (the cell reaches states where the QP is infeasible or
only just feasible), no bound is claimed: the caller bisects the cell or reports it as not covered.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import scipy.optimize
import scipy.sparse

from ..qp import CondensedQP
from ._milp import LP_OPTIONS, maximise_lp

__all__ = ["KKTBounds", "kkt_bounds", "SLATER_MIN", "BIGM_PAD", "INACTIVE_TOL", "POLICY_RELAX", "POLICY_CAP",
           "POLICY_LP_TIME"]

#: A policy whose smallest normalised slack over the cell is below ``SLATER_MIN`` times the cell's scale
#: (of ``w̃`` and ``Ẽ``) gives no bound: the multipliers' bound ``N̄/σ̲`` would be huge, and at 1e-7 of the
#: scale the slack is near HiGHS's feasibility tolerance (1e-9), which the proof must stay clear of.
SLATER_MIN = 1e-7
#: Every proven bound is widened by ``BIGM_PAD`` relative (plus the same absolute times the scale): the
#: LPs and sums are in float64, and a big-M that rounds below the true value would cut off a KKT point.
BIGM_PAD = 1e-6
#: A row counts as never active when its slack's proven minimum exceeds ``INACTIVE_TOL`` times the
#: row's scale (100 times HiGHS's feasibility tolerance, so that the LP's own tolerance cannot fake it).
INACTIVE_TOL = 1e-7
#: The second policy LP keeps ``POLICY_RELAX`` of the largest robust slack and minimises the distance of
#: ``z̄`` to the unconstrained minimiser: half the slack and a much smaller ``N̄`` give tighter ``λ`` bounds.
POLICY_RELAX = 0.5
#: Seconds the second policy LP may take (it only improves the bounds; past it the first LP's policy is used).
POLICY_LP_TIME = 10.0
#: Cap of the robust slack ``τ`` (units of ``z``, rows normalised) in the first policy LP: without input
#: bounds the feasible set can hold arbitrarily large balls and the LP would be unbounded.
POLICY_CAP = 1e3


@dataclass
class KKTBounds:
    """Proven bounds on one cell (internal; see the module docstring).

    ``ok`` False: no bound (``message`` says why). Otherwise ``lam_hi (m,)`` bounds every multiplier,
    ``s_hi, s_lo (m,)`` the slack of every row at the optimum, ``active (m,)`` the rows that may be active,
    ``sigma (m,)`` and ``nbar`` the cut ``Σ σ_i λ_i <= N̄``, and ``J, a, r`` the box
    ``|z + J ξ - a| <= r`` of the optimum (``z_unc(ξ) = a - J ξ``).
    """

    ok: bool
    message: str
    lam_hi: np.ndarray
    s_hi: np.ndarray
    s_lo: np.ndarray
    active: np.ndarray
    sigma: np.ndarray
    nbar: float
    J: np.ndarray
    a: np.ndarray
    r: np.ndarray
    lps: int = 0
    empty: bool = False


def _linprog(c, time_limit: float | None = None, **kw):
    options = dict(LP_OPTIONS) if time_limit is None else dict(LP_OPTIONS, time_limit=float(time_limit))
    with warnings.catch_warnings():  # scipy warns that the tolerances go to HiGHS verbatim: intended
        warnings.filterwarnings("ignore", message="Unrecognized options", category=RuntimeWarning)
        return scipy.optimize.linprog(c, method="highs", options=options, **kw)


def _fail(m: int, n_z: int, n: int, message: str, lps: int, empty: bool = False) -> KKTBounds:
    z = np.zeros(m)
    return KKTBounds(False, message, z, z, z, np.zeros(m, bool), z, np.inf, np.zeros((n_z, n)), np.zeros(n_z),
                     np.zeros(n_z), lps, empty)


def cell_data(qp: CondensedQP, centre: np.ndarray, half: np.ndarray):
    """``(Ẽ, w̃, Fh, Fc)``: the QP's ``θ`` terms in unit coordinates ``θ = centre + half ⊙ ξ``."""
    return qp.E * half[None, :], qp.w + qp.E @ centre, qp.F * half[None, :], qp.F @ centre


def _policy(qp: CondensedQP, Et, wt, Au, bu, nu):
    """The first LP of step 1: the largest robust slack ``t*`` of an affine policy ``z̄ = Pξ + p``; returns
    ``((result, LP data for the second LP), t*, LPs solved)``, or ``(None, t*, 1)`` when ``t* <= 0`` or the
    LP failed. Robust rows by LP duality: the
    cell is ``{ξ: C ξ <= d}`` with ``C = [I; -I; Au]``, and ``max_ξ a_iᵀξ <= β`` iff some ``y_i >= 0`` has
    ``Cᵀ y_i = a_i`` and ``dᵀ y_i <= β``.
    """
    G = qp.G
    m, n_z = G.shape
    n = Et.shape[1]
    C = np.vstack([np.eye(n), -np.eye(n), Au])
    d = np.concatenate([np.ones(n), np.ones(n), bu])
    k = C.shape[0]
    # variables: P (n_z·n, row-major), p (n_z), t, Y (m·k)
    nP, nY = n_z * n, m * k
    it, iY = nP + n_z, nP + n_z + 1  # columns of t and of Y (P first, then p)
    nv = iY + nY
    # equalities: for row i, Cᵀ y_i - (G_i P)ᵀ = -Ẽ_iᵀ  (a_i = G_i P - Ẽ_i)   [n rows per i]
    eq_rows, eq_b = [], []
    GP = scipy.sparse.kron(scipy.sparse.csr_matrix(G), scipy.sparse.eye(n))  # (m·n, n_z·n): (G P)_{i,j}
    CT = scipy.sparse.kron(scipy.sparse.eye(m), scipy.sparse.csr_matrix(C.T))  # (m·n, m·k)
    eq_rows.append(scipy.sparse.hstack([-GP, scipy.sparse.csr_matrix((m * n, n_z + 1)), CT]))
    eq_b.append(-Et.ravel())
    A_eq = scipy.sparse.vstack(eq_rows).tocsr()
    b_eq = np.concatenate(eq_b)
    # inequalities: dᵀ y_i + G_i p + t ν_i <= w̃_i
    Dy = scipy.sparse.kron(scipy.sparse.eye(m), scipy.sparse.csr_matrix(d[None, :]))
    A_ub = scipy.sparse.hstack([scipy.sparse.csr_matrix((m, nP)), scipy.sparse.csr_matrix(G),
                                scipy.sparse.csr_matrix(nu[:, None]), Dy]).tocsr()
    b_ub = wt.copy()
    bounds = [(None, None)] * (nP + n_z) + [(None, POLICY_CAP)] + [(0, None)] * nY
    c = np.zeros(nv)
    c[it] = -1.0
    res = _linprog(c, A_ub=A_ub, b_ub=b_ub, A_eq=A_eq, b_eq=b_eq, bounds=bounds)
    if res.status != 0:
        return None, 0.0, 1
    t_star = float(res.x[it])
    if t_star <= 0:
        return None, t_star, 1
    return (res, (A_eq, b_eq, A_ub, b_ub, bounds, nP, nv, it)), t_star, 1


def kkt_bounds(qp: CondensedQP, centre: np.ndarray, half: np.ndarray, Au: np.ndarray, bu: np.ndarray) -> KKTBounds:
    """Proven big-M bounds on the cell ``{θ = centre + half ⊙ ξ : ξ ∈ [-1, 1]^n, Au ξ <= bu}``.

    Parameters
    ----------
    qp : CondensedQP
        The QP.
    centre, half : ndarrays, shape (n_θ,)
        The cell's box.
    Au, bu : ndarrays, shapes (p, n_θ) and (p,)
        The region's rows in unit coordinates.

    Returns
    -------
    KKTBounds
    """
    G = qp.G
    m, n_z = G.shape
    n = centre.size
    Et, wt, Fh, Fc = cell_data(qp, centre, half)
    nu = np.maximum(np.linalg.norm(G, axis=1), 1e-300)
    scale = 1.0 + float(np.max(np.abs(wt), initial=0.0) + np.abs(Et).sum(axis=1).max(initial=0.0))
    lps = 0
    # is the cell feasible at all? (some ξ, z with Gz <= w̃ + Ẽξ)
    feas = _linprog(np.zeros(n + n_z), A_ub=np.block([[Au, np.zeros((Au.shape[0], n_z))], [-Et, G]]),
                    b_ub=np.concatenate([bu, wt]), bounds=[(-1, 1)] * n + [(None, None)] * n_z)
    lps += 1
    if feas.status == 2:
        return _fail(m, n_z, n, "the cell holds no state where the QP is feasible", lps, empty=True)
    out, t_star, k = _policy(qp, Et, wt, Au, bu, nu)
    lps += k
    if out is None:
        return _fail(m, n_z, n, f"no affine policy is strictly feasible on the whole cell (largest robust slack "
                     f"{t_star:.3g}): Slater's bound on the multipliers does not hold there", lps)
    res, (A_eq, b_eq, A_ub, b_ub, bounds, nP, nv, it) = out
    # stage 2 LP: t >= POLICY_RELAX·t*, minimise Σ_k (‖V_k‖₁ + |v0_k|) >= Σ_k max over the cell of |v_k(ξ)|,
    # v(ξ) = Lᵀ(z̄ + H⁻¹Fθ) = V ξ + v0, V = Lᵀ P + Lᵀ H⁻¹F h, v0 = Lᵀ p + Lᵀ H⁻¹F c (abs variables appended)
    Lt = np.linalg.cholesky(qp.H).T
    Hinv_F = qp.H_inv @ qp.F
    LtP = scipy.sparse.kron(scipy.sparse.csr_matrix(Lt), scipy.sparse.eye(n))  # (n_z·n, n_z·n): Lᵀ P row-major
    V0 = (Lt @ Hinv_F * half[None, :]).ravel()
    v00 = Lt @ Hinv_F @ centre
    nA = n_z * n + n_z
    I_A = scipy.sparse.eye(nA)
    # rows:  ±(Lᵀ P, Lᵀ p) - abs <= ∓(V0, v00)
    lin = scipy.sparse.block_diag([LtP, scipy.sparse.csr_matrix(Lt)]).tocsr()  # over (P, p)
    pad_right = scipy.sparse.csr_matrix((nA, nv - nP - n_z))
    rows_abs = scipy.sparse.vstack([scipy.sparse.hstack([lin, pad_right, -I_A]),
                                    scipy.sparse.hstack([-lin, pad_right, -I_A])]).tocsr()
    b_abs = np.concatenate([-np.concatenate([V0, v00]), np.concatenate([V0, v00])])
    A_ub2 = scipy.sparse.vstack([scipy.sparse.hstack([A_ub, scipy.sparse.csr_matrix((m, nA))]), rows_abs]).tocsr()
    b_ub2 = np.concatenate([b_ub, b_abs])
    A_eq2 = scipy.sparse.hstack([A_eq, scipy.sparse.csr_matrix((A_eq.shape[0], nA))]).tocsr()
    bounds2 = list(bounds) + [(0, None)] * nA
    bounds2[it] = (POLICY_RELAX * t_star, POLICY_CAP)
    c2 = np.concatenate([np.zeros(nv), np.ones(nA)])
    res2 = _linprog(c2, A_ub=A_ub2, b_ub=b_ub2, A_eq=A_eq2, b_eq=b_eq, bounds=bounds2, time_limit=POLICY_LP_TIME)
    lps += 1
    x = res2.x if res2.status == 0 else res.x
    P = np.asarray(x[:nP]).reshape(n_z, n)
    p = np.asarray(x[nP:nP + n_z])
    # step 1': the slacks' minima over the cell, re-computed (the proof rests on these LPs, not the above)
    GP = G @ P
    vals, _ = maximise_lp(GP - Et, 0.0, Au, bu)
    lps += 1
    sigma = wt - G @ p - vals
    if not np.all(np.isfinite(sigma)) or np.any(sigma <= SLATER_MIN * scale * nu):
        i = int(np.argmin(sigma / nu)) if np.all(np.isfinite(sigma)) else -1
        return _fail(m, n_z, n, f"the affine policy's slack on row {qp.row_labels[i] if i >= 0 else '?'} is not "
                     "proven positive on the cell: Slater's bound does not hold there", lps)
    sigma_lo = sigma * (1 - BIGM_PAD) - BIGM_PAD * SLATER_MIN * scale * nu  # rounded down, still > 0
    # step 2: N̄ >= max over the cell of ½‖v(ξ)‖², v = Lᵀ(z̄ + H⁻¹Fθ) = V ξ + v0
    V = Lt @ P + Lt @ Hinv_F * half[None, :]
    v0 = Lt @ p + v00
    ext, _ = maximise_lp(np.vstack([V, -V]), np.concatenate([v0, -v0]), Au, bu)
    lps += 1
    if not np.all(np.isfinite(ext)):
        return _fail(m, n_z, n, "an LP bounding f(z̄) - f_unc on the cell failed", lps)
    vmax = np.maximum(np.maximum(ext[:n_z], ext[n_z:]), 0.0)
    nbar = 0.5 * float(np.sum(vmax ** 2)) * (1 + BIGM_PAD) + BIGM_PAD * scale
    lam_hi = nbar / sigma_lo * (1 + BIGM_PAD)
    # step 3: the box of the optimum around z_unc(ξ) = -H⁻¹F(c + hξ) = a - Jξ
    r = np.sqrt(2.0 * nbar * np.diag(qp.H_inv)) * (1 + BIGM_PAD) + BIGM_PAD
    J = Hinv_F * half[None, :]
    a = -Hinv_F @ centre
    # step 4: slack bounds by LPs over (ξ, z)
    A_cell = np.block([[Au, np.zeros((Au.shape[0], n_z))], [-Et, G]])
    b_cell = np.concatenate([bu, wt])
    zb = [(-1.0, 1.0)] * n + [(None, None)] * n_z
    A_box = np.block([[J, np.eye(n_z)], [-J, -np.eye(n_z)]])
    b_box = np.concatenate([a + r, r - a])
    A_all = scipy.sparse.csr_matrix(np.vstack([A_cell, A_box]))
    b_all = np.concatenate([b_cell, b_box])
    s_hi = np.zeros(m)
    s_lo = np.zeros(m)
    for i in range(m):
        # s_i = w̃_i + Ẽ_i ξ - G_i z
        grad = np.concatenate([Et[i], -G[i]])
        for sign in (1.0, -1.0):
            rs = _linprog(-sign * grad, A_ub=A_all, b_ub=b_all, bounds=zb)
            lps += 1
            if rs.status == 2:
                return _fail(m, n_z, n, "the cell holds no state where the QP is feasible", lps, empty=True)
            if rs.status != 0:
                return _fail(m, n_z, n, f"the LP bounding the slack of row {qp.row_labels[i]} failed "
                             f"({rs.message})", lps)
            v = wt[i] - sign * rs.fun  # w̃_i + max (sign +1) or min (sign -1) of Ẽ_i ξ - G_i z
            pad = BIGM_PAD * (abs(v) + scale * nu[i])
            if sign > 0:
                s_hi[i] = v + pad
            else:
                s_lo[i] = v - pad
    active = s_lo <= INACTIVE_TOL * (scale * nu)
    s_hi = np.maximum(s_hi, 0.0)
    msg = (f"Slater: robust slack {t_star:.3g}, N̄ = {nbar:.3g}, largest multiplier bound {lam_hi.max():.3g}, "
           f"largest slack bound {s_hi.max():.3g}, {int(active.sum())} of {m} rows may be active")
    return KKTBounds(True, msg, lam_hi, s_hi, s_lo, active, sigma_lo, nbar, J, a, r, lps)
