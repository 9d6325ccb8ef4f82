"""Zero-order-hold discretisation of a continuous-time linear model."""

from __future__ import annotations

import numpy as np
import scipy.linalg

__all__ = ["zoh"]


def zoh(Ac: np.ndarray, Bc: np.ndarray, dt: float) -> tuple[np.ndarray, np.ndarray]:
    """Zero-order-hold discretisation via the block matrix exponential.

    ``exp([[Ac, Bc], [0, 0]] dt) = [[A, B], [0, I]]``: the input is held constant over each
    sampling interval, so ``x_{k+1} = A x_k + B u_k`` is exact at the sampling instants.

    Parameters
    ----------
    Ac : ndarray, shape (n_x, n_x)
        Continuous-time state matrix of ``dx/dt = Ac x + Bc u``.
    Bc : ndarray, shape (n_x, n_u)
        Continuous-time input matrix.
    dt : float
        Sampling time ``> 0``.

    Returns
    -------
    A : ndarray, shape (n_x, n_x)
        Discrete-time state matrix ``exp(Ac dt)``.
    B : ndarray, shape (n_x, n_u)
        Discrete-time input matrix ``∫_0^dt exp(Ac s) ds Bc``.

    Examples
    --------
    >>> import numpy as np
    >>> from mpc2nn.problem import zoh
    >>> A, B = zoh(np.array([[0.0, 1.0], [0.0, 0.0]]), np.array([[0.0], [1.0]]), 0.5)   # double integrator
    >>> A.tolist(), B.tolist()
    ([[1.0, 0.5], [0.0, 1.0]], [[0.125], [0.5]])
    """
    n, m = Bc.shape
    blk = np.zeros((n + m, n + m))
    blk[:n, :n], blk[:n, n:] = Ac, Bc
    E = scipy.linalg.expm(blk * dt)
    return E[:n, :n], E[:n, n:]
