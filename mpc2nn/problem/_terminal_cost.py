"""The terminal weight ``P`` of an MPC problem: given, the open-loop Lyapunov cost, or the stabilising DARE solution."""

from __future__ import annotations

import numpy as np
import scipy.linalg

from .._checks import as_matrix, check_psd, numerical_rank
from ..exceptions import ProblemDefinitionError, RiccatiError, UnstableSystemError

__all__ = ["terminal_weight", "dare"]

#: Eigenvalues of A with ``|λ| >= 1 - UNIT_CIRCLE_TOL`` are tested for stabilisability (PBH test): computed
#: eigenvalues carry errors of order ``eps·‖A‖``, so a mode this close to the unit circle is not reliably
#: stable and must be controllable for the Riccati equation to have a stabilising solution.
UNIT_CIRCLE_TOL = 1e-12
#: The Riccati solution is accepted only if the closed loop ``A - BK`` has spectral radius
#: ``< 1 - STABILITY_MARGIN``: after the errors of the Riccati and eigenvalue solvers (the DARE is
#: ill-conditioned near a mode on the unit circle) a radius within 1e-9 of 1 cannot be told apart
#: from 1, so it is reported as a non-stabilising solution rather than a slow stable loop.
STABILITY_MARGIN = 1e-9


def terminal_weight(P, A, B, Q, R, S=None) -> tuple[np.ndarray, str]:
    """``(P, source)``; ``Q, R, S``: the stage cost ``xᵀQx + 2xᵀSu + uᵀRu`` (``S``: cross term of output weights)."""
    n_x = A.shape[0]
    if P is None or (isinstance(P, str) and P == "dare"):
        return dare(A, B, Q, R, S), "dare"
    if isinstance(P, str):
        if P == "lyapunov":
            rho = float(np.abs(np.linalg.eigvals(A)).max())
            if rho >= 1.0:
                raise UnstableSystemError(
                    f"P='lyapunov': the open-loop cost P = AᵀPA + Q exists only for a Schur-stable A, "
                    f"but the spectral radius of A is {rho:.6g} >= 1; use P='dare' (or None) instead")
            P = scipy.linalg.solve_discrete_lyapunov(A.T, Q)
            return check_psd("P", P), "lyapunov"
        raise ProblemDefinitionError(f"P: expected None, 'dare', 'lyapunov' or an array (n_x, n_x), got {P!r}")
    return check_psd("P", as_matrix("P", P, ("n_x", "n_x"), (n_x, n_x))), "given"


#: ``log2`` of the largest and smallest input weight ``R_ii`` handed to the Riccati solver as given
#: (2^±20 ≈ 1e±6; scipy is accurate to ~1e-12 there); inputs with weights beyond are rescaled first.
DARE_INPUT_RANGE = 20


def dare(A, B, Q, R, S=None) -> np.ndarray:
    """Stabilising DARE solution, or a RiccatiError saying why none exists.

    The PBH test ``rank [A - λI, B] < n`` decides the rank after equilibrating the rows and
    columns (:func:`~mpc2nn._checks.numerical_rank`), so states and inputs may be in any units;
    the Riccati equation is solved with the inputs rescaled by powers of 2 (exact) where ``diag(R)``
    is far from 1 (:data:`DARE_INPUT_RANGE`): ``P`` does not depend on input units, but scipy's
    solver's accuracy does (double integrator: 1.5e-5 relative error with ``B×1e9``, ``R×1e18``;
    no solution at all with ``B×1e12``, ``R×1e24``; 6e-16 rescaled). ``S`` is the cross weight of
    ``xᵀQx + 2xᵀSu + uᵀRu`` (rescaled with the inputs).
    """
    n = A.shape[0]
    eig = np.linalg.eigvals(A)
    for lam in eig[np.abs(eig) >= 1.0 - UNIT_CIRCLE_TOL]:
        pbh = np.hstack([A - lam * np.eye(n), B])
        if numerical_rank(pbh) < n:
            raise RiccatiError(
                "P: the Riccati equation has no stabilising solution because (A, B) is not stabilisable: "
                f"the mode with eigenvalue {complex(lam):.6g} (|λ| = {abs(lam):.6g} >= 1) cannot be "
                "influenced by the inputs; give P explicitly")
    log_r = np.log2(np.diag(R))
    d = np.where(np.abs(log_r) > DARE_INPUT_RANGE, 2.0 ** -np.round(log_r / 2), 1.0)
    try:
        P = scipy.linalg.solve_discrete_are(A, B * d[None, :], Q, d[:, None] * R * d[None, :],
                                            s=None if S is None else S * d[None, :])
    except (np.linalg.LinAlgError, ValueError) as exc:
        raise RiccatiError(
            "P: the Riccati equation has no stabilising solution although (A, B) is stabilisable; "
            "most likely (Q^½, A) has an unobservable mode on the unit circle. Give P explicitly "
            f"(solver said: {exc})") from None
    if not np.all(np.isfinite(P)):
        raise RiccatiError("P: the Riccati solver returned non-finite values; give P explicitly")
    K = np.linalg.solve(R + B.T @ P @ B, B.T @ P @ A + (0.0 if S is None else S.T))
    rho = float(np.abs(np.linalg.eigvals(A - B @ K)).max())
    if rho >= 1.0 - STABILITY_MARGIN:
        raise RiccatiError(
            "P: the Riccati equation has no stabilising solution although (A, B) is stabilisable: the "
            f"solution found leaves the closed loop A - BK with spectral radius {rho:.6g} >= 1, so (Q^½, A) "
            "has an unobservable mode on the unit circle. Make Q penalise that mode, or give P explicitly")
    return check_psd("P (from the Riccati equation)", 0.5 * (P + P.T))
