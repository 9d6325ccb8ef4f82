"""Condensed parametric QP of a linear MPC problem: :class:`CondensedQP`, :func:`condense`.

With ``U = (u_0, ..., u_{N-1})`` (shape ``(N·n_u,)``) and the predicted states
``(x_1, ..., x_N) = Φ x + Γ U``, the plain MPC problem at state ``x`` is

    minimise ½ Uᵀ H U + xᵀ Fᵀ U   subject to   G U <= w + E x,
    H = Γᵀ Q̄ Γ + R̄,  F = Γᵀ Q̄ Φ,  Q̄ = blkdiag(Q, ..., Q, P),  R̄ = blkdiag(R, ..., R).

In general (input rates, tracking, soft constraints, move blocking; see
:class:`~mpc2nn.MPCProblem`) the QP is

    minimise ½ zᵀ H z + θᵀ Fᵀ z   subject to   G z <= w + E θ,     U = T z,

in a decision vector ``z = (V, s')`` (``V`` the ``p·n_u`` blocked inputs, ``s'``
the shifted slacks, one per softened quantity) and a parameter vector ``θ = (x, u_prev, x_ref, u_ref)``
holding only the parts the problem uses (:attr:`CondensedQP.parameter_labels`,
built by :meth:`CondensedQP.parameters`). The output map ``T`` expands the
blocks and drops the slacks. A linear slack penalty ``ρ_l s`` is absorbed by
the shift ``s' = s + δ``, ``δ = ρ_l / (2ρ_q)``, so the QP keeps this form with
no constant linear term; :meth:`CondensedQP.slacks` undoes the shift. For a
plain problem ``z = U``, ``θ = x`` and ``T = I``.

Constraint rows come in this order: input bounds (stage by stage, upper then
lower), input-rate bounds, state bounds on ``x_1..x_N``, stage constraints,
terminal constraint, then ``s >= 0``; ``row_labels`` names each row. Rows that
are identical to an earlier row (input bounds within a block) or hold
trivially (a rate bound within a block) are left out. Rows that do not involve
``z`` at all (a stage constraint on ``x_0`` alone) restrict only the state and
are kept apart in ``state_only = (E0, w0)``: the problem is infeasible where
``w0 + E0 θ < 0`` (with soft constraints these rows are dropped).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import scipy.linalg
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
    """States-and-inputs form of the MPC problem (as OSQP takes it), built from the problem
    directly (not from the condensed matrices, so it also checks them).

    Variables ``ζ = (x_1, ..., x_N, u_0, ..., u_{N-1}, s)`` (``s``: one slack per
    softened row, unshifted); the problem is ``min ½ ζᵀ P ζ + q(θ)ᵀ ζ  s.t.
    l(θ) <= A ζ <= u(θ)`` with ``q(θ) = q0 + q_x θ``, ``l(θ) = l0 + L_x θ``,
    ``u(θ) = u0 + L_x θ`` (the first ``N·n_x`` rows are the dynamics, equalities;
    move blocking adds equalities ``u_k = u_{k-1}`` within blocks). ``U`` is
    ``ζ[n_states:n_states + N·n_u]``.
    """

    P: sp.csc_matrix
    q_x: np.ndarray
    A: sp.csc_matrix
    l0: np.ndarray
    u0: np.ndarray
    L_x: np.ndarray
    n_states: int
    q0: np.ndarray | None = None
    n_inputs: int | None = None

    def vectors(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(q, l, u)`` at one parameter vector ``θ`` (the state for a plain problem) of shape ``(n_θ,)``."""
        shift = self.L_x @ x
        q = self.q_x @ x if self.q0 is None else self.q0 + self.q_x @ x
        return q, self.l0 + shift, self.u0 + shift


@dataclass(frozen=True, eq=False)
class CondensedQP:
    """The parametric QP ``min ½zᵀHz + θᵀFᵀz`` subject to ``Gz <= w + Eθ``, ``U = Tz``, of an MPC problem.

    Attributes
    ----------
    H : (n_z, n_z) positive definite Hessian (``n_z = n_U = N·n_u`` for a plain problem)
    F : (n_z, n_θ) linear term
    G : (m, n_z) constraint matrix
    w : (m,) constraint offsets
    E : (m, n_θ) constraint dependence on the parameters
    n_u : inputs per stage (``u_0`` is ``U[:n_u]``)
    Phi, Gamma : (N·n_x, n_x), (N·n_x, N·n_u) prediction ``(x_1..x_N) = Phi x + Gamma U``
        from the state ``x`` and the input sequence ``U``, or ``None`` when the QP was given directly
    problem : the MPCProblem it was condensed from, or ``None``
    row_labels : tuple of m strings naming each constraint row
    state_only : ``(E0, w0)`` rows that restrict only the parameters, shapes (p, n_θ), (p,)
    name : label; sample_box : ``(lo, hi)`` of the states or ``None``; source : provenance
    output_map : (N·n_u, n_z) ``T`` with ``U = T z``, or ``None`` for ``T = I``
    n_slack : number of soft-constraint slacks, the last entries of ``z``
    slack_shift : ``δ``, the slacks are ``z[-n_slack:] - δ``
    parameter_sizes : tuple of ``(name, size)`` giving the layout of ``θ``
        (default ``(("x", n_θ),)``)
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
    output_map: np.ndarray | None = None
    n_slack: int = 0
    slack_shift: float = 0.0
    parameter_sizes: tuple = ()
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self):
        H = check_pd("H", as_matrix("H", self.H, ("n_z", "n_z"), (None, None)))
        n_z = H.shape[0]
        F = as_matrix("F", self.F, ("n_z", "n_θ"), (n_z, None))
        n_x = F.shape[1]
        G = as_matrix("G", np.reshape(self.G, (-1, n_z)) if np.size(self.G) == 0 else self.G,
                      ("m", "n_z"), (None, n_z))
        m = G.shape[0]
        w = as_matrix("w", self.w, ("m",), (m,))
        E = as_matrix("E", np.reshape(self.E, (m, n_x)) if np.size(self.E) == 0 else self.E,
                      ("m", "n_θ"), (m, n_x))
        T = None
        if self.output_map is not None:
            T = as_matrix("output_map", self.output_map, ("N·n_u", "n_z"), (None, n_z))
            object.__setattr__(self, "output_map", _frozen(T))
        n_U = n_z if T is None else T.shape[0]
        if not isinstance(self.n_u, (int, np.integer)) or self.n_u < 1 or n_U % self.n_u:
            raise ShapeError(f"n_u: expected a positive divisor of N·n_u = {n_U}, got {self.n_u!r}")
        if not isinstance(self.n_slack, (int, np.integer)) or not 0 <= self.n_slack < n_z:
            raise ShapeError(f"n_slack: expected an integer in [0, n_z) = [0, {n_z}), got {self.n_slack!r}")
        sizes = tuple((str(k), int(v)) for k, v in self.parameter_sizes) or (("x", n_x),)
        if sum(v for _, v in sizes) != n_x:
            raise ShapeError(f"parameter_sizes: the sizes {sizes} add up to {sum(v for _, v in sizes)}, "
                             f"expected n_θ = {n_x} (columns of F)")
        object.__setattr__(self, "parameter_sizes", sizes)
        object.__setattr__(self, "n_slack", int(self.n_slack))
        object.__setattr__(self, "slack_shift", float(self.slack_shift))
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
    def n_theta(self) -> int:
        """Length of the parameter vector ``θ``, the input of the QP's networks."""
        return self.F.shape[1]

    @property
    def n_x(self) -> int:
        """Number of states (the ``x`` part of ``θ``)."""
        return dict(self.parameter_sizes).get("x", self.n_theta)

    @property
    def n_z(self) -> int:
        """Number of decision variables."""
        return self.H.shape[0]

    @property
    def n_U(self) -> int:
        """Length ``N·n_u`` of the input sequence ``U = T z``."""
        return self.n_z if self.output_map is None else self.output_map.shape[0]

    @property
    def parameter_labels(self) -> tuple:
        """Names of the entries of ``θ``, e.g. ``("x[0]", "x[1]", "u_prev[0]")``."""
        return tuple(f"{k}[{i}]" for k, n in self.parameter_sizes for i in range(n))

    # --- parameters and outputs ------------------------------------------------
    def parameters(self, x, u_prev=None, x_ref=None, u_ref=None) -> np.ndarray:
        """The network input ``θ`` (B, n_θ) from its parts.

        Each part is ``(n,)`` or ``(B, n)``; ``(n,)`` parts are repeated over the batch.
        Exactly the parts in :attr:`parameter_sizes` must be given: ``u_prev`` for
        problems with input-rate bounds or weights, ``x_ref`` and ``u_ref`` for
        tracking problems.
        """
        given = dict(x=x, u_prev=u_prev, x_ref=x_ref, u_ref=u_ref)
        layout = dict(self.parameter_sizes)
        why = dict(u_prev="it has no input-rate bounds or weight (du_min, du_max, du_weight)",
                   x_ref="it does not track a reference (tracking=False)",
                   u_ref="it does not track a reference (tracking=False)")
        need = dict(u_prev="its input-rate bounds/weight act on u_0 - u_prev: give the previous input",
                    x_ref="it tracks a reference (tracking=True): give the state reference",
                    u_ref="it tracks a reference (tracking=True): give the input reference "
                          "(mpc2nn.steady_state_target computes both from an output reference)")
        parts = []
        for k, v in given.items():
            if k not in layout:
                if v is not None:
                    raise ProblemDefinitionError(f"{k}: QP '{self.name}' takes no {k} because {why.get(k, '')}; "
                                                 f"its parameters are θ = ({self._layout_text()})")
                continue
            if v is None:
                raise ProblemDefinitionError(f"{k}: missing; QP '{self.name}' needs it because {need[k]}. "
                                             f"Its parameters are θ = ({self._layout_text()})")
            a = np.asarray(v, dtype=float)
            if a.ndim == 1:
                a = a[None, :]
            if a.ndim != 2 or a.shape[1] != layout[k]:
                raise ShapeError(f"{k}: expected shape ({layout[k]},) or (B, {layout[k]}), got {np.shape(v)}")
            parts.append(a)
        B = max(p.shape[0] for p in parts)
        for k, p in zip([k for k in given if k in layout], parts):
            if p.shape[0] not in (1, B):
                raise ShapeError(f"{k}: batch size {p.shape[0]} does not match the others ({B}); give (n,) "
                                 "to use one value for all")
        return np.hstack([np.broadcast_to(p, (B, p.shape[1])) for p in parts])

    def _layout_text(self) -> str:
        return ", ".join(f"{k} ({n})" for k, n in self.parameter_sizes)

    def check_parameters(self, X, name: str = "X") -> np.ndarray:
        """``X`` as a float array (B, n_θ); a single vector becomes B = 1. Errors name the layout of ``θ``."""
        if self.parameter_sizes == (("x", self.n_theta),):
            return as_states(X, self.n_theta, name)
        try:
            return as_states(X, self.n_theta, name, sym="n_θ")
        except ShapeError as exc:
            raise ShapeError(f"{exc}; the input of QP '{self.name}' is θ = ({self._layout_text()}), "
                             "build it with qp.parameters(x, u_prev=..., x_ref=..., u_ref=...)") from None

    def inputs(self, Z) -> np.ndarray:
        """``(B, N·n_u)`` input sequences ``U = T z`` from decision vectors ``Z`` (B, n_z)."""
        Z = np.atleast_2d(np.asarray(Z, float))
        return Z if self.output_map is None else Z @ self.output_map.T

    def slacks(self, Z) -> np.ndarray:
        """``(B, n_slack)`` soft-constraint slacks ``s = z[-n_slack:] - δ`` from ``Z`` (B, n_z)."""
        Z = np.atleast_2d(np.asarray(Z, float))
        return Z[:, self.n_z - self.n_slack:] - self.slack_shift

    def primal(self, lam, X) -> np.ndarray:
        """``(B, n_z)`` decision vectors ``z(λ) = -H⁻¹(F θ + Gᵀ λ)`` for multipliers (B, m), parameters (B, n_θ)."""
        return -(np.atleast_2d(X) @ self.F.T + np.atleast_2d(lam) @ self.G) @ self.H_inv

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
        """``(B, n_z)`` minimiser without constraints, ``-H⁻¹ F θ``."""
        X = self.check_parameters(X)
        return -X @ (self.H_inv @ self.F).T

    def slack(self, Z: np.ndarray, X: np.ndarray) -> np.ndarray:
        """``(B, m)`` constraint margin ``w + E θ - G z`` (negative = violated)."""
        return self.w + X @ self.E.T - Z @ self.G.T

    def objective(self, Z, X) -> np.ndarray:
        """``(B,)`` value of ``½zᵀHz + θᵀFᵀz`` (the constant left out)."""
        X = self.check_parameters(X)
        Z = np.atleast_2d(np.asarray(Z, float))
        return 0.5 * np.einsum("bi,ij,bj->b", Z, self.H, Z) + np.einsum("bi,ij,bj->b", Z, self.F, X)

    def predict(self, X, U) -> np.ndarray:
        """Predicted trajectories ``(B, N+1, n_x)`` (``x_0 = x`` first) from states ``X`` (B, n_x) and
        input sequences ``U`` (B, N·n_u)."""
        if self.Phi is None:
            raise ProblemDefinitionError(f"predict: QP '{self.name}' was given directly and has no prediction model")
        X = as_states(X, self.n_x)
        U = np.atleast_2d(np.asarray(U, float))
        if U.shape != (X.shape[0], self.n_U):
            raise ShapeError(f"U: expected shape (B, N·n_u) = ({X.shape[0]}, {self.n_U}), got {U.shape}")
        future = X @ self.Phi.T + U @ self.Gamma.T
        return np.concatenate([X[:, None, :], future.reshape(X.shape[0], self.horizon, self.n_x)], axis=1)

    def kkt_residuals(self, U, lam, X) -> KKTResiduals:
        """KKT residuals of primal ``z`` (B, n_z) and multipliers ``lam`` (B, m) at parameters ``X`` (B, n_θ)."""
        X = self.check_parameters(X)
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
        """``(B,)`` largest violation of the parameter-only rows at ``X`` (B, n_θ) (0 where none or satisfied)."""
        X = self.check_parameters(X)
        if self.state_only is None or self.state_only[0].shape[0] == 0:
            return np.zeros(X.shape[0])
        E0, w0 = self.state_only
        return np.maximum(0.0, (-(w0 + X @ E0.T)).max(axis=1))

    def with_row_scaling(self, scale) -> "CondensedQP":
        """The same QP with constraint row ``i`` multiplied by ``scale[i] > 0`` (same solution ``U``)."""
        scale = np.broadcast_to(np.asarray(scale, float), (self.m,))
        if np.any(~(scale > 0)) or not np.all(np.isfinite(scale)):
            raise ProblemDefinitionError("scale: row scales must be finite and > 0 (a sign flip changes the QP)")
        return self.replace(G=scale[:, None] * self.G, w=scale * self.w, E=scale[:, None] * self.E,
                            source=self.source + " (rows rescaled)")

    def replace(self, **changes) -> "CondensedQP":
        """A copy with some fields changed (validated again, derived matrices recomputed)."""
        return dataclasses.replace(self, _cache={}, **changes)

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
    >>> soft = mpc2nn.condense(mpc2nn.systems.double_integrator().replace(soft_state_penalty=(1.0, 1e3)))
    >>> soft.n_z, soft.n_slack, soft.n_U    # one slack per state and step (N·n_x = 40)
    (60, 40, 20)
    """
    if not isinstance(problem, MPCProblem):
        raise ProblemDefinitionError(f"condense: expected an MPCProblem, got {type(problem).__name__}")
    A, B, N = problem.A, problem.B, problem.horizon
    n_x, n_u = problem.n_x, problem.n_u
    nU = N * n_u
    Phi, Gamma = _prediction_matrices(A, B, N)

    sizes, (S_x, S_up, S_xr, S_ur) = _parameter_layout(problem)
    n_theta = S_x.shape[1]

    # cost in U: ½UᵀH_U U + θᵀF_UᵀU (half of the stage sums), ΔU = D U - e u_prev
    Qbar = np.kron(np.eye(N), problem.Q)
    Qbar[-n_x:, -n_x:] = problem.P
    Rbar = np.kron(np.eye(N), problem.R)
    D = np.eye(nU) - np.eye(nU, k=-n_u)
    e = np.zeros((nU, n_u))
    e[:n_u] = np.eye(n_u)
    ones_x, ones_u = np.kron(np.ones((N, 1)), np.eye(n_x)), np.kron(np.ones((N, 1)), np.eye(n_u))
    H = Gamma.T @ Qbar @ Gamma + Rbar
    F = Gamma.T @ Qbar @ (Phi @ S_x - ones_x @ S_xr) - Rbar @ ones_u @ S_ur
    if problem.du_weight is not None:
        Sbar = np.kron(np.eye(N), problem.du_weight)
        H = H + D.T @ Sbar @ D
        F = F - D.T @ Sbar @ e @ S_up

    rows_G, rows_w, rows_E, labels, soft_rows = [], [], [], [], []
    state_E, state_w = [], []
    soft = problem.soft_state_penalty is not None

    def add(g, w_, e_theta, label, slack=None):
        """One row; ``slack`` names the slack that softens it (rows naming the same share it)."""
        rows_G.append(g), rows_w.append(w_), rows_E.append(e_theta), labels.append(label)
        soft_rows.append(slack if soft else None)

    no_theta = np.zeros(n_theta)
    for k in range(N):
        for i in range(n_u):
            g = np.zeros(nU)
            g[k * n_u + i] = 1.0
            if np.isfinite(problem.u_max[i]):
                add(g, problem.u_max[i], no_theta, f"u_max[{i}] at k={k}")
            if np.isfinite(problem.u_min[i]):
                add(-g, -problem.u_min[i], no_theta, f"u_min[{i}] at k={k}")
    for k in range(N):
        for i in range(n_u):
            r = k * n_u + i
            e_up = (e @ S_up)[r]  # u_prev enters the rate at k = 0 only
            if np.isfinite(problem.du_max[i]):
                add(D[r], problem.du_max[i], e_up, f"du_max[{i}] at k={k}")
            if np.isfinite(problem.du_min[i]):
                add(-D[r], -problem.du_min[i], -e_up, f"du_min[{i}] at k={k}")
    for k in range(1, N + 1):
        Gk, Pk = Gamma[(k - 1) * n_x:k * n_x], Phi[(k - 1) * n_x:k * n_x] @ S_x
        for i in range(n_x):
            if np.isfinite(problem.x_max[i]):
                add(Gk[i], problem.x_max[i], -Pk[i], f"x_max[{i}] at k={k}", f"x[{i}] at k={k}")
            if np.isfinite(problem.x_min[i]):  # one slack for both bounds: at most one can be violated
                add(-Gk[i], -problem.x_min[i], Pk[i], f"x_min[{i}] at k={k}", f"x[{i}] at k={k}")
    for c_idx, con in enumerate(problem.constraints):
        for k in range(N):
            Pk = S_x if k == 0 else Phi[(k - 1) * n_x:k * n_x] @ S_x
            Gk = np.zeros((n_x, nU)) if k == 0 else Gamma[(k - 1) * n_x:k * n_x]
            Su = np.zeros((n_u, nU))
            Su[:, k * n_u:(k + 1) * n_u] = np.eye(n_u)
            g_rows = con.C_x @ Gk + con.C_u @ Su
            e_rows = -con.C_x @ Pk
            for r in range(con.d.shape[0]):
                if not np.any(g_rows[r]):
                    if not soft:  # with soft constraints a row on the given state alone has no effect
                        state_E.append(e_rows[r]), state_w.append(con.d[r])
                else:
                    label = f"constraints[{c_idx}] row {r} at k={k}"
                    add(g_rows[r], con.d[r], e_rows[r], label, label if np.any(con.C_x[r]) else None)
    if problem.terminal_constraint is not None:
        C, d = problem.terminal_constraint.C, problem.terminal_constraint.d
        GN, PN = C @ Gamma[-n_x:], C @ Phi[-n_x:] @ S_x
        for r in range(d.shape[0]):
            add(GN[r], d[r], -PN[r], f"terminal row {r}", f"terminal row {r}")

    m = len(rows_G)
    G = np.array(rows_G).reshape(m, nU)
    E = np.array(rows_E).reshape(m, n_theta)
    w = np.array(rows_w, float)
    slack_of = np.array(soft_rows, dtype=object)

    # move blocking: U = T_b V
    T_b = _blocking_matrix(problem.move_blocking, N, n_u)
    H, F, G = T_b.T @ H @ T_b, T_b.T @ F, G @ T_b
    G, w, E, labels, slack_of, more_E, more_w = _drop_trivial_rows(G, w, E, labels, slack_of, problem.name)
    state_E += more_E
    state_w += more_w

    # soft constraints: one slack per softened quantity, shifted by δ = ρ_l / (2ρ_q) (no constant linear term)
    soft_mask = np.array([k is not None for k in slack_of], bool)
    names = list(dict.fromkeys(k for k in slack_of if k is not None))
    n_s, shift = len(names), 0.0
    if soft:
        rho_q, rho_l = problem.soft_state_penalty
        shift = rho_l / (2.0 * rho_q)
        nV = G.shape[1]
        S = np.zeros((G.shape[0], n_s))
        column = {k: j for j, k in enumerate(names)}
        rows = np.flatnonzero(soft_mask)
        S[rows, [column[slack_of[i]] for i in rows]] = -1.0
        G = np.vstack([np.hstack([G, S]), np.hstack([np.zeros((n_s, nV)), -np.eye(n_s)])])
        w = np.concatenate([w - shift * soft_mask, np.full(n_s, -shift)])
        E = np.vstack([E, np.zeros((n_s, n_theta))])
        labels = [lab + " (soft)" if s_ else lab for lab, s_ in zip(labels, soft_mask)]
        labels += [f"slack of {k} >= 0" for k in names]
        H = scipy.linalg.block_diag(H, rho_q * np.eye(n_s))
        F = np.vstack([F, np.zeros((n_s, n_theta))])
        T_b = np.hstack([T_b, np.zeros((nU, n_s))])

    output_map = None if T_b.shape == (nU, nU) and np.array_equal(T_b, np.eye(nU)) else T_b
    state_only = (np.array(state_E).reshape(-1, n_theta), np.array(state_w)) if state_E else None
    return CondensedQP(H, F, G, w, E, n_u, _frozen(Phi), _frozen(Gamma), problem,
                       tuple(labels), state_only, problem.name, problem.sample_box, "condense",
                       output_map, n_s, shift, tuple(sizes))


def _parameter_layout(problem: MPCProblem) -> tuple[list, tuple]:
    """``(sizes, (S_x, S_up, S_xr, S_ur))``: the parts of ``θ = (x, u_prev, x_ref, u_ref)`` the problem
    uses, and the matrices selecting each part from ``θ`` (zero for a part it does not use)."""
    n_x, n_u = problem.n_x, problem.n_u
    sizes = [("x", n_x)] + ([("u_prev", n_u)] if problem.uses_previous_input else []) + (
        [("x_ref", n_x), ("u_ref", n_u)] if problem.tracking else [])
    n_theta = sum(n for _, n in sizes)
    offsets = dict(zip([k for k, _ in sizes], np.cumsum([0] + [n for _, n in sizes])))
    selectors = []
    for k, n in (("x", n_x), ("u_prev", n_u), ("x_ref", n_x), ("u_ref", n_u)):
        S = np.zeros((n, n_theta))
        if k in offsets:
            S[:, offsets[k]:offsets[k] + n] = np.eye(n)
        selectors.append(S)
    return sizes, tuple(selectors)


def _blocking_matrix(blocks, N: int, n_u: int) -> np.ndarray:
    """``T_b`` (N·n_u, p·n_u) holding the input constant over each block (identity without blocking)."""
    if blocks is None:
        return np.eye(N * n_u)
    hold = np.zeros((N, len(blocks)))
    start = 0
    for j, b in enumerate(blocks):
        hold[start:start + b, j] = 1.0
        start += b
    return np.kron(hold, np.eye(n_u))


def _drop_trivial_rows(G, w, E, labels, slack_of, name):
    """Rows without decision variables or repeated: ``0 <= w`` is dropped, ``0 <= w + Eθ`` kept apart,
    ``0 <= w < 0`` is an error; exact duplicates of an earlier row are dropped."""
    keep, state_E, state_w, seen = [], [], [], set()
    for i in range(G.shape[0]):
        if not np.any(G[i]):
            if np.any(E[i]):
                state_E.append(E[i]), state_w.append(w[i])
            elif w[i] < 0:
                raise ProblemDefinitionError(
                    f"constraint '{labels[i]}' of problem '{name}' holds for no input sequence "
                    f"(it reads 0 <= {w[i]:g})")
            continue
        key = (G[i].tobytes(), E[i].tobytes(), float(w[i]))
        if key in seen:
            continue
        seen.add(key)
        keep.append(i)
    keep = np.array(keep, dtype=np.int64)
    return (G[keep], w[keep], E[keep], [labels[i] for i in keep], slack_of[keep], state_E, state_w)


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
    _, (S_x, S_up, S_xr, S_ur) = _parameter_layout(problem)
    n_theta = S_x.shape[1]
    soft = problem.soft_state_penalty is not None

    # constraint blocks: (A_x (p, nX), A_u (p, nU), lower, upper, L (p, n_θ), soften: -1 upper / +1 lower / 0)
    blocks = []

    def add(Ax, Au, lo, hi, L, side=0):
        blocks.append((sp.csr_matrix(Ax), sp.csr_matrix(Au), np.asarray(lo, float), np.asarray(hi, float),
                       np.asarray(L, float), side))

    # dynamics: x_1 - B u_0 = A x, x_{k+1} - A x_k - B u_k = 0
    L_eq = np.zeros((nX, n_theta))
    L_eq[:n_x] = -A @ S_x
    add(sp.kron(sp.eye(N), -sp.eye(n_x)) + sp.kron(sp.eye(N, k=-1), A), sp.kron(sp.eye(N), B),
        np.zeros(nX), np.zeros(nX), L_eq)
    add(sp.csr_matrix((nU, nX)), sp.eye(nU), np.tile(problem.u_min, N), np.tile(problem.u_max, N),
        np.zeros((nU, n_theta)))
    if np.isfinite(problem.du_min).any() or np.isfinite(problem.du_max).any():
        D = sp.eye(nU) - sp.eye(nU, k=-n_u)
        L = np.zeros((nU, n_theta))
        L[:n_u] = S_up  # Δu_0 = u_0 - u_prev
        add(sp.csr_matrix((nU, nX)), D, np.tile(problem.du_min, N), np.tile(problem.du_max, N), L)
    if problem.move_blocking is not None:
        starts = np.cumsum((0,) + problem.move_blocking[:-1])
        held = [k for k in range(1, N) if k not in starts]
        if held:
            rows = sp.vstack([sp.hstack([sp.csr_matrix((n_u, (k - 1) * n_u)), -sp.eye(n_u), sp.eye(n_u),
                                         sp.csr_matrix((n_u, (N - k - 1) * n_u))]) for k in held])
            add(sp.csr_matrix((len(held) * n_u, nX)), rows, np.zeros(len(held) * n_u),
                np.zeros(len(held) * n_u), np.zeros((len(held) * n_u, n_theta)))
    for bound, side in ((problem.x_max, -1), (problem.x_min, 1)):
        fin = np.flatnonzero(np.isfinite(bound))
        if fin.size:
            pick = sp.kron(sp.eye(N), sp.eye(n_x).tocsr()[fin])
            p = N * fin.size
            val = np.tile(bound[fin], N)
            lo, hi = (np.full(p, -np.inf), val) if side < 0 else (val, np.full(p, np.inf))
            add(pick, sp.csr_matrix((p, nU)), lo, hi, np.zeros((p, n_theta)), side)
    for con in problem.constraints:
        p = con.d.shape[0]
        # k = 0: C_u u_0 <= d - C_x x ; k >= 1: C_x x_k + C_u u_k <= d
        L = np.zeros((N * p, n_theta))
        L[:p] = -con.C_x @ S_x
        keep = np.ones(N * p, bool)  # rows on the given state alone (k = 0, C_u = 0) have only l <= 0 <= u(θ)
        mixed = np.tile(np.any(con.C_x, axis=1), N)
        Ax = sp.kron(sp.eye(N, k=-1), con.C_x).tocsr()
        Au = sp.kron(sp.eye(N), con.C_u).tocsr()
        for rows, side in ((keep & mixed, -1), (keep & ~mixed, 0)):
            if rows.any():
                add(Ax[rows], Au[rows], np.full(rows.sum(), -np.inf), np.tile(con.d, N)[rows], L[rows],
                    side if soft else 0)
    if problem.terminal_constraint is not None:
        C, d = problem.terminal_constraint.C, problem.terminal_constraint.d
        Ax = sp.hstack([sp.csr_matrix((C.shape[0], nX - n_x)), C])
        add(Ax, sp.csr_matrix((C.shape[0], nU)), np.full(d.shape[0], -np.inf), d, np.zeros((d.shape[0], n_theta)),
            -1)

    soft_counts = [blk[0].shape[0] if (soft and blk[5] != 0) else 0 for blk in blocks]
    n_s = sum(soft_counts)
    rows, lo, hi, Lx = [], [], [], []
    used = 0
    for (Ax, Au, l_, u_, L, side), c in zip(blocks, soft_counts):
        S = sp.csr_matrix((Ax.shape[0], n_s))
        if c:  # x <= x_max + s (side -1), x >= x_min - s (side +1)
            S = sp.hstack([sp.csr_matrix((c, used)), side * sp.eye(c), sp.csr_matrix((c, n_s - used - c))]).tocsr()
            used += c
        rows.append(sp.hstack([Ax, Au, S])), lo.append(l_), hi.append(u_), Lx.append(L)
    q_x = np.zeros((nX + nU + n_s, n_theta))
    q0 = np.zeros(nX + nU + n_s)
    Qbar = sp.block_diag([problem.Q] * (N - 1) + [problem.P])
    Rbar = sp.kron(sp.eye(N), problem.R)
    Pu = Rbar
    if problem.du_weight is not None:
        D = sp.eye(nU) - sp.eye(nU, k=-n_u)
        Sbar = sp.kron(sp.eye(N), problem.du_weight)
        Pu = Pu + D.T @ Sbar @ D
        e = np.zeros((nU, n_u))
        e[:n_u] = np.eye(n_u)
        q_x[nX:nX + nU] -= D.T @ (Sbar @ (e @ S_up))
    if problem.tracking:
        q_x[:nX] = -(Qbar @ np.kron(np.ones((N, 1)), np.eye(n_x))) @ S_xr
        q_x[nX:nX + nU] -= (Rbar @ np.kron(np.ones((N, 1)), np.eye(n_u))) @ S_ur
    P_blocks = [Qbar, Pu]
    if n_s:
        rho_q, rho_l = problem.soft_state_penalty
        P_blocks.append(rho_q * sp.eye(n_s))
        q0[nX + nU:] = rho_l / 2.0
        rows.append(sp.hstack([sp.csr_matrix((n_s, nX + nU)), sp.eye(n_s)]))
        lo.append(np.zeros(n_s)), hi.append(np.full(n_s, np.inf)), Lx.append(np.zeros((n_s, n_theta)))
    return SparseQP(P=sp.block_diag(P_blocks, format="csc"), q_x=q_x, A=sp.vstack(rows, format="csc"),
                    l0=np.concatenate(lo), u0=np.concatenate(hi), L_x=np.vstack(Lx), n_states=nX, q0=q0,
                    n_inputs=nU)
