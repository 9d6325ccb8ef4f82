"""
Critical regions: the MPC law as a proven partition
===================================================

The solution of a linear MPC problem is piecewise affine in the state.
:func:`mpc2nn.critical_regions` enumerates the pieces — the critical regions,
each with its optimal active set and affine laws — over the sample box, and
proves that they cover every feasible state of it (the completeness
certificate). The first input, the one applied, has far fewer distinct laws
than there are regions; the plot colours the regions by that law. The
partition then evaluates the MPC law by point location, here checked against
DAQP on held-out states.

    python examples/critical_regions.py --output out/
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import mpc2nn


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description="Critical regions of the double integrator and the paper's example.")
    parser.add_argument("--output", type=Path, default=Path("out"),
                        help="folder for the plot critical_regions.png (default: out, created if missing)")
    parser.add_argument("--small", action="store_true", help="fewer held-out states (used by the tests)")
    args = parser.parse_args(argv)
    n = 200 if args.small else 5000

    problems = {"double integrator (N = 20)": mpc2nn.systems.double_integrator(),
                "paper's example (corrected)": mpc2nn.systems.drummond2024("corrected")}
    parts = {}
    for label, prob in problems.items():
        part = mpc2nn.critical_regions(prob)
        parts[label] = part
        print(f"{label}:")
        print(part.summary())
        X = mpc2nn.sample_states(prob, n, seed=1)
        U = part.evaluate(X, "U")
        try:
            ref = mpc2nn.solve_daqp(prob, X).U
            print(f"  max ‖U - U_daqp‖∞ on {n} held-out states: {np.abs(U - ref).max():.2e}")
        except mpc2nn.MissingDependencyError:
            print("  (DAQP not installed: pip install 'mpc2nn[daqp]')")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mpc2nn.evaluation.plotting import plot_partition

    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2), layout="constrained")
    for ax, (label, part) in zip(axes, parts.items(), strict=True):
        plot_partition(part, ax=ax)
        ax.set_title(f"{label}\n{part.n_regions} regions, {part.pieces.n_pieces} first-input laws ({part.status})",
                     fontsize=9)
    args.output.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.output / "critical_regions.png", dpi=120)
    return parts


if __name__ == "__main__":
    main()
