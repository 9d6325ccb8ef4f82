"""Condensed parametric QP of a linear MPC problem: :class:`CondensedQP`, :func:`condense`.

With ``U = (u_0, ..., u_{N-1})`` (shape ``(N·n_u,)``) and the predicted states
``(x_1, ..., x_N) = Φ x + Γ U``, the MPC problem at state ``x`` is

    minimise ½ Uᵀ H U + xᵀ Fᵀ U   subject to   G U <= w + E x,
    H = Γᵀ Q̄ Γ + R̄,  F = Γᵀ Q̄ Φ,  Q̄ = blkdiag(Q, ..., Q, P),  R̄ = blkdiag(R, ..., R).

Constraint rows come in this order: input bounds (stage by stage, upper then
lower), state bounds on ``x_1..x_N``, stage constraints, terminal constraint;
``row_labels`` names each row. Rows that do not involve ``U`` at all (a stage
constraint on ``x_0`` alone) restrict only the state and are kept apart in
``state_only = (E0, w0)``: the problem is infeasible where ``w0 + E0 x < 0``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from ._checks import as_matrix, as_states, check_pd
from .exceptions import ProblemDefinitionError, ShapeError
from .problem import MPCProblem

__all__ = ["CondensedQP", "KKTResiduals", "SparseQP", "condense", "as_qp"]


def _frozen(a) -> np.ndarray:
    a = np.ascontiguousarray(a, dtype=np.float64)
    a.setflags(write=False)
    return a


@dataclass(frozen=True)
class KKTResiduals:
    """Per-sample KKT residuals of a primal-dual pair at a batch of states.

    Each attribute has shape ``(B,)``.

    Attributes
    ----------
    stationarity : ``‖H U + F x + Gᵀ λ‖∞``
    primal : largest constraint violation ``max(0, max_i (G U - w - E x)_i)``
    dual : largest negative multiplier ``max(0, max_i -λ_i)``
    complementarity : ``max_i |λ_i · s_i|`` with the slack ``s = w + E x - G U``
    scale : per-sample scale ``max(1, ‖H U‖∞, ‖F x‖∞, ‖w + E x‖∞)``; the
        relative residual is ``max(...) / scale``.
    """

    stationarity: np.ndarray
    primal: np.ndarray
    dual: np.ndarray
    complementarity: np.ndarray
    scale: np.ndarray

    @property
    def worst(self) -> np.ndarray:
        """``(B,)`` largest of the four residuals, divided by ``scale``."""
        raw = np.maximum.reduce([self.stationarity, self.primal, self.dual, self.complementarity])
        return raw / self.scale


@dataclass(frozen=True, eq=False)
class SparseQP:
    """States-and-inputs form of the MPC problem (as OSQP takes it).

    Variables ``z = (x_1, ..., x_N, u_0, ..., u_{N-1})``; the problem is
    ``min ½ zᵀ P z + q(x)ᵀ z  s.t.  l(x) <= A z <= u(x)`` with ``q(x) = q_x x``,
    ``l(x) = l0 + L_x x``, ``u(x) = u0 + L_x x`` (the first ``N·n_x`` rows are
    the dynamics, equalities). ``U`` is ``z[N·n_x:]``.
    """

    P: sp.csc_matrix
    q_x: np.ndarray
    A: sp.csc_matrix
    l0: np.ndarray
    u0: np.ndarray
    L_x: np.ndarray
    n_states: int

    def vectors(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(q, l, u)`` at one state ``x`` of shape ``(n_x,)``."""
        shift = self.L_x @ x
        return self.q_x @ x, self.l0 + shift, self.u0 + shift


@dataclass(frozen=True, eq=False)
class CondensedQP:
    """The parametric QP ``min ½UᵀHU + xᵀFᵀU`` subject to ``GU <= w + Ex`` of an MPC problem.

    Attributes
    ----------
    H : (n_U, n_U) positive definite Hessian, ``n_U = N·n_u``
    F : (n_U, n_x) linear term
    G : (m, n_U) constraint matrix
    w : (m,) constraint offsets
    E : (m, n_x) constraint dependence on the state
    n_u : inputs per stage (``u_0`` is ``U[:n_u]``)
    Phi, Gamma : (N·n_x, n_x), (N·n_x, n_U) prediction ``(x_1..x_N) = Phi x + Gamma U``,
        or ``None`` when the QP was given directly
    problem : the MPCProblem it was condensed from, or ``None``
    row_labels : tuple of m strings naming each constraint row
    state_only : ``(E0, w0)`` rows that restrict only the state, shapes (p, n_x), (p,)
    name : label; sample_box : ``(lo, hi)`` or ``None``; source : provenance
    """

    H: np.ndarray
    F: np.ndarray
    G: np.ndarray
    w: np.ndarray
    E: np.ndarray
    n_u: int
    Phi: np.ndarray | None = None
    Gamma: np.ndarray | None = None
    problem: MPCProblem | None = None
    row_labels: tuple = ()
    state_only: tuple | None = None
    name: str = "qp"
    sample_box: tuple | None = None
    source: str = "given"
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self):
        H = check_pd("H", as_matrix("H", self.H, ("n_U", "n_U"), (None, None)))
        n_U = H.shape[0]
        F = as_matrix("F", self.F, ("n_U", "n_x"), (n_U, None))
        n_x = F.shape[1]
        G = as_matrix("G", np.reshape(self.G, (-1, n_U)) if np.size(self.G) == 0 else self.G,
                      ("m", "n_U"), (None, n_U))
        m = G.shape[0]
        w = as_matrix("w", self.w, ("m",), (m,))
        E = as_matrix("E", np.reshape(self.E, (m, n_x)) if np.size(self.E) == 0 else self.E,
                      ("m", "n_x"), (m, n_x))
        if not isinstance(self.n_u, (int, np.integer)) or self.n_u < 1 or n_U % self.n_u:
            raise ShapeError(f"n_u: expected a positive divisor of n_U = {n_U}, got {self.n_u!r}")
        for k, v in dict(H=H, F=F, G=G, w=w, E=E).items():
            object.__setattr__(self, k, _frozen(v))
        object.__setattr__(self, "n_u", int(self.n_u))
        labels = tuple(self.row_labels) or tuple(f"row {i}" for i in range(m))
        if len(labels) != m:
            raise ShapeError(f"row_labels: expected m = {m} labels, got {len(labels)}")
        object.__setattr__(self, "row_labels", labels)
        if self.state_only is not None:
            E0 = as_matrix("state_only E0", self.state_only[0], ("p", "n_x"), (None, n_x))
            w0 = as_matrix("state_only w0", self.state_only[1], ("p",), (E0.shape[0],))
            object.__setattr__(self, "state_only", (_frozen(E0), _frozen(w0)))

    # --- sizes ------------------------------------------------------------
    @property
    def n_x(self) -> int:
        """Number of states."""
        return self.F.shape[1]

    @property
    def n_U(self) -> int:
        """Number of decision variables ``N·n_u``."""
        return self.H.shape[0]

    @property
    def m(self) -> int:
        """Number of constraint rows."""
        return self.G.shape[0]

    @property
    def horizon(self) -> int:
        """``N = n_U / n_u``."""
        return self.n_U // self.n_u

    # --- derived matrices (cached) ------------------------------------------
    @property
    def H_inv(self) -> np.ndarray:
        """``H⁻¹`` (n_U, n_U)."""
        if "H_inv" not in self._cache:
            L = np.linalg.cholesky(self.H)
            Linv = np.linalg.inv(L)
            self._cache["H_inv"] = _frozen(Linv.T @ Linv)
        return self._cache["H_inv"]

    def unconstrained(self, X) -> np.ndarray:
        """``(B, n_U)`` minimiser without constraints, ``-H⁻¹ F x``."""
        X = as_states(X, self.n_x)
        return -X @ (self.H_inv @ self.F).T

    def slack(self, U: np.ndarray, X: np.ndarray) -> np.ndarray:
        """``(B, m)`` constraint slack ``w + E x - G U`` (negative = violated)."""
        return self.w + X @ self.E.T - U @ self.G.T

    def objective(self, U, X) -> np.ndarray:
        """``(B,)`` value of ``½UᵀHU + xᵀFᵀU`` (the state-only constant left out)."""
        X = as_states(X, self.n_x)
        U = np.atleast_2d(np.asarray(U, float))
        return 0.5 * np.einsum("bi,ij,bj->b", U, self.H, U) + np.einsum("bi,ij,bj->b", U, self.F, X)

    def predict(self, X, U) -> np.ndarray:
        """Predicted trajectories ``(B, N+1, n_x)`` (``x_0 = x`` first) from the condensed matrices."""
        if self.Phi is None:
            raise ProblemDefinitionError(f"predict: QP '{self.name}' was given directly and has no prediction model")
        X = as_states(X, self.n_x)
        U = np.atleast_2d(np.asarray(U, float))
        if U.shape != (X.shape[0], self.n_U):
            raise ShapeError(f"U: expected shape (B, N·n_u) = ({X.shape[0]}, {self.n_U}), got {U.shape}")
        future = X @ self.Phi.T + U @ self.Gamma.T
        return np.concatenate([X[:, None, :], future.reshape(X.shape[0], self.horizon, self.n_x)], axis=1)

    def kkt_residuals(self, U, lam, X) -> KKTResiduals:
        """KKT residuals of primal ``U`` (B, n_U) and multipliers ``lam`` (B, m) at states ``X`` (B, n_x)."""
        X = as_states(X, self.n_x)
        U = np.atleast_2d(np.asarray(U, float))
        lam = np.atleast_2d(np.asarray(lam, float)).reshape(X.shape[0], self.m)
        HU, Fx, GtL = U @ self.H, X @ self.F.T, lam @ self.G
        rhs = self.w + X @ self.E.T
        s = rhs - U @ self.G.T
        zero = np.zeros(X.shape[0])
        with np.errstate(invalid="ignore"):
            return KKTResiduals(
                stationarity=np.abs(HU + Fx + GtL).max(axis=1, initial=0.0),
                primal=np.maximum(zero, (-s).max(axis=1, initial=0.0)),
                dual=np.maximum(zero, (-lam).max(axis=1, initial=0.0)),
                complementarity=np.abs(lam * s).max(axis=1, initial=0.0),
                scale=np.maximum.reduce([np.ones(X.shape[0]), np.abs(HU).max(axis=1, initial=0.0),
                                         np.abs(Fx).max(axis=1, initial=0.0),
                                         np.abs(rhs).max(axis=1, initial=0.0)]),
            )

    def state_only_violation(self, X) -> np.ndarray:
        """``(B,)`` largest violation of the state-only rows (0 where none or satisfied)."""
        X = as_states(X, self.n_x)
        if self.state_only is None or self.state_only[0].shape[0] == 0:
            return np.zeros(X.shape[0])
        E0, w0 = self.state_only
        return np.maximum(0.0, (-(w0 + X @ E0.T)).max(axis=1))

    def with_row_scaling(self, scale) -> "CondensedQP":
        """The same QP with constraint row ``i`` multiplied by ``scale[i] > 0`` (same solution ``U``)."""
        scale = np.broadcast_to(np.asarray(scale, float), (self.m,))
        if np.any(~(scale > 0)) or not np.all(np.isfinite(scale)):
            raise ProblemDefinitionError("scale: row scales must be finite and > 0 (a sign flip changes the QP)")
        return CondensedQP(self.H, self.F, scale[:, None] * self.G, scale * self.w, scale[:, None] * self.E,
                           self.n_u, self.Phi, self.Gamma, self.problem, self.row_labels, self.state_only,
                           self.name, self.sample_box, self.source + " (rows rescaled)")

    def sparse_form(self) -> SparseQP:
        """The states-and-inputs form, built from ``problem`` (only for QPs made by :func:`condense`)."""
        if self.problem is None or self.source != "condense":
            raise ProblemDefinitionError(
                f"sparse_form: QP '{self.name}' was not condensed from an MPCProblem unchanged; "
                "only the condensed form exists")
        if "sparse" not in self._cache:
            self._cache["sparse"] = _sparse_form(self.problem)
        return self._cache["sparse"]


def condense(problem: MPCProblem) -> CondensedQP:
    """Condense an :class:`MPCProblem` into a :class:`CondensedQP`.

    Examples
    --------
    >>> import mpc2nn
    >>> qp = mpc2nn.condense(mpc2nn.systems.double_integrator())
    >>> qp.H.shape, qp.G.shape    # N = 20, n_u = 1; 40 input rows + 80 state rows
    ((20, 20), (120, 20))
    """
    if not isinstance(problem, MPCProblem):
        raise ProblemDefinitionError(f"condense: expected an MPCProblem, got {type(problem).__name__}")
    A, B, N = problem.A, problem.B, problem.horizon
    n_x, n_u = problem.n_x, problem.n_u
    Phi, Gamma = _prediction_matrices(A, B, N)
    Qbar = np.kron(np.eye(N), problem.Q)
    Qbar[-n_x:, -n_x:] = problem.P
    H = Gamma.T @ Qbar @ Gamma + np.kron(np.eye(N), problem.R)
    F = Gamma.T @ Qbar @ Phi

    rows_G, rows_w, rows_E, labels = [], [], [], []
    zeros_x = np.zeros(n_x)

    def add(g, w_, e, label):
        rows_G.append(g), rows_w.append(w_), rows_E.append(e), labels.append(label)

    for k in range(N):
        for i in range(n_u):
            g = np.zeros(N * n_u)
            g[k * n_u + i] = 1.0
            if np.isfinite(problem.u_max[i]):
                add(g, problem.u_max[i], zeros_x, f"u_max[{i}] at k={k}")
            if np.isfinite(problem.u_min[i]):
                add(-g, -problem.u_min[i], zeros_x, f"u_min[{i}] at k={k}")
    for k in range(1, N + 1):
        Gk, Pk = Gamma[(k - 1) * n_x:k * n_x], Phi[(k - 1) * n_x:k * n_x]
        for i in range(n_x):
            if np.isfinite(problem.x_max[i]):
                add(Gk[i], problem.x_max[i], -Pk[i], f"x_max[{i}] at k={k}")
            if np.isfinite(problem.x_min[i]):
                add(-Gk[i], -problem.x_min[i], Pk[i], f"x_min[{i}] at k={k}")
    state_E, state_w = [], []
    for c_idx, con in enumerate(problem.constraints):
        for k in range(N):
            Pk = np.eye(n_x) if k == 0 else Phi[(k - 1) * n_x:k * n_x]
            Gk = np.zeros((n_x, N * n_u)) if k == 0 else Gamma[(k - 1) * n_x:k * n_x]
            Su = np.zeros((n_u, N * n_u))
            Su[:, k * n_u:(k + 1) * n_u] = np.eye(n_u)
            g_rows = con.C_x @ Gk + con.C_u @ Su
            e_rows = -con.C_x @ Pk
            for r in range(con.d.shape[0]):
                if not np.any(g_rows[r]):
                    state_E.append(e_rows[r]), state_w.append(con.d[r])
                else:
                    add(g_rows[r], con.d[r], e_rows[r], f"constraints[{c_idx}] row {r} at k={k}")
    if problem.terminal_constraint is not None:
        C, d = problem.terminal_constraint.C, problem.terminal_constraint.d
        GN, PN = C @ Gamma[-n_x:], C @ Phi[-n_x:]
        for r in range(d.shape[0]):
            add(GN[r], d[r], -PN[r], f"terminal row {r}")

    m = len(rows_G)
    G = np.array(rows_G).reshape(m, N * n_u)
    E = np.array(rows_E).reshape(m, n_x)
    state_only = (np.array(state_E).reshape(-1, n_x), np.array(state_w)) if state_E else None
    return CondensedQP(H, F, G, np.array(rows_w, float), E, n_u, _frozen(Phi), _frozen(Gamma), problem,
                       tuple(labels), state_only, problem.name, problem.sample_box, "condense")


def as_qp(obj) -> CondensedQP:
    """The condensed QP behind ``obj``: an MPCProblem is condensed, a CondensedQP returned as it is,
    a network (anything with a ``qp`` attribute holding a CondensedQP) gives its QP."""
    if isinstance(obj, MPCProblem):
        return condense(obj)
    if isinstance(obj, CondensedQP):
        return obj
    if isinstance(getattr(obj, "qp", None), CondensedQP):
        return obj.qp
    raise ProblemDefinitionError(
        f"problem: expected an MPCProblem, CondensedQP or ImplicitNetwork, got {type(obj).__name__}")


def _prediction_matrices(A: np.ndarray, B: np.ndarray, N: int) -> tuple[np.ndarray, np.ndarray]:
    """``Φ`` (N·n_x, n_x) and block lower-triangular ``Γ`` (N·n_x, N·n_u), ``Γ[k, j] = A^{k-j} B``."""
    n_x, n_u = B.shape
    powers = [np.eye(n_x)]
    for _ in range(N):
        powers.append(A @ powers[-1])
    Phi = np.vstack(powers[1:])
    Gamma = np.zeros((N * n_x, N * n_u))
    for k in range(N):
        for j in range(k + 1):
            Gamma[k * n_x:(k + 1) * n_x, j * n_u:(j + 1) * n_u] = powers[k - j] @ B
    return Phi, Gamma


def _sparse_form(problem: MPCProblem) -> SparseQP:
    A, B, N = problem.A, problem.B, problem.horizon
    n_x, n_u = problem.n_x, problem.n_u
    nX, nU = N * n_x, N * n_u
    P = sp.block_diag([problem.Q] * (N - 1) + [problem.P] + [problem.R] * N, format="csc")
    # dynamics: x_{k+1} - A x_k - B u_k = 0 (k >= 1), x_1 - B u_0 = A x
    Ax = sp.kron(sp.eye(N), -sp.eye(n_x)) + sp.kron(sp.eye(N, k=-1), A)
    Aeq = sp.hstack([Ax, sp.kron(sp.eye(N), B)])
    L_eq = np.zeros((nX, n_x))
    L_eq[:n_x] = -A
    rows, lo, hi, Lx = [Aeq], [np.zeros(nX)], [np.zeros(nX)], [L_eq]
    # q(x): the x_0 term x_0ᵀQx_0 is constant; no cross term with z since x_0 is not a variable.
    q_x = np.zeros((nX + nU, n_x))
    # input and state bounds as identity rows (OSQP takes ±inf)
    rows.append(sp.hstack([sp.csc_matrix((nU, nX)), sp.eye(nU)]))
    lo.append(np.tile(problem.u_min, N)), hi.append(np.tile(problem.u_max, N)), Lx.append(np.zeros((nU, n_x)))
    if np.isfinite(problem.x_min).any() or np.isfinite(problem.x_max).any():
        rows.append(sp.hstack([sp.eye(nX), sp.csc_matrix((nX, nU))]))
        lo.append(np.tile(problem.x_min, N)), hi.append(np.tile(problem.x_max, N))
        Lx.append(np.zeros((nX, n_x)))
    for con in problem.constraints:
        p = con.d.shape[0]
        # k = 0: C_u u_0 <= d - C_x x ; k >= 1: C_x x_k + C_u u_k <= d
        Cx_blocks = sp.kron(sp.eye(N, k=-1), con.C_x)  # row block k uses x_k, i.e. column block k-1
        Cu_blocks = sp.kron(sp.eye(N), con.C_u)
        rows.append(sp.hstack([Cx_blocks, Cu_blocks]))
        lo.append(np.full(N * p, -np.inf)), hi.append(np.tile(con.d, N))
        L = np.zeros((N * p, n_x))
        L[:p] = -con.C_x
        Lx.append(L)
    if problem.terminal_constraint is not None:
        C, d = problem.terminal_constraint.C, problem.terminal_constraint.d
        blk = sp.hstack([sp.csc_matrix((C.shape[0], nX - n_x)), C, sp.csc_matrix((C.shape[0], nU))])
        rows.append(blk)
        lo.append(np.full(d.shape[0], -np.inf)), hi.append(d), Lx.append(np.zeros((d.shape[0], n_x)))
    return SparseQP(P=P, q_x=q_x, A=sp.vstack(rows, format="csc"), l0=np.concatenate(lo),
                    u0=np.concatenate(hi), L_x=np.vstack(Lx), n_states=nX)
