"""
Double integrator: the LQR terminal set and the feasible region
===============================================================

MPC with a short horizon is only recursively feasible with a suitable terminal
constraint. ``MPCProblem(..., terminal_set="lqr")`` adds the maximal positively
invariant set of the LQR closed loop under the constraints. The plot shows that
set, the states where MPC with horizon 2 is feasible with and without it (from
the exact implicit solve, which flags infeasible states), and closed loops of
the exact network from a few states. With horizon 2 the terminal set removes
part of the feasible region; from horizon 4 on it no longer binds here.

Run it with::

    python examples/double_integrator_terminal_set.py --output out/
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import mpc2nn


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description="Double integrator: LQR terminal set and feasible region.")
    parser.add_argument("--output", type=Path, default=Path("out"),
                        help="folder for the figures and files it writes (default: out, created if missing)")
    parser.add_argument("--small", action="store_true", help="a coarser grid (used by the tests)")
    args = parser.parse_args(argv)
    n = 60 if args.small else 200

    plain = mpc2nn.systems.double_integrator().replace(horizon=2)
    with_set = plain.replace(terminal_set="lqr")
    term = with_set.terminal_constraint
    print(f"LQR terminal set: {term.C.shape[0]} facets")

    g1, g2 = np.linspace(-5, 5, n), np.linspace(-2, 2, n)
    G1, G2 = np.meshgrid(g1, g2)
    X = np.column_stack([G1.ravel(), G2.ravel()])
    feas_plain = mpc2nn.compile(plain).solve(X).feasible.reshape(G1.shape)
    feas_set = mpc2nn.compile(with_set).solve(X).feasible.reshape(G1.shape)
    print(f"feasible share of the box: {feas_plain.mean():.3f} without, {feas_set.mean():.3f} with the terminal set")

    net = mpc2nn.compile(with_set)
    starts = [[-4.5, 1.5], [4.0, -0.5], [-1.0, -1.8], [2.5, 1.0]]
    starts = [x for x in starts if net.solve(x).feasible[0]]
    runs = [mpc2nn.simulate(with_set, net, x0, 30) for x0 in starts]
    for x0, tr in zip(starts, runs, strict=True):
        print(f"from {x0}: {'completed' if tr.stopped_at is None else 'stopped'}, cost {tr.cost:.3f}, "
              f"max state violation {tr.state_violation.max():.1e}")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    region = feas_plain.astype(int) + feas_set.astype(int)
    ax.contourf(G1, G2, region, levels=[-0.5, 0.5, 1.5, 2.5], colors=["white", "0.85", "0.7"])
    from scipy.spatial import ConvexHull, HalfspaceIntersection

    vertices = HalfspaceIntersection(np.column_stack([term.C, -term.d]), np.zeros(2)).intersections
    hull = vertices[ConvexHull(vertices).vertices]
    ax.fill(hull[:, 0], hull[:, 1], facecolor="none", edgecolor="C3", lw=2)
    for j, tr in enumerate(runs):
        ax.plot(tr.states[:, 0], tr.states[:, 1], "-o", ms=3, lw=1, color=f"C{j}")
        ax.plot(*tr.states[0], "s", ms=7, color=f"C{j}")
    ax.plot([], [], color="C3", lw=2, label="LQR terminal set")
    ax.fill_between([], [], color="0.7", label="feasible, N = 2 with terminal set")
    ax.fill_between([], [], color="0.85", label="feasible only without it")
    ax.plot([], [], "-o", ms=3, lw=1, color="0.3", label="closed loops (square: start), 1 s per dot")
    x_name, v_name = mpc2nn.problem.signal_labels(plain, "state")
    ax.set(xlabel=x_name, ylabel=v_name, xlim=(-5, 5), ylim=(-2, 2),
           title="double integrator: terminal set, feasible regions, closed loops")
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    args.output.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.output / "double_integrator_terminal_set.png", dpi=110)
    print(f"plot written to {args.output / 'double_integrator_terminal_set.png'}")
    return dict(runs=runs, feasible_plain=feas_plain, feasible_with_set=feas_set)


if __name__ == "__main__":
    main()
