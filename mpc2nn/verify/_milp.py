"""The MILP of one cell: the network's undecided ReLUs as binaries, solved by HiGHS (``scipy.optimize.milp``).

On a cell (a box in unit coordinates ``ξ ∈ [-1, 1]^n`` intersected with a polytope), every node of the
graph is an affine function of ``ξ`` and of the outputs ``r_q`` of the *undecided* ReLU neurons (the
stable ones are the identity or zero there). :func:`flatten` computes those functions; the MILP then has
the variables ``(ξ, r, δ)`` and, for each undecided neuron with pre-activation ``a_q(ξ, r)`` in ``[l_q, u_q]``,
the big-M constraints (exact for ``δ_q ∈ {0, 1}``)::

    r_q >= a_q,   r_q >= 0,   r_q <= a_q - l_q (1 - δ_q),   r_q <= u_q δ_q.

The objective is linear in the output and ``θ``; its optimum is the maximum over the cell, and HiGHS's dual
bound is an upper bound on it even when the solve stops at a time limit.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import scipy.optimize
import scipy.sparse

from ..status import Proof
from ._bounds import GraphBounds
from ._graph import ReluGraph

__all__ = ["Flat", "flatten", "phase_cut", "NEGLIGIBLE_GAP", "MilpOutcome", "solve_milp", "maximise_lp",
           "HIGHS_MILP_OPTIONS", "MILP_STATUS",
           "MIP_REL_GAP", "MIP_ABS_GAP", "FEASIBILITY_TOL", "LP_OPTIONS"]

#: Relative MILP gap HiGHS stops at (``mip_rel_gap``): the dual bound is then within this fraction of the
#: incumbent; small next to the 5% the verification goals allow, large enough not to chase rounding.
MIP_REL_GAP = 1e-6
#: Absolute MILP gap HiGHS stops at (``mip_abs_gap``, units of u).
MIP_ABS_GAP = 1e-10
#: Primal feasibility and MIP feasibility (integrality) tolerances of HiGHS: 1e-9 instead of HiGHS's 1e-7 and
#: 1e-6, so that a big-M row with ``M`` up to 1e3 lets a ReLU output err by at most about 1e-6 of u.
FEASIBILITY_TOL = 1e-9
#: The HiGHS options of every MILP and LP here (passed to HiGHS verbatim by scipy).
HIGHS_MILP_OPTIONS = dict(mip_rel_gap=MIP_REL_GAP, mip_abs_gap=MIP_ABS_GAP,
                          primal_feasibility_tolerance=FEASIBILITY_TOL, mip_feasibility_tolerance=FEASIBILITY_TOL,
                          dual_feasibility_tolerance=FEASIBILITY_TOL)

#: The HiGHS options of the LPs (feasibility tolerances only; each option costs scipy a check per call).
LP_OPTIONS = dict(primal_feasibility_tolerance=FEASIBILITY_TOL, dual_feasibility_tolerance=FEASIBILITY_TOL)

#: scipy's ``milp`` status codes and what they prove.
MILP_STATUS = {0: "optimal", 1: "time or node limit", 2: "infeasible", 3: "unbounded", 4: "solver failure"}


@dataclass
class Flat:
    """The graph on a cell as affine functions of ``x = (ξ, r)`` (internal).

    ``out_M (n_out, n + K)``, ``out_m (n_out,)``: the output; ``pre_M (K, n + K)``, ``pre_m (K,)``, ``lo, hi
    (K,)``: the pre-activations of the K undecided neurons and their bounds (neuron q depends only on
    ``ξ`` and the neurons before it).
    """

    n: int
    out_M: np.ndarray
    out_m: np.ndarray
    pre_M: np.ndarray
    pre_m: np.ndarray
    lo: np.ndarray
    hi: np.ndarray

    @property
    def K(self) -> int:
        """Number of undecided neurons (binaries)."""
        return self.lo.size


def flatten(graph: ReluGraph, B: GraphBounds) -> Flat:
    """Every node of ``graph`` as an affine function of ``(ξ, r)`` on the unit box (see :class:`Flat`)."""
    n = graph.n_in
    masks = {i: B.relu_masks(graph, i) for i, nd in enumerate(graph.nodes) if nd.kind == "relu"}
    K = int(sum(m[2].sum() for m in masks.values()))
    width = n + K
    Ms: list = []
    ms: list = []
    pre_M = np.zeros((K, width))
    pre_m = np.zeros(K)
    lo = np.zeros(K)
    hi = np.zeros(K)
    q = 0
    for i, node in enumerate(graph.nodes):
        if node.kind == "input":
            M = np.zeros((n, width))
            M[:, :n] = np.eye(n)
            Ms.append(M)
            ms.append(np.zeros(n))
        elif node.kind == "affine":
            _compose(node, Ms, ms, width)
        else:
            p = node.parents[0]
            on, _, und = masks[i]
            M = np.where(on[:, None], Ms[p], 0.0)
            m = np.where(on, ms[p], 0.0)
            for row in np.flatnonzero(und):
                pre_M[q] = Ms[p][row]
                pre_m[q] = ms[p][row]
                lo[q], hi[q] = B.lo[p][row], B.hi[p][row]
                M[row] = 0.0
                M[row, n + q] = 1.0
                m[row] = 0.0
                q += 1
            Ms.append(M)
            ms.append(m)
    return Flat(n, Ms[graph.output], ms[graph.output], pre_M, pre_m, lo, hi)


def _compose(node, Ms: list, ms: list, width: int) -> None:
    """Append the affine node's map ``M ξ + m`` (M (size, width)) composed from its parents' maps."""
    M = np.zeros((node.size, width))
    m = node.bias.copy()
    for p, A in zip(node.parents, node.weights, strict=True):
        M += A @ Ms[p]
        m += A @ ms[p]
    Ms.append(M)
    ms.append(m)


#: An undecided ReLU whose triangle relaxation is within ``NEGLIGIBLE_GAP·(|l| + u)`` of the ReLU (its
#: pre-activation interval ``[l, u]`` touches zero only by about a thousand ulps, as on the cut that split
#: the cell, or on a facet of a critical region where two affine pieces meet) is not split on: the
#: relaxation, which the bound keeps, is then within that distance of the ReLU.
NEGLIGIBLE_GAP = 1e-12


def phase_cut(graph: ReluGraph, B: GraphBounds, skip: frozenset = frozenset()):
    """The pre-activation of the first ReLU neuron (in graph order) worth splitting on, affine in ``ξ``.

    Neurons stable on the cell are the identity or zero; undecided ones before the chosen neuron whose
    relaxation gap is negligible (:data:`NEGLIGIBLE_GAP`) or that were split on already (``skip``, of
    ``(node, row)`` pairs) are replaced by the identity or zero, whichever side of zero their interval
    reaches further. The cut ``pᵀξ + p0 = 0`` need not be exact: its two sides cover the cell whatever it
    is, and in each the neuron's interval then touches zero only by the rounding.

    Returns
    -------
    (node, row), p (n,), p0 : the neuron and its pre-activation ``pᵀξ + p0``; ``None`` where no neuron is
    worth splitting on.
    """
    n = graph.n_in
    Ms: list = []
    ms: list = []
    for i, node in enumerate(graph.nodes):
        if node.kind == "input":
            Ms.append(np.eye(n))
            ms.append(np.zeros(n))
        elif node.kind == "affine":
            _compose(node, Ms, ms, n)
        else:
            p = graph.nodes[i].parents[0]
            lo, hi = B.lo[p], B.hi[p]
            gap = B.gap(graph, i)
            worth = (gap > NEGLIGIBLE_GAP * (np.abs(lo) + np.abs(hi))) & (gap > 0)
            for row in np.flatnonzero(worth):
                if (i, int(row)) not in skip and np.any(Ms[p][row] != 0):
                    return (i, int(row)), Ms[p][row].copy(), float(ms[p][row])
            keep = hi >= -lo  # stable active, or undecided reaching further above zero
            Ms.append(np.where(keep[:, None], Ms[p], 0.0))
            ms.append(np.where(keep, ms[p], 0.0))
    return None


@dataclass
class MilpOutcome:
    """One MILP (or LP) maximisation: ``bound`` proven (HiGHS's dual bound), ``value`` at ``xi`` (incumbent).

    ``status`` is a :class:`~mpc2nn.status.Proof` value: proven (optimal within the gap), incomplete (a limit
    was hit; ``bound`` still holds), failed (no bound: ``bound = inf``); ``message`` says what HiGHS said.
    """

    status: str
    bound: float
    value: float
    xi: np.ndarray | None
    message: str
    nodes: int = 0


def _highs(fn, *args, **kwargs):
    with warnings.catch_warnings():  # scipy warns that the tolerances go to HiGHS verbatim: intended
        warnings.filterwarnings("ignore", message="Unrecognized options", category=RuntimeWarning)
        return fn(*args, **kwargs)


def solve_milp(flat: Flat, c_out: np.ndarray, c_xi: np.ndarray, c0: float, A_cell: np.ndarray, b_cell: np.ndarray,
               time_limit: float) -> MilpOutcome:
    """``max c_outᵀ out + c_ξᵀ ξ + c0`` over the cell ``{ξ ∈ [-1, 1]^n : A_cell ξ <= b_cell}`` by HiGHS.

    Parameters
    ----------
    flat : Flat
        The graph on the cell.
    c_out : ndarray, shape (n_out,)
        Weights of the outputs.
    c_xi : ndarray, shape (n,)
        Weights of ``ξ`` (the affine law's part, already in unit coordinates).
    c0 : float
        Constant.
    A_cell, b_cell : ndarrays, shapes (p, n) and (p,)
        The polytope's rows in unit coordinates.
    time_limit : float
        Seconds HiGHS may take.

    Returns
    -------
    MilpOutcome
    """
    n, K = flat.n, flat.K
    nv = n + 2 * K  # ξ, r, δ
    obj = np.zeros(nv)
    obj[:n + K] = c_out @ flat.out_M
    obj[:n] += c_xi
    const = float(c_out @ flat.out_m + c0)
    rows, lower, upper = [], [], []
    if A_cell.shape[0]:
        rows.append(scipy.sparse.csr_matrix(np.hstack([A_cell, np.zeros((A_cell.shape[0], 2 * K))])))
        lower.append(np.full(A_cell.shape[0], -np.inf))
        upper.append(b_cell)
    if K:
        eyeK = scipy.sparse.eye(K, format="csr")
        P = scipy.sparse.csr_matrix(flat.pre_M)  # (K, n + K) over (ξ, r)
        zero = scipy.sparse.csr_matrix((K, K))
        # r - a >= α  (r >= pre-activation)
        rows.append(scipy.sparse.hstack([-P + scipy.sparse.hstack([scipy.sparse.csr_matrix((K, n)), eyeK]), zero]))
        lower.append(flat.pre_m)
        upper.append(np.full(K, np.inf))
        # r - a - l δ <= α - l
        rows.append(scipy.sparse.hstack([-P + scipy.sparse.hstack([scipy.sparse.csr_matrix((K, n)), eyeK]),
                                         scipy.sparse.diags(-flat.lo)]))
        lower.append(np.full(K, -np.inf))
        upper.append(flat.pre_m - flat.lo)
        # r - u δ <= 0
        rows.append(scipy.sparse.hstack([scipy.sparse.csr_matrix((K, n)), eyeK, scipy.sparse.diags(-flat.hi)]))
        lower.append(np.full(K, -np.inf))
        upper.append(np.zeros(K))
    lb = np.concatenate([-np.ones(n), np.zeros(K), np.zeros(K)])
    ub = np.concatenate([np.ones(n), np.maximum(flat.hi, 0.0), np.ones(K)])
    integrality = np.concatenate([np.zeros(n + K), np.ones(K)])
    constraints = []
    if rows:
        constraints = [scipy.optimize.LinearConstraint(scipy.sparse.vstack(rows).tocsr(), np.concatenate(lower),
                                                       np.concatenate(upper))]
    options = dict(HIGHS_MILP_OPTIONS, time_limit=max(float(time_limit), 1e-3), presolve=True)
    res = _highs(scipy.optimize.milp, -obj, integrality=integrality, bounds=scipy.optimize.Bounds(lb, ub),
                 constraints=constraints, options=options)
    message = f"{MILP_STATUS.get(res.status, res.status)}: {res.message}"
    nodes = int(res.get("mip_node_count") or 0)
    if res.status == 2:  # the cell holds no point of the polytope: nothing to bound
        return MilpOutcome(str(Proof.PROVEN), -np.inf, -np.inf, None, message, nodes)
    dual = res.get("mip_dual_bound")
    x = res.x
    if res.status == 0 or (res.status == 1 and dual is not None and np.isfinite(dual)):
        bound = -float(dual) + const if dual is not None and np.isfinite(dual) else -float(res.fun) + const
        if res.status == 0 and x is not None:
            bound = max(bound, -float(res.fun) + const)  # the dual bound can sit a gap's width below the incumbent
        value = -float(res.fun) + const if x is not None else -np.inf
        status = str(Proof.PROVEN) if res.status == 0 else str(Proof.INCOMPLETE)
        return MilpOutcome(status, bound, value, None if x is None else np.asarray(x[:n]), message, nodes)
    return MilpOutcome(str(Proof.FAILED), np.inf, -np.inf, None if x is None else np.asarray(x[:n]), message, nodes)


def maximise_lp(W: np.ndarray, c, A_cell: np.ndarray, b_cell: np.ndarray):
    """``max W[k]ᵀξ + c[k]`` for every row ``k`` over ``{ξ ∈ [-1, 1]^n : A_cell ξ <= b_cell}``, one HiGHS LP.

    The k maximisations are stacked block-diagonally (one call instead of k). Returns ``(values (k,),
    maximisers (k, n))``: values ``-inf`` when the set is empty, ``inf`` (maximisers NaN) when the LP failed.
    """
    W = np.atleast_2d(np.asarray(W, float))
    k, n = W.shape
    c = np.broadcast_to(np.asarray(c, float), (k,))
    if not A_cell.shape[0]:
        X = np.where(W >= 0, 1.0, -1.0)
        return np.abs(W).sum(axis=1) + c, X
    A = scipy.sparse.block_diag([scipy.sparse.csr_matrix(A_cell)] * k, format="csr")
    b = np.tile(b_cell, k)
    res = _highs(scipy.optimize.linprog, -W.ravel(), A_ub=A, b_ub=b, bounds=(-1.0, 1.0), method="highs",
                 options=LP_OPTIONS)
    if res.status == 2:
        return np.full(k, -np.inf), np.full((k, n), np.nan)
    if res.status != 0:
        return np.full(k, np.inf), np.full((k, n), np.nan)
    X = np.asarray(res.x).reshape(k, n)
    return np.einsum("kn,kn->k", W, X) + c, X
