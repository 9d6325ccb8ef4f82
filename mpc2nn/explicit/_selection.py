"""The region of θ an explicit network is built for, and the states drawn from it.

One region serves tuning, depth selection, the held-out check and pruning: a box ``(lo, hi)`` of the state
(or of ``θ``), or a :class:`~mpc2nn.problem.Polytope` of ``θ``. States are drawn uniformly from it and kept
where the exact solver finds the MPC problem feasible; the *hard* states are found by bisection between
drawn states: near switches of the active set (between feasible states whose active sets differ) and near
the boundary of the feasible set (between a feasible and an infeasible draw), where unrolled iterations
converge slowest.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.stats

from .._checks import as_box
from ..exceptions import ProblemDefinitionError
from ..problem import Polytope, lp_max
from ..sampling import parameter_box

__all__ = ["Region", "region_of", "draw_feasible", "hard_states", "perturbed", "failure_bound", "BISECTION_STEPS",
           "BOUNDARY_STEPS",
           "MAX_DRAW_ROUNDS"]

#: Bisection steps towards a switch of the active set (the found states lie within 2⁻¹⁰ of the segment's length
#: from it; closer ones converge no slower, measured on the cart-pole).
BISECTION_STEPS = 10
#: Bisection steps towards the feasible-set boundary (within 2⁻¹² ≈ 2.4e-4 of the segment's length, about the
#: share of a uniform sample of 10⁴ states that lies that close). Unrolled first-order iterations slow down
#: without bound as the feasible set's interior vanishes, so a tolerance may become unreachable near the
#: boundary: ``unravel`` then refuses rather than return a network that fails on such states.
BOUNDARY_STEPS = 12
#: Corner states lie within this fraction of the box's width from a vertex (per coordinate, towards the centre).
CORNER_DEPTH = 0.25
#: Rounds of ``2n`` uniform draws before the sampling gives up on a region with few feasible states.
MAX_DRAW_ROUNDS = 50


@dataclass(frozen=True)
class Region:
    """A region of ``θ``: the box ``(lo, hi)`` (n_θ,) and, optionally, a polytope ``C θ <= d`` inside it."""

    lo: np.ndarray
    hi: np.ndarray
    polytope: Polytope | None
    description: str

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``(≤ n, n_θ)`` uniform draws from the region (rejection from the box for a polytope)."""
        X = self.lo + (self.hi - self.lo) * rng.random((n, self.lo.size))
        return X if self.polytope is None else X[self.polytope.contains(X)]

    def inside(self, X: np.ndarray) -> np.ndarray:
        """``(B,)`` bool, the rows of ``X`` that lie in the region."""
        ok = np.all((X >= self.lo) & (X <= self.hi), axis=1)
        return ok if self.polytope is None else ok & self.polytope.contains(X)

    @property
    def box(self) -> tuple[np.ndarray, np.ndarray]:
        return self.lo, self.hi


def region_of(qp, box) -> Region | None:
    """The region for ``box``: ``None`` (the QP's sample box, ``None`` if it has none), a box of the state
    ``(n_x,)`` (expanded to ``θ`` by :func:`~mpc2nn.sampling.parameter_box`), a box of ``θ`` ``(n_θ,)``, or a
    :class:`~mpc2nn.problem.Polytope` of ``θ`` (its bounding box by LP).
    """
    if box is None:
        if qp.sample_box is None:
            return None
        lo, hi = parameter_box(qp)
        return Region(lo, hi, None, "the problem's sample box")
    if isinstance(box, Polytope):
        if box.C.shape[1] != qp.n_theta:
            raise ProblemDefinitionError(f"box: a Polytope of θ needs C of shape (p, n_θ) = (p, {qp.n_theta}), got "
                                         f"{box.C.shape}")
        lo, hi = np.empty(qp.n_theta), np.empty(qp.n_theta)
        for i in range(qp.n_theta):
            e = np.zeros(qp.n_theta)
            e[i] = 1.0
            hi[i], lo[i] = lp_max(e, box.C, box.d), -lp_max(-e, box.C, box.d)
        if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))) or np.any(lo > hi):
            raise ProblemDefinitionError("box: the Polytope of θ must be bounded and non-empty (its bounding box "
                                         f"by LP is [{lo}, {hi}])")
        return Region(lo, hi, box, f"the polytope of {box.C.shape[0]} rows")
    try:
        n = len(box[0])
    except TypeError:
        raise ProblemDefinitionError(f"box: expected (lo, hi) of shape (n_x,) or (n_θ,), or a Polytope of θ, got "
                                     f"{type(box).__name__}") from None
    if n == qp.n_theta:
        lo, hi = as_box("box", box, qp.n_theta, "n_θ")
    else:
        lo, hi = parameter_box(qp, as_box("box", box, qp.n_x))
    return Region(lo, hi, None, "the given box")


def draw_feasible(net, region: Region, n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(X, U, y, X_infeasible)``: ``n`` feasible uniform draws with their exact outputs and fixed points, and
    the infeasible draws met on the way (for the boundary search).
    """
    rng = np.random.default_rng(seed)
    Xs, Us, Ys, Xi = [], [], [], []
    got = 0
    for _ in range(MAX_DRAW_ROUNDS):
        if got >= n:
            break
        X = region.draw(rng, 2 * n)
        if X.shape[0] == 0:
            continue
        sol = net.solve(X)
        ok = sol.feasible & (sol.status == "solved")
        Xs.append(X[ok])
        Us.append(sol.U[ok])
        Ys.append(sol.y[ok])
        Xi.append(X[~sol.feasible])
        got += int(ok.sum())
    if got < n:
        raise ProblemDefinitionError(f"box: found only {got} of {n} feasible states in {MAX_DRAW_ROUNDS} rounds of "
                                     f"{2 * n} draws from {region.description}; choose a region where the MPC "
                                     "problem is feasible more often")
    X_inf = np.vstack(Xi) if Xi else np.zeros((0, region.lo.size))
    return np.vstack(Xs)[:n], np.vstack(Us)[:n], np.vstack(Ys)[:n], X_inf


def hard_states(net, X: np.ndarray, y: np.ndarray, X_infeasible: np.ndarray, n: int, seed: int,
                steps: int = BISECTION_STEPS, region: Region | None = None,
                kinds: tuple = ("switch", "boundary", "corner")) -> tuple[np.ndarray, np.ndarray, dict]:
    """About ``n`` feasible states near switches of the active set, the feasible-set boundary and the corners.

    From bisecting segments between drawn feasible states whose active sets (the sign of the fixed point
    ``y``) differ, keeping both ends; from bisecting segments between a feasible and an infeasible draw,
    keeping the feasible end; and (with ``region``) feasible states near the corners of the region's box,
    where inputs saturate along the whole horizon; ``kinds`` names the ones wanted. Returns
    ``(X_hard, U_hard, counts)``.
    """
    rng = np.random.default_rng(seed)
    out_X, out_U = [], []
    counts = {"switch": 0, "boundary": 0, "corner": 0}
    if n <= 0 or not kinds:
        return np.zeros((0, X.shape[1])), np.zeros((0, 0)), counts
    if "boundary" not in kinds:
        X_infeasible = X_infeasible[:0]
    if region is not None and n >= 4 and "corner" in kinds:
        k = n // 4
        corner = np.where(rng.random((4 * k, region.lo.size)) < 0.5, region.lo, region.hi)
        inward = rng.random((4 * k, region.lo.size)) ** 2 * CORNER_DEPTH
        Xc = corner + (region.lo + region.hi - 2 * corner) * inward
        Xc = Xc[region.inside(Xc)]
        if Xc.shape[0]:
            sol = net.solve(Xc)
            ok = sol.feasible & (sol.status == "solved")
            out_X.append(Xc[ok][:k])
            out_U.append(sol.U[ok][:k])
            counts["corner"] = int(min(k, ok.sum()))
        n -= counts["corner"]
    act = y > 0
    n_sw = 0 if "switch" not in kinds else max(1, n // 4) if X_infeasible.shape[0] else max(1, n // 2)
    i, j = rng.integers(0, X.shape[0], 4 * n_sw), rng.integers(0, X.shape[0], 4 * n_sw)
    differ = np.any(act[i] != act[j], axis=1)
    i, j = i[differ][:n_sw], j[differ][:n_sw]
    if i.size:
        a, b, A = X[i].copy(), X[j].copy(), act[i].copy()
        for _ in range(steps):
            sol = net.solve(0.5 * (a + b))
            am = sol.y > 0
            ok = sol.feasible & (sol.status == "solved")
            same = np.all(am == A, axis=1) & ok
            mid = 0.5 * (a + b)
            a = np.where(same[:, None], mid, a)
            b = np.where(same[:, None] | ~ok[:, None], b, mid)
            A = np.where(same[:, None], am, A)
        both = np.vstack([a, b])
        sol = net.solve(both)
        ok = sol.feasible & (sol.status == "solved")
        Ua, Ub = both[ok], sol.U[ok]
        out_X.append(Ua)
        out_U.append(Ub)
        counts["switch"] = int(ok.sum())
    n_b = n - counts["switch"]
    if X_infeasible.shape[0] and n_b > 0:
        i = rng.integers(0, X.shape[0], n_b)
        i_inf = rng.integers(0, X_infeasible.shape[0], n_b)
        a, b = X[i].copy(), X_infeasible[i_inf].copy()
        for _ in range(BOUNDARY_STEPS):
            mid = 0.5 * (a + b)
            ok = net.solve(mid).feasible
            a = np.where(ok[:, None], mid, a)
            b = np.where(ok[:, None], b, mid)
        sol = net.solve(a)
        ok = sol.feasible & (sol.status == "solved")
        out_X.append(a[ok])
        out_U.append(sol.U[ok])
        counts["boundary"] = int(ok.sum())
    if not out_X:
        return np.zeros((0, X.shape[1])), np.zeros((0, 0)), counts
    return np.vstack(out_X), np.vstack(out_U), counts


def perturbed(net, region: Region, centres: np.ndarray, per_centre: int, scale: float, seed: int
              ) -> tuple[np.ndarray, np.ndarray]:
    """Feasible states of the region near ``centres``: ``per_centre`` Gaussian perturbations of each, of standard
    deviation ``scale`` times the region's width per coordinate, with their exact outputs.
    """
    rng = np.random.default_rng(seed)
    width = region.hi - region.lo
    X = np.repeat(centres, per_centre, axis=0)
    X = np.clip(X + scale * width * rng.standard_normal(X.shape), region.lo, region.hi)
    X = X[region.inside(X)]
    if X.shape[0] == 0:
        return X, np.zeros((0, 0))
    sol = net.solve(X)
    ok = sol.feasible & (sol.status == "solved")
    return X[ok], sol.U[ok]


def failure_bound(k: int, n: int, delta: float) -> float:
    """One-sided Clopper–Pearson upper bound on a probability ``p`` from ``k`` events in ``n`` independent
    trials, at confidence ``1 - delta``: ``p <= B⁻¹(1 - δ; k + 1, n - k)`` (for ``k = 0``: ``1 - δ^(1/n)``,
    about ``3/n`` at 95 %, the rule of three).

    Parameters
    ----------
    k : int
        Events observed (e.g. held-out states above the tolerance).
    n : int
        Independent trials.
    delta : float
        One minus the confidence level.

    Returns
    -------
    float
        The upper bound on ``p`` (1 where ``n <= 0`` or ``k >= n``).

    Examples
    --------
    >>> from mpc2nn.explicit import failure_bound
    >>> round(failure_bound(0, 1000, 0.05), 4)    # none of 1000 failed: p <= 0.3 % at 95 %
    0.003
    """
    if n <= 0:
        return 1.0
    if k >= n:
        return 1.0
    if k == 0:
        return float(1.0 - delta ** (1.0 / n))
    return float(scipy.stats.beta.ppf(1.0 - delta, k + 1, n - k))
