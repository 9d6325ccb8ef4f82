"""
Your own MPC problem: from a python-control model to a validated network
========================================================================

A mass on a spring with damping, force-controlled, written as a continuous-time
python-control ``StateSpace``:

1. build the :class:`mpc2nn.MPCProblem` (zero-order hold at 0.1 s, force and
   position bounds, terminal weight from the Riccati equation);
2. compile the implicit network and read its well-posedness report;
3. validate it against OSQP on sampled states, including states where no input
   sequence satisfies the constraints;
4. save it, load it back, and run it in closed loop against the continuous plant.

Run it with::

    python examples/your_own_problem.py --output out/
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import mpc2nn
from mpc2nn import plotting


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description="Your own MPC problem, from a python-control model.")
    parser.add_argument("--output", type=Path, default=Path("out"),
                        help="folder for the figures and files it writes (default: out, created if missing)")
    parser.add_argument("--small", action="store_true", help="fewer samples (used by the tests)")
    args = parser.parse_args(argv)
    n = 100 if args.small else 1000
    import control

    # 1. the model: m x'' = -k x - c x' + F, states (position, velocity)
    m, k, c = 1.0, 2.0, 0.3
    plant = control.ss([[0.0, 1.0], [-k / m, -c / m]], [[0.0], [1.0 / m]], np.eye(2), np.zeros((2, 1)))
    problem = mpc2nn.MPCProblem.from_statespace(
        plant, Q=np.diag([10.0, 1.0]), R=[[0.1]], horizon=15, dt=0.1,
        u_min=[-1.0], u_max=[1.0], x_min=[-0.6, -np.inf], x_max=[0.6, np.inf],
        name="spring_mass", sample_box=([-0.6, -1.5], [0.6, 1.5]),
        state_names=["position", "velocity"], state_units=["m", "m/s"], input_names=["force"], input_units=["N"])
    print(f"{problem.name}: n_x = {problem.n_x}, n_u = {problem.n_u}, N = {problem.horizon}, "
          f"terminal weight from {problem.terminal_weight_source}")

    # 2. the network and what is (not) well posed about it
    net = mpc2nn.compile(problem)
    print(net.well_posedness())

    # 3. validation, feasible and infeasible states alike
    X = mpc2nn.sample_states(problem, n, feasible=None, seed=1)
    sol = net.solve(X)
    print(sol.summary())
    report = mpc2nn.validate(net, problem, X)
    print(report.summary())

    # 4. save, load and close the loop on the continuous plant (exact between samples)
    args.output.mkdir(parents=True, exist_ok=True)
    path = mpc2nn.save(net, args.output / "spring_mass.mpc2nn")
    loaded = mpc2nn.load(path, expect_problem=problem)
    too_fast = loaded.solve([0.5, 1.0])  # moving at 1 m/s, 0.1 m from the bound: no input can stop it in time
    print(f"state (0.5, 1.0): {too_fast.status[0]}: {too_fast.reason[0]}")
    x0 = [0.3, 1.0]
    runs = {"MPC (OSQP)": mpc2nn.simulate(plant, problem, x0, 60, dt=0.1, problem=problem),
            "implicit network (loaded)": mpc2nn.simulate(plant, loaded, x0, 60, dt=0.1, problem=problem)}
    gap = float(np.abs(runs["MPC (OSQP)"].states - runs["implicit network (loaded)"].states).max())
    print(f"saved to {path}; closed loop from {x0}: max |x_network - x_MPC| = {gap:.2e}")

    # one panel per signal, named and in seconds (the problem carries dt, names and units), the
    # network over MPC, the bounds dotted, their difference in the last panel
    fig = plotting.plot_trajectories(runs, problem, title=f"spring-mass from x0 = {x0}: loaded network vs MPC")
    fig.savefig(args.output / "your_own_problem.png", dpi=110)
    print(f"plot written to {args.output / 'your_own_problem.png'}")
    return dict(report=report, solution=sol, gap=gap, runs=runs)


if __name__ == "__main__":
    main()
