"""
Depth against accuracy: explicit networks on the double integrator
==================================================================

The double integrator has input and state bounds over a horizon of 20, so its
implicit network is rank-deficient and has no contraction certificate. This
tutorial unravels it with three constructions — the paper's plain form
(``α = 1/λmax``), momentum and the tuned ADMM unroll (mpc2nn's default) — tuned
on one set of states and measured on another:

1. the largest error ``‖U - U*‖∞`` over the test states against depth;
2. the a-posteriori error bound against the true error, state by state. The bound is rigorous for the
   exact ``U*`` at each state it is evaluated at; comparing it with the error on test states is a sampled
   check, and the "true error" is measured against a computed reference (DAQP where installed), so the
   comparison is trusted only to that reference's own accuracy, which is printed. The example prints how
   many of the test states the bound covers and on how many it certifies 1e-6 ("n of N test states");
3. where in the state plane the error sits, at three depths (grey: infeasible).

Run it with::

    python examples/depth_vs_accuracy.py --output out/
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import mpc2nn
from mpc2nn import plotting


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description="Depth against accuracy of explicit networks.")
    parser.add_argument("--output", type=Path, default=Path("out"),
                        help="folder for the figures and files it writes (default: out, created if missing)")
    parser.add_argument("--small", action="store_true", help="fewer states and layers (used by the tests)")
    args = parser.parse_args(argv)
    n_test, J, res = (60, 200, 30) if args.small else (500, 1500, 80)

    problem = mpc2nn.systems.double_integrator()
    net = mpc2nn.compile(problem)
    X_tune = mpc2nn.sample_states(problem, 200, seed=10)
    X_test = mpc2nn.sample_states(problem, n_test, seed=11)  # never used for tuning
    U_star = net.solve(X_test).U
    try:  # a second exact reference (DAQP) measures how accurate the reference itself is
        U_daqp = mpc2nn.solve_daqp(net.qp, X_test).U
        ref_gap = float(np.abs(U_daqp - U_star).max())
        U_ref, ref_name = U_daqp, "DAQP"
    except ImportError:
        U_ref, ref_name, ref_gap = U_star, "the exact solver", float("nan")

    constructions = {
        "paper form, α = 1/λmax": mpc2nn.unravel(net, depth=J, method="paper"),
        "momentum (β tuned)": mpc2nn.unravel(net, depth=J, method="momentum", tuning_states=X_tune),
        "ADMM (ρ tuned, default)": mpc2nn.unravel(net, depth=J, method="admm", tuning_states=X_tune),
    }
    curves = {}
    print(f"largest ‖U - U*‖∞ over {n_test} test states (input units) at depth 50, 200 and {J}")
    print(f"{'construction':<26} {'at 50':>12} {'at 200':>10} {'at ' + str(J):>10}  depth for 1e-6")
    for name, ex in constructions.items():
        err = ex.history(X_test, reference=U_star).error.max(axis=1)  # (J,) worst test state per layer
        curves[name] = err
        reach = int(np.argmax(err <= 1e-6)) + 1 if (err <= 1e-6).any() else None
        print(f"{name:<26} {err[49]:>12.2e} {err[min(199, J - 1)]:>10.2e} {err[-1]:>10.2e}  "
              f"{reach if reach is not None else f'not within {J}'}")

    admm = constructions["ADMM (ρ tuned, default)"]
    depths = [10, 40, 150] if not args.small else [10, 40, 100]
    models = {d: mpc2nn.unravel(net, depth=d, method=admm.options) for d in depths}
    d_bound = depths[-1]
    bound = models[d_bound].error_bound(X_test)
    true = np.abs(models[d_bound].evaluate(X_test) - U_ref).max(axis=1)
    acc = 0.0 if np.isnan(ref_gap) else ref_gap
    n_holds = int((bound.bound + acc >= true).sum())
    n_cert = int((bound.bound <= 1e-6).sum())
    print(f"a-posteriori bound of the ADMM network at depth {d_bound} (rigorous per state), compared with the error "
          f"measured against {ref_name} (a sampled check; the exact solver and DAQP differ by up to {ref_gap:.1e}):")
    print(f"  test states where bound >= error: {n_holds} of {true.size}")
    print(f"  median bound / error: {np.median(bound.bound / np.maximum(true, 1e-16)):.1e}")
    print(f"  test states the bound certifies within 1e-6: {n_cert} of {true.size}")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    plotting.plot_error_vs_depth(np.arange(1, J + 1), curves, ax=axes[0])
    axes[0].set_title(f"double integrator: largest error over {n_test} test states")
    axes[0].set_ylabel(r"max over test states of $\|U - U^*\|_\infty$ (input units)")
    ax = axes[1]
    ax.loglog(np.maximum(true, 1e-17), bound.bound, ".", ms=4)
    lim = [0.3 * float(np.maximum(true, 1e-17).min()), 3.0 * float(bound.bound.max())]
    ax.loglog(lim, lim, "k:", lw=1, label="bound = error")
    ax.set(xlabel=r"error $\|U - U^*\|_\infty$ (input units, vs " + ref_name + ")",
           ylabel=r"a-posteriori bound on $\|U - U^*\|_\infty$ (input units)",
           title=f"ADMM, depth {d_bound}: bound vs error on {n_test} test states")
    ax.legend(fontsize=8)
    fig.tight_layout()
    args.output.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.output / "depth_vs_accuracy.png", dpi=110)

    fig, axes = plt.subplots(1, len(depths), figsize=(5 * len(depths), 3.8))
    for ax, d in zip(axes, depths, strict=True):  # one colour scale for the three depths
        plotting.plot_error_map(models[d], problem, resolution=res, ax=ax, clim=(-10.0, 0.0))
        ax.set_title(f"ADMM network, depth {d}")
    fig.tight_layout()
    fig.savefig(args.output / "double_integrator_error_map.png", dpi=110)
    print(f"plots written to {args.output}")
    return dict(curves=curves, bound=bound.bound, true=true, reference_accuracy=ref_gap)


if __name__ == "__main__":
    main()
