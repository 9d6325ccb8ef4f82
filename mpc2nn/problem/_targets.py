"""Steady-state targets ``(x_ref, u_ref)`` of an output reference."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._checks import as_matrix, frozen, real_array
from ..exceptions import ProblemDefinitionError
from ._mpc import MPCProblem

__all__ = ["SteadyStateTarget", "steady_state_target"]


@dataclass(frozen=True)
class SteadyStateTarget:
    """A steady state of the model for an output reference: ``x = A x + B u``, ``C x = y_ref``.

    Attributes
    ----------
    x : (n_x,) state reference; u : (n_u,) input reference
    unique : the pair is the only solution (else the least-norm one of many)
    admissible : ``x`` and ``u`` satisfy the problem's state and input bounds (to 1e-9
        relative, so a target exactly on a bound counts)
    """

    x: np.ndarray
    u: np.ndarray
    unique: bool
    admissible: bool


def steady_state_target(problem: MPCProblem, y_ref, C) -> SteadyStateTarget:
    """The steady state ``(x_ref, u_ref)`` with output ``C x_ref = y_ref``.

    Solves ``[[A - I, B], [C, 0]] [x; u] = [0; y_ref]`` (least-norm where the
    solution is not unique) and raises if no exact solution exists.

    Parameters
    ----------
    problem : MPCProblem (its A, B, bounds)
    y_ref : (n_y,) output reference
    C : (n_y, n_x) output matrix

    Examples
    --------
    >>> import mpc2nn
    >>> di = mpc2nn.systems.double_integrator()
    >>> t = mpc2nn.steady_state_target(di, [2.0], [[1.0, 0.0]])
    >>> t.x.round(12).tolist(), t.u.round(12).tolist(), t.unique
    ([2.0, 0.0], [0.0], True)
    """
    if not isinstance(problem, MPCProblem):
        raise ProblemDefinitionError(f"problem: expected an MPCProblem, got {type(problem).__name__}")
    n_x, n_u = problem.n_x, problem.n_u
    Cm = np.atleast_2d(as_matrix("C", C, ("n_y", "n_x"), (None, n_x)))
    y = as_matrix("y_ref", np.atleast_1d(real_array("y_ref", y_ref, "numbers")), ("n_y",), (Cm.shape[0],))
    K = np.block([[problem.A - np.eye(n_x), problem.B], [Cm, np.zeros((Cm.shape[0], n_u))]])
    rhs = np.concatenate([np.zeros(n_x), y])
    sol, _, rank, _ = np.linalg.lstsq(K, rhs, rcond=None)
    resid = float(np.abs(K @ sol - rhs).max())
    if resid > 1e-9 * max(1.0, float(np.abs(rhs).max())):
        raise ProblemDefinitionError(
            f"y_ref: no steady state of (A, B) has output C x = {y.tolist()} (the closest misses by {resid:.3g}); "
            "the reference is not reachable with constant inputs, e.g. more outputs than inputs")
    x, u = sol[:n_x], sol[n_x:]
    tol = 1e-9 * max(1.0, float(np.abs(sol).max()))
    admissible = bool(np.all(x >= problem.x_min - tol) and np.all(x <= problem.x_max + tol)
                      and np.all(u >= problem.u_min - tol) and np.all(u <= problem.u_max + tol))
    return SteadyStateTarget(frozen(x), frozen(u), bool(rank == n_x + n_u), admissible)
