"""Critical regions: the explicit MPC law as a proven partition of the parameter space.

:func:`critical_regions` enumerates the regions of ``θ`` on which one active set is optimal (with the
affine laws of ``z``, ``U``, the multipliers and the first input on each) and certifies that they cover
the feasible part of the domain; :class:`Partition` locates points, evaluates the law and lists the
distinct first-input laws. numpy/scipy only (HiGHS LPs, qhull vertices).
"""

from ._cover import COVER_TOL
from ._explore import (
    ACTIVE_TOL,
    DEFAULT_MAX_REGIONS,
    DEFAULT_TIME_LIMIT,
    HYPERPLANE_TOL,
    MAX_FAILURES,
    MEMBER_TOL,
    MIN_RADIUS,
    N_SEEDS,
    STEP,
    STEP_SHRINK,
    critical_regions,
)
from ._geometry import ROW_ZERO_TOL, VERTEX_MAX_DIM, VERTEX_TOL
from ._lp import LP_OPTIONS
from ._partition import LOCATE_TOL, PIECE_TOL, OpenFacet, Partition, Pieces
from ._region import FACET_KINDS, LICQ_TOL, ROW_KINDS, Region

__all__ = ["critical_regions", "Partition", "Region", "Pieces", "OpenFacet", "FACET_KINDS", "ROW_KINDS",
           "COVER_TOL", "ACTIVE_TOL", "DEFAULT_MAX_REGIONS", "DEFAULT_TIME_LIMIT", "HYPERPLANE_TOL", "MAX_FAILURES",
           "MEMBER_TOL", "MIN_RADIUS", "N_SEEDS", "STEP", "STEP_SHRINK", "ROW_ZERO_TOL", "VERTEX_MAX_DIM",
           "VERTEX_TOL", "LP_OPTIONS", "LOCATE_TOL", "PIECE_TOL", "LICQ_TOL"]
