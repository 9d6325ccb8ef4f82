"""
Soft state constraints: the double integrator outside its feasible set
======================================================================

The double integrator (:func:`mpc2nn.systems.double_integrator`: ``|x_1| <= 5``,
``|x_2| <= 2``, ``|u| <= 1``, horizon 20) has states from which no input keeps the
predicted states within their bounds: too fast, too close to a wall. There the
hard MPC problem is infeasible and its implicit network has no fixed point.
``soft_state_penalty=(ρ_q, ρ_l)`` gives every state-bound row a slack
``s >= 0`` costing ``ρ_q s² + ρ_l s``. The soft problem is feasible everywhere;
with ``ρ_l`` above the largest multiplier of the hard problem the penalty is
*exact*: wherever the hard problem is feasible, the soft one has the same
solution and zero slacks. A purely quadratic penalty is not exact: it trades a
little violation for cost even where none is needed.

The script maps the problems over a box larger than the sampling box, then runs
closed loops: from a state inside the bounds that the hard MPC cannot handle
(1 from the wall at the top speed, braking at most 1 per step), and from one
near the edge of the hard feasible set, where only the quadratic penalty
crosses a bound.

Run it with::

    python examples/soft_constraints.py --output out/
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import mpc2nn


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description="Soft state constraints on the double integrator.")
    parser.add_argument("--output", type=Path, default=Path("out"),
                        help="folder for the figures and files it writes (default: out, created if missing)")
    parser.add_argument("--small", action="store_true", help="a coarser grid (used by the tests)")
    args = parser.parse_args(argv)
    n1, n2 = (25, 17) if args.small else (61, 41)

    hard = mpc2nn.systems.double_integrator()
    rho_l = 100.0
    penalties = {f"exact (ρ_q, ρ_l) = (1, {rho_l:g})": (1.0, rho_l), "quadratic ρ_q = 100": 100.0}
    problems = {"hard": hard, **{k: hard.replace(soft_state_penalty=v) for k, v in penalties.items()}}
    nets = {k: mpc2nn.compile(p) for k, p in problems.items()}

    # The grid: where is the hard problem feasible, and what do the soft
    # networks do there and elsewhere? ``net.solve`` flags infeasible states
    # (status "infeasible", NaN outputs) and returns the slacks of soft rows.
    g1, g2 = np.linspace(-7.5, 7.5, n1), np.linspace(-3, 3, n2)
    G1, G2 = np.meshgrid(g1, g2)
    X = np.column_stack([G1.ravel(), G2.ravel()])
    sols = {k: net.solve(X) for k, net in nets.items()}
    feasible = sols["hard"].feasible
    print(f"hard problem feasible at {feasible.sum()} of {len(X)} grid states ({feasible.mean():.0%})")

    # The penalty is exact above the largest multiplier of the hard problem's
    # state rows; the QP minimises half the cost, so that is 2 max λ.
    state_rows = np.array([lab.startswith("x_") for lab in nets["hard"].qp.row_labels])
    lam = np.maximum(sols["hard"].y[feasible][:, state_rows], 0.0)
    print(f"largest multiplier of a hard state row on the grid: {2 * lam.max():.2f} (cost scale) < ρ_l = {rho_l:g}")

    print(f"{'penalty':<28} {'solved':>7} {'max |U - U_hard|, hard feasible':>32} {'max slack there':>15} "
          f"{'min slack elsewhere':>19}")
    gaps = {}
    for k in penalties:
        s = sols[k]
        gaps[k] = float(np.abs(s.U[feasible] - sols["hard"].U[feasible]).max())
        print(f"{k:<28} {np.mean(s.status == 'solved'):>7.0%} {gaps[k]:>32.2e} {s.slack[feasible].max():>15.2e} "
              f"{s.slack[~feasible].max(axis=1).min():>19.2e}")

    # Closed loop from x0 = (4, 2): within the bounds, but 1 before the wall at
    # the top speed, so no input keeps x_1 <= 5. The hard network stops at once;
    # the exact soft network (and MPC through OSQP on the soft problem) brakes,
    # violates the bound as little as it must and returns.
    exact, quadratic = penalties
    x0, steps = np.array([4.0, 2.0]), 25
    runs = {name: mpc2nn.simulate(hard, nets[name], x0, steps) for name in ("hard", exact)}
    runs["exact, MPC (OSQP)"] = mpc2nn.simulate(hard, problems[exact], x0, steps)
    slack = nets[exact].solve(runs[exact].states[:-1]).slack.max(axis=1)  # largest slack per step
    gap = float(np.abs(runs[exact].states - runs["exact, MPC (OSQP)"].states).max())
    print(f"\nfrom x0 = {x0.tolist()}: hard network status '{runs['hard'].status[0]}', stopped at step "
          f"{runs['hard'].stopped_at}")
    for name in (exact, "exact, MPC (OSQP)"):
        tr = runs[name]
        violated = np.flatnonzero(tr.state_violation > 1e-9).tolist()
        print(f"{name:<28} cost {tr.cost:.3f}, largest violation {tr.state_violation.max():.3f} at steps "
              f"{violated}, |x_T| = {np.abs(tr.states[-1]).max():.1e}")
    print(f"max |x_network - x_MPC|: {gap:.2e}")
    print("largest slack per step: " + " ".join(f"{v:.2f}" for v in slack[:6]) + " ...")

    # From a state where the hard problem is feasible, the exact penalty keeps
    # every bound; the quadratic one cuts the corner past the wall to save cost.
    x1 = np.array([3.2, 1.9])
    near = {name: mpc2nn.simulate(hard, nets[name], x1, steps) for name in ("hard", exact, quadratic)}
    print(f"\nfrom x0 = {x1.tolist()} (hard feasible):")
    for name, tr in near.items():
        print(f"{name:<28} cost {tr.cost:.3f}, largest violation {tr.state_violation.max():.1e}")

    # Left: the hard feasible region (grey) and, outside it, the largest slack
    # the exact soft network needs, with the closed loop from (4, 2). State
    # bounds hold from k = 1 on, so states outside the box that one step brings
    # back are feasible too. Middle: how far the quadratic penalty's first input
    # is from the hard one (1e-12 where they agree). Right: slacks and the actual
    # violation of the closed loop over time.
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = mpc2nn.problem.signal_labels(hard, "state")  # "position [m]", "velocity [m/s]"
    fig, (ax, ax1, ax2) = plt.subplots(1, 3, figsize=(17, 4.6), gridspec_kw=dict(width_ratios=[1.3, 1.3, 1]))
    need = np.where(feasible, np.nan, sols[exact].slack.max(axis=1)).reshape(G1.shape)
    err = np.abs(sols[quadratic].U[:, 0] - sols["hard"].U[:, 0]).reshape(G1.shape)
    for a, values, cmap, label in [(ax, need, "YlOrRd", "largest slack, exact penalty"),
                                   (ax1, np.log10(np.maximum(err, 1e-12)), "viridis",
                                    r"$\log_{10}|u_0 - u_{0,\mathrm{hard}}|$, quadratic penalty")]:
        a.set_facecolor("0.8")
        mesh = a.pcolormesh(G1, G2, np.ma.masked_invalid(values), shading="auto", cmap=cmap)
        fig.colorbar(mesh, ax=a, label=label)
        a.plot([-5, 5, 5, -5, -5], [-2, -2, 2, 2, -2], color="k", lw=1, ls=":", label="state bounds")
        a.set(xlabel=names[0], ylabel=names[1])
    ax.plot(*runs[exact].states.T, "-o", color="C0", ms=3, lw=1.2, label="closed loop, exact penalty")
    ax.plot(*x0, "k*", ms=12, label="$x_0$ (hard MPC infeasible)")
    ax.set_title("grey: hard MPC feasible; colour: slack needed")
    ax.legend(fontsize=8, loc="lower left")
    ax1.set_title("quadratic penalty vs hard MPC (grey: hard infeasible)")

    t = np.arange(steps + 1) * hard.dt  # seconds
    ax2.step(t[:-1], slack, where="post", color="C0", label="largest slack of the plan")
    ax2.plot(t, runs[exact].state_violation, "--.", color="C3", label="actual violation")
    ax2.set(xlabel="time [s]", ylabel="slack / violation (m or m/s)", title="closed loop from (4, 2), exact penalty")
    ax2.legend(fontsize=8)
    fig.tight_layout()
    args.output.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.output / "soft_constraints.png", dpi=110)
    print(f"plot written to {args.output / 'soft_constraints.png'}")
    return dict(X=X, solutions=sols, gaps=gaps, runs=runs, slack=slack, x0=x0, gap=gap, near=near, x1=x1,
                problems=problems)


if __name__ == "__main__":
    main()
