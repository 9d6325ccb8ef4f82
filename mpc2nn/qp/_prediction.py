"""Prediction matrices of a linear model over a horizon."""

from __future__ import annotations

import numpy as np

__all__ = ["prediction_matrices"]


def prediction_matrices(A: np.ndarray, B: np.ndarray, N: int) -> tuple[np.ndarray, np.ndarray]:
    """``Φ`` (N·n_x, n_x) and block lower-triangular ``Γ`` (N·n_x, N·n_u), ``Γ[k, j] = A^{k-j} B``."""
    n_x, n_u = B.shape
    powers = [np.eye(n_x)]
    for _ in range(N):
        powers.append(A @ powers[-1])
    Phi = np.vstack(powers[1:])
    Gamma = np.zeros((N * n_x, N * n_u))
    for k in range(N):
        for j in range(k + 1):
            Gamma[k * n_x:(k + 1) * n_x, j * n_u:(j + 1) * n_u] = powers[k - j] @ B
    return Phi, Gamma
