"""Validating a controller against a reference solver, sample by sample."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._checks import loaded_torch, real_array, torch_dtype
from ..exceptions import ProblemDefinitionError, ShapeError
from ..implicit import ImplicitNetwork, compile
from ..interfaces import ExplicitLaw
from ..qp import KKTResiduals, as_qp
from ..reference import ReferenceSolution, solve_daqp, solve_osqp

__all__ = ["ValidationReport", "validate", "controller_output"]


@dataclass(frozen=True)
class ValidationReport:
    """Per-sample comparison of a controller with a reference solver.

    Attributes
    ----------
    X : (B, n_θ) states (parameters ``θ`` for problems that take more than the state)
    U : (B, k) controller output (``k = N·n_u``, or ``n_u`` for a first-input controller)
    U_ref : (B, k) reference output (same columns)
    error : (B,) ``‖U - U_ref‖∞`` where both are feasible, NaN elsewhere
    violation : (B,) largest constraint violation of the controller's ``U``
        (``max(0, G U - w - E x)``; only for full sequences of QPs whose decision
        vector is the input sequence — not with soft constraints or move blocking — else NaN)
    kkt : KKTResiduals of ``(z(λ), λ)`` where the controller reports multipliers ``λ``, else ``None``
    feasible : (B,) controller's feasibility claim (all True for controllers without one)
    feasible_ref : (B,) reference feasibility
    reference : solver name; compared : ``"sequence"`` or ``"first input"``
    """

    X: np.ndarray
    U: np.ndarray
    U_ref: np.ndarray
    error: np.ndarray
    violation: np.ndarray
    kkt: KKTResiduals | None
    feasible: np.ndarray
    feasible_ref: np.ndarray
    reference: str
    compared: str

    @property
    def feasibility_agrees(self) -> np.ndarray:
        """``(B,)`` bool, controller and reference agree on feasibility."""
        return self.feasible == self.feasible_ref

    @property
    def max_error(self) -> float:
        """Largest ``‖U - U_ref‖∞`` over the samples both call feasible (0.0 if none)."""
        e = self.error[np.isfinite(self.error)]
        return float(e.max()) if e.size else 0.0

    def summary(self) -> str:
        """A short printable table."""
        both = self.feasible & self.feasible_ref
        e = self.error[both]
        rows = [
            ("states", f"{self.X.shape[0]}"),
            ("feasible (reference)", f"{int(self.feasible_ref.sum())}"),
            ("feasibility agreement", f"{int(self.feasibility_agrees.sum())}/{self.X.shape[0]}"),
            (f"max ‖U - U_{self.reference}‖∞ ({self.compared})", f"{e.max():.3e}" if e.size else "n/a"),
            (f"median ‖U - U_{self.reference}‖∞", f"{np.median(e):.3e}" if e.size else "n/a"),
        ]
        if np.isfinite(self.violation).any():
            rows.append(("max constraint violation", f"{np.nanmax(self.violation[both]):.3e}" if e.size else "n/a"))
        if self.kkt is not None and both.any():
            rows.append(("max relative KKT residual", f"{self.kkt.worst[both].max():.3e}"))
        width = max(len(r[0]) for r in rows)
        return "\n".join(f"{a:<{width}}  {b}" for a, b in rows)


def controller_output(controller, X: np.ndarray):
    """``(U, feasible, lam_or_None)`` of a controller on ``X`` (B, n_θ).

    An ImplicitNetwork reports feasibility and multipliers; an explicit law, a torch module
    (called on the batch in its parameters' dtype) or a callable ``X -> U`` are taken as feasible.
    """
    if isinstance(controller, ImplicitNetwork):
        sol = controller.solve(X)
        return sol.U, sol.feasible, np.maximum(np.nan_to_num(sol.y), 0.0)
    if isinstance(controller, ExplicitLaw):
        return controller.evaluate(X), np.ones(X.shape[0], bool), None
    torch = loaded_torch()
    if torch is not None and isinstance(controller, torch.nn.Module):
        dtype = torch_dtype(controller)
        with torch.no_grad():
            U = controller(torch.as_tensor(X, dtype=dtype)).double().numpy()
        return U, np.ones(X.shape[0], bool), None
    if callable(controller):
        U = real_array("controller output", controller(X), "an array (B, N·n_u) or (B, n_u)")
        return U, np.ones(X.shape[0], bool), None
    raise ProblemDefinitionError(
        f"controller: expected an ImplicitNetwork, an explicit network, a torch module or a callable "
        f"X (B, n_θ) -> U, got {type(controller).__name__}")


def validate(controller, problem, X, *, reference: str = "osqp") -> ValidationReport:
    """Run ``controller`` on states ``X`` and compare with a reference solver, sample by sample.

    Parameters
    ----------
    controller : ImplicitNetwork, torch module or callable
        Maps states (B, n_θ) to input sequences (B, N·n_u) or first inputs (B, n_u).
    problem : MPCProblem, CondensedQP or ImplicitNetwork
        The MPC problem the controller should solve.
    X : (B, n_θ) states, or parameters ``θ`` (:meth:`CondensedQP.parameters`)
        for problems that take more than the state
    reference : {"osqp", "daqp", "exact"}
        OSQP at the tolerances of :data:`mpc2nn.OSQP_SETTINGS`, DAQP, or the
        exact implicit solve.

    Examples
    --------
    >>> import mpc2nn
    >>> prob = mpc2nn.systems.drummond2024()
    >>> X = mpc2nn.sample_states(prob, 20)
    >>> report = mpc2nn.validate(mpc2nn.compile(prob), prob, X)
    >>> report.max_error < 1e-8
    True
    """
    qp = as_qp(problem)
    X = qp.check_parameters(X)
    U, feas, lam = controller_output(controller, X)
    if U.ndim != 2 or U.shape[0] != X.shape[0] or U.shape[1] not in (qp.n_U, qp.n_u):
        raise ShapeError(f"controller output: expected shape (B, N·n_u) = ({X.shape[0]}, {qp.n_U}) or "
                         f"(B, n_u) = ({X.shape[0]}, {qp.n_u}), got {U.shape}")
    if not isinstance(reference, str):
        raise ProblemDefinitionError(f"reference: expected 'osqp', 'daqp' or 'exact', got {reference!r}")
    if reference == "osqp":
        ref: ReferenceSolution = solve_osqp(qp, X)
        U_ref, feas_ref = ref.U, ref.feasible
    elif reference == "daqp":
        ref = solve_daqp(qp, X)
        U_ref, feas_ref = ref.U, ref.feasible
    elif reference == "exact":
        sol = compile(qp).solve(X)
        U_ref, feas_ref = sol.U, sol.feasible
    else:
        raise ProblemDefinitionError(f"reference: expected 'osqp', 'daqp' or 'exact', got {reference!r}")
    full = U.shape[1] == qp.n_U
    if not full:
        U_ref = U_ref[:, :qp.n_u]
    both = feas & feas_ref
    error = np.full(X.shape[0], np.nan)
    error[both] = np.abs(U[both] - U_ref[both]).max(axis=1)
    violation = np.full(X.shape[0], np.nan)
    kkt = None
    if full and qp.output_map is None:
        violation[both] = np.maximum(0.0, (-qp.margin(U[both], X[both])).max(axis=1, initial=0.0))
    if full and lam is not None:
        kkt = qp.kkt_residuals(np.nan_to_num(qp.primal(lam, X)), lam, X)
    return ValidationReport(X, U, U_ref, error, violation, kkt, feas, feas_ref, reference,
                            "sequence" if full else "first input")
