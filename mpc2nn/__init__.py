"""mpc2nn: linear MPC as exact implicit ReLU networks, explicit networks with known error, and back.

The pipeline reads left to right: :class:`MPCProblem` → :func:`condense` →
:func:`compile` (implicit network, exact :meth:`~ImplicitNetwork.solve`) →
:func:`critical_regions` (the explicit law as a proven partition) → explicit networks
(``mpc2nn.unravel``, needs torch) → :func:`verify` (the proven worst-case error of a network against the
MPC law). ``import mpc2nn`` needs only numpy, scipy and osqp;
torch, matplotlib and cvxpy are imported where used.
"""

from . import converse, export, oracle, plotting, regions, sets, systems, verify  # verify: a callable module
from ._version import __version__  # noqa: F401  (the package version, mpc2nn.__version__)
from .evaluation import (
    ControlAction,
    Controller,
    CrossCheck,
    ExplicitController,
    FunctionController,
    ImplicitController,
    MPCController,
    Trajectory,
    ValidationReport,
    as_controller,
    cross_check,
    simulate,
    validate,
)
from .exceptions import (
    ComplexValueError,
    FileFormatError,
    HorizonError,
    IllConditionedWarning,
    InconsistentBoundsError,
    InfeasibleStateError,
    MissingDependencyError,
    Mpc2nnError,
    NonFiniteError,
    NotPositiveDefiniteError,
    NotPositiveSemidefiniteError,
    NotSymmetricError,
    ProblemDefinitionError,
    ProblemTooLargeError,
    RiccatiError,
    ShapeError,
    SolverError,
    UnstableSystemError,
    UnsupportedObjectError,
)
from .implicit import CERTIFICATE_TOL, ImplicitNetwork, ImplicitSolution, WellPosednessReport, compile
from .io import load, problem_hash, save
from .problem import MPCProblem, Polytope, StageConstraint, SteadyStateTarget, steady_state_target
from .qp import CondensedQP, KKTResiduals, SparseQP, condense
from .reference import DAQP_SETTINGS, OSQP_SETTINGS, OSQPSession, ReferenceSolution, solve_daqp, solve_osqp
from .regions import Partition, Region, critical_regions
from .sampling import sample_states

# Re-exported constants, each with the comment the API reference shows (autodoc reads the comments of the
# module it documents a name in; the definitions and their reasons are in the modules named).
#: Largest relative residual (fixed point and KKT) with which an exact solution counts as certified
#: (defined in :mod:`mpc2nn.implicit`; :attr:`ImplicitSolution.status` is ``"solved"`` only below it).
CERTIFICATE_TOL = CERTIFICATE_TOL
#: Settings :func:`solve_osqp` passes to OSQP: tolerances 1e-10, infeasibility tolerances 1e-10, polishing with
#: 10 refinement steps, up to 100 000 iterations, warm starts, quiet (defined in :mod:`mpc2nn.reference`).
OSQP_SETTINGS = OSQP_SETTINGS
#: Settings :func:`solve_daqp` passes to DAQP: primal tolerance 1e-10 instead of DAQP's 1e-6, everything else
#: at DAQP's defaults (defined in :mod:`mpc2nn.reference`).
DAQP_SETTINGS = DAQP_SETTINGS


def __getattr__(name: str):
    """``mpc2nn.unravel``, ``mpc2nn.exact_network``, ``mpc2nn.ExactNetwork``, ``mpc2nn.explicit``,
    ``mpc2nn.MPCLayer``, ``mpc2nn.ImplicitLayer`` and ``mpc2nn.differentiable`` load torch, so they are
    imported on first use.
    """
    import importlib

    if name in ("unravel", "exact_network", "ExactNetwork", "explicit"):
        module = importlib.import_module(".explicit", __name__)
        return module if name == "explicit" else getattr(module, name)
    if name in ("MPCLayer", "ImplicitLayer", "differentiable"):
        module = importlib.import_module(".differentiable", __name__)
        return module if name == "differentiable" else getattr(module, name)
    raise AttributeError(f"module 'mpc2nn' has no attribute {name!r}")


__all__ = [
    # problem definition and condensation
    "MPCProblem", "StageConstraint", "Polytope", "steady_state_target", "SteadyStateTarget", "condense",
    "CondensedQP", "KKTResiduals", "SparseQP",
    # implicit network
    "compile", "ImplicitNetwork", "ImplicitSolution", "WellPosednessReport", "CERTIFICATE_TOL",
    # reference solvers and validation
    "solve_osqp", "solve_daqp", "OSQPSession", "ReferenceSolution", "OSQP_SETTINGS", "DAQP_SETTINGS",
    "sample_states", "validate", "ValidationReport", "cross_check", "CrossCheck",
    # critical regions (the explicit law as a proven partition)
    "critical_regions", "Partition", "Region",
    # verification of a network against the MPC law (mpc2nn.verify is callable)
    "verify",
    # explicit networks and differentiable layers (torch, imported on first use)
    "unravel", "exact_network", "ExactNetwork", "MPCLayer", "ImplicitLayer",
    # closed loop
    "simulate", "Trajectory", "Controller", "ControlAction", "MPCController", "ImplicitController",
    "ExplicitController", "FunctionController", "as_controller",
    # persistence
    "save", "load", "problem_hash", "FileFormatError",
    # errors
    "Mpc2nnError", "ProblemDefinitionError", "ShapeError", "NonFiniteError", "ComplexValueError",
    "NotSymmetricError",
    "NotPositiveSemidefiniteError", "NotPositiveDefiniteError", "HorizonError", "InconsistentBoundsError",
    "RiccatiError", "UnstableSystemError", "InfeasibleStateError", "MissingDependencyError", "SolverError",
    "ProblemTooLargeError", "IllConditionedWarning", "UnsupportedObjectError",
    # submodules
    "systems", "converse", "sets", "explicit", "differentiable", "regions", "export", "oracle", "plotting",
]
