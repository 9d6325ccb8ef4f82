"""Sampling states and validating controllers against a reference solver.

:func:`sample_states` draws states from a box (optionally only feasible, or only
infeasible ones); :func:`validate` runs a controller on states and compares it
with OSQP (or DAQP, or the exact implicit solve) sample by sample.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np

from ._checks import as_matrix
from .exceptions import ProblemDefinitionError, ShapeError
from .implicit import ImplicitNetwork, compile
from .oracle import ReferenceSolution, solve_daqp, solve_osqp
from .qp import KKTResiduals, as_qp

__all__ = ["sample_states", "validate", "ValidationReport"]


def sample_states(problem, n: int, *, box=None, seed: int = 0, feasible: bool | None = True,
                  max_draws: int | None = None, u_prev=None, x_ref=None, u_ref=None) -> np.ndarray:
    """Draw ``n`` states uniformly from a box.

    Parameters
    ----------
    problem : MPCProblem, CondensedQP or ImplicitNetwork
    n : int
        Number of states wanted.
    box : (lo, hi), optional
        Arrays of shape (n_x,); default the problem's ``sample_box``.
    seed : int
        Seed of numpy's default generator (same seed, same states).
    feasible : True, False or None
        ``True``: keep only states where the MPC problem is feasible; ``False``:
        only infeasible ones; ``None``: no filter. Feasibility is decided by the
        exact implicit solve (certified).
    max_draws : int, optional
        Give up after this many candidate states (default ``max(10_000, 200·n)``).
    u_prev, x_ref, u_ref : arrays, optional
        For problems whose QP takes more than the state (input rates, tracking):
        the other parts of ``θ`` at which feasibility is decided (one value for
        all samples; see :meth:`CondensedQP.parameters`). Not used with ``feasible=None``.

    Returns
    -------
    X : (n, n_x)

    Examples
    --------
    >>> import mpc2nn
    >>> X = mpc2nn.sample_states(mpc2nn.systems.double_integrator(), 5, seed=1)
    >>> X.shape
    (5, 2)
    """
    qp = as_qp(problem)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ProblemDefinitionError(f"n: expected a number of states >= 0, got {n!r}")
    if box is None:
        box = qp.sample_box
        if box is None:
            raise ProblemDefinitionError(f"box: problem '{qp.name}' has no sample_box; pass box=(lo, hi)")
    if len(box) != 2:
        raise ShapeError(f"box: expected a pair (lo, hi), got {len(box)} items")
    lo = as_matrix("box lo", box[0], ("n_x",), (qp.n_x,))
    hi = as_matrix("box hi", box[1], ("n_x",), (qp.n_x,))
    if np.any(lo > hi):
        i = int(np.argmax(lo > hi))
        raise ProblemDefinitionError(f"box: lo[{i}] = {lo[i]:g} > hi[{i}] = {hi[i]:g}")
    if feasible not in (True, False, None):
        raise ProblemDefinitionError(f"feasible: expected True, False or None, got {feasible!r}")
    rng = np.random.default_rng(seed)
    if feasible is None:
        return lo + (hi - lo) * rng.random((n, qp.n_x))
    net = compile(qp)
    max_draws = max(10_000, 200 * n) if max_draws is None else max_draws
    kept, drawn = [], 0
    while sum(len(k) for k in kept) < n and drawn < max_draws:
        batch = min(max(2 * n, 256), max_draws - drawn)
        X = lo + (hi - lo) * rng.random((batch, qp.n_x))
        drawn += batch
        keep = net.solve(qp.parameters(X, u_prev=u_prev, x_ref=x_ref, u_ref=u_ref)).feasible == feasible
        kept.append(X[keep])
    X = np.concatenate(kept)[:n] if kept else np.zeros((0, qp.n_x))
    if X.shape[0] < n:
        which = "feasible" if feasible else "infeasible"
        raise ProblemDefinitionError(
            f"sample_states: found only {X.shape[0]} {which} states in {drawn} draws from the box; "
            f"choose a box where {which} states are more common, or raise max_draws")
    return X


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


def _controller_output(controller, X: np.ndarray):
    """``(U, feasible, lam_or_None)`` of a controller on ``X`` (B, n_θ)."""
    if isinstance(controller, ImplicitNetwork):
        sol = controller.solve(X)
        return sol.U, sol.feasible, np.maximum(np.nan_to_num(sol.y), 0.0)
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(controller, torch.nn.Module):
        p = next(iter(controller.buffers()), None)
        dtype = p.dtype if p is not None else torch.float64
        with torch.no_grad():
            U = controller(torch.as_tensor(X, dtype=dtype)).double().numpy()
        return U, np.ones(X.shape[0], bool), None
    if callable(controller):
        U = np.asarray(controller(X), dtype=float)
        return U, np.ones(X.shape[0], bool), None
    raise ProblemDefinitionError(
        f"controller: expected an ImplicitNetwork, a torch module or a callable X (B, n_θ) -> U, "
        f"got {type(controller).__name__}")


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
    U, feas, lam = _controller_output(controller, X)
    if U.ndim != 2 or U.shape[0] != X.shape[0] or U.shape[1] not in (qp.n_U, qp.n_u):
        raise ShapeError(f"controller output: expected shape (B, N·n_u) = ({X.shape[0]}, {qp.n_U}) or "
                         f"(B, n_u) = ({X.shape[0]}, {qp.n_u}), got {U.shape}")
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
        violation[both] = np.maximum(0.0, (-qp.slack(U[both], X[both])).max(axis=1, initial=0.0))
    if full and lam is not None:
        kkt = qp.kkt_residuals(np.nan_to_num(qp.primal(lam, X)), lam, X)
    return ValidationReport(X, U, U_ref, error, violation, kkt, feas, feas_ref, reference,
                            "sequence" if full else "first input")
