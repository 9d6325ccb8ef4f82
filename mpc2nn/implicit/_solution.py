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
    U : ndarray, shape (B, N·n_u)
        Input sequences (NaN where no solution exists).
    slack : ndarray, shape (B, n_slack)
        Slacks of the softened constraints (``n_slack = 0`` without ``soft_state_penalty``;
        NaN where no solution exists).
    y : ndarray, shape (B, m)
        Fixed points (NaN where none exists).
    feasible : ndarray of bool, shape (B,)
        Feasibility is **proven** at the state: a certified solution exists (``status == "solved"``).
        ``False`` does not prove infeasibility: see :attr:`infeasible` (proven infeasible) and
        :attr:`undecided` (neither).
    status : ndarray of str, shape (B,)
        A :class:`~mpc2nn.status.Status` value: ``"solved"`` (certified), ``"infeasible"`` (Farkas
        certificate checked), ``"uncertified"`` (a candidate solution, kept in ``U``, whose residuals
        exceed the tolerance), ``"failed"`` (no decision reached) or ``"invalid"`` (non-finite state, or
        arithmetic that overflows).
    reason : ndarray of str, shape (B,)
        Empty for solved samples, else why.
    fixed_point_residual : ndarray, shape (B,)
        ``|y - W relu(y) - Y x - b|_i`` of the row ``i`` worst at its own scale.
    fixed_point_scale : ndarray, shape (B,)
        That row's scale, the size ``|relu(y)| + Γ|Ḡ|(|Ḡ|ᵀ relu(y)) + |Y x + b| + |y|`` of its terms;
        the certificate requires ``residual_i <= CERTIFICATE_TOL · scale_i`` on every row (NaN where no
        solution was found).
    kkt : KKTResiduals
        Residuals of ``(z, relu(y))`` (certificate: ``kkt.worst <= CERTIFICATE_TOL``; NaN where no
        solution was found).
    iterations : ndarray of int, shape (B,)
        Active-set iterations.
    method : ndarray of str, shape (B,)
        ``"primal-dual active set"``, ``"dual active set"`` (fallback), ``"least-distance NNLS"`` (last
        resort) or ``""`` (not run: invalid state, state-only row violated).
    n_u : int
        Inputs per stage.
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
        """``(B,)`` bool, status is ``"solved"`` (the same as :attr:`feasible`)."""
        return self.status == Status.SOLVED

    @property
    def ok(self) -> np.ndarray:
        """``(B,)`` bool, a certified solution is in ``U`` (the same as :attr:`feasible`)."""
        return self.status == Status.SOLVED

    @property
    def infeasible(self) -> np.ndarray:
        """``(B,)`` bool, infeasibility is proven (a Farkas certificate, or a violated state-only row)."""
        return self.status == Status.INFEASIBLE

    @property
    def undecided(self) -> np.ndarray:
        """``(B,)`` bool, neither feasibility nor infeasibility is proven (uncertified, failed or invalid)."""
        return ~(self.feasible | self.infeasible)
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
