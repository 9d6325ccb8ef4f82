"""
Verify a learned controller: the proven worst-case error of a network against MPC
==================================================================================

The "approximate MPC" workflow trains a small ReLU network on sampled MPC solutions and puts it in the
loop. Sampling its error on test states says little about the states not sampled; ``mpc2nn.verify``
proves the largest error over the whole region and returns the state where it happens:

1. compute the double integrator's critical regions (the MPC law as a proven partition);
2. train a ReLU MLP on DAQP's first input at sampled states (torch, Adam), and unroll the exact implicit
   network into an explicit one (``mpc2nn.unravel``);
3. verify both over the sample box: proven upper bound, lower bound at the witness (re-solved by the
   exact solver), and the input-bound violation;
4. plot each network's error over the box (on a grid, the law by the exact solver) with its witness.

Run ``python examples/verify_network.py --output DIR`` (``--small`` for a quick run).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

import mpc2nn


def train_mlp(problem, hidden, n, steps, seed=0):
    """A float64 ReLU MLP fitted to DAQP's first input on ``n`` sampled feasible states."""
    X = mpc2nn.sample_states(problem, n, seed=seed)
    U = mpc2nn.solve_daqp(problem, X).U[:, :1]
    torch.manual_seed(seed)
    layers, width = [], X.shape[1]
    for h in hidden:
        layers += [torch.nn.Linear(width, h), torch.nn.ReLU()]
        width = h
    net = torch.nn.Sequential(*layers, torch.nn.Linear(width, 1)).double()
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    Xt, Ut = torch.as_tensor(X.copy()), torch.as_tensor(U.copy())
    for _ in range(steps):
        opt.zero_grad()
        loss = ((net(Xt) - Ut) ** 2).mean()
        loss.backward()
        opt.step()
    return net


def main(argv=None):
    parser = argparse.ArgumentParser(description="Verify a trained MLP and an unrolled network against MPC.")
    parser.add_argument("--output", type=Path, default=Path("out"), help="folder for verify_network.png")
    parser.add_argument("--small", action="store_true", help="a quick run (fewer training steps, coarse grid)")
    args = parser.parse_args(argv)
    problem = mpc2nn.systems.double_integrator()
    law = mpc2nn.compile(problem)
    part = mpc2nn.critical_regions(law)
    print(f"critical regions: {part.n_regions} ({part.status})")
    nets = {
        "MLP 2x[16], trained": train_mlp(problem, (16, 16), 1500, 150 if args.small else 1500),
        "unrolled, J = 3": mpc2nn.unravel(law, depth=3),
    }
    results = {}
    for label, net in nets.items():
        res = mpc2nn.verify(net, part, samples=300 if args.small else 2000)
        results[label] = res
        print(f"\n{label}\n{res.summary()}")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lo, hi = problem.sample_box
    k = 60 if args.small else 200
    g0, g1 = np.meshgrid(np.linspace(lo[0], hi[0], k), np.linspace(lo[1], hi[1], k))
    X = np.column_stack([g0.ravel(), g1.ravel()])
    sol = law.solve(X)
    fig, axes = plt.subplots(1, len(nets), figsize=(5 * len(nets), 4.2), layout="constrained")
    for ax, (label, net) in zip(np.atleast_1d(axes), nets.items(), strict=True):
        with torch.no_grad():
            u = net(torch.as_tensor(X.copy())).numpy()[:, 0]
        err = np.where(sol.feasible, np.abs(u - sol.U[:, 0]), np.nan).reshape(g0.shape)
        im = ax.pcolormesh(g0, g1, err, shading="auto", cmap="viridis")
        fig.colorbar(im, ax=ax, label="|u_net - u_mpc| (grid)")
        res = results[label]
        ax.plot(*res.witness, "r*", ms=14, label=f"witness, error {res.lower_bound:.3g}")
        ax.set_title(f"{label}\nproven max error <= {res.upper_bound:.4g} ({res.status}); grid max "
                     f"{np.nanmax(err):.4g}", fontsize=9)
        ax.set_xlabel("position")
        ax.set_ylabel("velocity")
        ax.legend(loc="lower left", fontsize=8)
    args.output.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.output / "verify_network.png", dpi=110)
    return results


if __name__ == "__main__":
    main()
