"""Vectorisation maps of the converse direction (column-major ``vec``)."""

from __future__ import annotations

import numpy as np

__all__ = ["cost_maps", "commutation"]


def cost_maps(N: int, n_x: int, n_u: int, Phi: np.ndarray, Gamma: np.ndarray):
    """Column-major linear maps ``vec(Q), vec(R), vec(P) ↦ vec(H)`` and ``↦ vec(F)``."""
    n_U = N * n_u
    L_HQ = np.zeros((n_U * n_U, n_x * n_x))
    L_FQ = np.zeros((n_U * n_x, n_x * n_x))
    L_HR = np.zeros((n_U * n_U, n_u * n_u))
    for k in range(N):
        Gk, Pk = Gamma[k * n_x:(k + 1) * n_x], Phi[k * n_x:(k + 1) * n_x]
        Sk = np.zeros((n_u, n_U))
        Sk[:, k * n_u:(k + 1) * n_u] = np.eye(n_u)
        L_HR += np.kron(Sk.T, Sk.T)
        if k < N - 1:
            L_HQ += np.kron(Gk.T, Gk.T)
            L_FQ += np.kron(Pk.T, Gk.T)
    GN, PN = Gamma[-n_x:], Phi[-n_x:]
    return L_HQ, L_HR, np.kron(GN.T, GN.T), L_FQ, np.kron(PN.T, GN.T)


def commutation(p: int, q: int) -> np.ndarray:
    """``T`` with ``T vec(Z) = vec(Zᵀ)`` for ``Z`` of shape (p, q), column-major."""
    T = np.zeros((p * q, p * q))
    for i in range(p):
        for j in range(q):
            T[j + i * q, i + j * p] = 1.0
    return T
