"""Implicit differentiation on the active set, batched by active set.

For the QP ``min ½zᵀHz + qᵀz subject to Gz <= h`` with the strongly active rows ``𝒜``
(``λ_i > 0``) the solution satisfies the equality-constrained KKT system

    H z + q + G_𝒜ᵀ λ_𝒜 = 0,     G_𝒜 z = h_𝒜,

which the implicit function theorem differentiates. The backward pass of a loss
gradient ``g = ∂L/∂z`` solves the adjoint system ``[H G_𝒜ᵀ; G_𝒜 0] [a; β] = [g; 0]``
by eliminating ``a = H⁻¹(g - G_𝒜ᵀβ)``: ``M_𝒜𝒜 β = G_𝒜 H⁻¹ g`` with ``M = G H⁻¹ Gᵀ``,
and returns ``∂L/∂q = -a``, ``∂L/∂h = β`` (zero off 𝒜), ``∂L/∂H = -½(a zᵀ + z aᵀ)``,
``∂L/∂G = -(λ aᵀ + β zᵀ)``. Samples with the same active set share one
factorisation of ``M_𝒜𝒜`` (a pseudo-inverse: where active rows are linearly
dependent the multipliers are not unique, ``G_𝒜ᵀβ`` and so ``a`` still are, and the
sample is reported as degenerate).

The fixed point ``y = W relu(y) + Yθ + b`` of an implicit layer is the same thing
in network form: on ``𝒜 = {y > 0}``, ``λ_𝒜 = (I - W_𝒜𝒜)⁻¹ (Y_𝒜 θ + b_𝒜)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

__all__ = ["ACTIVE_TOL", "DEGENERACY_TOL", "ActiveSetPlan", "classify_qp", "classify_fixed_point", "qp_factors",
           "qp_plan",
           "fixed_point_plan", "qp_solution", "fixed_point"]

#: Activity decision, relative to each row's own scale. A row is *strongly active* where its
#: multiplier's share of the stationarity equation, ``λ_i ‖G_i‖∞``, exceeds ACTIVE_TOL times
#: ``max(1, ‖Hz‖∞, ‖q‖∞)``; *weakly active* where it is not and its margin ``h_i - G_i z`` is at
#: most ACTIVE_TOL times ``max(1, |h_i|, ‖G_i‖∞ ‖z‖∞)``. It is the certificate tolerance of the
#: exact solve (mpc2nn.CERTIFICATE_TOL): below it, a zero and a non-zero λ_i (or margin) cannot
#: be told apart, so the sample lies on an active-set switch as far as the solve can tell.
ACTIVE_TOL = 1e-9

#: Eigenvalues of the active block ``M_𝒜𝒜`` (or ``I - W_𝒜𝒜`` of an implicit layer) below
#: DEGENERACY_TOL times its largest are treated as zero: the active rows are linearly
#: dependent there (a pseudo-inverse is used and the sample is reported as degenerate).
#: Well above rounding (1e-16 relative), well below the conditioning of a genuine active block.
DEGENERACY_TOL = 1e-10

#: Most entries of the per-sample stacks of pseudo-inverses held at once in the backward pass.
CHUNK_ENTRIES = 1 << 22


@dataclass
class _SizeGroup:
    """The active sets of one size ``k``: their samples, rows and pseudo-inverses."""

    samples: torch.Tensor      # (n,) sample indices
    position: torch.Tensor     # (n,) index of each sample's active set among ``rows``
    rows: torch.Tensor         # (g, k) the active rows of each set
    pinv: torch.Tensor         # (g, k, k) pseudo-inverse of the active block


@dataclass
class ActiveSetPlan:
    """What the backward pass needs, set up in the forward pass.

    Attributes
    ----------
    usable : (B,) bool, samples with a solution (the others get zero gradients)
    strong : (B, m) bool, strongly active rows
    degenerate : (B,) bool, the active rows are linearly dependent (pseudo-inverse used)
    n_sets : number of distinct active sets among the usable samples
    """

    usable: np.ndarray
    strong: np.ndarray
    degenerate: np.ndarray
    n_sets: int
    groups: list = field(default_factory=list)
    factor: torch.Tensor | None = None   # Cholesky factor of H (QP plans)


def classify_qp(H, q, G, h, Z, lam) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(strong, weak, separation)`` of a QP solution (numpy; see :data:`ACTIVE_TOL`).

    ``strong``, ``weak`` are (B, m) bool masks; ``separation`` (B,) is the smallest over the rows
    of the larger of the row's relative multiplier and relative margin: how far the sample is
    from an active-set switch (weakly active rows exist where it is at most ACTIVE_TOL).
    """
    g_norm = np.abs(G).max(axis=1, initial=0.0)
    stat = np.maximum.reduce([np.ones(Z.shape[0]), np.abs(Z @ H).max(axis=1, initial=0.0),
                              np.abs(q).max(axis=1, initial=0.0)])
    rel_lam = lam * g_norm / stat[:, None]
    margin = h - Z @ G.T
    scale = np.maximum(np.maximum(1.0, np.abs(h)), g_norm * np.abs(Z).max(axis=1, initial=0.0)[:, None])
    rel_margin = margin / scale
    strong = rel_lam > ACTIVE_TOL
    weak = ~strong & (rel_margin <= ACTIVE_TOL)
    return strong, weak, np.maximum(rel_lam, rel_margin).min(axis=1, initial=np.inf)


def classify_fixed_point(W, c, y) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(strong, weak, separation)`` of fixed points ``y = W relu(y) + c``: ``y_i`` against its row's
    scale ``max(1, |c_i|, Σ_j |W_ij relu(y_j)|)``, strongly active above ACTIVE_TOL times it, weakly
    within; ``separation`` (B,) is the smallest ``|y_i|`` relative to its scale.
    """
    lam = np.maximum(y, 0.0)
    scale = np.maximum(np.maximum(1.0, np.abs(c)), lam @ np.abs(W).T)
    rel = y / scale
    strong = rel > ACTIVE_TOL
    weak = ~strong & (np.abs(rel) <= ACTIVE_TOL)
    return strong, weak, np.abs(rel).min(axis=1, initial=np.inf)


def _groups(strong: np.ndarray, usable: np.ndarray, block, device) -> tuple[list, np.ndarray, int]:
    """Group the usable samples by active set and size; ``block(rows) -> (g, k, k)`` gives the active blocks."""
    B = strong.shape[0]
    degenerate = np.zeros(B, bool)
    idx = np.flatnonzero(usable)
    if idx.size == 0:
        return [], degenerate, 0
    masks = strong[idx]
    keys, first, inverse = np.unique(np.packbits(masks, axis=1), axis=0, return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1)
    sets = masks[first]                                   # (n_sets, m)
    sizes = sets.sum(axis=1)
    groups = []
    for k in np.unique(sizes):
        if k == 0:
            continue
        which = np.flatnonzero(sizes == k)                # active sets of size k
        rows = np.stack([np.flatnonzero(sets[s]) for s in which])       # (g, k)
        pinv, deg = _pinv(block(torch.as_tensor(rows, device=device)))
        pos_of = np.full(len(keys), -1)
        pos_of[which] = np.arange(which.size)
        member = pos_of[inverse] >= 0
        samples = idx[member]
        degenerate[samples] = deg.cpu().numpy()[pos_of[inverse[member]]]
        groups.append(_SizeGroup(torch.as_tensor(samples, device=device),
                                 torch.as_tensor(pos_of[inverse[member]], device=device),
                                 torch.as_tensor(rows, device=device), pinv))
    return groups, degenerate, len(keys)


def _pinv(K: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Pseudo-inverses (g, k, k) of a stack of square blocks and whether each is rank deficient."""
    sym = torch.allclose(K, K.transpose(1, 2), rtol=0.0, atol=0.0)
    if sym:
        ev, V = torch.linalg.eigh(K)
        top = ev.abs().amax(dim=1, keepdim=True).clamp_min(torch.finfo(K.dtype).tiny)
        keep = ev.abs() > DEGENERACY_TOL * top
        inv = torch.where(keep, 1.0 / torch.where(keep, ev, torch.ones_like(ev)), torch.zeros_like(ev))
        return (V * inv[:, None, :]) @ V.transpose(1, 2), ~keep.all(dim=1)
    U, s, Vh = torch.linalg.svd(K)
    keep = s > DEGENERACY_TOL * s[:, :1].clamp_min(torch.finfo(K.dtype).tiny)
    inv = torch.where(keep, 1.0 / torch.where(keep, s, torch.ones_like(s)), torch.zeros_like(s))
    return (Vh.transpose(1, 2) * inv[:, None, :]) @ U.transpose(1, 2), ~keep.all(dim=1)


def _apply(groups: list, r: torch.Tensor, transpose: bool = False) -> torch.Tensor:
    """``β`` (B, m): for each sample, the pseudo-inverse of its active block applied to ``r`` on its rows."""
    out = torch.zeros_like(r)
    for grp in groups:
        k = grp.rows.shape[1]
        step = max(1, CHUNK_ENTRIES // (k * k))
        for lo in range(0, grp.samples.numel(), step):
            s, p = grp.samples[lo:lo + step], grp.position[lo:lo + step]
            rows = grp.rows[p]                                          # (n, k)
            P = grp.pinv[p]
            if transpose:
                P = P.transpose(1, 2)
            sub = torch.gather(r[s], 1, rows)                           # (n, k)
            val = (P @ sub[:, :, None])[:, :, 0]
            out[s[:, None], rows] = val
    return out


# --- QP solutions ------------------------------------------------------------------
def qp_factors(H: torch.Tensor, G: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(L, M)``: the Cholesky factor of ``H`` and ``M = G H⁻¹ Gᵀ`` (detached tensors)."""
    L = torch.linalg.cholesky(H)
    M = G @ torch.cholesky_solve(G.T, L)
    return L, 0.5 * (M + M.T)


def qp_plan(H: torch.Tensor, G: torch.Tensor, strong: np.ndarray, usable: np.ndarray, factors=None) -> ActiveSetPlan:
    """Factorise the active blocks of ``M = G H⁻¹ Gᵀ`` (detached tensors on the solve's device).

    ``factors``: ``qp_factors(H, G)`` if already computed.
    """
    L, M = qp_factors(H, G) if factors is None else factors

    def block(rows):
        return M[rows[:, :, None], rows[:, None, :]]

    groups, degenerate, n_sets = _groups(strong, usable, block, H.device)
    return ActiveSetPlan(usable=usable, strong=strong, degenerate=degenerate, n_sets=n_sets, groups=groups,
                         factor=L)


class _QPSolution(torch.autograd.Function):
    @staticmethod
    def forward(ctx, H, q, G, h, Z, lam, plan):
        ctx.plan = plan
        ctx.save_for_backward(G, Z, lam)
        return Z.clone()

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, gz):
        plan = ctx.plan
        G, Z, lam = ctx.saved_tensors
        usable = torch.as_tensor(plan.usable, device=gz.device)
        gz = torch.where(usable[:, None], gz, torch.zeros_like(gz))
        L = plan.factor
        u = torch.cholesky_solve(gz.T, L).T
        beta = _apply(plan.groups, u @ G.T)
        a = torch.cholesky_solve((gz - beta @ G).T, L).T
        need = ctx.needs_input_grad
        gH = -0.5 * (a.T @ Z + Z.T @ a) if need[0] else None
        gG = -(lam.T @ a + beta.T @ Z) if need[2] else None
        return gH, -a if need[1] else None, gG, beta if need[3] else None, None, None, None


def qp_solution(H, q, G, h, Z, lam, plan: ActiveSetPlan) -> torch.Tensor:
    """``Z`` (B, n_z), the QP solutions at ``(H, q, G, h)``, with the implicit backward pass of ``plan``.

    ``Z`` and ``lam`` (B, m, zero off the strongly active rows) are the solver's values (no gradient);
    rows of samples that are not usable must hold finite numbers (they get zero gradients).
    """
    return _QPSolution.apply(H, q, G, h, Z, lam, plan)


# --- fixed points of implicit layers ------------------------------------------------
def fixed_point_plan(W: torch.Tensor, strong: np.ndarray, usable: np.ndarray) -> ActiveSetPlan:
    """Pseudo-inverses of the active blocks ``I - W_𝒜𝒜`` (detached ``W`` on the solve's device)."""
    A = torch.eye(W.shape[0], dtype=W.dtype, device=W.device) - W

    def block(rows):
        return A[rows[:, :, None], rows[:, None, :]]

    groups, degenerate, n_sets = _groups(strong, usable, block, W.device)
    return ActiveSetPlan(usable=usable, strong=strong, degenerate=degenerate, n_sets=n_sets, groups=groups)


class _FixedPoint(torch.autograd.Function):
    @staticmethod
    def forward(ctx, W, Y, b, theta, lam, plan):
        ctx.plan = plan
        ctx.save_for_backward(Y, theta, lam)
        return lam.clone()

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g):
        plan = ctx.plan
        Y, theta, lam = ctx.saved_tensors
        usable = torch.as_tensor(plan.usable, device=g.device)
        g = torch.where(usable[:, None], g, torch.zeros_like(g))
        v = _apply(plan.groups, g, transpose=True)      # v = (I - W_𝒜𝒜)⁻ᵀ g_𝒜 on each sample's rows
        need = ctx.needs_input_grad
        return (v.T @ lam if need[0] else None, v.T @ theta if need[1] else None, v.sum(0) if need[2] else None,
                v @ Y if need[3] else None, None, None)


def fixed_point(W, Y, b, theta, lam, plan: ActiveSetPlan) -> torch.Tensor:
    """``λ = relu(y)`` (B, m) of the fixed points at ``(W, Y, b, θ)``, with the implicit backward pass of ``plan``."""
    return _FixedPoint.apply(W, Y, b, theta, lam, plan)
