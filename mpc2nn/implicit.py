"""The implicit ReLU network of a condensed MPC QP: :func:`compile`, :class:`ImplicitNetwork`.

With ``M = G H⁻¹ Gᵀ`` and a positive step vector ``α`` (``Γ = diag(α)``),

    y = W relu(y) + Y x + b,     W = I - Γ M,  Y = -Γ (G H⁻¹ F + E),  b = -Γ w,
    U = W_f relu(y) + Y_f x,     W_f = -H⁻¹ Gᵀ,  Y_f = -H⁻¹ F.

Every fixed point gives the QP's KKT point (``λ = relu(y)``, slack
``s = relu(-y)/α``) and conversely; ``U`` is unique because ``H ≻ 0``, ``y`` need
not be. A fixed point exists exactly where the QP is feasible.

For the general QP of :mod:`mpc2nn.qp` (decision vector ``z``, parameters
``θ`` in place of ``x``, ``U = T z``) the same holds with ``x → θ`` and the
output layer ``W_f = -T H⁻¹ Gᵀ``, ``Y_f = -T H⁻¹ F``: the network's input is
``θ`` and its output the input sequence.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.optimize

from ._checks import as_matrix
from .exact import ActiveSetSolver
from .exceptions import ProblemDefinitionError, ShapeError
from .problem import MPCProblem
from .qp import CondensedQP, KKTResiduals, condense

__all__ = ["ImplicitNetwork", "ImplicitSolution", "WellPosednessReport", "compile", "CERTIFICATE_TOL"]

#: Largest relative residual (fixed point and KKT) with which a solution counts as certified.
CERTIFICATE_TOL = 1e-9


def compile(problem: MPCProblem | CondensedQP, *, alpha=None) -> "ImplicitNetwork":
    """Build the exact implicit ReLU network of an MPC problem or condensed QP.

    Parameters
    ----------
    problem : MPCProblem or CondensedQP
    alpha : float or array (m,), optional
        Step(s) ``α > 0`` of the network, one per constraint row or one for all.
        The default ``1/λmax(M)`` makes one plain layer one step of projected
        gradient on the dual. The fixed points' ``U`` does not depend on ``α``.

    Returns
    -------
    ImplicitNetwork

    Examples
    --------
    >>> import mpc2nn
    >>> net = mpc2nn.compile(mpc2nn.systems.drummond2024())
    >>> sol = net.solve([[-200.0, -200.0]])
    >>> str(sol.status[0]), round(float(sol.U[0, 0]), 6)
    ('solved', 10.0)
    """
    if isinstance(problem, MPCProblem):
        qp = condense(problem)
    elif isinstance(problem, CondensedQP):
        qp = problem
    else:
        raise ProblemDefinitionError(
            f"compile: expected an MPCProblem or a CondensedQP, got {type(problem).__name__}")
    Hinv = qp.H_inv
    M = qp.G @ Hinv @ qp.G.T
    m = qp.m
    lam_max = float(np.linalg.eigvalsh(M)[-1]) if m else 1.0
    if alpha is None:
        alpha_vec = np.full(m, 1.0 / lam_max)
    else:
        a = np.asarray(alpha, dtype=float)
        if a.ndim == 0:
            alpha_vec = np.full(m, float(a))
        else:
            alpha_vec = as_matrix("alpha", a, ("m",), (m,))
        if not np.all(np.isfinite(alpha_vec)) or np.any(alpha_vec <= 0):
            raise ProblemDefinitionError(f"alpha: every step must be finite and > 0, got {alpha!r}")
    Gam = alpha_vec[:, None]
    W = np.eye(m) - Gam * M
    Y = -Gam * (qp.G @ Hinv @ qp.F + qp.E)
    b = -alpha_vec * qp.w
    T = np.eye(qp.n_z) if qp.output_map is None else qp.output_map
    return ImplicitNetwork(W=W, Y=Y, b=b, W_f=-T @ Hinv @ qp.G.T, Y_f=-T @ Hinv @ qp.F, alpha=alpha_vec, qp=qp)


@dataclass(frozen=True)
class ImplicitSolution:
    """Exact fixed points for a batch of ``B`` states.

    Attributes
    ----------
    U : (B, N·n_u) input sequences (NaN where no solution exists)
    slack : (B, n_slack) slacks of the softened constraints (``n_slack = 0`` without
        ``soft_state_penalty``; NaN where no solution exists)
    y : (B, m) fixed points (NaN where none exists)
    feasible : (B,) bool, the MPC problem is feasible at the state
    status : (B,) str, ``"solved"`` (certified), ``"infeasible"`` (certificate checked),
        ``"uncertified"`` (a solution whose residuals exceed the tolerance),
        ``"failed"`` (no decision reached) or ``"invalid"`` (non-finite state)
    reason : (B,) str, empty for solved samples, else why
    fixed_point_residual : (B,) ``‖y - W relu(y) - Y x - b‖∞``
    fixed_point_scale : (B,) ``max(1, ‖W relu(y)‖∞, ‖Y x + b‖∞)``; the certificate
        requires ``fixed_point_residual <= CERTIFICATE_TOL · fixed_point_scale``
    kkt : KKTResiduals of ``(z, relu(y))`` (certificate: ``kkt.worst <= CERTIFICATE_TOL``)
    iterations : (B,) active-set iterations
    method : (B,) str, ``"primal-dual active set"`` or ``"dual active set"`` (fallback)
    n_u : inputs per stage
    """

    U: np.ndarray
    y: np.ndarray
    feasible: np.ndarray
    status: np.ndarray
    reason: np.ndarray
    fixed_point_residual: np.ndarray
    fixed_point_scale: np.ndarray
    kkt: KKTResiduals
    iterations: np.ndarray
    method: np.ndarray
    n_u: int
    slack: np.ndarray

    @property
    def u0(self) -> np.ndarray:
        """``(B, n_u)`` first inputs, the control applied."""
        return self.U[:, :self.n_u]

    @property
    def certified(self) -> np.ndarray:
        """``(B,)`` bool, status is ``"solved"``."""
        return self.status == "solved"

    def summary(self) -> str:
        """One line per status with counts, and the worst certified residuals."""
        vals, counts = np.unique(self.status, return_counts=True)
        parts = [f"{c} {v}" for v, c in zip(vals, counts)]
        ok = self.certified
        if ok.any():
            fp = float((self.fixed_point_residual[ok] / self.fixed_point_scale[ok]).max())
            parts.append(f"max relative fixed-point residual {fp:.2e}, max relative KKT residual "
                         f"{float(self.kkt.worst[ok].max()):.2e}")
        return f"{self.status.size} states: " + ", ".join(parts)


@dataclass(frozen=True, eq=False)
class ImplicitNetwork:
    """Implicit ReLU network ``y = W relu(y) + Y x + b``, ``U = W_f relu(y) + Y_f x``.

    Attributes
    ----------
    W : (m, m); Y : (m, n_θ); b : (m,); W_f : (N·n_u, m); Y_f : (N·n_u, n_θ)
    alpha : (m,) steps; qp : the CondensedQP it was compiled from

    The input ``x`` is the QP's parameter vector ``θ`` (the state for a plain
    problem; see :meth:`CondensedQP.parameters`).
    """

    W: np.ndarray
    Y: np.ndarray
    b: np.ndarray
    W_f: np.ndarray
    Y_f: np.ndarray
    alpha: np.ndarray
    qp: CondensedQP
    _solver: list = field(default_factory=list, repr=False)

    def __post_init__(self):
        for k in ("W", "Y", "b", "W_f", "Y_f", "alpha"):
            a = np.ascontiguousarray(getattr(self, k), dtype=np.float64)
            a.setflags(write=False)
            object.__setattr__(self, k, a)

    @property
    def n_x(self) -> int:
        """Number of states."""
        return self.qp.n_x

    @property
    def n_theta(self) -> int:
        """Length of the network input ``θ``."""
        return self.Y.shape[1]

    @property
    def m(self) -> int:
        """Width of the implicit layer (number of constraint rows)."""
        return self.W.shape[0]

    @property
    def n_u(self) -> int:
        """Inputs per stage."""
        return self.qp.n_u

    def output(self, y, X) -> np.ndarray:
        """``(B, N·n_u)`` output layer ``W_f relu(y) + Y_f θ`` for ``y`` (B, m), ``X`` (B, n_θ)."""
        X = self.qp.check_parameters(X)
        return np.maximum(np.asarray(y, float), 0.0) @ self.W_f.T + X @ self.Y_f.T

    def fixed_point_residual(self, y, X) -> np.ndarray:
        """``(B,)`` ``‖y - W relu(y) - Y θ - b‖∞``."""
        X = self.qp.check_parameters(X)
        y = np.atleast_2d(np.asarray(y, float))
        return np.abs(y - np.maximum(y, 0.0) @ self.W.T - X @ self.Y.T - self.b).max(axis=1, initial=0.0)

    def _active_set_solver(self) -> ActiveSetSolver:
        if not self._solver:
            qp = self.qp
            # soft constraints: start from "every slack zero" (the rows s >= 0, the last n_slack rows)
            start = np.arange(qp.m - qp.n_slack, qp.m) if qp.n_slack else None
            self._solver.append(ActiveSetSolver(qp.H, qp.G, start_rows=start))
        return self._solver[0]

    def solve(self, X, *, y0=None) -> ImplicitSolution:
        """Exact fixed points for parameters ``X`` (B, n_θ) or (n_θ,) (states for a plain problem).

        A finite active-set method (see :mod:`mpc2nn.exact`), not a fixed-point
        loop; every solved sample is certified by its residuals. Infeasible
        states get ``feasible=False``, NaN outputs and the reason; they do not
        affect the other samples.

        Parameters
        ----------
        X : array (B, n_θ) or (n_θ,)
        y0 : array (B, m) or (m,), optional
            Warm start: the initial active set is ``{y0 > 0}``.
        """
        X = self.qp.check_parameters(X)
        Bn, m, qp = X.shape[0], self.m, self.qp
        valid = np.all(np.isfinite(X), axis=1)
        Xv = np.where(valid[:, None], X, 0.0)
        status = np.full(Bn, "solved", dtype=object)
        reason = np.full(Bn, "", dtype=object)
        status[~valid] = "invalid"
        reason[~valid] = "the state has NaN or infinite entries"

        state_viol = qp.state_only_violation(Xv)
        bad_state = valid & (state_viol > 0)
        status[bad_state] = "infeasible"
        for i in np.flatnonzero(bad_state):
            reason[i] = f"a constraint on the current state alone is violated by {state_viol[i]:.3g}"

        active0 = None
        if y0 is not None:
            y0 = np.asarray(y0, dtype=float)
            if y0.shape == (m,):
                y0 = np.broadcast_to(y0, (Bn, m))
            if y0.shape != (Bn, m):
                raise ShapeError(f"y0: expected shape (B, m) = ({Bn}, {m}) or (m,) = ({m},), got {y0.shape}")
            active0 = np.nan_to_num(y0, nan=0.0) > 0

        run = np.flatnonzero(status == "solved")
        lam = np.full((Bn, m), np.nan)
        iters = np.zeros(Bn, dtype=np.int64)
        method = np.full(Bn, "", dtype=object)
        if run.size:
            solver = self._active_set_solver()
            Xr = Xv[run]
            h = qp.w + Xr @ qp.E.T
            z0 = -(Xr @ qp.F.T) @ solver.Linv.T
            q = h - z0 @ solver.Gbar.T
            sol = solver.solve(q, z0, h, None if active0 is None else active0[run])
            lam[run] = sol.lam
            iters[run] = sol.iterations
            method[run] = np.where(sol.method == 0, "primal-dual active set", "dual active set")
            for k, i in enumerate(run):
                if sol.code[k] == 1:
                    status[i] = "infeasible"
                    reason[i] = ("no input sequence satisfies G U <= w + E x: Farkas certificate μ >= 0 with "
                                 f"Gᵀμ = 0 and μᵀ(w + E x) = -{sol.farkas_margin[k]:.3g}·‖μ‖₁")
                elif sol.code[k] == 2:
                    status[i] = "failed"
                    reason[i] = "the active-set methods reached no decision (numerical trouble)"

        ok = status == "solved"
        U = np.full((Bn, qp.n_U), np.nan)
        Z = np.full((Bn, qp.n_z), np.nan)
        y = np.full((Bn, m), np.nan)
        if ok.any():
            Xo, lo = Xv[ok], lam[ok]
            Z[ok] = qp.primal(lo, Xo)
            s = qp.w + Xo @ qp.E.T - Z[ok] @ qp.G.T
            y[ok] = lo - self.alpha * s
            U[ok] = self.output(y[ok], Xo)
        relu_y = np.maximum(np.nan_to_num(y, nan=0.0), 0.0)
        c = Xv @ self.Y.T + self.b
        Wr = relu_y @ self.W.T
        with np.errstate(invalid="ignore"):
            fp = np.abs(y - Wr - c).max(axis=1, initial=0.0)
        fp_scale = np.maximum.reduce([np.ones(Bn), np.abs(Wr).max(axis=1, initial=0.0),
                                      np.abs(c).max(axis=1, initial=0.0)])
        kkt = qp.kkt_residuals(np.nan_to_num(Z), relu_y, Xv)
        bad_cert = ok & ((fp > CERTIFICATE_TOL * fp_scale) | (kkt.worst > CERTIFICATE_TOL))
        status[bad_cert] = "uncertified"
        for i in np.flatnonzero(bad_cert):
            reason[i] = (f"residuals above {CERTIFICATE_TOL:g}: relative fixed-point {fp[i] / fp_scale[i]:.2e}, "
                         f"relative KKT {kkt.worst[i]:.2e}")
        feasible = (status == "solved") | (status == "uncertified")
        fp = np.where(feasible, fp, np.nan)
        return ImplicitSolution(U=U, y=y, feasible=feasible, status=status.astype(str), reason=reason.astype(str),
                                fixed_point_residual=fp, fixed_point_scale=fp_scale, kkt=kkt, iterations=iters,
                                method=method.astype(str), n_u=qp.n_u, slack=qp.slacks(Z))

    def well_posedness(self, *, box=None) -> "WellPosednessReport":
        """Diagnose well-posedness of ``y = W relu(y) + c``.

        Parameters
        ----------
        box : (lo, hi), optional
            Region of states over which rows are tested for redundancy
            (default: the QP's sample box; all of ``R^{n_x}`` where it has none). Only
            for plain problems (where the network input is the state).
        """
        return _well_posedness(self, box)


@dataclass(frozen=True)
class WellPosednessReport:
    """Facts about the implicit network ``y = W relu(y) + c``.

    ``I - W = Γ M`` is a P-matrix (unique fixed point for every ``c``) iff ``M`` is
    positive definite iff ``G`` has full row rank.

    Attributes
    ----------
    m, n_U : rows and decision variables (``n_z``); rank_G : rank of G
    p_matrix : bool, ``I - W`` is a P-matrix
    eig_min_M, eig_max_M : extreme eigenvalues of ``M = G H⁻¹ Gᵀ``
    duplicated_rows : pairs ``(i, j)`` of rows that are the same constraint up to a positive factor
    opposite_pairs : pairs ``(i, j)`` with ``G_i ∥ -G_j`` (upper/lower bounds on one quantity)
    redundant_rows : rows that no state of ``box`` can make active (LP check), or ``None`` if skipped
    box : the region used for the redundancy check
    contraction_rate : rate of the plain iteration ``y ← W relu(y) + c`` in the
        ``Γ^{-1/2}``-weighted 2-norm, ``‖I - Γ^{1/2} M Γ^{1/2}‖₂``, when it is < 1; else ``None``
    notes : plain-language explanation
    """

    m: int
    n_U: int
    rank_G: int
    p_matrix: bool
    eig_min_M: float
    eig_max_M: float
    duplicated_rows: tuple
    opposite_pairs: tuple
    redundant_rows: tuple | None
    box: tuple | None
    contraction_rate: float | None
    notes: tuple

    def __str__(self) -> str:
        lines = [
            f"constraint rows m = {self.m}, decision variables n_U = {self.n_U}, rank(G) = {self.rank_G}",
            f"I - W is a P-matrix (unique fixed point for every input): {self.p_matrix}",
            f"eigenvalues of M = G H⁻¹ Gᵀ: min {self.eig_min_M:.3e}, max {self.eig_max_M:.3e}",
            f"duplicated rows: {len(self.duplicated_rows)}, upper/lower pairs: {len(self.opposite_pairs)}, "
            f"redundant rows over the box: "
            f"{'not checked' if self.redundant_rows is None else len(self.redundant_rows)}",
            "contraction rate of the plain iteration: "
            + ("none (no global contraction)" if self.contraction_rate is None else f"{self.contraction_rate:.6f}"),
        ]
        return "\n".join(lines + [f"note: {n}" for n in self.notes])


def _well_posedness(net: ImplicitNetwork, box) -> WellPosednessReport:
    qp = net.qp
    G, m, n_U = qp.G, qp.m, qp.n_z
    M = G @ qp.H_inv @ G.T
    eig = np.linalg.eigvalsh(M) if m else np.zeros(1)
    rank = int(np.linalg.matrix_rank(G)) if m else 0
    p_matrix = rank == m
    # parallel rows of the joint constraint [G, -E] (same constraint in (U, x) up to scaling)
    J = np.hstack([G, -qp.E])
    norms = np.linalg.norm(J, axis=1)
    Jn = J / np.where(norms > 0, norms, 1.0)[:, None]
    cos = Jn @ Jn.T
    dup, opp = [], []
    iu = np.triu_indices(m, k=1)
    for i, j in zip(*iu):
        if cos[i, j] > 1 - 1e-12:
            dup.append((int(i), int(j)))
        elif cos[i, j] < -1 + 1e-12:
            opp.append((int(i), int(j)))
    if box is None:
        box = qp.sample_box
    redundant = _redundant_rows(qp, box) if m else ()
    sq = np.sqrt(net.alpha)
    rate = float(np.abs(np.linalg.eigvalsh(np.eye(m) - sq[:, None] * M * sq[None, :])).max()) if m else 0.0
    notes = []
    if not p_matrix:
        notes.append(f"G has {m} rows but rank {rank}: M is singular, W has eigenvalue 1 and no step size "
                     "gives a global contraction; fixed points exist exactly where the QP is feasible and "
                     "their U is unique even where y is not")
    if rate >= 1.0:
        notes.append("the plain iteration is not a contraction: its error bounds must be a-posteriori")
    return WellPosednessReport(m, n_U, rank, p_matrix, float(eig[0]), float(eig[-1]), tuple(dup), tuple(opp),
                               redundant, None if box is None else (np.asarray(box[0]), np.asarray(box[1])),
                               rate if rate < 1.0 else None, tuple(notes))


def _redundant_rows(qp: CondensedQP, box) -> tuple:
    """Rows i with ``max G_i z - E_i θ - w_i <= 0`` over the other rows and ``x ∈ box`` (HiGHS LPs;
    the other parts of ``θ`` are free)."""
    n_z, n_x, m = qp.n_z, qp.n_x, qp.m
    A = np.hstack([qp.G, -qp.E])
    bounds = [(None, None)] * n_z + ([(None, None)] * n_x if box is None
                                     else [(float(lo), float(hi)) for lo, hi in zip(box[0], box[1])])
    bounds += [(None, None)] * (qp.n_theta - n_x)
    out = []
    for i in range(m):
        others = np.arange(m) != i
        res = scipy.optimize.linprog(-A[i], A_ub=A[others], b_ub=qp.w[others], bounds=bounds, method="highs")
        if res.status == 0 and -res.fun - qp.w[i] <= 1e-9 * max(1.0, abs(qp.w[i])):
            out.append(i)
    return tuple(out)
