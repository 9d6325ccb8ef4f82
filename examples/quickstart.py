"""
Quick start: the paper's example as an exact implicit network
=============================================================

Compiles the corrected example of Drummond, Baldivieso-Monasterios and Valmorbida
(L4DC 2024), solves the network exactly on sampled states, compares every sample
with OSQP, prints a summary table and writes ``quickstart.png`` (closed loop from
x0 = (-200, -200): network vs OSQP, and the error histogram).

Run it with::

    python examples/quickstart.py --output out/
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

import mpc2nn


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Quick start: the paper's example as an exact implicit network.")
    parser.add_argument("--output", type=Path, default=Path("out"), help="folder for the plot (default: out)")
    parser.add_argument("--samples", type=int, default=1000, help="number of sampled states (default: 1000)")
    parser.add_argument("--small", action="store_true", help="a fast run with 50 samples (used by the tests)")
    args = parser.parse_args(argv)
    n = 50 if args.small else args.samples

    problem = mpc2nn.systems.drummond2024("corrected")
    net = mpc2nn.compile(problem)
    print(f"problem {problem.name}: n_x = {problem.n_x}, n_u = {problem.n_u}, N = {problem.horizon}")
    print(f"implicit network: width m = {net.m}, U = W_f relu(y) + Y_f x with N·n_u = {net.W_f.shape[0]} outputs")

    X = mpc2nn.sample_states(problem, n, seed=0)
    t0 = time.perf_counter()
    sol = net.solve(X)
    t_net = time.perf_counter() - t0
    report = mpc2nn.validate(net, problem, X)
    print()
    print(report.summary())
    print(f"{'exact solve, all samples':<{30}}  {t_net * 1e3:.1f} ms ({sol.summary()})")

    # closed loop from the paper's initial state: exact network vs OSQP
    x_net = x_mpc = np.array([-200.0, -200.0])
    traj_net, traj_mpc, u_net, u_mpc = [x_net], [x_mpc], [], []
    for _ in range(25):
        un = net.solve(x_net).u0[0]
        um = mpc2nn.solve_osqp(problem, x_mpc).u0[0]
        x_net = problem.A @ x_net + problem.B @ un
        x_mpc = problem.A @ x_mpc + problem.B @ um
        traj_net.append(x_net), traj_mpc.append(x_mpc), u_net.append(un), u_mpc.append(um)
    traj_net, traj_mpc = np.array(traj_net), np.array(traj_mpc)
    gap = float(np.abs(traj_net - traj_mpc).max())
    print(f"{'closed loop, 25 steps':<{30}}  max |x_network - x_OSQP| = {gap:.2e}")

    args.output.mkdir(parents=True, exist_ok=True)
    path = args.output / "quickstart.png"
    _plot(path, traj_net, traj_mpc, np.array(u_net), np.array(u_mpc), report)
    print(f"\nplot written to {path}")


def _plot(path, traj_net, traj_mpc, u_net, u_mpc, report):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    k = np.arange(traj_net.shape[0])
    ax = axes[0]
    for i, c in enumerate(("C0", "C1")):
        ax.plot(k, traj_mpc[:, i], color=c, lw=3, alpha=0.35, label=f"$x_{i + 1}$ MPC (OSQP)")
        ax.plot(k, traj_net[:, i], color=c, ls="--", marker=".", label=f"$x_{i + 1}$ implicit network")
    ax.set(xlabel="time step k", ylabel="state", title="closed loop from $x_0 = (-200, -200)$")
    ax.legend(fontsize=8)
    ax = axes[1]
    ax.step(k[:-1], u_mpc[:, 0], where="post", lw=3, alpha=0.35, color="C2", label="MPC (OSQP)")
    ax.step(k[:-1], u_net[:, 0], where="post", ls="--", color="C2", label="implicit network")
    ax.axhline(10, color="gray", lw=0.8, ls=":")
    ax.axhline(-10, color="gray", lw=0.8, ls=":")
    ax.set(xlabel="time step k", ylabel="$u_0$", title="applied input (bounds dotted)")
    ax.legend(fontsize=8)
    ax = axes[2]
    err = report.error[np.isfinite(report.error)]
    err = np.maximum(err, 1e-17)
    ax.hist(np.log10(err), bins=30, color="C3")
    ax.set(xlabel=r"$\log_{10}\,\|U - U_{\mathrm{OSQP}}\|_\infty$", ylabel="states",
           title=f"{err.size} sampled states, max error {err.max():.1e}")
    ax.xaxis.set_major_locator(plt.MaxNLocator(5))  # readable tick labels on a narrow panel
    fig.tight_layout()
    fig.savefig(path, dpi=120)  # left open so that the documentation build can show it


if __name__ == "__main__":
    main()
