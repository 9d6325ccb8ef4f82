"""The condensed parametric QP :class:`CondensedQP` and its KKT residuals."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from .._checks import as_matrix, as_states, check_pd, frozen, real_array
from ..exceptions import ProblemDefinitionError, ShapeError
from ..problem import MPCProblem
from ._parameters import ParameterLayout, parameter_parts
from ._sparse import SparseQP, sparse_form

__all__ = ["CondensedQP", "KKTResiduals"]


@dataclass(frozen=True)
class KKTResiduals:
    """Per-sample KKT residuals of a primal-dual pair ``(z, λ)`` at a batch of parameters ``θ``.

    Each attribute has shape ``(B,)``.

    Attributes
    ----------
    stationarity : ``‖H z + F θ + Gᵀ λ‖∞``
    primal : largest constraint violation ``max(0, max_i (G z - w - E θ)_i)``
    dual : largest negative multiplier ``max(0, max_i -λ_i)``
    complementarity : ``max_i |λ_i · s_i|`` with the margin ``s = w + E θ - G z``
    scale : per-sample scale ``max(1, ‖H z‖∞, ‖F θ‖∞, ‖w + E θ‖∞)``; the
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


@dataclass(frozen=True, eq=False, kw_only=True)
class CondensedQP:
    """The parametric QP ``min ½zᵀHz + θᵀFᵀz`` subject to ``Gz <= w + Eθ``, ``U = Tz``, of an MPC problem.

    Built by :func:`~mpc2nn.condense` (or given directly, keyword arguments only); validated at
    construction. Derived matrices (``H⁻¹``, the dual Hessian ``G H⁻¹ Gᵀ``, the sparse form) are
    computed once, on first use.

    Attributes
    ----------
    H : (n_z, n_z) positive definite Hessian (``n_z = N·n_u`` for a plain problem)
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
        (default ``(("x", n_θ),)``); :attr:`layout` is the same as a :class:`ParameterLayout`
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

    def __post_init__(self):
        H = check_pd("H", as_matrix("H", self.H, ("n_z", "n_z"), (None, None)))
        n_z = H.shape[0]
        F = as_matrix("F", self.F, ("n_z", "n_θ"), (n_z, None))
        n_theta = F.shape[1]
        G = as_matrix("G", np.reshape(self.G, (-1, n_z)) if np.size(self.G) == 0 else self.G,
                      ("m", "n_z"), (None, n_z))
        m = G.shape[0]
        w = as_matrix("w", self.w, ("m",), (m,))
        E = as_matrix("E", np.reshape(self.E, (m, n_theta)) if np.size(self.E) == 0 else self.E,
                      ("m", "n_θ"), (m, n_theta))
        T = None
        if self.output_map is not None:
            T = as_matrix("output_map", self.output_map, ("N·n_u", "n_z"), (None, n_z))
            object.__setattr__(self, "output_map", frozen(T))
        n_U = n_z if T is None else T.shape[0]
        if not isinstance(self.n_u, (int, np.integer)) or self.n_u < 1 or n_U % self.n_u:
            raise ShapeError(f"n_u: expected a positive divisor of N·n_u = {n_U}, got {self.n_u!r}")
        if not isinstance(self.n_slack, (int, np.integer)) or not 0 <= self.n_slack < n_z:
            raise ShapeError(f"n_slack: expected an integer in [0, n_z) = [0, {n_z}), got {self.n_slack!r}")
        sizes = parameter_parts(self.parameter_sizes) or (("x", n_theta),)
        if sum(v for _, v in sizes) != n_theta:
            raise ShapeError(f"parameter_sizes: the sizes {sizes} add up to {sum(v for _, v in sizes)}, "
                             f"expected n_θ = {n_theta} (columns of F)")
        ParameterLayout(sizes, self.name)  # validates the names and their order
        object.__setattr__(self, "parameter_sizes", sizes)
        object.__setattr__(self, "n_slack", int(self.n_slack))
        object.__setattr__(self, "slack_shift", float(self.slack_shift))
        for k, v in dict(H=H, F=F, G=G, w=w, E=E).items():
            object.__setattr__(self, k, frozen(v))
        object.__setattr__(self, "n_u", int(self.n_u))
        labels = tuple(self.row_labels) or tuple(f"row {i}" for i in range(m))
        if len(labels) != m:
            raise ShapeError(f"row_labels: expected m = {m} labels, got {len(labels)}")
        object.__setattr__(self, "row_labels", labels)
        if self.state_only is not None:
            E0 = as_matrix("state_only E0", self.state_only[0], ("p", "n_θ"), (None, n_theta))
            w0 = as_matrix("state_only w0", self.state_only[1], ("p",), (E0.shape[0],))
            object.__setattr__(self, "state_only", (frozen(E0), frozen(w0)))

    # --- sizes ------------------------------------------------------------
    @property
    def n_theta(self) -> int:
        """Length of the parameter vector ``θ``, the input of the QP's networks."""
        return self.F.shape[1]

    @property
    def n_x(self) -> int:
        """Number of states (the ``x`` part of ``θ``)."""
        return self.layout.n_x

    @property
    def n_z(self) -> int:
        """Number of decision variables."""
        return self.H.shape[0]

    @property
    def n_U(self) -> int:
        """Length ``N·n_u`` of the input sequence ``U = T z``."""
        return self.n_z if self.output_map is None else self.output_map.shape[0]

    @property
    def m(self) -> int:
        """Number of constraint rows."""
        return self.G.shape[0]

    @property
    def horizon(self) -> int:
        """``N = n_U / n_u``."""
        return self.n_U // self.n_u

    # --- the parameter θ ---------------------------------------------------
    @cached_property
    def layout(self) -> ParameterLayout:
        """The layout of ``θ`` (:attr:`parameter_sizes` as a :class:`ParameterLayout`)."""
        return ParameterLayout(self.parameter_sizes, self.name)

    @property
    def parameter_labels(self) -> tuple:
        """Names of the entries of ``θ``, e.g. ``("x[0]", "x[1]", "u_prev[0]")``."""
        return self.layout.labels

    def parameters(self, x, u_prev=None, x_ref=None, u_ref=None) -> np.ndarray:
        """The network input ``θ`` (B, n_θ) from its parts (see :meth:`ParameterLayout.build`).

        Each part is ``(n,)`` or ``(B, n)``; ``(n,)`` parts are repeated over the batch.
        Exactly the parts in :attr:`parameter_sizes` must be given: ``u_prev`` for
        problems with input-rate bounds or weights, ``x_ref`` and ``u_ref`` for
        tracking problems.
        """
        return self.layout.build(x, u_prev=u_prev, x_ref=x_ref, u_ref=u_ref)

    def check_parameters(self, theta, name: str = "X") -> np.ndarray:
        """``theta`` as a float array (B, n_θ); a single vector becomes B = 1. Errors name the layout of ``θ``."""
        return self.layout.check(theta, name)

    # --- derived matrices (computed once) ------------------------------------
    @cached_property
    def cholesky_inverse(self) -> np.ndarray:
        """``L⁻¹`` (n_z, n_z) for the Cholesky factor ``H = L Lᵀ`` (lower triangular)."""
        L = np.linalg.cholesky(self.H)
        return frozen(np.linalg.inv(L))

    @cached_property
    def H_inv(self) -> np.ndarray:
        """``H⁻¹ = L⁻ᵀ L⁻¹`` (n_z, n_z)."""
        Linv = self.cholesky_inverse
        return frozen(Linv.T @ Linv)

    @cached_property
    def dual_hessian(self) -> np.ndarray:
        """``M = G H⁻¹ Gᵀ`` (m, m), the matrix of the dual problem (and of ``W = I - ΓM``)."""
        Gbar = self.G @ self.cholesky_inverse.T
        return frozen(Gbar @ Gbar.T)

    @cached_property
    def dual_linear(self) -> np.ndarray:
        """``E + G H⁻¹ F`` (m, n_θ): the dual offset is ``q(θ) = w + (E + G H⁻¹ F) θ``."""
        return frozen(self.E + self.G @ (self.H_inv @ self.F))

    @cached_property
    def _sparse(self) -> SparseQP:
        if self.problem is None or self.source != "condense":
            raise ProblemDefinitionError(
                f"sparse_form: QP '{self.name}' was not condensed from an MPCProblem unchanged; "
                "only the condensed form exists")
        return sparse_form(self.problem)

    def sparse_form(self) -> SparseQP:
        """The states-and-inputs form, built from ``problem`` (only for QPs made by :func:`condense`)."""
        return self._sparse

    def _prediction(self) -> tuple[np.ndarray, np.ndarray]:
        """``(Phi, Gamma)``, or a named error for a QP given without a prediction model."""
        if self.Phi is None or self.Gamma is None:
            raise ProblemDefinitionError(f"predict: QP '{self.name}' was given directly and has no prediction model")
        return self.Phi, self.Gamma

    # --- maps between z, U, λ and θ -------------------------------------------
    def inputs(self, Z) -> np.ndarray:
        """``(B, N·n_u)`` input sequences ``U = T z`` from decision vectors ``Z`` (B, n_z)."""
        Z = np.atleast_2d(np.asarray(Z, float))
        return Z if self.output_map is None else Z @ self.output_map.T

    def soft_slacks(self, Z) -> np.ndarray:
        """``(B, n_slack)`` soft-constraint slacks ``s = z[-n_slack:] - δ`` from ``Z`` (B, n_z)."""
        Z = np.atleast_2d(np.asarray(Z, float))
        return Z[:, self.n_z - self.n_slack:] - self.slack_shift

    def primal(self, lam, theta) -> np.ndarray:
        """``(B, n_z)`` decision vectors ``z(λ) = -H⁻¹(F θ + Gᵀ λ)`` for multipliers (B, m), parameters (B, n_θ)."""
        return -(np.atleast_2d(theta) @ self.F.T + np.atleast_2d(lam) @ self.G) @ self.H_inv

    def unconstrained(self, theta) -> np.ndarray:
        """``(B, n_z)`` minimiser without constraints, ``-H⁻¹ F θ``."""
        theta = self.check_parameters(theta)
        return -theta @ (self.H_inv @ self.F).T

    def margin(self, Z: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """``(B, m)`` constraint margin ``w + E θ - G z`` (negative = violated)."""
        return self.w + theta @ self.E.T - Z @ self.G.T

    def objective(self, Z, theta) -> np.ndarray:
        """``(B,)`` value of ``½zᵀHz + θᵀFᵀz`` (the constant left out)."""
        theta = self.check_parameters(theta)
        Z = np.atleast_2d(np.asarray(Z, float))
        return 0.5 * np.einsum("bi,ij,bj->b", Z, self.H, Z) + np.einsum("bi,ij,bj->b", Z, self.F, theta)

    def predict(self, X, U) -> np.ndarray:
        """Predicted trajectories ``(B, N+1, n_x)`` (``x_0 = x`` first) from states ``X`` (B, n_x) and
        input sequences ``U`` (B, N·n_u).
        """
        Phi, Gamma = self._prediction()
        X = as_states(X, self.n_x)
        U = np.atleast_2d(np.asarray(U, float))
        if U.shape != (X.shape[0], self.n_U):
            raise ShapeError(f"U: expected shape (B, N·n_u) = ({X.shape[0]}, {self.n_U}), got {U.shape}")
        future = X @ Phi.T + U @ Gamma.T
        return np.concatenate([X[:, None, :], future.reshape(X.shape[0], self.horizon, self.n_x)], axis=1)

    def kkt_residuals(self, Z, lam, theta) -> KKTResiduals:
        """KKT residuals of primal ``Z`` (B, n_z) and multipliers ``lam`` (B, m) at parameters ``theta`` (B, n_θ)."""
        theta = self.check_parameters(theta)
        Z = np.atleast_2d(np.asarray(Z, float))
        lam = np.atleast_2d(np.asarray(lam, float)).reshape(theta.shape[0], self.m)
        Hz, Ft, GtL = Z @ self.H, theta @ self.F.T, lam @ self.G
        rhs = self.w + theta @ self.E.T
        s = rhs - Z @ self.G.T
        zero = np.zeros(theta.shape[0])
        with np.errstate(invalid="ignore"):
            return KKTResiduals(
                stationarity=np.abs(Hz + Ft + GtL).max(axis=1, initial=0.0),
                primal=np.maximum(zero, (-s).max(axis=1, initial=0.0)),
                dual=np.maximum(zero, (-lam).max(axis=1, initial=0.0)),
                complementarity=np.abs(lam * s).max(axis=1, initial=0.0),
                scale=np.maximum.reduce([np.ones(theta.shape[0]), np.abs(Hz).max(axis=1, initial=0.0),
                                         np.abs(Ft).max(axis=1, initial=0.0),
                                         np.abs(rhs).max(axis=1, initial=0.0)]),
            )

    def state_only_violation(self, theta) -> np.ndarray:
        """``(B,)`` largest violation of the parameter-only rows at ``theta`` (B, n_θ) (0 where none or satisfied)."""
        theta = self.check_parameters(theta)
        if self.state_only is None or self.state_only[0].shape[0] == 0:
            return np.zeros(theta.shape[0])
        E0, w0 = self.state_only
        return np.maximum(0.0, (-(w0 + theta @ E0.T)).max(axis=1))

    # --- variants -------------------------------------------------------------
    def with_row_scaling(self, scale) -> CondensedQP:
        """The same QP with constraint row ``i`` multiplied by ``scale[i] > 0`` (same solution ``U``)."""
        arr = real_array("scale", scale, "positive numbers (m,)")
        if arr.shape not in ((), (self.m,)):
            raise ShapeError(f"scale: expected a number or shape (m,) = ({self.m},), got {arr.shape}")
        scale = np.broadcast_to(arr, (self.m,))
        if np.any(~(scale > 0)) or not np.all(np.isfinite(scale)):
            raise ProblemDefinitionError("scale: row scales must be finite and > 0 (a sign flip changes the QP)")
        return self.replace(G=scale[:, None] * self.G, w=scale * self.w, E=scale[:, None] * self.E,
                            source=self.source + " (rows rescaled)")

    def with_rows(self, rows) -> CondensedQP:
        """The QP with only the constraint rows ``rows`` (e.g. those an LP showed can be active in a box)."""
        try:
            raw = np.asarray(rows) if not isinstance(rows, (str, bytes, dict)) else np.asarray(None)
        except ValueError:  # ragged
            raw = np.asarray(None)
        ok = raw.ndim == 1 and (raw.size == 0 or (raw.dtype.kind in "iu" and raw.min() >= 0 and raw.max() < self.m))
        if not ok:
            raise ShapeError(f"rows: expected indices of constraint rows, integers in [0, m) = [0, {self.m}), "
                             f"shape (k,), got {rows!r:.80}")
        rows = raw.astype(np.int64)
        return self.replace(G=self.G[rows], w=self.w[rows], E=self.E[rows], problem=None,
                            row_labels=tuple(self.row_labels[i] for i in rows), state_only=None,
                            name=self.name + " (pruned)", source=self.source + " (rows pruned by LP)")

    def replace(self, **changes) -> CondensedQP:
        """A copy with some fields changed (validated again, derived matrices recomputed)."""
        return dataclasses.replace(self, **changes)

    # --- names kept for compatibility -------------------------------------------
    def slack(self, Z: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """Former name of :meth:`margin` (kept for compatibility)."""
        return self.margin(Z, theta)

    def slacks(self, Z) -> np.ndarray:
        """Former name of :meth:`soft_slacks` (kept for compatibility)."""
        return self.soft_slacks(Z)
