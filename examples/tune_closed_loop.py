"""
Tuning MPC weights through a simulated closed loop
==================================================

A short horizon makes MPC cheap, and myopic. On the double integrator (``x_1``
position in m, ``x_2`` velocity in m/s, input an acceleration in m/s², one step =
1 s, ``|u| <= 1``, soft ``|x_1| <= 5``, ``|x_2| <= 2``) an MPC with horizon ``N = 2``
whose weights are the closed-loop cost's own (``Q = I``, ``R = 0.1``) and a small
terminal weight ``P = 0.01 I`` performs visibly worse than the ``N = 20`` MPC.

The closed loop ``x_{k+1} = A x_k + B u_0(x_k)`` is simulated in torch for a batch
of initial states, each ``u_0`` from :class:`mpc2nn.MPCLayer` (exact solve forward,
implicit differentiation backward), so the closed-loop cost (mean over the initial states ``x_0``)

.. code-block:: none

    J = mean Σ_{k<T} ( x_{k+1}ᵀ x_{k+1} + 0.1 u_k² + 100 ‖max(0, |x_{k+1}| - x_max)‖² )

is a differentiable function of the MPC's weights ``Q = diag(e^q)``, ``R = e^r``,
``P = diag(e^p)``. Adam on ``(q, r, p)`` tunes the short-horizon MPC; the result is
judged on initial states not used for tuning, against the ``N = 20`` MPC. The
closed-loop gradient is checked against central finite differences first.

    python examples/tune_closed_loop.py --output out/
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

import mpc2nn


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description="Tune MPC weights by differentiating a simulated closed loop.")
    parser.add_argument("--output", type=Path, default=Path("out"),
                        help="folder for the plot tune_closed_loop.png (default: out, created if missing)")
    parser.add_argument("--small", action="store_true", help="fewer states, steps and iterations (tests)")
    args = parser.parse_args(argv)
    import torch

    n_train, n_test, T, iters = (16, 32, 20, 8) if args.small else (48, 200, 40, 40)
    di = mpc2nn.systems.double_integrator()
    soft = (1.0, 100.0)  # exact penalty: the soft MPC is the hard one wherever that is feasible
    short = di.replace(horizon=2, soft_state_penalty=soft, P=0.01 * np.eye(2), R=[[0.1]])
    long = di.replace(soft_state_penalty=soft, R=[[0.1]])
    layer, reference = mpc2nn.MPCLayer(short), mpc2nn.MPCLayer(long)
    A, B, x_max = torch.tensor(di.A), torch.tensor(di.B), torch.tensor(di.x_max)
    rng = np.random.default_rng(1)
    X0 = np.column_stack([rng.uniform(-5, 5, n_train + n_test), rng.uniform(-2, 2, n_train + n_test)])
    X0_train, X0_test = torch.as_tensor(X0[:n_train]), torch.as_tensor(X0[n_train:])

    def rollout(x0, controller, weights=None):
        """Closed-loop cost (mean over the batch), states (B, T+1, 2) and inputs (B, T)."""
        x, cost, xs, us = x0, torch.zeros(len(x0), dtype=torch.float64), [x0], []
        for _ in range(T):
            u = (controller(x) if weights is None else controller(x, **weights))[:, :1]
            x = x @ A.T + u @ B.T
            cost = cost + (x ** 2).sum(1) + 0.1 * (u ** 2).sum(1) + 100 * (torch.relu(x.abs() - x_max) ** 2).sum(1)
            xs.append(x), us.append(u[:, 0])
        return cost.mean(), torch.stack(xs, 1), torch.stack(us, 1)

    def weights(theta):
        q, r, p = theta[:2], theta[2:3], theta[3:]
        return dict(Q=torch.diag(torch.exp(q)), R=torch.diag(torch.exp(r)), P=torch.diag(torch.exp(p)))

    theta = torch.tensor(np.log([1.0, 1.0, 0.1, 0.01, 0.01]), requires_grad=True)
    theta0 = theta.detach().clone()

    # the closed-loop gradient against central differences (the loop is piecewise smooth)
    cost, _, _ = rollout(X0_train, layer, weights(theta))
    (grad,) = torch.autograd.grad(cost, theta)
    direction = torch.as_tensor(rng.normal(size=5))
    h = 1e-6
    with torch.no_grad():
        up = rollout(X0_train, layer, weights(theta + h * direction))[0]
        dn = rollout(X0_train, layer, weights(theta - h * direction))[0]
    fd = float((up - dn) / (2 * h))
    exact = float(grad @ direction)
    print(f"closed-loop gradient along a random direction: implicit {exact:.10f}, central differences {fd:.10f} "
          f"(relative difference {abs(exact - fd) / abs(fd):.1e})")

    with torch.no_grad():
        J_before = rollout(X0_test, layer, weights(theta0))[0].item()
        J_ref, x_ref, _ = rollout(X0_test, reference)
    opt = torch.optim.Adam([theta], lr=0.1)
    history = []
    t0 = time.perf_counter()
    for _ in range(iters):
        opt.zero_grad()
        cost, _, _ = rollout(X0_train, layer, weights(theta))
        cost.backward()
        opt.step()
        history.append(cost.item())
    tune_time = time.perf_counter() - t0
    with torch.no_grad():
        J_after, x_after, u_after = rollout(X0_test, layer, weights(theta))
        _, x_before, u_before = rollout(X0_test, layer, weights(theta0))
    J_after, J_ref = J_after.item(), J_ref.item()
    closed = (J_before - J_after) / (J_before - J_ref)
    learned = {k: np.round(np.diag(v.detach().numpy()), 4).tolist() for k, v in weights(theta).items()}
    print(f"tuned in {iters} Adam steps ({tune_time:.1f} s; {n_train} initial states × {T} steps per step): "
          f"Q = {learned['Q']}, R = {learned['R']}, P = {learned['P']}")
    print(f"held-out closed-loop cost ({n_test} initial states): N = 2 as given {J_before:.4f}, N = 2 tuned "
          f"{J_after:.4f}, N = 20 MPC {J_ref:.4f}: the tuning closes {closed:.1%} of the gap")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax0, ax1, ax2) = plt.subplots(1, 3, figsize=(16, 4.4))
    ax0.plot(np.arange(1, iters + 1), history, ".-", label="training states")
    ax0.set(xlabel="Adam step", ylabel="closed-loop cost J [-]",
            title=f"tuning; held-out J: {J_before:.2f} → {J_after:.2f} (N = 20: {J_ref:.2f})")
    ax0.legend(fontsize=8)
    # the four fastest held-out initial states from which the hard N = 20 problem is feasible
    hard = mpc2nn.compile(di).solve(X0[n_train:]).feasible
    show = [int(i) for i in np.argsort(-np.abs(X0[n_train:, 1]) * hard)[:4]]
    for i, k in enumerate(show):
        ax1.plot(*x_before[k].numpy().T, "--", color=f"C{i}", lw=1)
        ax1.plot(*x_after[k].numpy().T, "-", color=f"C{i}", lw=1.5)
        ax1.plot(*x_ref[k].numpy().T, ":", color="k", lw=1)
    ax1.plot([-5, 5, 5, -5, -5], [-2, -2, 2, 2, -2], color="0.5", lw=1, label="state bounds")
    ax1.plot([], [], "k--", lw=1, label="N = 2 as given")
    ax1.plot([], [], "k-", lw=1.5, label="N = 2 tuned")
    ax1.plot([], [], "k:", lw=1, label="N = 20 MPC")
    ax1.set(xlabel="position $x_1$ [m]", ylabel="velocity $x_2$ [m/s]",
            title="held-out closed loops (fastest hard-feasible starts)")
    ax1.legend(fontsize=8)
    k = show[0]
    ax2.step(np.arange(T), u_before[k].numpy(), "C1--", where="post", label="N = 2 as given")
    ax2.step(np.arange(T), u_after[k].numpy(), "C0-", where="post", label="N = 2 tuned")
    ax2.set(xlabel="time step k (1 s)", ylabel="input $u_k$ [m/s²]", title="inputs of the first closed loop")
    ax2.legend(fontsize=8)
    fig.tight_layout()
    args.output.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.output / "tune_closed_loop.png", dpi=110)
    print(f"plot written to {args.output / 'tune_closed_loop.png'}")
    return dict(J_before=J_before, J_after=J_after, J_ref=J_ref, gap_closed=closed, history=history,
                gradient=exact, finite_difference=fd)


if __name__ == "__main__":
    main()
