"""Critical-region enumeration (``mpc2nn.critical_regions``) against PPOPT on the same mpQPs.

For each public problem and for random stable and unstable systems (2-4 states, 1-2 inputs), in the
same run:

* ``mpc2nn.critical_regions`` over the problem's sample box (budget ``--max-regions``,
  ``--time-limit``): regions, completeness (the certificate), first-input pieces, enumeration
  time, and the max error of ``Partition.evaluate`` against DAQP on held-out feasible states;
* PPOPT (``pip install 'mpc2nn[ppopt]'``; skipped when absent) on the same mpQP and domain, each of
  ``--ppopt-algorithms`` in a child process killed after ``--ppopt-timeout`` seconds; its fastest
  finished algorithm is the peer of the ratio column. Note: PPOPT requires gurobipy, which installs
  Gurobi's size-limited non-production licence; mpc2nn never needs it.

``--growth`` adds how regions and pieces grow with the horizon (double integrator N = 5..40) and the
state dimension (random systems).

The second table is the exact first-input network (``mpc2nn.exact_network``, needs torch) of every
complete partition with at most ``--network-max-regions`` regions: whether its certificate is proven,
depth, width, nonzero parameters, flops per state, build and certificate times, the max error against
DAQP on ``--network-states`` held-out feasible states (seed 8, apart from the enumeration's seeds), the
throughput at batch ``--batch`` (float64, numpy evaluation and the torch module) against DAQP one state
at a time (``mpc2nn.solve_daqp``'s loop over the same held-out states, its Python interface included),
and the single-state latency (median of 200 calls of ``evaluate`` on one state). The comparison with the
best unrolled network is not part of this script. Usage::

    python benchmarks/exact_explicit.py [--small] [--growth] [--no-ppopt] [--no-network] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import sys
import time

import numpy as np

import mpc2nn

#: PPOPT's algorithms tried by default: the two fastest on the paper's example (geometric 1.9 s,
#: graph 4.7 s; combinatorial took 125 s there).
PPOPT_ALGORITHMS = ("geometric", "graph")


def random_system(n_x: int, n_u: int, unstable: bool, seed: int, horizon: int = 5) -> mpc2nn.MPCProblem:
    """A random system scaled to spectral radius 1.2 (unstable) or 0.8, input bounds ±0.5, state bounds ±5,
    over the box ±3 of the states.
    """
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(n_x, n_x))
    A *= (1.2 if unstable else 0.8) / max(abs(np.linalg.eigvals(A)))
    B = rng.normal(size=(n_x, n_u))
    return mpc2nn.MPCProblem(A, B, np.eye(n_x), 0.1 * np.eye(n_u), horizon, P="dare", u_min=-0.5 * np.ones(n_u),
                             u_max=0.5 * np.ones(n_u), x_min=-5 * np.ones(n_x), x_max=5 * np.ones(n_x),
                             name=f"random {'unstable' if unstable else 'stable'} n_x={n_x} n_u={n_u} N={horizon}",
                             sample_box=(-3 * np.ones(n_x), 3 * np.ones(n_x)))


def cases(small: bool) -> dict:
    probs = mpc2nn.systems.all_problems()
    names = (["drummond2024_published", "drummond2024_corrected", "double_integrator"] if small else list(probs))
    out = {name: probs[name]() for name in names}
    systems = [(2, 1), (3, 2)] if small else [(2, 1), (2, 2), (3, 1), (3, 2), (4, 1), (4, 2)]
    for k, (n_x, n_u) in enumerate(systems):
        for unstable in (False, True):
            p = random_system(n_x, n_u, unstable, seed=100 + 2 * k + unstable)
            out[p.name] = p
    return out


def _ppopt_child(arrays, algorithm, queue):
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # PPOPT and Gurobi print to stdout; keep the table clean
    from ppopt.mp_solvers.solve_mpqp import mpqp_algorithm, solve_mpqp
    from ppopt.mpqp_program import MPQP_Program

    G, w, F, H, D, d, E = arrays
    prog = MPQP_Program(G, w[:, None], np.zeros((H.shape[0], 1)), F, H, D, d[:, None], E)
    t0 = time.perf_counter()
    sol = solve_mpqp(prog, getattr(mpqp_algorithm, algorithm))
    queue.put((len(sol.critical_regions), time.perf_counter() - t0))


def run_ppopt(part, algorithm: str, timeout: float):
    """``(regions, seconds)`` of one PPOPT algorithm on the partition's mpQP and domain, or ``None`` on timeout."""
    qp, dom = part.qp, part.domain
    arrays = tuple(np.array(a, float) for a in (qp.G, qp.w, qp.F, qp.H, dom.C, dom.d, qp.E))
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    proc = ctx.Process(target=_ppopt_child, args=(arrays, algorithm, queue))
    proc.start()
    proc.join(timeout)
    if proc.is_alive():
        proc.terminate()
        proc.join()
        return None
    return queue.get() if not queue.empty() else None


def max_error_vs_daqp(part, problem, n: int, seed: int) -> float:
    """Max ``‖U - U_daqp‖∞`` of ``Partition.evaluate`` on ``n`` held-out feasible states (located ones)."""
    X = mpc2nn.sample_states(problem, n, seed=seed)
    ref = mpc2nn.solve_daqp(problem, X)
    U = part.evaluate(X, "U")
    ok = ~np.isnan(U).any(axis=1)
    return float(np.abs(U[ok] - ref.U[ok]).max(initial=0.0)) if ok.any() else float("nan")


def network_row(name: str, part, problem, args) -> dict:
    """The exact first-input network of a complete partition: size, proof, error vs DAQP, throughput."""
    import torch

    t0 = time.perf_counter()
    net = mpc2nn.exact_network(part, "u0")
    t_build = time.perf_counter() - t0
    cert = net.certify()
    X = mpc2nn.sample_states(problem, args.network_states, seed=8)
    t0 = time.perf_counter()
    ref = mpc2nn.solve_daqp(problem, X)
    t_daqp = (time.perf_counter() - t0) / X.shape[0]
    ok = ref.feasible
    Y = net.evaluate(X)
    err = float(np.abs(Y[ok] - ref.U[ok, :part.qp.n_u]).max(initial=0.0))
    reps = max(1, args.batch // X.shape[0]) if X.shape[0] < args.batch else 1
    XB = np.tile(X, (reps, 1))[:args.batch]
    net.evaluate(XB[:10])
    t_np = min(_timed(lambda: net.evaluate(XB)) for _ in range(3)) / XB.shape[0]
    xt = torch.as_tensor(XB)
    with torch.no_grad():
        t_torch = min(_timed(lambda: net(xt)) for _ in range(3)) / XB.shape[0]
    x1 = X[:1]
    single = np.median([_timed(lambda: net.evaluate(x1)) for _ in range(200)])
    return dict(problem=name, regions=part.n_regions, terms=net.lattice.n_terms, proven=cert.proven,
                cert_status=cert.status, cert_margin=cert.max_margin, cert_lps=cert.n_lps,
                cert_seconds=cert.elapsed, build_seconds=t_build, depth=net.depth, width=net.width,
                params=net.n_params, flops=net.flops, states=int(ok.sum()), err_daqp=err,
                daqp_us=1e6 * t_daqp, numpy_us=1e6 * t_np, torch_us=1e6 * t_torch, single_us=1e6 * single,
                speedup_numpy=t_daqp / t_np, speedup_torch=t_daqp / t_torch, batch=int(XB.shape[0]))


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def network_table(parts: dict, args) -> list[dict]:
    print(f"\n# exact first-input networks (float64; held-out DAQP states: {args.network_states}, seed 8; "
          f"throughput at batch {args.batch}; DAQP one state at a time)")
    head = (f"{'problem':<40} {'terms':>5} {'proven':>6} {'depth':>5} {'width':>6} {'params':>8} {'flops':>8} "
            f"{'build [s]':>9} {'cert [s]':>8} {'max|u0-daqp|':>12} {'net [µs]':>9} {'torch [µs]':>10} "
            f"{'DAQP [µs]':>9} {'speed-up':>8} {'1 state [µs]':>12}")
    print(head)
    print("-" * len(head))
    rows = []
    for name, (part, prob) in parts.items():
        if not part.complete or part.n_regions > args.network_max_regions:
            why = "incomplete partition" if not part.complete else f"{part.n_regions} regions > budget"
            print(f"{name:<40} skipped: {why}")
            continue
        r = network_row(name, part, prob, args)
        rows.append(r)
        print(f"{name:<40} {r['terms']:>5} {str(r['proven']):>6} {r['depth']:>5} {r['width']:>6} {r['params']:>8} "
              f"{r['flops']:>8} {r['build_seconds']:>9.2f} {r['cert_seconds']:>8.2f} {r['err_daqp']:>12.2e} "
              f"{r['numpy_us']:>9.3f} {r['torch_us']:>10.3f} {r['daqp_us']:>9.1f} {r['speedup_numpy']:>8.0f} "
              f"{r['single_us']:>12.1f}", flush=True)
    if rows:
        worst = min(rows, key=lambda r: r["speedup_numpy"])
        print(f"# worst case: max error {max(r['err_daqp'] for r in rows):.2e}; speed-up over DAQP (numpy path) "
              f"{worst['speedup_numpy']:.0f}x ({worst['problem']}); deepest {max(r['depth'] for r in rows)}; "
              f"proven on {sum(r['proven'] for r in rows)} of {len(rows)}")
    return rows


def growth_rows(args) -> list[dict]:
    rows = []
    di = mpc2nn.systems.double_integrator()
    variants = [(f"double_integrator N={N}", di.replace(horizon=N)) for N in (5, 10, 20, 40)]
    for n_x in (2, 3, 4):
        for N in (3, 5, 8):
            p = random_system(n_x, 1, True, seed=200 + n_x, horizon=N)
            variants.append((p.name, p))
    for name, prob in variants:
        part = mpc2nn.critical_regions(prob, max_regions=args.max_regions, time_limit=args.time_limit)
        rows.append(dict(problem=name, n_x=prob.n_x, horizon=prob.horizon, regions=part.n_regions,
                         pieces=part.pieces.n_pieces, complete=part.complete, seconds=part.elapsed))
        print(f"{name:<40} {prob.n_x:>3} {prob.horizon:>3} {part.n_regions:>8} {part.pieces.n_pieces:>7} "
              f"{str(part.complete):>8} {part.elapsed:>8.2f}", flush=True)
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", action="store_true", help="three public problems and four random systems")
    ap.add_argument("--growth", action="store_true", help="also: regions and pieces against horizon and n_x")
    ap.add_argument("--no-ppopt", action="store_true", help="leave PPOPT out even where installed")
    ap.add_argument("--ppopt-algorithms", nargs="*", default=list(PPOPT_ALGORITHMS))
    ap.add_argument("--ppopt-timeout", type=float, default=600.0, help="seconds per PPOPT algorithm and problem")
    ap.add_argument("--max-regions", type=int, default=5000)
    ap.add_argument("--time-limit", type=float, default=300.0, help="seconds per enumeration")
    ap.add_argument("--states", type=int, default=2000, help="held-out states for the DAQP comparison")
    ap.add_argument("--problems", nargs="*", default=None, help="names (default: all cases)")
    ap.add_argument("--no-network", action="store_true", help="leave the exact-network table out")
    ap.add_argument("--network-max-regions", type=int, default=2000, help="largest partition given a network")
    ap.add_argument("--network-states", type=int, default=None,
                    help="held-out states for the network's DAQP comparison (default 100000, --small 2000)")
    ap.add_argument("--batch", type=int, default=10_000, help="batch size of the throughput measurement")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    if args.network_states is None:
        args.network_states = 2000 if args.small else 100_000
    try:
        import ppopt  # noqa: F401

        have_ppopt = not args.no_ppopt
    except ImportError:
        have_ppopt = False
    try:
        import daqp  # noqa: F401

        have_daqp = True
    except ImportError:
        have_daqp = False
    threads = {k: os.environ.get(k, "unset") for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, python {platform.python_version()}, "
          f"numpy {np.__version__}, BLAS threads env {threads}, float64")
    print(f"# critical_regions budget: {args.max_regions} regions, {args.time_limit:g} s; PPOPT: "
          + (f"{', '.join(args.ppopt_algorithms)}, {args.ppopt_timeout:g} s each" if have_ppopt else "not run")
          + (f"; DAQP check on {args.states} held-out feasible states (seed 7)" if have_daqp else ""))
    head = (f"{'problem':<40} {'n_θ':>3} {'m':>4} {'regions':>8} {'complete':>8} {'pieces':>6} {'time [s]':>9} "
            f"{'max|U-U_daqp|':>13} {'PPOPT best':>18} {'PPOPT [s]':>9} {'speed-up':>8}")
    print(head)
    print("-" * len(head))
    rows = []
    parts = {}
    todo = cases(args.small)
    if args.problems:
        todo = {k: v for k, v in todo.items() if k in args.problems}
    for name, prob in todo.items():
        part = mpc2nn.critical_regions(prob, max_regions=args.max_regions, time_limit=args.time_limit)
        parts[name] = (part, prob)
        err = max_error_vs_daqp(part, prob, args.states, 7) if have_daqp else float("nan")
        peer = {}
        if have_ppopt and part.complete:
            for algo in args.ppopt_algorithms:
                print(f"  PPOPT {algo} on {name} ...", file=sys.stderr, flush=True)
                res = run_ppopt(part, algo, args.ppopt_timeout)
                peer[algo] = None if res is None else dict(regions=res[0], seconds=res[1])
        done = {a: r for a, r in peer.items() if r is not None}
        best = min(done, key=lambda a: done[a]["seconds"]) if done else None
        row = dict(problem=name, n_theta=part.n_theta, m=part.qp.m, regions=part.n_regions, complete=part.complete,
                   status=part.status, pieces=part.pieces.n_pieces, seconds=part.elapsed, n_open=part.n_open,
                   n_lps=part.n_lps, n_solves=part.n_solves, err_daqp=err, ppopt=peer, ppopt_best=best,
                   speedup=(done[best]["seconds"] / part.elapsed) if best else None, reason=part.reason)
        rows.append(row)
        ptxt = "-" if best is None else f"{best} ({done[best]['regions']})"
        if have_ppopt and part.complete and not done:
            ptxt = "timed out"
        print(f"{name:<40} {part.n_theta:>3} {part.qp.m:>4} {part.n_regions:>8} {str(part.complete):>8} "
              f"{part.pieces.n_pieces:>6} {part.elapsed:>9.2f} {err:>13.2e} {ptxt:>18} "
              f"{(done[best]['seconds'] if best else float('nan')):>9.2f} "
              f"{(row['speedup'] if best else float('nan')):>8.1f}", flush=True)
    ratios = [r["speedup"] for r in rows if r["speedup"] is not None]
    if ratios:
        print(f"# speed-up over PPOPT's fastest finished algorithm: worst {min(ratios):.1f}x, "
              f"median {float(np.median(ratios)):.1f}x over {len(ratios)} problems both finished")
    differ = [r["problem"] for r in rows if r["ppopt_best"] and r["ppopt"][r["ppopt_best"]]["regions"] != r["regions"]]
    if differ:
        print("# region counts differ from PPOPT on: " + ", ".join(differ))
    for r in rows:
        if not r["complete"]:
            print(f"# {r['problem']}: {r['reason']}")
    out = dict(rows=rows)
    if not args.no_network and have_daqp:
        try:
            import torch  # noqa: F401

            out["networks"] = network_table(parts, args)
        except ImportError:
            print("# exact networks: torch is not installed (pip install 'mpc2nn[torch]')")
    if args.growth:
        print(f"\n{'growth':<40} {'n_x':>3} {'N':>3} {'regions':>8} {'pieces':>7} {'complete':>8} {'time [s]':>8}")
        out["growth"] = growth_rows(args)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=1, default=float)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
