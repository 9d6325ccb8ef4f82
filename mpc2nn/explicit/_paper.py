"""The paper's form of the unravelled network (with an optional feedback K)."""

from __future__ import annotations

import math

import numpy as np
import torch

from ._base import ExplicitNetwork
from ._lmi import ContractionCertificate

__all__ = ["PaperNetwork"]


class PaperNetwork(ExplicitNetwork):
    """The paper's form ``w⁺ = D relu(w) + ζ + K (w - D relu(w) - ζ)``, ``U = W_f relu(w) + Y_f x``.

    Layer state ``(w,)`` of shape (B, m). ``K`` is a scalar or an (m, m) matrix.
    """

    method = "paper"

    def __init__(self, net, qp, kept_rows, depth, dtype, options, alpha: np.ndarray, K,
                 cert: ContractionCertificate | None = None):
        super().__init__(net, qp, kept_rows, depth, dtype, options)
        M = qp.dual_hessian
        a = np.asarray(alpha, float)
        D = np.eye(qp.m) - a[:, None] * M
        self.register_buffer("Dt", self._t(D.T))
        self.register_buffer("Yt", self._t((-a[:, None] * qp.dual_linear).T))
        self.register_buffer("b", self._t(-a * qp.w))
        self.scalar_K = np.ndim(K) == 0
        if self.scalar_K:
            self.k = float(K)
        else:
            K = np.asarray(K, float)
            self.register_buffer("Kt", self._t(K.T))
            self.register_buffer("IKt", self._t((np.eye(qp.m) - K).T))
        self.alpha = a
        self._cert = cert

    def context(self, x):
        return (x @ self.Yt + self.b,)

    def init_state(self, x):
        return (x @ self.zero_m,)

    def layer(self, state, ctx):
        w, zeta = state[0], ctx[0]
        t = torch.relu(w) @ self.Dt + zeta
        if self.scalar_K:
            if self.k == 0.0:
                return (t,)
            return (t + self.k * (w - t),)
        return (w @ self.Kt + t @ self.IKt,)

    def _residual(self, state, ctx):
        w = state[0]
        return torch.linalg.vector_norm(w - torch.relu(w) @ self.Dt - ctx[0], dim=1).double()

    def decision(self, state, x):
        return torch.relu(state[0]) @ self.W_f.T + x @ self.Y_f.T

    def dual(self, state):
        return torch.relu(state[0])

    def active_guess(self, state):
        return state[0] > 0

    def certificate(self):
        if self._cert is None:
            return super().certificate()
        return self._cert

    def _a_priori(self, X):
        cert = self._cert
        if cert is None or not cert.exists:
            return None
        # ‖w_J - w*‖_P <= ρ^J ‖w_0 - w*‖_P <= ρ^J ‖T(w_0) - w_0‖_P / (1 - ρ), w_0 = 0
        with torch.no_grad():
            x = self._states(X)
            ctx = self.context(x)
            w0 = self.init_state(x)
            r0 = (self.layer(w0, ctx)[0] - w0[0]).double().numpy()
        P = cert.P
        r0P = np.sqrt(np.einsum("bi,ij,bj->b", r0, P, r0))
        lam_min = float(np.linalg.eigvalsh(P)[0])
        c_f = float(np.linalg.norm(self.W_f.double().numpy(), axis=1).max())
        return c_f / math.sqrt(lam_min) * cert.rate ** self.depth * r0P / (1.0 - cert.rate)
