"""An OSQP-style ADMM unroll of the condensed QP as a Linear+ReLU network."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ._base import ExplicitNetwork, row_scale
from ._registry import Construction, ConstructionOptions, in_interval, positive, register_construction, register_network

__all__ = ["ADMMNetwork", "ADMMOptions", "RHO_LADDER", "RELAX_LADDER", "ADMM_SIGMA"]

#: ADMM penalties tried when ``rho`` is tuned, as multiples of ``trace(H)/m`` (the rows of G at unit norm):
#: eight decades, three points per decade.
RHO_LADDER = tuple(float(v) for v in np.logspace(-4, 4, 25))
#: Over-relaxations tried when ``relax`` is tuned (OSQP's default is 1.6; values near 2 speed up well-conditioned
#: problems and slow down others).
RELAX_LADDER = (1.6, 1.8, 1.9)
#: The proximal weight σ of the U-update; small, it only keeps the update's matrix positive definite.
ADMM_SIGMA = 1e-6


@dataclass(frozen=True, kw_only=True)
class ADMMOptions(ConstructionOptions):
    """Options of ``method="admm"``; ``None`` tunes ``rho`` and ``relax`` (:data:`RHO_LADDER` × :data:`RELAX_LADDER`).

    Parameters
    ----------
    rho : float, optional
        The ADMM penalty ``> 0`` on the constraint rows scaled to unit norm.
    relax : float, optional
        The over-relaxation, in (0, 2).
    sigma : float
        The proximal weight ``> 0`` of the U-update (default :data:`ADMM_SIGMA`).
    """

    rho: float | None = None
    relax: float | None = None
    sigma: float = ADMM_SIGMA

    def __post_init__(self):
        object.__setattr__(self, "rho", positive("rho", self.rho))
        object.__setattr__(self, "relax", in_interval("relax", self.relax, 0.0, 2.0, closed_lo=False))
        object.__setattr__(self, "sigma", positive("sigma", self.sigma, allow_none=False))


@register_network
class ADMMNetwork(ExplicitNetwork):
    """OSQP-style ADMM on the condensed QP as a Linear+ReLU network.

    Layer state ``(U, t)`` with ``ν = ρ relu(t)`` (the dual iterate) and
    ``z = h + t - relu(t)`` (the projected copy of ``GU``), ``h = w + Ex``, on the
    constraint rows scaled to unit norm (``ρ`` refers to the scaled rows):

        U⁺ = (H + σI + ρGᵀG)⁻¹ (σU - Fx + ρGᵀ(z - relu(t)))
        t⁺ = a G U⁺ + (1 - a) z + relu(t) - h          (relaxation a)

    Parameters
    ----------
    net : ImplicitNetwork
        The implicit network approximated.
    qp : CondensedQP
        The QP the layers iterate on (``net.qp`` or its kept rows).
    kept_rows : array_like of int
        Rows of ``net.qp`` kept in ``qp``.
    depth : int
        Number of layers.
    dtype : torch.dtype
        Dtype of the buffers.
    options : ADMMOptions
        ``rho``, ``relax`` and ``sigma``, all set.
    pruned : bool
        Rows were dropped by LP over a box.
    """

    method = "admm"
    SKt: torch.Tensor
    RGKt: torch.Tensor
    FKt: torch.Tensor
    aGt: torch.Tensor
    Et: torch.Tensor
    w: torch.Tensor
    nu_scale: torch.Tensor

    def __init__(self, net, qp, kept_rows, depth, dtype, options: ADMMOptions, *, pruned: bool = False):
        super().__init__(net, qp, kept_rows, depth, dtype, options, pruned=pruned)
        rho, relax, sigma = options.value("rho"), options.value("relax"), options.sigma
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

    def get_config(self) -> tuple[dict, dict]:
        """The penalty, relaxation and proximal weight."""
        return dict(rho=self.rho, relax=self.relax, sigma=self.sigma), {}

    @classmethod
    def from_config(cls, net, qp, kept_rows, depth, dtype, fields, arrays, *, pruned=False):
        """An ADMM network with the stored ``rho``, ``relax`` and ``sigma``."""
        options = ADMMOptions(rho=fields["rho"], relax=fields["relax"], sigma=fields["sigma"])
        return cls(net, qp, kept_rows, depth, dtype, options, pruned=pruned)


def _ladders(qp) -> dict:
    """Penalties near the scale ``trace(H)/m`` first, so that the tuning's early stop prunes the rest quickly."""
    scale = float(np.trace(qp.H) / max(qp.m, 1))
    rhos = sorted((r * scale for r in RHO_LADDER), key=lambda r: abs(math.log(r / scale)))
    return {"rho": rhos, "relax": list(RELAX_LADDER)}


register_construction(Construction(
    name="admm", options=ADMMOptions, build=ADMMNetwork, ladders=_ladders,
    summary="OSQP-style ADMM unroll (the ReLU-QP construction), rows at unit norm; rho and relax tuned"))
