"""Least-distance programming by NNLS (Lawson–Hanson), sample by sample: the exact solve's last resort.

``min ½‖v‖² s.t. Ḡv <= q`` is solved through ``min ‖[Ḡᵀ; qᵀ]u + e‖, u >= 0``
(``scipy.optimize.nnls``, QR-based), whose zero residual is itself a Farkas certificate;
used for what the primal-dual and dual active-set methods leave (ill-conditioned working sets).
"""

from __future__ import annotations

import numpy as np
import scipy.optimize

__all__ = ["least_distance"]

#: Outcome codes (the values of ``LCPCode``: solved, proven infeasible, failed).
_SOLVED, _INFEASIBLE, _FAILED = 0, 1, 2


def least_distance(solver, q: np.ndarray, h: np.ndarray, z0n: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``min ½‖v‖² s.t. Ḡ v <= q`` (``v = z - z₀``) for each sample by Lawson–Hanson's LDP.

    With ``E = [Ḡᵀ; qᵀ]`` (n+1, m) and ``f = (0, …, 0, -1)``, the NNLS solution
    ``u >= 0`` of ``min ‖E u - f‖`` has residual ``r``: ``r = 0`` makes ``u`` a
    Farkas certificate (``Ḡᵀu = 0``, ``qᵀu = -1``, so no ``v`` exists), else
    ``λ = u / r_{n+1}``. Rows are scaled to unit norm, ``q`` by the largest violation and the columns of
    ``E`` to unit norm first (same solution).
    ``solver`` is the :class:`~mpc2nn.implicit.ActiveSetSolver` (its ``Ḡ``, row norms and Farkas test).
    Returns ``(λ (b, m), code (b,) LCPCode values, farkas_margin (b,))``.
    """
    b, m = q.shape
    lam = np.full((b, m), np.nan)
    code = np.full(b, _FAILED, dtype=np.int8)
    margin = np.full(b, np.nan)
    use = solver.row_norm > 0
    Gn = solver.Gbar[use] / solver.row_norm[use, None]
    for i in range(b):
        qi = q[i, use] / solver.row_norm[use]
        if not np.all(np.isfinite(qi)):
            continue
        # the unit of v: the largest violation at z₀ (not the largest |q_i|: a bound of 1e13 written for "no
        # bound" would drown every other row's q_i below the rounding of the NNLS)
        scale = float(np.max(-qi, initial=0.0))
        if scale == 0.0:  # z₀ is feasible: λ = 0
            lam[i], code[i] = 0.0, _SOLVED
            continue
        E = np.vstack([Gn.T, qi[None, :] / scale])
        cn = np.sqrt(1.0 + (qi / scale) ** 2)  # columns to unit norm (u_i → u_i cn_i, the same NNLS)
        f = np.zeros(E.shape[0])
        f[-1] = -1.0
        try:
            u, _ = scipy.optimize.nnls(E / cn, f, maxiter=50 * E.shape[1])
        except (RuntimeError, ValueError):  # pragma: no cover - nnls gives up
            continue
        u /= cn
        r = E @ u - f
        mu = np.zeros(m)
        mu[use] = u / solver.row_norm[use]
        c, mg = solver.farkas_code(mu[None, :], h[i:i + 1], z0n[i:i + 1])
        if c[0] == _INFEASIBLE:
            code[i], margin[i] = c[0], mg[0]
        elif r[-1] > 0:  # v = -Ḡᵀλ with λ = u / r_{n+1}, undoing the row and q scalings
            full = np.zeros(m)
            full[use] = scale * u / r[-1] / solver.row_norm[use]
            lam[i], code[i] = full, _SOLVED
    return lam, code, margin
