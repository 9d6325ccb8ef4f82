"""Batched small linear algebra of the active-set methods: inverses of Gram blocks and their rank-one updates.

The dual active-set sweeps keep one ``K⁻¹ = (N Nᵀ)⁻¹`` per sample (``N`` the working set's rows, padded to a
common size ``L``); a row added borders it, a row removed is eliminated by a Schur complement, both in place
over the samples that take the step.
"""

from __future__ import annotations

import numpy as np

__all__ = ["inverse_batch", "border", "eliminate", "inverse_spd_batch", "solve_spd_batch", "parallel_groups"]


def inverse_batch(K: np.ndarray) -> list:
    """``K⁻¹`` for a batch (b, k, k) as a list, ``None`` for the singular ones."""
    try:
        inv = np.linalg.inv(K)
        bad = np.asarray(~np.isfinite(inv).all(axis=(1, 2)))
        return [None if bad[i] else inv[i] for i in range(K.shape[0])]
    except np.linalg.LinAlgError:
        out: list = []
        for Ki in K:
            try:
                Kinv = np.linalg.inv(Ki)
                out.append(Kinv if np.isfinite(Kinv).all() else None)
            except np.linalg.LinAlgError:
                out.append(None)
        return out


def border(Kinv: np.ndarray, rows: np.ndarray, slot: np.ndarray, r: np.ndarray, gamma: np.ndarray,
            L: int) -> None:
    """Add a row in the padding ``slot`` of each sample ``rows``: with ``r = K⁻¹ N a`` (zero on padding)
    and ``γ = ‖a - Nᵀ r‖²``, the new inverse is ``K⁻¹ - e eᵀ + r̃ r̃ᵀ / γ``, ``r̃ = r - e`` (in place).
    """
    if rows.size == 0:
        return
    rt = np.zeros((rows.size, L))
    rt[:, :r.shape[1]] = r
    ar = np.arange(rows.size)
    rt[ar, slot] = -1.0
    block = Kinv[rows, :L, :L]
    block[ar, slot, slot] = 0.0
    Kinv[rows, :L, :L] = block + rt[:, :, None] * rt[:, None, :] / gamma[:, None, None]


def eliminate(Kinv: np.ndarray, rows: np.ndarray, slot: np.ndarray, last: np.ndarray, L: int) -> None:
    """Remove the working-set row in ``slot`` (the row in ``last`` moves there, ``last`` becomes padding):
    swap the two in ``K⁻¹``, then the Schur complement ``K⁻¹ - c cᵀ / c_last``, ``c = K⁻¹ e_last`` (in place).
    """
    if rows.size == 0:
        return
    ar = np.arange(rows.size)
    perm = np.tile(np.arange(L), (rows.size, 1))
    perm[ar, slot], perm[ar, last] = last, slot
    block = np.take_along_axis(Kinv[rows, :L, :L], perm[:, :, None], axis=1)
    block = np.take_along_axis(block, perm[:, None, :], axis=2)
    c = block[ar, :, last]
    block = block - c[:, :, None] * c[:, None, :] / c[ar, last][:, None, None]
    block[ar, last, :] = 0.0
    block[ar, :, last] = 0.0
    block[ar, last, last] = 1.0
    Kinv[rows, :L, :L] = block


def inverse_spd_batch(K: np.ndarray) -> np.ndarray:
    """``K⁻¹`` for a batch (b, k, k); the pseudo-inverse where ``K`` is singular."""
    try:
        return np.linalg.inv(K)
    except np.linalg.LinAlgError:
        return np.linalg.pinv(K, hermitian=True)


def solve_spd_batch(K: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """``K⁻¹ rhs`` for a batch (b, n, n), (b, n); the pseudo-inverse where ``K`` is singular."""
    try:
        return np.linalg.solve(K, rhs[..., None])[..., 0]
    except np.linalg.LinAlgError:
        return (np.linalg.pinv(K, hermitian=True) @ rhs[..., None])[..., 0]


def parallel_groups(directions: np.ndarray) -> list[np.ndarray]:
    """Index arrays of rows with the same unit direction (to 1e-12), groups of two or more."""
    groups: dict[bytes, list[int]] = {}
    rounded = np.round(directions, 12) + 0.0  # + 0.0 turns -0.0 into 0.0
    for i, row in enumerate(rounded):
        if np.any(row):
            groups.setdefault(row.tobytes(), []).append(i)
    return [np.array(g) for g in groups.values() if len(g) > 1]
