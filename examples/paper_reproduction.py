"""
Reproducing the paper: 1000 unravelled layers in closed loop, then far fewer
============================================================================

Drummond, Baldivieso-Monasterios and Valmorbida (L4DC 2024) simulate their
example for 25 steps from ``x0 = (-200, -200)`` with an explicit network of 1000
layers ``w[j+1] = D relu(w[j]) + ζ(x)`` (``α = 1`` on constraint rows scaled by
0.1, no feedback), the layer state carried from one time step to the next. This
script rebuilds that network from the published QP
(:func:`mpc2nn.systems.drummond2024` with ``variant="published"``, quirks kept),
runs the closed loop against MPC (OSQP on the same QP), and writes the paper's
figures: states and input, network vs MPC, and the residual
``‖w - D relu(w) - ζ‖₂`` against the layer for steps 1–7. ``DIR/summary.json``
holds the applied inputs, the largest state gap and the depth.

It then takes the corrected example and mpc2nn's default construction (an
ADMM unroll tuned on sampled states) and shows the same closed-loop agreement
with a small fraction of the layers.

Run it with::

    python examples/paper_reproduction.py --output out/
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

import mpc2nn


def closed_loop_pair(qp, A, B, explicit, *, warm_start, steps, x0):
    """Network and MPC (OSQP) closed loops on the plant ``(A, B)``; returns both runs and the controller."""
    ctrl = mpc2nn.ExplicitController(explicit, warm_start=warm_start, record_residuals=True)
    net_run = mpc2nn.simulate((A, B), ctrl, x0, steps)
    mpc_run = mpc2nn.simulate((A, B), mpc2nn.MPCController(qp), x0, steps)
    return net_run, mpc_run, ctrl


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description="Reproduce the paper's closed loop and residual figures.")
    parser.add_argument("--output", type=Path, default=Path("out"),
                        help="folder for the figures and files it writes (default: out, created if missing)")
    parser.add_argument("--small", action="store_true",
                        help="fewer tuning states for the corrected part (the reproduction itself is unchanged)")
    args = parser.parse_args(argv)
    settings = mpc2nn.systems.DRUMMOND2024_PAPER_SETTINGS
    steps, depth, x0 = settings["closed_loop_steps"], settings["depth"], np.array(settings["x0"])
    corrected = mpc2nn.systems.drummond2024("corrected")
    A, B = corrected.A, corrected.B  # the plant: the same (A, B) in both variants

    # 1. the published network, exactly as the authors' script builds it
    published = mpc2nn.systems.drummond2024("published")
    paper_net = mpc2nn.unravel(mpc2nn.compile(published, alpha=settings["alpha"]), depth=depth, method="paper")
    net_run, mpc_run, ctrl = closed_loop_pair(published, A, B, paper_net, warm_start=settings["warm_start"],
                                              steps=steps, x0=x0)
    gap = float(np.abs(net_run.states - mpc_run.states).max())
    residuals = np.array(ctrl.residuals)  # (steps, depth)
    to_1e3 = [int(np.argmax(r <= 1e-3)) + 1 if (r <= 1e-3).any() else None for r in residuals]
    print(f"published example, paper's network: depth {depth}, alpha = 1, K = 0, warm start")
    print("step  network u0   MPC u0      residual after layer 1   layers to 1e-3")
    for k in range(10):
        print(f"{k + 1:>4}  {net_run.inputs[k, 0]:>10.4f}  {mpc_run.inputs[k, 0]:>8.4f}   "
              f"{residuals[k, 0]:>22.3f}   {to_1e3[k]}")
    print(f"max |x_network - x_MPC| over {steps} steps: {gap:.2e}")

    # 2. the corrected example with mpc2nn's default construction, depth chosen for the same agreement
    net_c = mpc2nn.compile(corrected)
    tune = mpc2nn.sample_states(corrected, 100 if args.small else 500, seed=3)
    default = mpc2nn.unravel(net_c, tol=1e-3, states=tune)
    plain = mpc2nn.unravel(net_c, depth=depth, method="paper")
    d_run, d_mpc, _ = closed_loop_pair(corrected, A, B, default, warm_start=False, steps=steps, x0=x0)
    p_run, _, _ = closed_loop_pair(corrected, A, B, plain, warm_start=True, steps=steps, x0=x0)
    gap_default = float(np.abs(d_run.states - d_mpc.states).max())
    gap_plain = float(np.abs(p_run.states - d_mpc.states).max())
    print(f"\ncorrected example: default construction ({default.method}) with depth {default.depth}: "
          f"max |x_network - x_MPC| = {gap_default:.2e}")
    print(f"corrected example: the paper's form with alpha = 1/λmax, depth {depth}, warm start: "
          f"max |x_network - x_MPC| = {gap_plain:.2e}")

    args.output.mkdir(parents=True, exist_ok=True)
    summary = dict(
        depth=depth, first_inputs=net_run.inputs[:, 0].tolist(), mpc_first_inputs=mpc_run.inputs[:, 0].tolist(),
        max_state_gap=gap, residual_after_first_layer=residuals[:, 0].tolist(), layers_to_residual_1e_3=to_1e3,
        corrected=dict(method=default.method, depth=default.depth, max_state_gap=gap_default,
                       paper_form_depth=depth, paper_form_max_state_gap=gap_plain))
    (args.output / "summary.json").write_text(json.dumps(summary, indent=1))
    _figures(args.output, net_run, mpc_run, residuals, d_run, d_mpc, default.depth)
    print(f"figures and summary.json written to {args.output}")
    return summary


def _figures(out, net_run, mpc_run, residuals, d_run, d_mpc, d_depth):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mpc2nn import plotting

    # one panel per signal, the network over MPC, and their difference (the paper's ~6e-3) in the last panel
    runs = {"MPC": mpc_run, "network (1000 layers)": net_run}
    fig = plotting.plot_trajectories(runs, None,
                                     title="published example from (-200, -200): network vs MPC")
    fig.savefig(out / "paper_closed_loop.png", dpi=110)

    fig, ax = plt.subplots(figsize=(7, 4))
    plotting.plot_residuals({f"time step {k + 1}": residuals[k] for k in range(7)}, threshold=1e-3, ax=ax)
    ax.set(ylabel=r"$\|w - D\,\mathrm{relu}(w) - \zeta\|_2$",
           title="residual against layer, steps 1-7 (warm start across steps)")
    fig.tight_layout()
    fig.savefig(out / "paper_residuals.png", dpi=110)

    runs = {"MPC": d_mpc, f"default construction ({d_depth} layers)": d_run}
    fig = plotting.plot_trajectories(runs, mpc2nn.systems.drummond2024("corrected"),
                                     title=f"corrected example: the default construction ({d_depth} layers) vs MPC")
    fig.savefig(out / "corrected_default_construction.png", dpi=110)


if __name__ == "__main__":
    main()
