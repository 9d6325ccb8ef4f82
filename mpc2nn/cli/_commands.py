"""The subcommands of the ``mpc2nn`` command."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .. import systems
from ..evaluation import MPCController, cross_check, plotting, simulate
from ..exceptions import MissingDependencyError, ToleranceNotMetError
from ..implicit import compile as compile_network
from ..io import load, problem_hash, save
from ..problem import MPCProblem
from ..reference import REFERENCE_SOLVERS, OSQPSession, solve_daqp
from ..regions import critical_regions
from ..status import Verdict
from ._output import CommandLineError, Result, feature, fmt, output_path
from ._problems import describe, load_problem, network_of, only_states, plant_of, problem_of
from ._progress import Progress, chunks, report_data, sample, validate_in_chunks

__all__ = ["cmd_compile", "cmd_validate", "cmd_simulate", "cmd_bench", "cmd_unravel", "cmd_export", "cmd_demo",
           "VALIDATE_TOL", "cmd_converse", "cmd_verify"]

#: Largest accepted ``‖U - U_ref‖∞`` of ``mpc2nn validate`` (default of ``--tol``) and of ``mpc2nn demo``
#: (also on the closed-loop state gap, relative to ``max(1, max|x0|)``): 100 times the 1e-8 that the
#: exact network's agreement with the polished OSQP reference is checked against in the documentation's
#: example, and small next to the public problems' input bounds (0.5 to 10), so it catches wrong results,
#: not roundoff.
VALIDATE_TOL = 1e-6


def cmd_compile(args: argparse.Namespace) -> Result:
    if args.output is not None:
        output_path(args.output)  # before the long work
    obj = load_problem(args.problem)
    problem = problem_of(obj)
    net = network_of(obj, args.alpha)
    wp = net.well_posedness()
    n_params = sum(getattr(net, k).size for k in ("W", "Y", "b", "W_f", "Y_f"))
    data = dict(problem=problem.name, kind=type(problem).__name__, n_x=net.n_x, n_u=net.n_u,
                horizon=problem.horizon, m=net.m, n_U=net.W_f.shape[0], parameters=n_params,
                alpha_min=float(net.alpha.min(initial=np.inf)), alpha_max=float(net.alpha.max(initial=-np.inf)),
                problem_hash=problem_hash(net), well_posedness=dataclasses.asdict(wp), output=None)
    verdict = ("compiled: the exact solve applies; U is unique wherever the MPC is feasible"
               + (" (and so is the fixed point y: I - W is a P-matrix)" if wp.p_matrix else ""))
    data["verdict"] = verdict
    bounds = (f"a-priori error bounds: the plain iteration contracts at rate {wp.contraction_rate:.4g}"
              if wp.contraction_rate is not None else
              "a-posteriori error bounds (ExplicitNetwork.error_bound): the plain iteration does not contract "
              + (f"globally (G has {wp.m} rows but rank {wp.rank_G})" if not wp.p_matrix
                 else "with these steps alpha"))
    text = [verdict, "",
            describe(problem),
            f"implicit network: width m = {net.m}, outputs N·n_u = {data['n_U']}, {n_params} parameters, "
            f"alpha in [{fmt(data['alpha_min'], '.4g')}, {fmt(data['alpha_max'], '.4g')}]",
            f"explicit networks unravelled from it get {bounds}",
            "", "details:", str(wp)]
    if args.output is not None:
        data["output"] = save(net, output_path(args.output))
        text += ["", f"saved to {args.output}"]
    return Result(0, data, text)


def cmd_validate(args: argparse.Namespace) -> Result:
    obj = load_problem(args.problem)
    problem = problem_of(obj)
    net = network_of(obj)
    show = not (args.quiet or args.json)
    X = sample(problem, args.samples, args.seed, show)
    t0 = time.perf_counter()
    qp = systems.as_qp(problem)
    report = validate_in_chunks(net, qp, X, args.reference, show)
    data = dict(problem=problem.name, samples=args.samples, seed=args.seed, **report_data(report, args.tol))
    check = cross_check(report, qp, tol=args.tol)
    data["agrees_with_reference"] = data["passed"]
    data["passed"] = data["passed"] or check.controller_right
    data["cross_check"] = dict(solvers=list(check.cross_checks), unavailable=list(check.unavailable),
                               counts={str(v): check.count(v) for v in Verdict}, states=check.details())
    data["seconds"] = time.perf_counter() - t0
    ref, n = REFERENCE_SOLVERS[args.reference].label, data["states"]
    if data["agrees_with_reference"]:
        verdict = (f"PASS: the exact network agrees with {ref} on all {n} states (max error "
                   f"{data['max_error']:.2e}, tolerance {args.tol:g})")
    elif check.controller_right:
        verdict = (f"PASS: the exact network is right on all {n} states; {ref} is wrong on "
                   f"{check.indices.size} of them ({_states(check.indices)}), shown by the certified exact "
                   f"solution and {' and '.join(REFERENCE_SOLVERS[c].label for c in check.cross_checks)}")
    else:
        wrong, open_ = check.where(Verdict.CONTROLLER_WRONG), check.where(Verdict.UNDECIDED)
        verdict = (f"FAIL: the exact network and {ref} disagree on {check.indices.size} of {n} states: "
                   + "; ".join(part for part in (
                       f"the network is wrong on {wrong.size} ({_states(wrong)})" if wrong.size else "",
                       f"undecided on {open_.size} ({_states(open_)})" if open_.size else "",
                       f"{ref} is wrong on {check.count(Verdict.REFERENCE_WRONG)}"
                       if check.count(Verdict.REFERENCE_WRONG) else "") if part))
    text = [verdict, "", describe(problem) + f", m = {net.m} constraint rows", "", report.summary()]
    if check.indices.size:
        text += ["", check.summary()]
    return Result(0 if data["passed"] else 1, data, text)


def _states(indices: np.ndarray, most: int = 5) -> str:
    """``"states 3, 17"`` (the first ``most``, then how many more)."""
    shown = ", ".join(str(int(i)) for i in indices[:most])
    more = f" and {indices.size - most} more" if indices.size > most else ""
    return ("state " if indices.size == 1 else "states ") + shown + more


_LABELS = {"implicit": "implicit network", "mpc": "MPC (OSQP)"}


def _closed_loop(obj, problem, name: str, args: argparse.Namespace):
    """``(trajectory, summary dict)`` of one controller's closed loop."""
    controller = network_of(obj) if name == "implicit" else MPCController(problem)
    traj = simulate(plant_of(problem), controller, args.x0, args.steps,
                    problem=problem if isinstance(problem, MPCProblem) else None)
    ran = traj.steps_run
    return traj, dict(
        cost=traj.cost,
        max_state_violation=None if traj.state_violation is None else np.nanmax(traj.state_violation[:ran + 1]),
        max_input_violation=None if traj.input_violation is None or ran == 0
        else np.nanmax(traj.input_violation[:ran]),
        stopped_at=traj.stopped_at,
        stop_status=None if traj.stopped_at is None else traj.status[traj.stopped_at],
        final_state=traj.states[ran], mean_step_seconds=float(traj.step_time[:max(ran, 1)].mean()),
        states=traj.states, inputs=traj.inputs, status=traj.status)


def _loop_lines(d: dict, steps: int) -> dict:
    """The text rows of one closed loop, by row name."""
    stop = ("no, all steps ran" if d["stopped_at"] is None
            else f"at step {d['stopped_at']}: {d['stop_status']} (no usable input)")
    cost = (fmt(d["cost"]) if d["cost"] is not None else
            "n/a (no step ran)" if d["stopped_at"] == 0 else fmt(d["cost"]))
    return {"closed-loop cost": cost, "max state violation": fmt(d["max_state_violation"]),
            "max input violation": fmt(d["max_input_violation"]), "stopped": stop,
            "final state": np.array2string(d["final_state"], precision=4),
            "controller time": f"{1e3 * d['mean_step_seconds']:.3f} ms per step (mean)"}


def cmd_simulate(args: argparse.Namespace) -> Result:
    obj = load_problem(args.problem)
    problem = problem_of(obj)
    only_states(problem, "simulates without references (the previous input starts at zero)")
    if args.plot is not None:
        plotting.check_image_path(args.plot, "--plot")
    names = ["implicit", "mpc"] if args.controller == "both" else [args.controller]
    runs = {name: _closed_loop(obj, problem, name, args) for name in names}
    first = runs[names[0]][1]
    data = dict(problem=problem.name, controller=args.controller, steps=args.steps,
                steps_run=runs[names[0]][0].steps_run, x0=args.x0, **first, plot=None)
    head = [describe(problem)]
    if len(names) == 1:
        head.append(f"closed loop with the {_LABELS[names[0]]}, {args.steps} steps from x0 = {args.x0}")
        rows = [f"{k:<22}{v}" for k, v in _loop_lines(first, args.steps).items()]
    else:
        (t_net, d_net), (t_mpc, d_mpc) = runs["implicit"], runs["mpc"]
        n = min(t_net.steps_run, t_mpc.steps_run)
        gap_x = float(np.abs(t_net.states[:n + 1] - t_mpc.states[:n + 1]).max(initial=0.0))
        gap_u = float(np.abs(t_net.inputs[:n] - t_mpc.inputs[:n]).max(initial=0.0))
        data["mpc"] = d_mpc
        data.update(max_state_gap=gap_x, max_input_gap=gap_u, compared_steps=n)
        head.insert(0, f"implicit network vs MPC (OSQP), {args.steps} steps from x0 = {args.x0}: "
                       f"max |x_network - x_MPC| = {gap_x:.2e}, max |u_network - u_MPC| = {gap_u:.2e} "
                       f"over {n} steps")
        a, b = _loop_lines(d_net, args.steps), _loop_lines(d_mpc, args.steps)
        rows = [f"{'':<22}{'implicit network':<30}MPC (OSQP)"] + [f"{k:<22}{a[k]:<30}{b[k]}" for k in a]
    text = head + [""] + rows
    if args.plot is not None:
        data["plot"] = plotting.save_trajectories(
            output_path(args.plot), {_LABELS[name]: runs[name][0] for name in reversed(names)},
            problem if isinstance(problem, MPCProblem) else None,
            f"{problem.name}: closed loop from x0 = {args.x0}")
        text.append(f"{'plot':<22}{args.plot}")
    stopped = any(runs[name][0].stopped_at is not None for name in names)
    return Result(1 if stopped else 0, data, text)


def cmd_bench(args: argparse.Namespace) -> Result:
    obj = load_problem(args.problem)
    problem = problem_of(obj)
    qp = systems.as_qp(problem)
    show = not (args.quiet or args.json)
    X = sample(problem, args.samples, args.seed, show)
    n, parts_of = X.shape[0], chunks(X.shape[0])
    try:
        solve_daqp(qp, X[:1])
        have_daqp = True
    except MissingDependencyError:
        have_daqp = False
    times: dict[str, list[float]] = {"exact": [], "daqp": [], "osqp": []}
    U: dict[str, np.ndarray] = {}
    ok: dict[str, np.ndarray] = {}
    with Progress("benchmarking", args.repeats * (2 + have_daqp) * n, show) as bar:
        for _ in range(args.repeats):
            net = network_of(obj)  # a fresh network each time: no factorisation cached from a previous run
            t0 = time.perf_counter()
            sol = net.solve(X)
            times["exact"].append(time.perf_counter() - t0)
            U["exact"], ok["exact"] = sol.U, sol.feasible
            bar.advance(n)
            solvers: dict[str, Callable[[np.ndarray], Any]] = {"osqp": OSQPSession(qp).solve}
            if have_daqp:
                solvers["daqp"] = lambda Xc: solve_daqp(qp, Xc)
            for name, solve in solvers.items():
                elapsed, parts = 0.0, []
                for sl in parts_of:
                    t0 = time.perf_counter()
                    parts.append(solve(X[sl]))
                    elapsed += time.perf_counter() - t0
                    bar.advance(sl.stop - sl.start)
                times[name].append(elapsed)
                U[name] = np.concatenate([p.U for p in parts])
                ok[name] = np.concatenate([p.status == "solved" for p in parts])
    data = dict(problem=problem.name, samples=n, seed=args.seed, repeats=args.repeats, cpus=os.cpu_count(),
                m=qp.m, n_U=qp.n_U)
    text = [describe(problem) + f", m = {qp.m} constraint rows",
            f"{n} sampled feasible states, float64, median of {args.repeats} run(s), {os.cpu_count()} CPUs",
            "exact: one batched solve on a freshly compiled network; DAQP, OSQP (warm-started, tolerances "
            "1e-10): one state at a time", "",
            f"{'solver':<8}{'states/s':>12}{'exact/solver':>14}{'max|U - U_exact|':>18}{'not solved':>12}"]
    exact_rate = n / float(np.median(times["exact"]))
    for name in ("exact", "daqp", "osqp"):
        if not times[name]:
            data[name] = None
            text.append(f"{name:<8}{'not installed':>12}")
            continue
        rate = n / float(np.median(times[name]))
        both = ok[name] & ok["exact"]
        err = float(np.abs(U[name][both] - U["exact"][both]).max(initial=0.0))
        unsolved = int((~ok[name]).sum())
        data[name] = dict(states_per_s=rate, seconds=float(np.median(times[name])), ratio=exact_rate / rate,
                          max_error=err, not_solved=unsolved)
        text.append(f"{name:<8}{rate:>12.0f}{exact_rate / rate:>14.2f}{err:>18.2e}{unsolved:>12}")
    return Result(0, data, text)


def cmd_unravel(args: argparse.Namespace) -> Result:
    if getattr(args, "exact", False):
        return _unravel_exact(args)
    unravel = feature("mpc2nn.explicit", "unravel", "unravelling")
    dtype = feature("torch", args.dtype, "unravelling")
    if args.output is not None:
        output_path(args.output)  # before the long work
    obj = load_problem(args.problem)
    problem = problem_of(obj)
    net = network_of(obj)
    show = not (args.quiet or args.json)
    seed_fit, seed_test = np.random.SeedSequence(args.seed).generate_state(2)
    method = args.method
    head = describe(problem) + f", m = {net.m} constraint rows"
    t0 = time.perf_counter()
    if args.depth is not None:
        explicit = unravel(net, depth=args.depth, method=method, dtype=dtype, max_depth=args.max_depth,
                           seed=int(seed_fit))
    else:
        sample(problem, 1, int(seed_fit), False)  # a problem without a sample box: one clear line
        progress = _unravel_progress(show)
        try:
            explicit = unravel(net, tol=args.tol, method=method, dtype=dtype, max_depth=args.max_depth,
                               n_select=args.samples, seed=int(seed_fit), progress=progress)
        except ToleranceNotMetError as exc:
            progress("", 0, 0)
            sel = exc.selection
            data = dict(problem=problem.name, depth=None, samples=args.samples, seed=args.seed, tol=args.tol,
                        method=method, dtype=args.dtype, max_depth=args.max_depth, passed=False, certified=False,
                        status=None if sel is None else sel.status,
                        construction=None if sel is None else sel.construction,
                        criterion=None if sel is None else sel.criterion, statement=str(exc), output=None)
            text = [head, "", f"construction: {data['construction'] or method}",
                    f"criterion: {data['criterion'] or 'the largest error on the selection states'}", "",
                    f"FAIL: tolerance {args.tol:g} not met ({data['status'] or 'refused'}): {exc}"]
            return Result(1, data, text)
        progress("", 0, 0)
    build_s = time.perf_counter() - t0
    sel = explicit.selection
    X = sample(problem, args.samples, int(seed_test), show, label="sampling (test)")
    report = validate_in_chunks(explicit, systems.as_qp(problem), X, "exact", show)
    bound = explicit.error_bound(X).bound
    tol = np.inf if args.tol is None else args.tol
    data = dict(problem=problem.name, depth=int(explicit.depth), samples=args.samples, seed=args.seed,
                **report_data(report, tol), max_error_bound=float(bound.max(initial=0.0)), output=None)
    construction = _construction_of(explicit)
    certified = bool(np.all(bound <= tol))
    data.update(tol=args.tol, method=method, dtype=args.dtype, max_depth=args.max_depth, construction=construction,
                criterion=None if sel is None else sel.criterion, status=None if sel is None else sel.status,
                statement=None if sel is None else sel.statement, certified=certified and args.tol is not None,
                build_seconds=build_s)
    text = [head, f"construction: {construction}",
            f"explicit network: depth {data['depth']}, {args.dtype}, built in {build_s:.1f} s"
            + ("" if args.tol is None else f" for tolerance {args.tol:g}")]
    if sel is not None:
        text += [f"criterion: {sel.criterion}", f"tuning: {sel.tuning or 'options given'}", f"result: {sel.statement}"]
    text += ["", report.summary(), f"{'max a-posteriori error bound':<30}{data['max_error_bound']:.3e}"]
    if args.output is not None:
        try:
            data["output"] = save(explicit, output_path(args.output))
        except TypeError as exc:
            raise CommandLineError(f"saving explicit networks is not available in this installation: {exc}") \
                from None
        text.append(f"saved to {args.output}")
    if args.tol is not None:
        n = data["states"]
        if not data["passed"]:
            verdict = f"FAIL: max error {data['max_error']:.3e} on {n} test states (tolerance {args.tol:g})"
        elif certified:
            verdict = (f"PASS: max error {data['max_error']:.3e} on {n} test states, and the a-posteriori bound "
                       f"certifies tolerance {args.tol:g} on every one of them (max bound "
                       f"{data['max_error_bound']:.3e})")
        else:
            verdict = (f"MET ON TEST STATES, NOT CERTIFIED: max error {data['max_error']:.3e} <= {args.tol:g} on {n} "
                       f"test states, but the a-posteriori bound exceeds the tolerance on "
                       f"{int((bound > tol).sum())} of them (max bound {data['max_error_bound']:.3e})")
        text += ["", verdict]
    return Result(0 if data["passed"] else 1, data, text)


def _unravel_exact(args: argparse.Namespace) -> Result:
    """``mpc2nn unravel --exact``: critical regions, the exact first-input network, its certificate, a sampled
    check against the exact solve on held-out states.
    """
    exact_network = feature("mpc2nn.explicit", "exact_network", "the exact network")
    obj = load_problem(args.problem)
    problem = problem_of(obj)
    net = network_of(obj)
    show = not (args.quiet or args.json)
    budget = {k: v for k, v in (("max_regions", args.max_regions), ("time_limit", args.time_limit)) if v is not None}
    part = critical_regions(net, progress=show, **budget)
    data: dict[str, Any] = dict(problem=problem.name, regions=part.n_regions, complete=part.complete,
                                partition_status=part.status, pieces=part.pieces.n_pieces, output=None)
    text = [describe(problem) + f", m = {net.m} constraint rows",
            f"critical regions: {part.n_regions} ({'complete' if part.complete else 'incomplete'}), "
            f"{part.pieces.n_pieces} first-input pieces, {part.elapsed:.2f} s"]
    if not part.complete:
        data.update(proven=False, passed=False, reason=part.reason)
        return Result(1, data, text + ["", f"FAIL: no exact network: {part.reason}"])
    explicit = exact_network(part)
    cert = explicit.certify()
    X = sample(problem, args.samples, int(np.random.SeedSequence(args.seed).generate_state(1)[0]), show,
               label="sampling (test)")
    report = validate_in_chunks(explicit, systems.as_qp(problem), X, "exact", show)
    data.update(depth=int(explicit.depth), width=int(explicit.width), params=int(explicit.n_params),
                flops=int(explicit.flops), proven=bool(cert.proven), certificate_status=cert.status,
                certificate_margin=cert.max_margin, samples=args.samples, seed=args.seed,
                **report_data(report, VALIDATE_TOL))
    data["passed"] = bool(data["passed"] and cert.proven)
    text += [f"exact network: depth {explicit.depth}, width {explicit.width}, {explicit.n_params} parameters, "
             f"{explicit.flops} flops per state", cert.summary(), "", report.summary()]
    if args.output is not None:
        data["output"] = save(explicit, output_path(args.output))
        text.append(f"saved to {args.output}")
    text += ["", ("PASS" if data["passed"] else "FAIL") + f": certificate {cert.status}; max error "
             f"{data['max_error']:.3e} on {args.samples} sampled test states (tolerance {VALIDATE_TOL:g})"]
    return Result(0 if data["passed"] else 1, data, text)
def _construction_of(explicit) -> str:
    sel = getattr(explicit, "selection", None)
    if sel is not None and sel.construction:
        return sel.construction
    opts = getattr(explicit, "options", None)
    if opts is None:
        return explicit.method
    vals = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in vars(opts).items()
                     if not isinstance(v, np.ndarray))
    return f"{explicit.method} ({vals})"


def _unravel_progress(show: bool):
    """A progress callback for unravel: one line per stage on stderr (``stage=""`` ends the last line)."""
    state: dict[str, Any] = {"stage": None, "bar": None}

    def progress(stage, done, total):
        if not show:
            return
        if stage != state["stage"]:
            if state["bar"] is not None:
                state["bar"].advance(state["bar"].total)
                state["bar"].__exit__(None, None, None)
            state["stage"], state["bar"] = stage, None
            if stage:
                state["bar"] = Progress(f"unravel: {stage}", total or 1, True).__enter__()
        bar = state["bar"]
        if bar is not None and total:
            bar.advance(max(0, int(done) - bar.done))

    return progress


def cmd_export(args: argparse.Namespace) -> Result:
    obj = load(args.file)
    fmt_fn = feature("mpc2nn.export", {"onnx": "to_onnx", "torchscript": "to_torchscript", "c": "to_c"}[args.format],
                      f"export to {args.format}")
    target = args.output if args.format == "c" else output_path(args.output)
    try:
        written = Path(fmt_fn(obj, target, dtype=args.dtype))
    except TypeError as exc:  # not an explicit network
        raise CommandLineError(f"{args.file}: {exc}; export needs a file written by `mpc2nn unravel -o`") from None
    size = written.stat().st_size
    data = dict(input=args.file, kind=type(obj).__name__, format=args.format, dtype=args.dtype, output=str(written),
                bytes=size)
    return Result(0, data, [f"{type(obj).__name__} from {args.file} exported as {args.format} ({args.dtype}) to "
                             f"{written} ({size} bytes)"])


def _weights_of(spec: str):
    """An implicit network from a PROBLEM argument, or bare weights from a ``.npz`` (W, Y, b, W_f, Y_f)."""
    if spec.endswith(".npz"):
        from ..implicit import ImplicitWeights

        with np.load(spec) as z:
            missing = [k for k in ("W", "Y", "b", "W_f", "Y_f") if k not in z.files]
            if missing:
                raise CommandLineError(f"{spec}: missing arrays {missing}; a weights file holds W (m, m), Y (m, n_x), "
                                       "b (m,), W_f (n_U, m), Y_f (n_U, n_x) and optionally output_bias (n_U,), n_u")
            kw = {k: z[k] for k in ("W", "Y", "b", "W_f", "Y_f", "output_bias") if k in z.files}
            if "n_u" in z.files:
                kw["n_u"] = int(z["n_u"])
        return ImplicitWeights(**kw), None
    obj = load_problem(spec)
    return network_of(obj), problem_of(obj)


def cmd_converse(args: argparse.Namespace) -> Result:
    converse = feature("mpc2nn.converse", "to_qp", "the converse map")
    net, problem = _weights_of(args.network)
    result = converse(net)
    data: dict[str, Any] = dict(network=args.network, status=str(result.status), method=result.method,
                                residual=result.residual, network_mismatch=result.network_mismatch,
                                m=result.qp.m, n_U=result.qp.n_U, n_x=result.qp.n_x,
                                obstruction=None if result.obstruction is None else dict(
                                    kind=result.obstruction.kind, rows=list(result.obstruction.rows),
                                    message=result.obstruction.message), mpc=None, output=None)
    mism = max(result.network_mismatch.values(), default=0.0)
    if result.exact:
        verdict = (f"MPC-like: the network is the implicit network of a QP (m = {result.qp.m} rows, "
                   f"N·n_u = {result.qp.n_U}); compile(qp) rebuilds its weights within {mism:.1e}")
    else:
        verdict = (f"not MPC-like: {result.obstruction}; the nearest MPC-like network differs by {mism:.1e}"
                   if result.obstruction is not None else f"not MPC-like ({result.status})")
    text = [verdict, "", str(result)]
    ok = bool(result.exact)
    saved = result.qp
    if args.mpc:
        to_mpc = feature("mpc2nn.converse", "to_mpc", "the converse map to MPC weights")
        model = problem if args.model is None else problem_of(load_problem(args.model))
        if model is None:
            raise CommandLineError(f"{args.network}: a weights file carries no model; give --model PROBLEM "
                                   "(a problem file or builtin:NAME) for A, B and the horizon")
        plant = plant_of(model)
        A, B = (plant.A, plant.B) if isinstance(plant, MPCProblem) else plant
        rec = to_mpc(net, A, B, model.horizon, n_samples=args.samples, seed=args.seed)
        data["mpc"] = dict(status=str(rec.status), max_error=rec.max_error,
                           feasibility_agreement=rec.feasibility_agreement, Q=rec.Q, R=rec.R, P=rec.P,
                           constraints=list(rec.constraints),
                           problem=None if rec.problem is None else repr(rec.problem))
        text += ["", f"MPC weights on the model of {model.name}: {rec.status}"
                 + (f" (reproduces the network on {rec.X.shape[0]} states, max relative error {rec.max_error:.1e})"
                    if rec.reproduces else ""), str(rec)]
        if rec.problem is not None:
            text.append(f"recovered problem: {rec.problem!r}")
            saved = rec.problem
        ok = ok and rec.reproduces
    if args.output is not None:
        data["output"] = save(saved, output_path(args.output))
        text += ["", f"saved the recovered {type(saved).__name__} to {args.output}"]
    return Result(0 if ok else 1, data, text)


@contextlib.contextmanager
def _stdout_to_stderr():
    """Send what is written to file descriptor 1 (by C code too) to descriptor 2 for the duration."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def cmd_verify(args: argparse.Namespace) -> Result:
    from ..verify import verify

    obj = load_problem(args.problem)
    net = network_of(obj)
    network: Any = args.network
    if Path(args.network).suffix.lower() != ".onnx":  # a .mpc2nn file of an explicit network
        network = load(args.network)
    region = None
    if args.box is not None:
        n = net.qp.n_theta
        if len(args.box) != 2 * n:
            raise CommandLineError(f"--box: expected 2·n_θ = {2 * n} numbers (the n_θ lower bounds, then the n_θ "
                                   f"upper bounds), got {len(args.box)}")
        region = (np.array(args.box[:n]), np.array(args.box[n:]))
    show = not (args.quiet or args.json)
    with _stdout_to_stderr():  # HiGHS's MILP code can print a debug line on the C stdout: keep --json clean
        res = verify(network, net, region, tol=args.tol, rtol=args.rtol, time_limit=args.time_limit,
                     progress=show, scheduler=args.scheduler, workers=args.workers, samples=args.samples,
                     seed=args.seed, method=args.method)

    def bound(b) -> dict:
        return dict(upper=b.upper, lower=b.lower, gap=b.gap, witness=b.witness, status=b.status)

    data = dict(network=res.network, problem=str(args.problem), status=res.status, method=res.method,
                covered=res.covered, error=bound(res.error), violation=bound(res.violation), regions=len(res.regions),
                cells=res.n_cells, milps=res.n_milps, lps=res.n_lps, workers=res.workers, seconds=res.elapsed,
                reason=res.reason)
    return Result(0 if res.status == "proven" else 1, data, [res.summary()])


def cmd_demo(args: argparse.Namespace) -> Result:
    problem = systems.drummond2024("corrected")
    net = compile_network(problem)
    show = not (args.quiet or args.json)
    n = 50 if args.small else args.samples
    X = sample(problem, n, 0, show)
    report = validate_in_chunks(net, systems.as_qp(problem), X, "osqp", show)
    settings = systems.DRUMMOND2024_PAPER_SETTINGS
    x0, steps = settings["x0"], settings["closed_loop_steps"]
    trajectories = {"MPC (OSQP)": simulate(problem, problem, x0, steps),
                    "implicit network": simulate(problem, net, x0, steps)}
    gap = float(np.abs(trajectories["implicit network"].states - trajectories["MPC (OSQP)"].states).max())
    args.output.mkdir(parents=True, exist_ok=True)
    plot = plotting.save_trajectories(args.output / "demo.png", trajectories, problem,
                              f"{problem.name}: implicit network vs MPC from x0 = {tuple(x0)}")
    tol = VALIDATE_TOL
    data = dict(problem=problem.name, samples=n, **report_data(report, tol), closed_loop_steps=steps,
                closed_loop_gap=gap, plot=plot)
    check = cross_check(report, problem, tol=tol)  # where OSQP disagrees: who is wrong
    data["reference_wrong"] = check.where(Verdict.REFERENCE_WRONG)
    data["passed"] = (data["passed"] or check.controller_right) and gap <= tol * max(1.0, float(np.abs(x0).max()))
    text = [describe(problem), f"implicit network: width m = {net.m}, N·n_u = {net.W_f.shape[0]} outputs", "",
            report.summary()] + (["", check.summary()] if check.indices.size else []) + ["",
            f"closed loop from x0 = {tuple(x0)}, {steps} steps: max |x_network - x_OSQP| = {gap:.2e}",
            f"plot written to {plot}"]
    return Result(0 if data["passed"] else 1, data, text)
