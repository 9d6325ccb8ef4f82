"""Polytope operations of the enumeration: normalised rows, vertices, irredundant H-representations.

A polytope is ``{θ : A θ <= b}`` with rows of unit Euclidean norm, so ``b_i - a_iᵀθ`` is the
distance of ``θ`` to row ``i``'s hyperplane and every tolerance is a length (relative to the
domain's scale, see :func:`~mpc2nn.regions.critical_regions`).
"""

from __future__ import annotations

import numpy as np
import scipy.spatial

from ..exceptions import SolverError
from ._lp import block_diagonal, solve_lp

__all__ = ["ROW_ZERO_TOL", "VERTEX_TOL", "VERTEX_MAX_DIM", "normalise_rows", "unique_rows", "vertices",
           "facet_rows_from_vertices", "irredundant_by_lp", "box_redundant"]

#: A row ``c θ <= e`` whose gradient is below ``ROW_ZERO_TOL`` times the size of the terms it was
#: computed from is constant (cancellation, e.g. a constraint weakly active on a whole region): it is
#: dropped when ``e >= 0`` and marks the polytope empty otherwise. 1e-10 leaves a margin of about 1e6 over
#: rounding in the ``M_AA⁻¹`` solves of small problems.
ROW_ZERO_TOL = 1e-10

#: A vertex lies on a row when its distance to the row's hyperplane is below ``VERTEX_TOL·scale``
#: (vertices from qhull are accurate to about 1e-13 of the scale for the small regions of mpQPs).
VERTEX_TOL = 1e-9

#: Largest dimension of ``θ`` for which regions are described by their vertices (qhull); above it
#: redundancy and coverage are decided by LPs only (vertex counts grow too fast with the dimension).
VERTEX_MAX_DIM = 6


def normalise_rows(C: np.ndarray, e: np.ndarray, magnitude: np.ndarray, scale: float):
    """Rows ``C θ <= e`` divided by ``‖C_i‖``; constant rows sorted out.

    Parameters
    ----------
    C : (k, n); e : (k,)
    magnitude : (k,) size of the terms each row was computed from (for the cancellation test)
    scale : the domain's scale (a length)

    Returns
    -------
    A : (k', n) unit rows; b : (k',); keep : (k,) bool mask of the rows kept; empty : bool,
    a constant row is violated (the polytope is empty).
    """
    norms = np.linalg.norm(C, axis=1)
    const = norms * scale <= ROW_ZERO_TOL * (np.abs(e) + magnitude * scale + 1e-300)
    empty = bool(np.any(const & (e < -ROW_ZERO_TOL * (magnitude * scale + np.abs(e) + 1e-300))))
    keep = ~const
    A = C[keep] / norms[keep, None]
    b = e[keep] / norms[keep]
    return A, b, keep, empty


def unique_rows(A: np.ndarray, b: np.ndarray, scale: float, tol: float = VERTEX_TOL) -> np.ndarray:
    """Indices of rows to keep so that no two kept unit rows describe the same half-space (the first
    of such rows in the given order is kept, so callers put the rows they prefer first).
    """
    key = np.hstack([A, (b / scale)[:, None]])
    kept: list[int] = []
    for i in range(A.shape[0]):
        if kept and np.any(np.abs(key[kept] - key[i]).max(axis=1) <= tol):
            continue
        kept.append(i)
    return np.array(kept, np.int64)


def box_redundant(A: np.ndarray, b: np.ndarray, lo: np.ndarray, hi: np.ndarray, tol: float) -> np.ndarray:
    """``(k,)`` rows implied by the box ``lo <= θ <= hi`` with margin ``tol``: ``max over the box < b - tol``."""
    mid, half = (lo + hi) / 2, (hi - lo) / 2
    return A @ mid + np.abs(A) @ half < b - tol


def vertices(A: np.ndarray, b: np.ndarray, interior: np.ndarray, scale: float) -> np.ndarray | None:
    """Vertices ``(p, n)`` of the bounded polytope ``{A θ <= b}`` from a strictly interior point, or ``None``
    when qhull fails (flat or badly scaled input; the caller falls back to LPs).
    """
    n = A.shape[1]
    if n == 1:
        a = A[:, 0]
        lo = np.max(b[a < 0] / a[a < 0], initial=-np.inf)
        hi = np.min(b[a > 0] / a[a > 0], initial=np.inf)
        if not (np.isfinite(lo) and np.isfinite(hi)):
            return None
        return np.array([[lo], [hi]])
    try:
        hs = scipy.spatial.HalfspaceIntersection(np.hstack([A, -b[:, None]]), interior)
    except (scipy.spatial.QhullError, ValueError):
        return None
    V = hs.intersections
    if not np.all(np.isfinite(V)):
        return None
    # qhull reports a degenerate vertex once per simplicial facet of the dual hull: merge the copies
    keep = unique_rows(V, np.zeros(V.shape[0]), scale, tol=VERTEX_TOL * scale)
    return V[keep]


def facet_rows_from_vertices(A: np.ndarray, b: np.ndarray, V: np.ndarray, scale: float):
    """Which rows are facets, from the vertices: row ``i`` is a facet when the vertices on it span an
    ``(n-1)``-dimensional affine set.

    Returns ``(facet (k,) bool, incidence (k, p) bool)``, or ``None`` when a vertex violates a row by
    more than the tolerance (the vertex list is not trustworthy; the caller uses LPs).
    """
    n = A.shape[1]
    dist = b[:, None] - A @ V.T
    tol = VERTEX_TOL * scale
    if np.any(dist < -tol):
        return None
    inc = dist <= tol
    facet = np.zeros(A.shape[0], bool)
    for i in np.flatnonzero(inc.sum(axis=1) >= n):
        P = V[inc[i]]
        if n == 1:
            facet[i] = True
            continue
        sv = np.linalg.svd(P[1:] - P[0], compute_uv=False)
        facet[i] = sv.size >= n - 1 and sv[n - 2] > tol
    return facet, inc


def irredundant_by_lp(A: np.ndarray, b: np.ndarray, scale: float, box_lo, box_hi) -> np.ndarray:
    """``(k,)`` mask of the rows of ``{A θ <= b}`` that are facets, one batched LP: row ``i`` is kept when
    ``max a_iᵀθ`` over the other rows (and ``a_iᵀθ <= b_i + scale``) exceeds ``b_i + VERTEX_TOL·scale``.

    Rows describing the same half-space must have been merged before (:func:`unique_rows`).
    """
    k, n = A.shape
    if k == 0:
        return np.zeros(0, bool)
    rhs = np.tile(b, (k, 1))
    rhs[np.arange(k), np.arange(k)] += scale
    # variable bounds well outside the domain's box, which would otherwise make its own rows look redundant
    wide = np.column_stack([box_lo - 2 * scale, box_hi + 2 * scale])
    res = solve_lp(-A.ravel(), block_diagonal([A] * k, n), rhs.ravel(), bounds=np.tile(wide, (k, 1)))
    if res.status != 0:
        raise SolverError("the redundancy LP of a region was infeasible although the region has an interior point")
    x = res.x.reshape(k, n)
    values = np.einsum("kn,kn->k", x, A)
    return values > b + VERTEX_TOL * scale
