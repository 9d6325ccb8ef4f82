"""The result type shared by the reference solvers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..status import Status

__all__ = ["ReferenceSolution", "blank_results"]


@dataclass(frozen=True)
class ReferenceSolution:
    """Reference solutions for ``B`` states.

    Attributes
    ----------
    U : ndarray, shape (B, N·n_u)
        Input sequences (NaN where not solved).
    feasible : ndarray of bool, shape (B,)
        A solution is present.
    status : ndarray of str, shape (B,)
        The solver's outcome in the status vocabulary (:class:`mpc2nn.status.Status`).
    solve_time : ndarray, shape (B,)
        Seconds the solver reported per sample (0 where not run).
    solver : str
        Which solver: ``"osqp"``, ``"daqp"``, ``"osqp-tight"`` or ``"exact"`` (a name of
        :data:`mpc2nn.reference.REFERENCE_SOLVERS`).
    n_u : int
        Inputs per stage.
    """

    U: np.ndarray
    feasible: np.ndarray
    status: np.ndarray
    solve_time: np.ndarray
    solver: str
    n_u: int

    def __repr__(self) -> str:
        vals, counts = np.unique(self.status.astype(str), return_counts=True)
        return (f"ReferenceSolution({self.solver}, {self.status.size} states: "
                + ", ".join(f"{c} {v}" for v, c in zip(vals, counts, strict=True)) + ")")

    @property
    def u0(self) -> np.ndarray:
        """``(B, n_u)`` first inputs."""
        return self.U[:, :self.n_u]


def blank_results(B: int, n_U: int):
    """``(U, feasible, status, times)`` for ``B`` samples before solving: NaN, False, INVALID, 0.

    Parameters
    ----------
    B : int
        Number of samples.
    n_U : int
        Length ``N·n_u`` of an input sequence.

    Returns
    -------
    tuple of ndarray
        Shapes (B, n_U), (B,), (B,) (object, :class:`~mpc2nn.status.Status` values), (B,).
    """
    return np.full((B, n_U), np.nan), np.zeros(B, bool), np.full(B, Status.INVALID, dtype=object), np.zeros(B)
