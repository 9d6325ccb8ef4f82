"""Polytopes ``{x : C x <= d}`` and the LP that finds their redundant rows."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.optimize

from .._checks import Array, as_matrix, frozen
from ..exceptions import SolverError

__all__ = ["Polytope", "lp_max", "redundant_rows", "REDUNDANCY_TOL"]

#: Relative tolerance of the redundancy test: row i is implied when its largest value over the
#: other rows is at most ``d_i + REDUNDANCY_TOL·max(1, |d_i|)`` (HiGHS solves to about 1e-10).
REDUNDANCY_TOL = 1e-9


@dataclass(frozen=True, eq=False)
class Polytope:
    """A polytope, the set of x with ``C x <= d``.

    Parameters
    ----------
    C : array_like, shape (p, n)
        Row normals (a single row may be given as ``(n,)``).
    d : array_like, shape (p,)
        Right-hand sides.
    """

    C: Array
    d: Array

    def __post_init__(self):
        C = np.atleast_2d(as_matrix("Polytope.C", self.C, ("p", "n"), (None, None)))
        d = as_matrix("Polytope.d", self.d, ("p",), (C.shape[0],))
        object.__setattr__(self, "C", frozen(C))
        object.__setattr__(self, "d", frozen(d))

    def contains(self, X: np.ndarray, tol: float = 0.0) -> np.ndarray:
        """``(B,)`` mask of the points ``x`` (rows of ``X``) with ``C x <= d + tol``.

        Parameters
        ----------
        X : array_like, shape (B, n) or (n,)
            Points; a single point is a batch of one.
        tol : float
            Absolute tolerance added to every right-hand side (default 0: exact membership).

        Returns
        -------
        ndarray of bool, shape (B,)
        """
        return np.all(np.atleast_2d(X) @ self.C.T <= self.d + tol, axis=1)


def lp_max(c: np.ndarray, C: np.ndarray, d: np.ndarray, bounds=None) -> float:
    """``max cᵀv s.t. C v <= d`` over ``v`` in ``bounds``, one HiGHS LP.

    Parameters
    ----------
    c : ndarray, shape (n,)
        Objective.
    C : ndarray, shape (p, n)
        Constraint rows (``p = 0`` allowed).
    d : ndarray, shape (p,)
        Right-hand sides.
    bounds : sequence of (lo, hi), optional
        ``n`` bounds on ``v`` as :func:`scipy.optimize.linprog` takes them (``None`` for no
        bound); default: ``v`` free.

    Returns
    -------
    float
        The maximum; ``inf`` if the LP is unbounded, ``-inf`` if the constraints admit no point.

    Raises
    ------
    SolverError
        HiGHS failed (neither optimal, unbounded nor infeasible).
    """
    n = c.size
    bnds = [(None, None)] * n if bounds is None else bounds
    res = scipy.optimize.linprog(-c, A_ub=C if C.size else None, b_ub=d if C.size else None, bounds=bnds,
                                 method="highs")
    if res.status == 3:
        return np.inf
    if res.status == 2:
        return -np.inf
    if res.status != 0:
        raise SolverError(f"an LP of the redundancy test failed ({res.message})")
    return -res.fun


def redundant_rows(C: np.ndarray, d: np.ndarray, *, bounds=None, tol: float = REDUNDANCY_TOL) -> np.ndarray:
    """``(p,)`` bool mask of rows of ``C v <= d`` implied by the rows kept (and ``bounds`` on ``v``).

    One LP per row, in order; a row found redundant is left out of the later tests, so
    of several rows describing the same half-space exactly one is kept.

    Parameters
    ----------
    C : ndarray, shape (p, n)
        Constraint rows.
    d : ndarray, shape (p,)
        Right-hand sides.
    bounds : sequence of (lo, hi), optional
        Bounds on ``v`` as for :func:`lp_max` (default: ``v`` free).
    tol : float
        Relative tolerance: row ``i`` is implied when its largest value over the other rows is at
        most ``d_i + tol·max(1, |d_i|)`` (default :data:`REDUNDANCY_TOL`).

    Returns
    -------
    ndarray of bool, shape (p,)
        True for the redundant rows.

    Examples
    --------
    >>> import numpy as np
    >>> from mpc2nn.problem import redundant_rows
    >>> C = np.array([[1.0], [1.0], [-1.0]])          # x <= 1, x <= 2, -x <= 1
    >>> redundant_rows(C, np.array([1.0, 2.0, 1.0])).tolist()
    [False, True, False]
    """
    keep = np.ones(C.shape[0], bool)
    for i in range(C.shape[0]):
        others = keep.copy()
        others[i] = False
        if lp_max(C[i], C[others], d[others], bounds) <= d[i] + tol * max(1.0, abs(d[i])):
            keep[i] = False
    return ~keep
