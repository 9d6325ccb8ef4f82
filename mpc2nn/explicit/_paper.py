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
    """Options of ``method="paper"``; nothing is tuned.

    Parameters
    ----------
    K : float or array_like, shape (m, m)
        The feedback: a number or a matrix; 0 is the paper's plain form (one projected-gradient
        step on the dual per layer).
    alpha : float or array_like, shape (m,), optional
        The step(s), one for all rows or one per row (default the implicit network's).
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

    Layer state ``(w,)`` of shape (B, m); ``D = I - diag(α) M`` and ``ζ = -diag(α) q(x)`` are those of
    the implicit network with the options' steps. ``K`` is a scalar or an (m, m) matrix.

    Parameters
    ----------
    net : ImplicitNetwork
        The implicit network approximated.
    qp : CondensedQP
        The QP the layers iterate on (``net.qp`` or its kept rows).
    kept_rows : array_like of int
        Rows of ``net.qp`` kept in ``qp``.
    depth : int
        Number of layers.
    dtype : torch.dtype
        Dtype of the buffers.
    options : PaperOptions
        The feedback ``K`` and the steps ``alpha``.
    cert : ContractionCertificate, optional
        The LMI's certificate for ``K`` (``method="lmi"``), which gives the a-priori bound.
    pruned : bool
        Rows were dropped by LP over a box.
    """

    method = "paper"
    _FAST_SCALARS = ("k", "scalar_K")
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

    def _fast_spec(self):
        common = dict(Yt=self.Yt, b=self.b, Dt=self.Dt, WfT=self.W_f.T, YfT=self.Y_f.T)
        if self.scalar_K:
            return ("paper", common, dict(k=self.k))
        return ("paper-matrix", dict(common, Kt=self.Kt, IKt=self.IKt), {})

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
        """``‖U_J - U*‖∞`` from the certified rate ρ in the P-norm, with the network's rounding in its dtype.

        Exact arithmetic: ``‖w_J - w*‖_P <= ρ^J ‖w*‖_P <= ρ^J r₀/(1 - ρ)``, ``r₀ = ‖T(0) - 0‖_P``. The
        network computes each layer in its dtype (unit roundoff ``u``) with rounded weights, so the
        iterates are ``v_{j+1} = T(v_j) + e_j`` with ``|e_j| <= γ(|K||v| + |I-K|(2|D||v| + 2s))`` componentwise
        (``γ = k·u/(1 - k·u)``, ``k = 2m + n_θ + 4`` products summed, ``s = |Y||x| + |b|`` bounds ``|ζ|``), i.e.
        ``‖e_j‖_P <= κ c₁ ‖v_j‖_P + √λmax c₀`` (``κ² = λmax/λmin`` of ``P``). With ``R = sup ‖v_j‖_P`` this
        gives ``R <= (2W + √λmax c₀/(1-ρ)) / (1 - q)``, ``W = r₀/(1-ρ)``, ``q = κ c₁/(1-ρ)`` (``inf`` unless
        ``q < 1``), and ``‖v_J - w*‖_P <= ρ^J W + (κ c₁ R + √λmax c₀)/(1-ρ)``; the output adds its own
        rounding ``γ(‖W_f‖ R/√λmin + |Y_f||x|)``. Without this floor the bound fell to 1e-64 at depth 3000
        while the float32 error stayed at 1.6e-5 (issue 13).
        """
        cert = self._cert
        if cert is None or not cert.exists or cert.P is None or cert.rate is None:
            return None
        with torch.no_grad():
            x = self._states(X)
            ctx = self.context(x)
            w0 = self.init_state(x)
            r0 = (self.layer(w0, ctx)[0] - w0[0]).double().numpy()
        P, rho = cert.P, cert.rate
        eig = np.linalg.eigvalsh(P)
        lam_min, lam_max = float(eig[0]), float(eig[-1])
        kappa = math.sqrt(lam_max / lam_min)
        W_f = self.W_f.double().numpy()
        c_f = float(np.linalg.norm(W_f, axis=1).max())
        # rounding: unit roundoff of the dtype, products of up to k terms per entry
        m, Xd = self.qp.m, np.asarray(X, float)
        k = 2 * m + self.n_theta + 4
        u = float(torch.finfo(self._dtype).eps) / 2.0
        g = k * u / (1.0 - k * u)
        D = np.eye(m) - self.alpha[:, None] * self.qp.dual_hessian
        K = self.k * np.eye(m) if self.scalar_K else self.Kt.double().numpy().T
        nD, nK, nIK = (float(np.linalg.norm(np.abs(A_), 2)) for A_ in (D, K, np.eye(m) - K))
        Yabs = np.abs(self.alpha[:, None] * self.qp.dual_linear)
        s = np.linalg.norm(Xd @ Yabs.T + np.abs(self.alpha * self.qp.w), axis=1)
        c1 = g * (nK + 2.0 * nIK * nD)
        c0 = 2.0 * g * nIK * s
        r0P = np.sqrt(np.einsum("bi,ij,bj->b", r0, P, r0)) + math.sqrt(lam_max) * g * s
        Wb = r0P / (1.0 - rho)
        q = kappa * c1 / (1.0 - rho)
        if q >= 1.0:
            return np.full(Xd.shape[0], np.inf)
        R = (2.0 * Wb + math.sqrt(lam_max) * c0 / (1.0 - rho)) / (1.0 - q)
        dist_P = rho ** self.depth * Wb + (kappa * c1 * R + math.sqrt(lam_max) * c0) / (1.0 - rho)
        out_round = g * (c_f * R / math.sqrt(lam_min)
                         + (np.abs(Xd) @ np.abs(self.Y_f.double().numpy()).T).max(axis=1, initial=0.0))
        return c_f / math.sqrt(lam_min) * dist_P + out_round

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
        """The network with the stored steps, feedback and certificate (see :meth:`ExplicitNetwork.from_config`)."""
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
