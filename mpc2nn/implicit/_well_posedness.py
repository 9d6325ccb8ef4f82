"""Well-posedness facts of an implicit network ``y = W relu(y) + c``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..qp import inactive_rows

if TYPE_CHECKING:
    from ._network import ImplicitNetwork

__all__ = ["WellPosednessReport", "well_posedness"]

#: Rows of ``[G, -E]`` whose unit directions have cosine ``> 1 - PARALLEL_TOL`` (``< -1 + PARALLEL_TOL``) are
#: reported as duplicated (opposite): ``1 - cos ≈ φ²/2`` for an angle φ, so this asks for φ below about
#: 1.4e-6, directions equal up to roundoff of the condensation, not merely similar constraints.
PARALLEL_TOL = 1e-12


@dataclass(frozen=True)
class WellPosednessReport:
    """Facts about the implicit network ``y = W relu(y) + c``.

    ``I - W = Γ M`` is a P-matrix (unique fixed point for every ``c``) iff ``M`` is
    positive definite iff ``G`` has full row rank.

    Attributes
    ----------
    m : int
        Constraint rows (the width of the network).
    n_U : int
        Decision variables ``n_z``.
    rank_G : int
        Rank of ``G``.
    p_matrix : bool
        ``I - W`` is a P-matrix.
    eig_min_M, eig_max_M : float
        Extreme eigenvalues of ``M = G H⁻¹ Gᵀ``.
    duplicated_rows : tuple of (int, int)
        Pairs of rows of ``[G, -E]`` that are the same constraint up to a positive factor
        (to :data:`PARALLEL_TOL`).
    opposite_pairs : tuple of (int, int)
        Pairs with ``G_i ∥ -G_j`` (upper and lower bounds on one quantity).
    redundant_rows : tuple of int or None
        Rows that no state of ``box`` can make active (one LP per row); ``None``: not checked.
    box : (lo, hi) or None
        The box of states used for the redundancy check (``None``: all of ``R^{n_x}``).
    contraction_rate : float or None
        Rate of the plain iteration ``y ← W relu(y) + c`` in the ``Γ^{-1/2}``-weighted
        2-norm, ``‖I - Γ^{1/2} M Γ^{1/2}‖₂``, when it is < 1; else ``None``.
    notes : tuple of str
        Plain-language explanations.
    """

    m: int
    n_U: int
    rank_G: int
    p_matrix: bool
    eig_min_M: float
    eig_max_M: float
    duplicated_rows: tuple
    opposite_pairs: tuple
    redundant_rows: tuple | None
    box: tuple | None
    contraction_rate: float | None
    notes: tuple

    def __str__(self) -> str:
        lines = [
            f"constraint rows m = {self.m}, decision variables n_U = {self.n_U}, rank(G) = {self.rank_G}",
            f"I - W is a P-matrix (unique fixed point for every input): {self.p_matrix}",
            f"eigenvalues of M = G H⁻¹ Gᵀ: min {self.eig_min_M:.3e}, max {self.eig_max_M:.3e}",
            f"duplicated rows: {len(self.duplicated_rows)}, upper/lower pairs: {len(self.opposite_pairs)}, "
            f"redundant rows over the box: "
            f"{'not checked' if self.redundant_rows is None else len(self.redundant_rows)}",
            "contraction rate of the plain iteration: "
            + ("none (no global contraction)" if self.contraction_rate is None else f"{self.contraction_rate:.6f}"),
        ]
        return "\n".join(lines + [f"note: {n}" for n in self.notes])


def well_posedness(net: ImplicitNetwork, box) -> WellPosednessReport:
    """Diagnose well-posedness of ``y = W relu(y) + c`` (see :meth:`ImplicitNetwork.well_posedness`).

    Parameters
    ----------
    net : ImplicitNetwork
        The network; its QP's rows and its steps ``alpha`` are examined.
    box : (lo, hi) or None
        Box of states, arrays of shape (n_x,) each, over which rows are tested for redundancy
        (``None``: the QP's sample box, or all of ``R^{n_x}`` where it has none).

    Returns
    -------
    WellPosednessReport
    """
    qp = net.qp
    G, m, n_U = qp.G, qp.m, qp.n_z
    M = qp.dual_hessian
    eig = np.linalg.eigvalsh(M) if m else np.zeros(1)
    rank = int(np.linalg.matrix_rank(G)) if m else 0
    p_matrix = rank == m
    # parallel rows of the joint constraint [G, -E] (same constraint in (U, x) up to scaling)
    J = np.hstack([G, -qp.E])
    norms = np.linalg.norm(J, axis=1)
    Jn = J / np.where(norms > 0, norms, 1.0)[:, None]
    cos = Jn @ Jn.T
    dup, opp = [], []
    iu = np.triu_indices(m, k=1)
    for i, j in zip(*iu, strict=True):
        if cos[i, j] > 1 - PARALLEL_TOL:
            dup.append((int(i), int(j)))
        elif cos[i, j] < -1 + PARALLEL_TOL:
            opp.append((int(i), int(j)))
    if box is None:
        box = qp.sample_box
    redundant = inactive_rows(qp, box) if m else ()
    sq = np.sqrt(net.alpha)
    rate = float(np.abs(np.linalg.eigvalsh(np.eye(m) - sq[:, None] * M * sq[None, :])).max()) if m else 0.0
    notes = []
    if not p_matrix:
        notes.append(f"G has {m} rows but rank {rank}: M is singular, W has eigenvalue 1 and no step size "
                     "gives a global contraction; fixed points exist exactly where the QP is feasible and "
                     "their U is unique even where y is not")
    if rate >= 1.0:
        notes.append("the plain iteration is not a contraction: its error bounds must be a-posteriori")
    return WellPosednessReport(m, n_U, rank, p_matrix, float(eig[0]), float(eig[-1]), tuple(dup), tuple(opp),
                               redundant, None if box is None else (np.asarray(box[0]), np.asarray(box[1])),
                               rate if rate < 1.0 else None, tuple(notes))
