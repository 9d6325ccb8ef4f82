"""
Learning MPC weights from demonstrations
========================================

An expert runs MPC on the double integrator (``x_1`` position in m, ``x_2`` velocity
in m/s, input ``u`` an acceleration in m/s², one step = 1 s; ``|u| <= 1``,
``|x_1| <= 5``, ``|x_2| <= 2``, horizon 10) with weights we do not know. We see
only what it does: pairs of states and the inputs it applied. Can we find weights
that reproduce its control law?

:class:`mpc2nn.MPCLayer` makes the MPC law a differentiable function of its weights:
the forward pass is the exact (certified) solve of the QP, the backward pass
differentiates its KKT system on the active set, and the terminal weight follows the
weights through the Riccati equation. So we fit ``Q = diag(e^q)`` and ``R = e^r`` by
gradient descent on the squared error of the first input (Adam, then L-BFGS), and
check the learned law against the expert's on states it was not fitted on. Only the
ratio of the weights matters to the law (scaling the cost changes nothing), so the
weights are compared through ``Q / R``.

    python examples/learn_mpc_weights.py --output out/
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

import mpc2nn


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description="Fit MPC weights to an expert's state/input pairs.")
    parser.add_argument("--output", type=Path, default=Path("out"),
                        help="folder for the plot learn_mpc_weights.png (default: out, created if missing)")
    parser.add_argument("--small", action="store_true", help="fewer states and iterations (used by the tests)")
    args = parser.parse_args(argv)
    import torch

    n_train, n_test, n_adam = (60, 200, 25) if args.small else (200, 2000, 60)

    # The expert: the double integrator with hidden weights (P from the Riccati equation).
    base = mpc2nn.systems.double_integrator().replace(horizon=10)
    Q_true, R_true = np.diag([2.0, 0.5]), np.array([[0.3]])
    expert = mpc2nn.compile(base.replace(Q=Q_true, R=R_true))
    X = mpc2nn.sample_states(base, n_train + n_test, seed=0)
    demo = expert.solve(X)
    X, U = X[demo.feasible], demo.u0[demo.feasible]
    X_train, U_train, X_test, U_test = X[:n_train], U[:n_train], X[n_train:], U[n_train:]
    active = (np.abs(demo.U[demo.feasible][:n_train]) > 1 - 1e-9).any(axis=1).mean()
    print(f"{len(X_train)} demonstrations (the input bound is active in the plan of {active:.0%}), "
          f"{len(X_test)} held-out states")

    # The learner: the same problem, weights to be found, starting from Q = I, R = 1.
    layer = mpc2nn.MPCLayer(base)
    q = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    r = torch.zeros(1, dtype=torch.float64, requires_grad=True)

    def law(states):
        return layer(torch.as_tensor(states), Q=torch.diag(torch.exp(q)), R=torch.diag(torch.exp(r)))[:, :1]

    Xt, Ut = torch.as_tensor(X_train), torch.as_tensor(U_train)

    def loss_fn():
        u = law(Xt)
        ok = torch.as_tensor(layer.last.feasible)  # the learned MPC may be infeasible where the expert is not
        return ((u[ok] - Ut[ok]) ** 2).mean()

    with torch.no_grad():
        U_initial = law(X_test).numpy()
    losses = []
    t0 = time.perf_counter()
    adam = torch.optim.Adam([q, r], lr=0.1)
    for _ in range(n_adam):
        adam.zero_grad()
        loss = loss_fn()
        loss.backward()
        adam.step()
        losses.append(loss.item())
    lbfgs = torch.optim.LBFGS([q, r], lr=1.0, max_iter=50, tolerance_grad=1e-15, tolerance_change=1e-18,
                              line_search_fn="strong_wolfe")

    def closure():
        lbfgs.zero_grad()
        loss = loss_fn()
        loss.backward()
        losses.append(loss.item())
        return loss

    lbfgs.step(closure)
    fit_time = time.perf_counter() - t0
    ratio = np.exp(q.detach().numpy()) / np.exp(r.item())
    true_ratio = np.diag(Q_true) / R_true[0, 0]
    print(f"fitted in {len(losses)} loss evaluations ({fit_time:.1f} s): training loss {losses[0]:.2e} -> "
          f"{losses[-1]:.2e}")
    print(f"Q / R learned {np.round(ratio, 6).tolist()}, expert's {np.round(true_ratio, 6).tolist()}")

    # Held-out states: the learned law against the expert's.
    with torch.no_grad():
        U_learned = law(X_test).numpy()
    ok = layer.last.feasible
    err = np.abs(U_learned[ok] - U_test[ok]).ravel()
    err0 = np.abs(U_initial[ok] - U_test[ok]).ravel()
    print(f"held-out states: {ok.sum()} of {len(X_test)} feasible for the learned MPC; max |u_0 - u_0,expert| "
          f"{err.max():.2e} m/s² (initial weights: {err0.max():.2e})")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax0, ax1, ax2) = plt.subplots(1, 3, figsize=(16, 4.4))
    ax0.semilogy(np.arange(1, len(losses) + 1), np.maximum(losses, 1e-30), ".-")
    ax0.axvline(n_adam + 0.5, color="0.6", ls=":", label="Adam → L-BFGS")
    ax0.set(xlabel="loss evaluation", ylabel="mean squared error of $u_0$ [(m/s²)²]", title="training")
    ax0.legend()
    v = 0.5
    line = np.column_stack([np.linspace(-5, 5, 201), np.full(201, v)])
    with torch.no_grad():
        u_line = law(line).numpy()[:, 0]
        u_line0 = mpc2nn.MPCLayer(base)(torch.as_tensor(line)).numpy()[:, 0]
    ax1.plot(line[:, 0], expert.solve(line).u0[:, 0], "k-", lw=3, alpha=0.4, label="expert")
    ax1.plot(line[:, 0], u_line0, "C1--", label="initial weights (Q = I, R = 1)")
    ax1.plot(line[:, 0], u_line, "C0-", label="learned weights")
    ax1.set(xlabel="position $x_1$ [m]", ylabel="first input $u_0$ [m/s²]",
            title=f"control law at velocity $x_2$ = {v} m/s")
    ax1.legend(fontsize=8)
    sc = ax2.scatter(X_test[ok, 0], X_test[ok, 1], c=np.log10(np.maximum(err, 1e-16)), s=8, cmap="viridis")
    fig.colorbar(sc, ax=ax2, label=r"$\log_{10}|u_0 - u_{0,\mathrm{expert}}|$ [m/s²]")
    ax2.set(xlabel="position $x_1$ [m]", ylabel="velocity $x_2$ [m/s]", title="held-out states: error")
    fig.tight_layout()
    args.output.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.output / "learn_mpc_weights.png", dpi=110)
    print(f"plot written to {args.output / 'learn_mpc_weights.png'}")
    return dict(losses=losses, ratio=ratio, true_ratio=true_ratio, max_error=float(err.max()),
                max_error_initial=float(err0.max()), n_test=int(ok.sum()), X_test=X_test)


if __name__ == "__main__":
    main()
