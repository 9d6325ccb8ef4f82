"""Prediction matrices of a linear model over a horizon."""

from __future__ import annotations

import numpy as np

__all__ = ["prediction_matrices"]


def prediction_matrices(A: np.ndarray, B: np.ndarray, N: int) -> tuple[np.ndarray, np.ndarray]:
    """Prediction matrices: ``(x_1, ..., x_N) = Φ x_0 + Γ U`` for ``x_{k+1} = A x_k + B u_k``.

    Parameters
    ----------
    A : ndarray, shape (n_x, n_x)
        State matrix.
    B : ndarray, shape (n_x, n_u)
        Input matrix.
    N : int
        Horizon.

    Returns
    -------
    Phi : ndarray, shape (N·n_x, n_x)
        Block rows ``A^k``, k = 1..N.
    Gamma : ndarray, shape (N·n_x, N·n_u)
        Block lower-triangular, block ``(k, j) = A^{k-j} B`` for ``j <= k`` (blocks counted from 0).

    Examples
    --------
    >>> import numpy as np
    >>> from mpc2nn.qp import prediction_matrices
    >>> Phi, Gamma = prediction_matrices(np.array([[2.0]]), np.array([[1.0]]), 3)
    >>> Phi.ravel().tolist(), Gamma.tolist()
    ([2.0, 4.0, 8.0], [[1.0, 0.0, 0.0], [2.0, 1.0, 0.0], [4.0, 2.0, 1.0]])
    """
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
