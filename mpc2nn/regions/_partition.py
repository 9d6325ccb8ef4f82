"""The result of the enumeration: :class:`Partition` (regions, certificate, point location, pieces)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from .._checks import frozen
from ..exceptions import ProblemDefinitionError, ShapeError
from ..problem import Polytope
from ..qp import CondensedQP
from ..status import Proof

__all__ = ["Partition", "Pieces", "OpenFacet", "PIECE_TOL", "LOCATE_TOL"]

#: Two first-input laws ``u0 = K θ + k`` are one piece when their gains and offsets differ by at most
#: ``PIECE_TOL·max(1, |entries|)`` (offsets compared after scaling the gain by the domain's scale, so
#: both are in units of u): the laws of neighbouring regions that agree are computed from different active
#: sets and differ by rounding only, about 1e-12 relative.
PIECE_TOL = 1e-8

#: Point location: a point belongs to a region when it violates none of its rows by more than
#: ``LOCATE_TOL·scale`` (the domain's scale); points between regions by rounding are located, the law
#: being continuous.
LOCATE_TOL = 1e-9

#: Points per chunk of point location (each chunk holds a (chunk, total rows) array).
LOCATE_CHUNK = 2048


@dataclass(frozen=True)
class OpenFacet:
    """A facet the certificate could not decide: facet ``row`` of region ``region``, ``point`` on it.

    Attributes
    ----------
    region : int
        Index of the region in :attr:`Partition.regions`.
    row : int
        Index of the facet: the row of the region's ``A θ <= b``.
    point : (n_θ,)
        A point in the facet's relative interior (the mean of its vertices, or the centre of the
        largest ball within its hyperplane where vertices are not computed).
    """

    region: int
    row: int
    point: np.ndarray


@dataclass(frozen=True, kw_only=True)
class Pieces:
    """The distinct first-input laws of a partition: ``u0 = gain[p] θ + offset[p]`` on the regions of piece p.

    Attributes
    ----------
    gain : (P, n_u, n_θ)
        Gain ``K`` of each piece's law ``u0 = K θ + k``.
    offset : (P, n_u)
        Offset ``k`` of each piece's law.
    region_piece : (R,) int
        The piece of each region of the partition (in the order of :attr:`Partition.regions`).
    """

    gain: np.ndarray
    offset: np.ndarray
    region_piece: np.ndarray

    @property
    def n_pieces(self) -> int:
        """Number of distinct first-input laws."""
        return self.offset.shape[0]


@dataclass(frozen=True, eq=False, kw_only=True)
class Partition:
    """Critical regions of a QP over a domain of ``θ``, with the completeness certificate.

    Built by :func:`~mpc2nn.critical_regions`.

    Attributes
    ----------
    regions : tuple of Region
        The full-dimensional critical regions found (each with its laws and facet verdicts).
    qp : CondensedQP
        The QP.
    domain : Polytope
        The domain of ``θ`` as enumerated (unit rows): the box or polytope given plus the QP's rows on
        ``θ`` alone. The partition covers its intersection with the feasible set.
    complete : bool
        The certificate holds: every facet of every region lies on the boundary of the domain or of the
        feasible set, or is covered by the regions beyond it (so the regions cover the feasible part of
        the domain).
    status : str
        ``"proven"`` (complete) or ``"incomplete"`` (a :class:`~mpc2nn.status.Proof` value).
    reason : str
        What was proven, or why not (the budget reached, facets left open) and what to try.
    open_facets : tuple of OpenFacet
        The facets not decided (empty when complete).
    n_solves, n_lps, n_lower_dimensional, n_ill_conditioned, rounds : int
        Points solved by the exact solver, LP blocks solved, lower-dimensional active sets met, active
        sets refused because their laws missed the KKT certificate (:data:`~mpc2nn.CERTIFICATE_TOL`) at the
        region's vertices (``M_AA`` too ill-conditioned), exploration rounds.
    elapsed : float
        Seconds the enumeration took.
    scale : float
        The domain's scale, the largest half-width of its bounding box: the length unit of the tolerances.
    """

    regions: tuple
    qp: CondensedQP
    domain: Polytope
    complete: bool
    status: str
    reason: str
    open_facets: tuple = ()
    n_solves: int = 0
    n_lps: int = 0
    n_lower_dimensional: int = 0
    n_ill_conditioned: int = 0
    rounds: int = 0
    elapsed: float = 0.0
    scale: float = 1.0

    def __post_init__(self):
        if self.status not in (str(Proof.PROVEN), str(Proof.INCOMPLETE), str(Proof.FAILED)):
            raise ProblemDefinitionError(f"status: expected 'proven', 'incomplete' or 'failed', got {self.status!r}")
        object.__setattr__(self, "regions", tuple(self.regions))

    # --- counts -----------------------------------------------------------------------------------
    @property
    def n_regions(self) -> int:
        """Number of regions."""
        return len(self.regions)

    @property
    def n_facets(self) -> int:
        """Number of facets over all regions."""
        return sum(R.n_facets for R in self.regions)

    @property
    def n_open(self) -> int:
        """Number of open facets."""
        return len(self.open_facets)

    @property
    def n_theta(self) -> int:
        """Dimension of ``θ``."""
        return self.qp.n_theta

    # --- point location ---------------------------------------------------------------------------
    @cached_property
    def _stacked(self):
        A = np.vstack([R.A for R in self.regions]) if self.regions else np.zeros((0, self.n_theta))
        b = np.concatenate([R.b for R in self.regions]) if self.regions else np.zeros(0)
        starts = np.cumsum([0] + [R.n_facets for R in self.regions])[:-1]
        return frozen(A), frozen(b), np.asarray(starts, np.int64)

    def violation(self, theta) -> np.ndarray:
        """``(B, R)`` largest violation ``max(A θ - b)`` of each region's rows at each point (≤ 0: inside).

        Parameters
        ----------
        theta : array_like, shape (B, n_θ) or (n_θ,)
            Points; a single vector is promoted to ``B = 1`` (NaN entries give NaN violations).

        Returns
        -------
        ndarray, shape (B, R)
            Column ``r`` for region ``r`` of :attr:`regions`; rows have unit norm, so a positive
            value is the distance beyond the farthest violated facet's hyperplane.

        Raises
        ------
        ShapeError
            ``theta`` is not of shape (B, n_θ) or (n_θ,).
        """
        theta = self.qp.check_parameters(theta, "theta")
        A, b, starts = self._stacked
        out = np.empty((theta.shape[0], self.n_regions))
        for s in range(0, theta.shape[0], LOCATE_CHUNK):
            part = theta[s:s + LOCATE_CHUNK] @ A.T - b
            out[s:s + LOCATE_CHUNK] = np.maximum.reduceat(part, starts, axis=1)
        return out

    def locate(self, theta) -> np.ndarray:
        """``(B,)`` index of a region containing each point of ``theta`` (B, n_θ), ``-1`` outside every region.

        A point counts as inside when it violates no row by more than ``LOCATE_TOL·scale``; of several
        regions (boundaries) the one violated least is returned. NaN points give -1.

        Parameters
        ----------
        theta : array_like, shape (B, n_θ) or (n_θ,)
            Points; a single vector is promoted to ``B = 1``.

        Returns
        -------
        ndarray of int, shape (B,)
            Index into :attr:`regions`, or -1.

        Raises
        ------
        ShapeError
            ``theta`` is not of shape (B, n_θ) or (n_θ,).
        """
        theta = self.qp.check_parameters(theta, "theta")
        if not self.regions:
            return np.full(theta.shape[0], -1, np.int64)
        finite = np.all(np.isfinite(theta), axis=1)
        viol = self.violation(np.where(finite[:, None], theta, 0.0))
        best = np.argmin(viol, axis=1)
        worst = viol[np.arange(theta.shape[0]), best]
        ok = (worst <= LOCATE_TOL * self.scale) & finite
        return np.where(ok, best, -1)

    def evaluate(self, theta, output: str = "u0") -> np.ndarray:
        """The explicit law by point location: ``(B, n_u)`` for ``output="u0"``, ``(B, N·n_u)`` for ``"U"``,
        ``(B, n_z)`` for ``"z"``; NaN where no region contains the point.

        Parameters
        ----------
        theta : array_like, shape (B, n_θ) or (n_θ,)
            Points; a single vector is promoted to ``B = 1``. Each is located (:meth:`locate`) and
            the law of its region applied.
        output : {"u0", "U", "z"}
            The first input (default), the whole input sequence, or the decision vector.

        Returns
        -------
        ndarray, shape (B, n_u), (B, N·n_u) or (B, n_z)
            NaN rows where no region contains the point (outside the feasible set or the domain,
            in a gap of an incomplete partition, or NaN input).

        Raises
        ------
        ProblemDefinitionError
            ``output`` is not one of ``"u0"``, ``"U"``, ``"z"``.
        ShapeError
            ``theta`` is not of shape (B, n_θ) or (n_θ,).
        """
        if output not in ("u0", "U", "z"):
            raise ProblemDefinitionError(f"output: expected 'u0', 'U' or 'z', got {output!r}")
        theta = self.qp.check_parameters(theta, "theta")
        where = self.locate(theta)
        k = {"u0": self.qp.n_u, "U": self.qp.n_U, "z": self.qp.n_z}[output]
        out = np.full((theta.shape[0], k), np.nan)
        for j in np.unique(where[where >= 0]):
            sel = where == j
            R = self.regions[j]
            gain, offset = {"u0": (R.u0_gain, R.u0_offset), "U": (R.U_gain, R.U_offset),
                            "z": (R.z_gain, R.z_offset)}[output]
            out[sel] = theta[sel] @ gain.T + offset
        return out

    # --- first-input pieces -----------------------------------------------------------------------
    @cached_property
    def pieces(self) -> Pieces:
        """The distinct first-input laws (:class:`Pieces`), identical laws merged within :data:`PIECE_TOL`."""
        n_u, n = self.qp.n_u, self.n_theta
        if not self.regions:
            return Pieces(gain=np.zeros((0, n_u, n)), offset=np.zeros((0, n_u)), region_piece=np.zeros(0, np.int64))
        keys = np.array([np.concatenate([R.u0_gain.ravel() * self.scale, R.u0_offset]) for R in self.regions])
        size = np.maximum(1.0, np.abs(keys))
        reps: list[int] = []
        piece = np.empty(len(self.regions), np.int64)
        for i in range(len(self.regions)):
            if reps:
                diff = np.abs(keys[reps] - keys[i]) <= PIECE_TOL * np.maximum(size[reps], size[i])
                hit = np.flatnonzero(diff.all(axis=1))
                if hit.size:
                    piece[i] = hit[0]
                    continue
            piece[i] = len(reps)
            reps.append(i)
        gain = np.array([self.regions[i].u0_gain for i in reps])
        offset = np.array([self.regions[i].u0_offset for i in reps])
        return Pieces(gain=frozen(gain), offset=frozen(offset), region_piece=piece)

    # --- slices for plots -------------------------------------------------------------------------
    def slice(self, dims: tuple[int, int] = (0, 1), fixed=None) -> list[tuple[int, np.ndarray]]:
        """2-D sections of the regions: ``[(region index, polygon (q, 2)), ...]`` in the plane of
        ``θ[dims[0]], θ[dims[1]]`` with the other entries of ``θ`` at ``fixed`` (n_θ,) (default 0).

        Regions the plane misses (or meets in less than a polygon) are left out.

        Parameters
        ----------
        dims : (int, int)
            Two different indices of ``θ`` spanning the plane (default ``(0, 1)``); the polygons'
            columns are ``θ[dims[0]]``, ``θ[dims[1]]``.
        fixed : array_like, shape (n_θ,), optional
            Values of the other entries of ``θ`` (its entries at ``dims`` are not used); default 0.

        Returns
        -------
        list of (int, ndarray)
            ``(region index, polygon (q, 2))`` pairs, vertices counter-clockwise.

        Raises
        ------
        ProblemDefinitionError
            ``dims`` are not two different indices in ``[0, n_θ)``.
        ShapeError
            ``fixed`` is not of shape (n_θ,).
        """
        n = self.n_theta
        i, j = (int(d) for d in dims)
        if n < 2 or not (0 <= i < n and 0 <= j < n) or i == j:
            raise ProblemDefinitionError(f"dims: expected two different indices in [0, n_θ) = [0, {n}), got {dims!r}")
        if fixed is None:
            fixed = np.zeros(n)
        fixed = np.asarray(fixed, float)
        if fixed.shape != (n,):
            raise ShapeError(f"fixed: expected shape (n_θ,) = ({n},), got {fixed.shape}")
        rest = [k for k in range(n) if k not in (i, j)]
        out = []
        for r, R in enumerate(self.regions):
            A2 = R.A[:, [i, j]]
            b2 = R.b - R.A[:, rest] @ fixed[rest]
            poly = _clip_polygon(A2, b2, R.centre[[i, j]], 2.5 * self.scale)
            if poly.shape[0] >= 3:
                out.append((r, poly))
        return out

    def summary(self) -> str:
        """Counts, the certificate's status and the first-input pieces, in a few lines."""
        kinds = np.concatenate([R.facet_kind for R in self.regions]) if self.regions else np.zeros(0, str)
        vals, counts = np.unique(kinds, return_counts=True)
        facets = ", ".join(f"{c} {v}" for v, c in zip(vals, counts, strict=True))
        radius = min((R.radius for R in self.regions), default=float("nan"))
        kkt = max((R.kkt_residual for R in self.regions), default=float("nan"))
        return (f"Partition of QP '{self.qp.name}' over θ = ({self.qp.layout.describe()}): {self.n_regions} regions, "
                f"{self.pieces.n_pieces} first-input pieces, status {self.status}\n"
                f"  facets: {facets or 'none'}\n"
                f"  smallest Chebyshev radius {radius:.3g}, largest KKT residual of a law {kkt:.2e}\n"
                f"  {self.n_solves} points solved, {self.n_lps} LPs, {self.rounds} rounds, {self.elapsed:.2f} s\n"
                f"  {self.reason}")


def _clip_polygon(A: np.ndarray, b: np.ndarray, mid: np.ndarray, half: float) -> np.ndarray:
    """Vertices (q, 2), counter-clockwise, of ``{p : A p <= b}`` in the plane (Sutherland–Hodgman clipping
    of the square ``mid ± half``, which must contain it); empty when the set is empty or degenerate.
    """
    poly = mid + half * np.array([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]])
    for a, beta in zip(A, b, strict=True):
        if not np.any(a):
            if beta < 0:
                return np.zeros((0, 2))
            continue
        val = poly @ a - beta
        inside = val <= 0
        if inside.all():
            continue
        if not inside.any():
            return np.zeros((0, 2))
        out = []
        q = poly.shape[0]
        for k in range(q):
            p, nxt = poly[k], poly[(k + 1) % q]
            vp, vn = val[k], val[(k + 1) % q]
            if vp <= 0:
                out.append(p)
            if (vp <= 0) != (vn <= 0):
                t = vp / (vp - vn)
                out.append(p + t * (nxt - p))
        poly = np.array(out)
    if poly.shape[0] < 3:
        return np.zeros((0, 2))
    x, y = poly[:, 0], poly[:, 1]
    area = 0.5 * (x @ np.roll(y, -1) - y @ np.roll(x, -1))
    return poly if area > 0 else np.zeros((0, 2))
