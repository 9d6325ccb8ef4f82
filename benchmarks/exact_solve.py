"""Throughput of the exact batched implicit solve against OSQP and DAQP.

For each public problem: sample feasible states (seeded), then time, in the
same run on the same states,

* ``net.solve(X)`` — batched, on a freshly compiled network each repetition
  (no factorisations cached from an earlier call: the cold-start number);
* DAQP — ``daqp.solve`` per state in a Python loop (primal tolerance 1e-10,
  see ``mpc2nn.DAQP_SETTINGS``);
* OSQP — warm-started per state in a Python loop, tolerances 1e-10 with polishing
  (``mpc2nn.OSQP_SETTINGS``).

Prints a table of states/s (median of the repetitions), the ratio to DAQP, and
the max errors ``‖U - U_ref‖∞``. ``--formulations`` runs the MPC formulations
of :class:`mpc2nn.MPCProblem` instead (soft constraints, input rates, tracking,
move blocking) on the double integrator and the quadcopter, with the network
input ``θ`` drawn as described in :func:`formulation_cases`. Usage::

    python benchmarks/exact_solve.py [--states 2000] [--repeats 3] [--formulations] [--json out.json]
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


def timed(fn, repeats, setup=lambda: None):
    """Median wall time of ``fn(setup())`` (setup not timed) and the last output."""
    times, out = [], None
    for _ in range(repeats):
        arg = setup()
        t0 = time.perf_counter()
        out = fn(arg)
        times.append(time.perf_counter() - t0)
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


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--states", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--problems", nargs="*", default=None, help="names (default: all public problems)")
    ap.add_argument("--json", default=None, help="write the results to this JSON file")
    ap.add_argument("--formulations", action="store_true",
                    help="soft constraints, input rates, tracking, move blocking instead of the public problems")
    args = ap.parse_args(argv)
    if args.formulations:
        cases = formulation_cases(args.states)
    else:
        problems = mpc2nn.systems.all_problems()
        cases = {name: (problems[name](), None) for name in (args.problems or list(problems))}
    threads = {k: os.environ.get(k, "unset") for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, python {platform.python_version()}, "
          f"numpy {np.__version__}, BLAS threads env {threads}")
    print(f"# {args.states} sampled feasible states per problem (seed 0), float64, median of {args.repeats} runs")
    head = (f"{'problem':<24} {'m':>4} {'n_z':>4} {'exact [st/s]':>13} {'DAQP [st/s]':>12} {'OSQP [st/s]':>12} "
            f"{'exact/DAQP':>10} {'max|U-U_daqp|':>14} {'max|U-U_osqp|':>14} {'fallback %':>10}")
    print(head)
    print("-" * len(head))
    rows = []
    for name, (prob, X) in cases.items():
        if X is None:
            print(f"  sampling {name} ...", file=sys.stderr, flush=True)
            X = mpc2nn.sample_states(prob, args.states, seed=0)
        t_net, sol = timed(lambda net, X=X: net.solve(X), args.repeats,
                           setup=lambda prob=prob: mpc2nn.compile(prob))
        print(f"  DAQP {name} ...", file=sys.stderr, flush=True)
        t_daqp, dq = timed(lambda _, prob=prob, X=X: mpc2nn.solve_daqp(prob, X), args.repeats)
        print(f"  OSQP {name} ...", file=sys.stderr, flush=True)
        t_osqp, oq = timed(lambda _, prob=prob, X=X: mpc2nn.solve_osqp(prob, X), 1)
        ok = oq.status == "solved"
        row = dict(problem=name, m=int(sol.y.shape[1]), n_z=int(mpc2nn.qp.as_qp(prob).n_z), states=args.states,
                   exact_states_per_s=args.states / t_net, daqp_states_per_s=args.states / t_daqp,
                   osqp_states_per_s=args.states / t_osqp,
                   err_daqp=float(np.abs(sol.U - dq.U).max()),
                   err_osqp=float(np.abs(sol.U[ok] - oq.U[ok]).max()), osqp_unconverged=int((~ok).sum()),
                   all_certified=bool((sol.status == "solved").all()),
                   fallback_fraction=float((sol.method == "dual active set").mean()))
        rows.append(row)
        print(f"{name:<24} {row['m']:>4} {row['n_z']:>4} {row['exact_states_per_s']:>13.0f} "
              f"{row['daqp_states_per_s']:>12.0f} {row['osqp_states_per_s']:>12.0f} "
              f"{row['exact_states_per_s'] / row['daqp_states_per_s']:>10.2f} {row['err_daqp']:>14.2e} "
              f"{row['err_osqp']:>14.2e} {100 * row['fallback_fraction']:>10.1f}", flush=True)
    if any(r["osqp_unconverged"] for r in rows):
        print("# OSQP did not converge at 1e-10 on: " + ", ".join(
            f"{r['problem']} ({r['osqp_unconverged']})" for r in rows if r["osqp_unconverged"])
              + " states (left out of its error column)")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
