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
the max errors ``‖U - U_ref‖∞``. Usage::

    python benchmarks/exact_solve.py [--states 2000] [--repeats 3] [--json out.json]
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


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--states", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--problems", nargs="*", default=None, help="names (default: all public problems)")
    ap.add_argument("--json", default=None, help="write the results to this JSON file")
    args = ap.parse_args(argv)
    problems = mpc2nn.systems.all_problems()
    names = args.problems or list(problems)
    threads = {k: os.environ.get(k, "unset") for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, python {platform.python_version()}, "
          f"numpy {np.__version__}, BLAS threads env {threads}")
    print(f"# {args.states} sampled feasible states per problem (seed 0), float64, median of {args.repeats} runs")
    head = (f"{'problem':<24} {'m':>4} {'n_U':>4} {'exact [st/s]':>13} {'DAQP [st/s]':>12} {'OSQP [st/s]':>12} "
            f"{'exact/DAQP':>10} {'max|U-U_daqp|':>14} {'max|U-U_osqp|':>14} {'fallback %':>10}")
    print(head)
    print("-" * len(head))
    rows = []
    for name in names:
        prob = problems[name]()
        print(f"  sampling {name} ...", file=sys.stderr, flush=True)
        X = mpc2nn.sample_states(prob, args.states, seed=0)
        t_net, sol = timed(lambda net: net.solve(X), args.repeats, setup=lambda: mpc2nn.compile(prob))
        print(f"  DAQP {name} ...", file=sys.stderr, flush=True)
        t_daqp, dq = timed(lambda _: mpc2nn.solve_daqp(prob, X), args.repeats)
        print(f"  OSQP {name} ...", file=sys.stderr, flush=True)
        t_osqp, oq = timed(lambda _: mpc2nn.solve_osqp(prob, X), 1)
        ok = oq.status == "solved"
        row = dict(problem=name, m=int(sol.y.shape[1]), n_U=int(sol.U.shape[1]), states=args.states,
                   exact_states_per_s=args.states / t_net, daqp_states_per_s=args.states / t_daqp,
                   osqp_states_per_s=args.states / t_osqp,
                   err_daqp=float(np.abs(sol.U - dq.U).max()),
                   err_osqp=float(np.abs(sol.U[ok] - oq.U[ok]).max()), osqp_unconverged=int((~ok).sum()),
                   all_certified=bool((sol.status == "solved").all()),
                   fallback_fraction=float((sol.method == "dual active set").mean()))
        rows.append(row)
        print(f"{name:<24} {row['m']:>4} {row['n_U']:>4} {row['exact_states_per_s']:>13.0f} "
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
