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

__all__ = ["certify_one", "row_max", "rows_dot", "primal_correction", "gram_solve"]

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
def gram_solve(T, k, r, v, upper):
    """``v[:k]`` solving ``L Lᵀ v = r[:k]`` for the triangle ``T`` (k, k) of a Gram matrix: ``L = T`` (lower,
    ``upper`` False: a Cholesky factor) or ``L = Tᵀ`` (upper, ``upper`` True: the R of a QR factorisation).
    """
    for i in range(k):  # L w = r
        acc = r[i]
        for j in range(i):
            acc -= (T[j, i] if upper else T[i, j]) * v[j]
        v[i] = acc / T[i, i]
    for i in range(k - 1, -1, -1):  # Lᵀ v = w
        acc = v[i]
        for j in range(i + 1, k):
            acc -= (T[i, j] if upper else T[j, i]) * v[j]
        v[i] = acc / T[i, i]


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
        gram_solve(L, k, sa, mu, False)  # L Lᵀ μ = s_A
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
def _cols_dot(S, v, out):
    """``out = S v`` (m,) for a symmetric ``S`` (m, m) summed over the columns where ``v_i != 0`` only (NaN
    included: it propagates as in the dense product); O(k m) for k active rows.
    """
    out[:] = 0.0
    m = S.shape[0]
    for i in range(m):
        vi = v[i]
        if vi != 0.0:
            for j in range(m):
                out[j] += vi * S[i, j]


@_jit
def _relu_step(lam, yv, dl):
    """``dl = relu(yv) - λ`` (NaN propagates); whether any entry moves."""
    moved = False
    for i in range(lam.size):
        v = yv[i]
        d = (v if (v > 0.0 or v != v) else 0.0) - lam[i]
        dl[i] = d
        if d != 0.0:
            moved = True
    return moved


@_jit
def certify_one(th, Ft, h, lam_in, refine, data, U, y, Zout, fpo, kkt):
    """The certificate of one sample (certified_point and kkt_residuals, row for row); returns the code.

    The products with ``Ḡ Ḡᵀ`` and ``|Ḡ| |Ḡ|ᵀ`` of the fixed-point residual and its scale are sums over
    the nonzero multipliers' columns of those (m, m) matrices (``data[27]``, ``data[28]``), O(k m) rather
    than O(m n_z); every other product writes into a buffer of this call (no temporaries per operation).
    """
    (F, G, GT, w, E, H, Hinv, Linv, Gbar, rn, aH, aF, aG, aGT, aw, aE, aHinv, aGbar, Grow, alpha, Y, bb, T,
     start, J0, R0, M0inv, GG, aGG) = data
    m, n = G.shape
    lam = lam_in.copy()
    g = Ft + rows_dot(G, lam)
    Z = np.empty(n)
    np.dot(Hinv, g, Z)
    for j in range(n):
        Z[j] = -Z[j]
    if refine:
        Z -= Hinv @ (H @ Z + g)
    s = np.empty(m)
    np.dot(G, Z, s)
    for i in range(m):
        s[i] = h[i] - s[i]
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
    dl = np.empty(m)
    tz = np.empty(n)
    ag = np.empty(n)
    dz = np.empty(n)
    for it in range(2):
        for i in range(m):
            yv[i] = lam[i] - alpha[i] * s[i]
        if it:
            for j in range(n):
                ag[j] = abs(g[j])
            np.dot(aHinv, ag, tz)
            for j in range(n):
                tz[j] += abs(Z[j])
            np.dot(aG, tz, y_terms)
            for i in range(m):
                y_terms[i] = alpha[i] * (abs(h[i]) + y_terms[i])
        if _relu_step(lam, yv, dl):  # λ already a fixed point of relu(λ - Γs): nothing moves
            lam += dl
            dg = rows_dot(G, dl)
            g += dg
            np.dot(Hinv, dg, dz)
            Z -= dz
            np.dot(G, Z, s)
            for i in range(m):
                s[i] = h[i] - s[i]
    np.dot(T, Z, U)
    # fixed-point residual and its scale, row by row
    c = np.empty(m)
    np.dot(Y, th, c)
    c += bb
    gl = np.empty(m)
    agl = np.empty(m)
    _cols_dot(GG, lam, gl)
    _cols_dot(aGG, lam, agl)
    smax = 0.0
    nan = False
    for i in range(m):
        gl[i] = abs(yv[i] - lam[i] + alpha[i] * gl[i] - c[i])  # the residual r
        sg = alpha[i] * agl[i] + lam[i] + abs(c[i]) + abs(yv[i]) + y_terms[i]  # its scale σ
        agl[i] = sg
        if sg != sg:
            nan = True
        elif sg > smax:
            smax = sg
    floor = max(FIXED_POINT_FLOOR * smax, _TINY)
    fp_rel, fp, fps, worst_i = 0.0, 0.0, 1.0, -1
    for i in range(m):
        sg = max(agl[i], floor) if agl[i] == agl[i] else agl[i]
        ratio = gl[i] / sg
        if ratio != ratio:
            nan = True
        elif worst_i < 0 or ratio > fp_rel:
            fp_rel, fp, fps, worst_i = ratio, gl[i], sg, i
    if nan:
        fp_rel = fp = np.nan
    # KKT residuals (CondensedQP.kkt_residuals)
    aZ = np.abs(Z)
    aT = np.abs(th)
    Hz = np.empty(n)
    np.dot(H, Z, Hz)
    Gl = rows_dot(G, lam)
    sig = np.empty(n)
    np.dot(aH, aZ, sig)
    fT = np.empty(n)
    np.dot(aF, aT, fT)
    aGl = rows_dot(aG, np.abs(lam))
    stat_max, sig_max, rel_stat, hz_max, ft_max = 0.0, 0.0, 0.0, 0.0, 0.0
    nan_stat = False
    for j in range(n):
        st = abs(Hz[j] + Ft[j] + Gl[j])
        sj = sig[j] + fT[j] + aGl[j]
        rs = st / max(sj, _TINY)
        if st != st or sj != sj or rs != rs:
            nan_stat = True
        else:
            stat_max = max(stat_max, st)
            sig_max = max(sig_max, sj)
            rel_stat = max(rel_stat, rs)
        a = abs(Hz[j])
        hz_max = np.nan if a != a or hz_max != hz_max else max(hz_max, a)
        a = abs(Ft[j])
        ft_max = np.nan if a != a or ft_max != ft_max else max(ft_max, a)
    if nan_stat:
        stat_max = sig_max = rel_stat = np.nan
    force = max(sig_max, _TINY) if sig_max == sig_max else np.nan
    neg_max, rel_primal, dneg_max, rel_dual, rel_comp, lams_max, h_max = 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0
    nan_p = nan_d = nan_c = nan_ls = nan_h = False
    for i in range(m):
        si, li = s[i], lam[i]
        a = abs(h[i])
        if a != a:
            nan_h = True
        else:
            h_max = max(h_max, a)
        if si >= 0.0 and li == 0.0:  # an inactive row that holds: every ratio below is 0 / ρ_i = 0
            continue
        ri = max(np.dot(aG[i], aZ) + aw[i] + np.dot(aE[i], aT), _TINY)  # the row's scale ρ_i
        if ri != ri:
            ri = np.nan
        ng = max(-si, 0.0) if si == si else np.nan
        rp = ng / ri
        if rp != rp:
            nan_p = True
        else:
            neg_max = max(neg_max, ng)
            rel_primal = max(rel_primal, rp)
        dn = max(-li, 0.0) if li == li else np.nan
        rd = dn * Grow[i] / force
        if rd != rd:
            nan_d = True
        else:
            dneg_max = max(dneg_max, dn)
            rel_dual = max(rel_dual, rd)
        cp = min(abs(li) * Grow[i] / force, abs(si) / ri)
        if li != li or si != si or cp != cp:
            nan_c = True
        else:
            rel_comp = max(rel_comp, cp)
        ls = abs(li) * abs(si)
        if ls != ls:
            nan_ls = True
        else:
            lams_max = max(lams_max, ls)
    if nan_p:
        neg_max = rel_primal = np.nan
    if nan_d:
        dneg_max = rel_dual = np.nan
    if nan_c:
        rel_comp = np.nan
    kkt[0] = stat_max
    kkt[1] = neg_max
    kkt[2] = dneg_max
    kkt[3] = np.nan if nan_ls else lams_max
    kkt[4] = max(1.0, hz_max, ft_max, np.nan if nan_h else h_max)
    kkt[5], kkt[6], kkt[7], kkt[8] = rel_stat, rel_primal, rel_dual, rel_comp
    worst = max(rel_stat, rel_primal, rel_dual, rel_comp)
    for v in (rel_stat, rel_primal, rel_dual, rel_comp):
        if v != v:
            worst = np.nan
    finite = np.isfinite(U).all() and np.isfinite(Z).all()
    y[:] = yv
    Zout[:] = Z
    fpo[0], fpo[1], fpo[2] = fp, fps, fp_rel
    if finite and fp_rel <= CERTIFICATE_TOL and worst <= CERTIFICATE_TOL:
        return SOLVED
    return UNCERTIFIED if finite else INVALID
