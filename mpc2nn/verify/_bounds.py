"""Bounds on every node of a :class:`~mpc2nn.verify.ReluGraph` over the unit box of its input.

Three passes, each sound (every bound holds for every input in the box, up to floating-point rounding,
which :data:`BOUND_SLACK` covers):

1. **Intervals** (interval arithmetic), node by node.
2. **Symbolic forward bounds**: each node is kept between two affine functions of the input
   ``SL ξ + sl <= v <= SU ξ + su`` (the "symbolic interval" of ReluVal/Neurify; exact through stable ReLUs, a
   triangle relaxation through unstable ones), concretised on the box and intersected with the intervals.
3. **Back-substitution** (CROWN / DeepPoly): the pre-activation of every ReLU with undecided neurons is
   bounded by substituting linear relaxations backwards through the graph, ``window`` nodes deep, and the
   symbolic forward bounds of the node where it stops. The output's bounds are affine functions of the input
   obtained the same way without a window; :mod:`._milp` maximises them over a region by an LP.

ReLUs whose pre-activation has ``l >= 0`` or ``u <= 0`` are *stable* and need no binary in the MILP; the
others get the big-M constraints with these ``l, u``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._graph import ReluGraph
from ._lp import verified_max

__all__ = ["GraphBounds", "propagate", "upper_linear", "backsubstitute_rows", "BOUND_SLACK", "DEFAULT_WINDOW"]

#: Every concretised bound is widened by ``BOUND_SLACK·(1 + |bound| + size of its terms)``: the bounds are
#: computed in float64 without directed rounding, and the widening covers their rounding (about 1e-13
#: relative for graphs of a few hundred nodes), so a neuron is called stable only with a margin.
BOUND_SLACK = 1e-9

#: Back-substitution depth (nodes) for the pre-activations: deep enough to cancel the wrapping of a few
#: unrolled layers, short enough that a 100-layer unrolled network costs ``O(depth·window)`` products.
DEFAULT_WINDOW = 24


@dataclass
class GraphBounds:
    """Bounds of every node over the unit box ``ξ ∈ [-1, 1]^n`` (internal, mutable while computed).

    ``lo[i], hi[i]`` (size_i,) intervals; ``SL, sl, SU, su`` the symbolic forward bounds; ``stable_on``
    and ``stable_off`` the ReLU neurons decided active and inactive (by their parent's interval).
    """

    lo: list
    hi: list
    SL: list
    sl: list
    SU: list
    su: list
    n_lps: int = 0

    def relu_masks(self, graph: ReluGraph, i: int):
        """``(on, off, undecided)`` masks of ReLU node ``i`` from its parent's interval."""
        p = graph.nodes[i].parents[0]
        on = self.lo[p] >= 0.0
        off = self.hi[p] <= 0.0
        return on, off & ~on, ~(on | off)

    def gap(self, graph: ReluGraph, i: int) -> np.ndarray:
        """Per neuron of ReLU node ``i``: the largest distance between the ReLU and its triangle relaxation
        on the parent's interval, ``-l·u/(u - l)`` (0 for a stable neuron).
        """
        p = graph.nodes[i].parents[0]
        lo, hi = self.lo[p], self.hi[p]
        und = (lo < 0) & (hi > 0)
        out = np.zeros(lo.size)
        out[und] = -lo[und] * hi[und] / (hi[und] - lo[und])
        return out

    def n_unstable(self, graph: ReluGraph) -> int:
        """Number of undecided ReLU neurons."""
        return int(sum(self.relu_masks(graph, i)[2].sum() for i, n in enumerate(graph.nodes) if n.kind == "relu"))


def _slack(lo: np.ndarray, hi: np.ndarray, mag: np.ndarray):
    pad = BOUND_SLACK * (1.0 + np.maximum(np.abs(lo), np.abs(hi)) + mag)
    return lo - pad, hi + pad


def _relax(lo: np.ndarray, hi: np.ndarray):
    """Slopes and intercepts of the ReLU relaxations on ``[lo, hi]``: ``(s_up, t_up, s_low)`` with
    ``s_low·x <= relu(x) <= s_up·x + t_up``; the lower slope is 0 or 1, whichever leaves less area.
    """
    on, off = lo >= 0, hi <= 0
    und = ~(on | off)
    s_up = np.where(on, 1.0, 0.0)
    t_up = np.zeros_like(lo)
    s_low = np.where(on, 1.0, 0.0)
    if und.any():
        d = hi[und] - lo[und]
        s = hi[und] / d
        s_up[und] = s
        t_up[und] = -s * lo[und]
        s_low[und] = (hi[und] >= -lo[und]).astype(float)
    return s_up, t_up, s_low


def propagate(graph: ReluGraph, *, window: int = DEFAULT_WINDOW, backsubstitute: bool = True,
              cell: tuple | None = None) -> GraphBounds:
    """Intervals and symbolic bounds of every node of ``graph`` over ``ξ ∈ [-1, 1]^n``.

    With ``cell = (A, b)`` (the rows of a polytope inside the unit box, unit coordinates), the
    back-substituted bounds of every pre-activation still undecided on the box are maximised over the
    polytope instead of the box, by LPs whose bounds are verified by weak duality
    (:func:`~mpc2nn.verify._lp.verified_max`; pass 4): a ReLU stable on the polytope but not on its
    bounding box is then decided, and a network affine on the polytope has no undecided ReLU there.

    Parameters
    ----------
    graph : ReluGraph
        A graph in unit-box coordinates (:meth:`ReluGraph.with_input_map`).
    window : int
        Depth (in nodes) of the back-substitution of each pre-activation.
    backsubstitute : bool
        Refine the pre-activations by back-substitution (pass 3); ``False`` keeps passes 1 and 2.
    cell : (A, b), optional
        A polytope in the unit box: the bounds of the undecided pre-activations hold on it (pass 4).

    Returns
    -------
    GraphBounds
    """
    n = graph.n_in
    nodes = graph.nodes
    B = GraphBounds(lo=[], hi=[], SL=[], sl=[], SU=[], su=[])
    if cell is not None:  # rows that cut the box (the others hold on all of it: nothing to tighten by)
        A_c, b_c = np.asarray(cell[0], float), np.asarray(cell[1], float)
        cuts = np.abs(A_c).sum(axis=1) > b_c
        cell = (A_c[cuts], b_c[cuts]) if cuts.any() else None
    feeds_relu = np.zeros(len(nodes), bool)
    for node in nodes:
        if node.kind == "relu":
            feeds_relu[node.parents[0]] = True
    for i, node in enumerate(nodes):
        if node.kind == "input":
            B.SL.append(np.eye(n))
            B.SU.append(np.eye(n))
            B.sl.append(np.zeros(n))
            B.su.append(np.zeros(n))
            B.lo.append(-np.ones(n))
            B.hi.append(np.ones(n))
            continue
        if node.kind == "affine":
            SU = np.zeros((node.size, n))
            SL = np.zeros((node.size, n))
            su = node.bias.copy()
            sl = node.bias.copy()
            ilo = node.bias.copy()
            ihi = node.bias.copy()
            mag = np.abs(node.bias).copy()
            for p, A in zip(node.parents, node.weights, strict=True):
                Ap, An = np.maximum(A, 0.0), np.minimum(A, 0.0)
                SU += Ap @ B.SU[p] + An @ B.SL[p]
                su += Ap @ B.su[p] + An @ B.sl[p]
                SL += Ap @ B.SL[p] + An @ B.SU[p]
                sl += Ap @ B.sl[p] + An @ B.su[p]
                ilo += Ap @ B.lo[p] + An @ B.hi[p]
                ihi += Ap @ B.hi[p] + An @ B.lo[p]
                mag += np.abs(A) @ np.maximum(np.abs(B.lo[p]), np.abs(B.hi[p]))
            slo = sl - np.abs(SL).sum(axis=1)
            shi = su + np.abs(SU).sum(axis=1)
            lo, hi = _slack(np.maximum(ilo, slo), np.minimum(ihi, shi), mag)
            B.SL.append(SL)
            B.sl.append(sl)
            B.SU.append(SU)
            B.su.append(su)
            B.lo.append(lo)
            B.hi.append(hi)
            if backsubstitute and feeds_relu[i]:
                und = (lo < 0) & (hi > 0)
                if und.any():
                    rows = np.flatnonzero(und)
                    Lw, lc, Uw, uc = backsubstitute_rows(graph, B, i, rows, window)
                    blo = lc - np.abs(Lw).sum(axis=1)
                    bhi = uc + np.abs(Uw).sum(axis=1)
                    blo, bhi = _slack(blo, bhi, mag[rows])
                    B.lo[i][rows] = np.maximum(B.lo[i][rows], blo)
                    B.hi[i][rows] = np.minimum(B.hi[i][rows], bhi)
                    if cell is not None and cell[0].shape[0]:
                        _tighten_on_cell(graph, B, i, window, cell)
            continue
        # ReLU
        p = node.parents[0]
        s_up, t_up, s_low = _relax(B.lo[p], B.hi[p])
        B.SU.append(s_up[:, None] * B.SU[p])
        B.su.append(s_up * B.su[p] + t_up)
        B.SL.append(s_low[:, None] * B.SL[p])
        B.sl.append(s_low * B.sl[p])
        B.lo.append(np.maximum(B.lo[p], 0.0))
        B.hi.append(np.maximum(B.hi[p], 0.0))
    return B


def _tighten_on_cell(graph: ReluGraph, B: GraphBounds, i: int, window: int, cell: tuple) -> None:
    """Pass 4 for node ``i``: its undecided rows bounded over the polytope by verified LPs."""
    rows = np.flatnonzero((B.lo[i] < 0) & (B.hi[i] > 0))
    if not rows.size:
        return
    k = rows.size
    eye = np.eye(graph.nodes[i].size)[rows]
    W, c, size, terms = upper_linear(graph, B, i, np.vstack([eye, -eye]), window, magnitude=True)
    bound, _ = verified_max(W, c, cell[0], cell[1], size, terms)
    B.n_lps += 1
    if np.any(bound == -np.inf):  # HiGHS finds the polytope empty: keep the box bounds
        return
    B.lo[i][rows] = np.maximum(B.lo[i][rows], -bound[k:])
    B.hi[i][rows] = np.minimum(B.hi[i][rows], bound[:k])


def backsubstitute_rows(graph: ReluGraph, B: GraphBounds, target: int, rows, window: int | None):
    """Affine lower and upper bounds ``Lw ξ + lc <= v_target[rows] <= Uw ξ + uc`` by back-substitution.

    Returns
    -------
    Lw, lc, Uw, uc : ndarrays of shapes (k, n), (k,), (k, n), (k,)
    """
    k = len(rows)
    eye = np.eye(graph.nodes[target].size)[rows]
    W, c = upper_linear(graph, B, target, np.vstack([eye, -eye]), window)
    return -W[k:], -c[k:], W[:k], c[:k]


def upper_linear(graph: ReluGraph, B: GraphBounds, target: int, C: np.ndarray, window: int | None = None,
                 magnitude: bool = False):
    """Affine upper bounds ``C v_target <= W ξ + c`` (one per row of ``C``) by back-substitution.

    Relaxations of the ReLUs use the intervals in ``B`` (of the nodes before ``target``); a node more
    than ``window`` nodes before ``target`` (``None``: no limit) is replaced by its symbolic forward bounds.
    Exact (``W ξ + c = C v_target``) where every ReLU on the way is stable.

    Parameters
    ----------
    graph : ReluGraph
        The graph, in unit-box coordinates.
    B : GraphBounds
        Bounds of (at least) the nodes before ``target``.
    target : int
        The node bounded.
    C : ndarray, shape (k, size of target)
        Rows of the linear functions of ``v_target`` bounded above.
    window : int or None
        Substitution depth in nodes.
    magnitude : bool
        Also return ``size`` (k,) and ``terms``: the same substitution in absolute values (``|W| + |c|``
        of the computation, each product's magnitude summed) and the number of products an entry was
        accumulated from, so that the rounding of ``W, c`` is at most about ``terms·eps·size``.

    Returns
    -------
    W : ndarray, shape (k, n)
    c : ndarray, shape (k,)
    size : ndarray, shape (k,)
        Only with ``magnitude``.
    terms : int
        Only with ``magnitude``.
    """
    nodes = graph.nodes
    n = graph.n_in
    lam: dict = {target: np.asarray(C, float)}
    labs: dict = {target: np.abs(lam[target])}
    bias = np.zeros(lam[target].shape[0])
    size = np.zeros_like(bias)
    terms = 0
    out = np.zeros((bias.size, n))
    stop = -1 if window is None else target - window
    for i in range(target, -1, -1):
        L = lam.pop(i, None)
        La = labs.pop(i, None)
        if L is None:
            continue
        node = nodes[i]
        terms += node.size
        if node.kind == "input":
            out += L
            if magnitude:
                size += La.sum(axis=1)
        elif i < stop:
            Lp, Ln = np.maximum(L, 0.0), np.minimum(L, 0.0)
            out += Lp @ B.SU[i] + Ln @ B.SL[i]
            bias += Lp @ B.su[i] + Ln @ B.sl[i]
            if magnitude:
                size += La @ (np.abs(B.SU[i]).sum(axis=1) + np.abs(B.SL[i]).sum(axis=1) + np.abs(B.su[i])
                              + np.abs(B.sl[i]))
                terms += n
        elif node.kind == "affine":
            bias += L @ node.bias
            if magnitude:
                size += La @ np.abs(node.bias)
            for p, A in zip(node.parents, node.weights, strict=True):
                contrib = L @ A
                lam[p] = lam[p] + contrib if p in lam else contrib
                if magnitude:
                    ca = La @ np.abs(A)
                    labs[p] = labs[p] + ca if p in labs else ca
        else:
            p = node.parents[0]
            s_up, t_up, s_low = _relax(B.lo[p], B.hi[p])
            Lp, Ln = np.maximum(L, 0.0), np.minimum(L, 0.0)
            contrib = Lp * s_up[None, :] + Ln * s_low[None, :]
            bias += Lp @ t_up
            lam[p] = lam[p] + contrib if p in lam else contrib
            if magnitude:
                size += La @ np.abs(t_up)
                ca = La * np.maximum(np.abs(s_up), np.abs(s_low))[None, :]
                labs[p] = labs[p] + ca if p in labs else ca
        if not lam:
            break
    if magnitude:
        return out, bias, size, terms
    return out, bias
