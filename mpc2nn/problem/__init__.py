"""The MPC problem: definition, outputs, signal names and units, targets, terminal sets,
discretisation (numpy/scipy only).
"""

from ._discretize import zoh
from ._fields import FieldSpec, problem_fields
from ._mpc import MPCProblem, StageConstraint
from ._outputs import stage_weights
from ._polytope import REDUNDANCY_TOL, Polytope, lp_max, redundant_rows
from ._signals import signal_labels
from ._targets import SteadyStateTarget, steady_state_target
from ._terminal_sets import InvariantSet, lqr_gain, lqr_invariant_set

__all__ = ["MPCProblem", "StageConstraint", "Polytope", "SteadyStateTarget", "steady_state_target",
           "InvariantSet", "lqr_invariant_set", "lqr_gain", "zoh", "lp_max", "redundant_rows", "REDUNDANCY_TOL",
           "FieldSpec", "problem_fields", "stage_weights", "signal_labels"]
