"""The implicit ReLU network of a condensed QP and its exact, certified solve."""

from ._active_set import ActiveSetSolver, LCPSolution
from ._memory import available_memory, compile_memory
from ._network import CERTIFICATE_TOL, ImplicitNetwork, compile
from ._solution import ImplicitSolution
from ._weights import ImplicitWeights, as_weights
from ._well_posedness import WellPosednessReport, well_posedness

__all__ = ["ImplicitNetwork", "ImplicitSolution", "WellPosednessReport", "ImplicitWeights", "compile",
           "CERTIFICATE_TOL", "ActiveSetSolver", "LCPSolution", "as_weights", "well_posedness",
           "compile_memory", "available_memory"]
