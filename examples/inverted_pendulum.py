"""
Inverted pendulum on a cart: fast sampling, an unstable plant
=============================================================

The linearised pendulum (4 states, force input, 100 Hz, horizon 20) is pushed
back upright from a tilt of 0.15 rad while the cart must stay within ±1 m and the
force within ±2. The plant is simulated in continuous time (exact between
samples) when python-control is installed, else with its discretisation. The
exact implicit network and MPC through OSQP run the same loop.

Run it with::

    python examples/inverted_pendulum.py --output out/
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import mpc2nn
from mpc2nn import plotting


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description="Inverted pendulum closed loop: implicit network vs MPC.")
    parser.add_argument("--output", type=Path, default=Path("out"),
                        help="folder for the figures and files it writes (default: out, created if missing)")
    parser.add_argument("--steps", type=int, default=100,
                        help="closed-loop steps (default: 100)")
    parser.add_argument("--small", action="store_true", help="60 steps (used by the tests)")
    args = parser.parse_args(argv)
    steps = 60 if args.small else args.steps

    problem = mpc2nn.systems.inverted_pendulum()
    try:
        import control

        Ac = np.array([[0.0, 1, 0, 0], [0, -10, 9.81, 0], [0, 0, 0, 1], [0, -20, 39.24, 0]])
        Bc = np.array([[0.0], [100], [0], [200]])
        plant, dt = control.ss(Ac, Bc, np.eye(4), np.zeros((4, 1))), 0.01
        print("plant: continuous-time model, exact between samples (zero-order hold)")
    except ImportError:
        plant, dt = problem, None
        print("plant: the discretised model (install python-control for the continuous one)")
    x0 = np.array([0.0, 0.0, 0.15, 0.0])
    runs = {
        "MPC (OSQP)": mpc2nn.simulate(plant, problem, x0, steps, dt=dt, problem=problem),
        "implicit network": mpc2nn.simulate(plant, mpc2nn.compile(problem), x0, steps, dt=dt, problem=problem),
    }
    for name, tr in runs.items():
        print(f"{name:<18} cost {tr.cost:.5f}  max cart |x_1| {np.abs(tr.states[:, 0]).max():.4f} (bound 1)  "
              f"max |u| {np.abs(tr.inputs).max():.4f} (bound 2)  final tilt {tr.states[-1, 2]:+.2e}")
    gap = float(np.abs(runs["MPC (OSQP)"].states - runs["implicit network"].states).max())
    print(f"max |x_network - x_MPC| over the run: {gap:.2e}")

    # one panel per signal, network over MPC, the bounds dotted, their difference in the last panel
    fig = plotting.plot_trajectories(runs, problem, title=f"inverted pendulum from a {x0[2]:g} rad tilt: "
                                     "implicit network vs MPC")
    args.output.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.output / "inverted_pendulum.png", dpi=110)
    print(f"plot written to {args.output / 'inverted_pendulum.png'}")
    return dict(runs=runs, gap=gap)


if __name__ == "__main__":
    main()
