"""The certificate of the compiled path (numba kernels): certified_point and kkt_residuals for one sample.

Row for row the formulas of :func:`~mpc2nn.implicit._certificate.certified_point` (the primal
correction on the active rows, the fixed-point update ``λ ← relu(λ - Γ s)``, the fixed-point
residual with its per-row scale) and of :meth:`~mpc2nn.qp.CondensedQP.kkt_residuals` (each row
at its own scale, NaN anywhere fails); tests/test_compiled_solve.py holds them to each other.
Imported by :mod:`._compiled` only where numba is installed.
"""

from __future__ import annotations

import numba
import numpy as np

from ._certificate import CERTIFICATE_TOL, FIXED_POINT_FLOOR, POLISH_STEPS

#: Floor of the residuals' scales (as in the batched certificate).
_TINY = float(np.finfo(float).tiny)
#: Codes of the compiled path (the network's codes: solved, infeasible, uncertified, failed, invalid).
SOLVED, INFEASIBLE, UNCERTIFIED, FAILED, INVALID = 0, 1, 2, 3, 4

__all__ = ["certify_one", "row_max", "rows_dot", "primal_correction"]

_jit = numba.njit(cache=True, nogil=True)


@_jit
def rows_dot(A, v):
    """``Aᵀ v`` (n,) for ``A`` (m, n) summed over the rows where ``v_i != 0`` only (NaN included: it
    propagates as in the dense product); multipliers are mostly zero, so this is O(k n) for k active rows.
    """
    m, n = A.shape
    out = np.zeros(n)
    for i in range(m):
        vi = v[i]
        if vi != 0.0:
            for j in range(n):
                out[j] += vi * A[i, j]
    return out


@_jit
def row_max(a):
    """max(0, max a) with NaN anywhere giving NaN (numpy's max semantics, initial 0)."""
    best = 0.0
    for v in a:
        if v != v:
            return np.nan
        if v > best:
            best = v
    return best


@_jit
def primal_correction(lam, Z, s, h, G, GT, Gbar, Hinv, absG, act_rows):
    """The primal correction of the batched certificate on the active rows (in place)."""
    k = act_rows.size
    Mk = np.empty((k, k))
    for a in range(k):
        for b in range(k):
            Mk[a, b] = np.dot(Gbar[act_rows[a]], Gbar[act_rows[b]])
    row_scale = np.abs(h) + absG @ np.abs(Z)
    worst = 0.0
    for a in range(k):
        i = act_rows[a]
        worst = max(worst, abs(s[i]) / max(row_scale[i], _TINY))
    if not (worst > 0.0):
        return
    try:
        L = np.linalg.cholesky(Mk)
    except Exception:
        return
    sa = np.empty(k)
    mu = np.empty(k)
    for _ in range(POLISH_STEPS):
        for a in range(k):
            sa[a] = s[act_rows[a]]
        for a in range(k):  # L Lᵀ μ = s_A
            acc = sa[a]
            for b in range(a):
                acc -= L[a, b] * mu[b]
            mu[a] = acc / L[a, a]
        for a in range(k - 1, -1, -1):
            acc = mu[a]
            for b in range(a + 1, k):
                acc -= L[b, a] * mu[b]
            mu[a] = acc / L[a, a]
        gd = np.zeros(Z.size)
        for a in range(k):
            gd += mu[a] * G[act_rows[a]]
        Z2 = Z + Hinv @ gd
        s2 = h - G @ Z2
        after = 0.0
        for a in range(k):
            i = act_rows[a]
            after = max(after, abs(s2[i]) / max(row_scale[i], _TINY))
        if not (after < worst):
            return
        for a in range(k):
            lam[act_rows[a]] -= mu[a]
        Z[:] = Z2
        s[:] = s2
        worst = after
        if worst == 0.0:
            return


@_jit
def certify_one(th, Ft, h, lam_in, refine, data, U, y, Zout, fpo, kkt):
    """The certificate of one sample (certified_point and kkt_residuals, row for row); returns the code."""
    (F, G, GT, w, E, H, Hinv, Linv, Gbar, rn, aH, aF, aG, aGT, aw, aE, aHinv, aGbar, Grow, alpha, Y, bb, T,
     start, J0, R0, M0inv) = data
    m, n = G.shape
    lam = lam_in.copy()
    g = Ft + rows_dot(G, lam)
    Z = -(Hinv @ g)
    if refine:
        Z -= Hinv @ (H @ Z + g)
    s = h - G @ Z
    if refine:
        nact = 0
        for i in range(m):
            if lam[i] > 0.0:
                nact += 1
        if nact:
            rows = np.empty(nact, np.int64)
            j = 0
            for i in range(m):
                if lam[i] > 0.0:
                    rows[j] = i
                    j += 1
            primal_correction(lam, Z, s, h, G, GT, Gbar, Hinv, aG, rows)
    yv = np.empty(m)
    y_terms = np.empty(m)
    for it in range(2):
        for i in range(m):
            yv[i] = lam[i] - alpha[i] * s[i]
        if it:
            tz = np.abs(Z) + aHinv @ np.abs(g)
            y_terms[:] = alpha * (np.abs(h) + aG @ tz)
        dl = np.maximum(yv, 0.0) - lam
        if (dl != 0.0).any():  # λ already a fixed point of relu(λ - Γs): nothing moves
            lam += dl
            dg = rows_dot(G, dl)
            g += dg
            Z -= Hinv @ dg
            s = h - G @ Z
    Uv = T @ Z
    # fixed-point residual and its scale, row by row
    c = Y @ th + bb
    r = np.abs(yv - lam + alpha * (Gbar @ rows_dot(Gbar, lam)) - c)
    sigma = alpha * (aGbar @ rows_dot(aGbar, lam)) + lam + np.abs(c) + np.abs(yv) + y_terms
    smax = 0.0
    nan = False
    for i in range(m):
        if sigma[i] != sigma[i]:
            nan = True
        elif sigma[i] > smax:
            smax = sigma[i]
    floor = max(FIXED_POINT_FLOOR * smax, _TINY)
    fp_rel, fp, fps, worst_i = 0.0, 0.0, 1.0, -1
    for i in range(m):
        sg = max(sigma[i], floor) if sigma[i] == sigma[i] else sigma[i]
        ratio = r[i] / sg
        if ratio != ratio:
            nan = True
        elif worst_i < 0 or ratio > fp_rel:
            fp_rel, fp, fps, worst_i = ratio, r[i], sg, i
    if nan:
        fp_rel = fp = np.nan
    # KKT residuals (CondensedQP.kkt_residuals)
    Hz = H @ Z
    aZ, aT = np.abs(Z), np.abs(th)
    stat = np.abs(Hz + Ft + rows_dot(G, lam))
    sig = aH @ aZ + aF @ aT + rows_dot(aG, np.abs(lam))
    rho = aG @ aZ + aw + aE @ aT
    for i in range(m):
        rho[i] = max(rho[i], _TINY)
    force = max(row_max(sig), _TINY)
    rel_stat = row_max(stat / np.maximum(sig, _TINY))
    neg = np.maximum(-s, 0.0)
    rel_primal = row_max(neg / rho)
    dneg = np.maximum(-lam, 0.0)
    rel_dual = row_max(dneg * Grow / force)
    comp = np.empty(m)
    for i in range(m):
        comp[i] = min(abs(lam[i]) * Grow[i] / force, abs(s[i]) / rho[i])
        if lam[i] != lam[i] or s[i] != s[i]:
            comp[i] = np.nan
    rel_comp = row_max(comp)
    rhs = h  # w + E θ
    kkt[0] = row_max(stat)
    kkt[1] = row_max(neg)
    kkt[2] = row_max(dneg)
    kkt[3] = row_max(np.abs(lam) * np.abs(s))
    kkt[4] = max(1.0, row_max(np.abs(Hz)), row_max(np.abs(Ft)), row_max(np.abs(rhs)))
    kkt[5], kkt[6], kkt[7], kkt[8] = rel_stat, rel_primal, rel_dual, rel_comp
    worst = max(rel_stat, rel_primal, rel_dual, rel_comp)
    for v in (rel_stat, rel_primal, rel_dual, rel_comp):
        if v != v:
            worst = np.nan
    finite = np.isfinite(Uv).all() and np.isfinite(Z).all()
    U[:] = Uv
    y[:] = yv
    Zout[:] = Z
    fpo[0], fpo[1], fpo[2] = fp, fps, fp_rel
    if finite and fp_rel <= CERTIFICATE_TOL and worst <= CERTIFICATE_TOL:
        return SOLVED
    return UNCERTIFIED if finite else INVALID
