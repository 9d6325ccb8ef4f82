"""Invariant sets for terminal constraints: the maximal positively invariant set of the LQR loop.

For a stable closed loop ``x⁺ = A_K x`` (``A_K = A - B K``) and constraints
``C x <= d`` on the state (the state bounds, the input bounds through
``u = -K x``, the output bounds through ``y = (C - D K) x`` and the stage
constraints through ``C_x x + C_u u = (C_x - C_u K) x``), the maximal
positively invariant set is

    O_∞ = {x : C A_Kᵗ x <= d for all t >= 0}.

It is computed by the standard finite-determination algorithm (Gilbert and Tan,
IEEE TAC 1991): add the rows of ``C A_Kᵗ`` for t = 1, 2, ... until every new row
is redundant — its maximum over the set built so far, an LP (scipy HiGHS), does
not exceed its bound — and finally drop redundant rows by one LP each.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg

from ..exceptions import ProblemDefinitionError, UnstableSystemError
from ._outputs import stage_weights
from ._polytope import lp_max, redundant_rows

__all__ = ["InvariantSet", "lqr_invariant_set", "lqr_gain", "INVARIANCE_TOL", "MAX_INVARIANCE_STEPS"]

#: Relative tolerance of the invariant-set construction: a new row ``c x <= d`` is implied when its LP
#: maximum is at most ``d + INVARIANCE_TOL·max(1, |d|)``, and :meth:`InvariantSet.contains` accepts points
#: that violate a row by as much. The same value as REDUNDANCY_TOL: an order above the accuracy of HiGHS's
#: LP solutions (about 1e-10), so that roundoff does not add rows that are implied.
INVARIANCE_TOL = 1e-9
#: Steps ``t`` of the finite-determination algorithm before it gives up: a stable closed loop under
#: bounded constraints is determined after finitely many steps (Gilbert and Tan), and 200 steps of a loop
#: with spectral radius ρ shrink ``A_Kᵗ`` by ``ρ²⁰⁰`` (1e-9 already for ρ = 0.9); the cap ends the
#: search where a direction is unbounded and the set is not finitely determined.
MAX_INVARIANCE_STEPS = 200


@dataclass(frozen=True)
class InvariantSet:
    """The polytope ``{x : C x <= d}`` invariant under ``x⁺ = (A - B K) x``.

    Attributes
    ----------
    C : ndarray, shape (p, n_x)
        Row normals of the set.
    d : ndarray, shape (p,)
        Right-hand sides.
    K : ndarray, shape (n_u, n_x)
        The LQR gain of the closed loop (``u = -K x``).
    determinedness_index : int
        The ``t*`` at which the construction stopped (rows of ``C A_Kᵗ`` for ``t <= t*``).
    """

    C: np.ndarray
    d: np.ndarray
    K: np.ndarray
    determinedness_index: int

    def contains(self, X, tol: float = INVARIANCE_TOL) -> np.ndarray:
        """``(B,)`` mask of the states in the set.

        Parameters
        ----------
        X : array_like, shape (B, n_x) or (n_x,)
            States; a single state is a batch of one.
        tol : float
            Relative tolerance: row ``i`` holds when ``C_i x <= d_i + tol·max(1, |d_i|)``
            (default :data:`INVARIANCE_TOL`).

        Returns
        -------
        ndarray of bool, shape (B,)
        """
        X = np.atleast_2d(np.asarray(X, float))
        return np.all(X @ self.C.T <= self.d + tol * np.maximum(1.0, np.abs(self.d)), axis=1)


def lqr_gain(A, B, Q, R, S=None) -> np.ndarray:
    """The infinite-horizon LQR gain ``K = (R + BᵀPB)⁻¹ (BᵀPA + Sᵀ)`` (``u = -K x``), P from the DARE.

    Parameters
    ----------
    A : ndarray, shape (n_x, n_x)
        State matrix.
    B : ndarray, shape (n_x, n_u)
        Input matrix.
    Q : ndarray, shape (n_x, n_x)
        State weight, symmetric positive semidefinite.
    R : ndarray, shape (n_u, n_u)
        Input weight, symmetric positive definite.
    S : ndarray, shape (n_x, n_u), optional
        Cross weight of the stage cost ``xᵀQx + 2xᵀSu + uᵀRu`` (output weights with a feedthrough
        ``D`` give one, see :func:`mpc2nn.problem.stage_weights`); default none.

    Returns
    -------
    K : ndarray, shape (n_u, n_x)

    Examples
    --------
    >>> import numpy as np
    >>> from mpc2nn.problem import lqr_gain
    >>> K = lqr_gain(np.array([[1.0]]), np.array([[1.0]]), np.array([[1.0]]), np.array([[1.0]]))
    >>> round(float(K[0, 0]), 6)     # P = (1 + √5)/2, K = P / (1 + P)
    0.618034
    """
    P = scipy.linalg.solve_discrete_are(A, B, Q, R, s=S)
    return np.linalg.solve(R + B.T @ P @ B, B.T @ P @ A + (0.0 if S is None else S.T))


def _state_constraints(problem, K: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows ``C x <= d`` of the problem's constraints under ``u = -K x``."""
    n = problem.n_x
    rows, rhs = [], []
    eye = np.eye(n)
    for i in range(n):
        if np.isfinite(problem.x_max[i]):
            rows.append(eye[i])
            rhs.append(problem.x_max[i])
        if np.isfinite(problem.x_min[i]):
            rows.append(-eye[i])
            rhs.append(-problem.x_min[i])
    for j in range(problem.n_u):
        if np.isfinite(problem.u_max[j]):
            rows.append(-K[j])
            rhs.append(problem.u_max[j])
        if np.isfinite(problem.u_min[j]):
            rows.append(K[j])
            rhs.append(-problem.u_min[j])
    for con in problem.constraints:
        rows.extend(con.C_x - con.C_u @ K)
        rhs.extend(con.d)
    if getattr(problem, "C", None) is not None:  # outputs y = (C - D K) x under u = -K x
        C_K = problem.C - problem.D @ K
        for i in range(problem.n_y):
            if np.isfinite(problem.y_max[i]):
                rows.append(C_K[i])
                rhs.append(problem.y_max[i])
            if np.isfinite(problem.y_min[i]):
                rows.append(-C_K[i])
                rhs.append(-problem.y_min[i])
    if not rows:
        raise ProblemDefinitionError("terminal_set='lqr': the problem has no constraints, so the invariant set "
                                     "is the whole state space; leave terminal_set out")
    return np.array(rows, float), np.array(rhs, float)


def lqr_invariant_set(problem, *, max_steps: int = MAX_INVARIANCE_STEPS,
                      tol: float = INVARIANCE_TOL) -> InvariantSet:
    """Maximal positively invariant set of the LQR closed loop of ``problem`` under its constraints.

    Parameters
    ----------
    problem : MPCProblem
        Its ``A``, ``B``, ``Q``, ``R`` (for the LQR gain) and its constraints are used.
    max_steps : int
        Give up (with an error) if the set is not determined after this many steps
        (default :data:`MAX_INVARIANCE_STEPS`).
    tol : float
        Relative tolerance of the redundancy tests (default :data:`INVARIANCE_TOL`).

    Returns
    -------
    InvariantSet

    Raises
    ------
    ProblemDefinitionError
        No constraints, constraints with the origin outside their interior, or no
        finite determination within ``max_steps`` (e.g. unbounded directions).
    """
    A, B = problem.A, problem.B
    K = lqr_gain(A, B, *stage_weights(problem))
    AK = A - B @ K
    rho = float(np.abs(np.linalg.eigvals(AK)).max())
    if rho >= 1:
        raise UnstableSystemError(f"terminal_set='lqr': the LQR closed loop is not stable (spectral radius "
                                  f"{rho:.6g}); check (A, B, Q, R)")
    C0, d0 = _state_constraints(problem, K)
    if np.any(d0 <= 0):
        i = int(np.argmin(d0))
        raise ProblemDefinitionError(f"terminal_set='lqr': the origin must lie inside the constraints, but "
                                     f"constraint row {i} has bound {d0[i]:g} <= 0")
    C, d = C0.copy(), d0.copy()
    power = np.eye(problem.n_x)
    for t in range(1, max_steps + 1):
        power = power @ AK
        new_C, new_d = C0 @ power, d0
        keep = [i for i in range(new_C.shape[0])
                if lp_max(new_C[i], C, d) > new_d[i] + tol * max(1.0, abs(new_d[i]))]
        if not keep:
            implied = redundant_rows(C, d, tol=tol)
            C, d = C[~implied], d[~implied]
            return InvariantSet(C, d, K, t - 1)
        C, d = np.vstack([C, new_C[keep]]), np.concatenate([d, new_d[keep]])
    raise ProblemDefinitionError(
        f"terminal_set='lqr': the invariant set was not determined within {max_steps} steps; bound every "
        "state (x_min/x_max) or give a terminal polytope yourself")
