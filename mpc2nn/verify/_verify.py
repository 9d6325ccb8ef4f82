"""The entry point :func:`verify`: the worst-case error of a network against the MPC law over a region."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

import numpy as np

from .._checks import as_count
from ..exceptions import ProblemDefinitionError, ShapeError
from ..regions import Partition, critical_regions
from ..status import Proof, Status
from ._bab import DEFAULT_MAX_BINARIES, Objectives, Task, TaskOutcome
from ._bounds import BOUND_SLACK
from ._graph import ReluGraph
from ._kkt import DEFAULT_KKT_CELLS, run_kkt
from ._kkt_bounds import BIGM_PAD
from ._milp import FEASIBILITY_TOL, MIP_ABS_GAP, MIP_REL_GAP
from ._reference import Reference, as_graph, as_reference
from ._region import ThetaRegion, make_region
from ._result import CERTIFICATE_TEXT, KKT_CERTIFICATE_TEXT, Bound, RegionReport, VerificationResult
from ._scheduler import run_tasks

__all__ = ["verify", "DEFAULT_TOL", "DEFAULT_RTOL", "DEFAULT_TIME_LIMIT", "DEFAULT_SAMPLES", "METHODS",
           "AUTO_PARTITION_SHARE", "AUTO_MAX_REGIONS", "RECHECK_CANDIDATES"]

#: Absolute gap (units of u) at which a bound counts as closed: the exact solver's certificate is 1e-9
#: relative, so a network that reproduces the law exactly is proven to within 1e-9.
DEFAULT_TOL = 1e-9
#: Relative gap at which a bound counts as closed: ``upper <= 1.001·lower``, well inside the 5% that a
#: user comparing controllers needs, and cheap to reach (each halving costs cells).
DEFAULT_RTOL = 1e-3
#: Default budget in seconds (the partition, the sampling and every branch and bound together).
DEFAULT_TIME_LIMIT = 600.0
#: States sampled in the region first: their errors are the first lower bounds (which prune whole regions)
#: and order the regions, largest sampled error first.
DEFAULT_SAMPLES = 2000
#: Methods: ``"partition"`` (one branch and bound per critical region of a partition, given or enumerated),
#: ``"kkt"`` (no partition: the law by the KKT conditions of its QP, one binary per constraint row that may be
#: active, big-M values proven by Slater's argument and LPs), and ``"auto"``: the partition when one is given
#: or its enumeration completes within :data:`AUTO_PARTITION_SHARE` of the time limit, else ``"kkt"`` over
#: the whole region with the time left.
METHODS = ("auto", "partition", "kkt")
#: With no partition given, the share of the time limit the enumeration of critical regions may take
#: (the rest is for the branch and bound).
AUTO_PARTITION_SHARE = 0.5
#: With no partition given, the largest partition enumerated (more regions: the bounds hold on those found
#: only, status incomplete).
AUTO_MAX_REGIONS = 5000
#: Witness candidates re-checked by the exact solver at the end (the best of each region, largest first).
RECHECK_CANDIDATES = 64


def verify(network, reference, region=None, *, output: str = "u0", tol: float = DEFAULT_TOL,
           rtol: float = DEFAULT_RTOL, time_limit: float | None = DEFAULT_TIME_LIMIT, progress: bool | Callable = False,
           scheduler=None, workers: int = 1, method: str = "auto", max_binaries: int = DEFAULT_MAX_BINARIES,
           samples: int = DEFAULT_SAMPLES, seed: int = 0, n_inputs: int | None = None,
           max_cells: int = DEFAULT_KKT_CELLS) -> VerificationResult:
    """Prove the worst-case error of a ReLU network against the MPC law over a region of states.

    Bounds ``max ‖u_net(θ) - u_mpc(θ)‖∞`` over the feasible part of ``region`` from above (a proof: MILP
    and LP optimality of HiGHS, see :attr:`VerificationResult.certificate`) and from below (the error at
    a witness state, re-checked by the exact solver), and the same for the amount by which the network
    leaves the input bounds. The law is affine on each critical region of a partition (given, or enumerated
    here by :func:`mpc2nn.critical_regions`), so each region is a branch and bound over the network's ReLUs
    (stable ones need no binary). Without a partition (``method="kkt"``, or ``"auto"`` when the
    enumeration does not complete within its share of the time), the law enters one MILP per objective by
    the KKT conditions of its QP: one binary per constraint row that may be active, big-M values proven by
    Slater's argument and LPs per cell of the region (cells where they cannot be proven are bisected, and
    left uncovered, ``covered=False``, status incomplete, when small). See the theory page.

    Parameters
    ----------
    network : torch.nn.Module, str or path-like
        An mpc2nn explicit network (:func:`mpc2nn.unravel`, exact networks), a ``torch.nn.Sequential`` of
        Linear/ReLU layers (or any module of affine operations and ReLUs), or an ONNX file of the
        operations :func:`mpc2nn.deploy.to_onnx` writes. Its input is ``θ`` (B, n_θ); its output the first
        input (B, n_u) or the sequence (B, N·n_u).
    reference : ImplicitNetwork, MPCProblem, CondensedQP or Partition
        The MPC law; a :class:`~mpc2nn.Partition` from :func:`mpc2nn.critical_regions` is used as it is.
    region : (lo, hi) or Polytope, optional
        The states ``θ`` verified; default the QP's sample box. Intersected with the feasible set.
    output : {"u0", "U"}
        Compare the first input (default) or the whole sequence (the network must output N·n_u values).
    tol : float
        Absolute gap tolerance (units of u).
    rtol : float
        Relative gap tolerance: the status is proven when ``upper - lower <= max(tol, rtol·upper)``.
    time_limit : float or None
        Budget in seconds; when it runs out the proven bounds are returned with status incomplete.
    progress : bool or callable
        ``True`` prints a line per region on stderr; a callable gets a dict (``done``, ``total``,
        ``error_lower``, ``elapsed``) per region.
    scheduler : str or distributed.Client, optional
        A Dask scheduler address (``"tcp://host:8786"``) or client: the regions run on that cluster
        (``method="kkt"`` runs in this process, and its reason says so).
    workers : int
        Workers of a local Dask cluster started for the call (``1`` and no scheduler: in this process).
    method : {"auto", "partition", "kkt"}
        See :data:`METHODS`. ``"kkt"`` ignores a given partition (it uses its QP only).
    max_binaries : int
        Cells with at most this many undecided ReLUs are solved as a MILP; larger ones are bisected.
    samples : int
        States sampled first (lower bounds that prune and order the regions).
    seed : int
        Seed of the sampling.
    n_inputs : int, optional
        The network's input size where the module does not tell it.
    max_cells : int
        ``method="kkt"``: the most cells the region is split into where the big-M bounds cannot be proven
        on a cell (:data:`~mpc2nn.verify.DEFAULT_KKT_CELLS`).

    Returns
    -------
    VerificationResult
        ``upper_bound``, ``lower_bound``, ``witness``, ``gap``, ``status`` for the error, ``violation`` for
        the input bounds, per-region reports, counts and what the proof rests on.

    Raises
    ------
    UnsupportedNetworkError
        The network holds an operation that is not affine or a ReLU.
    NonFiniteError
        A weight or the region holds NaN or an infinity.
    ProblemDefinitionError
        An argument out of range (``method``, ``output``, ``tol``, ``time_limit``, ``max_cells``, ...), or
        a region reaching outside a given partition's domain.
    ShapeError
        The network's input or output size does not match the QP.

    Examples
    --------
    >>> import mpc2nn, torch
    >>> _ = torch.manual_seed(0)
    >>> part = mpc2nn.critical_regions(mpc2nn.compile(mpc2nn.systems.double_integrator()))
    >>> net = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1)).double()
    >>> res = mpc2nn.verify(net, part, samples=200)
    >>> res.status, bool(res.lower_bound <= res.upper_bound), res.method
    ('proven', True, 'partition')
    >>> kkt = mpc2nn.verify(net, part, ([-3.0, -1.0], [3.0, 1.0]), method="kkt", samples=200)
    >>> kkt.method, bool(kkt.upper_bound >= kkt.lower_bound), kkt.covered
    ('kkt', True, True)
    """
    start = time.perf_counter()
    if output not in ("u0", "U"):
        raise ProblemDefinitionError(f"output: expected 'u0' (first input) or 'U' (sequence), got {output!r}")
    if method not in METHODS:
        raise ProblemDefinitionError(f"method: expected one of {METHODS}, got {method!r}")
    for name, v in (("tol", tol), ("rtol", rtol)):
        if not (isinstance(v, (int, float)) and np.isfinite(v) and v >= 0):
            raise ProblemDefinitionError(f"{name}: expected a finite number >= 0, got {v!r}")
    if time_limit is not None and not (isinstance(time_limit, (int, float)) and time_limit > 0):
        raise ProblemDefinitionError(f"time_limit: expected seconds > 0 or None, got {time_limit!r}")
    if not (isinstance(progress, bool) or callable(progress)):
        raise ProblemDefinitionError(f"progress: expected True, False or a callable, got {progress!r}")
    workers = as_count("workers", workers, 1)
    max_binaries = as_count("max_binaries", max_binaries, 0)
    max_cells = as_count("max_cells", max_cells, 1)
    samples = as_count("samples", samples, 0)
    deadline = np.inf if time_limit is None else start + float(time_limit)

    def time_left() -> float:
        return deadline - time.perf_counter()

    graph = as_graph(network, n_inputs)
    ref = as_reference(reference)
    qp = ref.qp
    if graph.n_in != qp.n_theta:
        raise ShapeError(f"network: takes {graph.n_in} inputs, expected n_θ = {qp.n_theta} (θ = "
                         f"({qp.layout.describe()}))")
    graph, n_cmp = _select_outputs(graph, qp, output)
    theta_region = make_region(qp, region)
    partition = ref.partition
    reasons: list[str] = []
    u_lo, u_hi = _input_bounds(ref, output, n_cmp)
    rng = np.random.default_rng(seed)
    if method != "kkt" and partition is None:
        budget = None if time_limit is None else AUTO_PARTITION_SHARE * float(time_limit)
        partition = critical_regions(ref.net, theta_region.given, time_limit=budget, max_regions=AUTO_MAX_REGIONS,
                                     seed=seed)
        if not partition.complete and method == "auto":
            reasons.append(f"the critical regions enumerated within the budget are not complete "
                           f"({partition.n_regions} regions): the KKT encoding was used instead")
            method = "kkt"
        elif not partition.complete:
            reasons.append(f"the critical regions enumerated within the budget are not complete "
                           f"({partition.n_regions} regions); pass method='kkt' (or 'auto') to verify without a "
                           "partition, or enumerate a complete one with mpc2nn.critical_regions(..., time_limit=...)")
    if method == "kkt" or partition is None:  # (the partition is enumerated above for the other methods)
        if scheduler is not None or workers > 1:
            reasons.append("the KKT encoding ran in this process (its cells are not sent to Dask)")
        return _verify_kkt(graph, ref, theta_region, n_cmp, output, u_lo, u_hi, tol, rtol, samples, rng, time_left,
                           progress, start, reasons, max_cells)
    _check_domain(partition, theta_region)
    tasks, sampled = _partition_tasks(graph, partition, theta_region, n_cmp, output, u_lo, u_hi, tol, rtol,
                                      max_binaries, samples, rng)
    used = "partition"
    covered = bool(partition.complete)
    if not covered:
        reasons.append(f"the partition is not proven complete ({partition.reason}); the bounds hold on its "
                       f"{partition.n_regions} regions only")
    law = ("the affine law of each critical region (its KKT residual at most the exact solver's certificate, "
           "1e-9 relative)")
    cover = "critical region of the partition inside the region" + ("" if covered else " (coverage NOT proven)")
    best = np.array([sampled["error"].max(initial=-np.inf), 0.0])
    done = [0]

    def on_result(out: TaskOutcome):
        done[0] += 1
        if progress is True:
            print(f"verify: {done[0]}/{len(tasks)} regions, error >= {best[0]:.6g}, {out.cells} cells, "
                  f"{time.perf_counter() - start:.1f} s", file=sys.stderr)
        elif callable(progress):
            progress(dict(done=done[0], total=len(tasks), error_lower=float(best[0]),
                          elapsed=time.perf_counter() - start))

    outcomes, n_workers = run_tasks(graph, tasks, best, scheduler=scheduler, workers=workers, time_left=time_left,
                                    on_result=on_result)
    error, violation = _recheck(graph, ref, theta_region, outcomes, sampled, n_cmp, output, u_lo, u_hi)
    statuses = [o.status for o in outcomes]
    if any(s == str(Proof.FAILED) for s in statuses):
        reasons.append("a solver failed on a region: no bound there")
    elif any(s == str(Proof.INCOMPLETE) for s in statuses):
        msgs = sorted({o.message for o in outcomes if o.message})
        reasons.append("some regions were not closed: " + "; ".join(msgs[:3]))
    err_b = _bound(error, outcomes, 0, tol, rtol, covered)
    vio_b = _bound(violation, outcomes, 1, tol, rtol, covered) if u_lo is not None else Bound(
        upper=np.nan, lower=np.nan, witness=np.full(qp.n_theta, np.nan), status=str(Proof.PROVEN))
    status = _worse(err_b.status, vio_b.status)
    if status == str(Proof.PROVEN):
        reasons.insert(0, f"both bounds proven and closed to max(tol = {tol:g}, rtol = {rtol:g} × upper)")
    elif not reasons:
        reasons.append(f"the gap is not closed to max(tol = {tol:g}, rtol = {rtol:g} × upper) within the budget")
    reports = _reports(outcomes, u_lo)
    certificate = CERTIFICATE_TEXT.format(rel=MIP_REL_GAP, abs=MIP_ABS_GAP, feas=FEASIBILITY_TOL, slack=BOUND_SLACK,
                                          cover=cover, law=law)
    return VerificationResult(
        error=err_b, violation=vio_b, status=status, method=used, output=output, regions=reports, covered=covered,
        certificate=certificate, reason="; ".join(reasons), tol=float(tol), rtol=float(rtol),
        elapsed=time.perf_counter() - start, n_cells=sum(o.cells for o in outcomes),
        n_milps=sum(o.milps for o in outcomes), n_lps=sum(o.lps for o in outcomes), workers=n_workers,
        network=f"{graph.source} ({graph.n_relu} ReLUs)")


def _reports(outcomes, u_lo) -> tuple:
    return tuple(RegionReport(
        index=o.index, error_upper=float(o.bound[0]), error_lower=float(o.value[0]),
        violation_upper=float(o.bound[1]) if u_lo is not None else np.nan,
        violation_lower=float(o.value[1]) if u_lo is not None else np.nan, status=o.status, cells=o.cells,
        milps=o.milps, lps=o.lps, max_binaries=o.max_binaries, elapsed=o.elapsed, message=o.message)
        for o in outcomes)


def _verify_kkt(graph, ref: Reference, region: ThetaRegion, n_cmp, output, u_lo, u_hi, tol, rtol, samples, rng,
                time_left, progress, start, reasons: list, max_cells: int) -> VerificationResult:
    """``method="kkt"``: the law by the KKT conditions of its QP (:mod:`._kkt`), no partition."""
    qp = ref.qp
    X = region.sample(samples, rng) if samples else np.zeros((0, region.n))
    if X.shape[0]:
        sol = ref.net.solve(X)
        ok = sol.status == Status.SOLVED
        X, law = X[ok], sol.U[ok][:, :n_cmp]
        y = graph.evaluate(X) if X.shape[0] else np.zeros((0, n_cmp))
        err = np.abs(y - law).max(axis=1, initial=0.0) if X.shape[0] else np.zeros(0)
        vio = input_violation(y, u_lo, u_hi)
    else:
        err, vio = np.zeros(0), np.zeros(0)
    sampled = dict(X=X, error=err, violation=vio)
    objectives = error_objectives(n_cmp, np.zeros((n_cmp, region.n)), np.zeros(n_cmp), u_lo, u_hi)
    done = [0]

    def on_result(o: TaskOutcome):
        done[0] += 1
        if progress is True:
            print(f"verify (kkt): cell {done[0]}, error <= {o.bound[0]:.6g} there, {o.milps} MILPs, "
                  f"{time.perf_counter() - start:.1f} s", file=sys.stderr)
        elif callable(progress):
            progress(dict(done=done[0], total=None, error_lower=float(max(err.max(initial=-np.inf), o.value[0])),
                          elapsed=time.perf_counter() - start))

    if X.shape[0]:  # each objective's sampled value: the largest first, its incumbent prunes the others
        vals = objectives.values(y, X) + np.where(objectives.group == 0, 1.0, 0.0) * -(law @ objectives.C_out.T)
        order = np.argsort(-vals.max(axis=0))
    else:
        order = np.arange(objectives.n)
    best = np.array([err.max(initial=-np.inf), vio.max(initial=-np.inf)])
    run = run_kkt(graph, qp, region, objectives, time_left, best=best, order=order, max_cells=max_cells,
                  on_result=on_result)
    outcomes = run.outcomes
    covered = run.uncovered == 0
    if not covered:
        reasons.append(f"{run.uncovered} cell(s) of the region are not covered, the bounds hold on the "
                       f"{len(outcomes)} proven cell(s) only: " + "; ".join(run.messages[:2]))
    error, violation = _recheck(graph, ref, region, outcomes + run.unbounded, sampled, n_cmp, output, u_lo, u_hi)
    statuses = [o.status for o in outcomes]
    if any(s == str(Proof.FAILED) for s in statuses):
        reasons.append("a MILP failed on a cell: no bound")
    elif any(s == str(Proof.INCOMPLETE) for s in statuses):
        msgs = sorted({m for o in outcomes for m in o.message.split("; ") if "stopped" in m or "failed" in m})
        reasons.append("some MILPs were not closed: " + "; ".join(msgs[:3]))
    err_b = _bound(error, outcomes, 0, tol, rtol, covered)
    vio_b = _bound(violation, outcomes, 1, tol, rtol, covered) if u_lo is not None else Bound(
        upper=np.nan, lower=np.nan, witness=np.full(qp.n_theta, np.nan), status=str(Proof.PROVEN))
    if not outcomes and run.empty and covered:  # no feasible state in the region
        err_b = Bound(upper=-np.inf, lower=-np.inf, witness=np.full(qp.n_theta, np.nan), status=str(Proof.PROVEN))
    if not outcomes and not covered:  # no cell proven: no upper bound is claimed, only the sampled lower one
        err_b = Bound(upper=np.inf, lower=err_b.lower, witness=err_b.witness, status=str(Proof.INCOMPLETE))
        if u_lo is not None:
            vio_b = Bound(upper=np.inf, lower=vio_b.lower, witness=vio_b.witness, status=str(Proof.INCOMPLETE))
    status = _worse(err_b.status, vio_b.status)
    if status == str(Proof.PROVEN):
        reasons.insert(0, f"both bounds proven and closed to max(tol = {tol:g}, rtol = {rtol:g} × upper)")
    elif not reasons:
        reasons.append(f"the gap is not closed to max(tol = {tol:g}, rtol = {rtol:g} × upper) within the budget")
    cover = ("every cell of the region where the QP is feasible" if covered else
             f"the {len(outcomes)} cells whose big-M bounds were proven (coverage of the region NOT proven)")
    certificate = KKT_CERTIFICATE_TEXT.format(rel=MIP_REL_GAP, abs=MIP_ABS_GAP, feas=FEASIBILITY_TOL,
                                              slack=BOUND_SLACK, pad=BIGM_PAD, cover=cover)
    return VerificationResult(
        error=err_b, violation=vio_b, status=status, method="kkt", output=output, regions=_reports(outcomes, u_lo),
        covered=covered, certificate=certificate, reason="; ".join(reasons), tol=float(tol), rtol=float(rtol),
        elapsed=time.perf_counter() - start, n_cells=sum(o.cells for o in outcomes) + run.empty + run.uncovered,
        n_milps=sum(o.milps for o in outcomes), n_lps=sum(o.lps for o in outcomes), workers=1,
        network=f"{graph.source} ({graph.n_relu} ReLUs)")


def _select_outputs(graph: ReluGraph, qp, output: str) -> tuple[ReluGraph, int]:
    n_u, n_U = qp.n_u, qp.n_U
    if output == "U":
        if graph.n_out != n_U:
            raise ShapeError(f"network: output='U' compares the sequence, so the network must output N·n_u = {n_U} "
                             f"values; it outputs {graph.n_out}")
        return graph, n_U
    if graph.n_out == n_u:
        return graph, n_u
    if graph.n_out == n_U:
        return graph.select_outputs(np.arange(n_u)), n_u
    raise ShapeError(f"network: outputs {graph.n_out} values; expected the first input (n_u = {n_u}) or the "
                     f"sequence (N·n_u = {n_U})")


def _input_bounds(ref: Reference, output: str, n_cmp: int):
    if ref.u_min is None or ref.u_max is None:
        return None, None
    reps = n_cmp // ref.qp.n_u
    return np.tile(ref.u_min, reps), np.tile(ref.u_max, reps)


def _check_domain(partition: Partition, region: ThetaRegion) -> None:
    """The region lies in the partition's domain (one LP per domain row), else the partition cannot cover it."""
    from ._milp import maximise_lp

    D, d = partition.domain.C, partition.domain.d
    centre, half = (region.lo + region.hi) / 2, region.half
    Au = region.C * half[None, :]
    bu = region.d - region.C @ centre
    vals, _ = maximise_lp(D * half[None, :], D @ centre, Au, bu)
    slack = 1e-9 * max(partition.scale, region.scale)
    if np.any(vals > d + slack):
        i = int(np.argmax(vals - d))
        raise ProblemDefinitionError(f"region: reaches outside the partition's domain (row {i}, by "
                                     f"{vals[i] - d[i]:.3g}); "
                                     "enumerate the critical regions over a domain that contains the region, or "
                                     "pass the problem and let verify enumerate them")


def error_objectives(n_cmp: int, gain: np.ndarray, offset: np.ndarray, u_lo, u_hi) -> Objectives:
    """Objectives of one polytope: ``±(y_j - (gain θ + offset)_j)`` (group 0) and the input-bound
    violations ``y_j - u_max_j``, ``u_min_j - y_j`` (group 1, finite bounds only).
    """
    n = gain.shape[1]
    C_out, C_th, c0, group, label = [], [], [], [], []
    for j in range(n_cmp):
        for s in (1.0, -1.0):
            e = np.zeros(n_cmp)
            e[j] = s
            C_out.append(e)
            C_th.append(-s * gain[j])
            c0.append(-s * offset[j])
            group.append(0)
            label.append(("error", j, s))
    if u_lo is not None:
        for j in range(n_cmp):
            for s, bound in ((1.0, u_hi[j]), (-1.0, u_lo[j])):
                if not np.isfinite(bound):
                    continue
                e = np.zeros(n_cmp)
                e[j] = s
                C_out.append(e)
                C_th.append(np.zeros(n))
                c0.append(-s * bound)
                group.append(1)
                label.append(("violation", j, s))
    return Objectives(np.array(C_out), np.array(C_th), np.array(c0, float), np.array(group), tuple(label))


def _partition_tasks(graph, partition: Partition, region: ThetaRegion, n_cmp: int, output: str, u_lo, u_hi, tol,
                     rtol, max_binaries, samples, rng):
    """One task per critical region, ordered by the largest error sampled in it."""
    X = region.sample(samples, rng) if samples else np.zeros((0, region.n))
    where = partition.locate(X) if X.shape[0] else np.zeros(0, np.int64)
    X, where = X[where >= 0], where[where >= 0]
    law = partition.evaluate(X, "u0" if output == "u0" else "U") if X.shape[0] else np.zeros((0, n_cmp))
    y = graph.evaluate(X) if X.shape[0] else np.zeros((0, n_cmp))
    err = np.abs(y - law).max(axis=1, initial=0.0) if X.shape[0] else np.zeros(0)
    vio = input_violation(y, u_lo, u_hi)
    per_region = np.full(partition.n_regions, -np.inf)
    np.maximum.at(per_region, where, err)
    tasks = []
    for r, R in enumerate(partition.regions):
        gain, offset = (R.u0_gain, R.u0_offset) if output == "u0" else (R.U_gain, R.U_offset)
        lo, hi = region.lo.copy(), region.hi.copy()
        if R.vertices.shape[0]:
            lo, hi = np.maximum(lo, R.vertices.min(axis=0)), np.minimum(hi, R.vertices.max(axis=0))
        if np.any(lo > hi + 1e-12 * region.scale):
            continue
        hi = np.maximum(hi, lo)
        tasks.append(Task(r, np.vstack([R.A, region.C]), np.concatenate([R.b, region.d]), lo, hi,
                          error_objectives(n_cmp, gain, offset, u_lo, u_hi), np.array([-np.inf, 0.0]),
                          region.half, float(tol), float(rtol), np.inf, max_binaries, dict(scale=region.scale)))
    tasks.sort(key=lambda t: -per_region[t.index])
    return tasks, dict(X=X, error=err, violation=vio)


def input_violation(y: np.ndarray, u_lo, u_hi) -> np.ndarray:
    if u_lo is None or y.shape[0] == 0:
        return np.zeros(y.shape[0])
    return np.maximum(np.maximum(y - u_hi, u_lo - y).max(axis=1), 0.0)


def _recheck(graph, ref: Reference, region: ThetaRegion, outcomes, sampled, n_cmp, output, u_lo, u_hi):
    """Lower bounds re-checked by the exact solver: ``(error, violation)`` as ``(value, witness)`` pairs."""
    cands = []
    for o in outcomes:
        for g in (0, 1):
            if np.isfinite(o.value[g]) and np.all(np.isfinite(o.witness[g])):
                cands.append((g, float(o.value[g]), o.witness[g]))
    X = sampled["X"]
    for g, key in ((0, "error"), (1, "violation")):
        if X.shape[0]:
            k = int(np.argmax(sampled[key]))
            cands.append((g, float(sampled[key][k]), X[k]))
    out = []
    for g in (0, 1):
        mine = sorted((c for c in cands if c[0] == g), key=lambda c: -c[1])[:RECHECK_CANDIDATES]
        if not mine:
            out.append((-np.inf if g == 0 else 0.0, np.full(region.n, np.nan)))
            continue
        P = np.array([region.pull_inside(c[2]) for c in mine])
        sol = ref.net.solve(P)
        ok = sol.status == Status.SOLVED
        y = graph.evaluate(P)
        U = sol.U[:, :n_cmp]
        vals = np.abs(y - U).max(axis=1) if g == 0 else input_violation(y, u_lo, u_hi)
        vals = np.where(ok, vals, -np.inf)
        k = int(np.argmax(vals))
        if not np.isfinite(vals[k]):
            out.append((-np.inf if g == 0 else 0.0, np.full(region.n, np.nan)))
        else:
            out.append((float(vals[k]), P[k]))
    return out[0], out[1]


def _bound(found, outcomes, g: int, tol: float, rtol: float, covered: bool) -> Bound:
    lower, witness = found
    ups = [float(o.bound[g]) for o in outcomes]
    upper = max(ups, default=-np.inf)
    if g == 1:
        upper = max(upper, 0.0)
        lower = max(lower, 0.0)
    failed = any(o.status == str(Proof.FAILED) for o in outcomes) or upper == np.inf
    if failed:
        return Bound(upper=np.inf, lower=lower, witness=witness, status=str(Proof.FAILED))
    if np.isfinite(lower):
        upper = max(upper, lower)  # the maximum is at least the error found (HiGHS's tolerances can put it below)
    incomplete = any(o.status == str(Proof.INCOMPLETE) for o in outcomes) or not covered
    closed = np.isfinite(lower) and upper - lower <= max(tol, rtol * abs(upper))
    if not np.isfinite(upper) and upper < 0:  # the region holds no feasible state
        upper = -np.inf
        closed = not incomplete
    status = Proof.PROVEN if closed and not incomplete else Proof.INCOMPLETE
    return Bound(upper=upper, lower=lower, witness=witness, status=str(status))


def _worse(a: str, b: str) -> str:
    order = [str(Proof.PROVEN), str(Proof.INCOMPLETE), str(Proof.FAILED)]
    return order[max(order.index(a), order.index(b))]
