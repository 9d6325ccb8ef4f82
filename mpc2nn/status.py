"""The one status vocabulary of mpc2nn.

Every result type reports its per-sample outcome with these values (a
:class:`Status` per sample, stored as its string value in a numpy array, so
``sol.status == Status.SOLVED`` works elementwise), and every backend's own
codes (OSQP, DAQP, HiGHS, cvxpy) are translated into them by a table at the
module that talks to that backend. Groups such as :data:`SOLUTION_PRESENT`
say what a status allows a caller to do.

Examples
--------
>>> import numpy as np
>>> from mpc2nn.status import Status, SOLUTION_PRESENT
>>> status = np.array([Status.SOLVED, Status.INFEASIBLE])
>>> (status == Status.SOLVED).tolist(), [s in SOLUTION_PRESENT for s in status]
([True, False], [True, False])
"""

from __future__ import annotations

import enum
import sys

import numpy as np

__all__ = ["Status", "BoundKind", "Conversion", "Proof", "Verdict", "DepthStatus", "SOLUTION_PRESENT", "USABLE_INPUT",
           "DECIDED", "is_in"]

if sys.version_info >= (3, 11):
    StrEnum = enum.StrEnum
else:  # pragma: no cover - Python 3.10
    class StrEnum(str, enum.Enum):
        """``enum.StrEnum`` of Python 3.11: members are strings, ``str(member)`` is the value."""

        def __str__(self) -> str:
            return str(self.value)


class Status(StrEnum):
    """Outcome of one sample: a solve, a controller step or an evaluation."""

    #: Optimal. For the exact solver: certified by its fixed-point and KKT residuals.
    SOLVED = "solved"
    #: A reference solver's solution that misses its requested accuracy (OSQP: inaccurate, or polishing failed).
    SOLVED_INACCURATE = "solved inaccurate"
    #: The exact solver found a solution whose residuals exceed :data:`mpc2nn.CERTIFICATE_TOL`.
    UNCERTIFIED = "uncertified"
    #: No input sequence satisfies the constraints (for the exact solver: a Farkas certificate was checked).
    INFEASIBLE = "infeasible"
    #: The solver stopped without a decision (numerical trouble, cycling, a solver error).
    FAILED = "failed"
    #: The solver's iteration limit was reached before a decision.
    ITERATION_LIMIT = "iteration limit"
    #: A time limit was reached before a decision.
    TIME_LIMIT = "time limit"
    #: The problem is unbounded below (cannot happen for a QP with a positive definite Hessian).
    UNBOUNDED = "unbounded"
    #: The sample was not usable (NaN or infinite entries, or values beyond floating-point range).
    INVALID = "invalid"
    #: The sample was not run (a closed loop stopped before it).
    NOT_RUN = "not run"
    #: A control law was evaluated; it makes no optimality claim (explicit networks, functions).
    EVALUATED = "evaluated"
    #: A controller returned NaN or infinite inputs.
    INVALID_OUTPUT = "invalid output"


#: Statuses that come with a solution (``U`` holds numbers).
SOLUTION_PRESENT = frozenset({Status.SOLVED, Status.SOLVED_INACCURATE, Status.UNCERTIFIED})
#: Statuses of a controller step whose input may be applied.
USABLE_INPUT = SOLUTION_PRESENT | {Status.EVALUATED}
#: Statuses that decide the sample: a solution or a proof of infeasibility.
DECIDED = frozenset({Status.SOLVED, Status.INFEASIBLE})


class BoundKind(StrEnum):
    """How an error bound was obtained."""

    #: From a certified contraction rate; depends only on the state.
    A_PRIORI = "a-priori"
    #: From the duality gap of the network's last dual iterate and a feasible point.
    A_POSTERIORI = "a-posteriori"
    #: No bound could be proved for this sample (the value is ``inf``).
    NONE = "none"


class Conversion(StrEnum):
    """Outcome of a converse map (network → QP → MPC)."""

    #: The recovered object reproduces the input exactly (within the stated tolerance).
    EXACT = "exact"
    #: No exact object exists; the nearest one was returned (see the obstruction).
    NEAREST = "nearest"
    #: The recovered object does not reproduce the input within the tolerance.
    APPROXIMATE = "approximate"
    #: Nothing could be compared (every check state invalid, or infeasible for both): not checked.
    UNCHECKED = "unchecked"


class Proof(StrEnum):
    """Status of a claim that needs a proof (a certificate, a complete partition, a verified bound)."""

    #: Proven: every step of the argument was checked (LPs, MILPs or KKT certificates solved to optimality).
    PROVEN = "proven"
    #: Refuted: a counterexample was found and checked.
    REFUTED = "refuted"
    #: Not decided within the budget (regions, time): what was proven is reported, the rest is open.
    INCOMPLETE = "incomplete"
    #: A solver failed on a step of the argument, so nothing is claimed.
    FAILED = "failed"


class Verdict(StrEnum):
    """Who is wrong where a controller and a reference solver disagree (:func:`mpc2nn.cross_check`)."""

    #: The certified exact solution and an independent cross-check agree with the controller, not the reference.
    REFERENCE_WRONG = "reference wrong"
    #: The controller differs from the certified exact solution.
    CONTROLLER_WRONG = "controller wrong"
    #: No certified exact solution, or the cross-checks contradict it: nobody is blamed.
    UNDECIDED = "undecided"
class DepthStatus(StrEnum):
    """Outcome of choosing an explicit network's depth for a tolerance (``unravel(tol=...)``)."""

    #: Met on the selection states and on an independent held-out sample (a sampled check, not a proof).
    MET = "met"
    #: Met on the selection states; no region was known to draw held-out states from.
    MET_ON_SELECTION = "met on selection states"
    #: Not met: ``max_depth`` layers were not enough, or held-out states still exceeded the tolerance.
    NOT_MET = "not met"
    #: Not met: the error stalled at the rounding level of the network's dtype above the tolerance.
    STALLED = "stalled"


def is_in(status, group) -> np.ndarray:
    """Elementwise membership of a status array in a group.

    Parameters
    ----------
    status : array_like of str, shape (B,)
        Status values (members or their strings).
    group : iterable of Status
        E.g. :data:`SOLUTION_PRESENT`.

    Returns
    -------
    ndarray of bool, shape (B,)

    Examples
    --------
    >>> from mpc2nn.status import DECIDED, is_in
    >>> is_in(["solved", "failed", "infeasible"], DECIDED).tolist()
    [True, False, True]
    """
    return np.isin(np.asarray(status, dtype=str), [str(s) for s in group])
