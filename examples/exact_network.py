"""
Exact explicit network: the MPC law as a small ReLU network, proven
===================================================================

On a complete partition (:func:`mpc2nn.critical_regions`) the first input is
a continuous piecewise-affine function with few distinct pieces.
:func:`mpc2nn.exact_network` writes it as a max–min of those pieces, a
network of Linear and ReLU layers only, and
:meth:`~mpc2nn.ExactNetwork.certify` proves by LP, region by region, that it
*is* the MPC law on the partition's domain. Here for the paper's example: the
partition coloured by first-input law, the network's size and proof, its
error against DAQP on held-out states (a sampled check, beside the proof),
and the network against the MPC in closed loop.

    python examples/exact_network.py --output out/
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import mpc2nn


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description="The paper's example as a proven exact ReLU network.")
    parser.add_argument("--output", type=Path, default=Path("out"), help="folder for the figures (created)")
    parser.add_argument("--small", action="store_true", help="fewer held-out states (used by the tests)")
    args = parser.parse_args(argv)
    n = 200 if args.small else 10_000

    prob = mpc2nn.systems.drummond2024("corrected")
    part = mpc2nn.critical_regions(prob)
    net = mpc2nn.exact_network(part)
    cert = net.certify()
    print(part.summary())
    print(f"exact network: depth {net.depth}, width {net.width}, {net.n_params} parameters, {net.flops} flops "
          f"per state, {net.lattice.n_terms} affine terms")
    print(cert.summary())
    X = mpc2nn.sample_states(prob, n, seed=1)
    err = None
    try:
        ref = mpc2nn.solve_daqp(prob, X)
        err = float(np.abs(net.evaluate(X) - ref.U[:, :1])[ref.feasible].max())
        print(f"max |u0 - u0_daqp| on {n} held-out states (sampled check): {err:.2e}")
    except mpc2nn.MissingDependencyError:
        print("(DAQP not installed: pip install 'mpc2nn[daqp]')")

    x0 = np.array([-200.0, -200.0])
    loop_net = mpc2nn.simulate(prob, mpc2nn.ExplicitController(net), x0, 25)
    loop_mpc = mpc2nn.simulate(prob, mpc2nn.MPCController(prob), x0, 25)
    gap = float(np.abs(loop_net.states - loop_mpc.states).max())
    print(f"closed loop from {x0}: max state gap network vs MPC over 25 steps {gap:.2e}")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mpc2nn.evaluation.plotting import plot_partition

    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(10, 4.2), layout="constrained")
    plot_partition(part, ax=ax0)
    ax0.plot(*loop_net.states.T, "k.-", lw=1, ms=3, label="closed loop (network)")
    ax0.legend(fontsize=8, loc="lower right")
    ax0.set_title(f"{part.n_regions} regions, {part.pieces.n_pieces} first-input laws; network depth "
                  f"{net.depth}, {net.n_params} parameters ({cert.status})", fontsize=9)
    t = np.arange(loop_net.inputs.shape[0])
    ax1.step(t, loop_mpc.inputs[:, 0], where="post", lw=3, alpha=0.4, label="MPC (OSQP)")
    ax1.step(t, loop_net.inputs[:, 0], where="post", lw=1, color="k", label="exact network")
    ax1.set_xlabel("step")
    ax1.set_ylabel("u")
    ax1.legend(fontsize=8)
    ax1.set_title(f"closed loop: max state gap {gap:.1e}", fontsize=9)
    args.output.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.output / "exact_network.png", dpi=120)
    return dict(partition=part, network=net, certificate=cert, err_daqp=err, gap=gap)


if __name__ == "__main__":
    main()
