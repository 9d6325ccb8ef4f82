"""Exact batched solution of the implicit network's piecewise-linear equation.

The fixed points of ``y = (I - ΓM) relu(y) + c(x)`` are the solutions of the
dual linear complementarity problem of the condensed QP,

    λ >= 0,   s = q(x) + M λ >= 0,   λᵀ s = 0,     M = G H⁻¹ Gᵀ,  q = w + (E + G H⁻¹ F) x,

through ``λ = relu(y)``, ``Γ s = relu(-y)``. Two finite methods are combined:

1. **Primal-dual active set** (semismooth Newton on the ReLU equation), batched:
   each sample guesses the set ``A = {y > 0}``, solves ``M_AA λ_A = -q_A`` and
   updates ``A ← {i ∈ A: λ_i > 0} ∪ {i ∉ A: s_i < 0}`` until the set repeats.
   Samples that share an active set are solved together with one cached
   Cholesky factor, so explicit-MPC-like reuse makes it fast.
2. **Dual active set** (Goldfarb–Idnani, on ``min ½‖z - z₀‖²  s.t. Ḡz <= h`` with
   ``z = Lᵀ U``, ``H = L Lᵀ``, ``Ḡ = G L⁻ᵀ``), per sample, for the samples the
   first method leaves (cycling, degenerate active sets, infeasible states).
   It terminates finitely with linearly independent working sets, and on an
   infeasible state returns a Farkas certificate ``μ >= 0, Gᵀμ = 0, μᵀ(w + Ex) < 0``,
   which is checked before the state is declared infeasible.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg

__all__ = ["ActiveSetSolver"]

#: Relative tolerance of active-set decisions (sign tests on λ and s).
DECISION_TOL = 1e-12
#: Semismooth-Newton sweeps before a sample is handed to the dual active-set method.
MAX_PDAS_ITER = 30
#: Bound on the number of cached active-set factorisations.
MAX_CACHE = 8192


@dataclass
class LCPSolution:
    """Raw result of :meth:`ActiveSetSolver.solve` for ``B`` samples.

    ``lam`` (B, m) multipliers (NaN where infeasible/failed), ``code`` (B,) 0 solved,
    1 infeasible (certificate checked), 2 failed; ``iterations`` (B,); ``method``
    (B,) 0 primal-dual active set, 1 dual active set; ``farkas_margin`` (B,)
    ``-μᵀ(w + Ex)/‖μ‖₁`` of the certificate (NaN where none).
    """

    lam: np.ndarray
    code: np.ndarray
    iterations: np.ndarray
    method: np.ndarray
    farkas_margin: np.ndarray


class ActiveSetSolver:
    """Batched exact solver for the dual LCP of ``min ½UᵀHU + xᵀFᵀU s.t. GU <= w + Ex``.

    Parameters
    ----------
    H : (n, n) positive definite; G : (m, n)
    """

    def __init__(self, H: np.ndarray, G: np.ndarray):
        L = np.linalg.cholesky(H)
        self.Gbar = scipy.linalg.solve_triangular(L, G.T, lower=True).T  # G L⁻ᵀ, (m, n)
        self.M = self.Gbar @ self.Gbar.T
        self.m = G.shape[0]
        self._cache: dict[bytes, tuple | None] = {}

    # --- public -------------------------------------------------------------
    def solve(self, q: np.ndarray, z0: np.ndarray, h: np.ndarray, active0: np.ndarray | None = None
              ) -> LCPSolution:
        """Solve for ``B`` samples.

        Parameters
        ----------
        q : (B, m) ``h - Ḡ z₀``; z0 : (B, n) unconstrained minimiser in z-coordinates;
        h : (B, m) right-hand sides ``w + E x``; active0 : (B, m) bool initial guess of
            ``{λ > 0}`` (default ``{q < 0}``, the rows the unconstrained minimiser violates).
        """
        B, m = q.shape
        lam = np.zeros((B, m))
        code = np.full(B, 2, dtype=np.int8)
        iters = np.zeros(B, dtype=np.int64)
        method = np.zeros(B, dtype=np.int8)
        margin = np.full(B, np.nan)
        if m == 0:
            code[:] = 0
            return LCPSolution(lam, code, iters, method, margin)
        active = (q < 0) if active0 is None else np.asarray(active0, bool).copy()
        tol = DECISION_TOL * np.maximum(1.0, np.abs(q).max(axis=1))
        leftover = self._pdas(q, tol, active, lam, code, iters)
        for i in leftover:
            method[i] = 1
            lam_i, c, k, mg = self._dual_active_set(z0[i], h[i])
            lam[i], code[i], iters[i], margin[i] = lam_i, c, iters[i] + k, mg
        return LCPSolution(lam, code, iters, method, margin)

    # --- primal-dual active set (batched) ------------------------------------
    def _factor(self, key: bytes, mask: np.ndarray):
        """Cached ``(rows, cho)`` of ``M_AA`` for the set ``mask``; ``None`` if ``M_AA`` is singular."""
        if key in self._cache:
            return self._cache[key]
        rows = np.flatnonzero(mask)
        fac = (rows, None)
        if rows.size:
            Maa = self.M[np.ix_(rows, rows)]
            try:
                c = scipy.linalg.cho_factor(Maa, lower=True, check_finite=False)
                piv = np.diag(c[0])
                if piv.min() ** 2 <= 1e-11 * max(1.0, float(np.diag(Maa).max())):
                    fac = None  # rank-deficient Ḡ_A: leave it to the dual active-set method
                else:
                    fac = (rows, c)
            except np.linalg.LinAlgError:
                fac = None
        if len(self._cache) >= MAX_CACHE:
            self._cache.clear()
        self._cache[key] = fac
        return fac

    def _pdas(self, q, tol, active, lam, code, iters) -> np.ndarray:
        """Run the batched sweeps in place; return the indices left for the fallback."""
        M = self.M
        pending = np.arange(q.shape[0])
        leftover = []
        for _ in range(MAX_PDAS_ITER):
            if pending.size == 0:
                break
            packed = np.packbits(active[pending], axis=1)
            keys, inv = np.unique(packed, axis=0, return_inverse=True)
            inv = inv.reshape(-1)
            order = np.argsort(inv, kind="stable")
            bounds = np.concatenate([[0], np.cumsum(np.bincount(inv, minlength=len(keys)))])
            still = []
            for g in range(len(keys)):
                idx = pending[order[bounds[g]:bounds[g + 1]]]
                fac = self._factor(keys[g].tobytes(), active[idx[0]])
                iters[idx] += 1
                if fac is None:
                    leftover.append(idx)
                    continue
                rows, cho = fac
                qg = q[idx]
                if rows.size:
                    lam_a = -scipy.linalg.cho_solve(cho, qg[:, rows].T, check_finite=False).T
                    s = qg + lam_a @ M[rows]
                else:
                    lam_a, s = np.zeros((idx.size, 0)), qg
                t = tol[idx, None]
                new = s < -t
                new[:, rows] = lam_a > -t
                same = (new == active[idx]).all(axis=1)
                done = idx[same]
                if done.size:
                    lam[done] = 0.0
                    lam[np.ix_(done, rows)] = np.maximum(lam_a[same], 0.0)
                    code[done] = 0
                moving = idx[~same]
                active[moving] = new[~same]
                still.append(moving)
            pending = np.concatenate(still) if still else np.zeros(0, dtype=np.int64)
        leftover.append(pending)
        return np.concatenate(leftover) if leftover else np.zeros(0, dtype=np.int64)

    # --- dual active set (per sample) ----------------------------------------
    def _dual_active_set(self, z0: np.ndarray, h: np.ndarray):
        """Goldfarb–Idnani on ``min ½‖z - z₀‖² s.t. Ḡ z <= h``: ``(λ, code, iterations, farkas_margin)``."""
        Gb = self.Gbar
        m, n = Gb.shape
        scale = max(1.0, float(np.abs(h).max()), float(np.abs(Gb @ z0).max()))
        tol = 1e-12 * scale
        z = z0.copy()
        work: list[int] = []
        u = np.zeros(0)
        it = 0
        max_it = 20 * (m + n) + 100
        while it < max_it:
            viol = Gb @ z - h
            p = int(np.argmax(viol))
            if viol[p] <= tol:
                lam = np.zeros(m)
                lam[work] = np.maximum(u, 0.0)
                return lam, 0, it, np.nan
            a = Gb[p]
            up = 0.0
            while it < max_it:
                it += 1
                if work:
                    N = Gb[work]
                    r = np.linalg.lstsq(N.T, a, rcond=None)[0]
                    d = a - N.T @ r
                else:
                    r, d = np.zeros(0), a
                dd = float(d @ d)
                t2 = (float(a @ z) - h[p]) / dd if dd > 1e-20 * float(a @ a) else np.inf
                pos = r > 1e-14 * max(1.0, float(np.abs(r).max(initial=0.0)))
                t1, j = np.inf, -1
                if pos.any():
                    ratios = np.where(pos, u / np.where(pos, r, 1.0), np.inf)
                    j = int(np.argmin(ratios))
                    t1 = float(ratios[j])
                if not np.isfinite(t1) and not np.isfinite(t2):
                    mu = np.zeros(m)
                    mu[p] = 1.0
                    mu[work] += np.maximum(-r, 0.0)
                    c, mg = self._check_farkas(mu, h)
                    return np.full(m, np.nan), c, it, mg
                t = min(t1, t2)
                if np.isfinite(dd) and dd > 1e-20 * float(a @ a):
                    z = z - t * d
                u = u - t * r
                up += t
                if t2 <= t1:
                    work.append(p)
                    u = np.append(u, up)
                    break
                del work[j]
                u = np.delete(u, j)
        return np.full(m, np.nan), 2, it, np.nan

    def _check_farkas(self, mu: np.ndarray, h: np.ndarray) -> tuple[int, float]:
        """``(code, margin)``: 1 with the margin if ``μ`` proves infeasibility, else 2 (failed)."""
        norm1 = float(mu.sum())
        resid = float(np.abs(self.Gbar.T @ mu).max()) / norm1
        margin = -float(mu @ h) / norm1
        scale = max(1.0, float(np.abs(h).max()))
        if margin > 1e-9 * scale and resid <= 1e-9 * max(1.0, float(np.abs(self.Gbar).max())):
            return 1, margin
        return 2, np.nan
