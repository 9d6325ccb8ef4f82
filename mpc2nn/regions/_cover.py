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

import time
from dataclasses import dataclass

import numpy as np

from ._geometry import VERTEX_TOL
from ._lp import hyperplane_balls

__all__ = ["COVER_TOL", "Piece", "CoverTask", "cover"]

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


class CoverTask:
    """The coverage question of one facet ``{aᵀθ = β, A_o θ <= b_o}`` against its candidate regions.

    Parameters
    ----------
    a, beta : the facet's unit normal (pointing out of its region) and offset
    A_o, b_o : the other rows of the facet's region
    facet_vertices : (p, n) vertices of the facet, or ``None`` (then every implication is left to LPs)
    candidates : regions beyond the hyperplane (or crossing it), as ``(C, e, V)``: unit rows and the
        region's vertices (``None`` where unknown)

    After :func:`cover` the attribute ``pieces`` holds the uncovered pieces: ``[]`` when the facet is
    covered, ``[None]`` when no candidate reached it (the whole facet is uncovered).
    """

    def __init__(self, a, beta, A_o, b_o, facet_vertices, candidates):
        self.a, self.beta, self.A_o, self.b_o, self.V = a, beta, A_o, b_o, facet_vertices
        self.queue = list(candidates)
        self.pieces: list[Piece | None] = [None]

    def expand(self, C, e, V_region, scale: float):
        """Pieces kept as they are and LP blocks of the sub-pieces of ``P`` minus ``{C θ <= e}`` for each piece."""
        a, beta = self.a, self.beta
        tol = VERTEX_TOL * scale
        n = a.size
        if V_region is not None and V_region.shape[0] and self.A_o.shape[0]:
            if np.any(np.all(V_region @ self.A_o.T > self.b_o + tol, axis=0)):
                return list(self.pieces), []  # a row of the facet's region separates the candidate from it
        perp = np.linalg.norm(C - (C @ a)[:, None] * a[None, :], axis=1)
        parallel = perp <= VERTEX_TOL
        if np.any((C[parallel] @ a) * beta > e[parallel] + tol):
            return list(self.pieces), []  # the region does not meet the hyperplane
        C, e = C[~parallel], e[~parallel]
        kept: list[Piece | None] = []
        blocks = []
        for P in self.pieces:
            if P is None:
                extra_A, extra_b = np.zeros((0, n)), np.zeros(0)
                implied = np.zeros(C.shape[0], bool)
                if self.V is not None:
                    values = self.V @ C.T
                    if np.any(np.all(values > e + tol, axis=0)):
                        kept.append(P)  # one row of the region separates it from the whole facet
                        continue
                    implied = np.all(values <= e + tol, axis=0)
            else:
                extra_A, extra_b = P.extra_A, P.extra_b
                implied = np.zeros(C.shape[0], bool)
            rows = np.flatnonzero(~implied)
            for t, k in enumerate(rows):
                XA = np.vstack([extra_A, -C[k][None, :], C[rows[:t]]])
                Xb = np.concatenate([extra_b, [-e[k]], e[rows[:t]]])
                blocks.append((XA, Xb))
        return kept, blocks


def cover(tasks: list[CoverTask], box_lo, box_hi, scale: float, counter: list, deadline=None) -> None:
    """Run the set differences of all ``tasks``, candidate by candidate, one batched LP per step.

    ``counter`` (a one-element list) is incremented by the number of LP blocks solved. Past ``deadline``
    (a ``time.perf_counter()`` value) the tasks not finished keep their pieces (not shown covered).
    """
    active = [t for t in tasks if t.queue]
    while active:
        if deadline is not None and time.perf_counter() > deadline:
            for t in active:
                t.pieces = t.pieces or [None]
            return
        plans = []
        lp_blocks: list[tuple] = []
        for t in active:
            C, e, V_region = t.queue.pop(0)
            kept, blocks = t.expand(C, e, V_region, scale)
            plans.append((t, kept, len(lp_blocks), len(blocks), blocks))
            lp_blocks.extend((t.a, t.beta, np.vstack([t.A_o, XA]), np.concatenate([t.b_o, Xb])) for XA, Xb in blocks)
        centres, radii = hyperplane_balls(lp_blocks, box_lo, box_hi, scale)
        counter[0] += len(lp_blocks)
        for t, kept, start, count, blocks in plans:
            new = list(kept)
            for (XA, Xb), c, r in zip(blocks, centres[start:start + count], radii[start:start + count], strict=True):
                if r > COVER_TOL * scale:
                    new.append(Piece(XA, Xb, c, float(r)))
            t.pieces = new
        active = [t for t in active if t.queue and t.pieces]
