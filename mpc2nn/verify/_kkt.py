"""Verification without a partition: the MPC law by the KKT conditions of its QP, as one MILP per objective.

On a cell of ``θ`` (``θ = c + h ⊙ ξ``, ``ξ`` in the unit box and the region's rows) the MILP has the variables
``(ξ, r, δ_net)`` of the network (:func:`~mpc2nn.verify._milp.flatten`: the undecided ReLUs' big-M rows) and
``(z, λ, δ)`` of the QP, with

* stationarity ``H z + F θ + Gᵀ λ = 0``, primal feasibility ``s = w + E θ - G z >= 0``, ``λ >= 0``;
* complementarity, for each row that may be active, ``λ_i <= Λ_i δ_i`` and ``s_i <= S_i (1 - δ_i)``
  (``δ_i ∈ {0, 1}``); rows proven never active have ``λ_i = 0`` and no binary;
* the valid cuts ``Σ σ_i λ_i <= N̄`` and the box of the optimum around the unconstrained minimiser.

``Λ, S, σ, N̄`` and the box are proven by :func:`~mpc2nn.verify._kkt_bounds.kkt_bounds` (Slater's argument
and LPs). Every point of the MILP satisfies the KKT conditions exactly (up to HiGHS's tolerances), so its
``z`` is the QP's unique optimum at its ``θ``; every KKT point of the cell satisfies the bounds, so the
MILP's maximum is the maximum of the error over the cell. The input-bound violation needs only primal
feasibility (``θ`` feasible), no multipliers. A cell where the bounds cannot be proven is bisected, and
left uncovered when it is small or the cells run out (the result says so).
"""

from __future__ import annotations

import heapq
import time
import warnings
from dataclasses import dataclass

import numpy as np
import scipy.optimize
import scipy.sparse

from ..status import Proof
from ._bab import Objectives, TaskOutcome
from ._bounds import propagate
from ._graph import ReluGraph
from ._kkt_bounds import KKTBounds, cell_data, kkt_bounds
from ._milp import HIGHS_MILP_OPTIONS, MILP_STATUS, Flat, MilpOutcome, flatten

__all__ = ["kkt_milp", "run_kkt", "KKTRun", "DEFAULT_KKT_CELLS", "KKT_MIN_CELL", "MILP_PASSES"]

#: Cells the KKT encoding may split the region into where Slater's bound fails on a cell (near states
#: where the QP is infeasible); each proven cell costs one MILP per objective.
DEFAULT_KKT_CELLS = 64
#: A cell narrower than ``KKT_MIN_CELL`` of the region (on every side) whose bounds cannot be proven is left
#: uncovered instead of bisected further.
KKT_MIN_CELL = 1 / 64
#: Passes over a cell's objectives: each MILP first gets its share of the time left; those stopped at it are
#: re-solved with the time the others left unused (a cutoff from the first pass's incumbents prunes them).
MILP_PASSES = 3


def _highs(fn, *args, **kwargs):
    with warnings.catch_warnings():  # scipy warns that the tolerances go to HiGHS verbatim: intended
        warnings.filterwarnings("ignore", message="Unrecognized options", category=RuntimeWarning)
        return fn(*args, **kwargs)


def _sp(A) -> scipy.sparse.csr_matrix:
    return scipy.sparse.csr_matrix(A)


def kkt_milp(flat: Flat, qp, kb: KKTBounds | None, centre: np.ndarray, half: np.ndarray, c_out: np.ndarray,
             c_U: np.ndarray, c0: float, Au: np.ndarray, bu: np.ndarray, time_limit: float,
             cutoff: float = -np.inf) -> MilpOutcome:
    """``max c_outᵀ y(θ) + c_Uᵀ U*(θ) + c0`` over the cell by HiGHS (``kb`` None: ``c_U = 0`` and only the
    feasibility of the QP at ``θ`` is imposed, the multipliers left out).

    Parameters
    ----------
    flat : Flat
        The network on the cell.
    qp : CondensedQP
        The QP.
    kb : KKTBounds or None
        The proven bounds of the cell (None: feasibility only).
    centre, half : ndarrays, shape (n_θ,)
        The cell's box.
    c_out : ndarray, shape (n_out,)
        Weights of the network's outputs.
    c_U : ndarray, shape (n_out,)
        Weights of the law's outputs (the first ``n_out`` entries of ``U = T z``).
    c0 : float
        Constant.
    Au, bu : ndarrays
        The region's rows in unit coordinates.
    time_limit : float
        Seconds HiGHS may take.
    cutoff : float
        Only points whose objective is at least ``cutoff`` are searched (a value known to be attained):
        the bound returned is ``max(cutoff, maximum over those points)``, a bound on the maximum over the
        cell whatever ``cutoff`` is, and HiGHS prunes every node below it.

    Returns
    -------
    MilpOutcome
        ``xi`` the maximiser in unit coordinates.
    """
    n, K = flat.n, flat.K
    G, H = qp.G, qp.H
    m, n_z = G.shape
    Et, wt, Fh, Fc = cell_data(qp, centre, half)
    act = np.flatnonzero(kb.active) if kb is not None else np.zeros(0, int)
    ma = act.size if kb is not None else 0
    nl = ma
    iz = n + 2 * K
    il = iz + n_z
    idk = il + nl
    nv = idk + ma
    T = qp.output_map if qp.output_map is not None else np.eye(n_z)
    obj = np.zeros(nv)
    obj[:n + K] = c_out @ flat.out_M
    obj[iz:iz + n_z] = c_U @ T[:c_U.size]
    const = float(c_out @ flat.out_m + c0)
    blocks, lower, upper = [], [], []

    def add(cols: dict, lo, hi):
        M = scipy.sparse.hstack([_sp(cols.get(k, np.zeros((len(lo), w)))) for k, w in
                                 (("xi", n), ("r", K), ("dn", K), ("z", n_z), ("lam", nl), ("dk", ma))]).tocsr()
        blocks.append(M)
        lower.append(np.asarray(lo, float))
        upper.append(np.asarray(hi, float))

    if Au.shape[0]:
        add(dict(xi=Au), np.full(Au.shape[0], -np.inf), bu)
    if K:
        P = flat.pre_M  # (K, n + K) over (ξ, r)
        eye = np.eye(K)
        # r - a >= α
        add(dict(xi=-P[:, :n], r=eye - P[:, n:]), flat.pre_m, np.full(K, np.inf))
        # r - a - l δ <= α - l
        add(dict(xi=-P[:, :n], r=eye - P[:, n:], dn=np.diag(-flat.lo)), np.full(K, -np.inf), flat.pre_m - flat.lo)
        # r - u δ <= 0
        add(dict(r=eye, dn=np.diag(-flat.hi)), np.full(K, -np.inf), np.zeros(K))
    # primal feasibility: G z - Ẽ ξ <= w̃
    add(dict(xi=-Et, z=G), np.full(m, -np.inf), wt)
    if kb is not None:
        Ga = G[act]
        # stationarity: H z + Fh ξ + G_aᵀ λ_a = -F c
        add(dict(xi=Fh, z=H, lam=Ga.T), -Fc, -Fc)
        # λ_i - Λ_i δ_i <= 0
        add(dict(lam=np.eye(ma), dk=np.diag(-kb.lam_hi[act])), np.full(ma, -np.inf), np.zeros(ma))
        # s_i <= S_i (1 - δ_i):  Ẽ_i ξ - G_i z + S_i δ_i <= S_i - w̃_i
        add(dict(xi=Et[act], z=-Ga, dk=np.diag(kb.s_hi[act])), np.full(ma, -np.inf), kb.s_hi[act] - wt[act])
        # the cut Σ σ_i λ_i <= N̄ and the box |z + J ξ - a| <= r of the optimum
        add(dict(lam=kb.sigma[act][None, :]), [-np.inf], [kb.nbar])
        add(dict(xi=kb.J, z=np.eye(n_z)), kb.a - kb.r, kb.a + kb.r)
    if np.isfinite(cutoff):
        add(dict(xi=obj[None, :n], r=obj[None, n:n + K], z=obj[None, iz:iz + n_z]), [cutoff - const], [np.inf])
    lb = np.concatenate([-np.ones(n), np.zeros(2 * K), np.full(n_z, -np.inf), np.zeros(nl), np.zeros(ma)])
    ub = np.concatenate([np.ones(n), np.maximum(flat.hi, 0.0), np.ones(K), np.full(n_z, np.inf),
                         kb.lam_hi[act] if kb is not None else np.zeros(0), np.ones(ma)])
    integrality = np.zeros(nv)
    integrality[n + K:n + 2 * K] = 1
    integrality[idk:] = 1
    cons = scipy.optimize.LinearConstraint(scipy.sparse.vstack(blocks).tocsr(), np.concatenate(lower),
                                           np.concatenate(upper))
    options = dict(HIGHS_MILP_OPTIONS, time_limit=max(float(time_limit), 1e-3), presolve=True)
    res = _highs(scipy.optimize.milp, -obj, integrality=integrality, bounds=scipy.optimize.Bounds(lb, ub),
                 constraints=[cons], options=options)
    message = f"{MILP_STATUS.get(res.status, res.status)}: {res.message}"
    nodes = int(res.get("mip_node_count") or 0)
    if res.status == 2:  # no point at or above the cutoff (or none at all)
        return MilpOutcome(str(Proof.PROVEN), float(cutoff), -np.inf, None, message, nodes)
    dual = res.get("mip_dual_bound")
    x = res.x
    if res.status == 0 or (res.status == 1 and dual is not None and np.isfinite(dual)):
        bound = -float(dual) + const if dual is not None and np.isfinite(dual) else -float(res.fun) + const
        if res.status == 0 and x is not None:
            bound = max(bound, -float(res.fun) + const)
        bound = max(bound, float(cutoff))
        value = -float(res.fun) + const if x is not None else -np.inf
        status = str(Proof.PROVEN) if res.status == 0 else str(Proof.INCOMPLETE)
        return MilpOutcome(status, bound, value, None if x is None else np.asarray(x[:n]), message, nodes)
    if res.status == 1:  # the time limit before an incumbent: scipy then reports no dual bound, so the LP
        # relaxation (the same rows, integrality dropped) gives one: weaker, as valid
        lp = _highs(scipy.optimize.milp, -obj, integrality=np.zeros(nv), bounds=scipy.optimize.Bounds(lb, ub),
                    constraints=[cons], options=dict(HIGHS_MILP_OPTIONS, time_limit=max(float(time_limit), 1.0)))
        if lp.status == 0:
            return MilpOutcome(str(Proof.INCOMPLETE), max(-float(lp.fun) + const, float(cutoff)), -np.inf, None,
                               message + "; the LP relaxation's bound kept", nodes)
        return MilpOutcome(str(Proof.INCOMPLETE), np.inf, -np.inf, None, message, nodes)
    return MilpOutcome(str(Proof.FAILED), np.inf, -np.inf, None if x is None else np.asarray(x[:n]), message, nodes)


@dataclass
class KKTRun:
    """What :func:`run_kkt` proved (internal): per proven cell a TaskOutcome, the cells left uncovered
    (``unbounded``: the outcomes of cells whose MILPs stopped before HiGHS had a bound, kept for their
    witnesses only).
    """

    outcomes: list
    uncovered: int
    empty: int
    messages: list
    unbounded: list


def _unit_rows(A, b, centre, half):
    Au = A * half[None, :]
    bu = b - A @ centre
    norms = np.linalg.norm(Au, axis=1)
    keep = norms > 0
    return Au[keep] / norms[keep, None], bu[keep] / norms[keep]


def run_kkt(graph: ReluGraph, qp, region, objectives: Objectives, time_left, *, best=None,
            order=None, max_cells: int = DEFAULT_KKT_CELLS, on_result=None) -> KKTRun:
    """The KKT encoding over ``region`` (a ThetaRegion), cells bisected where the bounds fail.

    Parameters
    ----------
    graph : ReluGraph
        The network (outputs those the objectives weigh).
    qp : CondensedQP
        The QP.
    region : ThetaRegion
        The states verified.
    objectives : Objectives
        Group 0: ``±(y_j - U_j)`` (``C_out`` the network's part; the law's part is ``-C_out``); group 1:
        the input-bound violations (the network only).
    time_left : callable
        Seconds left.
    best : ndarray, shape (2,), optional
        Values known to be attained per group (sampled): each MILP searches only at or above its group's
        best value (a bound whatever the value, see :func:`kkt_milp`); raised by the MILPs' incumbents.
    order : sequence of int, optional
        The order of the objectives (largest sampled value first: its incumbent prunes the others).
    max_cells : int
        Largest number of cells examined.
    on_result : callable, optional
        Called with each TaskOutcome.

    Returns
    -------
    KKTRun
    """
    best = np.full(2, -np.inf) if best is None else np.array(best, float)
    order = range(objectives.n) if order is None else list(order)
    heap = [(-1.0, 0, region.lo.copy(), region.hi.copy())]
    counter = 0
    outcomes: list = []
    uncovered = empty = 0
    messages: list = []
    unbounded: list = []
    seen = 0
    while heap:
        _, _, lo, hi = heapq.heappop(heap)
        seen += 1
        start = time.perf_counter()
        centre, half = (lo + hi) / 2, np.maximum((hi - lo) / 2, 1e-300)
        Au, bu = _unit_rows(region.C, region.d, centre, half)
        if time_left() <= 0:
            uncovered += 1 + len(heap)
            messages.append("time limit before every cell was bounded")
            break
        kb = kkt_bounds(qp, centre, half, Au, bu)
        if kb.empty:
            empty += 1
            continue
        if not kb.ok:
            small = np.all(half <= KKT_MIN_CELL * region.half)
            if small or seen + len(heap) + 2 > max_cells:
                uncovered += 1
                messages.append(kb.message)
                continue
            k = int(np.argmax(half / region.half))
            for a, b in ((lo[k], centre[k]), (centre[k], hi[k])):
                clo, chi = lo.copy(), hi.copy()
                clo[k], chi[k] = a, b
                counter += 1
                heapq.heappush(heap, (-float(np.prod(half / region.half)), counter, clo, chi))
            continue
        g_cell = graph.with_input_map(centre, half)
        B = propagate(g_cell)
        flat = flatten(g_cell, B)
        bound = np.full(2, -np.inf)
        value = np.full(2, -np.inf)
        witness = np.full((2, graph.n_in), np.nan)
        milps, msgs = 0, [kb.message]
        q_bound = np.full(objectives.n, np.inf)
        q_status = [str(Proof.INCOMPLETE)] * objectives.n
        pending = list(order)
        for _ in range(MILP_PASSES):  # a MILP stopped at its share of the time is re-solved with the time left
            retry = []
            for done, q in enumerate(pending):
                g = int(objectives.group[q])
                remaining = time_left()
                if remaining <= 0:
                    retry.extend(pending[done:])
                    break
                c_U = -objectives.C_out[q] if g == 0 else np.zeros_like(objectives.C_out[q])
                share = remaining / max(1, len(pending) - done) / max(1, len(heap) + 1)
                out = kkt_milp(flat, qp, kb if g == 0 else None, centre, half, objectives.C_out[q], c_U,
                               float(objectives.c0[q]), Au, bu, share, cutoff=best[g])
                milps += 1
                if out.xi is not None and out.value > value[g]:
                    value[g] = out.value
                    witness[g] = centre + half * out.xi
                    best[g] = max(best[g], out.value)
                if out.status == str(Proof.FAILED):  # a retry that failed keeps the bound of the pass before
                    q_status[q] = str(Proof.INCOMPLETE) if np.isfinite(q_bound[q]) else out.status
                    msgs.append(f"a MILP failed: {out.message}")
                    continue
                q_bound[q] = min(q_bound[q], out.bound)
                q_status[q] = out.status
                if out.status == str(Proof.INCOMPLETE):
                    retry.append(q)
            pending = retry
            if not pending or time_left() <= 0:
                break
        if pending:
            msgs.append(f"{len(pending)} MILP(s) stopped at the time limit, their dual bounds kept")
        for g in (0, 1):
            cols = np.flatnonzero(objectives.group == g)
            if cols.size:
                bound[g] = float(np.max(q_bound[cols]))
        status = (str(Proof.FAILED) if str(Proof.FAILED) in q_status else
                  str(Proof.INCOMPLETE) if str(Proof.INCOMPLETE) in q_status else str(Proof.PROVEN))
        o = TaskOutcome(len(outcomes), bound, value, witness, status, 1, milps, kb.lps, B.n_unstable(g_cell)
                        + int(kb.active.sum()), time.perf_counter() - start, "; ".join(msgs))
        if status != str(Proof.FAILED) and np.any(bound == np.inf):  # a MILP left without a bound by the time
            uncovered += 1
            messages.append("a cell's MILP stopped at the time limit before HiGHS had a bound")
            unbounded.append(o)
            continue
        outcomes.append(o)
        if on_result is not None:
            on_result(o)
    return KKTRun(outcomes, uncovered, empty, list(dict.fromkeys(messages)), unbounded)

