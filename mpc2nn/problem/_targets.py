"""Steady-state targets ``(x_ref, u_ref)`` of an output reference."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._checks import as_matrix, frozen, real_array
from ..exceptions import ProblemDefinitionError
from ._mpc import MPCProblem

__all__ = ["SteadyStateTarget", "steady_state_target"]

#: Largest residual of ``[[A - I, B], [C, 0]] [x; u] = [0; y_ref]``, relative to ``max(1, max|y_ref|)``,
#: with which the least-squares solution counts as an exact steady state: well above the roundoff of
#: a least-squares solve of a well-conditioned system (~1e-15), well below any reference that is
#: genuinely out of reach.
TARGET_RESIDUAL_TOL = 1e-9
#: Relative tolerance (times ``max(1, max|(x, u)|)``) of the check that the target satisfies the state
#: and input bounds, so that a target exactly on a bound is admissible despite the solve's roundoff.
ADMISSIBILITY_TOL = 1e-9


@dataclass(frozen=True)
class SteadyStateTarget:
    """A steady state of the model for an output reference: ``x = A x + B u``, ``C x + D u = y_ref``.

    Attributes
    ----------
    x : ndarray, shape (n_x,)
        State reference ``x_ref``.
    u : ndarray, shape (n_u,)
        Input reference ``u_ref``.
    unique : bool
        The pair is the only solution (else the least-norm one of many).
    admissible : bool
        ``x`` and ``u`` satisfy the problem's state, input and output bounds (to
        :data:`ADMISSIBILITY_TOL` relative, so a target exactly on a bound counts).
    """

    x: np.ndarray
    u: np.ndarray
    unique: bool
    admissible: bool


def steady_state_target(problem: MPCProblem, y_ref, C=None, D=None) -> SteadyStateTarget:
    """The steady state ``(x_ref, u_ref)`` with output ``C x_ref + D u_ref = y_ref``.

    Solves ``[[A - I, B], [C, D]] [x; u] = [0; y_ref]`` (least-norm where the
    solution is not unique) and raises if no exact solution exists.

    Parameters
    ----------
    problem : MPCProblem
        Its model ``(A, B)`` defines the steady states; its bounds decide ``admissible``; its
        outputs are used unless ``C`` is given.
    y_ref : array_like, shape (n_y,)
        Output reference (a number for one output).
    C : array_like, shape (n_y, n_x), optional
        Output matrix, default the problem's ``C``.
    D : array_like, shape (n_y, n_u), optional
        Feedthrough, default the problem's ``D`` when ``C`` is the problem's, else zero.

    Returns
    -------
    SteadyStateTarget

    Raises
    ------
    ProblemDefinitionError
        No steady state has output ``y_ref`` (residual above :data:`TARGET_RESIDUAL_TOL`).

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
    if C is None:
        if problem.C is None:
            raise ProblemDefinitionError("C: the problem has no outputs (C); pass the output matrix C (n_y, n_x)")
        C, D = problem.C, problem.D if D is None else D
    Cm = np.atleast_2d(as_matrix("C", C, ("n_y", "n_x"), (None, n_x)))
    Dm = np.zeros((Cm.shape[0], n_u)) if D is None else np.atleast_2d(
        as_matrix("D", D, ("n_y", "n_u"), (Cm.shape[0], n_u)))
    y = as_matrix("y_ref", np.atleast_1d(real_array("y_ref", y_ref, "numbers")), ("n_y",), (Cm.shape[0],))
    K = np.block([[problem.A - np.eye(n_x), problem.B], [Cm, Dm]])
    rhs = np.concatenate([np.zeros(n_x), y])
    sol, _, rank, _ = np.linalg.lstsq(K, rhs, rcond=None)
    resid = float(np.abs(K @ sol - rhs).max())
    if resid > TARGET_RESIDUAL_TOL * max(1.0, float(np.abs(rhs).max())):
        raise ProblemDefinitionError(
            f"y_ref: no steady state of (A, B) has output C x + D u = {y.tolist()} (the closest misses by "
            f"{resid:.3g}); "
            "the reference is not reachable with constant inputs, e.g. more outputs than inputs")
    x, u = sol[:n_x], sol[n_x:]
    tol = ADMISSIBILITY_TOL * max(1.0, float(np.abs(sol).max()))
    admissible = bool(np.all(x >= problem.x_min - tol) and np.all(x <= problem.x_max + tol)
                      and np.all(u >= problem.u_min - tol) and np.all(u <= problem.u_max + tol))
    if problem.C is not None:
        y_x = problem.C @ x + problem.D @ u
        admissible = admissible and bool(np.all(y_x >= problem.y_min - tol) and np.all(y_x <= problem.y_max + tol))
    return SteadyStateTarget(frozen(x), frozen(u), bool(rank == n_x + n_u), admissible)
