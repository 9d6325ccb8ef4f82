"""
Training an implicit network, reading back a QP
===============================================

:func:`mpc2nn.compile` turns an MPC problem into an implicit ReLU network
``y = W relu(y) + Yx + b``, ``U = W_f relu(y) + Y_f x`` — a deep equilibrium model.
:class:`mpc2nn.ImplicitLayer` makes its five weights trainable while keeping the
forward pass exact: as long as ``S = diag(1/α)(I - W)`` is symmetric positive
semidefinite and ``W_f`` vanishes on its kernel (the layer checks this before every
solve), the fixed point is the solution of a QP and is solved and certified by the
exact active-set method; the backward pass differentiates the fixed point on its
active set. A gradient step leaves that set, so training is projected gradient
descent: ``layer.project_()`` after every optimizer step.

Here the network of the double integrator with ``R = 0.1`` (``x_1`` position in m,
``x_2`` velocity in m/s, ``u`` acceleration in m/s², horizon 5) is trained on the
input sequences of an MPC with other weights (``Q = diag(1, 3)``, ``R = 1``). After
training, :func:`mpc2nn.converse.to_qp` maps the weights back to a QP — exactly,
because the projection kept them MPC-like — and that QP, compiled afresh, gives the
trained network's outputs: learning in network space, read out in control space.
Without the projection the trained weights are no MPC-like network, and ``to_qp``
says why and returns the nearest one.

Fitting the five weight matrices is a much larger problem than fitting the two
weights of the MPC in :doc:`learn_mpc_weights`: the mean squared error falls by
more than an order of magnitude, but at a few states the trained law is still far
from the expert's (the maximum error, printed too, does not fall).

    python examples/deq_to_qp.py --output out/
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import mpc2nn
from mpc2nn.converse import to_qp


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description="Train an implicit network and map it back to a QP.")
    parser.add_argument("--output", type=Path, default=Path("out"),
                        help="folder for the plot deq_to_qp.png (default: out, created if missing)")
    parser.add_argument("--small", action="store_true", help="fewer states and steps (used by the tests)")
    args = parser.parse_args(argv)
    import torch

    n_train, n_test, steps = (60, 200, 20) if args.small else (200, 2000, 150)
    start = mpc2nn.systems.double_integrator().replace(horizon=5)
    target = start.replace(Q=np.diag([1.0, 3.0]), R=[[1.0]])
    net, expert = mpc2nn.compile(start), mpc2nn.compile(target)
    X = mpc2nn.sample_states(start, n_train + n_test, seed=0)
    X = X[expert.solve(X).feasible]
    U = expert.solve(X).U
    X_train, U_train, X_test, U_test = (torch.as_tensor(a) for a in (X[:n_train], U[:n_train], X[n_train:],
                                                                        U[n_train:]))
    layer = mpc2nn.ImplicitLayer.from_network(net)
    print(f"initial weights: {layer.structure().message}")

    def error(states, targets):
        with torch.no_grad():
            out = layer(states)
        ok = torch.as_tensor(layer.last.feasible)
        diff = out[ok] - targets[ok]
        return float((diff ** 2).mean()), float(diff.abs().max()), int(ok.sum())

    mse0, err0, _ = error(X_test, U_test)
    opt = torch.optim.Adam(layer.parameters(), lr=1e-2)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        out = layer(X_train)
        ok = torch.as_tensor(layer.last.feasible)
        loss = ((out[ok] - U_train[ok]) ** 2).mean()
        loss.backward()
        opt.step()
        check = layer.project_()
        losses.append(loss.item())
    mse1, err1, n_ok = error(X_test, U_test)
    print(f"{steps} projected Adam steps: training loss {losses[0]:.2e} -> {losses[-1]:.2e}; held-out mean "
          f"squared error {mse0:.2e} -> {mse1:.2e} (m/s²)², max |U - U_expert| {err0:.3f} -> {err1:.3f} m/s² "
          f"({n_ok} of {len(X_test)} held-out states feasible)")
    print(f"trained weights: {check.message}")

    # Network space -> control space: the trained weights as a QP, compiled and solved afresh.
    res = to_qp(layer.weights())
    sol = res.network().solve(X_test.numpy())
    with torch.no_grad():
        out = layer(X_test).numpy()
    both = sol.feasible & layer.last.feasible
    gap = float(np.abs(sol.U[both] - out[both]).max())
    print(f"to_qp: {res.status} (residual {res.residual:.1e}); the recovered QP (H {res.qp.H.shape}, "
          f"{res.qp.m} rows), compiled again, reproduces the trained network to {gap:.1e} on {both.sum()} "
          "held-out states")
    eig = np.linalg.eigvalsh(res.qp.H)
    print(f"recovered Hessian eigenvalues {np.round(eig, 3).tolist()} (the start's "
          f"{np.round(np.linalg.eigvalsh(net.qp.H), 3).tolist()}, the expert's "
          f"{np.round(np.linalg.eigvalsh(expert.qp.H), 3).tolist()}; each up to the scale to_qp fixes)")

    # The same training without the projection leaves the structure, and to_qp says so.
    free = mpc2nn.ImplicitLayer.from_network(net, on_invalid="project")
    opt = torch.optim.Adam(free.parameters(), lr=1e-2)
    opt.zero_grad()
    ((free(X_train) - U_train)[torch.as_tensor(free.last.feasible)] ** 2).mean().backward()
    opt.step()
    unprojected = to_qp(free.weights())
    print(f"one unprojected step: {free.structure().message}\n  to_qp: {unprojected.status} "
          f"({unprojected.obstruction.kind if unprojected.obstruction else ''}): {unprojected.message[:90]}...")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(12, 4.4))
    ax0.semilogy(np.arange(1, steps + 1), losses, ".-")
    ax0.set(xlabel="projected Adam step", ylabel="mean squared error of U [(m/s²)²]", title="training the weights")
    line = np.column_stack([np.linspace(-5, 5, 201), np.full(201, 0.5)])
    with torch.no_grad():
        u_net = layer(torch.as_tensor(line)).numpy()[:, 0]
    ax1.plot(line[:, 0], net.solve(line).u0[:, 0], "C1--", label="start (compiled, R = 0.1)")
    ax1.plot(line[:, 0], expert.solve(line).u0[:, 0], "k-", lw=3, alpha=0.4, label="expert MPC")
    ax1.plot(line[:, 0], u_net, "C0-", label="trained network")
    ax1.plot(line[:, 0], res.network().solve(line).u0[:, 0], "C3:", lw=2, label="QP from to_qp, compiled")
    ax1.set(xlabel="position $x_1$ [m]", ylabel="first input $u_0$ [m/s²]", title="law at velocity 0.5 m/s")
    ax1.legend(fontsize=8)
    fig.tight_layout()
    args.output.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.output / "deq_to_qp.png", dpi=110)
    print(f"plot written to {args.output / 'deq_to_qp.png'}")
    return dict(losses=losses, mse_before=mse0, mse_after=mse1, error_before=err0, error_after=err1, to_qp=res,
                gap=gap,
                unprojected=unprojected, structure=check, projected_steps=free.projected)


if __name__ == "__main__":
    main()
