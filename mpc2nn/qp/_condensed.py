"""The condensed parametric QP :class:`CondensedQP` and its KKT residuals."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from .._checks import as_matrix, as_states, check_pd, frozen
from ..exceptions import ProblemDefinitionError, ShapeError
from ..problem import MPCProblem
from ._sparse import SparseQP, sparse_form

__all__ = ["CondensedQP", "KKTResiduals"]


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
            object.__setattr__(self, "output_map", frozen(T))
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
            object.__setattr__(self, k, frozen(v))
        object.__setattr__(self, "n_u", int(self.n_u))
        labels = tuple(self.row_labels) or tuple(f"row {i}" for i in range(m))
        if len(labels) != m:
            raise ShapeError(f"row_labels: expected m = {m} labels, got {len(labels)}")
        object.__setattr__(self, "row_labels", labels)
        if self.state_only is not None:
            E0 = as_matrix("state_only E0", self.state_only[0], ("p", "n_x"), (None, n_x))
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
                                                 f"its parameters are θ = ({self.layout_text()})")
                continue
            if v is None:
                raise ProblemDefinitionError(f"{k}: missing; QP '{self.name}' needs it because {need[k]}. "
                                             f"Its parameters are θ = ({self.layout_text()})")
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

    def layout_text(self) -> str:
        return ", ".join(f"{k} ({n})" for k, n in self.parameter_sizes)

    def check_parameters(self, X, name: str = "X") -> np.ndarray:
        """``X`` as a float array (B, n_θ); a single vector becomes B = 1. Errors name the layout of ``θ``."""
        if self.parameter_sizes == (("x", self.n_theta),):
            return as_states(X, self.n_theta, name)
        try:
            return as_states(X, self.n_theta, name, sym="n_θ")
        except ShapeError as exc:
            raise ShapeError(f"{exc}; the input of QP '{self.name}' is θ = ({self.layout_text()}), "
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
            self._cache["H_inv"] = frozen(Linv.T @ Linv)
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
            self._cache["sparse"] = sparse_form(self.problem)
        return self._cache["sparse"]
