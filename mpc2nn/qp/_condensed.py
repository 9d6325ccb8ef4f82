"""The condensed parametric QP :class:`CondensedQP`."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from .._checks import as_matrix, as_states, check_pd, frozen, real_array
from ..exceptions import ProblemDefinitionError, ShapeError
from ..problem import MPCProblem
from ._kkt import KKTResiduals, kkt_residuals
from ._parameters import ParameterLayout, parameter_parts
from ._sparse import SparseQP, sparse_form

__all__ = ["CondensedQP", "KKTResiduals"]


@dataclass(frozen=True, eq=False, kw_only=True)
class CondensedQP:
    """The parametric QP ``min ½zᵀHz + θᵀFᵀz`` subject to ``Gz <= w + Eθ``, ``U = Tz``, of an MPC problem.

    Built by :func:`~mpc2nn.condense` (or given directly, keyword arguments only); validated at
    construction. Derived matrices (``H⁻¹``, the dual Hessian ``G H⁻¹ Gᵀ``, the sparse form) are
    computed once, on first use.

    Attributes
    ----------
    H : ndarray, shape (n_z, n_z)
        Positive definite Hessian (``n_z = N·n_u`` for a plain problem).
    F : ndarray, shape (n_z, n_θ)
        Linear term.
    G : ndarray, shape (m, n_z)
        Constraint matrix.
    w : ndarray, shape (m,)
        Constraint offsets.
    E : ndarray, shape (m, n_θ)
        Constraint dependence on the parameters.
    n_u : int
        Inputs per stage (``u_0`` is ``U[:n_u]``).
    Phi : ndarray, shape (N·n_x, n_x), or None
        Prediction ``(x_1..x_N) = Phi x + Gamma U`` from the state ``x`` and the input
        sequence ``U``; ``None`` when the QP was given directly.
    Gamma : ndarray, shape (N·n_x, N·n_u), or None
        See ``Phi``.
    problem : MPCProblem or None
        The problem it was condensed from.
    row_labels : tuple of str
        ``m`` names, one per constraint row (default ``"row i"``).
    state_only : (E0, w0) or None
        Rows ``0 <= w0 + E0 θ`` that restrict only the parameters, shapes (p, n_θ) and (p,).
    name : str
        Label used in reports and error messages.
    sample_box : (lo, hi) or None
        Box of states, arrays of shape (n_x,) each, that samplers draw from by default.
    source : str
        Provenance (``"condense"``, ``"given"``, ``"to_qp (...)"``, plus the variants applied).
    output_map : ndarray, shape (N·n_u, n_z), or None
        ``T`` with ``U = T z``; ``None`` for ``T = I``.
    n_slack : int
        Number of soft-constraint slacks, the last entries of ``z``.
    slack_shift : float or ndarray, shape (n_slack,)
        ``δ``: the slacks are ``z[-n_slack:] - δ`` (one number, or one per slack).
    parameter_sizes : tuple of (str, int)
        The layout of ``θ`` as ``(name, size)`` pairs (default ``(("x", n_θ),)``);
        :attr:`layout` is the same as a :class:`ParameterLayout`.
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
    slack_shift: float | np.ndarray = 0.0
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
        if np.ndim(self.slack_shift) == 0:
            object.__setattr__(self, "slack_shift", float(self.slack_shift))
        else:  # one shift per slack (state and output slacks with different penalties)
            object.__setattr__(self, "slack_shift", frozen(as_matrix(
                "slack_shift", self.slack_shift, ("n_slack",), (self.n_slack,))))
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

    def __repr__(self) -> str:
        slack = f", {self.n_slack} slacks" if self.n_slack else ""
        return (f"CondensedQP({self.name!r}: n_z={self.n_z}{slack}, m={self.m} rows, N·n_u={self.n_U}, "
                f"θ = {self.layout.describe()}; from {self.source})")

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

    def parameters(self, x, u_prev=None, x_ref=None, u_ref=None, y_ref=None) -> np.ndarray:
        """The network input ``θ`` (B, n_θ) from its parts (see :meth:`ParameterLayout.build`).

        Exactly the parts in :attr:`parameter_sizes` must be given: ``u_prev`` for
        problems with input-rate bounds or weights, ``x_ref`` and ``u_ref`` for
        tracking problems, ``y_ref`` for tracking problems with an output weight. Each part is
        ``(n,)`` (repeated over the batch) or ``(B, n)``.

        Parameters
        ----------
        x : array_like, shape (B, n_x) or (n_x,)
            States.
        u_prev : array_like, shape (B, n_u) or (n_u,), optional
            Inputs applied at the previous step.
        x_ref : array_like, shape (B, n_x) or (n_x,), optional
            State references.
        u_ref : array_like, shape (B, n_u) or (n_u,), optional
            Input references.
        y_ref : array_like, shape (B, n_y) or (n_y,), optional
            Output references.

        Returns
        -------
        ndarray, shape (B, n_θ)
        """
        return self.layout.build(x, u_prev=u_prev, x_ref=x_ref, u_ref=u_ref, y_ref=y_ref)

    def check_parameters(self, theta, name: str = "X") -> np.ndarray:
        """``theta`` as a float array (B, n_θ); a single vector becomes B = 1.

        Parameters
        ----------
        theta : array_like, shape (B, n_θ) or (n_θ,)
            Parameter vectors (NaN and infinite entries are passed through).
        name : str
            Argument name used in the error message.

        Returns
        -------
        ndarray, shape (B, n_θ)

        Raises
        ------
        ShapeError
            A wrong shape; the message names the layout of ``θ``.
        """
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
        """``(B, N·n_u)`` input sequences ``U = T z`` from decision vectors.

        Parameters
        ----------
        Z : array_like, shape (B, n_z) or (n_z,)
            Decision vectors.

        Returns
        -------
        ndarray, shape (B, N·n_u)
        """
        Z = as_states(Z, self.n_z, "Z", "n_z", "decision vectors")
        return Z if self.output_map is None else Z @ self.output_map.T

    def soft_slacks(self, Z) -> np.ndarray:
        """``(B, n_slack)`` soft-constraint slacks ``s = z[-n_slack:] - δ``.

        Parameters
        ----------
        Z : array_like, shape (B, n_z) or (n_z,)
            Decision vectors.

        Returns
        -------
        ndarray, shape (B, n_slack)
        """
        Z = as_states(Z, self.n_z, "Z", "n_z", "decision vectors")
        return Z[:, self.n_z - self.n_slack:] - self.slack_shift

    def primal(self, lam, theta) -> np.ndarray:
        """``(B, n_z)`` decision vectors ``z(λ) = -H⁻¹(F θ + Gᵀ λ)``, the minimisers of the Lagrangian.

        Parameters
        ----------
        lam : array_like, shape (B, m) or (m,)
            Multipliers ``λ``.
        theta : array_like, shape (B, n_θ) or (n_θ,)
            Parameters (not checked against the layout).

        Returns
        -------
        ndarray, shape (B, n_z)
        """
        return -(np.atleast_2d(theta) @ self.F.T + np.atleast_2d(lam) @ self.G) @ self.H_inv

    def unconstrained(self, theta) -> np.ndarray:
        """``(B, n_z)`` minimiser without constraints, ``-H⁻¹ F θ``.

        Parameters
        ----------
        theta : array_like, shape (B, n_θ) or (n_θ,)
            Parameters.

        Returns
        -------
        ndarray, shape (B, n_z)
        """
        theta = self.check_parameters(theta)
        return -theta @ (self.H_inv @ self.F).T

    def margin(self, Z: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """``(B, m)`` constraint margin ``w + E θ - G z`` (negative = violated).

        Parameters
        ----------
        Z : ndarray, shape (B, n_z)
            Decision vectors.
        theta : ndarray, shape (B, n_θ)
            Parameters.

        Returns
        -------
        ndarray, shape (B, m)
        """
        return self.w + theta @ self.E.T - Z @ self.G.T

    def objective(self, Z, theta) -> np.ndarray:
        """``(B,)`` value of ``½zᵀHz + θᵀFᵀz`` (the constant left out).

        Parameters
        ----------
        Z : array_like, shape (B, n_z) or (n_z,)
            Decision vectors.
        theta : array_like, shape (B, n_θ) or (n_θ,)
            Parameters.

        Returns
        -------
        ndarray, shape (B,)
        """
        theta = self.check_parameters(theta)
        Z = as_states(Z, self.n_z, "Z", "n_z", "decision vectors")
        _same_batch(theta.shape[0], Z=Z)
        return 0.5 * np.einsum("bi,ij,bj->b", Z, self.H, Z) + np.einsum("bi,ij,bj->b", Z, self.F, theta)

    def predict(self, X, U) -> np.ndarray:
        """Predicted trajectories of the QP's model, ``x_0 = x`` first.

        Parameters
        ----------
        X : array_like, shape (B, n_x) or (n_x,)
            Initial states.
        U : array_like, shape (B, N·n_u)
            Input sequences.

        Returns
        -------
        ndarray, shape (B, N+1, n_x)

        Raises
        ------
        ProblemDefinitionError
            The QP was given directly, without prediction matrices.
        """
        Phi, Gamma = self._prediction()
        X = as_states(X, self.n_x)
        U = np.atleast_2d(real_array("U", U, "input sequences (B, N·n_u)"))
        if U.shape != (X.shape[0], self.n_U):
            raise ShapeError(f"U: expected shape (B, N·n_u) = ({X.shape[0]}, {self.n_U}), got {U.shape}")
        future = X @ Phi.T + U @ Gamma.T
        return np.concatenate([X[:, None, :], future.reshape(X.shape[0], self.horizon, self.n_x)], axis=1)

    def kkt_residuals(self, Z, lam, theta, *, margin=None) -> KKTResiduals:
        """KKT residuals of a primal-dual pair at a batch of parameters.

        The relative residuals judge each row and component at its own scale (see
        :class:`KKTResiduals`); non-finite inputs give NaN or ``inf``, never a pass.

        Parameters
        ----------
        Z : array_like, shape (B, n_z)
            Decision vectors.
        lam : array_like, shape (B, m)
            Multipliers.
        theta : array_like, shape (B, n_θ) or (n_θ,)
            Parameters.
        margin : ndarray, shape (B, m), optional
            ``w + E θ - G z`` when computed already.

        Returns
        -------
        KKTResiduals
        """
        theta = self.check_parameters(theta)
        Z = as_states(Z, self.n_z, "Z", "n_z", "decision vectors")
        lam = as_states(lam, self.m, "lam", "m", "multipliers")
        _same_batch(theta.shape[0], Z=Z, lam=lam)
        return kkt_residuals(self.H, self.F, self.G, self.w, self.E, self._abs, Z, lam, theta, margin)

    @cached_property
    def _abs(self) -> dict:
        """Entrywise absolute values of the data (and the rows' ∞-norms of ``G``) for the residuals' scales."""
        G = np.abs(self.G)
        return dict(H=np.abs(self.H), F=np.abs(self.F), G=G, w=np.abs(self.w), E=np.abs(self.E),
                    G_rownorm=G.max(axis=1, initial=0.0))

    def state_only_violation(self, theta) -> np.ndarray:
        """``(B,)`` largest violation of the parameter-only rows :attr:`state_only`.

        Parameters
        ----------
        theta : array_like, shape (B, n_θ) or (n_θ,)
            Parameters.

        Returns
        -------
        ndarray, shape (B,)
            ``max(0, max_i -(w0 + E0 θ)_i)``; 0 where the QP has no such rows or they hold.
        """
        theta = self.check_parameters(theta)
        if self.state_only is None or self.state_only[0].shape[0] == 0:
            return np.zeros(theta.shape[0])
        E0, w0 = self.state_only
        return np.maximum(0.0, (-(w0 + theta @ E0.T)).max(axis=1))

    # --- variants -------------------------------------------------------------
    def with_row_scaling(self, scale) -> CondensedQP:
        """The same QP with constraint row ``i`` multiplied by ``scale[i] > 0`` (same solution ``U``).

        Parameters
        ----------
        scale : float or array_like, shape (m,)
            Positive finite factors, one per row or one for all.

        Returns
        -------
        CondensedQP
            Multipliers of the new QP are those of this one divided by ``scale``.
        """
        arr = real_array("scale", scale, "positive numbers (m,)")
        if arr.shape not in ((), (self.m,)):
            raise ShapeError(f"scale: expected a number or shape (m,) = ({self.m},), got {arr.shape}")
        scale = np.broadcast_to(arr, (self.m,))
        if np.any(~(scale > 0)) or not np.all(np.isfinite(scale)):
            raise ProblemDefinitionError("scale: row scales must be finite and > 0 (a sign flip changes the QP)")
        return self.replace(G=scale[:, None] * self.G, w=scale * self.w, E=scale[:, None] * self.E,
                            source=self.source + " (rows rescaled)")

    def with_rows(self, rows) -> CondensedQP:
        """The QP with only some constraint rows (e.g. those an LP showed can be active in a box).

        Parameters
        ----------
        rows : array_like of int
            Indices of the rows kept, in the order wanted.

        Returns
        -------
        CondensedQP
            Without ``problem`` and ``state_only`` (it is no longer that problem's QP).
        """
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
        """A copy with some fields changed (validated again, derived matrices recomputed).

        Parameters
        ----------
        **changes
            New values of fields of :class:`CondensedQP`, by name.

        Returns
        -------
        CondensedQP
        """
        return dataclasses.replace(self, **changes)

    # --- names kept for compatibility -------------------------------------------
    def slack(self, Z: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """Former name of :meth:`margin` (kept for compatibility).

        Parameters
        ----------
        Z : ndarray, shape (B, n_z)
            Decision vectors.
        theta : ndarray, shape (B, n_θ)
            Parameters.

        Returns
        -------
        ndarray, shape (B, m)
        """
        return self.margin(Z, theta)

    def slacks(self, Z) -> np.ndarray:
        """Former name of :meth:`soft_slacks` (kept for compatibility).

        Parameters
        ----------
        Z : array_like, shape (B, n_z) or (n_z,)
            Decision vectors.

        Returns
        -------
        ndarray, shape (B, n_slack)
        """
        return self.soft_slacks(Z)


def _same_batch(B: int, **arrays: np.ndarray) -> None:
    """Raise ShapeError unless every array has ``B`` rows, one per parameter ``θ``."""
    for name, a in arrays.items():
        if a.shape[0] != B:
            raise ShapeError(f"{name}: expected one row per parameter θ (B = {B}), got {a.shape[0]} rows")
