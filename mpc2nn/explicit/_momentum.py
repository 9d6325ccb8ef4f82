"""Nesterov-momentum dual projected gradient as a Linear+ReLU network."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ._base import ExplicitNetwork
from ._registry import Construction, ConstructionOptions, in_interval, register_construction, register_network

__all__ = ["MomentumNetwork", "MomentumOptions", "BETA_LADDER"]

#: Momentum values tried when ``beta`` is tuned (0: plain projected gradient; close to 1: strong momentum).
BETA_LADDER = (0.0, 0.5, 0.7, 0.8, 0.85, 0.9, 0.93, 0.95, 0.97, 0.98)


@dataclass(frozen=True, kw_only=True)
class MomentumOptions(ConstructionOptions):
    """Options of ``method="momentum"``.

    Parameters
    ----------
    beta : float, optional
        The momentum, in [0, 1); ``None`` tunes it over :data:`BETA_LADDER`.
    """

    beta: float | None = None

    def __post_init__(self):
        object.__setattr__(self, "beta", in_interval("beta", self.beta, 0.0, 1.0))


@register_network
class MomentumNetwork(ExplicitNetwork):
    """Nesterov momentum on the dual: ``y⁺ = W v + ζ``, ``v = (1+β) relu(y) - β λ_prev``.

    ``W = I - γM``, ``ζ = -γ q(x)`` with the step ``γ = 1/λmax(M)`` per row; layer
    state ``(y, λ_prev)`` (B, m) each, ``λ_prev = relu(y)`` of the previous layer.

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
    options : MomentumOptions
        ``beta``, set.
    pruned : bool
        Rows were dropped by LP over a box.
    """

    method = "momentum"
    Wt1: torch.Tensor
    Wt2: torch.Tensor
    Yt: torch.Tensor
    b: torch.Tensor

    def __init__(self, net, qp, kept_rows, depth, dtype, options: MomentumOptions, *, pruned: bool = False):
        super().__init__(net, qp, kept_rows, depth, dtype, options, pruned=pruned)
        beta = options.value("beta")
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

    def _fast_spec(self):
        return ("momentum", dict(Yt=self.Yt, b=self.b, Wt1=self.Wt1, Wt2=self.Wt2, WfT=self.W_f.T, YfT=self.Y_f.T), {})

    def decision(self, state, x):
        return torch.relu(state[0]) @ self.W_f.T + x @ self.Y_f.T

    def dual(self, state):
        return torch.relu(state[0])

    def active_guess(self, state):
        return state[0] > 0

    def get_config(self) -> tuple[dict, dict]:
        """The momentum."""
        return dict(beta=self.beta), {}

    @classmethod
    def from_config(cls, net, qp, kept_rows, depth, dtype, fields, arrays, *, pruned=False):
        """A momentum network with the stored ``beta``."""
        return cls(net, qp, kept_rows, depth, dtype, MomentumOptions(beta=fields["beta"]), pruned=pruned)


register_construction(Construction(
    name="momentum", options=MomentumOptions, build=MomentumNetwork, ladders=lambda qp: {"beta": list(BETA_LADDER)},
    summary="Nesterov-momentum dual projected gradient; beta tuned"))
