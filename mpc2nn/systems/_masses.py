"""The chain of oscillating masses."""

from __future__ import annotations

import numpy as np

from ..exceptions import ProblemDefinitionError
from ..problem import MPCProblem, zoh

__all__ = ["oscillating_masses"]


def oscillating_masses(n_masses: int = 6) -> MPCProblem:
    """Chain of unit masses joined by unit springs (Wang and Boyd, "Fast MPC"), ZOH at ``Ts = 0.5`` s.

    ``n_masses`` even; ``n_masses // 2`` tensions act between masses ``(1,2), (3,4), ...``;
    ``|u| <= 0.5``, ``|x| <= 4``, ``Q = I``, ``R = I``, ``N = 10``, P from the DARE.
    The default (6 masses: ``n_x = 12``, ``n_u = 3``) is the public benchmark.

    Parameters
    ----------
    n_masses : int
        Number of masses, even and ``>= 2`` (``n_x = 2·n_masses``, ``n_u = n_masses / 2``).

    Returns
    -------
    MPCProblem
    """
    if not isinstance(n_masses, (int, np.integer)) or n_masses < 2 or n_masses % 2:
        raise ProblemDefinitionError(f"n_masses: expected an even integer >= 2, got {n_masses!r}")
    n = int(n_masses)
    K = -2 * np.eye(n) + np.eye(n, k=1) + np.eye(n, k=-1)
    Ac = np.block([[np.zeros((n, n)), np.eye(n)], [K, np.zeros((n, n))]])
    Bm = np.zeros((n, n // 2))
    for j in range(n // 2):
        Bm[2 * j, j], Bm[2 * j + 1, j] = 1.0, -1.0
    Bc = np.vstack([np.zeros((n, n // 2)), Bm])
    A, B = zoh(Ac, Bc, 0.5)
    return MPCProblem(A, B, Q=np.eye(2 * n), R=np.eye(n // 2), horizon=10, P="dare",
                      u_min=np.full(n // 2, -0.5), u_max=np.full(n // 2, 0.5),
                      x_min=np.full(2 * n, -4.0), x_max=np.full(2 * n, 4.0), name="oscillating_masses", dt=0.5,
                      state_names=tuple(f"position {i}" for i in range(1, n + 1))
                      + tuple(f"velocity {i}" for i in range(1, n + 1)),
                      input_names=tuple(f"tension {2 * j + 1}-{2 * j + 2}" for j in range(n // 2)),
                      sample_box=(np.full(2 * n, -1.0), np.full(2 * n, 1.0)))
