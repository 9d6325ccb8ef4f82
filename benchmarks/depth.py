"""Depth needed by each unravelled construction for max error 1e-3 and 1e-6, hybrid certified
fractions, and throughput against DAQP and OSQP, on every public problem.

Usage::

    python benchmarks/depth.py [--small] [--json PATH] [--plot PATH] [--problems NAME ...]

Accuracy is measured on ``n_test`` feasible states (seed 1) that no construction
was tuned on; tuning (ρ of the ADMM unrolls, β of the momentum layers, the depth
of each construction) uses ``n_tune`` other states (seed 2). Errors are
``max over states of ‖U - U*‖∞`` with ``U*`` from the certified exact solver.
Throughput: median of 5 runs, float64, batch 10⁴ (the test states tiled), torch
threads as printed; DAQP and OSQP solve the test states one by one in the same run
(wall-clock time of the whole loop).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import torch

import mpc2nn
from mpc2nn.explicit import error_curve, first_depth, throughput, unravel
from mpc2nn.sampling import sample_feasible


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def depths(curve: np.ndarray, tols=(1e-3, 1e-6)) -> list:
    return [first_depth(curve, t) for t in tols]


def bench_problem(name: str, ctor, n_test: int, n_tune: int, cap: int, hybrid_depths, batch: int) -> dict:
    problem = ctor()
    net = mpc2nn.compile(problem)
    qp = net.qp
    box = qp.sample_box
    X, U = sample_feasible(net, box, n_test, seed=1)
    Xt, _ = sample_feasible(net, box, n_tune, seed=2)
    out = {"name": name, "m": qp.m, "n_U": qp.n_U, "n_x": qp.n_x, "curves": {}, "params": {}}

    def record(label, model, limit):
        t0 = time.perf_counter()
        curve = error_curve(model, X, U, limit, 1e-6)
        out["curves"][label] = curve.tolist()
        d3, d6 = depths(curve)
        log(f"  {name}: {label:28s} d(1e-3)={d3} d(1e-6)={d6} final {curve[-1]:.1e} "
            f"({time.perf_counter() - t0:.1f}s)")
        return d6

    log(f"{name}: m={qp.m}, n_U={qp.n_U}")
    # (a) the paper's plain form with alpha = 1/λmax(M)
    record("(a) plain, α=1/λmax", unravel(net, depth=1, method="paper"), cap)
    if name == "drummond2024_published":
        net1 = mpc2nn.compile(problem, alpha=1.0)
        record("paper settings α=1, K=0", unravel(net1, depth=1, method="paper"), cap)
    # (b) OSQP-style ADMM unroll, relaxation 1.6, best fixed ρ of the ladder (chosen on the tuning states)
    b = unravel(net, tol=1e-6, method="admm", relax=1.6, tuning_states=Xt, states=Xt, max_depth=cap)
    out["params"]["(b) ADMM"] = b.options.rho
    record("(b) ADMM ρ-ladder", b, cap)
    # (c) mpc2nn constructions
    lmi = unravel(net, depth=1, method="lmi")
    out["lmi"] = lmi.certificate().reason
    if lmi.certificate().exists:
        record("lmi (designed K)", lmi, cap)
    mom = unravel(net, tol=1e-6, method="momentum", tuning_states=Xt, states=Xt, max_depth=cap)
    out["params"]["momentum"] = mom.options.beta
    record("momentum (β tuned)", mom, cap)
    adm = unravel(net, tol=1e-6, method="admm", tuning_states=Xt, states=Xt, max_depth=cap)
    out["params"]["admm"] = {"rho": adm.options.rho, "relax": adm.options.relax}
    d6 = record("admm (ρ, relaxation tuned)", adm, cap)
    pr = unravel(net, tol=1e-6, method="admm", prune=True, tuning_states=Xt, states=Xt, max_depth=cap)
    out["pruned_rows"] = int(qp.m - pr.qp.m)
    record("admm + LP pruning", pr, cap)

    # hybrid exact mode on the default construction (the tuned ADMM)
    out["hybrid"] = {}
    for J in hybrid_depths:
        hyb = unravel(net, depth=J, method="hybrid", rho=adm.options.rho, relax=adm.options.relax)
        res = hyb.solve(X)
        err = float(np.abs(res.U - U).max())
        out["hybrid"][J] = res.certified_fraction
        log(f"  {name}: hybrid depth {J}: certified {res.certified_fraction:.3f}, max error after fallback {err:.1e}")

    # throughput at the 1e-6 depth of the default construction
    J6 = d6 if d6 is not None else len(out["curves"]["admm (ρ, relaxation tuned)"])
    model = unravel(net, depth=J6, method="admm", rho=adm.options.rho, relax=adm.options.relax)
    reps = int(np.ceil(batch / len(X)))
    xb = np.tile(X, (reps, 1))[:batch]
    net_rate = throughput(model, xb, repeats=5 if J6 <= 1000 else 1)  # one run where the depth is in the thousands
    t0 = time.perf_counter()
    mpc2nn.solve_daqp(qp, X)
    daqp_rate = len(X) / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    mpc2nn.solve_osqp(problem, X)
    osqp_rate = len(X) / (time.perf_counter() - t0)
    out["throughput"] = {"depth": J6, "network": net_rate, "daqp": daqp_rate, "osqp": osqp_rate}
    log(f"  {name}: throughput at depth {J6}: network {net_rate:.3g}/s, DAQP {daqp_rate:.3g}/s, "
        f"OSQP {osqp_rate:.3g}/s")
    return out


def fmt(d) -> str:
    return "-" if d is None else str(d)


def table(results: list, cap: int, hybrid_depths) -> str:
    lines = []
    labels = []
    for r in results:
        for k in r["curves"]:
            if k not in labels:
                labels.append(k)
    lines.append(f"Depth for max ‖U - U*‖∞ <= 1e-3 / 1e-6 ('-': not reached within {cap} layers)")
    head = f"{'construction':30s}" + "".join(f"{r['name'][:22]:>24s}" for r in results)
    lines.append(head)
    for lab in labels:
        row = f"{lab:30s}"
        for r in results:
            c = r["curves"].get(lab)
            cell = "n/a" if c is None else " / ".join(fmt(d) for d in depths(np.array(c)))
            row += f"{cell:>24s}"
        lines.append(row)
    lines.append("")
    lines.append("Hybrid exact mode: fraction certified by the finishing stage (rest: exact-solver fallback)")
    for J in hybrid_depths:
        lines.append(f"{'depth ' + str(J):30s}" + "".join(f"{r['hybrid'][J]:>24.3f}" for r in results))
    lines.append("")
    lines.append(f"Throughput (states/s; network: batch 10^4, float64, {torch.get_num_threads()} torch threads, "
                 "median of 5; solvers: one by one, wall clock)")
    for key, lab in (("depth", "network depth (1e-6)"), ("network", "explicit network"), ("daqp", "DAQP"),
                     ("osqp", "OSQP")):
        lines.append(f"{lab:30s}" + "".join(f"{r['throughput'][key]:>24.3g}" for r in results))
    lines.append(f"{'network / DAQP':30s}" + "".join(
        f"{r['throughput']['network'] / r['throughput']['daqp']:>24.2f}" for r in results))
    return "\n".join(lines)


def plot(results: list, path: str) -> None:
    """Error against depth, one panel per problem; each construction keeps one colour in every panel."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = list(dict.fromkeys(lab for r in results for lab in r["curves"]))
    colour = {lab: f"C{i}" for i, lab in enumerate(labels)}
    n = len(results)
    cols = min(3, n)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.6 * rows + 0.8), squeeze=False)
    for ax, r in zip(axes.ravel(), results, strict=False):
        for lab, c in r["curves"].items():
            ax.loglog(np.arange(1, len(c) + 1), np.maximum(c, 1e-16), color=colour[lab], lw=1.4)
        ax.axhline(1e-6, color="k", lw=0.5, ls="--")
        ax.set_title(r["name"])
        ax.set_xlabel("depth (layers)")
        ax.set_ylabel("max ‖U - U*‖∞ (test states)")
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    handles = [plt.Line2D([], [], color=colour[lab], lw=2) for lab in labels]
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 6), fontsize=9, frameon=False)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    fig.savefig(path, dpi=120)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--small", action="store_true", help="fast mode: few states, low depth cap")
    ap.add_argument("--json", metavar="PATH", help="write the results as JSON")
    ap.add_argument("--plot", metavar="PATH", help="save the error-vs-depth figure")
    ap.add_argument("--problems", nargs="*", help="subset of problem names")
    ap.add_argument("--replot", metavar="JSON", help="only redraw --plot from a JSON file of an earlier run")
    args = ap.parse_args(argv)
    if args.replot:
        if not args.plot:
            ap.error("--replot needs --plot PATH")
        with open(args.replot) as fh:
            plot(json.load(fh), args.plot)
        return
    n_test, n_tune, cap, hyb, batch = (1000, 300, 10000, (10, 20, 50, 100), 10_000)
    if args.small:
        n_test, n_tune, cap, hyb, batch = (100, 60, 300, (10, 50), 1000)
    probs = mpc2nn.systems.all_problems()
    names = args.problems or list(probs)
    unknown = set(names) - set(probs)
    if unknown:
        ap.error(f"unknown problems {sorted(unknown)}; choose from {sorted(probs)}")
    t0 = time.perf_counter()
    results = [bench_problem(nm, probs[nm], n_test, n_tune, cap, hyb, batch) for nm in names]
    print(table(results, cap, hyb))
    print(f"\n{n_test} test states per problem, {n_tune} tuning states; total {time.perf_counter() - t0:.0f}s")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=1, default=float)
    if args.plot:
        plot(results, args.plot)


if __name__ == "__main__":
    main()
