"""Constraint rows of a condensed QP that no parameter of a box can make active."""

from __future__ import annotations

import numpy as np

from .._checks import as_box
from ..problem import redundant_rows
from ._condensed import CondensedQP

__all__ = ["inactive_rows"]


def inactive_rows(qp: CondensedQP, box) -> tuple:
    """Rows ``i`` that no parameter can make active: ``G_i z - E_i θ <= w_i`` is implied by the
    other rows kept and by ``x ∈ box`` (the other parts of ``θ`` free), one HiGHS LP per row.

    Of several rows that describe the same half-space, one is kept.

    Parameters
    ----------
    qp : CondensedQP
        The QP whose rows are tested, jointly in ``(z, θ)``.
    box : (lo, hi) or None
        Box of the state part ``x`` of ``θ``, arrays of shape (n_x,) each; ``None``: ``x`` free.

    Returns
    -------
    tuple of int
        Indices of the rows implied by the others (tolerance :data:`~mpc2nn.problem.REDUNDANCY_TOL`).
    """
    n_z, n_x = qp.n_z, qp.n_x
    if box is not None:
        box = as_box("box", box, n_x, finite=False)
    bounds = [(None, None)] * n_z + ([(None, None)] * n_x if box is None
                                     else [(float(lo), float(hi)) for lo, hi in zip(box[0], box[1], strict=True)])
    bounds += [(None, None)] * (qp.n_theta - n_x)
    implied = redundant_rows(np.hstack([qp.G, -qp.E]), qp.w, bounds=bounds)
    return tuple(int(i) for i in np.flatnonzero(implied))
