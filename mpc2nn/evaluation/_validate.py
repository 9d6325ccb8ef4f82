"""Validating a controller against a reference solver, sample by sample."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._checks import loaded_torch, real_array, torch_dtype
from ..exceptions import ProblemDefinitionError, ShapeError
from ..implicit import ImplicitNetwork
from ..interfaces import ExplicitLaw
from ..qp import KKTResiduals, as_qp
from ..reference import REFERENCE_SOLVERS

__all__ = ["ValidationReport", "validate", "controller_output"]


@dataclass(frozen=True)
class ValidationReport:
    """Per-sample comparison of a controller with a reference solver.

    Attributes
    ----------
    X : ndarray, shape (B, n_θ)
        States (parameters ``θ`` for problems that take more than the state).
    U : ndarray, shape (B, k)
        Controller output (``k = N·n_u``, or ``n_u`` for a first-input controller).
    U_ref : ndarray, shape (B, k)
        Reference output (the same columns).
    error : ndarray, shape (B,)
        ``‖U - U_ref‖∞`` where both are feasible, NaN elsewhere.
    violation : ndarray, shape (B,)
        Constraint violation of the controller's ``U``, each row judged at its own scale: the
        ∞-norm distance ``max_i max(0, (G U - w - E x)_i) / ‖G_i‖₁`` from ``U`` to the farthest
        violated half-space, in the units of ``error`` (so ``error ≤ tol`` of a feasible reference
        implies ``violation ≤ tol``); only for full sequences of QPs whose decision vector is the
        input sequence (not with soft constraints or move blocking), else NaN.
    kkt : KKTResiduals or None
        Residuals of ``(z(λ), λ)`` where the controller reports multipliers ``λ``.
    feasible : ndarray of bool, shape (B,)
        The controller's feasibility claim (all True for controllers without one).
    feasible_ref : ndarray of bool, shape (B,)
        The reference's feasibility.
    reference : str
        The reference solver, a name of :data:`mpc2nn.reference.REFERENCE_SOLVERS`.
    compared : str
        ``"sequence"`` or ``"first input"``.
    reference_status : ndarray of str, shape (B,), or None
        The reference solver's status per sample (``None`` if not recorded).
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
    reference_status: np.ndarray | None = None

    def __repr__(self) -> str:
        return (f"ValidationReport({self.X.shape[0]} states against {self.reference} ({self.compared}): "
                f"max error {self.max_error:.3e}, feasibility agrees on {int(self.feasibility_agrees.sum())}/"
                f"{self.X.shape[0]})")

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
            worst = f"{np.nanmax(self.violation[both]):.3e}" if e.size else "n/a"
            rows.append(("max constraint violation (distance)", worst))
        if self.kkt is not None and both.any():
            rows.append(("max relative KKT residual", f"{self.kkt.worst[both].max():.3e}"))
        width = max(len(r[0]) for r in rows)
        return "\n".join(f"{a:<{width}}  {b}" for a, b in rows)


def controller_output(controller, X: np.ndarray):
    """``(U, feasible, lam_or_None)`` of a controller on a batch.

    An ImplicitNetwork reports feasibility and multipliers; an explicit law, a torch module
    (called on the batch in its parameters' dtype) or a callable ``X -> U`` are taken as feasible.

    Parameters
    ----------
    controller : ImplicitNetwork, explicit network, torch module or callable
        The controller run on the whole batch at once.
    X : ndarray, shape (B, n_θ)
        Parameters (states for a plain problem).

    Returns
    -------
    U : ndarray, shape (B, k)
        Outputs, ``k = N·n_u`` or ``n_u`` as the controller gives them.
    feasible : ndarray of bool, shape (B,)
        The controller's feasibility claim.
    lam : ndarray, shape (B, m), or None
        Multipliers, where the controller has them (an ImplicitNetwork).
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
    controller : ImplicitNetwork, explicit network, torch module or callable
        Maps states (B, n_θ) to input sequences (B, N·n_u) or first inputs (B, n_u).
    problem : MPCProblem, CondensedQP or ImplicitNetwork
        The MPC problem the controller should solve.
    X : array_like, shape (B, n_θ) or (n_θ,)
        States, or parameters ``θ`` (:meth:`CondensedQP.parameters`) for problems that take
        more than the state.
    reference : str
        A name of :data:`mpc2nn.reference.REFERENCE_SOLVERS`: ``"osqp"`` (OSQP at the tolerances
        of :data:`mpc2nn.OSQP_SETTINGS`, the default), ``"daqp"``, ``"osqp-tight"`` or
        ``"exact"`` (the certified exact implicit solve: a reference for explicit networks and
        other controllers, not for the exact network itself). Where controller and reference
        disagree, :func:`mpc2nn.cross_check` says which one is wrong.

    Returns
    -------
    ValidationReport

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
    if not isinstance(reference, str) or reference not in REFERENCE_SOLVERS:
        raise ProblemDefinitionError(f"reference: expected one of {', '.join(map(repr, REFERENCE_SOLVERS))}, "
                                     f"got {reference!r}")
    ref = REFERENCE_SOLVERS[reference].solve(qp, X)
    U_ref, feas_ref = ref.U, ref.feasible
    full = U.shape[1] == qp.n_U
    if not full:
        U_ref = U_ref[:, :qp.n_u]
    both = feas & feas_ref
    error = np.full(X.shape[0], np.nan)
    error[both] = np.abs(U[both] - U_ref[both]).max(axis=1)
    violation = np.full(X.shape[0], np.nan)
    kkt = None
    if full and qp.output_map is None:
        row_norm = np.abs(qp.G).sum(axis=1)
        row_norm[row_norm == 0.0] = 1.0  # a zero row is violated only by a negative w + E x: judged absolutely
        violation[both] = np.maximum(0.0, (-qp.margin(U[both], X[both]) / row_norm).max(axis=1, initial=0.0))
    if full and lam is not None:
        kkt = qp.kkt_residuals(np.nan_to_num(qp.primal(lam, X)), lam, X)
    return ValidationReport(X, U, U_ref, error, violation, kkt, feas, feas_ref, reference,
                            "sequence" if full else "first input", ref.status.astype(str))
