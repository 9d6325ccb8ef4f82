"""The certified point of a solved sample: ``(z, λ, y)`` formed from the solver's multipliers, and its residuals.

From the multipliers ``λ`` of an active-set method the decision vector is
``z = -H⁻¹(F θ + Gᵀ λ)``. Where ``F θ`` is large against the solution (states far
out, all inputs saturated) that sum cancels and ``z`` carries an absolute error of
the size ``ε |H⁻¹| |F θ|``, far above the scale ``|G_i| |z| + |w_i| + |E_i| |θ|`` of an
input bound. The point returned is therefore refined where its first form is not
certified: one step of iterative refinement of ``H z = -g``, then a **primal
correction on the active rows**, ``z ← z + H⁻¹ G_Aᵀ μ``, ``λ_A ← λ_A - μ`` with
``M_AA μ = s_A`` (the margins ``s = w + E θ - G z`` of the active rows set to zero),
which moves ``z`` and ``λ`` together (``z(λ - μ) = z(λ) + H⁻¹G_Aᵀμ``) without forming
the cancelling sum again. The point is then made a fixed point of the network
(``y = λ - Γ s``, ``λ ← relu(y)``, ``z`` updated by the change of ``λ`` alone), and what
is certified — ``(z, relu(y))`` by the KKT test, ``y`` by the fixed-point residual,
each row at its own scale — is what is returned (``U = T z``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..qp import KKTResiduals

__all__ = ["CERTIFICATE_TOL", "FIXED_POINT_FLOOR", "CertifiedPoint", "certified_point"]

#: Largest relative residual (fixed point and KKT, each row at its own scale) with which a solution
#: counts as certified.
CERTIFICATE_TOL = 1e-9

#: Floor of a row's scale in the fixed-point residual, relative to the sample's largest row scale. The
#: fixed-point residual ``y - W relu(y) - c = Γ(M λ + q - s)`` is a consistency check of the network
#: equation (zero in exact arithmetic for any λ); the proof of optimality is the KKT test, whose every row
#: is judged at its own scale without a floor. 1e-6 keeps a 1e13 bound from loosening other rows' check
#: to more than 1e-9·1e-6·1e13 = 1e-2 of α (against a solution of size 1 ... 10).
FIXED_POINT_FLOOR = 1e-6

#: Most steps of the primal correction on the active rows. Each step removes the error of ``z`` on the active
#: rows down to the rounding of the step itself, ``ε`` times the size of the correction, so it gains ~13-16
#: digits: a state at 1e300 whose active rows fix ``z`` (terms of 1e300 cancelling to an O(1) solution) needs
#: ~20 steps; 24 covers float64's range, and a step that no longer shrinks the margins ends the loop.
POLISH_STEPS = 24

#: Floor of the residuals' scales (a row whose terms are all zero has a zero residual).
_TINY = np.finfo(float).tiny


@dataclass
class CertifiedPoint:
    """A candidate point of ``b`` samples and its certificate (arrays over the samples)."""

    U: np.ndarray           # (b, n_U) inputs T z
    Z: np.ndarray           # (b, n_z) decision vectors
    y: np.ndarray           # (b, m) network states (λ = relu(y))
    fp_rel: np.ndarray      # (b,) worst relative fixed-point residual
    fp: np.ndarray          # (b,) that row's residual
    fp_scale: np.ndarray    # (b,) and its scale
    kkt: KKTResiduals
    finite: np.ndarray      # (b,) bool, U and z finite
    certified: np.ndarray   # (b,) bool


def certified_point(net, X: np.ndarray, lam: np.ndarray, h: np.ndarray, refine: bool) -> CertifiedPoint:
    """The point of multipliers ``lam`` (b, m) at parameters ``X`` (b, n_θ), ``h = w + E θ``, and its certificate.

    ``refine`` adds the refinement of ``H z = -g`` and the primal correction on the active rows (see the
    module docstring); without it ``z`` is formed once from ``λ``.
    """
    qp, solver, alpha = net.qp, net.solver, net.alpha
    G, Hinv = qp.G, qp.H_inv
    with np.errstate(over="ignore", invalid="ignore"):
        g = X @ qp.F.T + lam @ G
        Z = -(g @ Hinv)
        if refine:
            Z -= (Z @ qp.H + g) @ Hinv  # one step of iterative refinement of H z = -g (ill-conditioned H)
        s = h - Z @ G.T
        act = lam > 0
        if refine and act.any():
            lam, Z, s = _primal_correction(net, lam.copy(), Z, s, h, act)
        # y = λ - Γs, then y again from relu(y) and its margins, so that what is returned (U = T z) and what is
        # certified (z, relu y) are the same point; z follows the change of λ alone (no cancelling sum again)
        for it in range(2):
            y = lam - alpha * s
            if it:  # the size of the terms of s = h - G z that y = λ - Γs was formed from (z with the
                # size |H⁻¹||g| of the terms it was computed from)
                y_terms = alpha * (np.abs(h) + (np.abs(Z) + np.abs(g) @ net._abs_Hinv) @ net._abs_G.T)
            lam_new = np.maximum(y, 0.0)
            d = lam_new - lam
            lam = lam_new
            dg = d @ G
            g += dg
            Z -= dg @ Hinv
            s = h - Z @ G.T
        U = qp.inputs(Z)
        # fixed-point residual y - W relu(y) - c with W relu(y) = λ - Γ Ḡ (Ḡᵀλ), each row against the
        # size of its terms |λ| + Γ|Ḡ|(|Ḡ|ᵀ|λ|) + |c| + |y| + Γ(|h| + |G||z|)
        c = X @ net.Y.T
        c += net.b
        r = y - lam
        r += alpha * ((lam @ solver.Gbar) @ solver.GbarT)
        r -= c
        np.abs(r, out=r)
        aG = net._abs_gbar
        sigma = alpha * ((lam @ aG) @ aG.T)
        sigma += lam
        sigma += np.abs(c, out=c)
        sigma += np.abs(y)
        sigma += y_terms
        # rows whose terms all nearly cancel carry rounding from the rest of the sample: their scale is
        # floored at FIXED_POINT_FLOOR of the sample's largest (the proof is the KKT test, row by row)
        np.maximum(sigma, np.maximum(FIXED_POINT_FLOOR * sigma.max(axis=1, initial=0.0), _TINY)[:, None], out=sigma)
        b = X.shape[0]
        if net.m:
            ratio = r / sigma
            worst_row = np.argmax(np.where(np.isnan(ratio), np.inf, ratio), axis=1)
            ar = np.arange(b)
            fp_rel = ratio.max(axis=1)
            fp, fp_scale = r[ar, worst_row], sigma[ar, worst_row]
        else:
            fp_rel, fp, fp_scale = np.zeros(b), np.zeros(b), np.ones(b)
        fp = np.where(np.isnan(fp_rel), np.nan, fp)
    kkt = qp.kkt_residuals(Z, lam, X, margin=s)
    finite = np.isfinite(U).all(axis=1) & np.isfinite(Z).all(axis=1)
    cert = finite & (fp_rel <= CERTIFICATE_TOL) & (kkt.worst <= CERTIFICATE_TOL)
    return CertifiedPoint(U=U, Z=Z, y=y, fp_rel=fp_rel, fp=fp, fp_scale=fp_scale, kkt=kkt, finite=finite,
                          certified=cert)


def _primal_correction(net, lam, Z, s, h, act):
    """Steps ``z ← z + H⁻¹ G_Aᵀ μ``, ``λ_A ← λ_A - μ``, ``M_AA μ = s_A`` while they shrink the active margins.

    Each sample keeps a step only where it shrinks its largest active margin relative to the row's scale
    ``|h_i| + |G_i||z|`` (a step can diverge where ``M_AA`` is numerically singular); the loop ends when no
    sample improves or after :data:`POLISH_STEPS` steps. Returns ``(λ, z, s)``.
    """
    solver, G, Hinv, aG = net.solver, net.qp.G, net.qp.H_inv, net._abs_G
    row_scale = np.maximum(np.abs(h) + np.abs(Z) @ aG.T, _TINY)
    worst = (np.abs(np.where(act, s, 0.0)) / row_scale).max(axis=1)
    live = np.flatnonzero(worst > 0)
    for _ in range(POLISH_STEPS):
        if live.size == 0:
            break
        mu, inv_ok = solver._reduced(np.where(act[live], -s[live], 0.0), act[live])  # solves M_AA μ = s_A
        Z2 = Z[live] + (mu @ G) @ Hinv
        s2 = h[live] - Z2 @ G.T
        after = (np.abs(np.where(act[live], s2, 0.0)) / row_scale[live]).max(axis=1)
        better = inv_ok & (after < worst[live])
        keep = live[better]
        lam[keep] -= mu[better]
        Z[keep], s[keep], worst[keep] = Z2[better], s2[better], after[better]
        live = keep[worst[keep] > 0]
    return lam, Z, s
