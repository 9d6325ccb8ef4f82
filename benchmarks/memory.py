"""Peak memory and throughput of the exact batched solve for 10⁴ … 10⁶ states.

For each batch size, on the double integrator (and ``--problems``), the states
are drawn uniformly from the sample box (feasible and infeasible mixed, seeded)
and solved twice: once timed (wall clock, ``time.perf_counter``), once under
``tracemalloc`` for the peak of the memory numpy allocates during the call. The
table gives the peak beyond the result arrays (what chunking bounds), the result
arrays themselves, and states/s. Usage::

    python benchmarks/memory.py [--sizes 10000 100000 1000000] [--small] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import tracemalloc

import numpy as np

import mpc2nn


def result_bytes(sol) -> int:
    """Bytes of the arrays an ImplicitSolution returns."""
    arrays = [sol.U, sol.y, sol.slack, sol.feasible, sol.status, sol.reason, sol.fixed_point_residual,
              sol.fixed_point_scale, sol.iterations, sol.method]
    arrays += [getattr(sol.kkt, f) for f in ("stationarity", "primal", "dual", "complementarity", "scale",
                                              "relative_stationarity", "relative_primal", "relative_dual",
                                              "relative_complementarity")]
    return int(sum(a.nbytes for a in arrays))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="*", default=None, help="batch sizes (default 1e4 1e5 1e6)")
    ap.add_argument("--problems", nargs="*", default=["double_integrator"], help="public problem names")
    ap.add_argument("--small", action="store_true", help="sizes 1e3 and 1e4 (smoke test)")
    ap.add_argument("--json", default=None, help="write the results to this JSON file")
    args = ap.parse_args(argv)
    sizes = args.sizes or ([1_000, 10_000] if args.small else [10_000, 100_000, 1_000_000])
    threads = {k: os.environ.get(k, "unset") for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, numpy {np.__version__}, "
          f"BLAS threads env {threads}; float64; states uniform in the sample box (seed 0)")
    head = (f"{'problem':<20} {'states':>9} {'chunk':>6} {'states/s':>10} {'peak beyond results [MiB]':>26} "
            f"{'results [MiB]':>14} {'per state [B]':>13}")
    print(head + "\n" + "-" * len(head))
    rows = []
    for name in args.problems:
        prob = mpc2nn.systems.all_problems()[name]()
        net = mpc2nn.compile(prob)
        lo, hi = (np.asarray(b, float) for b in net.qp.sample_box)
        net.solve(lo + (hi - lo) * np.random.default_rng(1).random((1000, net.qp.n_x)))  # warm the set cache
        for n in sizes:
            X = lo + (hi - lo) * np.random.default_rng(0).random((n, net.qp.n_x))
            t0 = time.perf_counter()
            sol = net.solve(X)
            dt = time.perf_counter() - t0
            del sol
            tracemalloc.start()
            sol = net.solve(X)
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            res = result_bytes(sol)
            row = dict(problem=name, states=n, chunk=net.chunk_size(), states_per_s=n / dt,
                       peak_beyond_results_bytes=peak - res, result_bytes=res,
                       statuses={str(k): int(v) for k, v in
                                 zip(*np.unique(sol.status, return_counts=True), strict=True)})
            rows.append(row)
            print(f"{name:<20} {n:>9} {row['chunk']:>6} {row['states_per_s']:>10.0f} "
                  f"{(peak - res) / 2**20:>26.1f} {res / 2**20:>14.1f} {res / n:>13.0f}", flush=True)
            del sol, X
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
