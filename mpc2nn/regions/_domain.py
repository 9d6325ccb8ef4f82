"""The domain of the enumeration: a box or polytope of ``θ``, with the QP's constraints on ``θ`` alone."""

from __future__ import annotations

import numpy as np

from .._checks import as_box, as_matrix
from ..exceptions import ProblemDefinitionError, ShapeError
from ..problem import Polytope
from ..qp import CondensedQP
from ._lp import solve_lp

__all__ = ["Domain", "make_domain"]


class Domain:
    """``{θ : D θ <= d}`` with unit rows, its bounding box ``[lo, hi]`` and its scale (internal).

    The scale is the largest half-width of the bounding box: every tolerance of the enumeration is a
    multiple of it, so a problem and the same problem in other units are treated alike.

    Parameters
    ----------
    D : ndarray, shape (p, n_θ)
        Rows of unit norm.
    d : ndarray, shape (p,)
        Right-hand sides.
    lo, hi : ndarray, shape (n_θ,)
        The bounding box.
    given : Polytope
        The box or polytope as given (a box as ``[I; -I] θ <= [hi; -lo]``).
    """

    def __init__(self, D: np.ndarray, d: np.ndarray, lo: np.ndarray, hi: np.ndarray, given: Polytope):
        self.D, self.d, self.lo, self.hi, self.given = D, d, lo, hi, given
        self.scale = float(max(np.max(hi - lo) / 2, 1e-300))
        self.n = D.shape[1]

    def contains(self, theta: np.ndarray, tol: float) -> np.ndarray:
        """``(B,)`` mask of the points within ``tol·scale`` of the domain.

        Parameters
        ----------
        theta : ndarray, shape (B, n_θ)
            Points.
        tol : float
            Allowance, in units of :attr:`scale`.

        Returns
        -------
        ndarray of bool, shape (B,)
        """
        return np.all(theta @ self.D.T <= self.d + tol * self.scale, axis=1)

    def sample(self, k: int, rng: np.random.Generator) -> np.ndarray:
        """Up to ``k`` points drawn uniformly from the domain (rejection from the bounding box).

        Parameters
        ----------
        k : int
            Points drawn from the bounding box.
        rng : numpy.random.Generator
            The random source.

        Returns
        -------
        ndarray, shape (k', n_θ)
            The drawn points inside the domain, ``k' <= k``.
        """
        X = self.lo + (self.hi - self.lo) * rng.random((k, self.n))
        return X[self.contains(X, 0.0)]


def make_domain(qp: CondensedQP, box, name: str = "box") -> Domain:
    """The domain of ``θ`` from ``box`` (``None``: the QP's sample box; ``(lo, hi)``; a Polytope).

    Rows of the QP on ``θ`` alone (``qp.state_only``: ``w0 + E0 θ >= 0``) are added: outside them the QP
    is infeasible, so they bound the feasible set like the domain does.

    Parameters
    ----------
    qp : CondensedQP
        The QP whose parameters ``θ`` the domain holds.
    box : (lo, hi), Polytope or None
        A box of shape ``(n_θ,)`` each, a :class:`~mpc2nn.problem.Polytope` of ``θ``, or ``None`` for the
        QP's sample box.
    name : str
        The argument's name in error messages.

    Returns
    -------
    Domain
    """
    n = qp.n_theta
    if box is None:
        if qp.sample_box is None:
            raise ProblemDefinitionError(f"{name}: QP '{qp.name}' has no sample_box; pass {name}=(lo, hi) of shape "
                                         f"(n_θ,) = ({n},) or a Polytope")
        if not qp.layout.state_only:
            raise ProblemDefinitionError(
                f"{name}: QP '{qp.name}' takes θ = ({qp.layout.describe()}), and its sample box bounds only the "
                f"state; pass {name}=(lo, hi) of shape (n_θ,) = ({n},) or a Polytope that bounds every part of θ "
                "(e.g. qp.layout.box(state_box, u_box=...))")
        box = qp.sample_box
    if isinstance(box, Polytope):
        if box.C.shape[1] != n:
            raise ShapeError(f"{name}: expected a Polytope in n_θ = {n} dimensions (θ = ({qp.layout.describe()})), "
                             f"got one in {box.C.shape[1]}")
        C, e = np.array(box.C), np.array(box.d)
        given = box
    else:
        lo, hi = as_box(name, box, n, "n_θ")
        if np.any(hi - lo <= 0):
            i = int(np.argmax(hi - lo <= 0))
            raise ProblemDefinitionError(f"{name}: lo[{i}] = hi[{i}] = {lo[i]:g}; the box must have an interior "
                                         "(fix the other parts of θ by giving a QP without them)")
        C = np.vstack([np.eye(n), -np.eye(n)])
        e = np.concatenate([hi, -lo])
        given = Polytope(C, e)
    if qp.state_only is not None and qp.state_only[0].shape[0]:
        E0, w0 = qp.state_only
        C, e = np.vstack([C, -E0]), np.concatenate([e, w0])
    C = as_matrix(f"{name} C", C, ("p", "n_θ"), (None, n))
    norms = np.linalg.norm(C, axis=1)
    if np.any(norms == 0):
        raise ProblemDefinitionError(f"{name}: a row of the polytope is zero; remove it")
    D, d = C / norms[:, None], e / norms
    lo, hi = _bounding_box(D, d, name)
    return Domain(D, d, lo, hi, given)


def _bounding_box(D: np.ndarray, d: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Bounding box of ``{D θ <= d}`` (2n LPs); raises when the polytope is unbounded or empty."""
    n = D.shape[1]
    lo, hi = np.zeros(n), np.zeros(n)
    for k in range(n):
        for sign, out in ((1.0, hi), (-1.0, lo)):
            c = np.zeros(n)
            c[k] = -sign
            res = solve_lp(c, D, d, bounds=[(None, None)] * n, accept=(0, 2, 3))
            if res.status == 2:
                raise ProblemDefinitionError(f"{name}: the polytope of θ is empty")
            if res.status != 0 or not np.isfinite(res.fun):
                raise ProblemDefinitionError(f"{name}: the polytope of θ is unbounded along θ[{k}]; bound it")
            out[k] = -sign * res.fun
    return lo, hi
