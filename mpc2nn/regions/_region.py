"""One critical region: :class:`Region`, and how it is computed from an optimal active set.

For an active set ``A`` whose rows of ``G`` are linearly independent (LICQ), the KKT system of the
QP ``min ½zᵀHz + θᵀFᵀz s.t. Gz <= w + Eθ`` with the rows ``A`` held active and the others free gives
affine laws

    λ_A(θ) = -M_AA⁻¹ (w_A + D_A θ),     s(θ) = w + D θ + M_{:,A} λ_A(θ),
    z(θ) = -H⁻¹ (F θ + G_Aᵀ λ_A(θ)),     M = G H⁻¹ Gᵀ,  D = E + G H⁻¹ F,

and ``(z(θ), λ(θ))`` is a KKT point, hence *the* optimum (``H ≻ 0``), exactly on the polytope
``{θ : λ_A(θ) >= 0, s_N(θ) >= 0}`` (``N`` the other rows), intersected with the domain.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.linalg

from .._checks import frozen
from ..qp import CondensedQP

__all__ = ["Region", "QPData", "ROW_KINDS", "FACET_KINDS", "LICQ_TOL", "region_rows"]

#: What a row of a region's H-representation stands for: ``λ_i >= 0`` of an active row, ``s_i >= 0``
#: (the margin of an inactive row) or a row of the domain (the box or polytope given, or a constraint on
#: ``θ`` alone).
ROW_KINDS = ("multiplier", "constraint", "domain")

#: Verdicts on a facet: on the domain's boundary (a domain row: proven without LP), on the feasible
#: set's boundary (proven by an LP: the facet's hyperplane supports the feasible set within the domain),
#: interior (proven covered by the regions listed in ``neighbours``), or open (not decided in the budget).
FACET_KINDS = ("domain boundary", "feasible-set boundary", "interior", "open")

#: An active set satisfies LICQ when ``λmin(M_AA) > LICQ_TOL·max(1, λmax(M_AA))``; below it the
#: multiplier law ``M_AA⁻¹`` would lose more than about 9 of 16 digits.
LICQ_TOL = 1e-9


class QPData:
    """The matrices of a QP the enumeration uses, computed once (internal)."""

    def __init__(self, qp: CondensedQP):
        self.qp = qp
        self.Hinv = qp.H_inv
        self.G, self.F, self.w = qp.G, qp.F, qp.w
        self.D = qp.dual_linear
        self.M = qp.dual_hessian
        self.T = np.eye(qp.n_z) if qp.output_map is None else qp.output_map
        self.n_u, self.m, self.n_z, self.n = qp.n_u, qp.m, qp.n_z, qp.n_theta
        self.Linv = qp.cholesky_inverse
        self.Gbar = qp.G @ self.Linv.T

    def independent(self, active: np.ndarray) -> bool:
        """The rows ``active`` of ``G`` are linearly independent (LICQ), judged on ``M_AA``."""
        if active.size == 0:
            return True
        if active.size > self.n_z:
            return False
        eig = np.linalg.eigvalsh(self.M[np.ix_(active, active)])
        return bool(eig[0] > LICQ_TOL * max(1.0, eig[-1]))

    def laws(self, active: np.ndarray):
        """``(Λ (k, n+1), S (m, n+1), Z (n_z, n+1), magnitudes)``: ``[gain | offset]`` of ``λ_A``, ``s``, ``z``.

        Computed as a projection in the coordinates ``z̄ = Lᵀz`` (``H = LLᵀ``, ``Ḡ = G L⁻ᵀ``) with a QR
        factorisation ``Ḡ_Aᵀ = Q R``: ``z̄ = z̄₀ + Q R⁻ᵀ(D_A θ + w_A)``, ``λ_A = -R⁻¹R⁻ᵀ(D_A θ + w_A)``, and the
        margins ``s = w + Eθ - G z`` from ``z`` directly. The primal law then loses digits with ``cond(Ḡ_A)``,
        not with ``cond(M_AA) = cond(Ḡ_A)²`` as through ``M_AA⁻¹``.
        ``magnitudes = (mag_λ (k,), mag_s (m,))``: the size of the terms each row is computed from.
        """
        Dw = np.hstack([self.D, self.w[:, None]])
        Z0 = -self.Linv.T @ np.hstack([self.Linv @ self.F, np.zeros((self.n_z, 1))])  # unconstrained z
        if active.size:
            Q, R = np.linalg.qr(self.Gbar[active].T)
            V = scipy.linalg.solve_triangular(R, Dw[active], trans="T")
            Lam = -scipy.linalg.solve_triangular(R, V)
            Z = Z0 + self.Linv.T @ (Q @ V)
            Rinv = scipy.linalg.solve_triangular(R, np.eye(active.size))
            mag_lam = np.abs(Rinv @ Rinv.T) @ np.abs(Dw[active]).max(axis=1)
        else:
            Lam = np.zeros((0, self.n + 1))
            Z = Z0
            mag_lam = np.zeros(0)
        Ew = np.hstack([self.qp.E, self.w[:, None]])
        S = Ew - self.G @ Z
        mag_s = np.abs(Ew).max(axis=1) + np.abs(self.G) @ np.abs(Z).max(axis=1)
        return Lam, S, Z, (mag_lam, mag_s)


def region_rows(data: QPData, active: np.ndarray, Lam: np.ndarray, S: np.ndarray, mags):
    """Raw rows ``C θ <= e`` of the region of ``active``, their kinds and QP row indices, magnitudes.

    ``λ_A >= 0`` reads ``-Λ_θ θ <= Λ_0``; ``s_N >= 0`` reads ``-S_θ θ <= S_0``.
    """
    inactive = np.setdiff1d(np.arange(data.m), active)
    C = np.vstack([-Lam[:, :-1], -S[inactive, :-1]])
    e = np.concatenate([Lam[:, -1], S[inactive, -1]])
    kind = np.concatenate([np.zeros(active.size, np.int8), np.ones(inactive.size, np.int8)])
    index = np.concatenate([active, inactive]).astype(np.int64)
    mag = np.concatenate([mags[0], mags[1][inactive]])
    return C, e, kind, index, mag


@dataclass(frozen=True, eq=False, kw_only=True)
class Region:
    """A full-dimensional critical region: the polytope of ``θ`` on which one active set is optimal.

    Attributes
    ----------
    active : tuple of int
        The optimal active set (rows of the QP's ``G z <= w + E θ`` held as equalities), linearly
        independent rows (LICQ).
    A : (k, n_θ)
        Irredundant H-representation ``A θ <= b``, rows of unit Euclidean norm; every row is a facet.
    b : (k,)
        Right-hand side of ``A θ <= b``.
    row_kind : (k,) str
        What each row stands for (:data:`ROW_KINDS`): ``"multiplier"`` (``λ_i >= 0``), ``"constraint"``
        (``s_i >= 0``, the margin of inactive row ``i``) or ``"domain"``.
    row_index : (k,) int
        The QP row ``i`` of a multiplier or constraint row, the domain row of a domain row.
    centre : (n_θ,)
        Chebyshev centre: the centre of the largest ball inside the region.
    radius : float
        Chebyshev radius: the radius of that ball, above :data:`~mpc2nn.regions.MIN_RADIUS` times
        the domain's scale (the region is full-dimensional).
    vertices : (p, n_θ)
        The vertices (``p = 0`` where ``n_θ`` exceeds :data:`~mpc2nn.regions.VERTEX_MAX_DIM` and
        the region was described by LPs only).
    z_gain : (n_z, n_θ)
        ``z(θ) = z_gain θ + z_offset``, the whole decision vector.
    z_offset : (n_z,)
        Constant part of ``z(θ)``.
    U_gain : (N·n_u, n_θ)
        ``U(θ) = U_gain θ + U_offset = T z(θ)``, the input sequence.
    U_offset : (N·n_u,)
        Constant part of ``U(θ)``.
    u0_gain : (n_u, n_θ)
        ``u0(θ) = u0_gain θ + u0_offset``, the first input: the control law applied.
    u0_offset : (n_u,)
        Constant part of ``u0(θ)``.
    lambda_gain : (k_A, n_θ)
        ``λ_A(θ) = lambda_gain θ + lambda_offset``, the multipliers of the k_A = len(active) active
        rows (in the order of :attr:`active`; every other multiplier is 0).
    lambda_offset : (k_A,)
        Constant part of ``λ_A(θ)``.
    facet_kind : (k,) str
        Verdict on each facet (:data:`FACET_KINDS`).
    neighbours : tuple of tuple of int
        For each facet, the regions whose union was proven to cover it from the other side (empty for
        boundary and open facets).
    kkt_residual : float
        Largest relative KKT residual of the laws at the vertices (at the centre without vertices):
        the laws are exact by construction, this measures their rounding; a region is kept only when it
        is at most :data:`~mpc2nn.CERTIFICATE_TOL`.
    """

    active: tuple
    A: np.ndarray
    b: np.ndarray
    row_kind: np.ndarray
    row_index: np.ndarray
    centre: np.ndarray
    radius: float
    vertices: np.ndarray
    z_gain: np.ndarray
    z_offset: np.ndarray
    U_gain: np.ndarray
    U_offset: np.ndarray
    u0_gain: np.ndarray
    u0_offset: np.ndarray
    lambda_gain: np.ndarray
    lambda_offset: np.ndarray
    facet_kind: np.ndarray
    neighbours: tuple = field(default=())
    kkt_residual: float = 0.0

    def __post_init__(self):
        for name in ("A", "b", "centre", "vertices", "z_gain", "z_offset", "U_gain", "U_offset", "u0_gain",
                     "u0_offset", "lambda_gain", "lambda_offset"):
            object.__setattr__(self, name, frozen(getattr(self, name)))
        for name in ("row_kind", "facet_kind"):
            arr = np.asarray(getattr(self, name)).astype(str)
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)
        idx = np.asarray(self.row_index, np.int64)
        idx.setflags(write=False)
        object.__setattr__(self, "row_index", idx)
        object.__setattr__(self, "active", tuple(int(i) for i in self.active))
        object.__setattr__(self, "radius", float(self.radius))

    @property
    def n_facets(self) -> int:
        """Number of facets (rows of the H-representation)."""
        return self.A.shape[0]

    def contains(self, theta, tol: float = 0.0) -> np.ndarray:
        """``(B,)`` mask of the parameters ``theta`` (B, n_θ) with ``A θ <= b + tol``.

        Parameters
        ----------
        theta : array_like, shape (B, n_θ) or (n_θ,)
            Parameters; a single vector is promoted to ``B = 1`` (NaN entries give ``False``).
        tol : float
            Absolute slack on every row (rows have unit norm, so it is a distance in ``θ``);
            default 0, the closed polytope.

        Returns
        -------
        ndarray of bool, shape (B,)
        """
        theta = np.atleast_2d(np.asarray(theta, float))
        return np.all(theta @ self.A.T <= self.b + tol, axis=1)

    def u0(self, theta) -> np.ndarray:
        """``(B, n_u)`` first input of the region's law at ``theta`` (B, n_θ), inside the region or not.

        Parameters
        ----------
        theta : array_like, shape (B, n_θ) or (n_θ,)
            Parameters; a single vector is promoted to ``B = 1``.

        Returns
        -------
        ndarray, shape (B, n_u)
            ``u0_gain θ + u0_offset``: the optimal first input where ``θ`` lies in the region,
            the affine law's extension elsewhere.
        """
        return np.atleast_2d(theta) @ self.u0_gain.T + self.u0_offset

    def U(self, theta) -> np.ndarray:
        """``(B, N·n_u)`` input sequence of the region's law at ``theta`` (B, n_θ).

        Parameters
        ----------
        theta : array_like, shape (B, n_θ) or (n_θ,)
            Parameters; a single vector is promoted to ``B = 1``.

        Returns
        -------
        ndarray, shape (B, N·n_u)
            ``U_gain θ + U_offset``, inside the region or not (optimal inside).
        """
        return np.atleast_2d(theta) @ self.U_gain.T + self.U_offset

    def z(self, theta) -> np.ndarray:
        """``(B, n_z)`` decision vector of the region's law at ``theta`` (B, n_θ).

        Parameters
        ----------
        theta : array_like, shape (B, n_θ) or (n_θ,)
            Parameters; a single vector is promoted to ``B = 1``.

        Returns
        -------
        ndarray, shape (B, n_z)
            ``z_gain θ + z_offset``, inside the region or not (optimal inside).
        """
        return np.atleast_2d(theta) @ self.z_gain.T + self.z_offset

    def multipliers(self, theta, m: int) -> np.ndarray:
        """``(B, m)`` multipliers of all ``m`` QP rows (zero off the active set) at ``theta`` (B, n_θ).

        Parameters
        ----------
        theta : array_like, shape (B, n_θ) or (n_θ,)
            Parameters; a single vector is promoted to ``B = 1``.
        m : int
            Number of rows of the QP's ``G`` (``qp.m``): the width of the result.

        Returns
        -------
        ndarray, shape (B, m)
            ``λ_A(θ)`` in the columns of :attr:`active`, 0 elsewhere; inside the region or not
            (optimal, and nonnegative, inside).
        """
        theta = np.atleast_2d(theta)
        lam = np.zeros((theta.shape[0], m))
        if self.active:
            lam[:, list(self.active)] = theta @ self.lambda_gain.T + self.lambda_offset
        return lam
