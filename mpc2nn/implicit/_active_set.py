"""Exact batched solution of the implicit network's piecewise-linear equation.

The fixed points of ``y = (I - ΓM) relu(y) + c(x)`` are the solutions of the
dual linear complementarity problem of the condensed QP,

    λ >= 0,   s = q(x) + M λ >= 0,   λᵀ s = 0,     M = G H⁻¹ Gᵀ,  q = w + (E + G H⁻¹ F) x,

through ``λ = relu(y)``, ``Γ s = relu(-y)``. Three finite methods are combined:

1. **Primal-dual active set** (semismooth Newton on the ReLU equation), batched:
   each sample guesses the set ``A = {y > 0}``, solves ``M_AA λ_A = -q_A`` and
   updates ``A ← {i ∈ A: λ_i > 0} ∪ {i ∉ A: s_i < 0}`` until the set repeats.
   The inverses ``M_AA⁻¹`` are kept in a bounded cache keyed by the set (states
   close to each other — a closed loop, a batch — share their sets), so a set seen
   before costs one small matrix product per sample; a cached or warm-started guess
   is verified by the same batched check before any search.
2. **Dual active set** (Goldfarb–Idnani, on ``min ½‖z - z₀‖²  s.t. Ḡz <= h`` with
   ``z = Lᵀ U``, ``H = L Lᵀ``, ``Ḡ = G L⁻ᵀ``), for the samples the first method
   leaves (cycling, degenerate active sets, infeasible states), run in lockstep:
   every sample takes one step per sweep, so each sweep is one batched solve.
   On an infeasible state it returns a Farkas certificate ``μ >= 0, Gᵀμ = 0,
   μᵀ(w + Ex) < 0``, checked before the state is declared infeasible.
3. **Least-distance programming by NNLS** (Lawson–Hanson, ``scipy.optimize.nnls``,
   QR-based), sample by sample, the last resort for what the first two leave
   (ill-conditioned working sets): ``min ½‖v‖² s.t. Ḡv <= q`` is solved through
   ``min ‖[Ḡᵀ; qᵀ]u + e‖, u >= 0``, whose zero residual is itself a Farkas certificate.

Every decision is taken at the row's own scale (``|h_i| + ‖Ḡ_i‖ ‖z‖`` for a margin,
``‖z‖ / ‖Ḡ_i‖`` for a multiplier), so a huge finite bound loosens no other row.
"""

from __future__ import annotations

import enum
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ._batched_linalg import border, eliminate, inverse_batch, inverse_spd_batch, parallel_groups, solve_spd_batch
from ._least_distance import least_distance

__all__ = ["ActiveSetSolver", "LCPSolution", "LCPCode", "Method"]

#: Relative tolerance of active-set decisions (sign tests on λ and s, each at its row's own scale).
DECISION_TOL = 1e-12
#: Accuracy asked of a reduced solve on its own rows (``|s_A| <= ACCURACY_FACTOR · tol``) before the
#: sample's set is trusted; looser systems go to the dual active-set method.
ACCURACY_FACTOR = 1e3
#: Semismooth-Newton sweeps before a sample is handed to the dual active-set method (a sample whose set
#: comes back to the one of two sweeps before, a cycle, is handed over at once).
MAX_PDAS_ITER = 15
#: Sweeps of the dual active-set method between recomputations of the updated Gram inverses.
REFRESH_SWEEPS = 16
#: Samples per block of the dual active-set method (each keeps an (n, n) inverse).
GI_CHUNK = 2048
#: Bytes of ``M_AA⁻¹`` inverses the active-set cache keeps (least recently used ones go first).
CACHE_BYTES = 64 * 2**20
#: Relative tolerance of a Farkas certificate: ``‖Ḡᵀμ‖∞ <= FARKAS_TOL · (|Ḡ|ᵀμ)max`` and
#: ``-μᵀh >= FARKAS_TOL · |μ|ᵀ|h|`` (rounding-level, like the KKT certificate).
FARKAS_TOL = 1e-9
#: A Farkas certificate ``μ`` with a rounding residual ``r = Ḡᵀμ ≠ 0`` excludes feasible points only inside the
#: ball ``‖z̄‖ < R = -μᵀh / ‖r‖₂`` (a feasible ``z̄`` has ``rᵀz̄ <= μᵀh < 0``). It is accepted only where ``R`` is at
#: least FARKAS_RADIUS times the scale of the sample's solutions, ``‖z̄₀‖ + max_{μ_i > 0} |h_i| / ‖Ḡ_i‖`` (the
#: unconstrained minimiser and the distances from the origin of the planes of the rows the certificate
#: uses). A rounding-level certificate at moderate scales has R ~ 1e12 or more times that scale; states near
#: 1e100 whose cancellations leave R below it (soft problems, feasible for every state, were "proven"
#: infeasible there) are left undecided.
FARKAS_RADIUS = 1e6


class LCPCode(enum.IntEnum):
    """Per-sample outcome of :meth:`ActiveSetSolver.solve` (int8 arrays hold these values)."""

    SOLVED = 0
    INFEASIBLE = 1  # a Farkas certificate was found and checked
    FAILED = 2      # no decision reached


class Method(enum.IntEnum):
    """Which method decided the sample."""

    PRIMAL_DUAL = 0  # the batched primal-dual active-set sweeps
    DUAL = 1         # the dual active-set fallback
    NNLS = 2         # the least-distance (NNLS) last resort


#: Code of a sample still being worked on inside the dual active-set sweeps.
_RUNNING = -1

#: Names of the methods as :class:`~mpc2nn.ImplicitSolution` reports them.
METHOD_NAMES = {Method.PRIMAL_DUAL: "primal-dual active set", Method.DUAL: "dual active set",
                Method.NNLS: "least-distance NNLS"}


@dataclass
class LCPSolution:
    """Raw result of :meth:`ActiveSetSolver.solve` for ``B`` samples.

    Attributes
    ----------
    lam : ndarray, shape (B, m)
        Multipliers (NaN where infeasible or failed).
    code : ndarray of int8, shape (B,)
        :class:`LCPCode` values.
    iterations : ndarray of int, shape (B,)
        Iterations of the methods that ran.
    method : ndarray of int8, shape (B,)
        :class:`Method` values: which method decided the sample.
    farkas_margin : ndarray, shape (B,)
        ``-μᵀ(w + Ex)/‖μ‖₁`` of the infeasibility certificate (NaN where none).
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
        Inverse of the Cholesky factor ``L`` of ``H = L Lᵀ``.
    G : ndarray, shape (m, n)
        Constraint matrix.
    M : ndarray, shape (m, m)
        ``G H⁻¹ Gᵀ``.
    start_rows : array_like of int, shape (r,), optional
        Linearly independent rows to start from: the minimiser with these rows as
        equalities is used as the starting point of both methods wherever its
        multipliers are >= 0 (for soft constraints: the slack rows ``s >= 0``,
        whose multiplier at the start is ``ρ_l/2``). Without it both methods start
        from the unconstrained minimiser.
    """

    def __init__(self, Linv: np.ndarray, G: np.ndarray, M: np.ndarray, start_rows=None):
        self.Linv = Linv  # L⁻¹ of H = L Lᵀ; z = Lᵀ U
        self.Gbar = np.ascontiguousarray(G @ self.Linv.T)  # G L⁻ᵀ, (m, n)
        self.GbarT = np.ascontiguousarray(self.Gbar.T)
        self.M = M  # Ḡ Ḡᵀ = G H⁻¹ Gᵀ
        self.m = G.shape[0]
        self.row_norm = np.linalg.norm(self.Gbar, axis=1)
        self._norm_safe = np.where(self.row_norm > 0, self.row_norm, 1.0)
        self.parallel_groups = parallel_groups(self.Gbar / self._norm_safe[:, None])
        self.start_rows = np.zeros(0, np.int64) if start_rows is None else np.asarray(start_rows, np.int64)
        if self.start_rows.size:
            self._start_inv = np.linalg.inv(self.M[np.ix_(self.start_rows, self.start_rows)])
        self._cache: OrderedDict[bytes, np.ndarray | None] = OrderedDict()
        self._cache_bytes = 0
        #: The set of the last single state solved (the lean path of one state tries it first).
        self.last_set: np.ndarray | None = None
        #: A compiled replacement of the dual active-set fallback, ``(z₀, h, q) -> (λ, code, iterations,
        #: farkas_margin)`` (set by the network where numba is installed; the samples take the same method).
        self.compiled_dual: Callable | None = None

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
            ``h - Ḡ z₀``.
        z0 : ndarray, shape (B, n)
            Unconstrained minimiser in z-coordinates.
        h : ndarray, shape (B, m)
            Right-hand sides ``w + E x``.
        active0 : ndarray of bool, shape (B, m), optional
            Initial guess of ``{λ > 0}`` (default ``{q < 0}``, the rows the unconstrained minimiser
            violates).

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
        allowed = self._allowed(q)
        start = None
        if self.start_rows.size:
            start = self._start(z0, h)
        if active0 is not None:
            active = np.asarray(active0, bool).copy()
        elif start is not None:
            # the start rows and the rows violated at the start point
            zR, _, ok = start
            active = np.where(ok[:, None], h - zR @ self.GbarT < 0, q < 0)
            active[np.ix_(ok, self.start_rows)] = True
        else:
            active = q < 0
        active &= allowed
        with np.errstate(over="ignore", invalid="ignore"):  # huge states: the certificate judges them
            z0n = np.linalg.norm(z0, axis=1)
            left = self._pdas(q, h, z0n, active, allowed, lam, code, iters)
        if left.size:
            method[left] = Method.DUAL
            st = None if start is None else tuple(a[left] for a in start)
            with np.errstate(over="ignore", invalid="ignore"):
                if self.compiled_dual is not None:
                    lam[left], code[left], k, margin[left] = self.compiled_dual(z0[left], h[left], q[left])
                else:
                    lam[left], code[left], k, margin[left] = self._dual_active_set(z0[left], h[left], q[left], st)
            iters[left] += k
        rest = np.flatnonzero(code == LCPCode.FAILED)
        if rest.size:
            method[rest] = Method.NNLS
            lam[rest], code[rest], margin[rest] = least_distance(self, q[rest], h[rest], z0n[rest])
        return LCPSolution(lam, code, iters, method, margin)

    def inverse_of(self, active: np.ndarray):
        """``(rows, M_AA⁻¹)`` of one active set, from the cache (computed and cached if new).

        Parameters
        ----------
        active : ndarray of bool, shape (m,)
            The set ``A``.

        Returns
        -------
        tuple or None
            ``(rows, M_AA⁻¹)``, or ``None`` where ``M_AA`` is singular or the set has more rows than ``n``.
        """
        key = np.packbits(active).tobytes()
        hit = self._cache.get(key, False)
        if hit is not False:
            self._cache.move_to_end(key)
            return hit
        rows = np.flatnonzero(active)
        entry = None
        if rows.size <= self.Gbar.shape[1]:
            Minv = inverse_batch(self.M[np.ix_(rows, rows)][None])[0]
            entry = None if Minv is None else (rows, Minv)
        self._remember(key, entry, rows.size)
        return entry

    def verify(self, q: np.ndarray, z0n: float, h: np.ndarray, active: np.ndarray) -> np.ndarray | None:
        """Check whether one active set solves the LCP of one sample: one reduced solve, no search.

        Parameters
        ----------
        q : ndarray, shape (m,)
            ``h - Ḡ z₀`` of the sample.
        z0n : float
            ``‖z₀‖`` (the scale of the decision tolerances).
        h : ndarray, shape (m,)
            Right-hand sides ``w + E x``.
        active : ndarray of bool, shape (m,)
            The candidate set.

        Returns
        -------
        ndarray, shape (m,), or None
            The multipliers ``λ`` where the set solves the LCP at the decision tolerances, else ``None``.
        """
        entry = self.inverse_of(active & (self.row_norm > 0))
        if entry is None:
            return None
        rows, Minv = entry
        lam = np.zeros(self.m)
        if rows.size:
            lam_a = -(Minv @ q[rows])
            zd = lam_a @ self.Gbar[rows]
            s = q + self.Gbar @ zd
            zs = z0n + float(np.sqrt(zd @ zd))
            if not (lam_a * self.row_norm[rows] >= -DECISION_TOL * zs).all():
                return None
            lam[rows] = np.maximum(lam_a, 0.0)
        else:
            s, zs = q, z0n
        if not (s >= -DECISION_TOL * (np.abs(h) + zs * self.row_norm)).all():
            return None
        return lam

    def clear_cache(self) -> None:
        """Forget the cached active sets."""
        self._cache.clear()
        self._cache_bytes = 0

    # --- primal-dual active set (batched) ------------------------------------
    def _allowed(self, q: np.ndarray) -> np.ndarray:
        """``(B, m)`` rows that may enter an active set: not zero, and not made redundant by a tighter
        positively parallel row.

        For parallel rows ``Ḡ_j = c Ḡ_i`` (``c > 0``) only the one with the smallest
        ``q_i / ‖Ḡ_i‖`` can bind (ties: the first), so the others get ``λ = 0``.
        Leaving them out of the active sets removes the commonest degeneracy
        (an input bound and a state bound one step later on the same input).
        """
        allowed = np.broadcast_to(self.row_norm > 0, q.shape).copy()
        arange = np.arange(q.shape[0])
        for rows in self.parallel_groups:
            allowed[:, rows] = False
            best = np.argmin(q[:, rows] / self.row_norm[rows], axis=1)
            allowed[arange, rows[best]] = True
        return allowed

    def _inverses(self, active: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
        """For each sample's set (``active`` (b, m) bool): the set's index in a list of ``(rows, M_AA⁻¹)``
        entries (``None`` where ``M_AA`` is singular), computed once per distinct set and cached.
        """
        packed = np.packbits(active, axis=1)
        keys = np.ascontiguousarray(packed).view(np.dtype((np.void, packed.shape[1]))).ravel()
        uniq, first, inv = np.unique(keys, return_index=True, return_inverse=True)
        entries: list = [None] * uniq.size
        missing: dict[int, list[int]] = {}
        for u in range(uniq.size):
            key = uniq[u].tobytes()
            hit = self._cache.get(key, False)
            if hit is False:
                k = int(active[first[u]].sum())
                missing.setdefault(k, []).append(u)
            else:
                self._cache.move_to_end(key)
                entries[u] = hit
        for k, us in missing.items():
            rows = np.nonzero(active[first[us]])[1].reshape(len(us), k)
            Minv = inverse_batch(self.M[rows[:, :, None], rows[:, None, :]])
            for j, u in enumerate(us):
                entry = None if Minv[j] is None else (rows[j], Minv[j])
                entries[u] = entry
                self._remember(uniq[u].tobytes(), entry, k)
        return entries, inv.ravel()

    def _remember(self, key: bytes, entry, k: int) -> None:
        size = 8 * (k * k + k) + len(key) + 64
        if size > CACHE_BYTES:
            return
        self._cache[key] = entry
        self._cache_bytes += size
        while self._cache_bytes > CACHE_BYTES:
            old_key, old = self._cache.popitem(last=False)
            kk = 0 if old is None else old[0].size
            self._cache_bytes -= 8 * (kk * kk + kk) + len(old_key) + 64

    def _reduced(self, q: np.ndarray, active: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``λ`` (b, m) with ``M_AA λ_A = -q_A`` on each sample's set ``A`` and zero elsewhere, and a mask
        (b,) of the samples whose ``M_AA`` was invertible.
        """
        b, m = q.shape
        lam = np.zeros((b, m))
        ok = np.ones(b, bool)
        if b == 0:
            return lam, ok
        entries, inv = self._inverses(active)
        sizes = np.array([-1 if e is None else e[0].size for e in entries])
        ssize = sizes[inv]
        ok = ssize >= 0
        for k in np.unique(sizes):
            if k <= 0:
                continue
            us = np.flatnonzero(sizes == k)
            idx = np.flatnonzero(ssize == k)
            if us.size == 1:
                rows, Minv = entries[us[0]]
                lam[idx[:, None], rows] = -q[idx[:, None], rows] @ Minv.T
                continue
            where = np.full(sizes.size, -1)
            where[us] = np.arange(us.size)
            pos = where[inv[idx]]
            rows = np.stack([entries[u][0] for u in us])[pos]
            Minv = np.stack([entries[u][1] for u in us])[pos]
            lam_a = -(Minv @ q[idx[:, None], rows][:, :, None])[:, :, 0]
            lam[idx[:, None], rows] = lam_a
        return lam, ok

    def _pdas(self, q, h, z0n, active, allowed, lam, code, iters) -> np.ndarray:
        """Run the batched sweeps in place; return the indices left for the fallback.

        A set with more rows than ``n`` (so linearly dependent rows), a singular
        ``M_AA`` or a reduced system not solved to its rows' tolerance leaves the
        sample to the dual active-set method.
        """
        Gb, GbT, rn = self.Gbar, self.GbarT, self.row_norm
        n = Gb.shape[1]
        pending = np.arange(q.shape[0])
        leftover = []
        inv_rn = 1.0 / self._norm_safe
        prev = before = np.zeros((pending.size, q.shape[1]), bool)  # each pending sample's sets one and two
        # sweeps ago
        for it in range(MAX_PDAS_ITER):
            if pending.size == 0:
                break
            iters[pending] += 1
            act = active[pending]
            too_big = act.sum(axis=1) > n
            if it >= 2:
                too_big |= (act == before).all(axis=1)  # a cycle of two sweeps
            if too_big.any():
                leftover.append(pending[too_big])
                pending, act, prev = pending[~too_big], act[~too_big], prev[~too_big]
            qp_ = q[pending]
            lam_p, solved = self._reduced(qp_, act)
            zd = lam_p @ Gb                      # Ḡᵀλ = z₀ - z
            s = qp_ + zd @ GbT                   # margins h - Ḡz
            zs = z0n[pending] + np.linalg.norm(zd, axis=1)
            ts = DECISION_TOL * (np.abs(h[pending]) + zs[:, None] * rn)
            tl = DECISION_TOL * zs[:, None] * inv_rn
            solved &= ~(act & ~(np.abs(s) <= ACCURACY_FACTOR * ts)).any(axis=1)
            new = np.where(act, lam_p > -tl, (s < -ts) & allowed[pending])
            same = solved & (new == act).all(axis=1)
            done = pending[same]
            lam[done] = np.maximum(lam_p[same], 0.0)
            code[done] = LCPCode.SOLVED
            leftover.append(pending[~solved])
            moving = ~same & solved
            before, prev = prev[moving], act[moving]
            active[pending[moving]] = new[moving]
            pending = pending[moving]
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
        # each row's own tolerance: rounding in h_i - Ḡ_i z is of the size of |h_i| + ‖Ḡ_i‖ (‖z₀‖ + ‖z‖)
        habs, z0n = np.abs(h), np.linalg.norm(z0, axis=1)
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
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            for sweep in range(20 * (m + n) + 100):
                need = np.flatnonzero((code == _RUNNING) & (p < 0))
                if need.size:
                    zn = z0n[need] + np.linalg.norm(z[need], axis=1)
                    viol = (z[need] @ Gb.T - h[need]) / (DECISION_TOL * (habs[need] + zn[:, None] * self.row_norm))
                    viol[~np.isfinite(viol)] = -np.inf
                    viol[:, self.row_norm == 0] = -np.inf
                    pj = np.argmax(viol, axis=1)
                    ok = viol[np.arange(need.size), pj] <= 1.0
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
                    Kinv[idx, :kmax, :kmax] = inverse_spd_batch(K)
                r = (Kinv[idx, :kmax, :kmax] @ (N @ a[:, :, None]))[..., 0]
                d = a - (N.transpose(0, 2, 1) @ r[..., None])[..., 0]
                dd, aa = (d * d).sum(axis=1), (a * a).sum(axis=1)
                # a full working set spans R^n: no direction, whatever rounding leaves in d
                move = (dd > 1e-16 * aa) & (size[idx] < n)
                viol_p = (a * z[idx]).sum(axis=1) - h[idx, p[idx]]
                t2 = np.where(move, viol_p / np.where(move, dd, 1.0), np.inf)
                pos = ~pad & (r > 1e-14 * np.maximum(1.0, np.abs(r).max(axis=1, keepdims=True)))
                ratios = np.where(pos, u[idx, :kmax] / np.where(pos, r, 1.0), np.inf)
                j = np.argmin(ratios, axis=1)
                t1 = ratios[np.arange(idx.size), j]
                bad = ~np.isfinite(viol_p) | ~np.isfinite(r).all(axis=1) | np.isnan(t1) | np.isnan(t2)
                if bad.any():  # overflow or a broken update: leave the sample to the last resort
                    code[idx[bad]] = LCPCode.FAILED
                stuck = ~bad & ~np.isfinite(t1) & ~np.isfinite(t2)
                if stuck.any():
                    code[idx[stuck]], margin[idx[stuck]] = self._check_farkas(
                        p[idx[stuck]], work[idx[stuck], :kmax], r[stuck], h[idx[stuck]], z0n[idx[stuck]])
                go = ~stuck & ~bad
                t = np.where(go, np.minimum(t1, t2), 0.0)
                z[idx] -= np.where(move & go, t, 0.0)[:, None] * d
                u[idx, :kmax] -= t[:, None] * r
                up[idx] += t
                add = go & (t2 <= t1)
                ia, ka = idx[add], size[idx[add]]
                border(Kinv, ia, ka, r[add], dd[add], min(n, kmax + 1))
                work[ia, ka], u[ia, ka], size[ia], p[ia] = p[ia], up[ia], ka + 1, -1
                drop = go & ~add
                idr, jd, last = idx[drop], j[drop], size[idx[drop]] - 1
                eliminate(Kinv, idr, jd, last, kmax)
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
        lam_w = solve_spd_batch(K, -np.take_along_axis(qx, work, axis=1))
        lam = np.zeros((q.shape[0], m + 1))
        np.put_along_axis(lam, work, np.maximum(lam_w, 0.0), axis=1)
        return lam[:, :m]

    def farkas_code(self, mu: np.ndarray, h: np.ndarray, z0n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Codes (1 proven infeasible, else 2) and margins ``-μᵀh/‖μ‖₁`` of candidates ``μ`` (b, m) >= 0.

        ``μ`` proves infeasibility when ``Gᵀμ = 0`` (checked in z-coordinates,
        ``Ḡᵀμ = L⁻¹Gᵀμ``, against the size ``|Ḡ|ᵀμ`` of its terms) and ``μᵀh < 0``
        beyond rounding (against ``μᵀ|h|``), and the ball ``‖z̄‖ < -μᵀh/‖Ḡᵀμ‖₂`` that it clears of
        feasible points is :data:`FARKAS_RADIUS` times wider than the scale ``‖z̄₀‖ + max_{μ_i > 0} |h_i|/‖Ḡ_i‖``
        (``z0n`` (b,) is ``‖z̄₀‖``).

        Parameters
        ----------
        mu : ndarray, shape (b, m)
            Candidate multipliers (negative and non-finite entries count as 0).
        h : ndarray, shape (b, m)
            Right-hand sides ``w + Eθ - G z₀`` of the rows at the unconstrained minimiser ``z₀``.
        z0n : ndarray, shape (b,)
            ``‖z̄₀‖``, the size of the unconstrained minimiser in Cholesky coordinates.

        Returns
        -------
        codes : ndarray of int8, shape (b,)
            1 where ``μ`` proves infeasibility, else 2.
        margins : ndarray, shape (b,)
            ``-μᵀh/‖μ‖₁``.
        """
        with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
            mu = np.where(np.isfinite(mu), np.maximum(mu, 0.0), 0.0)
            norm1 = mu.sum(axis=1)
            resid = np.abs(mu @ self.Gbar).max(axis=1)
            size = (mu @ np.abs(self.Gbar)).max(axis=1)
            value = -(mu * h).sum(axis=1)
            proven = (norm1 > 0) & (resid <= FARKAS_TOL * size) & (value > FARKAS_TOL * (mu * np.abs(h)).sum(axis=1))
            # the ball the certificate clears, against the scale of the solutions (FARKAS_RADIUS)
            radius = value / np.linalg.norm(mu @ self.Gbar, axis=1)
            reach = z0n + np.where((mu > 0) & (self.row_norm > 0), np.abs(h) / self._norm_safe, 0.0).max(
                axis=1, initial=0.0)
            proven &= radius >= FARKAS_RADIUS * reach
            margin = np.where(proven, value / np.where(norm1 > 0, norm1, 1.0), np.nan)
        return np.where(proven, LCPCode.INFEASIBLE, LCPCode.FAILED).astype(np.int8), margin

    def _check_farkas(self, p, work, r, h, z0n) -> tuple[np.ndarray, np.ndarray]:
        """Codes and margins of ``μ = e_p + Σ_W max(-r, 0) e_W`` (see :meth:`farkas_code`)."""
        m = self.m
        mu = np.zeros((p.size, m + 1))
        mu[np.arange(p.size), p] = 1.0
        np.add.at(mu, (np.repeat(np.arange(p.size), work.shape[1]), work.ravel()), np.maximum(-r, 0.0).ravel())
        return self.farkas_code(mu[:, :m], h, z0n)
