"""The subcommands of the ``mpc2nn`` command."""

from __future__ import annotations

import argparse
import dataclasses
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .. import systems
from ..evaluation import MPCController, plotting, simulate
from ..exceptions import MissingDependencyError, ToleranceNotMetError
from ..implicit import compile as compile_network
from ..io import load, problem_hash, save
from ..problem import MPCProblem
from ..reference import OSQPSession, solve_daqp
from ._output import CommandLineError, Result, feature, fmt
from ._problems import describe, load_problem, network_of, only_states, plant_of, problem_of
from ._progress import Progress, chunks, report_data, sample, validate_in_chunks

__all__ = ["cmd_compile", "cmd_validate", "cmd_simulate", "cmd_bench", "cmd_unravel", "cmd_export", "cmd_demo"]


def _output_folder(path: Path | None) -> None:
    """Create the folder an output file goes to (the command line creates output folders, as ``demo``
    does), before any long work, or stop with one line naming the path.
    """
    if path is None:
        return
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CommandLineError(f"-o {path}: cannot create the output folder {Path(path).parent}: {exc.strerror or exc}"
                               ) from None


def cmd_compile(args: argparse.Namespace) -> Result:
    _output_folder(args.output)
    obj = load_problem(args.problem)
    problem = problem_of(obj)
    net = network_of(obj, args.alpha)
    wp = net.well_posedness()
    n_params = sum(getattr(net, k).size for k in ("W", "Y", "b", "W_f", "Y_f"))
    data = dict(problem=problem.name, kind=type(problem).__name__, n_x=net.n_x, n_u=net.n_u,
                horizon=problem.horizon, m=net.m, n_U=net.W_f.shape[0], parameters=n_params,
                alpha_min=float(net.alpha.min(initial=np.inf)), alpha_max=float(net.alpha.max(initial=-np.inf)),
                problem_hash=problem_hash(net), well_posedness=dataclasses.asdict(wp), output=None)
    text = [describe(problem),
            f"implicit network: width m = {net.m}, outputs N·n_u = {data['n_U']}, {n_params} parameters, "
            f"alpha in [{fmt(data['alpha_min'], '.4g')}, {fmt(data['alpha_max'], '.4g')}]",
            "", str(wp)]
    if args.output is not None:
        data["output"] = save(net, args.output)
        text += ["", f"saved to {args.output}"]
    return Result(0, data, text)


def cmd_validate(args: argparse.Namespace) -> Result:
    obj = load_problem(args.problem)
    problem = problem_of(obj)
    net = network_of(obj)
    show = not (args.quiet or args.json)
    X = sample(problem, args.samples, args.seed, show)
    t0 = time.perf_counter()
    report = validate_in_chunks(net, systems.as_qp(problem), X, args.reference, show)
    data = dict(problem=problem.name, samples=args.samples, seed=args.seed, **report_data(report, args.tol),
                seconds=time.perf_counter() - t0)
    verdict = "PASS" if data["passed"] else "FAIL"
    text = [describe(problem) + f", m = {net.m} constraint rows", "", report.summary(), "",
            f"{verdict}: max error {data['max_error']:.3e} (tolerance {args.tol:g}), feasibility agrees on "
            f"{data['feasibility_agreement']}/{data['states']} states"]
    return Result(0 if data["passed"] else 1, data, text)


def cmd_simulate(args: argparse.Namespace) -> Result:
    obj = load_problem(args.problem)
    problem = problem_of(obj)
    only_states(problem, "simulates without references (the previous input starts at zero)")
    controller = network_of(obj) if args.controller == "implicit" else MPCController(problem)
    label = {"implicit": "implicit network", "mpc": "MPC (OSQP)"}[args.controller]
    traj = simulate(plant_of(problem), controller, args.x0, args.steps,
                    problem=problem if isinstance(problem, MPCProblem) else None)
    ran = args.steps if traj.stopped_at is None else traj.stopped_at
    data = dict(problem=problem.name, controller=args.controller, steps=args.steps, steps_run=ran, x0=args.x0,
                cost=traj.cost,
                max_state_violation=None if traj.state_violation is None else np.nanmax(traj.state_violation),
                max_input_violation=None if traj.input_violation is None or ran == 0
                else np.nanmax(traj.input_violation[:ran]),
                stopped_at=traj.stopped_at,
                stop_status=None if traj.stopped_at is None else traj.status[traj.stopped_at],
                final_state=traj.states[ran], mean_step_seconds=float(traj.step_time[:max(ran, 1)].mean()),
                states=traj.states, inputs=traj.inputs, status=traj.status, plot=None)
    stop = ("no, all steps ran" if traj.stopped_at is None
            else f"at step {traj.stopped_at}: {data['stop_status']} (no usable input)")
    text = [describe(problem), f"closed loop with the {label}, {args.steps} steps from x0 = {args.x0}", "",
            f"{'closed-loop cost':<22}{fmt(traj.cost)}",
            f"{'max state violation':<22}{fmt(data['max_state_violation'])}",
            f"{'max input violation':<22}{fmt(data['max_input_violation'])}",
            f"{'stopped':<22}{stop}",
            f"{'final state':<22}{np.array2string(traj.states[ran], precision=4)}",
            f"{'controller time':<22}{1e3 * data['mean_step_seconds']:.3f} ms per step (mean)"]
    if args.plot is not None:
        data["plot"] = plotting.save_trajectories(args.plot, {label: traj},
                                          problem if isinstance(problem, MPCProblem) else None,
                                          f"{problem.name}: closed loop from x0 = {args.x0}")
        text.append(f"{'plot':<22}{args.plot}")
    return Result(0 if traj.stopped_at is None else 1, data, text)


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
    unravel = feature("mpc2nn.explicit", "unravel", "unravelling")
    dtype = feature("torch", args.dtype, "unravelling")
    _output_folder(args.output)
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
            data["output"] = save(explicit, args.output)
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
    _output_folder(args.output)
    try:
        written = Path(fmt_fn(obj, args.output))
    except TypeError as exc:  # not an explicit network
        raise CommandLineError(f"{args.file}: {exc}; export needs a file written by `mpc2nn unravel -o`") from None
    size = written.stat().st_size
    data = dict(input=args.file, kind=type(obj).__name__, format=args.format, output=str(written), bytes=size)
    return Result(0, data, [f"{type(obj).__name__} from {args.file} exported as {args.format} to {written} "
                             f"({size} bytes)"])


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
    tol = 1e-6
    data = dict(problem=problem.name, samples=n, **report_data(report, tol), closed_loop_steps=steps,
                closed_loop_gap=gap, plot=plot)
    data["passed"] = data["passed"] and gap <= tol * max(1.0, float(np.abs(x0).max()))
    text = [describe(problem), f"implicit network: width m = {net.m}, N·n_u = {net.W_f.shape[0]} outputs", "",
            report.summary(), "",
            f"closed loop from x0 = {tuple(x0)}, {steps} steps: max |x_network - x_OSQP| = {gap:.2e}",
            f"plot written to {plot}"]
    return Result(0 if data["passed"] else 1, data, text)
