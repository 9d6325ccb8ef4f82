r"""Is a facet covered by the regions beyond it? Polytope set difference with LP emptiness tests.

A facet ``F = {θ : aᵀθ = β, A_o θ <= b_o}`` of a region is covered when ``F ⊆ ∪_j (R_j ∩ H)`` for
regions ``R_j`` that reach beyond the hyperplane ``H = {aᵀθ = β}``. Partitions of mpQPs need not be
facet-to-facet, so several ``R_j`` may share ``F``. The difference ``P \ R_j`` of a piece ``P`` of the
facet and a region ``R_j = {C θ <= e}`` is the union of the pieces

    P ∩ {c_t θ >= e_t} ∩ {c_l θ <= e_l, l < t}      (t over the rows of R_j not implied on P),

each tested by one LP (its largest ball within ``H``); a piece whose ball has radius at most
:data:`COVER_TOL` times the domain's scale is dropped as empty. ``F`` is covered when no piece is left.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._geometry import VERTEX_TOL
from ._lp import hyperplane_balls

__all__ = ["COVER_TOL", "Piece", "uncovered_pieces"]

#: A piece of a facet left uncovered counts as empty when its largest ball within the facet's
#: hyperplane has radius at most ``COVER_TOL·scale``: the completeness certificate proves that no
#: uncovered ball of a larger radius lies on any facet (LP feasibility is decided to about 1e-10·scale).
COVER_TOL = 1e-7


@dataclass
class Piece:
    """A part of a facet not yet shown covered: ``F ∩ {extra_A θ <= extra_b}``, its ball in the hyperplane."""

    extra_A: np.ndarray
    extra_b: np.ndarray
    centre: np.ndarray
    radius: float


def uncovered_pieces(a, beta, A_o, b_o, facet_vertices, candidates, box_lo, box_hi, scale: float,
                     counter: list) -> list[Piece | None]:
    """Pieces of the facet ``{aᵀθ = β, A_o θ <= b_o}`` not covered by the ``candidates`` ``[(C, e), ...]``.

    Parameters
    ----------
    a, beta : the facet's unit normal (pointing out of its region) and offset
    A_o, b_o : the other rows of the facet's region
    facet_vertices : (p, n) vertices of the facet, or ``None`` (then every implication is left to LPs)
    candidates : regions beyond the hyperplane (or crossing it), as ``(C, e)`` unit rows
    box_lo, box_hi, scale : the domain's bounding box and scale
    counter : one-element list, incremented by the number of LP blocks solved

    Returns
    -------
    list of Piece, empty when the facet is covered; ``[None]`` when no candidate reached the facet
    (the whole facet is uncovered).
    """
    n = a.size
    tol = VERTEX_TOL * scale
    empty = np.zeros((0, n))
    pieces: list[Piece | None] = [None]  # None: the whole facet
    for C, e in candidates:
        perp = np.linalg.norm(C - (C @ a)[:, None] * a[None, :], axis=1)
        parallel = perp <= VERTEX_TOL
        if np.any((C[parallel] @ a) * beta > e[parallel] + tol):
            continue  # this region does not reach the hyperplane's relevant side
        C, e = C[~parallel], e[~parallel]
        new: list[Piece | None] = []
        for P in pieces:
            if P is None:
                if facet_vertices is not None:
                    values = facet_vertices @ C.T
                    if np.any(np.all(values > e + tol, axis=0)):
                        new.append(P)  # one row of the region separates it from the whole facet
                        continue
                    implied = np.all(values <= e + tol, axis=0)
                else:
                    implied = np.zeros(C.shape[0], bool)
                PA, Pb = A_o, b_o
            else:
                implied = np.zeros(C.shape[0], bool)
                PA, Pb = np.vstack([A_o, P.extra_A]), np.concatenate([b_o, P.extra_b])
            rows = np.flatnonzero(~implied)
            if rows.size == 0:
                continue
            blocks, extras = [], []
            for t, k in enumerate(rows):
                XA = np.vstack([(P.extra_A if P is not None else empty), -C[k][None, :], C[rows[:t]]])
                Xb = np.concatenate([(P.extra_b if P is not None else np.zeros(0)), [-e[k]], e[rows[:t]]])
                blocks.append((a, beta, np.vstack([PA, -C[k][None, :], C[rows[:t]]]),
                               np.concatenate([Pb, [-e[k]], e[rows[:t]]])))
                extras.append((XA, Xb))
            centres, radii = hyperplane_balls(blocks, box_lo, box_hi, scale)
            counter[0] += len(blocks)
            for (XA, Xb), c, r in zip(extras, centres, radii, strict=True):
                if r > COVER_TOL * scale:
                    new.append(Piece(XA, Xb, c, float(r)))
        pieces = new
        if not pieces:
            return []
    return pieces
