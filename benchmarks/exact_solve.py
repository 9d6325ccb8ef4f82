"""Throughput and latency of the exact batched implicit solve against DAQP and OSQP.

For each problem — the six public ones and seeded random systems (stable and
unstable, 2–12 states, with and without state constraints, with input-rate
bounds) — sample feasible states (seeded), then time, in the same run on the
same states,

* ``net.solve(X)`` at batch sizes ``--batches`` (default 1, 10, 100, 10⁴): a batch
  of ``B`` distinct states per call, repeated over the sample, on a network compiled
  once (its active-set cache warm from the earlier batch sizes, as in use);
* DAQP — ``daqp.solve`` per state in a Python loop (primal tolerance 1e-10,
  see ``mpc2nn.DAQP_SETTINGS``), the same states;
* single-state latency along a closed loop (the states of a simulated trajectory):
  ``ImplicitController`` (warm-started from the previous fixed point), DAQP's single
  call, and OSQP warm-started (``MPCController``); median and 99th percentile.

Prints a table of states/s, ratios to DAQP and the worst case over the problems.
``--formulations`` runs the MPC formulations of :class:`mpc2nn.MPCProblem` instead
(soft constraints, input rates, tracking, move blocking); ``--wide`` adds batches
drawn from the sample box doubled (many infeasible and saturated states, not
filtered). Timings are the process's CPU time (``time.process_time``; every peer runs
single-threaded in this process, as the environment variables printed in the header set
BLAS, so CPU time is the work done, and other jobs on a shared machine do not inflate
one peer's time more than another's); ``--clock wall`` times wall-clock
(``time.perf_counter``) instead. Usage::

    python benchmarks/exact_solve.py [--states 10000] [--batches 1 10 100 10000] [--small] [--wide]
                                     [--formulations] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import numpy as np

import mpc2nn

#: The timer of every measurement (set by ``--clock``): CPU time of this process by default.
CLOCK = time.process_time


def timed(fn, repeats, setup=lambda: None):
    """Median wall time of ``fn(setup())`` (setup not timed) and the last output."""
    times, out = [], None
    for _ in range(repeats):
        arg = setup()
        t0 = CLOCK()
        out = fn(arg)
        times.append(CLOCK() - t0)
    return float(np.median(times)), out


def formulation_cases(n: int, seed: int = 0) -> dict:
    """``{name: (problem, θ (n, n_θ))}`` for the formulation benchmark, every θ feasible.

    States are drawn from the sample box (soft constraints: from the box doubled
    in size, so many states are outside the hard feasible set); ``u_prev``
    uniformly within the input bounds; tracking references are steady states
    for an altitude (quadcopter) or position (double integrator) drawn in [-1, 1].
    """
    rng = np.random.default_rng(seed)
    di, quad = mpc2nn.systems.double_integrator(), mpc2nn.systems.quadcopter()
    variants = {
        "di soft (L1 exact)": (di, dict(soft_state_penalty=(1.0, 1e3)), 2.0),
        "di rates": (di, dict(du_min=[-0.3], du_max=[0.3], du_weight=[[1.0]]), 1.0),
        "di tracking": (di, dict(tracking=True), 1.0),
        "di blocking 2,3,5,10": (di, dict(move_blocking=(2, 3, 5, 10)), 1.0),
        "quad soft (L1 exact)": (quad, dict(soft_state_penalty=(1.0, 1e3)), 2.0),
        "quad rates+tracking": (quad, dict(tracking=True, du_weight=0.1 * np.eye(4), du_min=[-0.5] * 4,
                                           du_max=[0.5] * 4), 1.0),
        "quad blocking 2,2,2,4": (quad, dict(move_blocking=(2, 2, 2, 4)), 1.0),
    }
    cases = {}
    for name, (base, changes, widen) in variants.items():
        prob = base.replace(**changes)
        qp = mpc2nn.condense(prob)
        net = mpc2nn.compile(qp)
        lo, hi = (np.asarray(b) for b in base.sample_box)
        mid, half = (lo + hi) / 2, widen * (hi - lo) / 2
        C = np.eye(prob.n_x)[[0 if prob.n_x == 2 else 2]]
        kept = []
        while sum(len(k) for k in kept) < n:
            X = mid - half + 2 * half * rng.random((2 * n, prob.n_x))
            parts = {}
            if prob.uses_previous_input:
                parts["u_prev"] = prob.u_min + (prob.u_max - prob.u_min) * rng.random((2 * n, prob.n_u))
            if prob.tracking:
                targets = [mpc2nn.steady_state_target(prob, [y], C) for y in rng.uniform(-1, 1, 2 * n)]
                parts["x_ref"] = np.array([t.x for t in targets])
                parts["u_ref"] = np.array([t.u for t in targets])
            theta = qp.parameters(X, **parts)
            kept.append(theta[net.solve(theta).feasible])
        cases[name] = (prob, np.concatenate(kept)[:n])
    return cases


def random_system(n_x: int, n_u: int, rho: float, seed: int, *, state_bounds: bool = True, rates: bool = False,
                  horizon: int = 10) -> mpc2nn.MPCProblem:
    """A seeded random MPC problem: ``A`` with spectral radius ``rho`` (> 1: open-loop unstable), ``|u| <= 1``,
    optionally ``|x| <= 5`` and ``|Δu| <= 0.3``; Q = I, R = 0.1 I, P from the DARE; sample box ``[-2, 2]^n_x``.
    """
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(n_x, n_x))
    A *= rho / max(abs(np.linalg.eigvals(A)))
    B = rng.normal(size=(n_x, n_u))
    kw = dict(u_min=-np.ones(n_u), u_max=np.ones(n_u))
    if state_bounds:
        kw.update(x_min=-5 * np.ones(n_x), x_max=5 * np.ones(n_x))
    if rates:
        kw.update(du_min=-0.3 * np.ones(n_u), du_max=0.3 * np.ones(n_u))
    tag = f"rand {n_x}x{n_u} ρ={rho:g}{' x-bounds' if state_bounds else ''}{' rates' if rates else ''}"
    return mpc2nn.MPCProblem(A, B, np.eye(n_x), 0.1 * np.eye(n_u), horizon, P="dare", **kw, name=tag,
                             sample_box=(-2 * np.ones(n_x), 2 * np.ones(n_x)))


def random_cases(small: bool = False) -> dict:
    """``{name: problem}`` of the random systems of the benchmark (a seeded selection; fewer with ``small``)."""
    specs = [(2, 1, 0.9, 1, True, False), (4, 2, 1.3, 2, True, False), (5, 2, 0.95, 3, False, False),
             (8, 2, 1.0, 4, True, False), (12, 3, 1.1, 5, True, False), (4, 2, 1.2, 6, True, True)]
    if small:
        specs = [specs[1], specs[-1]]
    out = {}
    for n_x, n_u, rho, seed, sb, rates in specs:
        prob = random_system(n_x, n_u, rho, seed, state_bounds=sb, rates=rates)
        out[prob.name] = prob
    return out


def _theta(qp, X, rng):
    """θ for states ``X``: ``u_prev`` drawn within the input bounds where the problem takes it."""
    if "u_prev" not in dict(qp.parameter_sizes):
        return X
    prob = qp.problem
    return qp.parameters(X, u_prev=prob.u_min + (prob.u_max - prob.u_min) * rng.random((X.shape[0], prob.n_u)))


def _sample(prob, n, seed=0, widen=1.0, feasible=True):
    """``n`` θ of ``prob``: from its sample box (times ``widen``), filtered to proven-feasible ones if asked."""
    qp = mpc2nn.qp.as_qp(prob)
    net = mpc2nn.compile(qp)
    lo, hi = (np.asarray(b, float) for b in qp.sample_box)
    mid, half = (lo + hi) / 2, widen * (hi - lo) / 2
    rng = np.random.default_rng(seed)
    kept, got = [], 0
    for _ in range(50):
        X = mid - half + 2 * half * rng.random((max(2 * n, 256), qp.n_x))
        theta = _theta(qp, X, rng)
        if feasible:
            theta = theta[net.solve(theta).feasible]
        kept.append(theta)
        got += theta.shape[0]
        if got >= n:
            break
    return np.concatenate(kept)[:n]


def _batched(net, theta, B):
    """Seconds per state of ``net.solve`` on batches of ``B`` distinct θ covering ``theta``, and the solutions."""
    n = (theta.shape[0] // B) * B or theta.shape[0]
    t0 = CLOCK()
    sols = [net.solve(theta[i:i + B]) for i in range(0, n, B)]
    return (CLOCK() - t0) / n, sols, n


def _single(prob, net, theta, steps):
    """Per-state seconds (arrays) along a closed loop: exact (warm-started controller), DAQP call, OSQP warm."""
    qp = net.qp
    states = theta[:steps]  # no closed loop to follow (tracking, formulations): sampled states
    slices = qp.layout.slices
    if set(slices) <= {"x", "u_prev"} and isinstance(prob, mpc2nn.MPCProblem):
        # the states of a simulated closed loop, with the input applied before each (θ = (x, u_prev))
        traj = mpc2nn.simulate(prob, mpc2nn.compile(prob), theta[0, slices["x"]], steps)
        u_prev = np.vstack([theta[:1, slices["u_prev"]], traj.inputs[:-1]]) if "u_prev" in slices else None
        loop = traj.states[:-1] if u_prev is None else np.hstack([traj.states[:-1], u_prev])
        loop = loop[np.isfinite(loop).all(axis=1)]
        if loop.shape[0] >= steps // 2:
            states = loop
    ctrl = mpc2nn.ImplicitController(net)
    t_exact = []
    for x in states:
        parts = {k: x[sl] for k, sl in slices.items()}  # θ = (x, u_prev, ...) as the controller's keywords
        t0 = CLOCK()
        ctrl(**parts)
        t_exact.append(CLOCK() - t0)
    t_daqp = []
    for x in states:
        t0 = CLOCK()
        mpc2nn.solve_daqp(qp, x[None, :])
        t_daqp.append(CLOCK() - t0)
    sess = mpc2nn.reference.OSQPSession(qp)
    t_osqp = []
    for x in states:
        t0 = CLOCK()
        sess.solve(x[None, :])
        t_osqp.append(CLOCK() - t0)
    return np.array(t_exact), np.array(t_daqp), np.array(t_osqp)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--states", type=int, default=None, help="states per problem (default 10000; --small: 300)")
    ap.add_argument("--batches", type=int, nargs="*", default=None, help="batch sizes (default 1 10 100 10000)")
    ap.add_argument("--steps", type=int, default=None, help="closed-loop steps of the latency test (default 200)")
    ap.add_argument("--repeats", type=int, default=1, help="(kept for compatibility; each batch size runs once "
                    "over the whole sample)")
    ap.add_argument("--problems", nargs="*", default=None, help="names (default: public problems and random systems)")
    ap.add_argument("--small", action="store_true", help="a few hundred states, two random systems (smoke test)")
    ap.add_argument("--wide", action="store_true", help="also batches from the sample box doubled, unfiltered")
    ap.add_argument("--clock", choices=("cpu", "wall"), default="cpu",
                    help="time CPU seconds of this process (default; robust on a shared machine) or wall-clock")
    ap.add_argument("--json", default=None, help="write the results to this JSON file")
    ap.add_argument("--table", default=None, help="write the compact table of the docs' benchmarks page (batch "
                    "ratios, median single-state µs, the 2x box) to this file")
    ap.add_argument("--formulations", action="store_true",
                    help="soft constraints, input rates, tracking, move blocking instead of the public problems")
    args = ap.parse_args(argv)
    global CLOCK
    CLOCK = time.process_time if args.clock == "cpu" else time.perf_counter
    n_states = args.states or (300 if args.small else 10_000)
    batches = args.batches or ([1, 10, 100] if args.small else [1, 10, 100, 10_000])
    batches = [b for b in batches if b <= n_states] or [n_states]
    steps = args.steps or (30 if args.small else 200)
    if args.formulations:
        cases = {name: (prob, theta) for name, (prob, theta) in formulation_cases(n_states).items()}
    else:
        problems = mpc2nn.systems.all_problems()
        cases = {name: (make(), None) for name, make in problems.items()}
        cases.update({name: (prob, None) for name, prob in random_cases(args.small).items()})
        if args.problems:
            cases = {k: v for k, v in cases.items() if k in args.problems}
    threads = {k: os.environ.get(k, "unset") for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, python {platform.python_version()}, "
          f"numpy {np.__version__}, BLAS threads env {threads}")
    print(f"# {n_states} sampled feasible θ per problem (seed 0), float64, {args.clock} clock; batch sizes {batches}; "
          f"latency over {steps} closed-loop steps")
    bcols = " ".join(f"{'B=' + str(b):>9}" for b in batches)
    head = (f"{'problem':<30} {'m':>5} {'n_z':>4} {'DAQP [st/s]':>11} {bcols}  {'1-state µs p50/p99: exact':>26} "
            f"{'DAQP':>11} {'OSQP warm':>11} {'max|U-U_daqp|':>13} {'fallback %':>10}")
    print(head + "\n" + "-" * len(head) + "\n# batch columns: exact states/s ÷ DAQP states/s (ratio); fallback %: "
          "largest share over the batch sizes not decided by the primal-dual sweeps (the compiled path of small "
          "batches counts as dual active set)")
    rows = []
    for name, (prob, theta) in cases.items():
        qp = mpc2nn.qp.as_qp(prob)
        if theta is None:
            print(f"  sampling {name} ...", file=sys.stderr, flush=True)
            theta = _sample(prob, n_states)
        net = mpc2nn.compile(qp)
        # one-time costs out of the timings: numba's JIT (or loading its cache) on the first compiled call of the
        # process, the compiled path's set-up per network; reported once, not per state
        t0 = CLOCK()
        net.solve(theta[:1])
        if not rows:
            print(f"# first single-state solve of the run (JIT/cache load included): {CLOCK() - t0:.2f} s",
                  flush=True)
        t0 = CLOCK()
        dq = mpc2nn.solve_daqp(qp, theta)
        t_daqp = (CLOCK() - t0) / theta.shape[0]
        ratios, rates, worst_err, fallback, certified = {}, {}, 0.0, 0.0, True
        for B in batches:
            t_b, sols, n = _batched(net, theta, B)
            rates[B], ratios[B] = 1 / t_b, t_daqp / t_b
            U = np.concatenate([s_.U for s_ in sols])
            status = np.concatenate([s_.status for s_ in sols])
            certified &= bool((status == "solved").all())
            worst_err = max(worst_err, float(np.nanmax(np.abs(U - dq.U[:n]), initial=0.0)))
            methods = np.concatenate([s_.method for s_ in sols])
            fallback = max(fallback, float(np.mean(methods != "primal-dual active set")))
        te, td, to = _single(prob, net, theta, steps)
        row = dict(problem=name, m=int(qp.m), n_z=int(qp.n_z), states=int(theta.shape[0]),
                   daqp_states_per_s=1 / t_daqp, exact_states_per_s=rates[max(batches)],
                   batches={str(b): dict(exact_states_per_s=rates[b], ratio_to_daqp=ratios[b]) for b in batches},
                   single_us=dict(exact_p50=1e6 * float(np.median(te)), exact_p99=1e6 * float(np.percentile(te, 99)),
                                  daqp_p50=1e6 * float(np.median(td)), daqp_p99=1e6 * float(np.percentile(td, 99)),
                                  osqp_p50=1e6 * float(np.median(to)), osqp_p99=1e6 * float(np.percentile(to, 99))),
                   err_daqp=worst_err, all_certified=certified, fallback_fraction=fallback)
        rows.append(row)
        su = row["single_us"]
        bvals = " ".join(f"{ratios[b]:>9.2f}" for b in batches)
        print(f"{name:<30} {row['m']:>5} {row['n_z']:>4} {row['daqp_states_per_s']:>11.0f} {bvals}  "
              f"{su['exact_p50']:>12.0f}/{su['exact_p99']:<13.0f} {su['daqp_p50']:>5.0f}/{su['daqp_p99']:<5.0f} "
              f"{su['osqp_p50']:>5.0f}/{su['osqp_p99']:<5.0f} {worst_err:>13.2e} {100 * fallback:>10.1f}", flush=True)
        if args.wide and isinstance(prob, mpc2nn.MPCProblem) and not args.formulations:
            wide = _sample(prob, min(n_states, 2000), seed=1, widen=2.0, feasible=False)
            t0 = CLOCK()
            dw = mpc2nn.solve_daqp(qp, wide)
            tdw = CLOCK() - t0
            t0 = CLOCK()
            sw = net.solve(wide)
            tew = CLOCK() - t0
            agree = bool(np.array_equal(sw.feasible, dw.feasible))
            row["wide"] = dict(states=int(wide.shape[0]), infeasible_fraction=float(sw.infeasible.mean()),
                               undecided=int(sw.undecided.sum()), ratio_to_daqp=tdw / tew, verdicts_agree=agree)
            print(f"{'  ' + name + ' (2x box)':<30} {'':>5} {'':>4} {wide.shape[0] / tdw:>11.0f} "
                  f"{tdw / tew:>9.2f}  infeasible {100 * sw.infeasible.mean():.0f} %, undecided {sw.undecided.sum()}, "
                  f"verdicts agree with DAQP: {agree}", flush=True)
    if rows:
        print("# worst case over the problems (exact ÷ DAQP): " + ", ".join(
            f"B={b}: {min(r['batches'][str(b)]['ratio_to_daqp'] for r in rows):.2f} "
            f"({min(rows, key=lambda r, b=b: r['batches'][str(b)]['ratio_to_daqp'])['problem']})" for b in batches)
            + "; single state p50 exact ÷ DAQP: worst "
            + f"{max(r['single_us']['exact_p50'] / r['single_us']['daqp_p50'] for r in rows):.2f}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)
    if args.table and rows:
        with open(args.table, "w") as fh:
            fh.write(compact_table(rows, batches, n_states, threads, args.clock))
    return 0


def compact_table(rows: list, batches: list, n_states: int, threads: dict, clock: str) -> str:
    """The page-width table of the docs: exact ÷ DAQP per batch size, median single-state µs, the 2x box."""
    env = "/".join(f"{k.split('_')[0]}" for k in threads) + "_NUM_THREADS=" + ",".join(sorted(set(threads.values())))
    out = [f"# {platform.machine()}, {os.cpu_count()} CPUs, python {platform.python_version()}, "
           f"numpy {np.__version__}, {env}, float64, {'CPU time of the process' if clock == 'cpu' else 'wall clock'}",
           f"# {n_states} sampled feasible θ per problem (seed 0); B=...: exact states/s ÷ DAQP states/s at that batch",
           "# size; 1 state: median µs per call of ImplicitController (a simulated closed loop where θ = x or",
           "# (x, u_prev), else the sampled θ one at a time) and of DAQP's single call on the same θ"]
    bcols = "".join(f"{'B=' + str(b):>7}" for b in batches)
    head = f"{'problem':<30} {'m':>4} {'n_z':>3} {'DAQP st/s':>9}{bcols} {'µs exact':>8} {'DAQP':>5}"
    out += [head, "-" * len(head)]
    for r in rows:
        su = r["single_us"]
        bvals = "".join(f"{r['batches'][str(b)]['ratio_to_daqp']:>7.2f}" for b in batches)
        out.append(f"{r['problem'][:30]:<30} {r['m']:>4} {r['n_z']:>3} {r['daqp_states_per_s']:>9.0f}{bvals} "
                   f"{su['exact_p50']:>8.0f} {su['daqp_p50']:>5.0f}")
    certified = all(r["all_certified"] for r in rows)
    out.append(f"# {'every state certified' if certified else 'NOT every state certified'}; largest max|U - U_daqp| "
               f"over the problems {max(r['err_daqp'] for r in rows):.2e}")
    wide = [r for r in rows if "wide" in r]
    if wide:
        out += ["", "# doubled sample box (many infeasible states): exact ÷ DAQP at batch "
                f"{wide[0]['wide']['states']}, verdicts against DAQP"]
        for r in wide:
            w = r["wide"]
            out.append(f"{r['problem'][:30]:<30} {w['ratio_to_daqp']:>6.2f}   infeasible "
                       f"{100 * w['infeasible_fraction']:.0f} %, undecided {w['undecided']}, verdicts "
                       f"{'= DAQP' + chr(39) + 's' if w['verdicts_agree'] else 'DIFFER from DAQP'}")
    worst = ", ".join(f"B={b} {min(r['batches'][str(b)]['ratio_to_daqp'] for r in rows):.2f} "
                      f"({min(rows, key=lambda r, b=b: r['batches'][str(b)]['ratio_to_daqp'])['problem']})"
                      for b in batches)
    single = max(r["single_us"]["exact_p50"] / r["single_us"]["daqp_p50"] for r in rows)
    out.append(f"# worst case (exact ÷ DAQP): {worst}; one state: exact takes at worst {single:.2f} × DAQP's time")
    if wide:
        out.append(f"# 2x box worst {min(r['wide']['ratio_to_daqp'] for r in wide):.2f}")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
