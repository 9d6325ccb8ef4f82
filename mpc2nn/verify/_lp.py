"""Verified LP bounds: ``max wᵀξ + c`` over a cell, bounded from above by weak duality, not read off HiGHS.

For the cell ``{ξ ∈ [-1, 1]^n : A ξ <= b}`` and any ``y >= 0``::

    wᵀξ + c = (w - Aᵀy)ᵀξ + yᵀAξ + c <= ‖w - Aᵀy‖₁ + yᵀb + c,

so HiGHS only *supplies* ``y`` (its duals); the bound is evaluated here in numpy and widened by an allowance
for the rounding of its own evaluation and of the computation of ``w`` and ``c`` (``size``: the magnitude
of the terms they were summed from). No tolerance of HiGHS enters the bound: a dual that is slightly
infeasible only makes ``‖w - Aᵀy‖₁`` larger. Each row is scaled to unit size before HiGHS sees it, so
HiGHS's absolute tolerances act at that row's own scale (an objective of size 1e-12 is solved as finely
as one of size 1). The same dual-verified bound is what :func:`mpc2nn.regions.certify_program` uses.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.optimize
import scipy.sparse

__all__ = ["verified_max", "ROUNDING_ULPS", "VERIFIED_LP_OPTIONS"]

#: Allowance for the rounding of a bound's evaluation (the dual residual ``w - Aᵀy``, the sums ``yᵀb`` and
#: ``‖·‖₁``) and of the inputs ``w, c``: ``(ROUNDING_ULPS + terms) · eps`` times the magnitudes summed, where
#: ``terms`` is the number of products each input was accumulated from (see :func:`verified_max`). 64 ulps
#: is what the certificate of exact networks allows for its own evaluation.
ROUNDING_ULPS = 64

#: HiGHS options of the LPs whose duals are verified: tight feasibility tolerances so that the duals are
#: nearly optimal (the bound is valid for any duals; these only make it tight).
VERIFIED_LP_OPTIONS = dict(primal_feasibility_tolerance=1e-10, dual_feasibility_tolerance=1e-10)

_EPS = np.finfo(float).eps


def _highs_lp(cost, A, b):
    with warnings.catch_warnings():  # scipy warns that the tolerances go to HiGHS verbatim: intended
        warnings.filterwarnings("ignore", message="Unrecognized options", category=RuntimeWarning)
        return scipy.optimize.linprog(cost, A_ub=A, b_ub=b, bounds=(-1.0, 1.0), method="highs",
                                      options=VERIFIED_LP_OPTIONS)


def verified_max(W: np.ndarray, c, A: np.ndarray, b: np.ndarray, size=None, terms: int = 0):
    """Proven upper bounds on ``max W[k]ᵀξ + c[k]`` over ``{ξ ∈ [-1, 1]^n : A ξ <= b}``, one HiGHS LP.

    Parameters
    ----------
    W : ndarray, shape (k, n)
        Linear parts (in the cell's unit coordinates).
    c : float or ndarray, shape (k,)
        Constants.
    A, b : ndarrays, shapes (p, n) and (p,)
        The cell's rows (unit coordinates).
    size : ndarray, shape (k,), optional
        Magnitude of the terms ``W[k]`` and ``c[k]`` were summed from (their rounding is allowed for as
        ``(ROUNDING_ULPS + terms)·eps·size``); default ``|W[k]|₁ + |c[k]|``.
    terms : int
        Number of products each entry of ``W, c`` was accumulated from.

    Returns
    -------
    bound : ndarray, shape (k,)
        Proven upper bounds; ``-inf`` when HiGHS finds the cell empty, ``inf`` where HiGHS failed.
    points : ndarray, shape (k, n)
        HiGHS's maximisers (NaN where there is none): candidate witnesses, not part of the proof.
    """
    W = np.atleast_2d(np.asarray(W, float))
    k, n = W.shape
    c = np.broadcast_to(np.asarray(c, float), (k,)).copy()
    own = np.abs(W).sum(axis=1) + np.abs(c)
    size = own if size is None else np.maximum(np.broadcast_to(np.asarray(size, float), (k,)), own)
    allowance = (ROUNDING_ULPS + terms) * _EPS
    if not A.shape[0]:
        return c + np.abs(W).sum(axis=1) + allowance * (size + own), np.where(W >= 0, 1.0, -1.0)
    scale = np.where(size > 0, size, 1.0)
    Ws = W / scale[:, None]
    p = A.shape[0]
    Ablk = scipy.sparse.block_diag([scipy.sparse.csr_matrix(A)] * k, format="csr")
    res = _highs_lp(-Ws.ravel(), Ablk, np.tile(b, k))
    if res.status == 2:
        return np.full(k, -np.inf), np.full((k, n), np.nan)
    if res.status != 0 or res.x is None:
        return np.full(k, np.inf), np.full((k, n), np.nan)
    X = np.asarray(res.x).reshape(k, n)
    Y = np.maximum(-np.asarray(res.ineqlin.marginals).reshape(k, p), 0.0) * scale[:, None]
    R = W - Y @ A
    AY = np.abs(Y) @ np.abs(A)
    bound = c + Y @ b + np.abs(R).sum(axis=1)
    mag = size + np.abs(Y) @ np.abs(b) + AY.sum(axis=1) + np.abs(W).sum(axis=1) + np.abs(c)
    bound = bound + allowance * mag
    bound = np.where(np.isfinite(bound), bound, np.inf)
    return bound, X
