"""Branch and bound over the input space of one polytope (a critical region, or a cell of the domain).

A *cell* is a box of ``θ`` intersected with the polytope (and, below a phase split, with the half-spaces of
the ReLU phases chosen on its path). For each cell (largest bound first):

1. its box is shrunk to the bounding box of the cell (2n LPs, bounds verified by weak duality; an empty
   cell is dropped);
2. the graph's nodes are bounded on it (:func:`~mpc2nn.verify._bounds.propagate`, the undecided
   pre-activations maximised over the cell's polytope by verified LPs, so a ReLU stable on the polytope
   needs no binary) and every objective (a linear function of the network's output and ``θ``) gets an
   affine upper bound in ``θ``, maximised over the cell by an LP whose bound is verified by weak duality
   (:func:`~mpc2nn.verify._lp.verified_max`): a proven bound ``β`` that no HiGHS tolerance enters, exact
   (up to the rounding allowance) where every ReLU is stable on the cell;
3. the objective's value at the LP's maximiser and at the centre is evaluated (lower bounds, witnesses);
4. an objective whose ``β`` is within the gap tolerance of its group's best value is closed; if an
   objective is still open, the cell's MILP is solved when it has at most ``max_binaries`` undecided ReLUs
   (its dual bound closes the objective), otherwise the cell is bisected along its widest side;
5. where the MILPs were solved to optimality and still leave the gap open while their maximisers,
   evaluated, do not reach their bounds (what is left is HiGHS's tolerances times the big-M constants,
   about 1e-7 for an exact network), the cell is split on the phase of its first undecided ReLU (the
   half-spaces ``a(θ) >= 0`` and ``a(θ) <= 0`` of its pre-activation, affine on the cell) and its children
   are bounded by step 2 only, down to cells where no ReLU is worth splitting (at most :data:`MAX_CUTS`
   cuts on a path); the MILP's bound stays their parent's bound.

The bound of the polytope is the largest bound of its cells, closed or left open at the time limit.
"""

from __future__ import annotations

import heapq
import time
from dataclasses import dataclass, field

import numpy as np

from ..status import Proof
from ._bounds import propagate, upper_linear
from ._graph import ReluGraph
from ._lp import verified_max
from ._milp import flatten, phase_cut, solve_milp

__all__ = ["Objectives", "Task", "TaskOutcome", "run_task", "DEFAULT_MAX_BINARIES", "MIN_CELL", "MILP_TIME_SHARE",
           "WITNESS_TOL", "MAX_CUTS"]

#: Cells with at most this many undecided ReLUs are solved as a MILP, larger ones bisected first: HiGHS
#: closes MILPs of a few dozen binaries in well under a second, and bisection of a low-dimensional ``θ``
#: removes undecided ReLUs faster than branching on them.
DEFAULT_MAX_BINARIES = 48
#: A cell whose half-widths are all below ``MIN_CELL`` times the polytope's is solved as a MILP whatever its
#: number of binaries (bisection would go on without end where a ReLU's switching surface crosses it).
MIN_CELL = 1e-6
#: A MILP's or LP's maximiser counts as a point of the polytope when it violates no row by more than
#: ``WITNESS_TOL`` times the domain's scale (HiGHS's feasibility tolerance is 1e-9 in unit coordinates);
#: the lower bound is re-checked by the exact solver at the end anyway.
WITNESS_TOL = 1e-8
#: Most phase cuts on one path of the branch and bound (a cell that needs more keeps its parent's bound,
#: the MILP's): an exact network needs about as many as the affine pieces that cross in one region.
MAX_CUTS = 64
#: Largest share of the remaining time one MILP may take.
MILP_TIME_SHARE = 0.5


@dataclass
class Objectives:
    """Linear objectives ``value_q = C_out[q]·y(θ) + C_theta[q]·θ + c0[q]`` in groups (0: error, 1: violation)."""

    C_out: np.ndarray
    C_theta: np.ndarray
    c0: np.ndarray
    group: np.ndarray
    label: tuple

    @property
    def n(self) -> int:
        """Number of objectives."""
        return self.c0.size

    def values(self, y: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """``(B, q)`` objective values at outputs ``y`` (B, n_out) and points ``theta`` (B, n_θ)."""
        return y @ self.C_out.T + theta @ self.C_theta.T + self.c0


@dataclass
class Task:
    """One polytope to bound (sent to a worker as it is).

    ``A θ <= b`` the polytope (unit rows), ``lo, hi`` a box containing it, ``objectives`` its objectives,
    ``best`` the best value known per group when the task was sent (its cells below it are closed),
    ``scale`` the domain's half-widths (bisection picks the widest side in these units).
    """

    index: int
    A: np.ndarray
    b: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    objectives: Objectives
    best: np.ndarray
    scale: np.ndarray
    atol: float
    rtol: float
    time_limit: float
    max_binaries: int = DEFAULT_MAX_BINARIES
    extra: dict = field(default_factory=dict)


@dataclass
class TaskOutcome:
    """What one task proved: per group the bound (``inf``: none), the best value found and its point.

    ``status``: a :class:`~mpc2nn.status.Proof` value (proven: every cell closed; incomplete: the time limit
    left cells open, or a MILP stopped at its limit; failed: a solver failed, ``bound`` is ``inf``).
    """

    index: int
    bound: np.ndarray
    value: np.ndarray
    witness: np.ndarray
    status: str
    cells: int = 0
    milps: int = 0
    lps: int = 0
    max_binaries: int = 0
    elapsed: float = 0.0
    message: str = ""


def _tolerance(best: np.ndarray, atol: float, rtol: float) -> np.ndarray:
    return np.maximum(atol, rtol * np.abs(np.where(np.isfinite(best), best, 0.0)))


def _unit_rows(A: np.ndarray, b: np.ndarray, centre: np.ndarray, half: np.ndarray):
    """The rows ``A θ <= b`` in the coordinates ``θ = centre + half ⊙ ξ``, each of unit norm (zero rows dropped)."""
    Au = A * half[None, :]
    bu = b - A @ centre
    norms = np.linalg.norm(Au, axis=1)
    keep = norms > 0
    return Au[keep] / norms[keep, None], bu[keep] / norms[keep]


def run_task(graph: ReluGraph, task: Task) -> TaskOutcome:
    """Branch and bound over one polytope (see the module docstring).

    Parameters
    ----------
    graph : ReluGraph
        The network, in ``θ`` coordinates (outputs those the objectives weigh).
    task : Task
        The polytope, its objectives and budget.

    Returns
    -------
    TaskOutcome
    """
    start = time.perf_counter()
    obj = task.objectives
    n_groups = 2
    best = np.array(task.best, float).copy()
    value = np.full(n_groups, -np.inf)
    witness = np.full((n_groups, graph.n_in), np.nan)
    closed_bound = np.full(n_groups, -np.inf)
    incomplete = False
    messages: list[str] = []
    counts = dict(cells=0, milps=0, lps=0, K=0, cuts=0)
    half0 = np.maximum((task.hi - task.lo) / 2, 1e-300)

    def record(theta: np.ndarray):
        """Evaluate the objectives at points (exact arithmetic of the graph in float64) and keep the best."""
        theta = np.atleast_2d(theta)
        theta = np.clip(theta, task.lo, task.hi)
        inside = np.all(theta @ task.A.T <= task.b + WITNESS_TOL * task.extra.get("scale", 1.0), axis=1)
        if not inside.any():
            return
        theta = theta[inside]
        vals = obj.values(graph.evaluate(theta), theta)
        for g in range(n_groups):
            cols = obj.group == g
            if not cols.any():
                continue
            v = vals[:, cols].max(axis=1)
            k = int(np.argmax(v))
            if v[k] > value[g]:
                value[g] = v[k]
                witness[g] = theta[k]
            best[g] = max(best[g], v[k])

    # heap of (-priority, counter, lo, hi, bound per objective, cut rows, cut right-hand sides, neurons cut on)
    heap: list = []
    counter = 0
    root_bound = np.full(obj.n, np.inf)
    n = graph.n_in
    no_cuts: tuple = (np.zeros((0, n)), np.zeros(0), frozenset())
    heapq.heappush(heap, (-np.inf, counter, task.lo.copy(), task.hi.copy(), root_bound) + no_cuts)

    def push(lo, hi, bound, open_q, cuts):
        nonlocal counter
        counter += 1
        heapq.heappush(heap, (-float(np.max(bound[open_q])), counter, lo, hi, bound.copy()) + cuts)

    while heap:
        elapsed = time.perf_counter() - start
        if elapsed > task.time_limit and counts["cells"]:  # the first cell is always bounded
            incomplete = True
            messages.append(f"time limit ({task.time_limit:.3g} s) with {len(heap)} cells open")
            break
        _, _, lo, hi, parent_bound, cut_A, cut_b, cut_on = heapq.heappop(heap)
        tol = _tolerance(best, task.atol, task.rtol)
        open_q = parent_bound > best[obj.group] + tol[obj.group]
        if not open_q.any():
            closed_bound = np.maximum(closed_bound, _group_max(parent_bound, obj.group, n_groups))
            continue
        counts["cells"] += 1
        A_all, b_all = np.vstack([task.A, cut_A]), np.concatenate([task.b, cut_b])
        centre, half = (lo + hi) / 2, np.maximum((hi - lo) / 2, 1e-300)
        Au, bu = _unit_rows(A_all, b_all, centre, half)
        # 1. shrink the box to the cell's bounding box
        ext, _ = verified_max(np.vstack([np.eye(n), -np.eye(n)]), 0.0, Au, bu)
        counts["lps"] += 1
        if np.any(ext == -np.inf):  # the cell holds no point of the polytope
            continue
        new_lo, new_hi = lo.copy(), hi.copy()
        if np.all(np.isfinite(ext)):
            top, bot = np.minimum(ext[:n] + 1e-9, 1.0), np.minimum(ext[n:] + 1e-9, 1.0)
            new_hi = np.minimum(hi, centre + half * top)
            new_lo = np.maximum(lo, centre - half * bot)
        lo, hi = new_lo, np.maximum(new_hi, new_lo)
        centre, half = (lo + hi) / 2, np.maximum((hi - lo) / 2, 1e-12 * half0)
        Au, bu = _unit_rows(A_all, b_all, centre, half)
        # 2. bounds on the cell (pre-activations over the polytope) and the verified LP bound of each objective
        g_cell = graph.with_input_map(centre, half)
        # (a cell bounded after the time limit, the first of a task sent late, keeps the cheaper box bounds)
        late = time.perf_counter() - start > task.time_limit
        B = propagate(g_cell, cell=None if late else (Au, bu))
        W, c, size, terms = upper_linear(g_cell, B, g_cell.output, obj.C_out, magnitude=True)
        W = W + obj.C_theta * half[None, :]
        c = c + obj.C_theta @ centre + obj.c0
        size = size + np.abs(obj.C_theta) @ (np.abs(centre) + half) + np.abs(obj.c0)
        beta = parent_bound.copy()
        points = [centre]
        rows = np.flatnonzero(open_q)
        vals, X = verified_max(W[rows], c[rows], Au, bu, size[rows], terms + n)
        counts["lps"] += 1 + B.n_lps
        beta[rows] = vals
        points.extend(centre + half * x for x in X if np.all(np.isfinite(x)))
        if np.any(beta == -np.inf):  # empty after all (rounding at the shrink)
            continue
        beta = np.minimum(beta, parent_bound)
        record(np.array(points))
        tol = _tolerance(best, task.atol, task.rtol)
        open_q = beta > best[obj.group] + tol[obj.group]
        if not open_q.any():
            closed_bound = np.maximum(closed_bound, _group_max(beta, obj.group, n_groups))
            continue
        K = B.n_unstable(g_cell)
        counts["K"] = max(counts["K"], K)
        tiny = np.all(half <= MIN_CELL * half0)
        phase = len(cut_on) > 0
        if phase or K <= task.max_binaries or tiny:
            bound = beta.copy()
            if not phase:
                flat = flatten(g_cell, B)
                exact = True  # every MILP solved to optimality
                for q in np.flatnonzero(open_q):
                    remaining = task.time_limit - (time.perf_counter() - start)
                    if remaining <= 0:
                        incomplete = True
                        exact = False
                        messages.append("time limit during the MILPs of a cell")
                        break
                    out = solve_milp(flat, obj.C_out[q], obj.C_theta[q] * half,
                                     float(obj.C_theta[q] @ centre + obj.c0[q]), Au, bu,
                                     MILP_TIME_SHARE * remaining if heap else remaining)
                    counts["milps"] += 1
                    if out.xi is not None:
                        record(centre + half * out.xi)
                    if out.status == str(Proof.FAILED):  # the LP bound β still holds
                        incomplete = True
                        exact = False
                        messages.append(f"a MILP failed on a cell, its LP bound kept: {out.message}")
                        continue
                    if out.status == str(Proof.INCOMPLETE):
                        incomplete = True
                        exact = False
                        messages.append(f"a MILP stopped: {out.message}")
                    bound[q] = min(bound[q], out.bound)
                tol = _tolerance(best, task.atol, task.rtol)
                open_q = bound > best[obj.group] + tol[obj.group]
                if not (exact and open_q.any()):
                    closed_bound = np.maximum(closed_bound, _group_max(bound, obj.group, n_groups))
                    continue
                # 3b. the MILPs' dual bounds leave the gap open while their maximisers, evaluated, do not reach
                # them: what is left is HiGHS's tolerances times the big-M constants. Split on ReLU phases,
                # whose cells are bounded by verified LPs only (the MILP bounds kept as the parents' bounds).
            cut = phase_cut(g_cell, B, cut_on) if len(cut_on) < MAX_CUTS else None
            if cut is None:  # nothing left worth splitting on: β holds, with the relaxation of the rest
                if len(cut_on) >= MAX_CUTS:
                    messages.append(f"{MAX_CUTS} phase cuts on a path: its bound kept")
                closed_bound = np.maximum(closed_bound, _group_max(bound, obj.group, n_groups))
                continue
            counts["cuts"] += 1
            key, pvec, p0 = cut
            row = pvec / half  # p·(θ - centre)/half + p0 >= 0 (active) or <= 0 (inactive)
            rhs = p0 - row @ centre  # the pre-activation is row·θ + rhs
            norm = float(np.linalg.norm(row))
            if not norm > 0:
                closed_bound = np.maximum(closed_bound, _group_max(bound, obj.group, n_groups))
                continue
            row, rhs = row / norm, rhs / norm
            for sgn in (-1.0, 1.0):
                push(lo.copy(), hi.copy(), bound, open_q, (np.vstack([cut_A, sgn * row]),
                                                            np.append(cut_b, -sgn * rhs), cut_on | {key}))
            continue
        # 4. bisect along the widest side, relative to the domain's scale
        k = int(np.argmax(half / task.scale))
        mid = centre[k]
        for a, bnd in ((lo[k], mid), (mid, hi[k])):
            clo, chi = lo.copy(), hi.copy()
            clo[k], chi[k] = a, bnd
            push(clo, chi, beta, open_q, no_cuts)
    for item in heap:  # cells left open keep their parents' bounds
        closed_bound = np.maximum(closed_bound, _group_max(item[4], obj.group, n_groups))
    bound = closed_bound
    failed = bool(np.any(bound == np.inf))  # an LP failed on a cell: no bound
    status = Proof.FAILED if failed else (Proof.INCOMPLETE if incomplete else Proof.PROVEN)
    return TaskOutcome(task.index, bound, value, witness, str(status), counts["cells"], counts["milps"],
                       counts["lps"], counts["K"], time.perf_counter() - start, "; ".join(dict.fromkeys(messages)))


def _group_max(v: np.ndarray, group: np.ndarray, n_groups: int) -> np.ndarray:
    out = np.full(n_groups, -np.inf)
    for g in range(n_groups):
        if (group == g).any():
            out[g] = float(np.max(v[group == g]))
    return out
