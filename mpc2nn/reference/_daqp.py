"""DAQP, an exact dual active-set QP solver, on the condensed QP."""

from __future__ import annotations

import numpy as np

from .._checks import require
from ..problem import MPCProblem
from ..qp import CondensedQP, as_qp
from ..status import Status
from ._solution import ReferenceSolution, blank_results

__all__ = ["solve_daqp", "DAQP_SETTINGS", "DAQP_STATUS"]


#: DAQP's exit flags in the status vocabulary (2, "solved with soft constraints", cannot occur: none are
#: soft; -2 cycling, -5 nonconvex and -6 an overdetermined initial active set are failures).
DAQP_STATUS = {1: Status.SOLVED, 2: Status.SOLVED, -1: Status.INFEASIBLE, -2: Status.FAILED,
               -3: Status.UNBOUNDED, -4: Status.ITERATION_LIMIT, -5: Status.FAILED, -6: Status.FAILED}

#: Settings passed to DAQP by :func:`solve_daqp` (everything else at DAQP's defaults): the primal
#: tolerance 1e-10 instead of DAQP's 1e-6, which accepts constraints violated by up to 1e-6 (seen: 4.4e-7
#: on the oscillating masses); 1e-10 is the accuracy asked of OSQP (:data:`~mpc2nn.OSQP_SETTINGS`).
DAQP_SETTINGS = dict(primal_tol=1e-10)
#: Lower bound given to DAQP for the one-sided rows ``G U <= w + E x``: DAQP treats bounds at or beyond
#: its ``DAQP_INF = 1e30`` as absent.
DAQP_NO_BOUND = -1e30


def solve_daqp(problem: MPCProblem | CondensedQP, X) -> ReferenceSolution:
    """Solve the condensed QP at each state with DAQP (an exact dual active-set solver), one by one.

    Needs ``pip install 'mpc2nn[daqp]'``. Settings :data:`DAQP_SETTINGS`: DAQP's
    default primal tolerance (1e-6) lets it accept a constraint violated by up to
    1e-6 (seen: 4.4e-7 on the oscillating masses), so it is tightened to 1e-10.

    DAQP's tolerances are absolute, so the QP is handed over normalised: the cost
    divided by ``max diag(H)`` and each constraint row by its norm. Neither changes
    the solution, and the answer then does not depend on the units of the cost or
    of the rows (seen before: the double integrator with ``Q×1e12`` came back
    "solved" with an input bound violated by 0.33, and a feasible state "infeasible").

    Parameters
    ----------
    problem : MPCProblem or CondensedQP
        The problem (condensed first) or its QP.
    X : array_like, shape (B, n_θ) or (n_θ,)
        Parameters: states for a plain problem, else built by :meth:`CondensedQP.parameters`.
        Samples with NaN or infinite entries are not solved (status ``"invalid"``).

    Returns
    -------
    ReferenceSolution
    """
    daqp = require("daqp", "daqp")
    qp = as_qp(problem)
    X = qp.check_parameters(X)
    B = X.shape[0]
    U, feasible, status, times = blank_results(B, qp.n_U)
    cost = 1.0 / float(np.abs(np.diag(qp.H)).max())
    norms = np.linalg.norm(qp.G, axis=1)
    rows = 1.0 / np.where(norms > 0, norms, 1.0)
    H = np.array(qp.H * cost)  # writable copies: DAQP refuses read-only buffers
    G = np.array(qp.G * rows[:, None])
    lower = np.full(qp.m, DAQP_NO_BOUND)
    sense = np.zeros(qp.m, dtype=np.int32)
    for i in range(B):
        if not np.all(np.isfinite(X[i])):
            continue
        f = (qp.F @ X[i]) * cost
        upper = (qp.w + qp.E @ X[i]) * rows
        x, _, flag, info = daqp.solve(H, f, G, upper, lower, sense, **DAQP_SETTINGS)
        times[i] = info["solve_time"]
        status[i] = DAQP_STATUS.get(flag, Status.FAILED)
        if status[i] == Status.SOLVED:
            U[i], feasible[i] = qp.inputs(x)[0], True
    return ReferenceSolution(U, feasible, status.astype(str), times, "daqp", qp.n_u)
