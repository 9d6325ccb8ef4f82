r"""The certificate of a lattice network: on every region of a complete partition it equals the region's law.

What is checked, for a :class:`~mpc2nn.regions.Program` and the witness of its lattice:

1. **Numbers.** Every weight is finite (NaN or infinity fails at once).
2. **Structure.** The levels are evaluated symbolically: terms, ``min`` of ``min``s, ``max`` of
   ``min``s (and the mirror forms); every output must reduce to ``max_j min_{k ∈ S_j} t_k``
   (or ``min_j max_{k ∈ S_j} t_k``), and the family ``{S_j}`` read off the levels is what is
   certified, not what the construction meant to build.
3. **Cells.** Per output and region, the witness cells are the leaves of a binary tree of splits
   by half-spaces and their complements, so they cover the region.
4. **Bounds by LP.** With ``D_k = t_k - L`` on region ``R`` (law ``L`` of the region's own active set):

   * *upper*: for every group ``S`` of the family, ``max_{θ ∈ R} min_{k ∈ S} D_k(θ) <= τ`` —
     one LP (epigraph variable ``t``), or the single-term LP ``max_R D_k`` of one literal ``k`` of
     ``S``, shared by every group holding it (the LP per pair of region and group, with groups
     deduplicated and most pairs settled by a literal that stays below the law);
   * *lower*: on every cell of the region, every literal of the cell's group has
     ``max_{θ ∈ cell} -D_k(θ) <= τ``.

   Then ``max_j min_{S_j} t = L`` on the region up to the larger of the two bounds.

Every LP bound is *verified*, not read off HiGHS: for a polytope ``{Aθ <= b}`` inside the box
``[lo, hi]`` and affine ``f_k = g_k θ + c_k``, any ``μ >= 0`` with ``Σ μ = 1`` and ``y >= 0`` give
``min_k f_k(θ) <= Σ μ_k f_k(θ) <= μᵀc + yᵀb + max_{θ ∈ box} rᵀθ`` with ``r = Σ μ_k g_k - Aᵀy``.
HiGHS's duals supply ``(μ, y)``; the bound is evaluated in numpy, with an allowance for the
rounding of its own evaluation and of the differences ``t_k - L``. Each output's LPs are solved on the
differences divided by the output's scale, so HiGHS's absolute tolerances act at that output's own
scale (a late input of size 1e-8 is judged as finely as the first). A region's verdict is ``"proven"``
when both bounds are at most ``τ = CERTIFY_TOL`` times the output's scale, ``"refuted"`` when an
upper-bound LP's maximiser is a point where the program, evaluated there, exceeds the law by more
than ``τ``, and ``"failed"`` otherwise (an LP not solved, a lower bound not reached).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import scipy.optimize

from .._checks import frozen
from ..status import Proof
from ._lattice import Lattice, bounding_box, output_laws, output_scales
from ._lp import LP_OPTIONS, block_diagonal
from ._partition import Partition
from ._program import COPY, MAX, MIN, Program

__all__ = ["LatticeCertificate", "certify_program", "CERTIFY_TOL", "BOX_MARGIN", "LP_BATCH"]

#: A region is proven when the network is shown within ``CERTIFY_TOL`` times the output's scale (its
#: largest ``|u|`` on the partition) of the region's law: 1e-9, the relative accuracy the region laws
#: themselves are certified to (:data:`~mpc2nn.CERTIFICATE_TOL`).
CERTIFY_TOL = 1e-9

#: The box bounding the domain (from LPs solved to 1e-10) is widened by ``BOX_MARGIN`` times the
#: domain's scale so that it surely contains every region; it only multiplies dual residuals of
#: about 1e-12.
BOX_MARGIN = 1e-6

#: LPs per HiGHS call (block-diagonal): HiGHS's time grows faster than linearly with one LP's size,
#: each call costs about a millisecond of overhead.
LP_BATCH = 128

#: Allowance for the rounding of a bound's own evaluation: this many ulps of the magnitudes summed.
ROUNDING_ULPS = 64

_EPS = np.finfo(float).eps


@dataclass(frozen=True, eq=False, kw_only=True)
class LatticeCertificate:
    """What :func:`certify_program` proved about a lattice network on a partition.

    Attributes
    ----------
    proven : bool
        The network equals every region's law (every output, every region) within the tolerance.
    status : str
        A :class:`~mpc2nn.status.Proof` value: ``"proven"``, ``"refuted"`` (a point where the network
        is wrong was found and checked), ``"failed"`` (not shown either way) or ``"incomplete"`` (the
        partition is incomplete, so the regions do not cover the domain).
    reason : str
        What was proven, or what failed.
    verdict : (R,) str
        Per region: ``"proven"``, ``"refuted"`` or ``"failed"``.
    margin : (R, n_out) float
        Per region and output, the proven bound on ``|network - law|`` over the region (``inf`` where
        no bound was proven).
    upper, lower : ndarray, shape (R, n_out)
        The two halves of ``margin``: ``max_R (network - law)`` and ``max_R (law - network)``.
    tol : (n_out,) float
        The tolerance per output (:data:`CERTIFY_TOL` times its scale).
    counterexample : (q, n_θ)
        Points where the network was found wrong (checked by evaluating it), at most one per region.
    n_lps : int
        LPs solved.
    elapsed : float
        Seconds.
    """

    proven: bool
    status: str
    reason: str
    verdict: np.ndarray
    margin: np.ndarray
    upper: np.ndarray
    lower: np.ndarray
    tol: np.ndarray
    counterexample: np.ndarray
    n_lps: int
    elapsed: float

    @property
    def max_margin(self) -> float:
        """The largest proven bound over regions and outputs, relative to each output's scale."""
        if self.margin.size == 0:
            return 0.0
        return float((self.margin / (self.tol / CERTIFY_TOL)).max())

    def summary(self) -> str:
        """A few lines: the verdict, counts and the largest margins."""
        vals, counts = np.unique(self.verdict, return_counts=True)
        verdicts = ", ".join(f"{c} {v}" for v, c in zip(vals, counts, strict=True))
        return (f"certificate: {self.status} ({verdicts or 'no regions'}); largest bound on |network - law| "
                f"{self.max_margin:.2e} of the output's scale (tolerance {CERTIFY_TOL:g}); {self.n_lps} LPs, "
                f"{self.elapsed:.2f} s\n  {self.reason}")


# --- structure ------------------------------------------------------------------------------------
def as_family(value: tuple, outer: str) -> frozenset | None:
    """A symbolic value as the family ``{S_j}`` of ``outer_j inner_{k ∈ S_j} t_k`` (``outer`` "max": a
    max–min form), or ``None`` where it is not of that form.
    """
    kind, x = value
    inner = "min" if outer == "max" else "max"
    if kind == "t" or kind == inner:
        return frozenset([x])
    if kind == outer:
        return frozenset(frozenset([k]) for k in x)
    if kind == outer + inner:
        return x
    return None


def read_values(prog: Program) -> list[tuple] | str:
    """Each output of the levels as a symbolic value, or a message saying why an output is no lattice
    polynomial in normal form.

    Values are kept as ``("t", {k})`` (a term), ``("min", S)``, ``("max", S)``, ``("maxmin", F)`` or
    ``("minmax", F)``; min/max of these reduce by associativity and commutativity only (a term is a
    one-literal min or max, a min of terms a one-group max–min, and so on).
    """
    vals: list[tuple] = [("t", frozenset([k])) for k in range(prog.n_terms)]
    for level, (op, a, b) in enumerate(zip(prog.ops, prog.a, prog.b, strict=True)):
        if a.size and (a.min() < 0 or a.max() >= len(vals) or b.min() < 0 or b.max() >= len(vals)):
            return f"level {level + 1} reads a value that does not exist"
        new = []
        for o, i, j in zip(op.tolist(), a.tolist(), b.tolist(), strict=True):
            x = vals[i]
            if o == COPY:
                new.append(x)
                continue
            if o not in (MIN, MAX):
                return f"level {level + 1}: unknown operation code {o}"
            y = vals[j]
            name = "min" if o == MIN else "max"
            other = "max" if o == MIN else "min"
            if x[0] in ("t", name) and y[0] in ("t", name):
                new.append((name, x[1] | y[1]))
                continue
            fx, fy = as_family(x, name), as_family(y, name)
            if fx is None or fy is None:
                return f"level {level + 1}: a {name} of a {x[0]} and a {y[0]} is no lattice polynomial in normal form"
            new.append((name + other, fx | fy))
        vals = new
    out = []
    for j in prog.out.tolist():
        if j < 0 or j >= len(vals):
            return "an output reads a value that does not exist"
        out.append(vals[j])
    return out


def tree_covers(paths: list[list[tuple[bytes, bytes]]]) -> bool:
    """The leaves ``paths`` (each a list of ``(row key, complement key)``) form a complete binary tree."""
    if len(paths) == 1 and not paths[0]:
        return True
    if any(not p for p in paths):
        return False
    first = paths[0][0]
    plus = [p[1:] for p in paths if p[0] == first]
    minus = [p[1:] for p in paths if p[0] == (first[1], first[0])]
    if len(plus) + len(minus) != len(paths) or not plus or not minus:
        return False
    return tree_covers(plus) and tree_covers(minus)


# --- verified LP bounds ---------------------------------------------------------------------------
def maxmin_bounds(blocks, lo: np.ndarray, hi: np.ndarray, counter: list, unit: float = 1.0):
    """Verified upper bounds on ``max_{Aθ <= b, lo <= θ <= hi} min_k (g_k θ + c_k)``, batched LPs.

    ``blocks``: list of ``(A, b, G, c, mag)``, ``mag (k,)`` the magnitude each ``g_k θ + c_k`` was computed
    from (for the rounding allowance). ``unit``: the scale of the functions (their output's scale); the
    LPs are solved and their bounds verified on ``(g_k θ + c_k) / unit``, so that HiGHS's absolute
    tolerances act relative to the output and a small output is judged at its own scale. Returns
    ``(bound (K,), maximiser (K, n))`` in the functions' units; ``bound`` is ``inf`` where the LP was not
    solved or its duals give no bound.
    """
    if unit != 1.0:
        scaled = [(A, b, G / unit, c / unit, mag / unit) for A, b, G, c, mag in blocks]
        bounds, points = maxmin_bounds(scaled, lo, hi, counter)
        return bounds * unit, points
    K = len(blocks)
    n = lo.size
    bounds = np.full(K, np.inf)
    points = np.full((K, n), np.nan)
    absbox = np.maximum(np.abs(lo), np.abs(hi))
    for s in range(0, K, LP_BATCH):
        part = blocks[s:s + LP_BATCH]
        mats, rhs = [], []
        for A, b, G, c, _ in part:
            mats.append(np.vstack([np.hstack([A, np.zeros((A.shape[0], 1))]),
                                   np.hstack([-G, np.ones((G.shape[0], 1))])]))
            rhs.append(np.concatenate([b, c]))
        width = n + 1
        A_ub = block_diagonal(mats, width)
        b_ub = np.concatenate(rhs)
        cost = np.tile(np.concatenate([np.zeros(n), [-1.0]]), len(part))
        box = np.vstack([np.column_stack([lo, hi]), [[-np.inf, np.inf]]])
        counter[0] += len(part)
        res = scipy.optimize.linprog(cost, A_ub=A_ub, b_ub=b_ub, bounds=np.tile(box, (len(part), 1)), method="highs",
                                     options=LP_OPTIONS)
        if res.status != 0:
            if len(part) > 1:  # one bad block spoils the batch: solve them one by one
                for k in range(len(part)):
                    bb, pp = maxmin_bounds([part[k]], lo, hi, counter)
                    bounds[s + k], points[s + k] = bb[0], pp[0]
            continue
        x = res.x.reshape(len(part), width)
        y_all = -np.asarray(res.ineqlin.marginals)
        start = 0
        for k, (A, b, G, c, mag) in enumerate(part):
            p, q = A.shape[0], G.shape[0]
            y, mu = np.maximum(y_all[start:start + p], 0.0), np.maximum(y_all[start + p:start + p + q], 0.0)
            start += p + q
            points[s + k] = x[k, :n]
            total = mu.sum()
            if not total > 0:
                continue
            mu, y = mu / total, y / total
            r = mu @ G - y @ A
            value = mu @ c + y @ b + np.maximum(r * lo, r * hi).sum()
            size = mu @ mag + y @ np.abs(b) + np.abs(r) @ absbox + np.abs(mu @ G) @ absbox
            bounds[s + k] = value + ROUNDING_ULPS * _EPS * size if np.isfinite(value) else np.inf
    return bounds, points


# --- the certificate --------------------------------------------------------------------------------
def certify_program(part: Partition, prog: Program, lat: Lattice) -> LatticeCertificate:
    """Prove that a lattice network equals the law of every region of a complete partition (see the module
    docstring for what is checked).

    Parameters
    ----------
    part : Partition
        The partition whose regions' laws the network must equal.
    prog : Program
        The network as it evaluates (its terms and levels).
    lat : Lattice
        The witness: per output and region, cells and the group that reaches the law on each
        (``lat.gain``/``lat.groups`` are not trusted: the terms and groups come from ``prog``).

    Returns
    -------
    LatticeCertificate
    """
    t0 = time.perf_counter()
    R, n = part.n_regions, part.n_theta
    gain, offset = output_laws(part, lat.output)
    n_out = gain.shape[1]
    scales = output_scales(part, gain, offset)
    tol = CERTIFY_TOL * scales
    inf = np.full((R, n_out), np.inf)

    def fail(status: Proof, reason: str, verdict: str = "failed") -> LatticeCertificate:
        return LatticeCertificate(proven=False, status=str(status), reason=reason,
                                  verdict=np.full(R, verdict), margin=inf, upper=inf, lower=inf, tol=frozen(tol),
                                  counterexample=np.zeros((0, n)), n_lps=0, elapsed=time.perf_counter() - t0)

    if not part.complete:
        return fail(Proof.INCOMPLETE, f"the partition is incomplete ({part.reason}); its regions do not cover the "
                    "domain, so no network is proven equal to the MPC law on it", "failed")
    if prog.n_out != n_out or len(lat.outputs) != n_out or prog.n_theta != n:
        return fail(Proof.FAILED, f"the network has {prog.n_out} outputs and {prog.n_theta} inputs, the partition's "
                    f"law {n_out} and {n}")
    if not (np.all(np.isfinite(prog.gain)) and np.all(np.isfinite(prog.offset))):
        return fail(Proof.FAILED, "a weight of the network is NaN or infinite")
    values = read_values(prog)
    if isinstance(values, str):
        return fail(Proof.FAILED, f"the network is not a lattice polynomial: {values}")
    fams = []
    for c, (v, wit) in enumerate(zip(values, lat.outputs, strict=True)):
        fam = as_family(v, "max" if wit.orientation == "max-min" else "min")
        if fam is None:
            return fail(Proof.FAILED, f"output {c}: the network computes a {v[0]} form, the witness is for the "
                        f"{wit.orientation} form")
        fams.append((wit.orientation, sorted(fam, key=sorted)))
    lo, hi = _box(part)
    W, w = prog.gain, prog.offset
    t_mag = np.abs(W) @ np.maximum(np.abs(lo), np.abs(hi)) + np.abs(w)
    counter = [0]
    upper = np.full((R, n_out), -np.inf)
    lower = np.full((R, n_out), -np.inf)
    structure_ok = np.ones(R, bool)
    witness_points: list[tuple[int, int, np.ndarray]] = []
    for c, ((orient, groups), wit) in enumerate(zip(fams, lat.outputs, strict=True)):
        sign = 1.0 if orient == "max-min" else -1.0
        fam_keys = {frozenset(g): j for j, g in enumerate(groups)}
        # --- cells cover their regions, and their groups are groups of the network ---
        cells_of: list[list[int]] = [[] for _ in range(R)]
        for k, r in enumerate(wit.cell_region.tolist()):
            if 0 <= r < R:
                cells_of[r].append(k)
        for r in range(R):
            paths = []
            for k in cells_of[r]:
                rows = range(wit.path_ptr[k], wit.path_ptr[k + 1])
                paths.append([(np.append(wit.path_A[i], wit.path_b[i]).tobytes(),
                               np.append(-wit.path_A[i], -wit.path_b[i]).tobytes()) for i in rows])
            if not paths or not tree_covers(paths):
                structure_ok[r] = False
        # --- lower bounds: each cell's group stays above the law on the cell ---
        blocks, owner = [], []
        for k, r in enumerate(wit.cell_region.tolist()):
            if not (0 <= r < R) or not (0 <= wit.cell_group[k] < wit.n_groups):
                continue
            group = frozenset(int(t) for t in wit.groups[wit.cell_group[k]])
            if group not in fam_keys:
                structure_ok[r] = False
                continue
            Rg = part.regions[r]
            cut = slice(wit.path_ptr[k], wit.path_ptr[k + 1])
            A = np.vstack([Rg.A, wit.path_A[cut]])
            b = np.concatenate([Rg.b, wit.path_b[cut]])
            gl, cl = sign * gain[r, c], sign * offset[r, c]
            l_mag = np.abs(gain[r, c]) @ np.maximum(np.abs(lo), np.abs(hi)) + abs(offset[r, c])
            for t in sorted(group):
                # max over the cell of -(sign·t - sign·L)
                blocks.append((A, b, -(sign * W[t] - gl)[None, :], np.array([-(sign * w[t] - cl)]),
                               np.array([t_mag[t] + l_mag])))
                owner.append(r)
        bnd, _ = maxmin_bounds(blocks, lo, hi, counter, scales[c])
        for r, v in zip(owner, bnd, strict=True):
            lower[r, c] = max(lower[r, c], v)
        # --- upper bounds: no group exceeds the law anywhere on any region ---
        single: dict[tuple[int, int], int] = {}
        s_blocks: list[tuple] = []
        pairs: list[tuple] = []
        for r, Rg in enumerate(part.regions):
            gl, cl = sign * gain[r, c], sign * offset[r, c]
            probe = Rg.vertices if Rg.vertices.shape[0] else Rg.centre[None, :]
            est = (probe @ (sign * W - gl).T + (sign * w - cl)).max(axis=0)
            l_mag = np.abs(gain[r, c]) @ np.maximum(np.abs(lo), np.abs(hi)) + abs(offset[r, c])
            for g in groups:
                lits = sorted(g)
                t = lits[int(np.argmin(est[lits]))]
                if (r, t) not in single:
                    single[(r, t)] = len(s_blocks)
                    s_blocks.append((Rg.A, Rg.b, (sign * W[t] - gl)[None, :], np.array([sign * w[t] - cl]),
                                     np.array([t_mag[t] + l_mag])))
                pairs.append((r, g, single[(r, t)], l_mag))
        s_bnd, s_pts = maxmin_bounds(s_blocks, lo, hi, counter, scales[c])
        m_blocks, m_owner = [], []
        for r, g, idx, l_mag in pairs:
            if s_bnd[idx] <= tol[c]:
                upper[r, c] = max(upper[r, c], s_bnd[idx])
                continue
            Rg = part.regions[r]
            lits = sorted(g)
            gl, cl = sign * gain[r, c], sign * offset[r, c]
            m_blocks.append((Rg.A, Rg.b, sign * W[lits] - gl, sign * w[lits] - cl, t_mag[lits] + l_mag))
            m_owner.append(r)
        m_bnd, m_pts = maxmin_bounds(m_blocks, lo, hi, counter, scales[c])
        for r, v, p in zip(m_owner, m_bnd, m_pts, strict=True):
            upper[r, c] = max(upper[r, c], v)
            if v > tol[c] and np.all(np.isfinite(p)):
                witness_points.append((r, c, p))
    margin = np.maximum(upper, lower)
    margin = np.where(np.isnan(margin), np.inf, margin)
    ok = np.all(margin <= tol, axis=1) & structure_ok
    verdict = np.where(ok, str(Proof.PROVEN), str(Proof.FAILED)).astype(object)
    counter_pts = []
    seen = set()
    for r, c, p in witness_points:
        if r in seen:
            continue
        val = prog.evaluate(p[None, :])[0, c]
        law = gain[r, c] @ p + offset[r, c]
        if part.regions[r].contains(p[None, :], 1e-9 * part.scale)[0] and abs(val - law) > tol[c]:
            verdict[r] = str(Proof.REFUTED)
            counter_pts.append(p)
            seen.add(r)
    verdict = np.asarray(verdict, str)
    n_ok = int(ok.sum())
    if n_ok == R:
        status, reason = Proof.PROVEN, (f"on each of the {R} regions every output of the network equals the region's "
                                        f"law within {CERTIFY_TOL:g} of the output's scale (verified LP bounds)")
    elif counter_pts:
        status, reason = Proof.REFUTED, (f"the network differs from the law by more than the tolerance at "
                                         f"{len(counter_pts)} checked points (regions {sorted(seen)[:10]}); "
                                         f"{n_ok} of {R} regions proven")
    else:
        bad = np.flatnonzero(~ok)
        why = "the witness cells do not cover the region or name no group of the network" \
            if not structure_ok[bad].all() else "a bound exceeds the tolerance or an LP was not solved"
        status, reason = Proof.FAILED, f"{R - n_ok} of {R} regions not proven ({why}; regions {bad[:10].tolist()})"
    return LatticeCertificate(
        proven=status == Proof.PROVEN, status=str(status), reason=reason, verdict=verdict,
        margin=frozen(margin), upper=frozen(upper), lower=frozen(lower), tol=frozen(tol),
        counterexample=frozen(np.array(counter_pts).reshape(-1, n)), n_lps=counter[0],
        elapsed=time.perf_counter() - t0)


def _box(part: Partition) -> tuple[np.ndarray, np.ndarray]:
    lo, hi = bounding_box(part)
    return lo - BOX_MARGIN * part.scale, hi + BOX_MARGIN * part.scale
