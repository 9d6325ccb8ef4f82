"""Zero-order-hold discretisation of a continuous-time linear model."""

from __future__ import annotations

import numpy as np
import scipy.linalg

__all__ = ["zoh"]


def zoh(Ac: np.ndarray, Bc: np.ndarray, dt: float) -> tuple[np.ndarray, np.ndarray]:
    """Zero-order-hold discretisation via the block matrix exponential."""
    n, m = Bc.shape
    blk = np.zeros((n + m, n + m))
    blk[:n, :n], blk[:n, n:] = Ac, Bc
    E = scipy.linalg.expm(blk * dt)
    return E[:n, :n], E[:n, n:]
