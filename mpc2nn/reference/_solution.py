"""The result type shared by the reference solvers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..status import Status

__all__ = ["ReferenceSolution", "blank_results"]


@dataclass(frozen=True)
class ReferenceSolution:
    """Reference solutions for ``B`` states.

    ``U`` (B, N·n_u) (NaN where not solved), ``feasible`` (B,) bool (a solution is present),
    ``status`` (B,) str, the solver's outcome in the status vocabulary (:class:`mpc2nn.status.Status`),
    ``solve_time`` (B,) seconds, ``solver`` name, ``n_u``.
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
    """``(U, feasible, status, times)`` for ``B`` samples before solving: NaN, False, INVALID, 0."""
    return np.full((B, n_U), np.nan), np.zeros(B, bool), np.full(B, Status.INVALID, dtype=object), np.zeros(B)
