"""Nesterov-momentum dual projected gradient as a Linear+ReLU network."""

from __future__ import annotations

import numpy as np
import torch

from ._base import ExplicitNetwork

__all__ = ["MomentumNetwork"]


class MomentumNetwork(ExplicitNetwork):
    """Nesterov momentum on the dual: ``y⁺ = W v + ζ``, ``v = (1+β) relu(y) - β λ_prev``.

    ``W = I - γM``, ``ζ = -γ q(x)`` with the step ``γ = 1/λmax(M)`` per row; layer
    state ``(y, λ_prev)`` (B, m) each, ``λ_prev = relu(y)`` of the previous layer.
    """

    method = "momentum"

    def __init__(self, net, qp, kept_rows, depth, dtype, options, beta: float):
        super().__init__(net, qp, kept_rows, depth, dtype, options)
        M = qp.dual_hessian
        gam = 1.0 / float(np.linalg.eigvalsh(M)[-1]) if qp.m else 1.0
        self.beta = float(beta)
        W = np.eye(qp.m) - gam * M
        self.register_buffer("Wt1", self._t((1.0 + self.beta) * W.T))
        self.register_buffer("Wt2", self._t(-self.beta * W.T))
        self.register_buffer("Yt", self._t((-gam * qp.dual_linear).T))
        self.register_buffer("b", self._t(-gam * qp.w))

    def context(self, x):
        return (x @ self.Yt + self.b,)

    def init_state(self, x):
        z = x @ self.zero_m
        return (z, z)

    def layer(self, state, ctx):
        y, lam_prev = state
        lam = torch.relu(y)
        return (lam @ self.Wt1 + lam_prev @ self.Wt2 + ctx[0], lam)

    def decision(self, state, x):
        return torch.relu(state[0]) @ self.W_f.T + x @ self.Y_f.T

    def dual(self, state):
        return torch.relu(state[0])

    def active_guess(self, state):
        return state[0] > 0
