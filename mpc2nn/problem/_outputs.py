"""Outputs ``y_k = C x_k + D u_k`` of an MPC problem: their validation and the stage cost they add.

With an output weight ``Q_y`` the stage cost gains ``(y_k - y_ref)ᵀ Q_y (y_k - y_ref)``; in the
states and inputs that is

    xᵀ (Cᵀ Q_y C) x + 2 xᵀ (Cᵀ Q_y D) u + uᵀ (Dᵀ Q_y D) u   (+ terms linear in y_ref),

so the stage cost of the problem as a whole is ``xᵀ Q_e x + 2 xᵀ S_e u + uᵀ R_e u`` with the
weights of :func:`stage_weights` (used for the DARE terminal weight and the LQR terminal set).
"""

from __future__ import annotations

import numpy as np

from .._checks import as_matrix, check_psd
from ..exceptions import ProblemDefinitionError, ShapeError

__all__ = ["check_outputs", "stage_weights", "OUTPUT_FIELDS"]

#: The fields that only mean something with an output matrix ``C``.
OUTPUT_FIELDS = ("D", "output_weight", "y_min", "y_max", "soft_output_penalty", "output_names", "output_units")


def check_outputs(C, D, weight, n_x: int, n_u: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """``(C, D, Q_y)`` as float arrays: ``C`` (n_y, n_x), ``D`` (n_y, n_u) (zeros when ``None``), ``Q_y``
    (n_y, n_y) symmetric PSD or ``None``.
    """
    Cm = np.atleast_2d(as_matrix("C", C, ("n_y", "n_x"), (None, n_x)))
    n_y = Cm.shape[0]
    if n_y == 0:
        raise ShapeError(f"C: expected shape (n_y, n_x) with n_y >= 1, got {Cm.shape}; leave C out for no outputs")
    Dm = np.zeros((n_y, n_u)) if D is None else np.atleast_2d(as_matrix("D", D, ("n_y", "n_u"), (n_y, n_u)))
    W = None if weight is None else check_psd(
        "output_weight", as_matrix("output_weight", weight, ("n_y", "n_y"), (n_y, n_y)))
    return Cm, Dm, W


def refuse_without_outputs(given: dict) -> None:
    """An error naming the output fields given without ``C``."""
    named = [k for k in OUTPUT_FIELDS if given.get(k) is not None]
    if named:
        raise ProblemDefinitionError(
            f"{', '.join(named)}: given without an output matrix C; give C (n_y, n_x) to define the outputs "
            "y_k = C x_k + D u_k")


def stage_weights(problem) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(Q_e, R_e, S_e)``: the stage cost ``xᵀQ_e x + 2xᵀS_e u + uᵀR_e u`` of the state, input and output weights.

    Without an output weight this is ``(Q, R, 0)``.

    Parameters
    ----------
    problem : MPCProblem
        The problem; its ``Q`` (n_x, n_x), ``R`` (n_u, n_u) and, where it has outputs with an
        ``output_weight`` ``Q_y`` (n_y, n_y), ``C`` (n_y, n_x) and ``D`` (n_y, n_u).

    Returns
    -------
    Q_e : ndarray, shape (n_x, n_x)
        ``Q + Cᵀ Q_y C`` (the problem's ``Q`` itself without an output weight).
    R_e : ndarray, shape (n_u, n_u)
        ``R + Dᵀ Q_y D`` (the problem's ``R`` itself without an output weight).
    S_e : ndarray, shape (n_x, n_u)
        ``Cᵀ Q_y D``, the cross term (zeros without an output weight).

    Examples
    --------
    >>> import numpy as np, mpc2nn
    >>> from mpc2nn.problem import stage_weights
    >>> p = mpc2nn.systems.double_integrator().replace(C=[[1.0, 0.0]], output_weight=[[4.0]])
    >>> Q_e, R_e, S_e = stage_weights(p)
    >>> Q_e.tolist(), R_e.tolist(), S_e.tolist()
    ([[5.0, 0.0], [0.0, 1.0]], [[0.1]], [[0.0], [0.0]])
    """
    Q, R = problem.Q, problem.R
    S = np.zeros((problem.n_x, problem.n_u))
    W = getattr(problem, "output_weight", None)
    if W is None:
        return Q, R, S
    C, D = problem.C, problem.D
    return Q + C.T @ W @ C, R + D.T @ W @ D, C.T @ W @ D
