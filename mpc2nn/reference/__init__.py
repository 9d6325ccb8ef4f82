"""Stage 5 — reference solvers (OSQP, DAQP) on the same QP; every solver specific lives here."""

from ._daqp import DAQP_SETTINGS, solve_daqp
from ._osqp import OSQP_SETTINGS, OSQPSession, solve_osqp
from ._solution import ReferenceSolution

__all__ = ["ReferenceSolution", "OSQPSession", "solve_osqp", "solve_daqp", "OSQP_SETTINGS", "DAQP_SETTINGS"]
