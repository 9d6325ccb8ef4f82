"""An OSQP-style ADMM unroll of the condensed QP as a Linear+ReLU network."""

from __future__ import annotations

import numpy as np
import torch

from ._base import ExplicitNetwork, row_scale

__all__ = ["ADMMNetwork"]


class ADMMNetwork(ExplicitNetwork):
    """OSQP-style ADMM on the condensed QP as a Linear+ReLU network.

    Layer state ``(U, t)`` with ``ν = ρ relu(t)`` (the dual iterate) and
    ``z = h + t - relu(t)`` (the projected copy of ``GU``), ``h = w + Ex``, on the
    constraint rows scaled to unit norm (``ρ`` refers to the scaled rows):

        U⁺ = (H + σI + ρGᵀG)⁻¹ (σU - Fx + ρGᵀ(z - relu(t)))
        t⁺ = a G U⁺ + (1 - a) z + relu(t) - h          (relaxation a)
    """

    method = "admm"

    def __init__(self, net, qp, kept_rows, depth, dtype, options, rho: float, relax: float,
                 sigma: float = 1e-6):
        super().__init__(net, qp, kept_rows, depth, dtype, options)
        self.rho, self.relax, self.sigma = float(rho), float(relax), float(sigma)
        r = row_scale(qp)  # iterate on the rows scaled to unit norm (same U, far better conditioned)
        G, E, w = r[:, None] * qp.G, r[:, None] * qp.E, r * qp.w
        K = np.linalg.inv(qp.H + sigma * np.eye(qp.n_z) + rho * G.T @ G)
        self.register_buffer("SKt", self._t(sigma * K.T))
        self.register_buffer("RGKt", self._t(rho * (G @ K.T)))
        self.register_buffer("FKt", self._t(-(K @ qp.F).T))
        self.register_buffer("aGt", self._t(self.relax * G.T))
        self.register_buffer("Et", self._t(E.T))
        self.register_buffer("w", self._t(w))
        self.register_buffer("nu_scale", self._t(self.rho * r))

    def context(self, x):
        return (x @ self.FKt, x @ self.Et + self.w)

    def init_state(self, x):
        return (x @ self.zero_U, x @ self.zero_m)

    def layer(self, state, ctx):
        U, t = state
        fk, h = ctx
        r = torch.relu(t)
        z = h + t - r
        U_new = U @ self.SKt + (z - r) @ self.RGKt + fk
        t_new = U_new @ self.aGt + (1.0 - self.relax) * z + r - h
        return (U_new, t_new)

    def decision(self, state, x):
        return state[0]

    def dual(self, state):
        return torch.relu(state[1]) * self.nu_scale

    def active_guess(self, state):
        return state[1] > 0
