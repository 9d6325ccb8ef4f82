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

    def relu_masks(self, graph: ReluGraph, i: int):
        """``(on, off, undecided)`` masks of ReLU node ``i`` from its parent's interval."""
        p = graph.nodes[i].parents[0]
        on = self.lo[p] >= 0.0
        off = self.hi[p] <= 0.0
        return on, off & ~on, ~(on | off)

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


def propagate(graph: ReluGraph, *, window: int = DEFAULT_WINDOW, backsubstitute: bool = True) -> GraphBounds:
    """Intervals and symbolic bounds of every node of ``graph`` over ``ξ ∈ [-1, 1]^n``.

    Parameters
    ----------
    graph : ReluGraph
        A graph in unit-box coordinates (:meth:`ReluGraph.with_input_map`).
    window : int
        Depth (in nodes) of the back-substitution of each pre-activation.
    backsubstitute : bool
        Refine the pre-activations by back-substitution (pass 3); ``False`` keeps passes 1 and 2.

    Returns
    -------
    GraphBounds
    """
    n = graph.n_in
    nodes = graph.nodes
    B = GraphBounds(lo=[], hi=[], SL=[], sl=[], SU=[], su=[])
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


def upper_linear(graph: ReluGraph, B: GraphBounds, target: int, C: np.ndarray, window: int | None = None):
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

    Returns
    -------
    W : ndarray, shape (k, n)
    c : ndarray, shape (k,)
    """
    nodes = graph.nodes
    n = graph.n_in
    lam: dict = {target: np.asarray(C, float)}
    bias = np.zeros(lam[target].shape[0])
    out = np.zeros((bias.size, n))
    stop = -1 if window is None else target - window
    for i in range(target, -1, -1):
        L = lam.pop(i, None)
        if L is None:
            continue
        node = nodes[i]
        if node.kind == "input":
            out += L
        elif i < stop:
            Lp, Ln = np.maximum(L, 0.0), np.minimum(L, 0.0)
            out += Lp @ B.SU[i] + Ln @ B.SL[i]
            bias += Lp @ B.su[i] + Ln @ B.sl[i]
        elif node.kind == "affine":
            bias += L @ node.bias
            for p, A in zip(node.parents, node.weights, strict=True):
                contrib = L @ A
                lam[p] = lam[p] + contrib if p in lam else contrib
        else:
            p = node.parents[0]
            s_up, t_up, s_low = _relax(B.lo[p], B.hi[p])
            Lp, Ln = np.maximum(L, 0.0), np.minimum(L, 0.0)
            contrib = Lp * s_up[None, :] + Ln * s_low[None, :]
            bias += Lp @ t_up
            lam[p] = lam[p] + contrib if p in lam else contrib
        if not lam:
            break
    return out, bias
