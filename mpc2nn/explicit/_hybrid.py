"""The hybrid exact mode: explicit layers, then a reduced KKT solve certified by its residuals."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..implicit import CERTIFICATE_TOL
from ..interfaces import ExplicitLaw
from ..qp import CondensedQP
from ..status import Status
from ._base import ExplicitNetwork

__all__ = ["HybridNetwork", "HybridResult"]


@dataclass(frozen=True)
class HybridResult:
    """Outputs of the hybrid exact mode for ``B`` states.

    Attributes
    ----------
    U : ndarray, shape (B, N·n_u)
        Inputs (exact where ``status`` is ``"solved"``).
    certified : ndarray of bool, shape (B,)
        The reduced KKT solve after the layers passed the KKT certificate (no fallback needed).
    status : ndarray of str, shape (B,)
        The exact solve's outcome (:class:`~mpc2nn.status.Status`): ``"solved"`` where the finishing
        stage or the fallback solve was certified, else the fallback's status (``"infeasible"``, ...).
    kkt_worst : ndarray, shape (B,)
        Relative KKT residual of the returned solution.
    depth : int
        Layers run before the finishing stage.
    """

    U: np.ndarray
    certified: np.ndarray
    status: np.ndarray
    kkt_worst: np.ndarray
    depth: int

    @property
    def certified_fraction(self) -> float:
        """Fraction of samples certified by the finishing stage alone (no fallback)."""
        return float(self.certified.mean()) if self.certified.size else 1.0

    def __repr__(self) -> str:
        vals, counts = np.unique(self.status.astype(str), return_counts=True)
        return (f"HybridResult({self.status.size} states after {self.depth} layers: "
                + ", ".join(f"{c} {v}" for v, c in zip(vals, counts, strict=True))
                + f"; {100 * self.certified_fraction:.1f} % certified by the finishing stage)")


class HybridNetwork(ExplicitLaw):
    """Hybrid exact mode — **not a pure ReLU network**.

    ``depth`` layers of a pure explicit network, then per sample: the active set
    read off the sign of the layer state, ``M_AA λ_A = -q_A`` solved (least squares
    where ``M_AA`` is singular), the KKT residuals of ``(U(λ), λ)`` checked against
    :data:`mpc2nn.CERTIFICATE_TOL`, and :meth:`ImplicitNetwork.solve` (warm-started
    from that active set) for the samples not certified.

    Parameters
    ----------
    explicit : ExplicitNetwork
        The pure network run first.

    Attributes
    ----------
    depth : int
        The depth of ``explicit``.
    net : ImplicitNetwork
        The implicit network behind ``explicit``; its exact solve is the fallback.
    """

    method = "hybrid"

    def __init__(self, explicit: ExplicitNetwork):
        self.explicit, self.net, self.depth = explicit, explicit.net, explicit.depth
        self.qp = explicit.net.qp
        self.n_theta, self.n_U, self.n_u = explicit.n_theta, explicit.n_U, explicit.n_u

    def evaluate(self, X) -> np.ndarray:
        """``(B, N·n_u)`` inputs of :meth:`solve`.

        Parameters
        ----------
        X : array_like, shape (B, n_θ) or (n_θ,)
            Parameters (states for a plain problem).

        Returns
        -------
        ndarray, shape (B, N·n_u)
        """
        return self.solve(X).U

    def solve(self, X) -> HybridResult:
        """Exact inputs; see the class docstring.

        Parameters
        ----------
        X : array_like, shape (B, n_θ) or (n_θ,)
            Parameters (states for a plain problem).

        Returns
        -------
        HybridResult
        """
        ex, qp = self.explicit, self.net.qp
        Xn = qp.check_parameters(X)
        _, state = ex.run(Xn)
        guess_k = ex.active_guess(state).numpy()
        active = np.zeros((Xn.shape[0], qp.m), bool)
        active[:, ex.kept_rows] = guess_k
        lam = _reduced_kkt(qp, Xn, active)
        Z = qp.primal(lam, Xn)
        U = qp.inputs(Z)
        kkt = qp.kkt_residuals(Z, lam, Xn)
        worst = kkt.worst
        certified = np.isfinite(worst) & (worst <= CERTIFICATE_TOL)
        status = np.full(Xn.shape[0], Status.SOLVED, dtype=object)
        rest = np.flatnonzero(~certified)
        if rest.size:
            sol = self.net.solve(Xn[rest], y0=np.where(active[rest], 1.0, -1.0))
            U[rest] = sol.U
            worst[rest] = sol.kkt.worst
            status[rest] = sol.status
        return HybridResult(U, certified, status.astype(str), worst, self.depth)

    def __call__(self, X) -> np.ndarray:
        """``(B, N·n_u)`` inputs of :meth:`solve`."""
        return self.solve(X).U


def _reduced_kkt(qp: CondensedQP, X: np.ndarray, active: np.ndarray) -> np.ndarray:
    """``λ`` (B, m): ``λ_A`` solving ``M_AA λ_A = -q_A`` (least squares), zero elsewhere; batched per active set."""
    M = qp.dual_hessian
    q = qp.w + X @ qp.dual_linear.T
    lam = np.zeros_like(q)
    keys, inverse = np.unique(np.packbits(active, axis=1), axis=0, return_inverse=True)
    for k in range(keys.shape[0]):
        idx = np.flatnonzero(inverse.ravel() == k)
        A = np.flatnonzero(active[idx[0]])
        if A.size == 0:
            continue
        sol = np.linalg.lstsq(M[np.ix_(A, A)], -q[np.ix_(idx, A)].T, rcond=None)[0]
        lam[np.ix_(idx, A)] = sol.T
    return lam
