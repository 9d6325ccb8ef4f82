"""The region of ``θ`` a verification covers: a box or polytope, with the QP's rows on ``θ`` alone."""

from __future__ import annotations

import numpy as np

from ..exceptions import NonFiniteError
from ..problem import Polytope
from ..qp import CondensedQP
from ..regions import make_domain

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
    """The region from ``region`` (``(lo, hi)`` or a Polytope; ``None``: the QP's sample box).

    The polytope is the critical-region stage's domain (:func:`mpc2nn.regions.make_domain`: unit rows, the
    QP's rows on ``θ`` alone added, bounding box by LP); a box given as such also clips the bounding box
    (the LPs' tolerance).
    """
    if isinstance(region, Polytope) and not (np.all(np.isfinite(region.C)) and np.all(np.isfinite(region.d))):
        raise NonFiniteError("region: the polytope's rows hold NaN or an infinity")
    domain = make_domain(qp, region, "region")
    lo, hi, box = domain.lo, domain.hi, None
    if not isinstance(region, Polytope):  # a box (or the sample box): given = Polytope([I; -I], [hi; -lo])
        n = qp.n_theta
        box = (-domain.given.d[n:], domain.given.d[:n])
        lo, hi = np.maximum(lo, box[0]), np.minimum(hi, box[1])
    return ThetaRegion(domain.D, domain.d, lo, hi, box, domain.given)
