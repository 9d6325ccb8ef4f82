"""mpc2nn: linear MPC as exact implicit ReLU networks, explicit networks with known error, and back."""
from . import systems
from .exceptions import *  # noqa: F401,F403
from .problem import MPCProblem, Polytope, StageConstraint
from .qp import CondensedQP, KKTResiduals, condense

__version__ = "0.1.0"
from .implicit import CERTIFICATE_TOL, ImplicitNetwork, ImplicitSolution, WellPosednessReport, compile
from .oracle import DAQP_SETTINGS, OSQP_SETTINGS, OSQPSession, ReferenceSolution, solve_daqp, solve_osqp
from .validate import ValidationReport, sample_states, validate
from .simulate import (ControlAction, Controller, FunctionController, ImplicitController, MPCController, Trajectory,
                       as_controller, simulate)
from .export import FileFormatError, load, problem_hash, save
