"""Depth of the unrolled constructions for max error 1e-3 and 1e-6, the depth ``unravel(tol=1e-6)`` chooses and
what it is worth on 10⁴ held-out states, build times, scaled constructions, warm starts, hybrid certified
fractions and throughput, on the public problems, a cart-pole and random systems.

Usage::

    python benchmarks/depth.py [--small] [--json PATH] [--plot PATH] [--problems NAME ...] [--no-warm]
    python benchmarks/depth.py --choice-only [--tol 1e-6] [--n-held N] [--problems NAME ...]

Problems: the six public ones; a cart-pole (the classic Barto–Sutton–Anderson / OpenAI-gym cart-pole: cart
1 kg, pole 0.1 kg, half-length 0.5 m, g = 9.81, linearised upright, ZOH at 0.02 s, |F| <= 10 N, |x| <= 2.4 m,
|θ| <= 0.21 rad, N = 20, Q = I, R = 0.1); random systems with 2–12 states, stable (spectral radius 0.8) and
unstable (1.2), with input and state bounds (``rand<n>s``/``rand<n>u``) and, in the family of ReLU-QP's
random-MPC benchmark ("stabilising random linear systems with control limits"), with input bounds only
(``relu<n>``).

Per problem (errors ``max over states of ‖U - U*‖∞``, ``U*`` from the certified exact solver):

* depth for 1e-3 / 1e-6 of each construction on ``n_test`` uniform feasible test states (seed 1) that no
  construction was tuned on; tuning (ρ, relaxation, β) uses ``n_tune`` other states (seed 2): the paper's
  plain form, (b) ADMM with OSQP's relaxation 1.6 on unit-norm rows (the previous default), plain ADMM on
  unscaled rows with the best scalar ρ, the scaled ADMM constructions (Jacobi, Ruiz, unit norm; per-type ρ),
  momentum, the default ``unravel`` tuning, LP pruning;
* ``unravel(tol=1e-6)`` with its defaults: status, depth, build time, its own statement, and its error on 10⁴
  independent uniform feasible states (seed 12345): the generalisation gap; and at that depth the ADMM unroll
  as ReLU-QP builds it (ρ = 0.1, σ = 1e-6, no relaxation, no scaling: the peer at equal depth);
* why: the depth each held-out state needs (percentiles) and the linear rate of the chosen network on the
  active set of the slowest one (layers per decade);
* warm start: closed loops from a few states, layers per step until the rigorous per-step bound certifies 1e-6,
  carried state against the zero start;
* hybrid certified fractions and throughput (float64, batch 10⁴, torch threads as printed; DAQP and OSQP one
  by one in the same run).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time

import numpy as np
import scipy.linalg
import torch

import mpc2nn
from mpc2nn.exceptions import ToleranceNotMetError
from mpc2nn.explicit import (
    ADMMOptions,
    CurveRun,
    error_curve,
    first_depth,
    row_scaling,
    throughput,
    unravel,
    warm_closed_loop,
)
from mpc2nn.sampling import sample_feasible

TOLS = (1e-3, 1e-6)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --- problems -----------------------------------------------------------------------------------------------
def cartpole() -> mpc2nn.MPCProblem:
    """The classic cart-pole (Barto, Sutton & Anderson 1983; OpenAI gym's parameters), linearised upright."""
    M, m, half, g = 1.0, 0.1, 0.5, 9.81  # cart and pole masses, the pole's half-length
    den = half * (4.0 / 3.0 - m / (M + m))
    a_th, b_th = g / den, -1.0 / ((M + m) * den)
    a_x, b_x = -m * half * a_th / (M + m), (1.0 - m * half * b_th) / (M + m)
    Ac = np.array([[0, 1, 0, 0], [0, 0, a_x, 0], [0, 0, 0, 1], [0, 0, a_th, 0.0]])
    Bc = np.array([[0.0], [b_x], [0.0], [b_th]])
    A, B = mpc2nn.problem.zoh(Ac, Bc, 0.02)
    inf = np.inf
    return mpc2nn.MPCProblem(A, B, Q=np.eye(4), R=[[0.1]], horizon=20, P="dare", u_min=[-10.0], u_max=[10.0],
                             x_min=[-2.4, -inf, -0.21, -inf], x_max=[2.4, inf, 0.21, inf], name="cartpole",
                             sample_box=([-1.0, -1.0, -0.15, -1.0], [1.0, 1.0, 0.15, 1.0]))


def random_system(n_x: int, seed: int, unstable: bool, state_bounds: bool = True) -> mpc2nn.MPCProblem:
    """A random system: A with spectral radius 1.2 (unstable) or 0.8, n_u = max(1, n_x/2), N = 10, Q = I,
    R = 0.1 I, P from the DARE, |u| <= 1 (and |x| <= 4), states drawn from [-2, 2]^n_x.
    """
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(n_x, n_x)) / np.sqrt(n_x)
    A *= (1.2 if unstable else 0.8) / max(abs(np.linalg.eigvals(A)))
    n_u = max(1, n_x // 2)
    kw = dict(u_min=-np.ones(n_u), u_max=np.ones(n_u))
    if state_bounds:
        kw.update(x_min=-4 * np.ones(n_x), x_max=4 * np.ones(n_x))
    name = (f"rand{n_x}{'u' if unstable else 's'}" if state_bounds else f"relu{n_x}")
    return mpc2nn.MPCProblem(A, rng.normal(size=(n_x, n_u)), Q=np.eye(n_x), R=0.1 * np.eye(n_u), horizon=10,
                             P="dare", **kw, name=name, sample_box=(-2 * np.ones(n_x), 2 * np.ones(n_x)))


def problems() -> dict:
    out = dict(mpc2nn.systems.all_problems())
    out["cartpole"] = cartpole
    for n in (2, 4, 6, 8, 12):
        for u in (False, True):
            out[f"rand{n}{'u' if u else 's'}"] = (lambda n=n, u=u: random_system(n, 100 + n, u))
    for n in (4, 8):
        out[f"relu{n}"] = (lambda n=n: random_system(n, 200 + n, True, state_bounds=False))
    return out


# --- diagnostics --------------------------------------------------------------------------------------------
def local_rate(model, active: np.ndarray) -> float:
    """Spectral radius of the linearisation of an ADMM network's layer on the active set ``active`` (m,), with
    the directions that do not move U (dependent active rows) factored out.
    """
    qp, opts = model.qp, model.options
    r = row_scaling(qp, opts.scaling, opts.state_rho)
    G = r[:, None] * qp.G
    rho, a, sig = opts.rho, opts.relax, opts.sigma
    n, m = qp.n_z, qp.m
    K = np.linalg.inv(qp.H + sig * np.eye(n) + rho * G.T @ G)
    P = np.diag(active.astype(float))
    S = np.eye(m) - 2 * P
    L = np.block([[sig * K, rho * K @ G.T @ S],
                  [a * G @ (sig * K), a * rho * G @ K @ G.T @ S + (1 - a) * (np.eye(m) - P) + P]])
    idx = np.flatnonzero(active)
    N = np.zeros((n + m, 0))
    if idx.size:
        ns = scipy.linalg.null_space(G[idx].T)
        N = np.zeros((n + m, ns.shape[1]))
        N[n + idx] = ns
    Q = scipy.linalg.null_space(N.T) if N.shape[1] else np.eye(n + m)
    return float(np.abs(np.linalg.eigvals(Q.T @ L @ Q)).max())


def per_state_depth(model, X, U, tol, cap) -> np.ndarray:
    """Depth each state needs for ``tol`` (``cap + 1`` where not reached within ``cap``)."""
    run = CurveRun(model, X, U, tol)
    run.advance(cap, stop_below=1e-2 * tol)
    d = run.last_bad.copy() + 1
    d[run.alive[run.last_err[run.alive] > tol]] = cap + 1
    return d


# --- one problem --------------------------------------------------------------------------------------------
def bench_problem(name: str, ctor, cfg: dict) -> dict:
    problem = ctor()
    net = mpc2nn.compile(problem)
    qp = net.qp
    box = qp.sample_box
    cap = cfg["cap"]
    X, U = sample_feasible(net, box, cfg["n_test"], seed=1)
    Xt, _ = sample_feasible(net, box, cfg["n_tune"], seed=2)
    out = {"name": name, "m": qp.m, "n_U": qp.n_U, "n_x": qp.n_x, "curves": {}, "params": {}}
    log(f"{name}: m={qp.m}, n_U={qp.n_U}")

    def record(label, model, limit=cap):
        t0 = time.perf_counter()
        curve = error_curve(model, X, U, limit, 1e-6)
        out["curves"][label] = curve.tolist()
        d3, d6 = (first_depth(curve, t) for t in TOLS)
        log(f"  {name}: {label:34s} d(1e-3)={d3} d(1e-6)={d6} final {curve[-1]:.1e} ({time.perf_counter() - t0:.1f}s)")
        return d6

    def tuned(**kw):
        return unravel(net, tol=1e-6, tuning_states=Xt, states=Xt, max_depth=cap, n_check=0, on_failure="return",
                       **kw)

    record("(a) plain, α=1/λmax", unravel(net, depth=1, method="paper"))
    if name == "drummond2024_published":
        record("paper settings α=1, K=0", unravel(mpc2nn.compile(problem, alpha=1.0), depth=1, method="paper"))
    b = tuned(method="admm", relax=1.6, scaling="norm")
    out["params"]["(b) ADMM"] = b.options.rho
    record("(b) ADMM ρ-ladder", b)
    plain = tuned(method="admm", relax=1.6, scaling="none")
    out["params"]["plain ADMM"] = plain.options.rho
    out["plain_depth"] = record("plain ADMM (no scaling, best ρ)", plain)
    for scaling in ("jacobi", "ruiz"):
        record(f"{scaling} rows (ρ, relaxation tuned)", tuned(method="admm", scaling=scaling))
    kap = min(((tuned(method="admm", scaling="jacobi", state_rho=k), k) for k in (0.1, 10.0)),
              key=lambda mk: mk[0].selection.depth or math.inf)
    out["params"]["state_rho"] = kap[1]
    record("jacobi + per-type ρ (state rows)", kap[0])
    lmi = unravel(net, depth=1, method="lmi")
    out["lmi"] = lmi.certificate().reason
    if lmi.certificate().exists:
        record("lmi (designed K)", lmi)
    mom = tuned(method="momentum")
    out["params"]["momentum"] = mom.options.beta
    record("momentum (β tuned)", mom)
    adm = tuned(method="admm")
    out["params"]["admm"] = {k: v for k, v in vars(adm.options).items() if not isinstance(v, np.ndarray)}
    d6 = record("admm (ρ, relaxation tuned)", adm)
    pr = tuned(method="admm", prune=True)
    out["pruned_rows"] = int(qp.m - pr.qp.m)
    record("admm + LP pruning", pr)

    # unravel(tol=1e-6) with its defaults, judged on 10⁴ independent states
    t0 = time.perf_counter()
    try:
        ch = unravel(net, tol=1e-6, seed=7, max_depth=cfg["max_depth"], n_select=cfg["n_select"],
                     n_check=cfg["n_check"])
    except ToleranceNotMetError as exc:
        ch = exc.network
    build = time.perf_counter() - t0
    sel = ch.selection
    Xh, Uh = sample_feasible(net, box, cfg["n_held"], seed=12345)
    J = int(sel.depth if sel.depth is not None else ch.depth)
    if sel.depth is None:  # refused: the diagnostics at the depth cap on 1000 of the held-out states (minutes less)
        J = min(J, cap)
        Xh, Uh = Xh[:1000], Uh[:1000]
    ch.depth = J
    err_h = np.abs(ch.evaluate(Xh) - Uh).max(axis=1)
    peer = unravel(net, depth=J, method=ADMMOptions(scaling="none", rho=0.1, relax=1.0, sigma=1e-6))
    err_peer = np.abs(peer.evaluate(Xh) - Uh).max(axis=1)
    need = per_state_depth(ch, Xh, Uh, 1e-6, min(cfg["max_depth"], max(4 * J, 1000)))
    slow = int(np.argmax(need))
    rate = local_rate(ch, net.solve(Xh[slow]).y[0][ch.kept_rows] > 0) if ch.method == "admm" else float("nan")
    out["choice"] = dict(status=sel.status, depth=sel.depth, build_s=build, statement=sel.statement,
                         construction=sel.construction, held_out=int(len(Xh)), held_max=float(err_h.max()),
                         held_above=int((err_h > 1e-6).sum()), peer_max=float(err_peer.max()),
                         need_pct=[float(np.percentile(need, q)) for q in (50, 99, 99.9, 100)],
                         worst_rate=rate, layers_per_decade=(math.log(10) / -math.log(rate) if 0 < rate < 1
                                                             else float("inf")))
    log(f"  {name}: unravel(tol=1e-6): {sel.status}, depth {sel.depth}, {build:.1f}s; 10^4 held-out max "
        f"{err_h.max():.1e} ({(err_h > 1e-6).sum()} above); ReLU-QP ADMM at that depth {err_peer.max():.1e}; "
        f"worst rate {rate:.5f}")

    # warm-started closed loops (problems whose QP takes only the state)
    if cfg["warm"] and isinstance(problem, mpc2nn.MPCProblem) and qp.layout.state_only and sel.depth:
        starts = X[np.argsort(-np.abs(U).max(axis=1))[:cfg["warm_starts"]]]
        warm, cold, warm_ok = [], [], []
        for x0 in starts:
            loop = warm_closed_loop(ch, x0, cfg["warm_steps"], tol=1e-6, max_layers=max(2 * J, 500),
                                    reference=False)
            warm.extend(loop.layers[1:].tolist())
            warm_ok.extend(loop.certified[1:].tolist())
            cold.extend(loop.cold_layers[1:].tolist())
        w_ok, c_ok = np.asarray(warm_ok, bool), np.asarray(cold) >= 0
        w_l, c_l = np.asarray(warm)[w_ok], np.asarray(cold)[c_ok]
        # medians and maxima over the steps the bound certified; the others are counted apart
        out["warm"] = dict(steps=len(warm), warm_median=float(np.median(w_l)) if w_l.size else math.nan,
                           warm_max=int(w_l.max(initial=0)), warm_uncertified=int((~w_ok).sum()),
                           cold_median=float(np.median(c_l)) if c_l.size else math.nan,
                           cold_max=int(c_l.max(initial=0)), cold_uncertified=int((~c_ok).sum()))
        log(f"  {name}: warm start: {out['warm']}")

    # hybrid exact mode and throughput on the tuned ADMM
    out["hybrid"] = {}
    for Jh in cfg["hybrid"]:
        res = unravel(net, depth=Jh, method="hybrid", **out["params"]["admm"]).solve(X)
        out["hybrid"][Jh] = res.certified_fraction
    J6 = d6 if d6 is not None else len(out["curves"]["admm (ρ, relaxation tuned)"])
    model = unravel(net, depth=J6, method=adm.options)
    xb = np.tile(X, (int(np.ceil(cfg["batch"] / len(X))), 1))[:cfg["batch"]]
    net_rate = throughput(model, xb, repeats=5 if J6 <= 1000 else 1)
    t0 = time.perf_counter()
    mpc2nn.solve_daqp(qp, X)
    daqp_rate = len(X) / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    mpc2nn.solve_osqp(problem, X)
    osqp_rate = len(X) / (time.perf_counter() - t0)
    out["throughput"] = {"depth": J6, "network": net_rate, "daqp": daqp_rate, "osqp": osqp_rate}
    return out


def bench_choice(name: str, ctor, cfg: dict) -> dict:
    """Only ``unravel(tol)`` with its defaults (its own tuning, selection and held-out check on its own draws,
    seed 7) and its error on ``n_held`` independent uniform feasible states (seed 12345).
    """
    problem = ctor()
    net = mpc2nn.compile(problem)
    qp, tol = net.qp, cfg["tol"]
    t0 = time.perf_counter()
    refused = False
    try:
        ch = unravel(net, tol=tol, seed=7, max_depth=cfg["max_depth"], n_select=cfg["n_select"],
                     n_check=cfg["n_check"])
    except ToleranceNotMetError as exc:
        ch, refused = exc.network, True
    build = time.perf_counter() - t0
    sel = ch.selection
    Xh, Uh = sample_feasible(net, qp.sample_box, cfg["n_held"], seed=12345)
    # a refused network is not judged (it stopped at max_depth; evaluating it there costs minutes)
    err = np.full(len(Xh), np.nan) if refused else np.abs(ch.evaluate(Xh) - Uh).max(axis=1)
    out = dict(name=name, n_x=qp.n_x, m=qp.m, kept=int(ch.qp.m), status=sel.status, refused=refused,
               depth=int(ch.depth), build_s=build, held_out=int(len(Xh)), held_max=float(err.max()),
               held_above=int((err > tol).sum()) if not refused else -1, statement=sel.statement,
               construction=sel.construction)
    log(f"  {name}: {sel.status}, depth {ch.depth}{' (refused)' if refused else ''}, {build:.1f}s; "
        f"{len(Xh)} held-out max {err.max():.2e} ({(err > tol).sum()} above {tol:g}); {sel.statement}")
    return out


def choice_table(results: list, cfg: dict) -> str:
    tol = cfg["tol"]
    lines = [f"unravel(tol={tol:g}) with its defaults (n_select={cfg['n_select']}, n_check={cfg['n_check']}, "
             f"max_depth={cfg['max_depth']}, seed 7), judged on {cfg['n_held']} independent uniform feasible "
             "states (seed 12345, never seen by tuning or selection)",
             f"{'problem':24s}{'n_x':>4s}{'rows':>6s}{'kept':>6s} {'status':22s}{'depth':>7s}{'build s':>9s}"
             f"{'held-out max':>14s}{'above tol':>11s}  verdict"]
    for r in results:
        ok = r["held_max"] <= tol
        verdict = ("refused (ToleranceNotMetError)" if r["refused"] else
                   "meets tol on held-out states" if ok else "RETURNED BUT EXCEEDS TOL on held-out states")
        held = (f"{'-':>14s}{'-':>6s}/{r['held_out']:<5d}" if r["refused"] else
                f"{r['held_max']:>14.2e}{r['held_above']:>6d}/{r['held_out']:<5d}")
        depth = f"{'>' if r['refused'] else ''}{r['depth']}"
        lines.append(f"{r['name']:24s}{r['n_x']:>4d}{r['m']:>6d}{r['kept']:>6d} {r['status']:22s}{depth:>7s}"
                     f"{r['build_s']:>9.1f}{held} {verdict}")
    worst = max((r for r in results if not r["refused"]), key=lambda r: r["held_max"], default=None)
    if worst is not None:
        lines.append(f"worst held-out max error of a returned network: {worst['held_max']:.2e} ({worst['name']}); "
                     f"slowest build {max(r['build_s'] for r in results):.1f}s")
    return "\n".join(lines)


# --- tables -------------------------------------------------------------------------------------------------
def fmt(d) -> str:
    return "-" if d is None else str(d)


def table(results: list, cfg: dict) -> str:
    lines = []
    labels = list(dict.fromkeys(k for r in results for k in r["curves"]))
    cap = cfg["cap"]
    lines.append(f"Depth for max ‖U - U*‖∞ <= 1e-3 / 1e-6 on {cfg['n_test']} test states ('-': not reached within "
                 f"{cap} layers)")
    w = 14
    lines.append(f"{'construction':36s}" + "".join(f"{r['name'][:w - 1]:>{w}s}" for r in results))
    for lab in labels:
        row = f"{lab:36s}"
        for r in results:
            c = r["curves"].get(lab)
            cell = "n/a" if c is None else "/".join(fmt(first_depth(np.array(c), t)) for t in TOLS)
            row += f"{cell:>{w}s}"
        lines.append(row)
    lines.append("")
    lines.append(f"unravel(tol=1e-6), defaults (n_select={cfg['n_select']}, n_check={cfg['n_check']}), judged on "
                 f"{cfg['n_held']} independent uniform feasible states")
    rows = [("status", lambda c: c["status"]), ("chosen depth", lambda c: fmt(c["depth"])),
            ("build time (s)", lambda c: f"{c['build_s']:.1f}"),
            ("held-out max error", lambda c: f"{c['held_max']:.1e}"),
            ("held-out states above 1e-6", lambda c: str(c["held_above"])),
            ("ReLU-QP ADMM, equal depth", lambda c: f"{c['peer_max']:.1e}"),
            ("depth needed: median", lambda c: f"{c['need_pct'][0]:.0f}"),
            ("depth needed: 99 %", lambda c: f"{c['need_pct'][1]:.0f}"),
            ("depth needed: 99.9 %", lambda c: f"{c['need_pct'][2]:.0f}"),
            ("depth needed: max", lambda c: f"{c['need_pct'][3]:.0f}"),
            ("rate, slowest state's active set", lambda c: f"{c['worst_rate']:.4f}"),
            ("  layers per decade", lambda c: f"{c['layers_per_decade']:.0f}")]
    for lab, f in rows:
        lines.append(f"{lab:36s}" + "".join(f"{f(r['choice']):>{w}s}" for r in results))
    lines.append(f"{'plain ADMM depth / chosen depth':36s}" + "".join(
        f"{(r['plain_depth'] or cap) / r['choice']['depth']:>{w}.2f}" if r["choice"]["depth"] else f"{'-':>{w}s}"
        for r in results))
    if any("warm" in r for r in results):
        lines.append("")
        lines.append(f"Warm start in closed loop ({cfg['warm_starts']} starts × {cfg['warm_steps']} steps): layers per "
                     "step until the per-step bound certifies 1e-6, median (max)")
        lines.append("(over the certified steps; the steps not certified within max(2 x depth, 500) layers are "
                     "counted below)")
        for lab, key in (("carried layer state", "warm"), ("zero start", "cold")):
            cells = [f"{r['warm'][key + '_median']:.0f} ({r['warm'][key + '_max']})" if "warm" in r else "-"
                     for r in results]
            lines.append(f"{lab:36s}" + "".join(f"{c:>{w}s}" for c in cells))
            cells = [f"{r['warm'][key + '_uncertified']} of {r['warm']['steps']}" if "warm" in r else "-"
                     for r in results]
            lines.append(f"{'  steps not certified':36s}" + "".join(f"{c:>{w}s}" for c in cells))
    lines.append("")
    lines.append("Hybrid exact mode: fraction certified by the finishing stage (rest: exact-solver fallback)")
    for J in cfg["hybrid"]:
        lines.append(f"{'depth ' + str(J):36s}" + "".join(f"{r['hybrid'][J]:>{w}.3f}" for r in results))
    lines.append("")
    lines.append(f"Throughput (states/s; network: batch {cfg['batch']}, float64, {torch.get_num_threads()} torch "
                 "threads, median of 5; solvers: one by one, wall clock)")
    for key, lab in (("depth", "network depth (1e-6)"), ("network", "explicit network"), ("daqp", "DAQP"),
                     ("osqp", "OSQP")):
        lines.append(f"{lab:36s}" + "".join(f"{r['throughput'][key]:>{w}.3g}" for r in results))
    lines.append(f"{'network / DAQP':36s}" + "".join(
        f"{r['throughput']['network'] / r['throughput']['daqp']:>{w}.2f}" for r in results))
    return "\n".join(lines)


def plot(results: list, path: str) -> None:
    """Error against depth, one panel per problem; each construction keeps one colour in every panel."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = list(dict.fromkeys(lab for r in results for lab in r["curves"]))
    colour = {lab: f"C{i % 10}" for i, lab in enumerate(labels)}
    style = {lab: "-" if i < 10 else "--" for i, lab in enumerate(labels)}
    n = len(results)
    cols = min(3, n)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.6 * rows + 0.8), squeeze=False)
    for ax, r in zip(axes.ravel(), results, strict=False):
        for lab, c in r["curves"].items():
            ax.loglog(np.arange(1, len(c) + 1), np.maximum(c, 1e-16), color=colour[lab], ls=style[lab], lw=1.4)
        ax.axhline(1e-6, color="k", lw=0.5, ls="--")
        ax.set_title(r["name"])
        ax.set_xlabel("depth (layers)")
        ax.set_ylabel("max over test states of ‖U - U*‖∞\n(the problem's input units)")
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    handles = [plt.Line2D([], [], color=colour[lab], ls=style[lab], lw=2) for lab in labels]
    handles.append(plt.Line2D([], [], color="k", lw=0.5, ls="--"))
    labels = [*labels, "tolerance 1e-6"]
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 4), fontsize=8, frameon=False)
    fig.suptitle("Largest error of the network's input sequence U (all N·n_u inputs) against the exact MPC "
                 "solution U*, over uniform feasible test states no construction was tuned on", fontsize=10)
    fig.tight_layout(rect=(0, 0.1, 1, 0.96))
    fig.savefig(path, dpi=120)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--small", action="store_true", help="fast mode: few states, low depth caps")
    ap.add_argument("--json", metavar="PATH", help="write the results as JSON")
    ap.add_argument("--plot", metavar="PATH", help="save the error-vs-depth figure")
    ap.add_argument("--problems", nargs="*", help="subset of problem names")
    ap.add_argument("--no-warm", action="store_true", help="skip the warm-start closed loops")
    ap.add_argument("--replot", metavar="JSON", help="only redraw --plot from a JSON file of an earlier run")
    ap.add_argument("--choice-only", action="store_true",
                    help="only unravel(tol) with its defaults and its error on --n-held independent states")
    ap.add_argument("--tol", type=float, default=1e-6, help="tolerance of --choice-only (default 1e-6)")
    ap.add_argument("--n-held", type=int, help="independent held-out states (default 10⁴; --small 300)")
    args = ap.parse_args(argv)
    if args.replot:
        if not args.plot:
            ap.error("--replot needs --plot PATH")
        with open(args.replot) as fh:
            plot(json.load(fh), args.plot)
        return
    cfg = dict(n_test=1000, n_tune=100, cap=10000, hybrid=(10, 20, 50, 100), batch=10_000, n_held=10_000,
               max_depth=20000, n_select=1000, n_check=1000, warm=not args.no_warm, warm_starts=3, warm_steps=12)
    if args.small:
        cfg.update(n_test=100, n_tune=40, cap=300, hybrid=(10, 50), batch=1000, n_held=300, max_depth=400,
                   n_select=60, n_check=60, warm_starts=1, warm_steps=3)
    if args.n_held:
        cfg["n_held"] = args.n_held
    cfg["tol"] = args.tol
    probs = problems()
    names = args.problems or list(probs)
    unknown = set(names) - set(probs)
    if unknown:
        ap.error(f"unknown problems {sorted(unknown)}; choose from {sorted(probs)}")
    t0 = time.perf_counter()
    if args.choice_only:
        results = [bench_choice(nm, probs[nm], cfg) for nm in names]
        print(choice_table(results, cfg))
        print(f"float64; {torch.get_num_threads()} torch threads; total {time.perf_counter() - t0:.0f}s")
        if args.json:
            with open(args.json, "w") as fh:
                json.dump(results, fh, indent=1, default=float)
        return
    results = [bench_problem(nm, probs[nm], cfg) for nm in names]
    print(table(results, cfg))
    print(f"\n{cfg['n_test']} test states per problem, {cfg['n_tune']} tuning states, {cfg['n_held']} held-out states "
          f"for unravel(tol); float64; {torch.get_num_threads()} torch threads; total {time.perf_counter() - t0:.0f}s")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=1, default=float)
    if args.plot:
        plot(results, args.plot)


if __name__ == "__main__":
    main()
