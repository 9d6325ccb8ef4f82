"""The result of the exact solve of an implicit network for a batch."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..qp import KKTResiduals
from ..status import Status

__all__ = ["ImplicitSolution"]


@dataclass(frozen=True)
class ImplicitSolution:
    """Exact fixed points for a batch of ``B`` states.

    Attributes
    ----------
    U : (B, N·n_u) input sequences (NaN where no solution exists)
    slack : (B, n_slack) slacks of the softened constraints (``n_slack = 0`` without
        ``soft_state_penalty``; NaN where no solution exists)
    y : (B, m) fixed points (NaN where none exists)
    feasible : (B,) bool, the MPC problem is feasible at the state
    status : (B,) str, ``"solved"`` (certified), ``"infeasible"`` (certificate checked),
        ``"uncertified"`` (a solution whose residuals exceed the tolerance),
        ``"failed"`` (no decision reached) or ``"invalid"`` (non-finite state)
    reason : (B,) str, empty for solved samples, else why
    fixed_point_residual : (B,) ``‖y - W relu(y) - Y x - b‖∞``
    fixed_point_scale : (B,) ``max(1, ‖W relu(y)‖∞, ‖Y x + b‖∞)``; the certificate
        requires ``fixed_point_residual <= CERTIFICATE_TOL · fixed_point_scale``
    kkt : KKTResiduals of ``(z, relu(y))`` (certificate: ``kkt.worst <= CERTIFICATE_TOL``)
    iterations : (B,) active-set iterations
    method : (B,) str, ``"primal-dual active set"`` or ``"dual active set"`` (fallback)
    n_u : inputs per stage
    """

    U: np.ndarray
    y: np.ndarray
    feasible: np.ndarray
    status: np.ndarray
    reason: np.ndarray
    fixed_point_residual: np.ndarray
    fixed_point_scale: np.ndarray
    kkt: KKTResiduals
    iterations: np.ndarray
    method: np.ndarray
    n_u: int
    slack: np.ndarray

    @property
    def u0(self) -> np.ndarray:
        """``(B, n_u)`` first inputs, the control applied."""
        return self.U[:, :self.n_u]

    @property
    def certified(self) -> np.ndarray:
        """``(B,)`` bool, status is ``"solved"``."""
        return self.status == Status.SOLVED

    def __repr__(self) -> str:
        vals, counts = np.unique(self.status, return_counts=True)
        return (f"ImplicitSolution({self.status.size} states: "
                + ", ".join(f"{c} {v}" for v, c in zip(vals, counts, strict=True)) + ")")

    def summary(self) -> str:
        """One line per status with counts, and the worst certified residuals."""
        vals, counts = np.unique(self.status, return_counts=True)
        parts = [f"{c} {v}" for v, c in zip(vals, counts, strict=True)]
        ok = self.certified
        if ok.any():
            fp = float((self.fixed_point_residual[ok] / self.fixed_point_scale[ok]).max())
            parts.append(f"max relative fixed-point residual {fp:.2e}, max relative KKT residual "
                         f"{float(self.kkt.worst[ok].max()):.2e}")
        return f"{self.status.size} states: " + ", ".join(parts)
