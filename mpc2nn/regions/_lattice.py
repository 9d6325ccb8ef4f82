r"""A lattice (max–min) representation of a partition's law, with the witness its proof needs.

A continuous piecewise-affine function ``f`` on a convex domain with distinct affine pieces
``ℓ_1 .. ℓ_P`` is ``f(θ) = max_j min_{k ∈ S_j} ℓ_k(θ)`` (Tarela and Martínez 1999; Ovchinnikov 2002)
for groups ``S_j = S(x_j) = {k : ℓ_k(x_j) >= f(x_j)}`` taken at points ``x_j``, one in every cell of
unique order of the pieces. Two facts make that a construction:

* *every* group of this form is a lower bound of ``f``: ``min_{k ∈ S(x)} ℓ_k(y) <= f(y)`` for all
  ``x, y`` of the domain (Ovchinnikov's lemma), so groups taken at any points never overshoot;
* on a region ``R`` of the partition with law ``L`` the group ``S(x)`` reaches ``f`` wherever all its
  pieces stay above ``L``; so each region is split, by the hyperplanes ``ℓ_k = L`` of the pieces that
  cross it and are above ``L`` at the cell's point, into *cells* on which one group reaches ``f``.

Groups taken per critical region (the pieces above ``L`` on all of ``R``) are too small and
overshoot elsewhere; groups taken at sampled points are lower bounds but miss small cells: the
cells here come from every region of a complete partition. Groups that contain another group are
dropped (their minimum is never larger), then a greedy set cover keeps few groups that still
reach ``f`` on every cell. The same construction on ``-f`` gives the min–max form
``f = min_j max_{k ∈ S_j} ℓ_k``; each output takes the smaller of the two.

The witness kept for the certificate (:func:`~mpc2nn.regions.certify_lattice`): for every output
and region, its cells as the leaves of a binary tree of half-space splits, each with the group that
reaches ``f`` on it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.spatial

from .._checks import frozen
from ..exceptions import ProblemDefinitionError
from ..problem import Polytope
from ._explore import HYPERPLANE_TOL
from ._geometry import VERTEX_TOL, unique_rows
from ._lp import block_diagonal, chebyshev_balls, solve_lp
from ._partition import Partition

__all__ = ["LatticeOutput", "Lattice", "lattice_of", "bounding_box", "output_laws", "output_scales", "covered_set",
           "MERGE_TOL", "ORDER_TOL", "OUTPUTS"]

#: Two laws of one output on two regions are one piece when their gains (times the domain's scale)
#: and offsets differ by at most ``MERGE_TOL`` times the output's scale: laws of neighbouring regions
#: that agree are computed from different active sets and differ by rounding, about 1e-13 relative on
#: the problems measured; 1e-10 keeps distinct laws apart while merging those.
MERGE_TOL = 1e-10

#: A piece is above (below) a region's law on a polytope when their difference is at least
#: ``-ORDER_TOL`` (at most ``ORDER_TOL``) times the output's scale on it: the construction's
#: decisions (which pieces cross a region, which polytopes are split); the certificate measures what
#: these decisions leave as margins.
ORDER_TOL = 1e-9

#: What a lattice can represent: the first input (``n_u`` outputs) or the whole sequence (``N·n_u``).
OUTPUTS = ("u0", "U")


@dataclass(frozen=True, kw_only=True)
class LatticeOutput:
    """The lattice form of one output and the witness of its proof.

    Attributes
    ----------
    orientation : str
        ``"max-min"`` (``max_j min_{k ∈ S_j} t_k``) or ``"min-max"`` (``min_j max_{k ∈ S_j} t_k``).
    groups : tuple of ndarray of int
        The groups ``S_j`` as indices into the lattice's term table.
    cell_region : (K,) int
        The region of each cell.
    cell_group : (K,) int
        The group that reaches the law on each cell (index into ``groups``).
    path_ptr : (K + 1,) int
        Cell ``c``'s split rows are ``path_A[path_ptr[c]:path_ptr[c + 1]]``, in the order of the
        splits from the region down to the cell.
    path_A, path_b : ndarray, shapes (Σ, n_θ) and (Σ,)
        Split rows ``a θ <= β`` (their sibling in the tree has ``-a θ <= -β``).
    """

    orientation: str
    groups: tuple
    cell_region: np.ndarray
    cell_group: np.ndarray
    path_ptr: np.ndarray
    path_A: np.ndarray
    path_b: np.ndarray

    @property
    def n_groups(self) -> int:
        """Number of groups."""
        return len(self.groups)

    @property
    def n_cells(self) -> int:
        """Number of cells of the witness."""
        return self.cell_region.size


@dataclass(frozen=True, kw_only=True)
class Lattice:
    """A lattice representation of a partition's law: affine terms shared by the outputs, groups per output.

    Attributes
    ----------
    gain, offset : ndarray, shapes (T, n_θ) and (T,)
        The affine terms ``t_k(θ) = gain[k] θ + offset[k]``: the distinct laws of every output
        (a law shared by two outputs is one term).
    output : str
        ``"u0"`` or ``"U"``: what the outputs are.
    outputs : tuple of LatticeOutput
        One per output component.
    """

    gain: np.ndarray
    offset: np.ndarray
    output: str
    outputs: tuple

    @property
    def n_terms(self) -> int:
        """Number of affine terms."""
        return self.offset.size


def output_laws(part: Partition, output: str) -> tuple[np.ndarray, np.ndarray]:
    """``(gain (R, n_out, n_θ), offset (R, n_out))``: every region's law of the outputs."""
    if output not in OUTPUTS:
        raise ProblemDefinitionError(f"output: expected 'u0' or 'U', got {output!r}")
    if output == "u0":
        return (np.array([R.u0_gain for R in part.regions]), np.array([R.u0_offset for R in part.regions]))
    return np.array([R.U_gain for R in part.regions]), np.array([R.U_offset for R in part.regions])


def output_scales(part: Partition, gain: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """``(n_out,)`` the largest ``|law|`` of each output over the regions (at their vertices, else
    bounded from the centre and the Chebyshev radius), floored at the smallest normal number.
    """
    out = np.full(gain.shape[1], np.finfo(float).tiny)
    for r, R in enumerate(part.regions):
        if R.vertices.shape[0]:
            vals = np.abs(R.vertices @ gain[r].T + offset[r]).max(axis=0)
        else:
            vals = np.abs(gain[r] @ R.centre + offset[r]) + np.linalg.norm(gain[r], axis=1) * R.radius
        out = np.maximum(out, vals)
    return out


def merge_laws(gain: np.ndarray, offset: np.ndarray, theta_scale: float, scale: float):
    """``(piece (R,), gain (P, n), offset (P,))``: laws equal within :data:`MERGE_TOL` merged, each piece
    the mean of its laws.
    """
    key = np.hstack([gain * theta_scale, offset[:, None]])
    tol = MERGE_TOL * scale
    piece = np.full(key.shape[0], -1, np.int64)
    reps: list[np.ndarray] = []
    for i in range(key.shape[0]):
        if reps:
            diff = np.abs(np.array(reps) - key[i]).max(axis=1)
            j = int(np.argmin(diff))
            if diff[j] <= tol:
                piece[i] = j
                continue
        piece[i] = len(reps)
        reps.append(key[i])
    P = len(reps)
    G = np.zeros((P, gain.shape[1]))
    c = np.zeros(P)
    np.add.at(G, piece, gain)
    np.add.at(c, piece, offset)
    counts = np.bincount(piece, minlength=P).astype(float)
    return piece, G / counts[:, None], c / counts


class _Poly:
    """A polytope ``{A θ <= b}`` (a region, or a cell of one) with an interior point and its vertices."""

    def __init__(self, A, b, centre, V, path_A, path_b):
        self.A, self.b, self.centre, self.V = A, b, centre, V
        self.path_A, self.path_b = path_A, path_b


def _extremes(P: _Poly, G: np.ndarray, c: np.ndarray, lo_box, hi_box):
    """``(min, max)`` over the polytope of each affine function ``G θ + c`` (vertices, else batched LPs)."""
    if P.V is not None:
        vals = P.V @ G.T + c
        return vals.min(axis=0), vals.max(axis=0)
    k, n = G.shape
    dirs = np.vstack([G, -G])
    A_ub = block_diagonal([P.A] * (2 * k), n)
    b_ub = np.tile(P.b, 2 * k)
    bounds = np.tile(np.column_stack([lo_box, hi_box]), (2 * k, 1))
    res = solve_lp(-dirs.ravel(), A_ub, b_ub, bounds=bounds, accept=(0,))
    x = res.x.reshape(2 * k, n)
    vals = np.einsum("kn,kn->k", x, dirs)
    return vals[k:] * -1 + c, vals[:k] + c


def _hull_points(P: np.ndarray, scale: float) -> np.ndarray:
    """A point set with the same convex hull: qhull's vertices, or the points without duplicates where qhull
    fails (thin sets).
    """
    P = P[unique_rows(P, np.zeros(P.shape[0]), scale, tol=VERTEX_TOL * scale)]
    if P.shape[0] <= P.shape[1] + 1 or P.shape[1] == 1:
        return P
    try:
        return P[scipy.spatial.ConvexHull(P).vertices]
    except (scipy.spatial.QhullError, ValueError):
        return P


def _split(P: _Poly, a: np.ndarray, beta: float, lo_box, hi_box, scale: float):
    """The two cells ``P ∩ {a θ <= β}`` and ``P ∩ {a θ >= β}`` (``a`` unit), each with an interior point and
    a point set whose convex hull it is.

    With points: the cell is the hull of the parent's points on its side and of the points where the
    segments between points on opposite sides cross the hyperplane (the hyperplane's section of a
    polytope is the hull of those crossings), and the points' mean is interior. Without: one LP each.
    """
    out = []
    for s in (1.0, -1.0):
        A = np.vstack([P.A, s * a[None, :]])
        b = np.append(P.b, s * beta)
        path_A, path_b = np.vstack([P.path_A, s * a[None, :]]), np.append(P.path_b, s * beta)
        if P.V is not None:
            val = s * (P.V @ a - beta)
            inside, outside = P.V[val <= 0], P.V[val > 0]
            vi, vo = val[val <= 0], val[val > 0]
            t = vi[:, None] / (vi[:, None] - vo[None, :])
            cross = inside[:, None, :] + t[:, :, None] * (outside[None, :, :] - inside[:, None, :])
            V = _hull_points(np.vstack([inside, cross.reshape(-1, a.size)]), scale)
            out.append(_Poly(A, b, V.mean(axis=0), V, path_A, path_b))
        else:
            centre, _ = chebyshev_balls([(A, b)], lo_box, hi_box, scale)
            out.append(_Poly(A, b, centre[0], None, path_A, path_b))
    return out


def _cells(R, gi, ci, G, c, tol: float, lo_box, hi_box, scale: float, family: list):
    """Cells of a region for one output: ``[(path_A, path_b, above (P,) bool)]``, ``above`` the pieces that
    stay above the region's law ``L`` on the cell, which contains a group of ``family``.

    A cell whose above-set contains no group of the family gets the group ``S(x) = {k : ℓ_k(x) >= L(x)}``
    at its Chebyshev centre ``x`` when every piece of it stays above ``L`` on the cell (the group joins the
    family), or is split by the hyperplane ``ℓ_k = L`` of a piece of ``S(x)`` that goes below ``L`` on it.
    """
    n = gi.size
    V = R.vertices if R.vertices.shape[0] else None
    root = _Poly(R.A, R.b, R.centre, V, np.zeros((0, n)), np.zeros(0))
    dG, dc = G - gi, c - ci
    out = []
    stack = [root]
    while stack:
        P = stack.pop()
        lo, hi = _extremes(P, dG, dc, lo_box, hi_box)
        above = lo >= -tol
        if family and np.any(np.all(np.array(family) <= above, axis=1)):
            out.append((P.path_A, P.path_b, above))
            continue
        at_x = dG @ P.centre + dc
        S = above | ((hi > tol) & (at_x > 0))
        bad = np.flatnonzero(S & ~above)
        if bad.size == 0:
            family.append(S)
            out.append((P.path_A, P.path_b, above))
            continue
        k = int(bad[np.argmin(lo[bad])])
        norm = np.linalg.norm(dG[k])
        # split by ℓ_k = L: the side ℓ_k <= L reads (−dG_k) θ >= dc_k → rows a θ <= β with a = −dG_k/‖·‖
        a, beta = -dG[k] / norm, dc[k] / norm
        stack.extend(_split(P, a, beta, lo_box, hi_box, scale))
    return out


def _subsets(cand: np.ndarray, sets: np.ndarray) -> np.ndarray:
    """``(C, U)`` bool: candidate ``j`` is a subset of set ``u`` (no literal of ``j`` outside ``u``)."""
    outside = (~sets).astype(np.float32)
    out = np.empty((cand.shape[0], sets.shape[0]), bool)
    step = max(1, 2**24 // max(cand.shape[0], 1))
    cf = cand.astype(np.float32)
    for s in range(0, sets.shape[0], step):
        out[:, s:s + step] = (cf @ outside[s:s + step].T) == 0
    return out


def _cover(family: list[np.ndarray], sets: list[np.ndarray]) -> tuple[list[np.ndarray], np.ndarray]:
    """Few groups of ``family`` such that every cell's above-set contains one: ``(groups as bool masks,
    group of each cell)``.

    A candidate containing another is dropped; then greedy set cover (the candidate contained in the
    most uncovered cells' sets first).
    """
    F = np.unique(np.array(family, bool), axis=0)
    uniq, inverse = np.unique(np.array(sets, bool), axis=0, return_inverse=True)
    inverse = inverse.ravel()
    F = F[np.argsort(F.sum(axis=1), kind="stable")]
    keep = np.ones(F.shape[0], bool)
    for i in range(F.shape[0]):
        if keep[i]:
            sup = np.all(F[i] <= F[i + 1:], axis=1)  # later (larger or equal) candidates containing F[i]
            keep[i + 1:] &= ~sup
    cand = F[keep]
    contains = _subsets(cand, uniq)
    if not contains.any(axis=0).all():
        raise AssertionError("a cell contains no group of the family")  # by construction it always does
    weight = np.bincount(inverse, minlength=uniq.shape[0]).astype(float)
    gain = contains.astype(float) @ weight - 1e-9 * cand.sum(axis=1)
    uncovered = np.ones(uniq.shape[0], bool)
    chosen: list[int] = []
    while uncovered.any():
        j = int(np.argmax(gain))
        chosen.append(j)
        new = uncovered & contains[j]
        uncovered &= ~new
        gain -= contains[:, new].astype(float) @ weight[new]
        gain[j] = -np.inf
    groups = [cand[j] for j in chosen]
    sub = contains[chosen]  # (G, U)
    size = np.array([g.sum() for g in groups], float)
    assign = np.argmin(np.where(sub, size[:, None], np.inf), axis=0)
    return groups, assign[inverse]


def _reduce(groups: list[np.ndarray], below: np.ndarray) -> list[np.ndarray]:
    """Groups with literals dropped where every region keeps a literal that stays below its law there.

    ``below (R, P)``: piece ``k`` stays below the law of region ``r`` on all of it. A group's minimum is
    a lower bound of the law on region ``r`` as soon as one literal is below there, so the literals of
    a group can shrink to a hitting set of the regions' below-sets (greedy); regions where no single
    literal is below (the minimum of several is) keep the whole group. Dropping literals only raises
    the minimum, so every cell the group reached stays reached.
    """
    out = []
    for g in groups:
        lits = np.flatnonzero(g)
        hit = below[:, lits]
        need = hit.any(axis=1)
        if not need.all():
            out.append(g)
            continue
        keep: list[int] = []
        todo = need.copy()
        while todo.any():
            j = int(np.argmax(hit[todo].sum(axis=0)))
            keep.append(int(lits[j]))
            todo &= ~hit[:, j]
        new = np.zeros_like(g)
        new[keep] = True
        out.append(new)
    return out


def _orient(part: Partition, gain: np.ndarray, offset: np.ndarray, scale: float, lo_box, hi_box):
    """Max–min form of one output's law (laws per region ``gain (R, n)``, ``offset (R,)``):
    ``(pieces gain (P, n), offset (P,), groups [bool (P,)], cells [(region, path_A, path_b)], cell group)``.
    """
    piece, G, c = merge_laws(gain, offset, part.scale, scale)
    tol = ORDER_TOL * scale
    cells, sets = [], []
    family: list[np.ndarray] = []
    below = np.zeros((part.n_regions, G.shape[0]), bool)
    # regions with few facets first: their groups often cover the others without a split
    order = np.argsort([R.n_facets for R in part.regions], kind="stable")
    for r in order:
        R = part.regions[r]
        root = _Poly(R.A, R.b, R.centre, R.vertices if R.vertices.shape[0] else None, None, None)
        below[r] = _extremes(root, G - gain[r], c - offset[r], lo_box, hi_box)[1] <= tol
        for path_A, path_b, above in _cells(R, gain[r], offset[r], G, c, tol, lo_box, hi_box, part.scale, family):
            cells.append((int(r), path_A, path_b))
            sets.append(above)
    groups, _ = _cover(family, sets)
    groups, assign = _cover(_reduce(groups, below), sets)
    return G, c, groups, cells, assign


def _size(groups: list[np.ndarray]) -> tuple[int, int]:
    """``(pairwise operations, depth)`` of a max–min over the groups (balanced trees)."""
    ops = sum(int(g.sum()) - 1 for g in groups) + len(groups) - 1
    inner = max(int(np.ceil(np.log2(max(int(g.sum()), 1)))) for g in groups)
    return ops, inner + int(np.ceil(np.log2(max(len(groups), 1))))


def lattice_of(part: Partition, output: str = "u0", *, orientation: str = "best") -> Lattice:
    """The lattice representation of a complete partition's law, with the cells that prove it.

    Parameters
    ----------
    part : Partition
        A complete partition (status ``"proven"``).
    output : {"u0", "U"}
        The first input or the whole input sequence.
    orientation : {"best", "max-min", "min-max"}
        The form of every output; ``"best"`` takes, per output, the one with fewer pairwise
        operations (then the smaller depth).

    Returns
    -------
    Lattice
    """
    if orientation not in ("best", "max-min", "min-max"):
        raise ProblemDefinitionError(f"orientation: expected 'best', 'max-min' or 'min-max', got {orientation!r}")
    if not part.complete:
        raise ProblemDefinitionError(f"partition: the lattice needs a complete partition (status 'proven'), got "
                                     f"status {part.status!r}: {part.reason}")
    gain, offset = output_laws(part, output)
    scales = output_scales(part, gain, offset)
    lo_box, hi_box = bounding_box(part)
    terms: dict[bytes, int] = {}
    t_gain: list[np.ndarray] = []
    t_offset: list[float] = []
    outs = []
    for j in range(gain.shape[1]):
        options = []
        for orient, sign in (("max-min", 1.0), ("min-max", -1.0)):
            if orientation not in ("best", orient):
                continue
            G, c, groups, cells, assign = _orient(part, sign * gain[:, j], sign * offset[:, j], scales[j],
                                                  lo_box, hi_box)
            options.append((_size(groups), orient, sign * G, sign * c, groups, cells, assign))
        _, orient, G, c, groups, cells, assign = min(options, key=lambda o: o[0])
        index = np.empty(G.shape[0], np.int64)
        for k in range(G.shape[0]):
            key = np.concatenate([G[k], [c[k]]]).tobytes()
            if key not in terms:
                terms[key] = len(t_offset)
                t_gain.append(G[k])
                t_offset.append(float(c[k]))
            index[k] = terms[key]
        n = part.n_theta
        ptr = np.cumsum([0] + [cl[1].shape[0] for cl in cells]).astype(np.int64)
        outs.append(LatticeOutput(
            orientation=orient, groups=tuple(index[np.flatnonzero(g)] for g in groups),
            cell_region=np.array([cl[0] for cl in cells], np.int64), cell_group=np.asarray(assign, np.int64),
            path_ptr=ptr, path_A=frozen(np.vstack([cl[1] for cl in cells]).reshape(-1, n)),
            path_b=frozen(np.concatenate([cl[2] for cl in cells]))))
    return Lattice(gain=frozen(np.array(t_gain).reshape(-1, part.n_theta)), offset=frozen(np.array(t_offset)),
                   output=output, outputs=tuple(outs))


def bounding_box(part: Partition) -> tuple[np.ndarray, np.ndarray]:
    """The bounding box of the partition's domain (2 n_θ LPs)."""
    C, d = np.asarray(part.domain.C), np.asarray(part.domain.d)
    n = C.shape[1]
    lo, hi = np.zeros(n), np.zeros(n)
    for k in range(n):
        for sign, out in ((1.0, hi), (-1.0, lo)):
            obj = np.zeros(n)
            obj[k] = -sign
            res = solve_lp(obj, C, d, bounds=[(None, None)] * n, accept=(0,))
            out[k] = -sign * res.fun
    return lo, hi


def covered_set(part: Partition) -> Polytope:
    """The set the regions of a complete partition cover, ``Θ ∩ K``, as a polytope (unit rows).

    ``Θ ∩ K`` is convex and its boundary is made of the regions' boundary facets (kinds "domain
    boundary" and "feasible-set boundary"), each on a hyperplane that supports it; so the half-spaces
    of those facets, duplicates merged, describe it.

    Parameters
    ----------
    part : Partition
        A complete partition.

    Returns
    -------
    Polytope
    """
    rows, rhs = [], []
    for R in part.regions:
        on = np.isin(R.facet_kind, ("domain boundary", "feasible-set boundary"))
        rows.append(R.A[on])
        rhs.append(R.b[on])
    A = np.vstack(rows) if rows else np.zeros((0, part.n_theta))
    b = np.concatenate(rhs) if rhs else np.zeros(0)
    keep = unique_rows(A, b, part.scale, tol=HYPERPLANE_TOL)
    return Polytope(A[keep], b[keep])
