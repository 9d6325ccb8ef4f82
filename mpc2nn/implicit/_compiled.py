"""A compiled per-sample path of the exact solve (numba, optional): dual active set and certificate.

Where `numba <https://numba.pydata.org>`_ is installed (the ``fast`` extra), small and
mid-sized problems are solved sample by sample in compiled code, with no per-sample
Python or numpy call overhead:

1. the **dual active-set method** of Goldfarb and Idnani on ``min ½‖z̄ - z̄₀‖²`` s.t.
   ``Ḡ z̄ <= h`` (``z̄ = Lᵀz``), the same method as the batched fallback of
   :class:`~mpc2nn.implicit.ActiveSetSolver`, here with the working set's normals kept
   as ``Jᵀ N = [R; 0]`` (``J`` orthogonal, ``R`` upper triangular) and updated by Givens
   rotations, so every step costs ``O(m n + n²)``; an infeasible state ends with the
   Farkas certificate ``μ = e_p + Σ_W max(-r, 0) e_W``, checked as the batched one is;
2. the **certificate** of :func:`~mpc2nn.implicit._certificate.certified_point` and the KKT
   residuals of :meth:`~mpc2nn.qp.CondensedQP.kkt_residuals`, row for row the same formulas
   (in :mod:`._compiled_certificate`; tests/test_compiled_solve.py checks them against
   ``kkt_residuals``, the numpy path and DAQP).

Only samples certified here, or proven infeasible by a checked Farkas certificate, are
final; every other sample goes back to the batched numpy path (its sweeps and NNLS last
resort), which decides it. Without numba (or with ``MPC2NN_NO_NUMBA=1`` in the
environment) nothing here runs and the batched numpy path solves everything.

The kernels are compiled on the first call (``cache=True``: about 35 s once on a loaded
2-core machine after installing or changing this module, then ~0.3 s to load the cache in
each new process).
"""

from __future__ import annotations

import numpy as np

from .._jit import numba  # None without the fast extra (tests set it to None for the numpy path)
from ._active_set import DECISION_TOL, FARKAS_RADIUS, FARKAS_TOL

__all__ = ["available", "CompiledSolver", "CompiledStep", "COMPILED_MAX_WORK", "COMPILED_BATCH"]

#: Largest ``m · n_z`` solved by the compiled path. Above it the batched numpy path's matrix-matrix products
#: (BLAS-3 over the batch) beat per-sample matrix-vector products: measured on the OSQP "control" class
#: (benchmarks/exact_solve.py --control), the batched path is faster from m·n_z ≈ 1e6 (m = 3 260, n_z = 545).
COMPILED_MAX_WORK = 400_000
#: Chunks of fewer samples than this go through the compiled path end to end (solve and certificate per
#: sample); larger ones through the batched primal-dual sweeps, with the compiled dual active-set method for
#: the samples the sweeps leave. Since the kernels write into buffers (no temporaries per operation) and
#: update the rows' values through ``Ḡ Ḡᵀ``, the compiled path is as fast or faster at every batch size
#: measured (2000 states, one thread: 0.95-2.2x the sweeps' states/s on the public and random problems of
#: benchmarks/exact_solve.py, 2.7x at m = 500, 1.3x at m = 1000), so every chunk goes compiled; the sweeps
#: remain for problems above :data:`COMPILED_MAX_WORK` and where numba is absent (tests set this to 0 to
#: run them).
COMPILED_BATCH = 2**62
#: A direction ``J₂ d₂`` shorter than this (relative to the normal, squared) is none: the normal lies in the
#: span of the working set (the batched method's value).
_MOVE_TOL = 1e-16
#: A dual direction entry counts as positive above this (relative to max(1, max |r|); the batched value).
_POS_TOL = 1e-14
#: Codes of the compiled path (the network's codes: solved, infeasible, uncertified, failed, invalid).
SOLVED, INFEASIBLE, UNCERTIFIED, FAILED, INVALID = 0, 1, 2, 3, 4
#: Number of KKT fields written per sample (stationarity, primal, dual, complementarity, scale, and the four
#: relative ones, in :class:`~mpc2nn.qp.KKTResiduals` order).
N_KKT = 9


def available() -> bool:
    """Whether the compiled path can run (numba importable and not disabled by ``MPC2NN_NO_NUMBA``)."""
    return numba is not None


class CompiledSolver:
    """The data of one network laid out for the compiled kernels, and the batch entry point.

    Parameters
    ----------
    net : ImplicitNetwork
        The network (its QP, steps and solver's factors are read, not copied where contiguous).
    """

    def __init__(self, net):
        qp, sv = net.qp, net.solver
        c = np.ascontiguousarray
        T = np.eye(qp.n_z) if qp.output_map is None else qp.output_map
        ab = qp._abs
        R = sv.start_rows
        n = qp.n_z
        if R.size:  # the start rows' normals factored once: -Ḡ_Rᵀ... kept as N = Ḡ_Rᵀ = J [R; 0]
            Q, Rr = np.linalg.qr(sv.Gbar[R].T, mode="complete")
            J0, R0, M0inv = c(Q), c(np.pad(Rr[:R.size], ((0, n - R.size), (0, n - R.size)))), c(sv._start_inv)
        else:
            J0, R0, M0inv = np.eye(n), np.zeros((n, n)), np.zeros((0, 0))
        self.data = (c(qp.F), c(qp.G), c(qp.G.T), c(qp.w), c(qp.E), c(qp.H), c(qp.H_inv), c(sv.Linv),
                     c(sv.Gbar), c(sv.row_norm), c(ab["H"]), c(ab["F"]), c(ab["G"]), c(ab["G"].T), c(ab["w"]),
                     c(ab["E"]), c(net._abs_Hinv), c(net._abs_gbar), c(ab["G_rownorm"]), c(net.alpha), c(net.Y),
                     c(net.b), c(T), c(np.asarray(R, np.int64)), J0, R0, M0inv, c(sv.M),
                     c(net._abs_gbar @ net._abs_gbar.T))
        self.n_U, self.m, self.n_z = T.shape[0], qp.m, n

    def dual(self, z0: np.ndarray, h: np.ndarray, q: np.ndarray):
        """The dual active-set method alone for ``b`` samples (the fallback of the batched sweeps).

        Returns
        -------
        tuple
            ``(λ (b, m), code (b,) LCPCode values, iterations (b,), farkas_margin (b,))``.
        """
        b = z0.shape[0]
        lam = np.full((b, self.m), np.nan)
        code = np.full(b, 2, np.int8)
        iters = np.zeros(b, np.int64)
        margin = np.full(b, np.nan)
        c = np.ascontiguousarray
        _dual_batch(c(z0, dtype=float), c(h, dtype=float), c(q, dtype=float), self.data, lam, code, iters, margin)
        return lam, code, iters, margin

    def solve_into(self, theta: np.ndarray, active0: np.ndarray | None, arrays: tuple) -> None:
        """Solve and certify every row of ``theta`` (b, n_θ) into ``arrays``: ``(U (b, n_U), y (b, m),
        Z (b, n_z), code (b,) int8, fp (b, 3), kkt (b, 9), iterations (b,) int64, farkas_margin (b,),
        verified (b,) bool)``, each C-contiguous (rows of a larger result, for instance); as :meth:`solve`.
        """
        warm = np.zeros((theta.shape[0], 0), np.bool_) if active0 is None else np.ascontiguousarray(active0, np.bool_)
        _solve_batch(np.ascontiguousarray(theta, dtype=float), self.data, warm, active0 is not None, *arrays)

    def solve(self, theta: np.ndarray, active0: np.ndarray | None = None):
        """Solve and certify every row of ``theta`` (b, n_θ); returns the per-sample arrays.

        ``active0`` (b, m) bool, a warm-start guess of each sample's active set, is verified first (one
        reduced solve); the dual active-set method runs where it does not hold.

        Returns
        -------
        tuple
            ``(U (b, n_U), y (b, m), Z (b, n_z), code (b,), fp (b,), fp_scale (b,), fp_rel (b,),
            kkt (b, 9), iterations (b,), farkas_margin (b,), verified (b,) bool)``.
        """
        b = theta.shape[0]
        # warm is not read without has_warm; every output row is initialised by the kernel (NaN, FAILED, 0, False):
        # this runs per single state, where numpy's fills cost as much as a small solve
        warm = np.zeros((b, 0), np.bool_) if active0 is None else np.ascontiguousarray(active0, np.bool_)
        e = np.empty
        U, y, Z, fp, kkt = e((b, self.n_U)), e((b, self.m)), e((b, self.n_z)), e((b, 3)), e((b, N_KKT))
        code, iters, margin, verified = e(b, np.int8), e(b, np.int64), e(b), e(b, np.bool_)
        _solve_batch(np.ascontiguousarray(theta, dtype=float), self.data, warm, active0 is not None, U, y, Z, code,
                     fp, kkt, iters, margin, verified)
        return U, y, Z, code, fp[:, 0], fp[:, 1], fp[:, 2], kkt, iters, margin, verified



class CompiledStep:
    """One state at a time through the compiled kernels, into buffers kept between calls (a closed loop).

    Each call verifies the previous certified state's active set first (one reduced solve), runs the
    dual active-set method where it does not hold, and certifies the point as :meth:`ImplicitNetwork.solve`
    does. Only a certified state returns its input; anything else returns ``None`` and the caller asks
    the general solve, which decides the state and says why. Not shared between threads (one per caller).

    Parameters
    ----------
    solver : CompiledSolver
        The network's compiled data.
    n_u : int
        Inputs per stage (the first ``n_u`` entries of ``U`` are returned).
    """

    def __init__(self, solver: CompiledSolver, n_u: int):
        self._data, self.n_u = solver.data, n_u
        m, e = solver.m, np.empty
        self._buffers = (e((1, solver.n_U)), e((1, m)), e((1, solver.n_z)), e(1, np.int8), e((1, 3)),
                         e((1, N_KKT)), e(1, np.int64), e(1), e(1, np.bool_))
        self._warm = np.zeros((1, m), np.bool_)
        self._has_warm = False

    def __call__(self, theta: np.ndarray) -> np.ndarray | None:
        """The first input ``u0`` (n_u,) of a certified solve of ``theta`` (1, n_θ) float64 C-contiguous,
        else ``None``.
        """
        U, y, Z, code, fp, kkt, iters, margin, verified = self._buffers
        _solve_batch(theta, self._data, self._warm, self._has_warm, U, y, Z, code, fp, kkt, iters, margin,
                     verified)
        if code[0] != SOLVED:
            return None
        np.greater(y, 0.0, out=self._warm)
        self._has_warm = True
        return U[0, :self.n_u].copy()

    def remember(self, y: np.ndarray | None) -> None:
        """Start the next call from the active set ``{y > 0}`` (m,) of a solve done elsewhere; ``None``
        forgets it.
        """
        self._has_warm = y is not None
        if y is not None:
            np.greater(np.nan_to_num(y, nan=0.0), 0.0, out=self._warm[0])


if numba is not None:  # pragma: no branch
    from ._compiled_certificate import certify_one, gram_solve

    _jit = numba.njit(cache=True, nogil=True)

    @_jit
    def _givens(a, b):
        """(c, s, r) with [c s; -s c] [a; b] = [r; 0]."""
        if b == 0.0:
            return 1.0, 0.0, a
        r = np.hypot(a, b)
        return a / r, b / r, r

    @_jit
    def _farkas(mu, h, Gbar, rn, z0n):
        """Margin ``-μᵀh/‖μ‖₁`` of a proven Farkas certificate, NaN where ``μ`` proves nothing (the tests of
        ActiveSetSolver.farkas_code).
        """
        m, n = Gbar.shape
        norm1 = 0.0
        value = 0.0
        habs = 0.0
        reach = 0.0
        r = np.zeros(n)
        size = np.zeros(n)
        for i in range(m):
            mi = mu[i]
            if not (mi > 0.0) or not np.isfinite(mi):
                continue
            norm1 += mi
            value -= mi * h[i]
            habs += mi * abs(h[i])
            if rn[i] > 0.0:
                reach = max(reach, abs(h[i]) / rn[i])
            for j in range(n):
                r[j] += mi * Gbar[i, j]
                size[j] += mi * abs(Gbar[i, j])
        if not (norm1 > 0.0):
            return np.nan
        resid = 0.0
        rr = 0.0
        smax = 0.0
        for j in range(n):
            resid = max(resid, abs(r[j]))
            rr += r[j] * r[j]
            smax = max(smax, size[j])
        if not (resid <= FARKAS_TOL * smax and value > FARKAS_TOL * habs):
            return np.nan
        radius = value / np.sqrt(rr) if rr > 0.0 else np.inf
        if not (radius >= FARKAS_RADIUS * (z0n + reach)):
            return np.nan
        return value / norm1

    @_jit
    def _dual_active_set(z0, z0n, h, q, Gbar, GG, rn, start, J0, R0, M0inv, lam):
        """Goldfarb–Idnani for one sample; writes ``lam`` (m,). Returns (code, iterations, farkas margin).

        The rows' values ``s = Ḡ z̄ - h`` are updated along each primal step through ``GG = Ḡ Ḡᵀ`` (m, m):
        the step is ``a_p - Σ_W r_j a_j``, so ``Ḡ step`` costs O(m k) rather than O(m n); where the updated
        values show no violated row they are formed again from ``z̄`` (O(m n)) and the search goes on if
        rounding hid one.
        """
        m, n = Gbar.shape
        z = z0.copy()
        JT = np.eye(n)  # Jᵀ, kept by rows so that the rotations run over contiguous memory
        R = np.zeros((n, n))
        work = np.empty(n, np.int64)
        u = np.zeros(n)
        k = 0
        r0 = start.size
        if r0:  # start from the start rows where their multipliers are >= 0
            viol = np.empty(r0)
            for a in range(r0):
                viol[a] = np.dot(Gbar[start[a]], z0) - h[start[a]]
            uR = M0inv @ viol
            if (uR >= 0.0).all():
                for a in range(r0):
                    z -= uR[a] * Gbar[start[a]]
                    work[a] = start[a]
                    u[a] = uR[a]
                JT[:, :] = J0.T
                R[:, :] = R0
                k = r0
        inW = np.zeros(m, np.bool_)
        for a in range(k):
            inW[work[a]] = True
        d = np.empty(n)
        rv = np.empty(n)
        step = np.empty(n)
        it = 0
        max_it = 20 * (m + n) + 100
        s = np.empty(m)
        if k:
            np.dot(Gbar, z, s)
            s -= h
        else:  # z̄ = z̄₀: the rows' values are -q (q = h - Ḡ z̄₀, the same product)
            for i in range(m):
                s[i] = -q[i]
        exact = True
        while it < max_it:
            # the most violated row, each at its own scale (the ratio is formed only for rows past their
            # tolerance; a NaN or infinite row fails both tests and is ignored, as in the batched method)
            zn = z0n + np.sqrt(np.dot(z, z))
            p = -1
            best = 1.0
            for i in range(m):
                if rn[i] == 0.0 or inW[i]:
                    continue
                tol_i = DECISION_TOL * (abs(h[i]) + zn * rn[i])
                si = s[i]
                if si > tol_i:
                    v = si / tol_i
                    if v > best and np.isfinite(v):
                        best, p = v, i
            if p < 0:
                if exact:
                    break
                np.dot(Gbar, z, s)
                s -= h
                exact = True
                continue
            up = 0.0
            while True:
                it += 1
                if it > max_it:
                    return FAILED, it, np.nan
                a = Gbar[p]
                np.dot(JT, a, d)
                # dual direction r = R⁻¹ d₁ (back substitution), primal direction J₂ d₂
                for i in range(k - 1, -1, -1):
                    acc = d[i]
                    for j in range(i + 1, k):
                        acc -= R[i, j] * rv[j]
                    rv[i] = acc / R[i, i]
                dd = 0.0
                for i in range(k, n):
                    dd += d[i] * d[i]
                aa = np.dot(a, a)
                move = dd > _MOVE_TOL * aa and k < n
                viol_p = np.dot(a, z) - h[p]
                t2 = viol_p / dd if move else np.inf
                rmax = 1.0
                for j in range(k):
                    rmax = max(rmax, abs(rv[j]))
                t1 = np.inf
                jd = -1
                for j in range(k):
                    if rv[j] > _POS_TOL * rmax:
                        ratio = u[j] / rv[j]
                        if ratio < t1:
                            t1, jd = ratio, j
                if not np.isfinite(viol_p) or t1 != t1 or t2 != t2:
                    return FAILED, it, np.nan
                for j in range(k):
                    if not np.isfinite(rv[j]):
                        return FAILED, it, np.nan
                if not np.isfinite(t1) and not np.isfinite(t2):  # no step: infeasible (Farkas)
                    mu = np.zeros(m)
                    mu[p] = 1.0
                    for j in range(k):
                        mu[work[j]] += max(-rv[j], 0.0)
                    mg = _farkas(mu, h, Gbar, rn, z0n)
                    if mg == mg:
                        return INFEASIBLE, it, mg
                    return FAILED, it, np.nan
                t = min(t1, t2)
                if move:
                    step[:] = 0.0
                    for i in range(k, n):
                        di = d[i]
                        for col in range(n):
                            step[col] += di * JT[i, col]
                    for col in range(n):
                        z[col] -= t * step[col]
                    for i in range(m):  # s -= t Ḡ step, step = a_p - Σ_W r_j a_j
                        s[i] -= t * GG[p, i]
                    for j in range(k):
                        trj = t * rv[j]
                        if trj != 0.0:
                            gw = GG[work[j]]
                            for i in range(m):
                                s[i] += trj * gw[i]
                    exact = False
                for j in range(k):
                    u[j] -= t * rv[j]
                up += t
                if t2 <= t1:  # add p: rotate d's tail onto position k
                    for i in range(n - 1, k, -1):
                        c, sn, rr = _givens(d[i - 1], d[i])
                        d[i - 1], d[i] = rr, 0.0
                        for col in range(n):
                            ji, jj = JT[i - 1, col], JT[i, col]
                            JT[i - 1, col] = c * ji + sn * jj
                            JT[i, col] = -sn * ji + c * jj
                    for i in range(k + 1):
                        R[i, k] = d[i]
                    work[k], u[k] = p, up
                    inW[p] = True
                    k += 1
                    break
                # drop the working row jd: remove its column of R, restore the triangle by rotations
                inW[work[jd]] = False
                for j in range(jd, k - 1):
                    work[j], u[j] = work[j + 1], u[j + 1]
                    for i in range(k):
                        R[i, j] = R[i, j + 1]
                for i in range(k):
                    R[i, k - 1] = 0.0
                k -= 1
                for i in range(jd, k):
                    c, sn, rr = _givens(R[i, i], R[i + 1, i])
                    for j in range(i, k):
                        ri, rj = R[i, j], R[i + 1, j]
                        R[i, j] = c * ri + sn * rj
                        R[i + 1, j] = -sn * ri + c * rj
                    R[i + 1, i] = 0.0
                    for col in range(n):
                        ji, jj = JT[i, col], JT[i + 1, col]
                        JT[i, col] = c * ji + sn * jj
                        JT[i + 1, col] = -sn * ji + c * jj
        if it >= max_it:
            return FAILED, it, np.nan
        # multipliers from the final working set: RᵀR λ_W = -q_W (M_WW = Ḡ_W Ḡ_Wᵀ = RᵀR)
        lam[:] = 0.0
        v = np.empty(k)
        rhs = np.empty(k)
        for i in range(k):
            rhs[i] = -q[work[i]]
        gram_solve(R, k, rhs, v, True)
        for i in range(k):
            lam[work[i]] = max(v[i], 0.0)
        return SOLVED, it, np.nan

    @_jit
    def _verify(active, z0n, h, q, Gbar, rn, lam):
        """Whether the set ``active`` solves the sample's LCP (ActiveSetSolver.verify); writes ``lam``."""
        m, n = Gbar.shape
        k = 0
        for i in range(m):
            if active[i] and rn[i] > 0.0:
                k += 1
        if k > n:
            return False
        rows = np.empty(k, np.int64)
        j = 0
        for i in range(m):
            if active[i] and rn[i] > 0.0:
                rows[j] = i
                j += 1
        lam[:] = 0.0
        zs = z0n
        s = q.copy()
        if k:
            Mk = np.empty((k, k))
            for a in range(k):
                for b in range(a + 1):
                    Mk[a, b] = Mk[b, a] = np.dot(Gbar[rows[a]], Gbar[rows[b]])
            try:
                L = np.linalg.cholesky(Mk)
            except Exception:
                return False
            v = np.empty(k)
            rhs = np.empty(k)
            for a in range(k):
                rhs[a] = -q[rows[a]]
            gram_solve(L, k, rhs, v, False)
            zd = np.zeros(n)
            for a in range(k):
                zd += v[a] * Gbar[rows[a]]
            s += Gbar @ zd
            zs = z0n + np.sqrt(np.dot(zd, zd))
            for a in range(k):
                if not (v[a] * rn[rows[a]] >= -DECISION_TOL * zs):
                    return False
            for a in range(k):
                lam[rows[a]] = max(v[a], 0.0)
        for i in range(m):
            if not (s[i] >= -DECISION_TOL * (abs(h[i]) + zs * rn[i])):
                return False
        return True

    @_jit
    def _solve_batch(theta, data, warm, has_warm, U, y, Z, code, fp, kkt, iters, margin, verified):
        """Solve and certify every sample (the arrays are written row by row)."""
        (F, G, GT, w, E, H, Hinv, Linv, Gbar, rn, aH, aF, aG, aGT, aw, aE, aHinv, aGbar, Grow, alpha, Y, bb, T,
         start, J0, R0, M0inv, GG, aGG) = data
        m, n = G.shape
        lam = np.zeros(m)
        Ft, h, z0, q = np.empty(n), np.empty(m), np.empty(n), np.empty(m)
        for b in range(theta.shape[0]):
            U[b, :] = np.nan
            y[b, :] = np.nan
            Z[b, :] = np.nan
            fp[b, :] = np.nan
            kkt[b, :] = np.nan
            code[b], iters[b], margin[b], verified[b] = FAILED, 0, np.nan, False
            th = theta[b]
            np.dot(F, th, Ft)
            np.dot(E, th, h)
            h += w
            np.dot(Linv, Ft, z0)
            z0 *= -1.0
            np.dot(Gbar, z0, q)
            for i in range(m):
                q[i] = h[i] - q[i]
            if not (np.isfinite(h).all() and np.isfinite(z0).all() and np.isfinite(q).all()):
                code[b] = INVALID
                continue
            z0n = np.sqrt(np.dot(z0, z0))
            if has_warm and _verify(warm[b], z0n, h, q, Gbar, rn, lam):
                c, it, mg = SOLVED, 1, np.nan
                verified[b] = True
            else:
                c, it, mg = _dual_active_set(z0, z0n, h, q, Gbar, GG, rn, start, J0, R0, M0inv, lam)
            iters[b] = it
            margin[b] = mg
            if c != SOLVED:
                code[b] = c
                continue
            cc = certify_one(th, Ft, h, lam, False, data, U[b], y[b], Z[b], fp[b], kkt[b])
            if cc == UNCERTIFIED:
                cc = certify_one(th, Ft, h, lam, True, data, U[b], y[b], Z[b], fp[b], kkt[b])
            code[b] = cc

    @_jit
    def _dual_batch(z0s, hs, qs, data, lam, code, iters, margin):
        """The dual active-set method for every row; codes as LCPCode (0 solved, 1 infeasible, 2 failed)."""
        Gbar, rn = data[8], data[9]
        start, J0, R0, M0inv, GG = data[23], data[24], data[25], data[26], data[27]
        buf = np.zeros(Gbar.shape[0])
        for b in range(z0s.shape[0]):
            z0 = z0s[b]
            if not (np.isfinite(z0).all() and np.isfinite(hs[b]).all() and np.isfinite(qs[b]).all()):
                continue
            c, it, mg = _dual_active_set(z0, np.sqrt(np.dot(z0, z0)), hs[b], qs[b], Gbar, GG, rn, start, J0, R0,
                                         M0inv, buf)
            iters[b], margin[b] = it, mg
            if c == SOLVED:
                lam[b] = buf
                code[b] = 0
            elif c == INFEASIBLE:
                code[b] = 1
