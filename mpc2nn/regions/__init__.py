"""Critical regions: the explicit MPC law as a proven partition of the parameter space.

:func:`critical_regions` enumerates the regions of ``θ`` on which one active set is optimal (with the
affine laws of ``z``, ``U``, the multipliers and the first input on each) and certifies that they cover
the feasible part of the domain; :class:`Partition` locates points, evaluates the law and lists the
distinct first-input laws. :func:`lattice_of` writes a complete partition's law as a lattice (max–min)
of its distinct pieces, :func:`schedule` lays it out as levels of pairwise max/min (a :class:`Program`,
the exact networks of :func:`mpc2nn.exact_network`), and :func:`certify_program` proves by LP that such
a program equals every region's law. numpy/scipy only (HiGHS LPs, qhull vertices).
"""

from ._certify import BOX_MARGIN, CERTIFY_TOL, LP_BATCH, ROUNDING_ULPS, LatticeCertificate, certify_program
from ._cover import COVER_TOL
from ._domain import Domain, make_domain
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
from ._lattice import MERGE_TOL, ORDER_TOL, OUTPUTS, Lattice, LatticeOutput, covered_set, lattice_of
from ._lp import LP_OPTIONS
from ._partition import LOCATE_TOL, PIECE_TOL, OpenFacet, Partition, Pieces
from ._program import COPY, EVAL_BYTES, MAX, MIN, OPS, Program, schedule
from ._region import FACET_KINDS, LICQ_TOL, ROW_KINDS, Region

__all__ = ["critical_regions", "Partition", "Region", "Domain", "make_domain", "Pieces", "OpenFacet", "FACET_KINDS",
           "ROW_KINDS",
           "COVER_TOL", "ACTIVE_TOL", "DEFAULT_MAX_REGIONS", "DEFAULT_TIME_LIMIT", "HYPERPLANE_TOL", "MAX_FAILURES",
           "MEMBER_TOL", "MIN_RADIUS", "N_SEEDS", "STEP", "STEP_SHRINK", "ROW_ZERO_TOL", "VERTEX_MAX_DIM",
           "VERTEX_TOL", "LP_OPTIONS", "LOCATE_TOL", "PIECE_TOL", "LICQ_TOL",
           # lattice networks and their certificate
           "lattice_of", "Lattice", "LatticeOutput", "covered_set", "schedule", "Program", "certify_program",
           "LatticeCertificate", "MERGE_TOL", "ORDER_TOL", "OUTPUTS", "COPY", "MIN", "MAX", "OPS", "EVAL_BYTES",
           "CERTIFY_TOL", "BOX_MARGIN", "LP_BATCH", "ROUNDING_ULPS"]
