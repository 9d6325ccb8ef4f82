"""
Quadcopter: tracking an altitude reference
==========================================

The OSQP documentation's quadcopter (:func:`mpc2nn.systems.quadcopter`, 12 states,
4 rotor thrusts, horizon 10, sampling time 0.1 s) follows an altitude schedule: it
climbs from hover at altitude 0 to 1, and later descends to 0.5. Its state is
``(φ, θ, ψ, x, y, z, φ̇, θ̇, ψ̇, ẋ, ẏ, ż)`` (roll, pitch, yaw, position and their
rates; equal thrust on all rotors moves only ``z`` and ``ż``, as the script
checks). Roll and pitch are bounded by ±π/6 and the altitude ``z = x_6`` by
``z >= -1``, the floor; the inputs are thrust deviations from hover, in
``[-0.99, 2.41]``. The quadcopter starts 5 m off to the side, so it also has to
tilt, up to the bound.

``tracking=True`` makes the references network inputs, while the constraints
stay in absolute coordinates (regulating ``x - x_ref`` instead would move the
floor with the reference). A rate weight and rate bounds ``|Δu| <= 0.2`` smooth
the thrusts; they act on ``u_0 - u_prev``, so the previous input is a network
input too: ``θ = (x, u_prev, x_ref, u_ref)``. Move blocking holds the input over
blocks of the horizon and shrinks the network. Each network runs the closed loop
beside MPC through OSQP on the same problem.

Run it with::

    python examples/quadcopter_tracking.py --output out/
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import mpc2nn
from mpc2nn import plotting


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description="Quadcopter altitude tracking: implicit networks vs MPC.")
    parser.add_argument("--output", type=Path, default=Path("out"),
                        help="folder for the figures and files it writes (default: out, created if missing)")
    parser.add_argument("--steps", type=int, default=80,
                        help="closed-loop steps (default: 80)")
    parser.add_argument("--small", action="store_true", help="50 steps (used by the tests)")
    args = parser.parse_args(argv)
    steps = 50 if args.small else args.steps

    problem = mpc2nn.systems.quadcopter().replace(
        tracking=True, du_weight=0.1 * np.eye(4), du_min=np.full(4, -0.2), du_max=np.full(4, 0.2))
    blocked = problem.replace(move_blocking=(1, 1, 2, 3, 3))  # 5 input moves instead of 10

    # The reference: an altitude schedule turned into steady states. Hovering is
    # a steady state at any position and yaw; ``steady_state_target`` returns the
    # least-norm one (level, at x = y = 0, yaw 0, zero thrust deviation).
    altitude = np.eye(12)[[5]]  # the output z = x_6
    moved = [f"x_{i + 1}" for i in np.flatnonzero(problem.B.sum(axis=1))]
    print(f"equal thrust on all rotors moves only {', '.join(moved)}: the altitude and its rate")
    y_ref = np.where(np.arange(steps + 1) < steps // 2, 1.0, 0.5)
    targets = [mpc2nn.steady_state_target(problem, [y], altitude) for y in y_ref]
    print(f"targets within the bounds: {all(t.admissible for t in targets)}, unique: {targets[0].unique}")
    x_ref = np.array([t.x for t in targets])        # (steps + 1, 12)
    u_ref = np.array([t.u for t in targets[:-1]])   # (steps, 4)
    x0 = np.zeros(12)
    x0[3], x0[4] = 4.0, -3.0  # hovering at altitude 0, 5 m from the target position

    # Closed loops: MPC through OSQP and the exact implicit network, with and
    # without move blocking. ``simulate`` feeds each step's previous input and
    # references to the controller.
    runs, sizes, nets = {}, {}, {}
    for label, prob in [("", problem), (", blocked", blocked)]:
        net = nets[label] = mpc2nn.compile(prob)
        sizes[label] = (net.m, net.qp.n_z, net.n_theta)
        for name, ctrl in [("MPC (OSQP)", prob), ("implicit network", net)]:
            runs[name + label] = mpc2nn.simulate(prob, ctrl, x0, steps, reference=x_ref, input_reference=u_ref,
                                                 u_prev=np.zeros(4))  # hovering before the start

    print(f"{'controller':<26} {'cost':>9} {'state viol.':>11} {'input viol.':>11} {'|z - z_ref| at end':>18}")
    for name, tr in runs.items():
        print(f"{name:<26} {tr.cost:>9.3f} {tr.state_violation.max():>11.1e} {tr.input_violation.max():>11.1e} "
              f"{abs(tr.states[-1, 5] - y_ref[-1]):>18.2e}")
    # the networks are exact; what is left is OSQP's accuracy
    gap = max(float(np.abs(runs["MPC (OSQP)" + b].states - runs["implicit network" + b].states).max())
              for b in ("", ", blocked"))
    print(f"max |x_network - x_MPC| over both runs: {gap:.2e}")
    print(f"network input θ = (x, u_prev, x_ref, u_ref): {sizes[''][2]} numbers")
    cost_increase = runs["implicit network, blocked"].cost / runs["implicit network"].cost - 1
    (m, n_z, _), (m_b, n_z_b, _) = sizes[""], sizes[", blocked"]
    print(f"move blocking: network width m {m} -> {m_b}, decisions {n_z} -> {n_z_b}, "
          f"closed-loop cost +{100 * cost_increase:.2f} %")
    # Blocking also shrinks the feasible set: try the blocked network on the
    # states of the unblocked run (its input θ built with ``qp.parameters``).
    run = runs["implicit network"]
    theta = nets[", blocked"].qp.parameters(run.states[:-1], u_prev=np.vstack([np.zeros(4), run.inputs[:-1]]),
                                            x_ref=x_ref[:-1], u_ref=u_ref)
    status = nets[", blocked"].solve(theta).status
    print(f"blocked problem on the unblocked run's states: infeasible at steps "
          f"{np.flatnonzero(status == 'infeasible').tolist()} of {steps}")

    # Altitude with its reference, roll and pitch, thrusts and thrust rates.
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mpc, net, net_b = runs["MPC (OSQP)"], runs["implicit network"], runs["implicit network, blocked"]
    pair = {"MPC": mpc, "network": net}
    t = np.arange(steps + 1) * problem.dt  # seconds
    fig, ax = plt.subplot_mosaic([["z", "z", "xy", "xy", "tilt", "tilt"], ["u", "u", "u", "du", "du", "du"]],
                                 figsize=(15, 7.5), layout="constrained")
    ax["z"].step(t, y_ref, where="post", color="k", lw=0.8, ls=":", label="reference")
    ax["z"].plot(t, mpc.states[:, 5], color="C0", lw=3, alpha=0.35, label="MPC (OSQP)")
    ax["z"].plot(t, net.states[:, 5], color="C0", ls="--", label="implicit network")
    ax["z"].plot(t, net_b.states[:, 5], color="C1", ls="-.", label="implicit network, blocked")
    ax["z"].set(xlabel="time [s]", ylabel="altitude z [m]", title="altitude and its reference")
    ax["z"].legend(fontsize=7)
    plotting.plot_states(pair, indices=[3, 4], ax=ax["xy"], bounds=problem)  # names and units
    ax["xy"].set_title("horizontal position x, y (target 0)")
    plotting.plot_states(pair, indices=[0, 1], ax=ax["tilt"], bounds=problem)
    ax["tilt"].set_title(r"roll, pitch (bounds $\pm\pi/6$ dotted)")
    plotting.plot_inputs(pair, ax=ax["u"], bounds=problem)
    ax["u"].set_title("thrust deviations from hover (bounds dotted)")
    rates = np.diff(np.vstack([np.zeros(4), net.inputs]), axis=0)
    for i in range(4):
        ax["du"].step(t[:-1], rates[:, i], where="post", color=f"C{i + 4}", label=f"thrust {i + 1}")
    for v, side in ((problem.du_min[0], "min"), (problem.du_max[0], "max")):
        ax["du"].axhline(v, color="k", lw=0.8, ls=":", label="rate bounds" if side == "max" else None)
    ax["du"].set(xlabel="time [s]", ylabel="thrust change per step",
                 title=r"thrust rates $u_k - u_{k-1}$, network (bounds dotted)")
    ax["du"].legend(fontsize=7, ncol=5, loc="lower right")
    args.output.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.output / "quadcopter_tracking.png", dpi=110)
    print(f"plot written to {args.output / 'quadcopter_tracking.png'}")
    return dict(runs=runs, gap=gap, sizes=sizes, blocked_status=status, y_ref=y_ref, x_ref=x_ref, u_ref=u_ref,
                problem=problem, blocked=blocked)


if __name__ == "__main__":
    main()
