"""Reference solvers (OSQP, DAQP) on the same QP; every solver specific lives here.

:data:`REFERENCE_SOLVERS` names them for :func:`mpc2nn.validate` and the command line.
"""

from ._daqp import DAQP_SETTINGS, solve_daqp
from ._osqp import OSQP_SETTINGS, OSQPSession, solve_osqp
from ._registry import OSQP_TIGHT_SETTINGS, REFERENCE_SOLVERS, ReferenceSolver, solve_exact, solve_osqp_tight
from ._solution import ReferenceSolution

__all__ = ["ReferenceSolution", "OSQPSession", "solve_osqp", "solve_daqp", "OSQP_SETTINGS", "DAQP_SETTINGS",
           "REFERENCE_SOLVERS", "ReferenceSolver", "OSQP_TIGHT_SETTINGS", "solve_exact", "solve_osqp_tight"]
