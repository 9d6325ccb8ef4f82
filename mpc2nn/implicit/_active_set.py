"""Exact batched solution of the implicit network's piecewise-linear equation.

The fixed points of ``y = (I - ΓM) relu(y) + c(x)`` are the solutions of the
dual linear complementarity problem of the condensed QP,

    λ >= 0,   s = q(x) + M λ >= 0,   λᵀ s = 0,     M = G H⁻¹ Gᵀ,  q = w + (E + G H⁻¹ F) x,

through ``λ = relu(y)``, ``Γ s = relu(-y)``. Two finite methods are combined:

1. **Primal-dual active set** (semismooth Newton on the ReLU equation), batched:
   each sample guesses the set ``A = {y > 0}``, solves ``M_AA λ_A = -q_A`` and
   updates ``A ← {i ∈ A: λ_i > 0} ∪ {i ∉ A: s_i < 0}`` until the set repeats.
   Samples whose sets have the same size are solved together as one batched
   linear system, so there is no per-sample Python work.
2. **Dual active set** (Goldfarb–Idnani, on ``min ½‖z - z₀‖²  s.t. Ḡz <= h`` with
   ``z = Lᵀ U``, ``H = L Lᵀ``, ``Ḡ = G L⁻ᵀ``), for the samples the first method
   leaves (cycling, degenerate active sets, infeasible states), run in lockstep:
   every sample takes one step per sweep, so each sweep is one batched solve.
   It terminates finitely with linearly independent working sets, and on an
   infeasible state returns a Farkas certificate ``μ >= 0, Gᵀμ = 0, μᵀ(w + Ex) < 0``,
   which is checked before the state is declared infeasible.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np

__all__ = ["ActiveSetSolver", "LCPSolution", "LCPCode", "Method"]

#: Relative tolerance of active-set decisions (sign tests on λ and s).
DECISION_TOL = 1e-12
#: Semismooth-Newton sweeps before a sample is handed to the dual active-set method.
MAX_PDAS_ITER = 30
#: Sweeps of the dual active-set method between recomputations of the updated Gram inverses.
REFRESH_SWEEPS = 16
#: Samples per block of the dual active-set method (each keeps an (n, n) inverse).
GI_CHUNK = 2048
#: A reduced solve ``M_AA λ_A = -q_A`` of the primal-dual sweeps counts as solved when the active rows'
#: margins ``|s_A|`` are at most this multiple of the sample's decision tolerance: ``1e3 · DECISION_TOL``
#: is a relative 1e-9, the order of the residual :data:`~mpc2nn.CERTIFICATE_TOL` accepts later, so the
#: roundoff of an ill-conditioned ``M_AA`` (which can exceed 1e-12) does not send a sample with the right
#: active set to the fallback, while a solve too inaccurate to be certified does go there.
REDUCED_RESIDUAL_FACTOR = 1e3
#: Relative violation (times ``max(1, max|h|, max|Ḡ z₀|)``) up to which the dual active-set method counts
#: its iterate as primal feasible, i.e. done: the relative scale of :data:`DECISION_TOL`, the sign tests
#: of the primal-dual sweeps.
GI_FEASIBILITY_TOL = 1e-12
#: A new row ``a`` has no primal step direction when ``‖d‖² <= GI_DIRECTION_TOL·‖a‖²`` for its component
#: ``d`` orthogonal to the working set: ``‖d‖ <= 1e-8 ‖a‖`` is about √eps, what is left of ``d`` by
#: roundoff when ``a`` lies in the span of the working set.
GI_DIRECTION_TOL = 1e-16
#: Entries ``r_j <= GI_RATIO_TOL·max(1, max|r|)`` of ``r = K⁻¹ N a`` count as zero in the dual ratio test
#: (only positive ``r_j`` limit the step): about 50 eps, above the roundoff of the updated inverse ``K⁻¹``.
GI_RATIO_TOL = 1e-14
#: Sweeps of the dual active-set method are capped at ``GI_SWEEPS_PER_ROW·(m + n) + GI_MIN_SWEEPS``; every
#: sweep adds or drops one row, and a sample still running at the cap is reported failed instead of
#: looping. The cap is generous: on the public problems (2000 states of each sample box, seed 0) no
#: sample needs more than 52 iterations of both methods together, against caps of 700 to 6700.
GI_SWEEPS_PER_ROW = 20
#: The constant part of the sweep cap of the dual active-set method (room for tiny problems).
GI_MIN_SWEEPS = 100
#: Relative tolerance of the Farkas certificate ``μ >= 0``: a state is proven infeasible only when
#: ``μᵀ(w + Ex) < -FARKAS_TOL·max(1, max|w + Ex|)·‖μ‖₁`` and ``‖Ḡᵀμ‖∞ <= FARKAS_TOL·max(1, max|Ḡ|)·‖μ‖₁``,
#: the same 1e-9 as :data:`~mpc2nn.CERTIFICATE_TOL` for solved samples.
FARKAS_TOL = 1e-9
#: Unit row directions of ``Ḡ`` rounded to this many decimals (agreeing to 1e-12) are grouped as
#: parallel: an input bound and a state bound on the same input one step later agree to roundoff
#: (~1e-16), distinct constraints differ far more.
PARALLEL_DECIMALS = 12


class LCPCode(enum.IntEnum):
    """Per-sample outcome of :meth:`ActiveSetSolver.solve` (int8 arrays hold these values)."""

    SOLVED = 0
    INFEASIBLE = 1  # a Farkas certificate was found and checked
    FAILED = 2      # no decision reached


class Method(enum.IntEnum):
    """Which method decided the sample."""

    PRIMAL_DUAL = 0  # the batched primal-dual active-set sweeps
    DUAL = 1         # the dual active-set fallback


#: Code of a sample still being worked on inside the dual active-set sweeps.
_RUNNING = -1

#: Names of the methods as :class:`~mpc2nn.ImplicitSolution` reports them.
METHOD_NAMES = {Method.PRIMAL_DUAL: "primal-dual active set", Method.DUAL: "dual active set"}


@dataclass
class LCPSolution:
    """Raw result of :meth:`ActiveSetSolver.solve` for ``B`` samples.

    Attributes
    ----------
    lam : ndarray, shape (B, m)
        Multipliers (NaN where infeasible or failed).
    code : ndarray of int8, shape (B,)
        :class:`LCPCode` values.
    iterations : ndarray of int64, shape (B,)
        Sweeps of both methods together.
    method : ndarray of int8, shape (B,)
        :class:`Method` values: which method decided the sample.
    farkas_margin : ndarray, shape (B,)
        ``-μᵀ(w + Ex)/‖μ‖₁`` of the checked Farkas certificate (NaN where none).
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
    Linv : ndarray, shape (n, n)
        Inverse of the lower Cholesky factor ``L`` of ``H = L Lᵀ``.
    G : ndarray, shape (m, n)
        Constraint matrix.
    M : ndarray, shape (m, m)
        The dual Hessian ``G H⁻¹ Gᵀ``.
    start_rows : array_like of int, shape (r,), optional
        Linearly independent rows to start from: the minimiser with these rows as
        equalities is used as the starting point of both methods wherever its
        multipliers are >= 0 (for soft constraints: the slack rows ``s >= 0``,
        whose multiplier at the start is ``ρ_l/2``). Without it both methods start
        from the unconstrained minimiser.
    """

    def __init__(self, Linv: np.ndarray, G: np.ndarray, M: np.ndarray, start_rows=None):
        self.Linv = Linv  # L⁻¹ of H = L Lᵀ; z = Lᵀ U
        self.Gbar = G @ self.Linv.T  # G L⁻ᵀ, (m, n)
        self.M = M  # Ḡ Ḡᵀ = G H⁻¹ Gᵀ
        self.m = G.shape[0]
        self.row_norm = np.linalg.norm(self.Gbar, axis=1)
        self.parallel_groups = _parallel_groups(self.Gbar / np.where(self.row_norm > 0, self.row_norm, 1)[:, None])
        self.start_rows = np.zeros(0, np.int64) if start_rows is None else np.asarray(start_rows, np.int64)
        if self.start_rows.size:
            self._start_inv = np.linalg.inv(self.M[np.ix_(self.start_rows, self.start_rows)])

    def _start(self, z0: np.ndarray, h: np.ndarray):
        """``(z_R, u_R, ok)``: minimiser on the start rows as equalities, their multipliers, and where
        those are >= 0 (elsewhere the unconstrained start is kept).
        """
        R = self.start_rows
        viol = z0 @ self.Gbar[R].T - h[:, R]
        u = viol @ self._start_inv.T
        ok = (u >= 0).all(axis=1)
        return z0 - u @ self.Gbar[R], u, ok

    # --- public -------------------------------------------------------------
    def solve(self, q: np.ndarray, z0: np.ndarray, h: np.ndarray, active0: np.ndarray | None = None
              ) -> LCPSolution:
        """Solve for ``B`` samples.

        Parameters
        ----------
        q : ndarray, shape (B, m)
            Dual offsets ``h - Ḡ z₀``.
        z0 : ndarray, shape (B, n)
            Unconstrained minimisers in the coordinates ``z = Lᵀ U``.
        h : ndarray, shape (B, m)
            Right-hand sides ``w + E x``.
        active0 : ndarray of bool, shape (B, m), optional
            Initial guess of ``{λ > 0}`` (default ``{q < 0}``, the rows the unconstrained
            minimiser violates, or those of the start rows' minimiser).

        Returns
        -------
        LCPSolution
        """
        B, m = q.shape
        lam = np.zeros((B, m))
        code = np.full(B, LCPCode.FAILED, dtype=np.int8)
        iters = np.zeros(B, dtype=np.int64)
        method = np.zeros(B, dtype=np.int8)
        margin = np.full(B, np.nan)
        if m == 0:
            code[:] = LCPCode.SOLVED
            return LCPSolution(lam, code, iters, method, margin)
        allowed = ~self._dominated(q)
        start = None
        if self.start_rows.size:
            start = self._start(z0, h)
        if active0 is not None:
            active = np.asarray(active0, bool).copy()
        elif start is not None:
            # the start rows and the rows violated at the start point
            zR, _, ok = start
            active = np.where(ok[:, None], h - zR @ self.Gbar.T < 0, q < 0)
            active[np.ix_(ok, self.start_rows)] = True
        else:
            active = q < 0
        active &= allowed
        tol = DECISION_TOL * np.maximum(1.0, np.abs(q).max(axis=1))
        left = self._pdas(q, tol, active, allowed, lam, code, iters)
        if left.size:
            method[left] = Method.DUAL
            st = None if start is None else tuple(a[left] for a in start)
            lam[left], code[left], k, margin[left] = self._dual_active_set(z0[left], h[left], q[left], st)
            iters[left] += k
        return LCPSolution(lam, code, iters, method, margin)

    # --- primal-dual active set (batched) ------------------------------------
    def _dominated(self, q: np.ndarray) -> np.ndarray:
        """``(B, m)`` rows that a positively parallel, tighter row makes redundant at each sample.

        For parallel rows ``Ḡ_j = c Ḡ_i`` (``c > 0``) only the one with the smallest
        ``q_i / ‖Ḡ_i‖`` can bind (ties: the first), so the others get ``λ = 0``.
        Leaving them out of the active sets removes the commonest degeneracy
        (an input bound and a state bound one step later on the same input).
        """
        dominated = np.zeros(q.shape, dtype=bool)
        arange = np.arange(q.shape[0])
        for rows in self.parallel_groups:
            dominated[:, rows] = True
            best = np.argmin(q[:, rows] / self.row_norm[rows], axis=1)
            dominated[arange, rows[best]] = False
        return dominated

    def _pdas(self, q, tol, active, allowed, lam, code, iters) -> np.ndarray:
        """Run the batched sweeps in place; return the indices left for the fallback.

        Samples are bucketed by the size ``k`` of their active set, so each bucket
        is one batched ``(b, k, k)`` solve. A set with more rows than ``n`` (so
        linearly dependent rows) or a reduced system that is not solved to
        ``tol`` leaves the sample to the dual active-set method.
        """
        M, Gb = self.M, self.Gbar
        n = Gb.shape[1]
        pending = np.arange(q.shape[0])
        leftover = []
        for _ in range(MAX_PDAS_ITER):
            if pending.size == 0:
                break
            iters[pending] += 1
            sizes = active[pending].sum(axis=1)
            too_big = sizes > n
            leftover.append(pending[too_big])
            still = []
            for k in np.unique(sizes[~too_big]):
                idx = pending[sizes == k]
                qg = q[idx]
                rows = np.nonzero(active[idx])[1].reshape(idx.size, k)
                lam_a, solved = _batched_reduced_solve(M, qg, rows)
                lam_full = np.zeros_like(qg)
                np.put_along_axis(lam_full, rows, lam_a, axis=1)
                s = qg + (lam_full @ Gb) @ Gb.T
                t = tol[idx, None]
                s_a = np.take_along_axis(s, rows, axis=1)
                solved &= (np.abs(s_a) <= REDUCED_RESIDUAL_FACTOR * t).all(axis=1)
                new = (s < -t) & allowed[idx]
                np.put_along_axis(new, rows, lam_a > -t, axis=1)
                same = solved & (new == active[idx]).all(axis=1)
                done = idx[same]
                lam[done] = np.maximum(lam_full[same], 0.0)
                code[done] = LCPCode.SOLVED
                leftover.append(idx[~solved])
                moving = ~same & solved
                active[idx[moving]] = new[moving]
                still.append(idx[moving])
            pending = np.concatenate(still) if still else np.zeros(0, dtype=np.int64)
        leftover.append(pending)
        return np.concatenate(leftover)

    # --- dual active set (batched, in lockstep) -------------------------------
    def _dual_active_set(self, z0: np.ndarray, h: np.ndarray, q: np.ndarray, start=None):
        """Goldfarb–Idnani on ``min ½‖z - z₀‖² s.t. Ḡ z <= h`` for ``b`` samples at once.

        Every sample takes one step of the method per sweep; working sets are kept
        as index rows padded with a zero row, and the inverse of each working set's
        Gram matrix ``K = N Nᵀ`` is updated by bordering (add) and elimination (drop)
        in O(k²), recomputed every :data:`REFRESH_SWEEPS` sweeps against drift.
        ``start = (z_R, u_R, ok)`` starts the samples ``ok`` from the start rows.
        Returns ``(λ (b, m), code (b,), iterations (b,), farkas_margin (b,))``.
        """
        b = z0.shape[0]
        if b > GI_CHUNK:  # bound the (b, n, n) inverses kept in memory
            parts = [self._dual_active_set(z0[i:i + GI_CHUNK], h[i:i + GI_CHUNK], q[i:i + GI_CHUNK],
                                           None if start is None else tuple(a[i:i + GI_CHUNK] for a in start))
                     for i in range(0, b, GI_CHUNK)]
            return tuple(np.concatenate(x) for x in zip(*parts, strict=True))
        Gb = self.Gbar
        m, n = Gb.shape
        Gx = np.vstack([Gb, np.zeros((1, n))])  # row m: padding
        tol = GI_FEASIBILITY_TOL * np.maximum.reduce([np.ones(b), np.abs(h).max(axis=1),
                                                      np.abs(z0 @ Gb.T).max(axis=1)])
        z = z0.copy()
        work = np.full((b, n), m)
        u = np.zeros((b, n))
        size = np.zeros(b, dtype=np.int64)
        p = np.full(b, -1)
        up = np.zeros(b)
        code = np.full(b, _RUNNING, dtype=np.int8)
        margin = np.full(b, np.nan)
        iters = np.zeros(b, dtype=np.int64)
        Kinv = np.broadcast_to(np.eye(n), (b, n, n)).copy()  # padding slots: identity
        if start is not None and self.start_rows.size:
            zR, uR, ok = start
            r = self.start_rows.size
            z[ok] = zR[ok]
            work[np.ix_(ok, np.arange(r))] = self.start_rows
            u[np.ix_(ok, np.arange(r))] = uR[ok]
            size[ok] = r
            Kinv[np.ix_(ok, np.arange(r), np.arange(r))] = self._start_inv
        for sweep in range(GI_SWEEPS_PER_ROW * (m + n) + GI_MIN_SWEEPS):
            need = np.flatnonzero((code == _RUNNING) & (p < 0))
            if need.size:
                viol = z[need] @ Gb.T - h[need]
                pj = np.argmax(viol, axis=1)
                ok = viol[np.arange(need.size), pj] <= tol[need]
                code[need[ok]] = LCPCode.SOLVED
                p[need[~ok]], up[need[~ok]] = pj[~ok], 0.0
            idx = np.flatnonzero(code == _RUNNING)
            if idx.size == 0:
                break
            iters[idx] += 1
            a = Gb[p[idx]]
            kmax = max(1, int(size[idx].max()))  # slots beyond every working set are padding
            N = Gx[work[idx, :kmax]]
            pad = work[idx, :kmax] == m
            if sweep % REFRESH_SWEEPS == REFRESH_SWEEPS - 1:
                K = N @ N.transpose(0, 2, 1) + pad[:, :, None] * np.eye(kmax)
                Kinv[idx, :kmax, :kmax] = _inverse_spd_batch(K)
            r = (Kinv[idx, :kmax, :kmax] @ (N @ a[:, :, None]))[..., 0]
            d = a - (N.transpose(0, 2, 1) @ r[..., None])[..., 0]
            dd, aa = (d * d).sum(axis=1), (a * a).sum(axis=1)
            # a full working set spans R^n: no direction, whatever rounding leaves in d
            move = (dd > GI_DIRECTION_TOL * aa) & (size[idx] < n)
            viol_p = (a * z[idx]).sum(axis=1) - h[idx, p[idx]]
            t2 = np.where(move, viol_p / np.where(move, dd, 1.0), np.inf)
            pos = ~pad & (r > GI_RATIO_TOL * np.maximum(1.0, np.abs(r).max(axis=1, keepdims=True)))
            ratios = np.where(pos, u[idx, :kmax] / np.where(pos, r, 1.0), np.inf)
            j = np.argmin(ratios, axis=1)
            t1 = ratios[np.arange(idx.size), j]
            stuck = ~np.isfinite(t1) & ~np.isfinite(t2)
            if stuck.any():
                code[idx[stuck]], margin[idx[stuck]] = self._check_farkas(p[idx[stuck]], work[idx[stuck], :kmax],
                                                                          r[stuck], h[idx[stuck]])
            go = ~stuck
            t = np.where(go, np.minimum(t1, t2), 0.0)
            z[idx] -= np.where(move, t, 0.0)[:, None] * d
            u[idx, :kmax] -= t[:, None] * r
            up[idx] += t
            add = go & (t2 <= t1)
            ia, ka = idx[add], size[idx[add]]
            _border(Kinv, ia, ka, r[add], dd[add], min(n, kmax + 1))
            work[ia, ka], u[ia, ka], size[ia], p[ia] = p[ia], up[ia], ka + 1, -1
            drop = go & ~add
            idr, jd, last = idx[drop], j[drop], size[idx[drop]] - 1
            _eliminate(Kinv, idr, jd, last, kmax)
            work[idr, jd], u[idr, jd] = work[idr, last], u[idr, last]
            work[idr, last], u[idr, last], size[idr] = m, 0.0, last
        code[code == _RUNNING] = LCPCode.FAILED
        lam = np.full((b, m), np.nan)
        solved = np.flatnonzero(code == LCPCode.SOLVED)
        if solved.size:
            lam[solved] = self._polish(work[solved], q[solved])
        return lam, code, iters, margin

    def _polish(self, work: np.ndarray, q: np.ndarray) -> np.ndarray:
        """Multipliers recomputed from the final working sets: ``M_WW λ_W = -q_W`` (padded rows give 0)."""
        m, n = self.Gbar.shape
        Gx = np.vstack([self.Gbar, np.zeros((1, n))])
        N = Gx[work]
        pad = work == m
        K = N @ N.transpose(0, 2, 1) + pad[:, :, None] * np.eye(n)
        qx = np.concatenate([q, np.zeros((q.shape[0], 1))], axis=1)
        lam_w = _solve_spd_batch(K, -np.take_along_axis(qx, work, axis=1))
        lam = np.zeros((q.shape[0], m + 1))
        np.put_along_axis(lam, work, np.maximum(lam_w, 0.0), axis=1)
        return lam[:, :m]

    def _check_farkas(self, p, work, r, h) -> tuple[np.ndarray, np.ndarray]:
        """Codes (1 proven infeasible, else 2) and margins of ``μ = e_p + Σ_W max(-r, 0) e_W``.

        ``μ >= 0`` proves infeasibility when ``Gᵀμ = 0`` (checked in z-coordinates,
        ``Ḡᵀμ = L⁻¹Gᵀμ``) and ``μᵀ(w + Ex) < 0``; the margin is ``-μᵀ(w + Ex)/‖μ‖₁``.
        """
        m = self.m
        mu = np.zeros((p.size, m + 1))
        mu[np.arange(p.size), p] = 1.0
        np.add.at(mu, (np.repeat(np.arange(p.size), work.shape[1]), work.ravel()), np.maximum(-r, 0.0).ravel())
        mu = mu[:, :m]
        norm1 = mu.sum(axis=1)
        resid = np.abs(mu @ self.Gbar).max(axis=1) / norm1
        margin = -(mu * h).sum(axis=1) / norm1
        proven = (margin > FARKAS_TOL * np.maximum(1.0, np.abs(h).max(axis=1))) & (
            resid <= FARKAS_TOL * max(1.0, float(np.abs(self.Gbar).max())))
        return np.where(proven, LCPCode.INFEASIBLE, LCPCode.FAILED).astype(np.int8), np.where(proven, margin, np.nan)


def _batched_reduced_solve(M: np.ndarray, q: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Solve ``M_AA λ_A = -q_A`` for a batch of index sets ``rows`` (b, k) of equal size.

    Returns ``λ_A`` (b, k) and a mask (b,) of the samples whose system was solved
    (a singular ``M_AA`` in the batch is retried sample by sample and marked unsolved).
    """
    b, k = rows.shape
    if k == 0:
        return np.zeros((b, 0)), np.ones(b, bool)
    Maa = M[rows[:, :, None], rows[:, None, :]]
    rhs = -np.take_along_axis(q, rows, axis=1)
    try:
        return np.linalg.solve(Maa, rhs[..., None])[..., 0], np.ones(b, bool)
    except np.linalg.LinAlgError:
        out, ok = np.zeros((b, k)), np.ones(b, bool)
        for i in range(b):
            try:
                out[i] = np.linalg.solve(Maa[i], rhs[i])
            except np.linalg.LinAlgError:
                ok[i] = False
        return out, ok


def _border(Kinv: np.ndarray, rows: np.ndarray, slot: np.ndarray, r: np.ndarray, gamma: np.ndarray,
            L: int) -> None:
    """Add a row in the padding ``slot`` of each sample ``rows``: with ``r = K⁻¹ N a`` (zero on padding)
    and ``γ = ‖a - Nᵀ r‖²``, the new inverse is ``K⁻¹ - e eᵀ + r̃ r̃ᵀ / γ``, ``r̃ = r - e`` (in place).
    """
    if rows.size == 0:
        return
    rt = np.zeros((rows.size, L))
    rt[:, :r.shape[1]] = r
    ar = np.arange(rows.size)
    rt[ar, slot] = -1.0
    block = Kinv[rows, :L, :L]
    block[ar, slot, slot] = 0.0
    Kinv[rows, :L, :L] = block + rt[:, :, None] * rt[:, None, :] / gamma[:, None, None]


def _eliminate(Kinv: np.ndarray, rows: np.ndarray, slot: np.ndarray, last: np.ndarray, L: int) -> None:
    """Remove the working-set row in ``slot`` (the row in ``last`` moves there, ``last`` becomes padding):
    swap the two in ``K⁻¹``, then the Schur complement ``K⁻¹ - c cᵀ / c_last``, ``c = K⁻¹ e_last`` (in place).
    """
    if rows.size == 0:
        return
    ar = np.arange(rows.size)
    perm = np.tile(np.arange(L), (rows.size, 1))
    perm[ar, slot], perm[ar, last] = last, slot
    block = np.take_along_axis(Kinv[rows, :L, :L], perm[:, :, None], axis=1)
    block = np.take_along_axis(block, perm[:, None, :], axis=2)
    c = block[ar, :, last]
    block = block - c[:, :, None] * c[:, None, :] / c[ar, last][:, None, None]
    block[ar, last, :] = 0.0
    block[ar, :, last] = 0.0
    block[ar, last, last] = 1.0
    Kinv[rows, :L, :L] = block


def _inverse_spd_batch(K: np.ndarray) -> np.ndarray:
    """``K⁻¹`` for a batch (b, k, k); the pseudo-inverse where ``K`` is singular."""
    try:
        return np.linalg.inv(K)
    except np.linalg.LinAlgError:
        return np.linalg.pinv(K, hermitian=True)


def _solve_spd_batch(K: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """``K⁻¹ rhs`` for a batch (b, n, n), (b, n); the pseudo-inverse where ``K`` is singular."""
    try:
        return np.linalg.solve(K, rhs[..., None])[..., 0]
    except np.linalg.LinAlgError:
        return (np.linalg.pinv(K, hermitian=True) @ rhs[..., None])[..., 0]


def _parallel_groups(directions: np.ndarray) -> list[np.ndarray]:
    """Index arrays of rows with the same unit direction (to :data:`PARALLEL_DECIMALS`), groups of two or more."""
    groups: dict[bytes, list[int]] = {}
    rounded = np.round(directions, PARALLEL_DECIMALS) + 0.0  # + 0.0 turns -0.0 into 0.0
    for i, row in enumerate(rounded):
        if np.any(row):
            groups.setdefault(row.tobytes(), []).append(i)
    return [np.array(g) for g in groups.values() if len(g) > 1]
