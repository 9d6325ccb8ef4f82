"""The paper's form of the unravelled network (with an optional feedback K)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..exceptions import ProblemDefinitionError, ShapeError
from ._base import ExplicitNetwork
from ._registry import Construction, ConstructionOptions, register_construction, register_network
from ._results import ContractionCertificate

__all__ = ["PaperNetwork", "PaperOptions"]


@dataclass(frozen=True, kw_only=True, eq=False)
class PaperOptions(ConstructionOptions):
    """Options of ``method="paper"``: the feedback ``K`` (a number or an (m, m) matrix; 0 is the paper's plain
    form) and the step(s) ``alpha`` (a number or (m,) per row; default the implicit network's).
    """

    K: float | np.ndarray = 0.0
    alpha: float | np.ndarray | None = None

    def __post_init__(self):
        K = np.asarray(self.K, dtype=float) if not isinstance(self.K, (bool, np.bool_)) else None
        if K is None or K.ndim not in (0, 2) or not np.all(np.isfinite(K)):
            raise ProblemDefinitionError(f"K: expected a finite number or an (m, m) matrix, got {self.K!r}")
        if K.ndim == 2 and K.shape[0] != K.shape[1]:
            raise ShapeError(f"K: expected shape (m, m), got {K.shape}")
        if K.ndim == 0 and not 0.0 <= float(K) < 1.0:
            raise ProblemDefinitionError(f"K: a scalar feedback must lie in [0, 1) (0: the plain form; 1 would stop "
                                         f"the iteration, outside [0, 1) it may diverge), got {float(K)!r}")
        object.__setattr__(self, "K", float(K) if K.ndim == 0 else K)
        if self.alpha is not None:
            a = np.asarray(self.alpha, dtype=float)
            if a.ndim > 1 or not np.all(np.isfinite(a)) or np.any(a <= 0):
                raise ProblemDefinitionError(f"alpha: expected finite steps > 0 (a number or (m,)), got {self.alpha!r}")
            object.__setattr__(self, "alpha", float(a) if a.ndim == 0 else a)

    def tuned(self) -> tuple[str, ...]:
        """Nothing is tuned: ``alpha=None`` means the implicit network's steps."""
        return ()


@register_network
class PaperNetwork(ExplicitNetwork):
    """The paper's form ``w⁺ = D relu(w) + ζ + K (w - D relu(w) - ζ)``, ``U = W_f relu(w) + Y_f x``.

    Layer state ``(w,)`` of shape (B, m). ``K`` is a scalar or an (m, m) matrix.
    """

    method = "paper"
    Dt: torch.Tensor
    Yt: torch.Tensor
    b: torch.Tensor
    Kt: torch.Tensor
    IKt: torch.Tensor
    k: float
    _cert: ContractionCertificate | None

    def __init__(self, net, qp, kept_rows, depth, dtype, options: PaperOptions, *,
                 cert: ContractionCertificate | None = None, pruned: bool = False):
        super().__init__(net, qp, kept_rows, depth, dtype, options, pruned=pruned)
        M = qp.dual_hessian
        K = options.K
        a = np.asarray(net.alpha[kept_rows] if options.alpha is None else options.alpha, float)
        if a.ndim == 1 and a.shape != (qp.m,):
            raise ShapeError(f"alpha: expected a number or shape (m,) = ({qp.m},), got {a.shape}")
        a = np.broadcast_to(a, (qp.m,)).copy()
        if np.ndim(K) == 2 and np.shape(K) != (qp.m, qp.m):
            raise ShapeError(f"K: expected shape (m, m) = ({qp.m}, {qp.m}), got {np.shape(K)}")
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
        if cert is None or not cert.exists or cert.P is None or cert.rate is None:
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

    def get_config(self) -> tuple[dict, dict]:
        """``K`` (a number in the fields; a matrix is kept in the buffers), the steps, the certificate."""
        fields: dict = {}
        arrays: dict = {"param.alpha": np.asarray(self.alpha, float)}
        if self.scalar_K:
            fields["K"] = self.k
        cert = self._cert
        if cert is not None:
            fields["certificate"] = dict(exists=cert.exists, rate=cert.rate, reason=cert.reason)
            if cert.exists:
                arrays["param.cert_P"] = cert.P
        return fields, arrays

    @classmethod
    def from_config(cls, net, qp, kept_rows, depth, dtype, fields, arrays, *, pruned=False):
        """The network with the stored steps, feedback and certificate."""
        K = fields["K"] if "K" in fields else arrays["buffer.Kt"].T
        cert = None
        if "certificate" in fields:
            c = fields["certificate"]
            cert = ContractionCertificate(c["exists"], c["rate"], None if np.ndim(K) == 0 else K,
                                          arrays.get("param.cert_P"), c["reason"])
        model = cls(net, qp, kept_rows, depth, dtype, PaperOptions(K=K, alpha=arrays["param.alpha"]), cert=cert,
                    pruned=pruned)
        if fields.get("method"):
            model.method = fields["method"]
        return model


register_construction(Construction(
    name="paper", options=PaperOptions, build=PaperNetwork, ladders=lambda qp: {},
    summary="the paper's form w+ = D relu(w) + zeta + K(w - D relu(w) - zeta); K = 0 is projected gradient"))
