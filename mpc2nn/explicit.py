"""Explicit (unravelled) torch networks from an implicit network, with error bounds.

:func:`unravel` turns an :class:`~mpc2nn.ImplicitNetwork` into a feed-forward
:class:`ExplicitNetwork` (a ``torch.nn.Module``) of a chosen depth. Every pure
construction uses only matrix products, additions, scalings and ReLU, so it
exports to ONNX/TorchScript and to neural-network verifiers. Constructions
(``method=``):

``"paper"``
    The paper's form ``w[j+1] = D relu(w[j]) + ζ + K (w[j] - D relu(w[j]) - ζ)``
    with ``D = W``, ``ζ = Y x + b`` of the implicit network, zero initial state
    or a warm start. ``K = 0`` is one projected-gradient step on the dual per layer.
``"lmi"``
    The paper's form with a feedback ``K`` designed by an LMI (cvxpy) that
    certifies a contraction rate ``ρ < 1`` in a weighted norm. A certificate
    exists only when ``G`` has full row rank (DESIGN.md §2); otherwise the
    construction says so and falls back to ``K = 0`` with a-posteriori bounds.
``"momentum"``
    Nesterov-momentum dual projected gradient
    ``λ⁺ = relu(v - γ (M v + q(x)))``, ``v = λ + β (λ - λ_prev)``; the layer
    state ``(y, λ_prev)`` keeps it Linear+ReLU. ``β`` is tuned on sampled states.
``"admm"`` (default)
    An OSQP-style ADMM unroll of the condensed QP (the ReLU-QP construction):
    ``U⁺ = (H + σI + ρGᵀG)⁻¹(σU - Fx + Gᵀ(ρz - ν))``, a relaxed projection
    ``z⁺ = min(·, w + Ex) = · - relu(· - w - Ex)``. ``ρ`` and the relaxation are
    tuned on sampled states (the states are never the ones the accuracy is
    reported on, when the caller keeps them apart).
``"hybrid"``
    Not a pure ReLU network: ``depth`` layers of a pure construction, then the
    active set read off the sign of the layer state, a reduced KKT solve,
    a KKT-residual certificate and a fallback to the exact solver for the
    samples that are not certified. Returns a :class:`HybridNetwork`.

Any construction may drop constraint rows that cannot be active anywhere in a
box of states (``prune=True``; an LP per row proves it, see
:meth:`ImplicitNetwork.well_posedness`), which changes nothing in the box.

Error bounds (:meth:`ExplicitNetwork.error_bound`) are per sample and
rigorous up to floating-point rounding; see :func:`dual_gap_bound` for the
a-posteriori bound used by every construction and :class:`ContractionCertificate`
for the a-priori one.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass

import numpy as np
import scipy.optimize
import torch

from ._checks import require
from .exceptions import ProblemDefinitionError, ShapeError
from .implicit import CERTIFICATE_TOL, ImplicitNetwork, compile
from .qp import CondensedQP

__all__ = ["unravel", "ExplicitNetwork", "PaperNetwork", "MomentumNetwork", "ADMMNetwork", "HybridNetwork",
           "HybridResult", "ErrorBound", "LayerHistory", "DepthSelection", "ContractionCertificate",
           "design_feedback", "dual_gap_bound", "throughput", "METHODS"]

#: Constructions accepted by :func:`unravel`.
METHODS = ("admm", "momentum", "paper", "lmi", "hybrid")

#: Momentum ladder searched by ``method="momentum"`` when ``beta`` is not given.
BETA_LADDER = (0.0, 0.5, 0.7, 0.8, 0.85, 0.9, 0.93, 0.95, 0.97, 0.98)
#: ADMM penalty ladder (multiplied by ``trace(H)/m``, rows of G at unit norm) and relaxations searched by ``method="admm"``.
RHO_LADDER = tuple(float(v) for v in np.logspace(-4, 4, 25))
RELAX_LADDER = (1.6, 1.8, 1.9)
#: Relative allowance for float64 rounding added to the a-posteriori bound.
ROUNDING_SLACK = 1e-12
#: Largest depth tried by the tolerance search of :func:`unravel`.
MAX_DEPTH = 20000


# ---------------------------------------------------------------------------------------------
# results
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ErrorBound:
    """Per-sample upper bounds on ``‖U - U*‖∞`` of an explicit network's output.

    Attributes
    ----------
    bound : (B,) upper bound (``inf`` where none could be proved)
    kind : (B,) str, ``"a-priori"`` (certified contraction, depends on ``x`` only) or
        ``"a-posteriori"`` (duality gap of the last layer's dual iterate)
    assumptions : plain-language statement of what the bound relies on
    """

    bound: np.ndarray
    kind: np.ndarray
    assumptions: str


@dataclass(frozen=True)
class LayerHistory:
    """What happens layer by layer for a batch of ``B`` states.

    Attributes
    ----------
    residual : (J, B) ``‖s_{j} - T(s_{j})‖₂`` of the layer state after layer ``j = 1..J``
        (for the paper's form: ``‖w - D relu(w) - ζ‖₂``, the published residual)
    error : (J, B) ``‖U_j - U*‖∞`` when a reference was given, else ``None``
    U : (B, N·n_u) output after the last layer
    state : tuple of tensors, the layer state after the last layer (pass it as ``state0``
        to continue, e.g. a warm start at the next closed-loop step)
    """

    residual: np.ndarray
    error: np.ndarray | None
    U: np.ndarray
    state: tuple


@dataclass(frozen=True)
class DepthSelection:
    """How :func:`unravel` chose the depth for a tolerance.

    Attributes
    ----------
    tol : requested ``max ‖U - U*‖∞``; depth : chosen depth (``None`` if not reached)
    max_error : largest error on the selection states at that depth
    n_states : number of selection states; guarantee : what the choice guarantees
    """

    tol: float
    depth: int | None
    max_error: float
    n_states: int
    guarantee: str


@dataclass(frozen=True)
class ContractionCertificate:
    """Result of the LMI design of the feedback ``K`` of the paper's form.

    If ``exists``: ``‖Δw⁺‖_P <= rate ‖Δw‖_P`` for every pair of layer states and
    every state ``x``, with ``P`` (m, m) and ``K`` (m, m). Otherwise ``reason``
    says why no certificate exists (e.g. rank-deficient ``G``).
    """

    exists: bool
    rate: float | None
    K: np.ndarray | None
    P: np.ndarray | None
    reason: str


# ---------------------------------------------------------------------------------------------
# the a-posteriori bound
# ---------------------------------------------------------------------------------------------
def dual_gap_bound(qp: CondensedQP, X: np.ndarray, lam: np.ndarray, U_out: np.ndarray) -> np.ndarray:
    """Per-sample bound on ``‖U_out - U*‖∞`` from a dual point ``λ >= 0``.

    With ``U(λ) = -H⁻¹(Fx + Gᵀλ)`` (the minimiser of the Lagrangian) and any
    feasible ``Ũ`` (``GŨ <= w + Ex``), strong convexity of the Lagrangian and
    weak duality give

        ½‖U(λ) - U*‖²_H  <=  f(Ũ) - L(U(λ), λ)  =  λᵀ(w + Ex - GŨ) + ½‖Ũ - U(λ)‖²_H,

    (both terms are nonnegative, no cancellation), and
    ``|e_i| <= sqrt((H⁻¹)_ii) ‖e‖_H``. ``Ũ`` is ``U(λ)`` or ``U_out`` when
    feasible, else the point of the segment towards a Chebyshev centre of the
    feasible set (one LP per such state) where it becomes feasible. The bound
    is ``‖U_out - U(λ)‖∞ + max_i sqrt((H⁻¹)_ii) sqrt(2·gap)``; it assumes only
    ``λ >= 0``; :data:`ROUNDING_SLACK` ``· max(1, ‖U_out‖∞)`` is added for float64 rounding. Where the
    feasible set has no interior the bound is ``inf`` unless a candidate is feasible.

    Parameters
    ----------
    qp : CondensedQP; X : (B, n_x) states; lam : (B, m) dual point (negative entries are
        clipped to 0); U_out : (B, n_z) the decision vector to bound. For a QP with an
        output map ``U = T z`` the bound also holds for ``‖T z - T z*‖∞``: each row of ``T``
        (move blocking, slacks dropped) is a unit vector.

    Returns
    -------
    (B,) bounds
    """
    X = qp.check_parameters(X)
    lam = np.maximum(np.asarray(lam, float), 0.0)
    U_out = np.asarray(U_out, float)
    Hinv = qp.H_inv
    U_l = -(X @ qp.F.T + lam @ qp.G) @ Hinv
    h = qp.w + X @ qp.E.T
    c_H = float(np.sqrt(np.diag(Hinv)).max())
    best = np.full(X.shape[0], np.inf)
    centre: dict[int, np.ndarray | None] = {}
    for cand in (U_l, U_out):
        s = h - cand @ qp.G.T
        viol = np.maximum(-s, 0.0)
        U_t = cand.copy()
        for i in np.flatnonzero(viol.max(axis=1, initial=0.0) > 0):
            if i not in centre:
                centre[i] = _chebyshev_centre(qp, h[i])
            Uc = centre[i]
            if Uc is None:
                U_t[i] = np.nan
                continue
            sc = h[i] - qp.G @ Uc
            rows = viol[i] > 0
            theta = float(np.max(viol[i, rows] / (viol[i, rows] + sc[rows])))
            U_t[i] = cand[i] + theta * (Uc - cand[i])
        s_t = np.maximum(h - U_t @ qp.G.T, 0.0)
        d = U_t - U_l
        gap = np.einsum("bi,bi->b", lam, s_t) + 0.5 * np.einsum("bi,ij,bj->b", d, qp.H, d)
        with np.errstate(invalid="ignore"):
            b = (np.abs(U_out - U_l).max(axis=1, initial=0.0) + c_H * np.sqrt(2.0 * np.maximum(gap, 0.0))
                 + ROUNDING_SLACK * np.maximum(1.0, np.abs(U_out).max(axis=1, initial=0.0)))
        best = np.fmin(best, np.where(np.isnan(b), np.inf, b))
    return best


def _chebyshev_centre(qp: CondensedQP, h: np.ndarray) -> np.ndarray | None:
    """A point of ``{z : Gz <= h}`` with the largest normalised slack (``None`` if that slack is <= 0)."""
    n = qp.n_z
    norms = np.linalg.norm(qp.G, axis=1)
    c = np.zeros(n + 1)
    c[-1] = -1.0
    A = np.hstack([qp.G, norms[:, None]])
    res = scipy.optimize.linprog(c, A_ub=A, b_ub=h, bounds=[(None, None)] * n + [(None, 1.0)], method="highs")
    if res.status != 0 or res.x[-1] <= 0:
        return None
    return res.x[:n]


# ---------------------------------------------------------------------------------------------
# networks
# ---------------------------------------------------------------------------------------------
class ExplicitNetwork(torch.nn.Module):
    """A feed-forward network of ``depth`` layers approximating the MPC law ``x ↦ U*(x)``.

    ``forward(x)`` maps states ``(B, n_x)`` to input sequences ``(B, N·n_u)``;
    :meth:`control` returns the first input ``(B, n_u)``. Fixed matrices are
    buffers (float64 by default). Subclasses define one construction each.

    Attributes
    ----------
    depth : number of layers; method : construction name; net : the ImplicitNetwork it came from;
    qp : the QP the layers iterate on (the pruned one when ``prune=True``);
    kept_rows : indices of ``net.qp``'s rows the layers keep; options : dict of the
    construction's parameters; selection : DepthSelection or ``None``
    """

    method = "explicit"

    def __init__(self, net: ImplicitNetwork, qp: CondensedQP, kept_rows: np.ndarray, depth: int,
                 dtype: torch.dtype, options: dict):
        super().__init__()
        self.net, self.qp, self.depth = net, qp, int(depth)
        self.kept_rows = np.asarray(kept_rows, dtype=np.int64)
        self.options = dict(options)
        self.selection: DepthSelection | None = None
        self.n_x, self.n_theta, self.n_U, self.n_u = qp.n_x, qp.n_theta, qp.n_U, qp.n_u
        self._dtype = dtype
        self.register_buffer("Y_f", self._t(-qp.H_inv @ qp.F))  # z = W_f λ + Y_f θ
        self.register_buffer("W_f", self._t(-qp.H_inv @ qp.G.T))
        # U = T z (None: z is U)
        self.register_buffer("Tt", None if qp.output_map is None else self._t(qp.output_map.T))
        # zero initial states as θ @ 0 (traceable, exports as a MatMul)
        self.register_buffer("zero_m", torch.zeros(qp.n_theta, qp.m, dtype=dtype))
        self.register_buffer("zero_U", torch.zeros(qp.n_theta, qp.n_z, dtype=dtype))

    def _t(self, a) -> torch.Tensor:
        return torch.tensor(np.array(a, dtype=float), dtype=self._dtype)

    # --- subclass hooks -----------------------------------------------------------------------
    def init_state(self, x: torch.Tensor) -> tuple:
        """Zero layer state for states ``x`` (B, n_x)."""
        raise NotImplementedError

    def layer(self, state: tuple, ctx: tuple) -> tuple:
        """One layer: the next layer state."""
        raise NotImplementedError

    def context(self, x: torch.Tensor) -> tuple:
        """Per-forward affine terms in ``x`` (computed once, shared by all layers)."""
        raise NotImplementedError

    def decision(self, state: tuple, x: torch.Tensor) -> torch.Tensor:
        """``(B, n_z)`` decision vector ``z`` of a layer state (``U = T z``)."""
        raise NotImplementedError

    def output(self, state: tuple, x: torch.Tensor) -> torch.Tensor:
        """``(B, N·n_u)`` input sequences ``U = T z`` of a layer state."""
        z = self.decision(state, x)
        return z if self.Tt is None else z @ self.Tt

    def dual(self, state: tuple) -> torch.Tensor:
        """``(B, m_kept)`` nonnegative dual iterate of a layer state (for bounds and the hybrid mode)."""
        raise NotImplementedError

    def active_guess(self, state: tuple) -> torch.Tensor:
        """``(B, m_kept)`` bool guess of the active set read off the sign of the layer state."""
        raise NotImplementedError

    # --- evaluation ---------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Input sequences ``(B, N·n_u)`` for states ``x`` (B, n_x)."""
        ctx = self.context(x)
        state = self.init_state(x)
        for _ in range(self.depth):
            state = self.layer(state, ctx)
        return self.output(state, x)

    def control(self, x: torch.Tensor) -> torch.Tensor:
        """First inputs ``(B, n_u)`` for states ``x`` (B, n_x)."""
        return self.forward(x)[:, :self.n_u]

    def _states(self, X) -> torch.Tensor:
        if isinstance(X, torch.Tensor):
            X = X.detach().cpu().numpy()
        return torch.as_tensor(self.qp.check_parameters(X), dtype=self._dtype)

    def evaluate(self, X) -> np.ndarray:
        """``(B, N·n_u)`` numpy float64 outputs for states ``X`` (B, n_x) or (n_x,), without gradients."""
        with torch.no_grad():
            return self.forward(self._states(X)).double().numpy()

    def history(self, X, *, depth: int | None = None, state0: tuple | None = None, reference=None
                ) -> LayerHistory:
        """Run ``depth`` layers (default ``self.depth``) recording the residual of every layer.

        Parameters
        ----------
        X : (B, n_x) states
        depth : int, optional
        state0 : tuple of tensors, optional
            Initial layer state (default zero); the ``state`` of a previous
            :class:`LayerHistory` gives the paper's warm start.
        reference : (B, N·n_u), optional
            Exact outputs; when given, the per-layer error ``‖U_j - U*‖∞`` is recorded.
        """
        x = self._states(X)
        J = self.depth if depth is None else int(depth)
        ref = None if reference is None else torch.as_tensor(np.asarray(reference, float), dtype=self._dtype)
        if ref is not None and ref.shape != (x.shape[0], self.n_U):
            raise ShapeError(f"reference: expected shape (B, N·n_u) = ({x.shape[0]}, {self.n_U}), "
                             f"got {tuple(ref.shape)}")
        with torch.no_grad():
            ctx = self.context(x)
            state = self.init_state(x) if state0 is None else tuple(s.clone() for s in state0)
            res = torch.empty(J, x.shape[0], dtype=torch.float64)
            err = torch.empty(J, x.shape[0], dtype=torch.float64) if ref is not None else None
            for j in range(J):
                new = self.layer(state, ctx)
                state = new
                res[j] = self._residual(state, ctx)
                if err is not None:
                    err[j] = (self.output(state, x) - ref).abs().amax(dim=1)
            U = self.output(state, x)
        return LayerHistory(res.numpy(), None if err is None else err.numpy(), U.double().numpy(), state)

    def _residual(self, state: tuple, ctx: tuple) -> torch.Tensor:
        nxt = self.layer(state, ctx)
        return torch.sqrt(sum(((a - b) ** 2).sum(dim=1) for a, b in zip(nxt, state))).double()

    def run(self, X, *, state0: tuple | None = None) -> tuple:
        """``(U, state)``: outputs ``(B, N·n_u)`` and the final layer state, from ``state0`` (default zero)."""
        x = self._states(X)
        with torch.no_grad():
            ctx = self.context(x)
            state = self.init_state(x) if state0 is None else state0
            for _ in range(self.depth):
                state = self.layer(state, ctx)
            return self.output(state, x).double().numpy(), state

    def full_dual(self, state: tuple) -> np.ndarray:
        """``(B, m)`` dual iterate in the rows of ``net.qp`` (zeros on pruned rows)."""
        lam_k = self.dual(state).double().numpy()
        lam = np.zeros((lam_k.shape[0], self.net.m))
        lam[:, self.kept_rows] = lam_k
        return lam

    def error_bound(self, X) -> ErrorBound:
        """Per-sample upper bound on ``‖U - U*‖∞`` of this network's output at states ``X``.

        A-priori where a contraction certificate exists (see :meth:`certificate`),
        a-posteriori otherwise (:func:`dual_gap_bound` on the last layer's dual iterate,
        always w.r.t. the unpruned QP ``net.qp``). The smaller of the two is returned.
        """
        Xn = self.qp.check_parameters(X if not isinstance(X, torch.Tensor) else X.detach().cpu().numpy())
        _, state = self.run(Xn)
        with torch.no_grad():
            z = self.decision(state, torch.as_tensor(Xn, dtype=self._dtype)).double().numpy()
        post = dual_gap_bound(self.net.qp, Xn, self.full_dual(state), z)
        prior = self._a_priori(Xn)
        if prior is None:
            return ErrorBound(post, np.full(post.shape, "a-posteriori"),
                              "λ >= 0 from the last layer, duality gap with a feasible point (dual_gap_bound); "
                              "no contraction certificate exists for this construction")
        use_prior = prior <= post
        return ErrorBound(np.where(use_prior, prior, post), np.where(use_prior, "a-priori", "a-posteriori"),
                          "a-priori: certified contraction rate (LMI) from the zero initial state; "
                          "a-posteriori: duality gap of the last layer's dual iterate")

    def _a_priori(self, X: np.ndarray) -> np.ndarray | None:
        return None

    def certificate(self) -> ContractionCertificate:
        """The contraction certificate of this construction (none unless ``method="lmi"`` found one)."""
        return ContractionCertificate(False, None, None, None,
                                      f"construction '{self.method}' carries no contraction certificate")

    def extra_repr(self) -> str:
        return (f"method={self.method!r}, depth={self.depth}, n_theta={self.n_theta}, n_U={self.n_U}, "
                f"rows={self.qp.m}")


class PaperNetwork(ExplicitNetwork):
    """The paper's form ``w⁺ = D relu(w) + ζ + K (w - D relu(w) - ζ)``, ``U = W_f relu(w) + Y_f x``.

    Layer state ``(w,)`` of shape (B, m). ``K`` is a scalar or an (m, m) matrix.
    """

    method = "paper"

    def __init__(self, net, qp, kept_rows, depth, dtype, options, alpha: np.ndarray, K,
                 cert: ContractionCertificate | None = None):
        super().__init__(net, qp, kept_rows, depth, dtype, options)
        Hinv = qp.H_inv
        M = qp.G @ Hinv @ qp.G.T
        a = np.asarray(alpha, float)
        D = np.eye(qp.m) - a[:, None] * M
        self.register_buffer("Dt", self._t(D.T))
        self.register_buffer("Yt", self._t((-a[:, None] * (qp.G @ Hinv @ qp.F + qp.E)).T))
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


class MomentumNetwork(ExplicitNetwork):
    """Nesterov momentum on the dual: ``y⁺ = W v + ζ``, ``v = (1+β) relu(y) - β λ_prev``.

    ``W = I - γM``, ``ζ = -γ q(x)`` with the step ``γ = 1/λmax(M)`` per row; layer
    state ``(y, λ_prev)`` (B, m) each, ``λ_prev = relu(y)`` of the previous layer.
    """

    method = "momentum"

    def __init__(self, net, qp, kept_rows, depth, dtype, options, beta: float):
        super().__init__(net, qp, kept_rows, depth, dtype, options)
        Hinv = qp.H_inv
        M = qp.G @ Hinv @ qp.G.T
        gam = 1.0 / float(np.linalg.eigvalsh(M)[-1]) if qp.m else 1.0
        self.beta = float(beta)
        W = np.eye(qp.m) - gam * M
        self.register_buffer("Wt1", self._t((1.0 + self.beta) * W.T))
        self.register_buffer("Wt2", self._t(-self.beta * W.T))
        self.register_buffer("Yt", self._t((-gam * (qp.G @ Hinv @ qp.F + qp.E)).T))
        self.register_buffer("b", self._t(-gam * qp.w))

    def context(self, x):
        return (x @ self.Yt + self.b,)

    def init_state(self, x):
        z = x @ self.zero_m
        return (z, z)

    def layer(self, state, ctx):
        y, lam_prev = state
        lam = torch.relu(y)
        return (lam @ self.Wt1 + lam_prev @ self.Wt2 + ctx[0], lam)

    def decision(self, state, x):
        return torch.relu(state[0]) @ self.W_f.T + x @ self.Y_f.T

    def dual(self, state):
        return torch.relu(state[0])

    def active_guess(self, state):
        return state[0] > 0


class ADMMNetwork(ExplicitNetwork):
    """OSQP-style ADMM on the condensed QP as a Linear+ReLU network.

    Layer state ``(U, t)`` with ``ν = ρ relu(t)`` (the dual iterate) and
    ``z = h + t - relu(t)`` (the projected copy of ``GU``), ``h = w + Ex``, on the
    constraint rows scaled to unit norm (``ρ`` refers to the scaled rows):

        U⁺ = (H + σI + ρGᵀG)⁻¹ (σU - Fx + ρGᵀ(z - relu(t)))
        t⁺ = a G U⁺ + (1 - a) z + relu(t) - h          (relaxation a)
    """

    method = "admm"

    def __init__(self, net, qp, kept_rows, depth, dtype, options, rho: float, relax: float,
                 sigma: float = 1e-6):
        super().__init__(net, qp, kept_rows, depth, dtype, options)
        self.rho, self.relax, self.sigma = float(rho), float(relax), float(sigma)
        r = _row_scale(qp)  # iterate on the rows scaled to unit norm (same U, far better conditioned)
        G, E, w = r[:, None] * qp.G, r[:, None] * qp.E, r * qp.w
        K = np.linalg.inv(qp.H + sigma * np.eye(qp.n_z) + rho * G.T @ G)
        self.register_buffer("SKt", self._t(sigma * K.T))
        self.register_buffer("RGKt", self._t(rho * (G @ K.T)))
        self.register_buffer("FKt", self._t(-(K @ qp.F).T))
        self.register_buffer("aGt", self._t(self.relax * G.T))
        self.register_buffer("Et", self._t(E.T))
        self.register_buffer("w", self._t(w))
        self.register_buffer("nu_scale", self._t(self.rho * r))

    def context(self, x):
        return (x @ self.FKt, x @ self.Et + self.w)

    def init_state(self, x):
        return (x @ self.zero_U, x @ self.zero_m)

    def layer(self, state, ctx):
        U, t = state
        fk, h = ctx
        r = torch.relu(t)
        z = h + t - r
        U_new = U @ self.SKt + (z - r) @ self.RGKt + fk
        t_new = U_new @ self.aGt + (1.0 - self.relax) * z + r - h
        return (U_new, t_new)

    def decision(self, state, x):
        return state[0]

    def dual(self, state):
        return torch.relu(state[1]) * self.nu_scale

    def active_guess(self, state):
        return state[1] > 0


# ---------------------------------------------------------------------------------------------
# hybrid exact mode
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class HybridResult:
    """Outputs of the hybrid exact mode for ``B`` states.

    Attributes
    ----------
    U : (B, N·n_u) inputs (exact where ``status`` is ``"certified"`` or ``"fallback"``)
    certified : (B,) bool, the reduced KKT solve after the layers passed the KKT certificate
    status : (B,) str, ``"certified"``, ``"fallback"`` (solved by the exact solver),
        or the exact solver's status where that also failed (``"infeasible"``, ...)
    kkt_worst : (B,) relative KKT residual of the returned solution
    depth : layers run before the finishing stage
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


class HybridNetwork:
    """Hybrid exact mode — **not a pure ReLU network**.

    ``depth`` layers of a pure explicit network, then per sample: the active set
    read off the sign of the layer state, ``M_AA λ_A = -q_A`` solved (least squares
    where ``M_AA`` is singular), the KKT residuals of ``(U(λ), λ)`` checked against
    :data:`mpc2nn.CERTIFICATE_TOL`, and :meth:`ImplicitNetwork.solve` (warm-started
    from that active set) for the samples not certified.

    Attributes
    ----------
    explicit : the ExplicitNetwork run first; depth : its depth; net : the ImplicitNetwork
    """

    method = "hybrid"

    def __init__(self, explicit: ExplicitNetwork):
        self.explicit, self.net, self.depth = explicit, explicit.net, explicit.depth

    def solve(self, X) -> HybridResult:
        """Exact inputs for states ``X`` (B, n_x); see the class docstring."""
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
        status = np.where(certified, "certified", "fallback").astype(object)
        rest = np.flatnonzero(~certified)
        if rest.size:
            sol = self.net.solve(Xn[rest], y0=np.where(active[rest], 1.0, -1.0))
            U[rest] = sol.U
            worst[rest] = sol.kkt.worst
            status[rest] = np.where(sol.status == "solved", "fallback", sol.status)
        return HybridResult(U, certified, status.astype(str), worst, self.depth)

    def __call__(self, X) -> np.ndarray:
        """``(B, N·n_u)`` inputs of :meth:`solve`."""
        return self.solve(X).U


def _pruned_qp(qp: CondensedQP, kept: np.ndarray) -> CondensedQP:
    """The QP with only the constraint rows ``kept`` (those an LP showed can be active in the box)."""
    return qp.replace(G=qp.G[kept], w=qp.w[kept], E=qp.E[kept], problem=None,
                      row_labels=tuple(qp.row_labels[i] for i in kept), state_only=None,
                      name=qp.name + " (pruned)", source=qp.source + " (rows pruned by LP)")


def _row_scale(qp: CondensedQP) -> np.ndarray:
    """``(m,)`` factors ``1/‖G_i‖₂`` (1 for zero rows)."""
    n = np.linalg.norm(qp.G, axis=1)
    return 1.0 / np.where(n > 0, n, 1.0)


def _reduced_kkt(qp: CondensedQP, X: np.ndarray, active: np.ndarray) -> np.ndarray:
    """``λ`` (B, m): ``λ_A`` solving ``M_AA λ_A = -q_A`` (least squares), zero elsewhere; batched per active set."""
    M = qp.G @ qp.H_inv @ qp.G.T
    q = qp.w + X @ (qp.E + qp.G @ qp.H_inv @ qp.F).T
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


# ---------------------------------------------------------------------------------------------
# feedback design (LMI)
# ---------------------------------------------------------------------------------------------
def design_feedback(net: ImplicitNetwork, *, tol: float = 1e-4, max_rows: int = 60) -> ContractionCertificate:
    """Design ``K`` of the paper's form by an LMI that certifies a contraction rate.

    With ``A = [K, (I - K) D]`` acting on ``(Δw, Δσ)``, ``Δσ = relu(w₁) - relu(w₂)``
    (slope-restricted: ``Δσ_i (Δw_i - Δσ_i) >= 0``), the S-procedure gives the LMI in
    ``P ≻ 0``, ``Z = P K`` and a diagonal ``Λ >= 0``

        [[ρ²P, -Λ, Zᵀ], [-Λ, 2Λ, ((P - Z)D)ᵀ], [Z, (P - Z)D, P]] ⪰ 0,

    feasible iff ``‖Δw⁺‖_P <= ρ ‖Δw‖_P``; ``ρ`` is minimised by bisection (cvxpy
    with Clarabel, or SCS). No ``ρ < 1`` exists when ``G`` is rank deficient
    (``W`` has eigenvalue 1); that is reported without solving.

    Parameters
    ----------
    net : ImplicitNetwork; tol : bisection tolerance on ρ;
    max_rows : largest ``m`` for which the SDP (size ``3m``) is attempted
    """
    qp = net.qp
    m = qp.m
    rank = int(np.linalg.matrix_rank(qp.G)) if m else 0
    if rank < m:
        return ContractionCertificate(False, None, None, None,
                                      f"G has {m} rows but rank {rank}: W = I - ΓM has eigenvalue 1 on the null "
                                      "space of Gᵀ, so no feedback K gives a contraction (DESIGN.md §2); "
                                      "bounds are a-posteriori")
    if m > max_rows:
        return ContractionCertificate(False, None, None, None,
                                      f"m = {m} rows exceeds max_rows = {max_rows}: the SDP of size 3m was not "
                                      "attempted; pass a larger max_rows to try")
    cp = require("cvxpy", "lmi")
    D = net.W
    P = cp.Variable((m, m), symmetric=True)
    Z = cp.Variable((m, m))
    lam = cp.Variable(m, nonneg=True)
    rho2 = cp.Parameter(nonneg=True)
    L = cp.diag(lam)
    PZD = (P - Z) @ D
    big = cp.bmat([[rho2 * P, -L, Z.T], [-L, 2 * L, PZD.T], [Z, PZD, P]])
    big = 0.5 * (big + big.T)
    prob = cp.Problem(cp.Minimize(0), [big >> 0, P >> np.eye(m)])
    solver = "CLARABEL" if "CLARABEL" in cp.installed_solvers() else "SCS"

    def feasible(r: float):
        rho2.value = r * r
        try:
            with warnings.catch_warnings():  # inaccurate solutions are re-checked by _verified_rate
                warnings.simplefilter("ignore", UserWarning)
                prob.solve(solver=solver)
        except cp.error.SolverError:
            return None
        if prob.status in ("optimal", "optimal_inaccurate") and P.value is not None:
            Pv = 0.5 * (P.value + P.value.T)
            K = np.linalg.solve(Pv, Z.value)
            r_chk = _verified_rate(D, K, Pv, np.maximum(lam.value, 0.0))
            if r_chk is not None:
                return K, Pv, r_chk
        return None

    lo, hi, best = 0.0, 1.0, None
    while hi - lo > tol:
        mid = 0.5 * (lo + hi)
        got = feasible(mid)
        if got is None:
            lo = mid
        else:
            best, hi = got, mid
    if best is None:
        return ContractionCertificate(False, None, None, None,
                                      "the LMI has no solution with rate < 1 (solver: " + solver + ")")
    K, Pv, rate = best
    return ContractionCertificate(True, float(rate), K, Pv, f"LMI solved with {solver}, rate verified")


def _verified_rate(D: np.ndarray, K: np.ndarray, P: np.ndarray, lam: np.ndarray) -> float | None:
    """Smallest ``ρ < 1`` (to 1e-6) with ``[[ρ²P, -Λ], [-Λ, 2Λ]] - AᵀPA ⪰ 0`` by eigenvalues, else ``None``.

    Re-checks the solver's ``(P, K, Λ)`` in plain linear algebra, so the certified
    rate does not rest on the SDP solver's tolerances.
    """
    m = D.shape[0]
    A = np.hstack([K, (np.eye(m) - K) @ D])
    APA = A.T @ P @ A
    Lam = np.diag(lam)

    def ok(rho: float) -> bool:
        N = np.block([[rho * rho * P, -Lam], [-Lam, 2 * Lam]]) - APA
        return bool(np.linalg.eigvalsh(0.5 * (N + N.T))[0] >= 0.0)

    if not ok(1.0 - 1e-9):
        return None
    lo, hi = 0.0, 1.0 - 1e-9
    while hi - lo > 1e-6:
        mid = 0.5 * (lo + hi)
        lo, hi = (lo, mid) if ok(mid) else (mid, hi)
    return hi


# ---------------------------------------------------------------------------------------------
# construction and tuning
# ---------------------------------------------------------------------------------------------
def _sample_states(net: ImplicitNetwork, box, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` feasible states drawn uniformly from ``box`` and their exact outputs."""
    qp = net.qp
    if qp.n_theta != qp.n_x:
        raise ProblemDefinitionError(
            f"QP '{qp.name}' takes θ = ({qp._layout_text()}), not only the state, so states cannot be drawn from "
            "the box alone: pass tuning_states= and states= (or depth= with rho=, relax= / beta=) as parameter "
            "vectors built by qp.parameters(x, ...)")
    lo, hi = (np.asarray(b, float) for b in box)
    rng = np.random.default_rng(seed)
    Xs, Us = [], []
    got, tries = 0, 0
    while got < n:
        tries += 1
        if tries > 50:
            raise ProblemDefinitionError(f"box: fewer than {n} feasible states found in 50 draws of {2 * n}; "
                                         "pass feasible states with states=")
        X = lo + (hi - lo) * rng.random((2 * n, lo.size))
        sol = net.solve(X)
        Xs.append(X[sol.feasible]), Us.append(sol.U[sol.feasible])
        got += int(sol.feasible.sum())
    return np.vstack(Xs)[:n], np.vstack(Us)[:n]


def _check_box(box, n_x: int):
    if box is None:
        return None
    try:
        lo, hi = (np.asarray(b, float) for b in box)
    except (TypeError, ValueError):
        raise ShapeError(f"box: expected (lo, hi) with lo, hi of shape (n_x,) = ({n_x},)") from None
    if lo.shape != (n_x,) or hi.shape != (n_x,):
        raise ShapeError(f"box: expected (lo, hi) with lo, hi of shape (n_x,) = ({n_x},), got {lo.shape}, {hi.shape}")
    if np.any(lo > hi) or not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
        raise ProblemDefinitionError("box: expected finite lo <= hi")
    return lo, hi


def _first_depth(err_max: np.ndarray, tol: float) -> int | None:
    """Smallest depth ``J`` with ``err_max[j] <= tol`` for all ``j >= J - 1`` (layers counted from 1)."""
    bad = np.flatnonzero(~(err_max <= tol))
    if bad.size == 0:
        return 1
    if bad[-1] == err_max.size - 1:
        return None
    return int(bad[-1]) + 2


def _error_curve(model: ExplicitNetwork, X: np.ndarray, U: np.ndarray, J: int, tol: float | None = None
                 ) -> np.ndarray:
    """``(J',)`` max error over the states after each layer (stops early 100× below ``tol``)."""
    x = model._states(X)
    ref = torch.as_tensor(U, dtype=model._dtype)
    out = []
    with torch.no_grad():
        ctx = model.context(x)
        state = model.init_state(x)
        for _ in range(J):
            state = model.layer(state, ctx)
            e = float((model.output(state, x) - ref).abs().max())
            out.append(e)
            if tol is not None and e <= 1e-2 * tol:
                break
    return np.asarray(out)


def unravel(net: ImplicitNetwork, depth: int | None = None, *, method: str = "admm", tol: float | None = None,
            states=None, box=None, dtype: torch.dtype = torch.float64, K=0.0, alpha=None,
            beta: float | None = None, rho: float | None = None, relax: float | None = None,
            prune: bool = False, tuning_states=None, n_tuning: int = 300, seed: int = 0,
            hybrid_base: str = "admm", max_depth: int = MAX_DEPTH) -> ExplicitNetwork | HybridNetwork:
    """Unravel an implicit network into an explicit feed-forward network.

    Parameters
    ----------
    net : ImplicitNetwork
    depth : int, optional
        Number of layers. Give either ``depth`` or ``tol``.
    method : {"admm", "momentum", "paper", "lmi", "hybrid"}
        The construction (see the module docstring). ``"admm"``, the default, is the
        most depth-efficient pure Linear+ReLU construction measured on the public suite
        (``benchmarks/depth.py``).
    tol : float, optional
        Choose the smallest depth whose largest ``‖U - U*‖∞`` over ``states`` (or
        ``n_tuning`` feasible states drawn from ``box``, default the QP's sample box)
        is <= ``tol``. The choice is empirical on those states; ``selection`` on the
        result says so, and :meth:`ExplicitNetwork.error_bound` bounds any other state.
    states : (B, n_x), optional; box : (lo, hi), optional
        Selection states for ``tol`` (feasible ones are kept).
    dtype : torch.float64 (default) or torch.float32
    K : float or (m, m) array
        Feedback of ``method="paper"`` (0: the paper's plain form).
    alpha : float or (m,) array, optional
        Step(s) of the paper's form (default: the implicit network's ``alpha``).
    beta : float, optional
        Momentum of ``method="momentum"`` (default: tuned on the tuning states over
        :data:`BETA_LADDER`).
    rho, relax : float, optional
        ADMM penalty and relaxation (default: tuned over :data:`RHO_LADDER` ×
        :data:`RELAX_LADDER`, the penalty scaled by ``trace(H)/m``; rows are scaled to unit norm).
    prune : bool
        Drop rows that no state of ``box`` (default: the sample box) can make active,
        proved by one LP per row.
    tuning_states : (B, n_x), optional
        States for tuning ``beta``/``rho``/``relax`` (default: ``n_tuning`` feasible states
        drawn from the sample box with ``seed``). Keep them apart from the states used to
        report accuracy.
    hybrid_base : str
        Pure construction run before the finishing stage of ``method="hybrid"``.
    max_depth : int
        Largest depth tried by the tolerance search and the tuning (default :data:`MAX_DEPTH`).

    Returns
    -------
    ExplicitNetwork (a torch.nn.Module), or HybridNetwork for ``method="hybrid"``.

    Examples
    --------
    >>> import mpc2nn, torch
    >>> net = mpc2nn.compile(mpc2nn.systems.drummond2024())
    >>> ex = mpc2nn.unravel(net, depth=100, method="momentum", beta=0.9)
    >>> ex(torch.tensor([[-200.0, -200.0]], dtype=torch.float64)).shape
    torch.Size([1, 10])
    """
    if not isinstance(net, ImplicitNetwork):
        raise ProblemDefinitionError(f"unravel: expected an ImplicitNetwork (from mpc2nn.compile), "
                                     f"got {type(net).__name__}")
    if method not in METHODS:
        raise ProblemDefinitionError(f"method: expected one of {METHODS}, got {method!r}")
    if dtype not in (torch.float64, torch.float32):
        raise ProblemDefinitionError(f"dtype: expected torch.float64 or torch.float32, got {dtype}")
    if (depth is None) == (tol is None):
        raise ProblemDefinitionError("unravel: give exactly one of depth= (number of layers) or tol= "
                                     "(largest error on the selection states)")
    if depth is not None and (not isinstance(depth, (int, np.integer)) or depth < 0):
        raise ProblemDefinitionError(f"depth: expected an integer >= 0, got {depth!r}")
    if tol is not None and not (float(tol) > 0):
        raise ProblemDefinitionError(f"tol: expected a positive number, got {tol!r}")
    _reject_unused(method, K=K, alpha=alpha, beta=beta, rho=rho, relax=relax)
    qp_full = net.qp
    box = _check_box(box, qp_full.n_x)
    region = box if box is not None else qp_full.sample_box
    kept = np.arange(qp_full.m)
    qp = qp_full
    if prune:
        if region is None:
            raise ProblemDefinitionError("prune: needs a box of states (box=, or a QP with a sample_box)")
        red = net.well_posedness(box=region).redundant_rows
        kept = np.setdiff1d(kept, np.asarray(red, dtype=np.int64))
        qp = _pruned_qp(qp_full, kept)
    base = hybrid_base if method == "hybrid" else method
    if base not in ("admm", "momentum", "paper", "lmi"):
        raise ProblemDefinitionError(f"hybrid_base: expected a pure construction, got {hybrid_base!r}")
    J0 = int(depth) if depth is not None else 0

    tune = None
    if (base == "momentum" and beta is None) or (base == "admm" and (rho is None or relax is None)):
        if tuning_states is not None:
            Xt = qp_full.check_parameters(tuning_states, "tuning_states")
            sol = net.solve(Xt)
            tune = (Xt[sol.feasible], sol.U[sol.feasible])
        else:
            if qp_full.sample_box is None:
                raise ProblemDefinitionError("tuning needs states: pass tuning_states= or the parameters "
                                             "(beta= / rho= and relax=)")
            tune = _sample_states(net, qp_full.sample_box, n_tuning, seed)

    def build(J: int) -> ExplicitNetwork:
        opts = dict(method=base, prune=prune)
        if base == "paper":
            a = net.alpha[kept] if alpha is None else np.broadcast_to(np.asarray(alpha, float), (qp.m,))
            return PaperNetwork(net, qp, kept, J, dtype, {**opts, "K": K, "alpha": a}, a, K)
        if base == "lmi":
            sub = net if not prune else compile(qp, alpha=net.alpha[kept])
            cert = design_feedback(sub)
            Kd = cert.K if cert.exists else 0.0
            return PaperNetwork(net, qp, kept, J, dtype, {**opts, "certificate": cert.reason},
                                sub.alpha, Kd, cert)
        if base == "momentum":
            return MomentumNetwork(net, qp, kept, J, dtype, {**opts, "beta": chosen["beta"]}, chosen["beta"])
        return ADMMNetwork(net, qp, kept, J, dtype, {**opts, "rho": chosen["rho"], "relax": chosen["relax"]},
                           chosen["rho"], chosen["relax"])

    chosen = {"beta": beta, "rho": rho, "relax": relax}
    target_tol = tol
    if tune is not None:
        chosen.update(_tune(base, qp, kept, net, tune, J0, target_tol, dtype, beta, rho, relax, max_depth))

    if tol is not None:
        if states is not None:
            Xs = qp_full.check_parameters(states, "states")
            sol = net.solve(Xs)
            Xs, Us = Xs[sol.feasible], sol.U[sol.feasible]
        else:
            if region is None:
                raise ProblemDefinitionError("tol: needs selection states (states= or box=)")
            Xs, Us = _sample_states(net, region, n_tuning, seed + 1)
        model = build(0)
        curve = _error_curve(model, Xs, Us, int(max_depth), float(tol))
        J = _first_depth(curve, float(tol))
        if J is None:
            J = curve.size
        model.depth = J
        guarantee = (f"max ‖U - U*‖∞ = {curve[J - 1]:.3g} on {len(Xs)} selection states (empirical); "
                     "error_bound(x) gives a per-state bound for any other state")
        if isinstance(model, PaperNetwork) and model.certificate().exists:
            guarantee += "; a-priori bound from the certified contraction rate also available"
        model.selection = DepthSelection(float(tol), J if curve[J - 1] <= tol else None, float(curve[J - 1]),
                                         len(Xs), guarantee)
    else:
        model = build(J0)
    if method == "hybrid":
        return HybridNetwork(model)
    return model


def _reject_unused(method: str, **given):
    defaults = {"K": 0.0, "alpha": None, "beta": None, "rho": None, "relax": None}
    used = {"paper": {"K", "alpha"}, "lmi": set(), "momentum": {"beta"}, "admm": {"rho", "relax"},
            "hybrid": {"K", "alpha", "beta", "rho", "relax"}}[method]
    for k, v in given.items():
        same = v is None if defaults[k] is None else (np.ndim(v) == 0 and v == defaults[k])
        if not same and k not in used:
            raise ProblemDefinitionError(f"{k}: not an option of method={method!r} (it uses {sorted(used) or 'none'})")


def _tune(base, qp, kept, net, tune, depth, tol, dtype, beta, rho, relax, max_depth) -> dict:
    """Pick the ladder entry with the smallest error at ``depth`` (or the smallest depth reaching ``tol``)."""
    X, U = tune
    cands = []
    if base == "momentum":
        cands = [dict(beta=b) for b in BETA_LADDER]
    else:
        scale = float(np.trace(qp.H) / max(qp.m, 1))
        rhos = [rho] if rho is not None else [r * scale for r in RHO_LADDER]
        relaxes = [relax] if relax is not None else list(RELAX_LADDER)
        # likeliest first (penalties near the scale), so the early stop prunes the rest quickly
        cands = [dict(rho=r, relax=a) for r in sorted(rhos, key=lambda r: abs(math.log(r / scale)))
                 for a in relaxes]
    best, best_key = None, None
    cap = int(max_depth) if depth == 0 else depth
    for c in cands:
        if base == "momentum":
            model = MomentumNetwork(net, qp, kept, 0, dtype, {}, c["beta"])
        else:
            model = ADMMNetwork(net, qp, kept, 0, dtype, {}, c["rho"], c["relax"])
        if depth:
            curve = _error_curve(model, X, U, depth)
            key = (float(curve[-1]),)
        else:
            limit = cap if best_key is None else min(cap, best_key[0])
            curve = _error_curve(model, X, U, limit, tol)
            J = _first_depth(curve, tol)
            key = (J if J is not None else math.inf, float(curve[-1]))
        if best_key is None or key < best_key:
            best, best_key = c, key
    return best


def throughput(model: ExplicitNetwork, X, *, repeats: int = 5) -> float:
    """Median states per second of ``model`` on the batch ``X`` (no gradients)."""
    x = model._states(X)
    times = []
    with torch.no_grad():
        model(x[:8])
        for _ in range(repeats):
            t0 = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - t0)
    return x.shape[0] / float(np.median(times))
