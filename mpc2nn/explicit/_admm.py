"""An OSQP-style ADMM unroll of the condensed QP as a Linear+ReLU network."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..exceptions import ProblemDefinitionError
from ._base import ExplicitNetwork
from ._registry import Construction, ConstructionOptions, in_interval, positive, register_construction, register_network
from ._scaling import SCALINGS, row_scaling

__all__ = ["ADMMNetwork", "ADMMOptions", "RHO_LADDER", "RELAX_LADDER", "SCALING_LADDER", "ADMM_SIGMA"]

#: ADMM penalties tried when ``rho`` is tuned, as multiples of the scaling's natural unit (``trace(H)/m`` for
#: ``"norm"``, 1 for ``"jacobi"``/``"ruiz"``, ``1/mean(M_ii)`` for ``"none"``): three decades, two points per decade
#: (the best penalties of the 22 problems of ``benchmarks/depth.py`` lie in [0.05, 22]; the tuner then climbs
#: to the neighbours a sixth of a decade away).
RHO_LADDER = tuple(float(v) for v in np.logspace(-1.5, 1.5, 7))
#: Over-relaxations tried when ``relax`` is tuned (OSQP's default is 1.6; 1.9 was better on 16 of the 22 problems
#: of ``benchmarks/depth.py``, 1.6 on the rest).
RELAX_LADDER = (1.6, 1.9)
#: Row scalings tried when ``scaling`` is tuned (see :data:`~mpc2nn.explicit.SCALINGS`); none of them is best on
#: every problem of ``benchmarks/depth.py`` (Jacobi on the pendulum and the quadcopter, Ruiz on the double
#: integrator, unit norm on the oscillating masses).
SCALING_LADDER = ("jacobi", "ruiz", "norm")
#: The proximal weight σ of the U-update; small, it only keeps the update's matrix positive definite.
ADMM_SIGMA = 1e-6


@dataclass(frozen=True, kw_only=True)
class ADMMOptions(ConstructionOptions):
    """Options of ``method="admm"``; ``None`` tunes ``rho`` over :data:`RHO_LADDER`, ``relax`` over
    :data:`RELAX_LADDER` and ``scaling`` over :data:`SCALING_LADDER`.

    A ``rho`` given without ``scaling`` keeps its meaning of earlier versions: the penalty on rows at unit
    norm (``scaling="norm"``).

    Parameters
    ----------
    rho : float, optional
        The ADMM penalty ``> 0`` on the scaled constraint rows.
    relax : float, optional
        The over-relaxation, in (0, 2).
    sigma : float
        The proximal weight ``> 0`` of the U-update (default :data:`ADMM_SIGMA`).
    scaling : str, optional
        The diagonal row scaling, one of :data:`~mpc2nn.explicit.SCALINGS`.
    state_rho : float
        A factor ``> 0`` on the penalty of the rows that depend on ``θ`` (the state rows: per-type penalties).
    """

    rho: float | None = None
    relax: float | None = None
    sigma: float = ADMM_SIGMA
    scaling: str | None = None
    state_rho: float = 1.0

    def __post_init__(self):
        if self.scaling is None and isinstance(self.rho, TunedPenalty):  # ``rho=network.rho`` keeps its scaling
            object.__setattr__(self, "scaling", self.rho.scaling)
            if self.state_rho == 1.0:
                object.__setattr__(self, "state_rho", self.rho.state_rho)
        object.__setattr__(self, "rho", positive("rho", self.rho))
        object.__setattr__(self, "relax", in_interval("relax", self.relax, 0.0, 2.0, closed_lo=False))
        object.__setattr__(self, "sigma", positive("sigma", self.sigma, allow_none=False))
        object.__setattr__(self, "state_rho", positive("state_rho", self.state_rho, allow_none=False))
        if self.scaling is None and self.rho is not None:
            object.__setattr__(self, "scaling", "norm")
        if self.scaling is not None and self.scaling not in SCALINGS:
            raise ProblemDefinitionError(f"scaling: expected one of {SCALINGS}, got {self.scaling!r}")


class TunedPenalty(float):
    """The penalty of an ADMM network (a float) that remembers the row scaling it refers to, so that
    ``unravel(net, rho=network.rho, relax=network.relax)`` rebuilds the same construction (``method=network.options``
    is the plain way).
    """

    scaling: str
    state_rho: float

    def __new__(cls, value: float, scaling: str, state_rho: float = 1.0):
        obj = super().__new__(cls, value)
        obj.scaling, obj.state_rho = scaling, state_rho
        return obj

    def __getnewargs__(self):  # copies and pickles keep the scaling
        return float(self), self.scaling, self.state_rho


@register_network
class ADMMNetwork(ExplicitNetwork):
    """OSQP-style ADMM on the condensed QP as a Linear+ReLU network.

    Layer state ``(U, t)`` with ``ν = ρ relu(t)`` (the dual iterate) and
    ``z = h + t - relu(t)`` (the projected copy of ``GU``), ``h = w + Ex``, on the
    constraint rows scaled by the diagonal row scaling of ``options.scaling`` (``ρ``
    refers to the scaled rows; the scaling is folded into the fixed weights):

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
    _FAST_SCALARS = ("relax",)
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
        self.scaling = str(options.scaling or "norm")
        self.state_rho = float(options.state_rho)
        self.rho = TunedPenalty(self.rho, self.scaling, self.state_rho)
        r = row_scaling(qp, self.scaling, self.state_rho)  # same U, better conditioned iterations
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

    def _fast_spec(self):
        return ("admm", dict(FKt=self.FKt, Et=self.Et, w=self.w, SKt=self.SKt, RGKt=self.RGKt, aGt=self.aGt),
                dict(relax=self.relax))

    def decision(self, state, x):
        return state[0]

    def dual(self, state):
        return torch.relu(state[1]) * self.nu_scale

    def active_guess(self, state):
        return state[1] > 0

    def get_config(self) -> tuple[dict, dict]:
        """The penalty, relaxation, proximal weight, row scaling and state-row factor."""
        return dict(rho=float(self.rho), relax=self.relax, sigma=self.sigma, scaling=self.scaling,
                    state_rho=self.state_rho), {}

    @classmethod
    def from_config(cls, net, qp, kept_rows, depth, dtype, fields, arrays, *, pruned=False):
        """An ADMM network with the stored options (files of earlier versions: rows at unit norm)."""
        options = ADMMOptions(rho=fields["rho"], relax=fields["relax"], sigma=fields["sigma"],
                              scaling=fields.get("scaling", "norm"), state_rho=fields.get("state_rho", 1.0))
        return cls(net, qp, kept_rows, depth, dtype, options, pruned=pruned)


def rho_unit(qp, scaling: str) -> float:
    """The natural unit of ``rho`` for a row scaling (see :data:`RHO_LADDER`)."""
    if scaling == "norm":
        return float(np.trace(qp.H) / max(qp.m, 1))
    if scaling == "none":
        d = np.diag(qp.dual_hessian)
        return float(1.0 / np.exp(np.mean(np.log(d[d > 0])))) if np.any(d > 0) else 1.0
    return 1.0


def _ladders(qp) -> dict:
    """Scalings, relaxations and penalties (multiples of each scaling's unit, nearest to it first)."""
    steps = sorted(RHO_LADDER, key=lambda r: abs(math.log(r)))
    return {"scaling": list(SCALING_LADDER), "relax": list(RELAX_LADDER),
            "rho": lambda opts: [r * rho_unit(qp, opts.scaling or "norm") for r in steps]}


def _neighbours(qp, opts: ADMMOptions) -> list:
    """Penalties a sixth of a decade either side of a tuned one (the ladder has two points per decade)."""
    rho = opts.value("rho")
    return [opts.with_values(rho=rho * f) for f in (10 ** (-1 / 6), 10 ** (1 / 6), 10 ** (-1 / 3), 10 ** (1 / 3))]


register_construction(Construction(
    name="admm", options=ADMMOptions, build=ADMMNetwork, ladders=_ladders, neighbours=_neighbours,
    summary="OSQP-style ADMM unroll (the ReLU-QP construction) on diagonally scaled rows (Jacobi, Ruiz or unit "
            "norm); scaling, rho and relax tuned"))
