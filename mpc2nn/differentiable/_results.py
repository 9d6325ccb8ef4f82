"""What a differentiable layer reports about its last forward pass: :class:`LayerResult`."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..implicit import ImplicitSolution

__all__ = ["LayerResult"]


@dataclass(frozen=True, kw_only=True)
class LayerResult:
    """Per-sample report of the last forward pass of an :class:`~mpc2nn.MPCLayer` or
    :class:`~mpc2nn.ImplicitLayer` (``layer.last``).

    Attributes
    ----------
    status : (B,) str
        The exact solve's status (:class:`mpc2nn.status.Status` values): ``"solved"``
        (certified), ``"uncertified"``, ``"infeasible"``, ``"failed"`` or ``"invalid"``.
    feasible : (B,) bool
        A solution is present (``"solved"`` or ``"uncertified"``): the output row holds it and
        gets gradients; every other row holds the layer's ``fill`` value and gets zero gradients.
    reason : (B,) str
        Why a sample has no certified solution (empty where it has one).
    strongly_active : (B, m) bool
        Rows treated as equalities by the backward pass.
    weak_rows : (B, m) bool
        Weakly active rows (multiplier and margin both zero within
        :data:`~mpc2nn.differentiable.ACTIVE_TOL`): the solution map has a kink there and the
        gradient is the one-sided derivative of the piece on which these rows are inactive.
    separation : (B,) float
        Distance from an active-set switch: the smallest over the rows of the larger of the
        row's relative multiplier and relative margin (NaN without a solution); weakly active
        rows exist where it is at most ``ACTIVE_TOL``. Finite differences with steps well below
        it stay on one affine piece.
    degenerate : (B,) bool
        The strongly active rows are linearly dependent, so the multipliers are not unique; the
        gradient uses the least-norm multipliers (see docs/theory.rst).
    n_active_sets : int
        Distinct active sets in the batch (one factorisation each in the backward pass).
    solution : ImplicitSolution
        The exact solve's full result.
    """

    status: np.ndarray
    feasible: np.ndarray
    reason: np.ndarray
    strongly_active: np.ndarray
    weak_rows: np.ndarray
    separation: np.ndarray
    degenerate: np.ndarray
    n_active_sets: int
    solution: ImplicitSolution

    @property
    def weakly_active(self) -> np.ndarray:
        """``(B,)`` bool: the sample has a weakly active row (its gradient is one-sided)."""
        return np.asarray(self.weak_rows.any(axis=1))

    def summary(self) -> str:
        """One line: counts per status, samples with one-sided gradients, degenerate samples, active sets."""
        vals, counts = np.unique(self.status, return_counts=True)
        parts = [f"{c} {v}" for v, c in zip(vals, counts, strict=True)]
        return (f"{self.status.size} samples: " + ", ".join(parts)
                + f"; {int(self.weakly_active.sum())} with weakly active rows (one-sided gradient), "
                f"{int(self.degenerate.sum())} degenerate, {self.n_active_sets} active sets")
