"""The result of :func:`~mpc2nn.verify`: :class:`VerificationResult`, :class:`Bound`, :class:`RegionReport`."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._checks import frozen
from ..exceptions import ProblemDefinitionError
from ..status import Proof

__all__ = ["Bound", "RegionReport", "VerificationResult", "CERTIFICATE_TEXT", "KKT_CERTIFICATE_TEXT"]

#: What the word "certified" rests on, as stored in :attr:`VerificationResult.certificate`.
CERTIFICATE_TEXT = (
    "The upper bound is the largest of the bounds of the cells of a branch and bound, which cover every {cover}. "
    "Where the network is affine on a cell (every ReLU stable on the cell's polytope, or split by phase) the "
    "cell's bound is an LP bound verified by weak duality: HiGHS only supplies dual multipliers y, the bound "
    "c + yᵀb + ‖w - Aᵀy‖₁ is evaluated in numpy with an allowance for the rounding of its evaluation and of w "
    "and c, and no solver tolerance enters it. Elsewhere it is HiGHS's MILP dual bound (mip_rel_gap {rel:g}, "
    "mip_abs_gap {abs:g}) with primal, dual and integrality (MIP feasibility) tolerances {feas:g}: a point that "
    "violates a row by less counts as feasible, so such a bound is that of the network and the law up to that "
    "slack (about {feas:g} times the big-M values, at most 1e-6 of u for M <= 1e3). Neither is an "
    "exact-arithmetic proof: the rounding allowances follow the float64 error model (ulps times the "
    "magnitudes summed), ReLU interval bounds are widened by {slack:g} relative, and cells HiGHS finds "
    "empty are dropped on its word. The reference law is {law}. The lower bound is the error at the witness "
    "state, with the network evaluated in float64 and the MPC law by the exact solver's certified solution "
    "there.")

#: What the KKT encoding's bound rests on (``method="kkt"``).
KKT_CERTIFICATE_TEXT = (
    "The upper bound is the largest of HiGHS's MILP dual bounds (mip_rel_gap {rel:g}, mip_abs_gap {abs:g}) over "
    "cells that cover {cover}; each MILP encodes the network's ReLUs by big-M rows (bounds by interval, symbolic "
    "and back-substituted relaxations, widened by {slack:g} relative) and the MPC law by the KKT conditions of "
    "its QP (stationarity, primal feasibility, one binary per constraint row that may be active for "
    "complementarity). Its big-M values are proven per cell, not guessed: every multiplier obeys Slater's bound "
    "lambda_i <= N / sigma_i, where sigma_i > 0 is the slack of a strictly feasible affine policy over the cell "
    "and N bounds f(z_policy) - f(z_unconstrained) (both by LPs), and every slack obeys LP bounds over the "
    "primal feasible set; rows whose slack is proven positive carry no multiplier. All bounds are widened by "
    "{pad:g} relative. HiGHS works in floating point with primal, dual and integrality tolerances {feas:g}: a "
    "point that violates a row by less counts as feasible, so the bound is that of the network and the law up "
    "to that slack times the big-M values and the multipliers' bounds; it is not an exact-arithmetic proof. The "
    "lower bound is the error at the witness state, with the network evaluated in float64 and the MPC law by the "
    "exact solver's certified solution there.")


def _check_status(status: str) -> str:
    allowed = (str(Proof.PROVEN), str(Proof.INCOMPLETE), str(Proof.FAILED))
    if status not in allowed:
        raise ProblemDefinitionError(f"status: expected one of {allowed}, got {status!r}")
    return status


@dataclass(frozen=True, kw_only=True)
class Bound:
    """A verified quantity: a proven upper bound and a re-checked lower bound with its witness.

    Attributes
    ----------
    upper : float
        Proven upper bound (``inf`` where none was proven).
    lower : float
        Lower bound: the quantity at :attr:`witness`, re-checked (``-inf``, witness NaN, when no point was
        found; 0 for a violation, which is never negative).
    witness : ndarray, shape (n_θ,)
        The state (parameter vector) where :attr:`lower` is attained.
    status : str
        A :class:`~mpc2nn.status.Proof` value: ``"proven"`` (the bound is proven and the gap closed to the
        tolerance), ``"incomplete"`` (the bound is proven, the gap is not closed or not everything was
        covered), ``"failed"`` (a solver failed: no bound).
    """

    upper: float
    lower: float
    witness: np.ndarray
    status: str

    def __post_init__(self):
        object.__setattr__(self, "witness", frozen(np.asarray(self.witness, float)))
        object.__setattr__(self, "status", _check_status(self.status))
        object.__setattr__(self, "upper", float(self.upper))
        object.__setattr__(self, "lower", float(self.lower))

    @property
    def gap(self) -> float:
        """``upper - lower`` (``inf`` without a bound)."""
        return self.upper - self.lower if np.isfinite(self.upper) and np.isfinite(self.lower) else np.inf


@dataclass(frozen=True, kw_only=True)
class RegionReport:
    """What one polytope of the verification (a critical region, or a cell of the domain) proved.

    Attributes
    ----------
    index : int
        The region's index in the partition (or the cell's).
    error_upper : float
        Proven bound on the error over the polytope's part of the region (a region pruned because its
        bound fell below the best error found elsewhere reports that bound); ``-inf`` when the polytope
        holds no point of the region.
    error_lower : float
        The largest error found in it (``-inf`` when none was evaluated).
    violation_upper, violation_lower : float
        The same for the input-bound violation (``nan`` without input bounds).
    status : str
        A :class:`~mpc2nn.status.Proof` value for this polytope.
    cells, milps, lps : int
        Cells of its branch and bound, MILPs and LPs solved.
    max_binaries : int
        Largest number of undecided ReLUs on one of its cells.
    elapsed : float
        Seconds.
    message : str
        Limits hit or solver messages.
    """

    index: int
    error_upper: float
    error_lower: float
    violation_upper: float
    violation_lower: float
    status: str
    cells: int
    milps: int
    lps: int
    max_binaries: int
    elapsed: float
    message: str = ""


@dataclass(frozen=True, kw_only=True)
class VerificationResult:
    """The worst-case error of a network against the MPC law over a region, and its input-bound violation.

    Attributes
    ----------
    error : Bound
        ``max ‖u_net(θ) - u_mpc(θ)‖∞`` over the region's feasible part (of the first input, or of the whole
        sequence with ``output="U"``).
    violation : Bound
        ``max over θ of max_j max(u_net,j - u_max,j, u_min,j - u_net,j, 0)``, the amount by which the
        network leaves the input bounds over the same set (``nan`` bounds where the problem has none).
    status : str
        A :class:`~mpc2nn.status.Proof` value for both: the worse of the two.
    method : str
        ``"partition"`` (a branch and bound of MILPs per critical region, the law affine on it) or ``"kkt"``
        (one MILP per objective and cell, the law by the KKT conditions of its QP).
    output : str
        ``"u0"`` (first input) or ``"U"`` (sequence).
    regions : tuple of RegionReport
        Per critical region (``method="kkt"``: per cell of the region whose big-M bounds were proven).
    covered : bool
        The polytopes bounded are proven to cover the region's feasible part (a complete partition);
        ``False``: the bounds hold on the regions found only (and the status is at best incomplete).
    certificate : str
        What "certified" rests on: the solvers, gaps and tolerances.
    reason : str
        Why the status is what it is, and what to try.
    tol, rtol : float
        The gap tolerance: proven when ``upper - lower <= max(tol, rtol·upper)``.
    elapsed : float
        Seconds.
    n_cells, n_milps, n_lps : int
        Totals over the regions.
    workers : int
        Dask workers used (1: in this process).
    network : str
        What the network was read from, and its size.
    """

    error: Bound
    violation: Bound
    status: str
    method: str
    output: str
    regions: tuple
    covered: bool
    certificate: str
    reason: str
    tol: float
    rtol: float
    elapsed: float
    n_cells: int
    n_milps: int
    n_lps: int
    workers: int
    network: str

    def __post_init__(self):
        object.__setattr__(self, "status", _check_status(self.status))
        object.__setattr__(self, "regions", tuple(self.regions))

    @property
    def upper_bound(self) -> float:
        """Proven upper bound on the error (:attr:`error`'s ``upper``)."""
        return self.error.upper

    @property
    def lower_bound(self) -> float:
        """The error at :attr:`witness` (re-checked by the exact solver)."""
        return self.error.lower

    @property
    def witness(self) -> np.ndarray:
        """``(n_θ,)`` state where :attr:`lower_bound` is attained."""
        return self.error.witness

    @property
    def gap(self) -> float:
        """``upper_bound - lower_bound``."""
        return self.error.gap

    def summary(self) -> str:
        """The bounds, the status and the counts in a few lines."""
        def line(name: str, b: Bound) -> str:
            return (f"  {name:<18} upper {b.upper:.6e}  lower {b.lower:.6e}  gap {b.gap:.2e}  [{b.status}]  "
                    f"witness {np.array2string(b.witness, precision=6)}")

        return "\n".join([
            f"verification of {self.network} ({self.method}, output {self.output}): {self.status}",
            line("error", self.error), line("input violation", self.violation),
            f"  {len(self.regions)} regions, {self.n_cells} cells, {self.n_milps} MILPs, {self.n_lps} LPs, "
            f"{self.workers} worker(s), {self.elapsed:.2f} s" + ("" if self.covered else
                                                                    "; coverage NOT proven"),
            f"  {self.reason}"])
