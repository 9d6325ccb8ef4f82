"""
Quadcopter: closed loop with state and input constraints
========================================================

The OSQP documentation's quadcopter (12 states ``(φ, θ, ψ, x, y, z, φ̇, θ̇, ψ̇, ẋ, ẏ, ż)``,
4 rotor thrusts, horizon 10) turns from yaw 0 to the example's reference yaw
``ψ = x_3 = 1`` rad while hovering, starting rolled by 0.3 rad. Roll and pitch are
bounded by ±π/6 and the altitude by the floor ``z = x_6 >= -1``; thrust deviations
lie in ``[-0.99, 2.41]``. The exact implicit network and MPC through OSQP run the
same closed loop; the script prints cost, constraint violations and the largest
state gap, and plots yaw, roll and pitch, and the thrusts. (For an altitude
reference with tracking, input rates and move blocking see the quadcopter
tracking tutorial.)

Run it with::

    python examples/quadcopter_closed_loop.py --output out/
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import mpc2nn
from mpc2nn import plotting


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description="Quadcopter closed loop: implicit network vs MPC.")
    parser.add_argument("--output", type=Path, default=Path("out"),
                        help="folder for the figures and files it writes (default: out, created if missing)")
    parser.add_argument("--steps", type=int, default=50,
                        help="closed-loop steps (default: 50)")
    parser.add_argument("--small", action="store_true", help="20 steps (used by the tests)")
    args = parser.parse_args(argv)
    steps = 20 if args.small else args.steps

    problem = mpc2nn.systems.quadcopter()
    ref = mpc2nn.systems.QUADCOPTER_X_REF
    x0 = np.zeros(12)
    x0[0] = 0.3  # start rolled by 0.3 rad as well
    runs = {
        "MPC (OSQP)": mpc2nn.simulate(problem, problem, x0, steps, reference=ref),
        "implicit network": mpc2nn.simulate(problem, mpc2nn.compile(problem), x0, steps, reference=ref),
    }
    print(f"{'controller':<18} {'cost':>10} {'max state viol.':>16} {'max input viol.':>16} {'ms/step':>8}")
    for name, tr in runs.items():
        print(f"{name:<18} {tr.cost:>10.4f} {tr.state_violation.max():>16.2e} {tr.input_violation.max():>16.2e} "
              f"{1e3 * np.median(tr.step_time):>8.2f}")
    gap = float(np.abs(runs["MPC (OSQP)"].states - runs["implicit network"].states).max())
    print(f"max |x_network - x_MPC| over the run: {gap:.2e}")

    # one panel per state and thrust (network over MPC, bounds dotted, the yaw setpoint dash-dotted),
    # their largest difference per step in the last panel
    fig = plotting.plot_trajectories(runs, problem, setpoints={"state": ref},
                                     title="quadcopter from a 0.3 rad roll to yaw 1 rad: implicit network vs MPC")
    args.output.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.output / "quadcopter_closed_loop.png", dpi=110)
    print(f"plot written to {args.output / 'quadcopter_closed_loop.png'}")
    return dict(runs=runs, gap=gap)


if __name__ == "__main__":
    main()
