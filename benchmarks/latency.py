"""Single-state latency of explicit networks: the lean path against the torch forward and DAQP's single call.

For each problem — the six public ones and seeded random systems of ``benchmarks/exact_solve.py`` — sample
feasible θ (seed 0), build the unrolled networks ``mpc2nn.unravel(net, depth=J)`` (default construction,
ADMM, tuned on its own sampled states) for each ``--depths`` and, where the critical-region enumeration
completes within ``--exact-time-limit`` seconds, the exact network ``mpc2nn.exact_network`` of the first
input; then time, one state per call, in the same run on the same states, the calls interleaved state by
state in a seeded random order (so that a load change or a cold cache hits every column alike):

* ``ctrl``: ``mpc2nn.ExplicitController(law)(x)`` (with ``u_prev=`` where the QP takes it), what a closed
  loop (``mpc2nn.simulate``) pays per step; ``warm``: the same with ``warm_start=True`` (layer state carried);
* ``evaluate``: ``law.evaluate(θ)`` on one θ (the lean path: a numba kernel with the ``fast`` extra);
* ``numpy``: the lean path without numba (``FastLayers.run(..., compiled=False)``, for exact networks
  ``Program.evaluate``), what an installation without the ``fast`` extra gets (kernel call only);
* ``torch``: the module's forward under ``torch.no_grad()`` on a (1, n_θ) tensor (what ``evaluate`` ran
  before the lean path), the peer;
* ``DAQP``: ``mpc2nn.solve_daqp(qp, θ[None])``, the exact solve's single call, the peer of the issue's goal.

Prints median and 99th percentile in µs, the ratio ctrl ÷ DAQP (medians), the largest difference between the
lean path and the torch forward (relative to max(1, |U|)), and the worst case over the problems per law.
Float64, batch 1, one thread as set by the environment variables printed in the header (torch's own thread
count is set to 1). Usage::

    python benchmarks/latency.py [--small] [--depths 10 30 100] [--states 200] [--problems ...]
                                 [--no-exact] [--exact-time-limit 60] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

import mpc2nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from exact_solve import _sample, random_cases

#: The issue's goal for one state of an explicit network on the public problems.
GOAL_US = 50.0
#: Calls before the timed ones (caches, branch predictors, the kernel's first dispatch).
WARMUP = 20
#: Largest θ dimension whose critical regions are enumerated for an exact network (above 6 dimensions the
#: enumeration of the 12-state public problems stops at its time budget, docs/benchmarks.rst).
EXACT_MAX_THETA = 6


def _split(qp, theta):
    """``(x, keywords)`` of one θ for a controller (``u_prev=`` where the QP takes it)."""
    sizes = dict(qp.parameter_sizes)
    x = theta[:sizes["x"]]
    kw = {}
    if "u_prev" in sizes:
        kw["u_prev"] = theta[sizes["x"]:sizes["x"] + sizes["u_prev"]]
    return x, kw


def _time_calls(calls: dict, n: int) -> dict:
    """Per-call seconds ``{name: (n,) array}``; ``fn(i)`` for state ``i``, every name once per state, interleaved
    in a seeded random order.
    """
    for fn in calls.values():
        for i in range(min(WARMUP, n)):
            fn(i)
    out = {k: np.empty(n) for k in calls}
    names = list(calls)
    order = np.random.default_rng(0)
    for i in range(n):
        for k in order.permutation(names):  # a fresh order per state: no column always follows another
            fn = calls[k]
            t0 = time.perf_counter()
            fn(i)
            out[k][i] = time.perf_counter() - t0
    return out


def _law_calls(law, qp, states, torch):
    """The timed calls ``fn(i)`` of one explicit law on ``states`` (see the module docstring)."""
    ctrl = mpc2nn.ExplicitController(law)
    warm = mpc2nn.ExplicitController(law, warm_start=True)
    split = [_split(qp, theta) for theta in states]  # what a closed loop hands the controller
    rows = [theta.copy() for theta in states]  # one (n_θ,) array per call, as a caller has it
    tensors = [torch.as_tensor(theta[None, :]) for theta in states]
    if isinstance(law, mpc2nn.ExactNetwork):
        prog = law.program()

        def numpy_path(i):
            return prog.evaluate(rows[i][None, :])
    else:
        fast = law.fast_layers()

        def numpy_path(i):
            return fast.run(rows[i][None, :], law.depth, compiled=False)

    def forward(i):
        with torch.no_grad():
            return law(tensors[i])

    return {"ctrl": lambda i: ctrl(split[i][0], **split[i][1]), "warm": lambda i: warm(split[i][0], **split[i][1]),
            "evaluate": lambda i: law.evaluate(rows[i]), "numpy": numpy_path, "torch": forward,
            "daqp": lambda i: mpc2nn.solve_daqp(qp, rows[i][None, :])}


def _row(name, label, law, qp, states, torch) -> dict:
    times = _time_calls(_law_calls(law, qp, states, torch), states.shape[0])
    with torch.no_grad():
        ref = law(torch.as_tensor(states)).numpy()
    lean = np.vstack([law.evaluate(theta) for theta in states])
    diff = float(np.max(np.abs(lean - ref)) / max(1.0, float(np.max(np.abs(ref)))))
    us = {k: dict(p50=1e6 * float(np.median(v)), p99=1e6 * float(np.percentile(v, 99))) for k, v in times.items()}
    size = int(qp.m) if not isinstance(law, mpc2nn.ExactNetwork) else int(law.Wt.shape[1])
    return dict(problem=name, law=label, n_theta=int(qp.n_theta), size=size, depth=int(law.depth),
                states=int(states.shape[0]), us=us, ctrl_over_daqp=us["ctrl"]["p50"] / us["daqp"]["p50"],
                lean_vs_torch=diff)


def _print_row(r):
    u = r["us"]
    cells = " ".join(f"{u[k]['p50']:>6.1f}/{u[k]['p99']:<7.1f}" for k in ("ctrl", "warm", "evaluate", "numpy",
                                                                          "torch", "daqp"))
    print(f"{r['problem']:<30} {r['law']:<10} {r['n_theta']:>3} {r['size']:>5} {cells} {r['ctrl_over_daqp']:>8.2f} "
          f"{r['lean_vs_torch']:>9.1e}", flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--states", type=int, default=None, help="states per problem (default 200; --small: 30)")
    ap.add_argument("--depths", type=int, nargs="*", default=None, help="unrolled depths (default 10 30 100)")
    ap.add_argument("--problems", nargs="*", default=None, help="names (default: public problems and random systems)")
    ap.add_argument("--small", action="store_true", help="few states, depth 10, two random systems (smoke test)")
    ap.add_argument("--no-exact", action="store_true", help="leave the exact networks out")
    ap.add_argument("--exact-time-limit", type=float, default=None,
                    help="seconds of critical-region enumeration per problem (default 60; --small: 5)")
    ap.add_argument("--json", default=None, help="write the results to this JSON file")
    ap.add_argument("--table", default=None, help="write the page-width table of the docs (medians) to this file")
    ap.add_argument("--from-json", default=None, help="measure nothing: write --table from an earlier run's --json")
    args = ap.parse_args(argv)
    if args.from_json:
        with open(args.from_json) as fh:
            data = json.load(fh)
        if args.table:
            with open(args.table, "w") as fh:
                fh.write(compact_table(data["rows"]))
        return 0
    import torch

    torch.set_num_threads(1)
    from mpc2nn.explicit import FAST_MAX_BATCH, JIT_MAX_BATCH, kernels_available

    n_states = args.states or (30 if args.small else 200)
    depths = args.depths or ([10] if args.small else [10, 30, 100])
    t_limit = args.exact_time_limit or (5.0 if args.small else 60.0)
    cases = {name: make() for name, make in mpc2nn.systems.all_problems().items()}
    public = set(cases)
    cases.update(random_cases(args.small))
    if args.problems:
        cases = {k: v for k, v in cases.items() if k in args.problems}
    threads = {k: os.environ.get(k, "unset") for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, python {platform.python_version()}, "
          f"numpy {np.__version__}, torch {torch.__version__} (1 thread), BLAS threads env {threads}")
    print(f"# {n_states} sampled feasible θ per problem (seed 0), float64, batch 1, wall clock µs p50/p99; numba "
          f"kernel {'on' if kernels_available() else 'OFF (not installed or MPC2NN_NO_NUMBA)'} (batches <= "
          f"{JIT_MAX_BATCH}; lean path <= {FAST_MAX_BATCH}); unrolled: ADMM (tuned), depths {depths}")
    head = (f"{'problem':<30} {'law':<10} {'n_θ':>3} {'m/tm':>5} {'ctrl':>14} {'warm':>14} {'evaluate':>14} "
            f"{'numpy':>14} {'torch':>14} {'DAQP':>14} {'ctrl/DAQP':>8} {'|lean-t|':>9}")
    print(head + "\n" + "-" * len(head))
    rows, skipped = [], []
    first = True
    for name, prob in cases.items():
        qp = mpc2nn.qp.as_qp(prob)
        print(f"  sampling {name} ...", file=sys.stderr, flush=True)
        states = _sample(prob, n_states)
        net = mpc2nn.compile(qp)
        laws = []
        for J in depths:
            laws.append((f"admm J={J}", mpc2nn.unravel(net, depth=J)))
        if not args.no_exact:
            if qp.n_theta > EXACT_MAX_THETA:
                skipped.append(f"{name}: exact network not built (n_θ = {qp.n_theta} > {EXACT_MAX_THETA}; the "
                               "enumeration stops at its time budget there)")
            else:
                box = None
                if set(dict(qp.parameter_sizes)) == {"x", "u_prev"}:  # u_prev within the input bounds
                    box = qp.layout.box(prob.sample_box, u_box=(prob.u_min, prob.u_max))
                part = mpc2nn.critical_regions(prob, box=box, max_regions=5000, time_limit=t_limit)
                if part.complete:
                    laws.append(("exact", mpc2nn.exact_network(part)))
                else:
                    skipped.append(f"{name}: exact network not built ({part.reason})")
        for label, law in laws:
            if first:
                t0 = time.perf_counter()
                law.evaluate(states[0])
                print(f"# first lean call of the run (numba JIT or cache load included): "
                      f"{time.perf_counter() - t0:.2f} s", flush=True)
                first = False
            row = _row(name, label, law, qp, states, torch)
            row["public"] = name in public
            rows.append(row)
            _print_row(row)
    for s in skipped:
        print("# " + s)
    if rows:
        print(f"# worst case over the public problems (ctrl p50 / p99 µs; goal <= {GOAL_US:g} µs per state):")
        for label in dict.fromkeys(r["law"] for r in rows):
            sel = [r for r in rows if r["law"] == label and r["public"]] or [r for r in rows if r["law"] == label]
            w50 = max(sel, key=lambda r: r["us"]["ctrl"]["p50"])
            w99 = max(sel, key=lambda r: r["us"]["ctrl"]["p99"])
            ok = sum(r["us"]["ctrl"]["p50"] <= GOAL_US for r in sel)
            print(f"#   {label:<10} p50 {w50['us']['ctrl']['p50']:.1f} ({w50['problem']}), p99 "
                  f"{w99['us']['ctrl']['p99']:.1f} ({w99['problem']}); p50 <= {GOAL_US:g} µs on {ok} of {len(sel)}; "
                  f"torch p50 worst {max(r['us']['torch']['p50'] for r in sel):.1f}; ctrl/DAQP worst "
                  f"{max(r['ctrl_over_daqp'] for r in sel):.2f}; |lean - torch| worst "
                  f"{max(r['lean_vs_torch'] for r in sel):.1e}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(dict(rows=rows, skipped=skipped, numba=kernels_available()), fh, indent=1)
    if args.table and rows:
        with open(args.table, "w") as fh:
            fh.write(compact_table(rows))
    return 0


def compact_table(rows: list) -> str:
    """The page-width table of the docs: median µs per single state of each path and the ratio to DAQP."""
    head = (f"{'problem':<28} {'law':<10} {'n_θ':>3} {'m':>4} {'ctrl':>7} {'warm':>7} {'evaluate':>8} {'numpy':>7} "
            f"{'torch':>7} {'DAQP':>6} {'ctrl/DAQP':>9}")
    out = ["# median µs per call, one state (batch 1), float64; ctrl = ExplicitController(law)(x), warm = with",
           "# warm_start=True, evaluate = law.evaluate, numpy = the lean path without numba, torch = the module's",
           "# forward, DAQP = mpc2nn.solve_daqp(qp, θ[None]); 99th percentiles in the --json output",
           head, "-" * len(head)]
    for r in rows:
        us = {k: v["p50"] for k, v in r["us"].items()}
        out.append(f"{r['problem'][:28]:<28} {r['law']:<10} {r['n_theta']:>3} {r['size']:>4} {us['ctrl']:>7.1f} "
                   f"{us['warm']:>7.1f} {us['evaluate']:>8.1f} {us['numpy']:>7.1f} {us['torch']:>7.0f} "
                   f"{us['daqp']:>6.0f} {r['ctrl_over_daqp']:>9.2f}")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
