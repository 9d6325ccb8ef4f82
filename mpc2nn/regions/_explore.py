"""The enumeration of critical regions: :func:`critical_regions`.

Mechanism (one of the "geometric" mpQP methods, facet stepping in the spirit of Tøndel, Johansen
and Bemporad 2003, with the QP solved at every step as Spjøtvold et al. recommend for degenerate
problems):

1. **Seeds.** Points drawn in the domain are solved in one batch by the exact solver
   (``net.solve``); each feasible point's optimal active set gives a region.
2. **Regions.** An active set ``A`` with linearly independent rows (LICQ) gives affine laws of
   ``λ_A``, ``s`` and ``z`` and the polytope where they are optimal (:mod:`._region`). Rows are
   normalised, the domain's rows added, duplicates merged; the Chebyshev balls of all new regions are
   one batched LP; vertices (qhull) or one batched LP give the irredundant rows. Regions whose ball
   has radius below :data:`MIN_RADIUS` are lower-dimensional and not kept.
3. **Facets.** Each facet is either a domain row (on the domain's boundary), or shown covered by the
   regions beyond it (:mod:`._cover`: vertex tests, then polytope set difference with LPs), or else
   a point just beyond an uncovered piece is solved (all such points of a round in one batch): a
   feasible point gives the next region, an infeasible one (or one outside the domain) triggers an
   LP that decides whether the facet's hyperplane supports the feasible set (then the facet is on its
   boundary) or the step was too long (it is shortened).
4. **Stop.** When no facet is pending the partition is complete (:class:`~mpc2nn.status.Proof`
   ``PROVEN``); at ``max_regions`` or ``time_limit`` the pending facets are reported open (``INCOMPLETE``).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

import numpy as np
import scipy.spatial

from .._checks import as_count
from ..exceptions import InfeasibleStateError, ProblemDefinitionError, SolverError
from ..implicit import CERTIFICATE_TOL, ImplicitNetwork, compile
from ..problem import MPCProblem, Polytope
from ..qp import CondensedQP
from ..status import SOLUTION_PRESENT, Proof, Status, is_in
from ._cover import COVER_TOL, CoverTask, cover
from ._domain import Domain, make_domain
from ._geometry import (
    VERTEX_MAX_DIM,
    VERTEX_TOL,
    box_redundant,
    facet_rows_from_vertices,
    irredundant_by_lp,
    normalise_rows,
    unique_rows,
    vertices,
)
from ._lp import chebyshev_balls, hyperplane_balls, solve_lp, support_max
from ._partition import OpenFacet, Partition
from ._region import QPData, Region, region_rows

__all__ = ["critical_regions", "MIN_RADIUS", "ACTIVE_TOL", "STEP", "STEP_SHRINK", "MAX_FAILURES", "N_SEEDS",
           "HYPERPLANE_TOL", "MEMBER_TOL", "DEFAULT_MAX_REGIONS", "DEFAULT_TIME_LIMIT"]

#: Regions whose Chebyshev radius is at most ``MIN_RADIUS·scale`` are lower-dimensional (or slivers at
#: rounding level) and not kept; they cover no volume, and the full-dimensional regions cover the rest.
MIN_RADIUS = 1e-7
#: A row is active at a solution when its margin is at most ``ACTIVE_TOL·max(1, ‖w + Eθ‖∞)``, strongly
#: active when its multiplier exceeds ``ACTIVE_TOL·max(1, ‖λ‖∞)`` (the exact solver is certified to 1e-9
#: relative and its active-set decisions are at 1e-12).
ACTIVE_TOL = 1e-9
#: First step beyond a facet, times the domain's scale: long enough for margins far above rounding,
#: short enough to land in the adjacent region for all but very thin ones (then it is shortened).
STEP = 1e-5
#: Factor by which a step that missed (overshot a thin region, left the feasible set) is shortened.
STEP_SHRINK = 1e-2
#: Failed steps (missed, lower-dimensional or not identified) after which a facet is reported open.
MAX_FAILURES = 5
#: Points drawn in the domain and solved in one batch to seed the exploration.
N_SEEDS = 256
#: Two unit rows ``(a, β/scale)`` describe the same hyperplane when they differ by at most this (∞-norm).
HYPERPLANE_TOL = 1e-7
#: A point is in a region when it violates no row by more than ``MEMBER_TOL·scale``.
MEMBER_TOL = 1e-8
#: Facets handled per round (each round is one batched solve and a few batched LPs).
STEP_BATCH = 2048
#: Default budget: regions.
DEFAULT_MAX_REGIONS = 10_000
#: Default budget: seconds.
DEFAULT_TIME_LIMIT = 600.0


class _Builder:
    """A region while the exploration works on its facets (internal, mutable)."""

    def __init__(self, active, A, b, kind, index, centre, radius, V, inc, Lam, Z):
        self.active, self.A, self.b, self.kind, self.index = active, A, b, kind, index
        self.centre, self.radius, self.V, self.inc, self.Lam, self.Z = centre, radius, V, inc, Lam, Z
        k = A.shape[0]
        self.facet: list[str | None] = ["domain boundary" if kd == 2 else None for kd in kind]
        self.neighbours: list[set] = [set() for _ in range(k)]
        self.extra: list[set] = [set() for _ in range(k)]
        self.eps = np.full(k, np.nan)
        self.kkt = 0.0
        self.failures = np.zeros(k, np.int64)

    def contains(self, theta: np.ndarray, tol: float) -> bool:
        return bool(np.all(self.A @ theta <= self.b + tol))


def critical_regions(net, box=None, *, max_regions: int = DEFAULT_MAX_REGIONS,
                     time_limit: float | None = DEFAULT_TIME_LIMIT, progress: bool | Callable = False,
                     seed: int = 0) -> Partition:
    """Enumerate the critical regions of the network's QP over a polytope of inputs ``θ``, with a
    completeness certificate.

    Parameters
    ----------
    net : ImplicitNetwork, MPCProblem or CondensedQP
        The network whose QP is partitioned (its exact solver finds the active sets); a problem or
        QP is compiled first (:func:`~mpc2nn.compile`).
    box : (lo, hi) of shape (n_θ,) each, or Polytope in n_θ dimensions, optional
        The domain of ``θ``; default the QP's sample box (only where ``θ`` is the state: the other parts
        of ``θ`` need an explicit region). It is intersected with the feasible set of the QP.
    max_regions : int
        Budget: stop after this many regions (the partition is then incomplete).
    time_limit : float or None
        Budget in seconds (``None``: no limit); checked between rounds.
    progress : bool or callable
        ``True`` prints a line per round on stderr; a callable is called per round with a dict
        ``regions, pending, open, rounds, elapsed``. Silent by default.
    seed : int
        Seed of the random seeds and of the points chosen on facets (same seed, same partition).

    Returns
    -------
    Partition
        ``complete=True`` (status ``"proven"``) when every facet of every region was shown to lie on the
        domain's or the feasible set's boundary or to be covered by the regions found; otherwise
        ``complete=False`` with the open facets, the counts and the reason.

    Examples
    --------
    >>> import mpc2nn
    >>> net = mpc2nn.compile(mpc2nn.systems.double_integrator())
    >>> part = mpc2nn.critical_regions(net)
    >>> part.complete, part.n_regions, len(part.pieces.offset)
    (True, 39, 7)
    """
    if isinstance(net, (MPCProblem, CondensedQP)):
        net = compile(net)
    if not isinstance(net, ImplicitNetwork):
        raise ProblemDefinitionError(f"net: expected an ImplicitNetwork (or an MPCProblem or CondensedQP), got "
                                     f"{type(net).__name__}")
    max_regions = as_count("max_regions", max_regions, 1)
    if time_limit is not None and not (isinstance(time_limit, (int, float)) and time_limit > 0):
        raise ProblemDefinitionError(f"time_limit: expected seconds > 0 or None, got {time_limit!r}")
    if not (isinstance(progress, bool) or callable(progress)):
        raise ProblemDefinitionError(f"progress: expected True, False or a callable, got {progress!r}")
    domain = make_domain(net.qp, box)
    return _Explorer(net, domain, max_regions, time_limit, progress, seed).run()


class _Explorer:
    """State of one enumeration (internal)."""

    def __init__(self, net: ImplicitNetwork, domain: Domain, max_regions: int, time_limit, progress, seed: int):
        self.net, self.qp, self.domain = net, net.qp, domain
        self.data = QPData(net.qp)
        self.max_regions, self.time_limit, self.progress = max_regions, time_limit, progress
        self.rng = np.random.default_rng(seed)
        self.scale = domain.scale
        self.regions: list[_Builder] = []
        self.keys: dict[tuple, int] = {}
        self.lowdim: set[tuple] = set()
        self.inaccurate: set[tuple] = set()
        self.n_solves = 0
        self.n_lps = [0]
        self.rounds = 0
        self.use_vertices = self.qp.n_theta <= VERTEX_MAX_DIM
        self.start = time.perf_counter()

    # --- active sets and regions ------------------------------------------------------------------
    def _solve(self, points: np.ndarray):
        """``(status (B,), λ (B, m), s (B, m))`` at the points, by the exact solver.

        An uncertified solution is used too: its active set only proposes a region, whose laws and
        polytope are computed exactly and which must contain the point to be used.
        """
        self.n_solves += points.shape[0]
        sol = self.net.solve(points)
        lam = np.maximum(np.nan_to_num(sol.y, nan=0.0), 0.0)
        Z = self.qp.primal(lam, points)
        s = self.qp.margin(Z, points)
        present = np.asarray(is_in(sol.status, SOLUTION_PRESENT), bool)
        status = np.where(present, "solution",
                          np.where(sol.status == Status.INFEASIBLE, "infeasible", "failed"))
        return status, lam, s

    def _active_sets(self, theta, lam, s) -> list[np.ndarray]:
        """Candidate optimal active sets with LICQ at a solution ``(λ, s)``: the strongly active rows, a
        vertex of the multiplier polyhedron on the active rows (LP), and all active rows.
        """
        d = self.data
        strong = lam > ACTIVE_TOL * max(1.0, float(np.abs(lam).max(initial=0.0)))
        margin_scale = max(1.0, float(np.abs(self.qp.w + self.qp.E @ theta).max(initial=0.0)))
        weak = (s <= ACTIVE_TOL * margin_scale) | strong
        S, W = np.flatnonzero(strong), np.flatnonzero(weak)
        out = []
        if d.independent(S):
            out.append(S)
        if W.size > S.size or not out:
            # a vertex multiplier: μ >= 0 on the active rows with G_Wᵀμ = G_Wᵀλ (its support is LICQ)
            GW = d.G[W].T
            for _ in range(2):
                res = solve_lp(self.rng.random(W.size), A_eq=GW, b_eq=GW @ lam[W], bounds=[(0, None)] * W.size)
                self.n_lps[0] += 1
                if res.status == 0:
                    mu = res.x
                    supp = W[mu > ACTIVE_TOL * max(1.0, float(mu.max(initial=0.0)))]
                    if d.independent(supp):
                        out.append(supp)
            if d.independent(W):
                out.append(W)
        seen, unique = set(), []
        for A in out:
            if tuple(A) not in seen:
                seen.add(tuple(A))
                unique.append(A)
        return unique

    def _rows(self, active: np.ndarray):
        """Normalised rows of the region of ``active`` (domain rows first), or ``None`` if it is empty."""
        d, dom = self.data, self.domain
        Lam, S, Z, mags = d.laws(active)
        C, e, kind, index, mag = region_rows(d, active, Lam, S, mags)
        A, b, keep, empty = normalise_rows(C, e, mag, self.scale)
        if empty:
            return None
        kind, index = kind[keep], index[keep]
        A = np.vstack([dom.D, A])
        b = np.concatenate([dom.d, b])
        kind = np.concatenate([np.full(dom.D.shape[0], 2, np.int8), kind])
        index = np.concatenate([np.arange(dom.D.shape[0]), index])
        red = box_redundant(A, b, dom.lo, dom.hi, VERTEX_TOL * self.scale)
        red[:dom.D.shape[0]] = False
        A, b, kind, index = A[~red], b[~red], kind[~red], index[~red]
        u = unique_rows(A, b, self.scale)
        return A[u], b[u], kind[u], index[u], Lam, Z

    def _build(self, actives: list[np.ndarray]) -> list[int | None]:
        """Regions of the active sets (batched Chebyshev LP); the index of each (new or known) or ``None``."""
        out: list[int | None] = [None] * len(actives)
        todo, rows = [], []
        late = self._over_budget().startswith("time")
        pending: dict[tuple, list[int]] = {}
        for i, act in enumerate(actives):
            key = tuple(int(j) for j in act)
            if key in self.keys:
                out[i] = self.keys[key]
            elif key in pending:
                pending[key].append(i)
            elif not late and key not in self.lowdim and key not in self.inaccurate:
                if not self.data.independent(np.asarray(act, np.int64)):
                    self.inaccurate.add(key)  # not LICQ (a facet-stepping guess): no region of its own
                    continue
                r = self._rows(act)
                if r is None:
                    self.lowdim.add(key)
                else:
                    pending[key] = [i]
                    todo.append((i, key, act))
                    rows.append(r)
        if not todo:
            return out
        dom = self.domain
        centres, radii = chebyshev_balls([(r[0], r[1]) for r in rows], dom.lo, dom.hi, self.scale)
        self.n_lps[0] += len(rows)
        for (_, key, act), r, c, rad in zip(todo, rows, centres, radii, strict=True):
            if self._over_budget().startswith("time"):
                break
            if rad <= MIN_RADIUS * self.scale:
                self.lowdim.add(key)
                continue
            A, b, kind, index, Lam, Z = r
            V, inc = None, None
            if self.use_vertices:
                V = vertices(A, b, c, self.scale)
                found = None if V is None else facet_rows_from_vertices(A, b, V, self.scale)
                if found is None:
                    V = None
                else:
                    facet, inc = found
            if V is None:
                facet = irredundant_by_lp(A, b, self.scale, dom.lo, dom.hi)
                self.n_lps[0] += A.shape[0]
            if facet.sum() <= self.qp.n_theta:
                self.lowdim.add(key)
                continue
            inc = None if inc is None else inc[facet]
            kkt = self._law_residual(act, Lam, Z, V if V is not None else c[None, :])
            if not kkt <= CERTIFICATE_TOL:
                self.inaccurate.add(key)  # M_AA too ill-conditioned for the laws to be certified
                continue
            B = _Builder(act, A[facet], b[facet], kind[facet], index[facet], c, float(rad), V, inc, Lam, Z)
            B.kkt = kkt
            self.keys[key] = len(self.regions)
            for i2 in pending[key]:
                out[i2] = len(self.regions)
            self.regions.append(B)
        return out

    def _law_residual(self, act, Lam, Z, probe: np.ndarray) -> float:
        """Largest relative KKT residual of the region's laws at the points ``probe`` (its vertices)."""
        d = self.data
        zs = probe @ Z[:, :-1].T + Z[:, -1]
        lam = np.zeros((probe.shape[0], d.m))
        lam[:, list(act)] = probe @ Lam[:, :-1].T + Lam[:, -1]
        return float(self.qp.kkt_residuals(zs, np.maximum(lam, 0.0), probe).worst.max()) if d.m else 0.0

    def _regions_at(self, points: np.ndarray, lam, s, hints=None) -> np.ndarray:
        """``(B,)`` index of a region containing each point (-1 where none could be identified).

        ``lam``, ``s`` (B, m): the solver's solution at each point (rows of NaN where it failed);
        ``hints``: for each point a list of further active sets to try (the facet-stepping guesses).
        """
        cands = [self._active_sets(p, lm, sv) if np.all(np.isfinite(lm)) else []
                 for p, lm, sv in zip(points, lam, s, strict=True)]
        if hints is not None:
            cands = [c + [h for h in hs if not any(np.array_equal(h, x) for x in c)]
                     for c, hs in zip(cands, hints, strict=True)]
        found = np.full(points.shape[0], -1, np.int64)
        room = self.max_regions - len(self.regions)
        first = [c[0] if c else None for c in cands]
        idx = self._build_within([f for f in first if f is not None], room)
        it = iter(idx)
        idx = [next(it) if f is not None else None for f in first]
        tol = MEMBER_TOL * self.scale
        for k, (p, c) in enumerate(zip(points, cands, strict=True)):
            j = idx[k]
            if j is not None and self.regions[j].contains(p, tol):
                found[k] = j
                continue
            for alt in c[1:]:
                j = self._build_within([alt], self.max_regions - len(self.regions))[0]
                if j is not None and self.regions[j].contains(p, tol):
                    found[k] = j
                    break
        return found

    def _step_guesses(self, R: _Builder, f: int) -> list[np.ndarray]:
        """Active sets of the region beyond facet ``f`` of ``R`` if the step is non-degenerate (Tøndel et al.):
        a constraint row ``i`` becomes active (``A ∪ {i}``, or with one row swapped out where that fails LICQ),
        a multiplier row ``i`` leaves (``A`` without ``i``).
        """
        act = np.asarray(R.active, np.int64)
        i = int(R.index[f])
        if R.kind[f] == 1:
            grown = np.sort(np.append(act, i))
            if self.data.independent(grown):
                return [grown]
            swaps = [np.sort(np.append(np.delete(act, k), i)) for k in range(act.size)]
            return [a for a in swaps if self.data.independent(a)]
        if R.kind[f] == 0:
            return [act[act != i]]
        return []

    def _build_within(self, actives, room: int) -> list[int | None]:
        """:meth:`_build`, keeping at most ``room`` new regions (the budget)."""
        known = [tuple(int(j) for j in a) in self.keys for a in actives]
        new_keys: dict[tuple, None] = {}
        for a, kn in zip(actives, known, strict=True):
            if not kn:
                new_keys.setdefault(tuple(int(j) for j in a), None)
        allowed = set(list(new_keys)[:max(room, 0)])
        sel = [a for a, kn in zip(actives, known, strict=True) if kn or tuple(int(j) for j in a) in allowed]
        res = iter(self._build(sel))
        return [next(res) if (kn or tuple(int(j) for j in a) in allowed) else None
                for a, kn in zip(actives, known, strict=True)]

    # --- the exploration ---------------------------------------------------------------------------
    def _seed(self) -> None:
        dom = self.domain
        pts = dom.sample(N_SEEDS, self.rng)
        if pts.shape[0] == 0:
            pts = np.zeros((0, dom.n))
        centre, _ = chebyshev_balls([(dom.D, dom.d)], dom.lo, dom.hi, self.scale)
        pts = np.vstack([centre, pts])
        status, lam, s = self._solve(pts)
        ok = status == "solution"
        if not ok.any():
            more = dom.sample(16 * N_SEEDS, self.rng)
            if more.shape[0]:
                status, lam, s = self._solve(more)
                pts, ok = more, status == "solution"
        if not ok.any():
            raise InfeasibleStateError(
                f"critical_regions: none of {self.n_solves} points drawn in the domain is feasible for QP "
                f"'{self.qp.name}'; the domain misses the feasible set (or meets it in a sliver): choose another box")
        self._regions_at(pts[ok], lam[ok], s[ok])
        if not self.regions:
            raise SolverError("critical_regions: no full-dimensional region was found at the feasible seeds "
                              "(every active set found gave a lower-dimensional region)")

    def _planes(self):
        """A KD-tree over every facet's ``(a, β/scale)`` and the owner of each."""
        keys, owner, row = [], [], []
        for j, R in enumerate(self.regions):
            keys.append(np.hstack([R.A, (R.b / self.scale)[:, None]]))
            owner.append(np.full(R.A.shape[0], j))
            row.append(np.arange(R.A.shape[0]))
        return scipy.spatial.cKDTree(np.vstack(keys)), np.concatenate(owner)

    def _candidates(self, tree, owner, r: int, f: int) -> list[int]:
        R = self.regions[r]
        key = -np.concatenate([R.A[f], [R.b[f] / self.scale]])
        hits = tree.query_ball_point(key, HYPERPLANE_TOL, p=np.inf)
        return sorted(({int(owner[h]) for h in hits} | R.extra[f]) - {r})

    def _facet_point(self, R: _Builder, f: int) -> np.ndarray:
        """A random point in the relative interior of facet ``f`` of ``R``."""
        if R.inc is not None:
            P = R.V[R.inc[f]]
            return self.rng.dirichlet(np.ones(P.shape[0])) @ P
        others = np.delete(np.arange(R.A.shape[0]), f)
        c, r = hyperplane_balls([(R.A[f], R.b[f], R.A[others], R.b[others])], self.domain.lo, self.domain.hi,
                                self.scale)
        self.n_lps[0] += 1
        return self._jitter(c[0], R.A[f], float(r[0]))

    def _facet_points(self, facets: list[tuple[int, int]], radii: list | None = None) -> list[np.ndarray]:
        """A point in the relative interior of each facet ``(region, row)``: the mean of its vertices, or the
        centre of its ball within its hyperplane (one batched LP) where vertices are unknown; the balls'
        radii are appended to ``radii`` (0 for vertex means) when it is given.
        """
        out: list = [None] * len(facets)
        rad = [0.0] * len(facets)
        blocks, where = [], []
        for k, (r, f) in enumerate(facets):
            R = self.regions[r]
            if R.inc is not None:
                out[k] = R.V[R.inc[f]].mean(axis=0)
            else:
                others = np.delete(np.arange(R.A.shape[0]), f)
                blocks.append((R.A[f], R.b[f], R.A[others], R.b[others]))
                where.append(k)
        if blocks:
            centres, rr = hyperplane_balls(blocks, self.domain.lo, self.domain.hi, self.scale)
            self.n_lps[0] += len(blocks)
            for k, c, r in zip(where, centres, rr, strict=True):
                out[k], rad[k] = c, float(r)
        if radii is not None:
            radii.extend(rad)
        return out

    def _jitter(self, c, a, radius: float) -> np.ndarray:
        v = self.rng.normal(size=c.size)
        v -= (v @ a) * a
        nv = np.linalg.norm(v)
        return c if nv == 0 else c + (0.3 * radius * self.rng.random()) * v / nv

    def _over_budget(self) -> str:
        if len(self.regions) >= self.max_regions:
            return f"max_regions = {self.max_regions} reached"
        if self.time_limit is not None and time.perf_counter() - self.start > self.time_limit:
            return f"time_limit = {self.time_limit:g} s reached"
        return ""

    def _report(self, pending: int) -> None:
        if self.progress is False:
            return
        n_open = sum(k == "open" for R in self.regions for k in R.facet)
        info = dict(regions=len(self.regions), pending=pending, open=n_open, rounds=self.rounds,
                    elapsed=time.perf_counter() - self.start)
        if callable(self.progress):
            self.progress(info)
        else:
            print(f"critical_regions: round {info['rounds']}, {info['regions']} regions, {pending} facets pending, "
                  f"{n_open} open, {info['elapsed']:.1f} s", file=sys.stderr, flush=True)

    def run(self) -> Partition:
        self._seed()
        dom, tol = self.domain, MEMBER_TOL * self.scale
        stop = ""
        while True:
            pending = [(r, f) for r, R in enumerate(self.regions) for f, k in enumerate(R.facet) if k is None]
            self._report(len(pending))
            if not pending:
                break
            stop = self._over_budget()
            if stop:
                break
            self.rounds += 1
            tree, owner = self._planes()
            steps = []
            batch = pending[:STEP_BATCH]
            tasks = []
            for r, f in batch:
                R = self.regions[r]
                others = np.delete(np.arange(R.A.shape[0]), f)
                cands = self._candidates(tree, owner, r, f)
                tasks.append(CoverTask(R.A[f], R.b[f], R.A[others], R.b[others],
                                       None if R.inc is None else R.V[R.inc[f]],
                                       [(self.regions[j].A, self.regions[j].b, self.regions[j].V) for j in cands]))
                R.neighbours[f] = set(cands)
            deadline = None if self.time_limit is None else self.start + self.time_limit
            cover(tasks, dom.lo, dom.hi, self.scale, self.n_lps, deadline)
            late = self._over_budget().startswith("time")
            for (r, f), task in zip(batch, tasks, strict=True):
                R = self.regions[r]
                pieces = task.pieces
                if not pieces:
                    R.facet[f] = "interior"
                    continue
                R.neighbours[f] = set()
                if late:
                    continue  # stays pending; the next round reports the budget
                if R.failures[f] >= MAX_FAILURES:
                    R.facet[f] = "open"
                    continue
                if np.isnan(R.eps[f]):
                    R.eps[f] = STEP * self.scale
                piece = max(pieces, key=lambda p: -np.inf if p is None else p.radius)
                centre = None if piece is None else self._jitter(piece.centre, R.A[f], piece.radius)
                steps.append((r, f, centre, None))
            if not steps:
                continue
            whole = [k for k, st in enumerate(steps) if st[2] is None]
            lp_path = [k for k in whole if self.regions[steps[k][0]].inc is None]
            radii: list = []
            balls = self._facet_points([steps[k][:2] for k in lp_path], radii)
            for k, c, rb in zip(lp_path, balls, radii, strict=True):
                steps[k] = (*steps[k][:2], self._jitter(c, self.regions[steps[k][0]].A[steps[k][1]], rb), None)
            for k in whole:
                if steps[k][2] is None:
                    steps[k] = (*steps[k][:2], self._facet_point(self.regions[steps[k][0]], steps[k][1]), None)
            steps = [(r, f, c, c + self.regions[r].eps[f] * self.regions[r].A[f]) for r, f, c, _ in steps]
            points = np.array([s[3] for s in steps])
            inside = dom.contains(points, 0.0)
            feasible = np.zeros(len(steps), bool)
            failed = np.zeros(len(steps), bool)
            found = np.full(len(steps), -1, np.int64)
            if inside.any():
                status, lam, s = self._solve(points[inside])
                ins = np.flatnonzero(inside)
                feasible[ins[status == "solution"]] = True
                failed[ins[status == "failed"]] = True
                lam[status == "failed"] = np.nan  # no solution: only the stepping guesses are tried
                use = status != "infeasible"
                idx = ins[use]
                hints = [self._step_guesses(self.regions[steps[k][0]], steps[k][1]) for k in idx]
                found[idx] = self._regions_at(points[idx], lam[use], s[use], hints)
                feasible |= found >= 0
                failed &= found < 0
            for k in np.flatnonzero(failed).tolist():
                self.regions[steps[k][0]].failures[steps[k][1]] += 1
            support = [k for k in range(len(steps)) if not feasible[k] and not failed[k]]
            if support:
                dirs = np.array([self.regions[steps[k][0]].A[steps[k][1]] for k in support])
                E0, w0 = self.qp.G, self.qp.w
                best = support_max(dirs, E0, self.qp.E, w0, dom.D, dom.d, dom.lo, dom.hi)
                self.n_lps[0] += len(support)
                for k, v in zip(support, best, strict=True):
                    r, f = steps[k][:2]
                    R = self.regions[r]
                    if v <= R.b[f] + COVER_TOL * self.scale:
                        R.facet[f] = "feasible-set boundary"
                    else:
                        R.eps[f] *= STEP_SHRINK
                        R.failures[f] += 1
            for kf in np.flatnonzero(feasible).tolist():
                r, f, centre, _ = steps[kf]
                R = self.regions[r]
                j = int(found[kf])
                if j < 0:
                    R.failures[f] += 1
                    continue
                if j in R.extra[f] or not self.regions[j].contains(np.asarray(centre), tol):
                    R.eps[f] *= STEP_SHRINK
                    R.failures[f] += 1
                R.extra[f].add(j)
        return self._assemble(stop)

    def _assemble(self, stop: str) -> Partition:
        d, qp = self.data, self.qp
        regions = []
        opened = [(r, f) for r, R in enumerate(self.regions) for f, k in enumerate(R.facet) if k in (None, "open")]
        points = self._facet_points(opened)
        open_facets = [OpenFacet(region=r, row=f, point=p) for (r, f), p in zip(opened, points, strict=True)]
        for R in self.regions:
            kinds = [k if k is not None else "open" for k in R.facet]
            act = list(R.active)
            Zg, Zo = R.Z[:, :-1], R.Z[:, -1]
            Ug, Uo = d.T @ Zg, d.T @ Zo
            kkt = R.kkt
            regions.append(Region(
                active=tuple(act), A=R.A, b=R.b, row_kind=np.array(["multiplier", "constraint", "domain"])[R.kind],
                row_index=R.index, centre=R.centre, radius=R.radius,
                vertices=np.zeros((0, qp.n_theta)) if R.V is None else R.V, z_gain=Zg, z_offset=Zo, U_gain=Ug,
                U_offset=Uo, u0_gain=Ug[:d.n_u], u0_offset=Uo[:d.n_u], lambda_gain=R.Lam[:, :-1],
                lambda_offset=R.Lam[:, -1], facet_kind=np.array(kinds, dtype=object),
                neighbours=tuple(tuple(sorted(nb)) for nb in R.neighbours), kkt_residual=kkt))
        complete = not open_facets and not stop
        if complete:
            reason = "every facet is on the domain's or the feasible set's boundary or covered by regions found"
        else:
            why = stop or f"{len(open_facets)} facets could not be decided in {MAX_FAILURES} steps each"
            reason = (f"incomplete: {why}; {len(regions)} regions found, {len(open_facets)} facets open. The "
                      "region count grows fast with the horizon and the state dimension: try a smaller box, "
                      "fewer constraint rows (move blocking), or an unrolled network (mpc2nn.unravel)")
        return Partition(regions=tuple(regions), qp=qp, domain=Polytope(self.domain.D, self.domain.d),
                         complete=complete, status=str(Proof.PROVEN if complete else Proof.INCOMPLETE),
                         reason=reason, open_facets=tuple(open_facets), n_solves=self.n_solves,
                         n_lps=self.n_lps[0], n_lower_dimensional=len(self.lowdim),
                         n_ill_conditioned=len(self.inaccurate), rounds=self.rounds,
                         elapsed=time.perf_counter() - self.start, scale=self.scale)
