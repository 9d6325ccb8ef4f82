"""KKT residuals of a primal-dual pair of the condensed QP, each row judged at its own scale."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["KKTResiduals", "kkt_residuals"]


@dataclass(frozen=True)
class KKTResiduals:
    """Per-sample KKT residuals of a primal-dual pair ``(z, λ)`` at a batch of parameters ``θ``.

    Each attribute has shape ``(B,)``. The certificate (:attr:`worst`) judges every
    row and every component at its **own** scale, the size of the terms that make it
    up (what rounding can disturb), so one large right-hand side (a bound of 1e13
    written for "no bound") loosens no other row; NaN anywhere makes it NaN, which
    fails every ``worst <= tol`` test.

    Attributes
    ----------
    stationarity : ndarray, shape (B,)
        ``‖H z + F θ + Gᵀ λ‖∞``.
    primal : ndarray, shape (B,)
        Largest constraint violation ``max(0, max_i (G z - w - E θ)_i)``.
    dual : ndarray, shape (B,)
        Largest negative multiplier ``max(0, max_i -λ_i)``.
    complementarity : ndarray, shape (B,)
        ``max_i |λ_i · s_i|`` with the margin ``s = w + E θ - G z``.
    scale : ndarray, shape (B,)
        ``max(1, ‖H z‖∞, ‖F θ‖∞, ‖w + E θ‖∞)``, the sample's overall size (for information; the
        relative residuals below do not use it).
    relative_stationarity : ndarray, shape (B,)
        ``max_j |H z + F θ + Gᵀλ|_j / σ_j``, ``σ = |H||z| + |F||θ| + |G|ᵀ|λ|``.
    relative_primal : ndarray, shape (B,)
        ``max_i max(0, G z - w - E θ)_i / ρ_i``, ``ρ = |G||z| + |w| + |E||θ|``.
    relative_dual : ndarray, shape (B,)
        ``max_i max(0, -λ_i) ‖G_i‖∞ / max_j σ_j`` (a negative multiplier's force against the largest
        force of the stationarity equation).
    relative_complementarity : ndarray, shape (B,)
        ``max_i min(|λ_i| ‖G_i‖∞ / max_j σ_j, |s_i| / ρ_i)``: each row is either without force or
        tight, each at its own scale.
    """

    stationarity: np.ndarray
    primal: np.ndarray
    dual: np.ndarray
    complementarity: np.ndarray
    scale: np.ndarray
    relative_stationarity: np.ndarray
    relative_primal: np.ndarray
    relative_dual: np.ndarray
    relative_complementarity: np.ndarray

    @property
    def worst(self) -> np.ndarray:
        """``(B,)`` largest of the four relative residuals (NaN where any input was NaN)."""
        return np.maximum.reduce([self.relative_stationarity, self.relative_primal, self.relative_dual,
                                  self.relative_complementarity])


#: Smallest scale a relative residual is divided by: a row whose terms are all zero has a residual of
#: exactly zero (0 / TINY = 0), anything else is judged against the size of its terms.
TINY = np.finfo(float).tiny


def _relative(residual: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """``residual / scale`` elementwise (scale floored at :data:`TINY`); NaN stays NaN."""
    return residual / np.maximum(scale, TINY)


def _row_max(a: np.ndarray) -> np.ndarray:
    """``(B,)`` maximum over the last axis, 0 for no columns, NaN if any entry is NaN."""
    return a.max(axis=1, initial=0.0) if a.shape[1] else np.zeros(a.shape[0])


def kkt_residuals(H: np.ndarray, F: np.ndarray, G: np.ndarray, w: np.ndarray, E: np.ndarray, ab: dict,
                  Z: np.ndarray, lam: np.ndarray, theta: np.ndarray, margin: np.ndarray | None) -> KKTResiduals:
    """Residuals of ``(Z, lam)`` (shapes ``(B, n_z)``, ``(B, m)``) at ``theta`` ``(B, n_θ)`` for the QP
    ``(H, F, G, w, E)``; ``ab`` holds the data's entrywise absolute values (``H, F, G, w, E``) and ``G``'s row
    ∞-norms (``G_rownorm``); ``margin`` is ``w + Eθ - Gz`` when computed already.
    """
    B = theta.shape[0]
    with np.errstate(over="ignore", invalid="ignore"):
        Hz, Ft = Z @ H, theta @ F.T
        rhs = w + theta @ E.T
        s = rhs - Z @ G.T if margin is None else margin
        aZ, aT, aL = np.abs(Z), np.abs(theta), np.abs(lam)
        stat = np.abs(Hz + Ft + lam @ G)
        sigma = aZ @ ab["H"] + aT @ ab["F"].T + aL @ ab["G"]
        rho = aZ @ ab["G"].T
        rho += ab["w"]
        rho += aT @ ab["E"].T
        rho = np.maximum(rho, TINY, out=rho)
        force = np.maximum(_row_max(sigma), TINY)[:, None]
        lam_force = (aL * ab["G_rownorm"]) / force  # 0 / TINY = 0 where nothing has force
        abs_s = np.abs(s)
        rel_s = abs_s / rho
        neg = -s
        np.maximum(neg, 0.0, out=neg)
        rel_primal = _row_max(neg / rho)
        if lam.size and (lam < 0).any():
            relative_dual = _row_max((np.maximum(-lam, 0.0) * ab["G_rownorm"]) / force)
            dual = _row_max(np.maximum(-lam, 0.0))
        else:
            dual = relative_dual = np.where(np.isnan(lam).any(axis=1), np.nan, 0.0) if lam.size else np.zeros(B)
        return KKTResiduals(
            stationarity=_row_max(stat),
            primal=_row_max(neg),
            dual=dual,
            complementarity=_row_max(aL * abs_s),
            scale=np.maximum.reduce([np.ones(B), _row_max(np.abs(Hz)), _row_max(np.abs(Ft)),
                                     _row_max(np.abs(rhs))]),
            relative_stationarity=_row_max(_relative(stat, sigma)),
            relative_primal=rel_primal,
            relative_dual=relative_dual,
            relative_complementarity=_row_max(np.minimum(lam_force, rel_s, out=rel_s)),
        )
