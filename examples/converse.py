"""
Back and forth: MPC → implicit network → MPC-like QP → MPC
==========================================================

Walks through mpc2nn.converse:

1. compile an MPC into its implicit network, recover the QP (``to_qp``) and the
   MPC weights and constraints (``to_mpc``) from the network alone, and compare
   the closed loops of the three controllers;
2. measure the round-trip error on the public problems;
3. map random monotone networks to QPs, and show the honest answer (and the
   nearest MPC-like network) when ``W`` is not symmetrisable;
4. approximate tanh / sigmoid by sums of shifted ReLUs with certified errors.

Run ``python examples/converse.py --output DIR`` (``--small`` for a quick run).
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import numpy as np

import mpc2nn
from mpc2nn.converse import ImplicitWeights, relu_approximation, to_mpc, to_qp


def closed_loop(controller, A, B, x0, steps):
    """States (steps+1, n_x) and inputs (steps, n_u) of ``controller`` in closed loop with ``(A, B)``."""
    tr = mpc2nn.simulate((A, B), mpc2nn.compile(controller) if not isinstance(controller, mpc2nn.ImplicitNetwork)
                         else controller, x0, steps)
    return tr.states, tr.inputs


def fixed_point_outputs(wts: ImplicitWeights, X):
    """Outputs at the unique fixed point of a small well-posed network, by enumerating active sets."""
    out = []
    for x in X:
        c = wts.Y @ x + wts.b
        for pattern in itertools.product([False, True], repeat=wts.m):
            S = np.array(pattern)
            y = np.empty(wts.m)
            y[S] = np.linalg.solve(np.eye(S.sum()) - wts.W[np.ix_(S, S)], c[S]) if S.any() else []
            y[~S] = wts.W[np.ix_(~S, S)] @ y[S] + c[~S]
            if np.all(y[S] >= -1e-12) and np.all(y[~S] <= 1e-12):
                out.append(wts.output(y, x)[0])
                break
    return np.array(out)


def monotone_network(rng, m, n_U, n_x, skew):
    """``I - W = 0.3 I + BᵀB/m + skew (C - Cᵀ)``: well-posed; symmetric (MPC-like) only when ``skew = 0``."""
    Bm, C = rng.normal(size=(m, m)), rng.normal(size=(m, m))
    W = np.eye(m) - (0.3 * np.eye(m) + Bm.T @ Bm / m + skew * (C - C.T))
    return ImplicitWeights(W, rng.normal(size=(m, n_x)), rng.normal(size=m), rng.normal(size=(n_U, m)),
                           rng.normal(size=(n_U, n_x)))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="The converse map: MPC → network → QP′ → MPC′, with plots.")
    parser.add_argument("--output", type=Path, default=Path("converse_output"),
                        help="folder for the PNG plots (default: converse_output, created if missing)")
    parser.add_argument("--small", action="store_true", help="fewer problems and samples (used by the tests)")
    args = parser.parse_args(argv)
    args.output.mkdir(parents=True, exist_ok=True)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(0)
    n_samples = 20 if args.small else 100

    # 1. forth and back on the paper's example -------------------------------------------------
    prob = mpc2nn.systems.drummond2024()
    net = mpc2nn.compile(prob)
    conv = to_qp(net)
    print(conv)
    rec = to_mpc(net, prob.A, prob.B, prob.horizon, n_samples=n_samples)
    print(rec)
    print("recovered weights (R normalised to 1):\nQ =", np.round(rec.Q, 4).tolist(), "\nP =",
          np.round(rec.P, 4).tolist(), "\nconstraints:", "; ".join(rec.constraints))
    steps = 15 if args.small else 25
    x0 = [-200.0, -200.0]
    runs = {"implicit network (from MPC)": closed_loop(net, prob.A, prob.B, x0, steps),
            "QP′ recovered by to_qp": closed_loop(conv.network(), prob.A, prob.B, x0, steps),
            "MPC′ recovered by to_mpc": closed_loop(rec.problem, prob.A, prob.B, x0, steps)}
    fig, axes = plt.subplots(3, 1, figsize=(7, 7.5), sharex=True)
    for (label, (xs, us)), style in zip(runs.items(), ["-", "--", ":"], strict=True):
        t = np.arange(xs.shape[0])
        axes[0].plot(t, xs[:, 0], style, lw=2, label=label)
        axes[1].plot(t, xs[:, 1], style, lw=2, label=label)
        axes[2].step(t[:-1], us[:, 0], style, where="post", lw=2, label=label)
    for ax, name in zip(axes, ["state $x_1$", "state $x_2$", "input $u$"], strict=True):
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
    axes[2].axhline(10, color="k", lw=0.8, alpha=0.5, ls=":", label="input bounds ±10")
    axes[2].axhline(-10, color="k", lw=0.8, alpha=0.5, ls=":")
    axes[2].legend(loc="lower right", fontsize=8)
    axes[2].set_xlabel("time step")
    axes[0].legend(loc="lower right", fontsize=8)
    dev = max(np.abs(runs["MPC′ recovered by to_mpc"][0] - runs["implicit network (from MPC)"][0]).max(),
              np.abs(runs["QP′ recovered by to_qp"][0] - runs["implicit network (from MPC)"][0]).max())
    axes[0].set_title(f"drummond2024 closed loop from x0 = (-200, -200)\nthree controllers, largest state "
                      f"difference {dev:.1e}", fontsize=10)
    fig.tight_layout()
    fig.savefig(args.output / "converse_closed_loop.png", dpi=120)
    # figures stay open so that the documentation build shows them

    # 2. round-trip errors on the public problems ------------------------------------------------
    names = (["drummond2024_published", "drummond2024_corrected", "inverted_pendulum"] if args.small
             else list(mpc2nn.systems.all_problems()))
    qp_err, mpc_err = [], []
    for name in names:
        p = mpc2nn.systems.all_problems()[name]()
        qp = mpc2nn.systems.as_qp(p)
        n = mpc2nn.compile(qp)
        X = rng.uniform(qp.sample_box[0], qp.sample_box[1], (n_samples, qp.n_x))
        ref, back = n.solve(X), to_qp(n).network().solve(X)
        ok = ref.feasible
        qp_err.append(float(np.abs(back.U[ok] - ref.U[ok]).max() / max(1.0, np.abs(ref.U[ok]).max())))
        if isinstance(p, mpc2nn.MPCProblem):
            A, B, N = p.A, p.B, p.horizon
        else:  # the published example is a QP; its model is the paper's (A, B)
            A, B, N = np.array([[4 / 3, -2 / 3], [1.0, 0.0]]), np.array([[0.0], [1.0]]), qp.horizon
        r = to_mpc(n, A, B, N, X=X)
        mpc_err.append(r.max_error)
        print(f"{name:24s} to_qp round trip {qp_err[-1]:.1e}   to_mpc {r.status:11s} {r.max_error:.1e}")
    fig, ax = plt.subplots(figsize=(8, 4))
    pos = np.arange(len(names))
    ax.bar(pos - 0.2, np.maximum(qp_err, 1e-17), 0.4, label="MPC → network → QP′ → network′ (to_qp)")
    ax.bar(pos + 0.2, np.maximum(mpc_err, 1e-17), 0.4, label="MPC → network → MPC′ (to_mpc)")
    ax.axhline(1e-8, color="k", ls="--", lw=1, label="1e-8")
    ax.set_yscale("log")
    ax.set_xticks(pos, names, rotation=20, ha="right", fontsize=8)
    ax.set_ylabel("max relative error in U on sampled states")
    ax.set_title("Round trips on the public problems (published example: no MPC with Q ⪰ 0 reproduces it)",
                 fontsize=10)
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    fig.savefig(args.output / "converse_round_trip_errors.png", dpi=120)
    # figures stay open so that the documentation build shows them

    # 3. random networks: monotone ones are MPC-like; skewed ones are not ------------------------
    wts = monotone_network(rng, 5, 7, 2, skew=0.0)
    X = rng.normal(size=(n_samples, 2)) * 2
    res = to_qp(wts)
    U_fp, U_qp = fixed_point_outputs(wts, X), res.network().solve(X).U
    print(f"random monotone network: {res.status}, max |U_QP - U_network| = {np.abs(U_qp - U_fp).max():.1e}")
    skews = [0.0, 0.01, 0.03, 0.1, 0.3, 1.0]
    dist, out_err = [], []
    for k, sk in enumerate(skews):
        w_k = monotone_network(np.random.default_rng(100 + k), 5, 7, 2, sk)
        r_k = to_qp(w_k)
        if r_k.status == "nearest" and sk == skews[-1]:
            print(r_k)                                  # the honest answer, with its certificate
        dist.append(max(r_k.residual, 1e-17))
        out_err.append(max(np.abs(r_k.network().solve(X).U - fixed_point_outputs(w_k, X)).max(), 1e-17))
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    axes[0].plot(U_fp.ravel(), U_qp.ravel(), "o", ms=3, alpha=0.6)
    lim = np.abs(U_fp).max() * 1.05
    axes[0].plot([-lim, lim], [-lim, lim], "k-", lw=0.8, label="equal")
    axes[0].set_xlabel("network output at its fixed point")
    axes[0].set_ylabel("solution of the recovered QP")
    axes[0].set_title("Random monotone network (m = 5) → QP")
    axes[0].legend()
    axes[1].loglog(skews[1:], dist[1:], "o-", label="‖W − W_nearest‖ / ‖I − W‖")
    axes[1].loglog(skews[1:], out_err[1:], "s--", label="max |U_nearest QP − U_network|")
    axes[1].set_xlabel("skew-symmetric part of I − W (scale)")
    axes[1].set_ylabel("mismatch")
    axes[1].set_title("Non-symmetric W: no MPC-like QP; nearest one")
    axes[1].legend(fontsize=8)
    axes[1].grid(alpha=0.3, which="both")
    fig.tight_layout()
    fig.savefig(args.output / "converse_random_networks.png", dpi=120)
    # figures stay open so that the documentation build shows them

    # 4. other activations as sums of shifted ReLUs ----------------------------------------------
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    z = np.linspace(-5, 5, 2001)
    for act, color in [("tanh", "C0"), ("sigmoid", "C1")]:
        ap = relu_approximation(act, (-4.0, 4.0), 6)
        axes[0].plot(z, ap.target(z), color=color, lw=2, alpha=0.5, label=f"{act}")
        axes[0].plot(z, ap(z), "--", color=color, label=f"{ap.n_relu} ReLUs, error ≤ {ap.global_error:.3f}")
        pieces = [2, 4, 8, 16, 32, 64] if not args.small else [2, 4, 8, 16]
        errs = [relu_approximation(act, (-4.0, 4.0), k) for k in pieces]
        axes[1].loglog(pieces, [e.max_error for e in errs], "o-", color=color, label=f"{act}: certified error")
        axes[1].loglog(pieces, [e.a_priori_error for e in errs], ":", color=color, label=f"{act}: max|φ''| h²/8")
    axes[0].set_xlabel("z")
    axes[0].set_ylabel("activation")
    axes[0].set_title("6 pieces on [-4, 4], constant outside")
    axes[0].legend(fontsize=8)
    axes[0].grid(alpha=0.3)
    axes[1].set_xticks(pieces, [str(k) for k in pieces])
    axes[1].minorticks_off()
    axes[1].set_xlabel("pieces on [-4, 4]")
    axes[1].set_ylabel("max |φ − φ̃| on the interval")
    axes[1].set_title("Approximation error falls as h²")
    axes[1].legend(fontsize=8)
    axes[1].grid(alpha=0.3, which="both")
    fig.tight_layout()
    fig.savefig(args.output / "converse_relu_approximation.png", dpi=120)
    # figures stay open so that the documentation build shows them
    print(f"plots written to {args.output}")


if __name__ == "__main__":
    main()
