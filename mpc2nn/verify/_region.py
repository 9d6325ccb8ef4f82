"""The region of ``θ`` a verification covers: a box or polytope, with the QP's rows on ``θ`` alone."""

from __future__ import annotations

import numpy as np
import scipy.optimize

from .._checks import as_box, as_matrix
from ..exceptions import NonFiniteError, ProblemDefinitionError, ShapeError
from ..problem import Polytope
from ..qp import CondensedQP

__all__ = ["ThetaRegion", "make_region"]


class ThetaRegion:
    """``{θ : C θ <= d}`` with unit rows, its bounding box ``[lo, hi]`` and half-widths (internal).

    ``box`` is the ``(lo, hi)`` given when the region was a box (``None`` for a polytope), ``given`` the
    box or polytope as given (for :func:`~mpc2nn.critical_regions`).
    """

    def __init__(self, C, d, lo, hi, box, given):
        self.C, self.d, self.lo, self.hi, self.box, self.given = C, d, lo, hi, box, given
        self.half = np.maximum((hi - lo) / 2, 1e-300)
        self.scale = float(self.half.max())
        self.n = C.shape[1]

    def contains(self, theta: np.ndarray, tol: float = 0.0) -> np.ndarray:
        """``(B,)`` mask of the points violating no row by more than ``tol·scale``."""
        return np.all(np.atleast_2d(theta) @ self.C.T <= self.d + tol * self.scale, axis=1)

    def sample(self, k: int, rng: np.random.Generator) -> np.ndarray:
        """Up to ``k`` points drawn uniformly from the region (rejection from the bounding box)."""
        X = self.lo + (self.hi - self.lo) * rng.random((k, self.n))
        return X[self.contains(X)]

    def pull_inside(self, theta: np.ndarray) -> np.ndarray:
        """``theta`` (n,) clipped to the bounding box and, for a polytope, moved towards the centre until it
        violates no row (a MILP's point can lie outside by HiGHS's feasibility tolerance).
        """
        theta = np.clip(theta, self.lo, self.hi)
        if self.contains(theta).all():
            return theta
        centre = (self.lo + self.hi) / 2
        if not self.contains(centre).all():
            return theta
        for t in np.geomspace(1e-12, 1.0, 25):
            p = theta + t * (centre - theta)
            if self.contains(p).all():
                return p
        return theta


def make_region(qp: CondensedQP, region) -> ThetaRegion:
    """The region from ``region`` (``(lo, hi)`` or a Polytope; ``None``: the QP's sample box)."""
    n = qp.n_theta
    box = None
    if region is None:
        if qp.sample_box is None or not qp.layout.state_only:
            raise ProblemDefinitionError(f"region: QP '{qp.name}' has no sample box of θ = ({qp.layout.describe()}); "
                                         f"pass region=(lo, hi) of shape (n_θ,) = ({n},) or a Polytope")
        region = qp.sample_box
    if isinstance(region, Polytope):
        if region.C.shape[1] != n:
            raise ShapeError(f"region: expected a Polytope in n_θ = {n} dimensions, got one in {region.C.shape[1]}")
        C, d = np.array(region.C, float), np.array(region.d, float)
        if not (np.all(np.isfinite(C)) and np.all(np.isfinite(d))):
            raise NonFiniteError("region: the polytope's rows hold NaN or an infinity")
    else:
        lo, hi = as_box("region", region, n, "n_θ")
        if np.any(hi - lo <= 0):
            i = int(np.argmax(hi - lo <= 0))
            raise ProblemDefinitionError(f"region: lo[{i}] = {lo[i]:g} >= hi[{i}] = {hi[i]:g}; the box must have an "
                                         "interior")
        box = (lo, hi)
        C = np.vstack([np.eye(n), -np.eye(n)])
        d = np.concatenate([hi, -lo])
        region = Polytope(C, d)
    if qp.state_only is not None and qp.state_only[0].shape[0]:
        E0, w0 = qp.state_only
        C, d = np.vstack([C, -E0]), np.concatenate([d, w0])
    C = as_matrix("region C", C, ("p", "n_θ"), (None, n))
    norms = np.linalg.norm(C, axis=1)
    if np.any(norms == 0):
        raise ProblemDefinitionError("region: a row of the polytope is zero; remove it")
    C, d = C / norms[:, None], d / norms
    lo, hi = np.zeros(n), np.zeros(n)
    for k in range(n):
        for sign in (1.0, -1.0):
            c = np.zeros(n)
            c[k] = -sign
            res = scipy.optimize.linprog(c, A_ub=C, b_ub=d, bounds=[(None, None)] * n, method="highs")
            if res.status == 2:
                raise ProblemDefinitionError("region: the polytope of θ is empty")
            if res.status != 0:
                raise ProblemDefinitionError(f"region: the polytope of θ is unbounded along θ[{k}]; bound it")
            (hi if sign > 0 else lo)[k] = -sign * res.fun
    if box is not None:
        lo, hi = np.maximum(lo, box[0]), np.minimum(hi, box[1])
    return ThetaRegion(C, d, lo, hi, box, region)
