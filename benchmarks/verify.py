"""Verification (``mpc2nn.verify``) of network controllers against the MPC law, against sampling.

For each problem (the paper's corrected example, the double integrator, the inverted pendulum) and each
network (the exact first-input network of the partition where it is complete, ADMM networks unrolled at
``--depths`` layers, ReLU MLPs of ``--mlps`` widths trained by imitation of DAQP's first input on sampled
states), in the same run:

* ``mpc2nn.verify`` over the problem's sample box (critical regions enumerated first, their time
  included): the proven upper bound on ``max ‖u_net - u_mpc‖∞`` (first input), the lower bound at the
  witness (re-solved by the exact solver), their ratio, status, time;
* the peer: the best error found by sampling ``--samples`` states (uniform in the box, feasible ones
  kept, the law by the exact batched solver), its time, and how far it is below the proven bound;
* for the exact network, what its own certificate (``ExactNetwork.certify``) proves, beside verify's bound
  (the goal: verify's bound at most 1e-9, as the certificate's);
* with ``--method kkt``: beside each partition row, the same network verified without a partition
  (``method="kkt"``: the law by the KKT conditions of its QP, big-M values proven by Slater's argument),
  on the same box; ``NAME@F`` in ``--problems`` shrinks the problem's sample box by the factor ``F``
  (a box inside the feasible set, or one small enough for the 12-state problems);
* with ``--workers 1 2 4``: the verification of the first network after the exact one per problem on
  local Dask clusters of that many single-threaded workers (the same bound, and the speed-up over one
  worker).

Float64 throughout; thread count and the batch size of the sampling are printed. Usage::

    python benchmarks/verify.py [--small] [--json out.json] [--workers 1 2 4] [--time-limit 120]
    python benchmarks/verify.py --method kkt --problems drummond2024_corrected double_integrator@0.6 \
        quadcopter@0.3 --depths --mlps 2x16
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


def train_mlp(problem, hidden, n=3000, steps=1500, seed=0):
    """A ReLU MLP (float64) trained with Adam by imitation of DAQP's first input on ``n`` sampled states."""
    import torch

    X = mpc2nn.sample_states(problem, n, seed=seed)
    U = mpc2nn.solve_daqp(problem, X).U[:, :problem.n_u]
    torch.manual_seed(seed)
    layers, width = [], X.shape[1]
    for h in hidden:
        layers += [torch.nn.Linear(width, h), torch.nn.ReLU()]
        width = h
    net = torch.nn.Sequential(*layers, torch.nn.Linear(width, problem.n_u)).double()
    opt = torch.optim.Adam(net.parameters(), lr=5e-3)
    scale = max(1.0, float(np.abs(U).max()))
    Xt, Ut = torch.as_tensor(X.copy()), torch.as_tensor(U.copy() / scale)
    for _ in range(steps):
        opt.zero_grad()
        loss = ((net(Xt) / scale - Ut) ** 2).mean()
        loss.backward()
        opt.step()
    return net


def sampled_error(problem, law, net, n, seed, box=None):
    """Best error of the network found on ``n`` sampled feasible states (the exact solver as the law)."""
    import torch

    t = time.perf_counter()
    if box is None:
        X = mpc2nn.sample_states(problem, n, seed=seed, feasible=None)
    else:
        X = box[0] + (box[1] - box[0]) * np.random.default_rng(seed).random((n, box[0].size))
    sol = law.solve(X)
    ok = sol.feasible
    with torch.no_grad():
        u = net(torch.as_tensor(X[ok].copy())).numpy()[:, :problem.n_u]
    err = np.abs(u - sol.U[ok][:, :problem.n_u]).max(axis=1)
    return float(err.max(initial=0.0)), int(ok.sum()), time.perf_counter() - t


def networks(problem, law, part, depths, mlps, train_steps):
    out = [("exact", mpc2nn.exact_network(part))] if part.complete else []
    for d in depths:
        out.append((f"unrolled J={d}", mpc2nn.unravel(law, depth=d)))
    for hidden in mlps:
        out.append((f"MLP {len(hidden)}x[{hidden[0]}]", train_mlp(problem, hidden, steps=train_steps)))
    return out


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", action="store_true", help="the double integrator, J = 3 and a 2x[16] MLP, "
                        "2000 samples: a few seconds")
    parser.add_argument("--problems", nargs="+", help="names from mpc2nn.systems.all_problems()")
    parser.add_argument("--depths", type=int, nargs="*", help="unrolled depths (default 10 30 100; none: "
                        "no unrolled network)")
    parser.add_argument("--mlps", nargs="*", help="MLP shapes LAYERSxWIDTH (default 2x16 3x32; none: no MLP)")
    parser.add_argument("--samples", type=int, help="states sampled by the peer (default 100000)")
    parser.add_argument("--time-limit", type=float, default=120.0, help="seconds per verification (default 120)")
    parser.add_argument("--workers", type=int, nargs="+", default=[],
                        help="Dask worker counts for the speed-up (on the first network after the exact one)")
    parser.add_argument("--method", choices=("partition", "kkt"), default="partition",
                        help="kkt: also verify each network without a partition (method='kkt') on the same box")
    parser.add_argument("--json", help="write the results to this file")
    args = parser.parse_args(argv)
    small = args.small
    problems = args.problems or (["double_integrator"] if small else
                                 ["drummond2024_corrected", "double_integrator", "inverted_pendulum"])
    depths = args.depths if args.depths is not None else ([3] if small else [10, 30, 100])
    mlps = [tuple([int(w)] * int(k)) for k, w in (s.split("x") for s in (
        args.mlps if args.mlps is not None else (["2x16"] if small else ["2x16", "3x32"])))]
    n_samples = args.samples or (2000 if small else 100_000)
    train_steps = 200 if small else 1500
    threads = os.environ.get("OMP_NUM_THREADS", "unset")
    print(f"mpc2nn.verify vs sampling; float64; {n_samples} sampled states per network (one batch); "
          f"OMP_NUM_THREADS={threads}; {platform.processor() or platform.machine()}; time limit "
          f"{args.time_limit:g} s per verification")
    header = (f"{'problem':<28}{'network':<16}{'method':>10}{'ReLUs':>7}{'upper':>12}{'lower':>12}{'up/low':>10}"
              f"{'sampled':>12}{'up/samp':>10}{'status':>12}{'t verify':>10}{'t sample':>10}")
    print(header)
    print("-" * len(header))
    rows, speed = [], []
    all_problems = mpc2nn.systems.all_problems()
    for spec in problems:
        name, _, factor = spec.partition("@")
        problem = all_problems[name]()
        law = mpc2nn.compile(problem)
        box = None
        if factor:
            lo, hi = (np.asarray(b, float) for b in problem.sample_box)
            c, h = (lo + hi) / 2, (hi - lo) / 2 * float(factor)
            box = (c - h, c + h)
        t = time.perf_counter()
        part = mpc2nn.critical_regions(law, box, time_limit=args.time_limit)
        t_part = time.perf_counter() - t
        nets = networks(problem, law, part, depths, mlps, train_steps)
        for label, net in nets:
            samp, n_ok, t_samp = sampled_error(problem, law, net, n_samples, seed=7, box=box)
            for method in (["partition", "kkt"] if args.method == "kkt" else ["partition"]):
                if method == "partition":
                    res = mpc2nn.verify(net, part, box, time_limit=args.time_limit)
                else:
                    res = mpc2nn.verify(net, law, box, method="kkt", time_limit=args.time_limit)
                ratio = res.upper_bound / res.lower_bound if res.lower_bound > 0 else np.nan
                vs_samp = res.upper_bound / samp if samp > 0 else np.nan
                row = dict(problem=spec, network=label, method=method, relus=res.network, upper=res.upper_bound,
                           lower=res.lower_bound, witness=res.witness.tolist(), ratio=ratio, sampled=samp,
                           sampled_states=n_ok, upper_over_sampled=vs_samp, status=res.status,
                           covered=res.covered, regions=len(res.regions),
                           partition_seconds=t_part if method == "partition" else 0.0,
                           verify_seconds=res.elapsed, sample_seconds=t_samp, milps=res.n_milps, cells=res.n_cells,
                           violation_upper=res.violation.upper, violation_lower=res.violation.lower)
                if label == "exact":  # the goal: verify's bound at the accuracy certify() proves (1e-9)
                    cert = net.certify()
                    row.update(certify_proven=bool(cert.proven), certify_margin=float(cert.margin.max(initial=0.0)))
                rows.append(row)
                relus = res.network.rsplit("(", 1)[-1].split()[0]
                print(f"{spec:<28}{label:<16}{method:>10}{relus:>7}{res.upper_bound:>12.4e}{res.lower_bound:>12.4e}"
                      f"{ratio:>10.4g}{samp:>12.4e}{vs_samp:>10.4g}{res.status:>12}{res.elapsed:>10.2f}"
                      f"{t_samp:>10.2f}", flush=True)
        if args.workers and nets:
            # the first network after the exact one (which verifies in seconds: the cluster's start would dominate)
            label, net = next((n for n in nets if n[0] != "exact"), nets[0])
            base = None
            for w in args.workers:
                res = mpc2nn.verify(net, part, box, time_limit=args.time_limit, workers=w)
                base = res.elapsed if base is None else base
                speed.append(dict(problem=name, network=label, workers=w, seconds=res.elapsed, upper=res.upper_bound,
                                  speedup=base / res.elapsed, status=res.status))
    if speed:
        print(f"\n{'problem':<24}{'network':<16}{'workers':>8}{'seconds':>10}{'speed-up':>10}{'upper':>12}")
        for s in speed:
            print(f"{s['problem']:<24}{s['network']:<16}{s['workers']:>8}{s['seconds']:>10.2f}{s['speedup']:>10.2f}"
                  f"{s['upper']:>12.4e}")
    for r in rows:
        if r["network"] == "exact":
            print(f"exact network of {r['problem']} ({r['method']}): verify's proven bound {r['upper']:.3e} (goal "
                  f"1e-9, status {r['status']}); certify() proves |network - law| <= {r['certify_margin']:.3e} "
                  f"({'proven' if r['certify_proven'] else 'not proven'})")
    worst = max(rows, key=lambda r: r["ratio"] if np.isfinite(r["ratio"]) else -1.0) if rows else None
    if worst is not None:
        print(f"\nworst upper/lower ratio: {worst['ratio']:.4f} ({worst['problem']}, {worst['network']}); "
              f"slowest verification {max(r['verify_seconds'] for r in rows):.2f} s")
    out = dict(rows=rows, speedup=speed, samples=n_samples, dtype="float64", threads=threads,
               python=sys.version.split()[0], small=small)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=1, default=float)
    return out


if __name__ == "__main__":
    main()
