"""LMI design of the paper's feedback ``K`` with a certified contraction rate (cvxpy)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from .._checks import require
from ..exceptions import ProblemDefinitionError
from ..implicit import ImplicitNetwork, compile
from ._paper import PaperNetwork, PaperOptions
from ._registry import Construction, ConstructionOptions, positive, register_construction
from ._results import ContractionCertificate

__all__ = ["design_feedback", "LMIOptions", "LMI_TOL", "LMI_MAX_ROWS"]

#: Default bisection tolerance on the rate ρ of :func:`design_feedback`: 14 SDP solves (2⁻¹⁴ < 1e-4),
#: and a rate known to 1e-4 changes the a-priori bound ``ρ^J`` by at most a factor ``(1 + 1e-4/ρ)^J``.
LMI_TOL = 1e-4
#: Default largest number of rows ``m`` for which the SDP (a ``3m × 3m`` LMI in ``(P, Z, Λ)``, about ``2m²``
#: unknowns, solved about 14 times by the bisection) is attempted: the design for m = 20 took about 3 minutes
#: on two shared cores (Clarabel), and interior-point cost grows at least with the cube of the LMI's size, so
#: by that growth m = 60 would take over an hour; larger problems are told why and may raise the cap.
LMI_MAX_ROWS = 60
#: :func:`_verified_rate` checks rates below ``1 - RATE_MARGIN`` only: a certified rate must be strictly
#: below 1, and within 1e-9 of 1 the eigenvalue test cannot tell ``ρ < 1`` from ``ρ = 1``.
RATE_MARGIN = 1e-9
#: Resolution of the bisection that re-verifies the solver's certificate by eigenvalues (``ρ`` is rounded
#: up to it): fine against the SDP bisection's :data:`LMI_TOL`, about 20 eigenvalue checks.
RATE_RESOLUTION = 1e-6


def design_feedback(net: ImplicitNetwork, *, tol: float = LMI_TOL, max_rows: int = LMI_MAX_ROWS
                    ) -> ContractionCertificate:
    """Design ``K`` of the paper's form by an LMI that certifies a contraction rate.

    With ``A = [K, (I - K) D]`` acting on ``(Δw, Δσ)``, ``Δσ = relu(w₁) - relu(w₂)``
    (slope-restricted: ``Δσ_i (Δw_i - Δσ_i) >= 0``), the S-procedure gives the LMI in
    ``P ≻ 0``, ``Z = P K`` and a diagonal ``Λ >= 0``

        [[ρ²P, -Λ, Zᵀ], [-Λ, 2Λ, ((P - Z)D)ᵀ], [Z, (P - Z)D, P]] ⪰ 0,

    feasible iff ``‖Δw⁺‖_P <= ρ ‖Δw‖_P``; ``ρ`` is minimised by bisection (cvxpy
    with Clarabel, or SCS). No ``ρ < 1`` exists when ``G`` is rank deficient
    (``W`` has eigenvalue 1); that is reported without solving.

    Parameters
    ----------
    net : ImplicitNetwork
        The network whose ``D = W`` the feedback acts on.
    tol : float
        Bisection tolerance on ρ (default :data:`LMI_TOL`).
    max_rows : int
        Largest ``m`` for which the SDP (size ``3m``) is attempted (default :data:`LMI_MAX_ROWS`).

    Returns
    -------
    ContractionCertificate
        With ``exists=False`` and the reason where no rate below 1 was found or tried.
    """
    qp = net.qp
    m = qp.m
    if m == 0:
        return ContractionCertificate(False, None, None, None,
                                      "the QP has no constraint rows: the network is U = Y_f θ, exact without any "
                                      "layer, so there is nothing to contract; bounds are a-posteriori")
    rank = int(np.linalg.matrix_rank(qp.G))
    if rank < m:
        return ContractionCertificate(False, None, None, None,
                                      f"G has {m} rows but rank {rank}: W = I - ΓM has eigenvalue 1 on the null "
                                      "space of Gᵀ, so no feedback K gives a contraction (docs: theory, "
                                      "well-posedness); bounds are a-posteriori")
    if m > max_rows:
        return ContractionCertificate(False, None, None, None,
                                      f"m = {m} rows exceeds max_rows = {max_rows}: the SDP of size 3m was not "
                                      "attempted; pass a larger max_rows to try")
    cp = require("cvxpy", "lmi")
    D = net.W
    P = cp.Variable((m, m), symmetric=True)
    Z = cp.Variable((m, m))
    lam = cp.Variable(m, nonneg=True)
    rho2 = cp.Parameter(nonneg=True)
    L = cp.diag(lam)
    PZD = (P - Z) @ D
    big = cp.bmat([[rho2 * P, -L, Z.T], [-L, 2 * L, PZD.T], [Z, PZD, P]])
    big = 0.5 * (big + big.T)
    prob = cp.Problem(cp.Minimize(0), [big >> 0, P >> np.eye(m)])
    solver = "CLARABEL" if "CLARABEL" in cp.installed_solvers() else "SCS"

    def feasible(r: float):
        rho2.value = r * r
        try:
            with warnings.catch_warnings():  # inaccurate solutions are re-checked by _verified_rate
                warnings.simplefilter("ignore", UserWarning)
                prob.solve(solver=solver)
        except cp.error.SolverError:
            return None
        if prob.status in ("optimal", "optimal_inaccurate") and P.value is not None:
            Pv = 0.5 * (P.value + P.value.T)
            K = np.linalg.solve(Pv, Z.value)
            r_chk = _verified_rate(D, K, Pv, np.maximum(lam.value, 0.0))
            if r_chk is not None:
                return K, Pv, r_chk
        return None

    lo, hi, best = 0.0, 1.0, None
    while hi - lo > tol:
        mid = 0.5 * (lo + hi)
        got = feasible(mid)
        if got is None:
            lo = mid
        else:
            best, hi = got, mid
    if best is None:
        return ContractionCertificate(False, None, None, None,
                                      "the LMI has no solution with rate < 1 (solver: " + solver + ")")
    K, Pv, rate = best
    return ContractionCertificate(True, float(rate), K, Pv, f"LMI solved with {solver}, rate verified")


def _verified_rate(D: np.ndarray, K: np.ndarray, P: np.ndarray, lam: np.ndarray) -> float | None:
    """Smallest ``ρ < 1`` (to :data:`RATE_RESOLUTION`) with ``[[ρ²P, -Λ], [-Λ, 2Λ]] - AᵀPA ⪰ 0``, else ``None``.

    Re-checks the solver's ``(P, K, Λ)`` in plain linear algebra, so the certified
    rate does not rest on the SDP solver's tolerances.
    """
    m = D.shape[0]
    A = np.hstack([K, (np.eye(m) - K) @ D])
    APA = A.T @ P @ A
    Lam = np.diag(lam)

    def ok(rho: float) -> bool:
        N = np.block([[rho * rho * P, -Lam], [-Lam, 2 * Lam]]) - APA
        return bool(np.linalg.eigvalsh(0.5 * (N + N.T))[0] >= 0.0)

    if not ok(1.0 - RATE_MARGIN):
        return None
    lo, hi = 0.0, 1.0 - RATE_MARGIN
    while hi - lo > RATE_RESOLUTION:
        mid = 0.5 * (lo + hi)
        lo, hi = (lo, mid) if ok(mid) else (mid, hi)
    return hi


@dataclass(frozen=True, kw_only=True)
class LMIOptions(ConstructionOptions):
    """Options of ``method="lmi"``; nothing is tuned.

    Parameters
    ----------
    tol : float
        Bisection tolerance on the rate (default :data:`LMI_TOL`).
    max_rows : int
        Largest ``m`` for which the SDP is attempted (default :data:`LMI_MAX_ROWS`).
    """

    tol: float = LMI_TOL
    max_rows: int = LMI_MAX_ROWS

    def __post_init__(self):
        object.__setattr__(self, "tol", positive("tol", self.tol, allow_none=False))
        if isinstance(self.max_rows, bool) or not isinstance(self.max_rows, (int, np.integer)) or self.max_rows < 1:
            raise ProblemDefinitionError(f"max_rows: expected an integer >= 1, got {self.max_rows!r}")


def _build_lmi(net, qp, kept_rows, depth, dtype, options: LMIOptions, *, pruned: bool = False) -> PaperNetwork:
    """The paper's form with the LMI-designed feedback (``K = 0`` with the reason where none exists)."""
    sub = net if not pruned else compile(qp, alpha=net.alpha[kept_rows])
    cert = design_feedback(sub, tol=options.tol, max_rows=options.max_rows)
    paper = PaperOptions(K=cert.K if cert.exists and cert.K is not None else 0.0, alpha=sub.alpha)
    model = PaperNetwork(net, qp, kept_rows, depth, dtype, paper, cert=cert, pruned=pruned)
    model.method = "lmi"
    return model


register_construction(Construction(
    name="lmi", options=LMIOptions, build=_build_lmi, ladders=lambda qp: {},
    summary="the paper's form with a feedback K designed by an LMI (a certified rate where G has full row rank)"))
