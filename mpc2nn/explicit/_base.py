"""The base class of the explicit (feed-forward) networks."""

from __future__ import annotations

import numpy as np
import torch

from .._checks import real_array
from ..exceptions import ShapeError
from ..implicit import ImplicitNetwork
from ..interfaces import ExplicitLaw
from ..qp import CondensedQP
from ..status import BoundKind
from ._bounds import dual_gap_bound, kkt_bound
from ._fast import FAST_MAX_BATCH, FastLayers
from ._results import ContractionCertificate, DepthSelection, ErrorBound, LayerHistory

__all__ = ["ExplicitNetwork", "row_scale"]


class ExplicitNetwork(torch.nn.Module, ExplicitLaw):
    """A feed-forward network of ``depth`` layers approximating the MPC law ``x ↦ U*(x)``.

    ``forward(x)`` maps states ``(B, n_x)`` to input sequences ``(B, N·n_u)``;
    :meth:`control` returns the first input ``(B, n_u)``. Fixed matrices are
    buffers (float64 by default). Subclasses define one construction each; they are
    built by :func:`mpc2nn.unravel` (or a construction's ``build``).

    Parameters
    ----------
    net : ImplicitNetwork
        The implicit network the layers approximate (the error bounds refer to its QP).
    qp : CondensedQP
        The QP the layers iterate on: ``net.qp``, or its rows ``kept_rows`` when pruned.
    kept_rows : array_like of int
        Indices of the rows of ``net.qp`` that ``qp`` keeps.
    depth : int
        Number of layers.
    dtype : torch.dtype
        ``torch.float64`` or ``torch.float32``, the dtype of the buffers.
    options : ConstructionOptions
        The construction's options, every one set.
    pruned : bool
        Rows were dropped by one LP per row over a box of states.

    Attributes
    ----------
    method : str
        The construction's name (``"paper"``, ``"lmi"``, ``"momentum"``, ``"admm"``).
    selection : DepthSelection or None
        How :func:`mpc2nn.unravel` chose the depth for a tolerance, if it did.
    n_x, n_theta, n_U, n_u : int
        Sizes of the state, the network input ``θ``, the output sequence and one input.
    """

    method = "explicit"
    exportable = True
    #: Attributes (not buffers) the layers read, whose change invalidates the lean path's arrays.
    _FAST_SCALARS: tuple[str, ...] = ()
    Y_f: torch.Tensor
    W_f: torch.Tensor
    Tt: torch.Tensor | None
    zero_m: torch.Tensor
    zero_U: torch.Tensor

    def __init__(self, net: ImplicitNetwork, qp: CondensedQP, kept_rows: np.ndarray, depth: int,
                 dtype: torch.dtype, options, *, pruned: bool = False):
        super().__init__()
        self.net, self.qp, self.depth = net, qp, int(depth)
        self.kept_rows = np.asarray(kept_rows, dtype=np.int64)
        self.options = options
        self.pruned = bool(pruned)
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

    def get_config(self) -> tuple[dict, dict]:
        """``(fields, arrays)``: the construction's parameters that :meth:`from_config` rebuilds it from
        (JSON values, and arrays); the weights themselves are stored as the module's buffers.
        """
        raise NotImplementedError

    @classmethod
    def from_config(cls, net: ImplicitNetwork, qp: CondensedQP, kept_rows: np.ndarray, depth: int,
                    dtype: torch.dtype, fields: dict, arrays: dict, *, pruned: bool = False) -> ExplicitNetwork:
        """Rebuild the network's structure from :meth:`get_config`'s output (then load its buffers).

        Parameters
        ----------
        net, qp, kept_rows, depth, dtype, pruned
            As for the class.
        fields : dict
            The JSON fields :meth:`get_config` returned.
        arrays : dict of str to ndarray
            Its arrays, and the saved buffers as ``"buffer.NAME"``.

        Returns
        -------
        ExplicitNetwork
        """
        raise NotImplementedError

    def set_dtype(self, dtype: torch.dtype) -> None:
        """Declare the dtype the buffers were cast to (``module.to(dtype)`` casts them; this records it).

        Parameters
        ----------
        dtype : torch.dtype
            The new dtype of the buffers; inputs are converted to it from now on.
        """
        self._dtype = dtype

    def _t(self, a) -> torch.Tensor:
        return torch.tensor(np.array(a, dtype=float), dtype=self._dtype)

    # --- subclass hooks -----------------------------------------------------------------------
    def init_state(self, x: torch.Tensor) -> tuple:
        """Zero layer state.

        Parameters
        ----------
        x : torch.Tensor, shape (B, n_θ)
            Network inputs (used for the batch size, as ``x @ 0`` so that the graph traces).

        Returns
        -------
        tuple of torch.Tensor
            The construction's layer state, each of shape ``(B, ·)``.
        """
        raise NotImplementedError

    def layer(self, state: tuple, ctx: tuple) -> tuple:
        """One layer: the next layer state.

        Parameters
        ----------
        state : tuple of torch.Tensor
            The current layer state.
        ctx : tuple of torch.Tensor
            The per-forward terms of :meth:`context`.

        Returns
        -------
        tuple of torch.Tensor
            The next layer state, shaped like ``state``.
        """
        raise NotImplementedError

    def context(self, x: torch.Tensor) -> tuple:
        """Per-forward affine terms in ``x`` (computed once, shared by all layers).

        Parameters
        ----------
        x : torch.Tensor, shape (B, n_θ)
            Network inputs.

        Returns
        -------
        tuple of torch.Tensor
        """
        raise NotImplementedError

    def decision(self, state: tuple, x: torch.Tensor) -> torch.Tensor:
        """``(B, n_z)`` decision vector ``z`` of a layer state (``U = T z``).

        Parameters
        ----------
        state : tuple of torch.Tensor
            A layer state.
        x : torch.Tensor, shape (B, n_θ)
            Network inputs.

        Returns
        -------
        torch.Tensor, shape (B, n_z)
        """
        raise NotImplementedError

    def output(self, state: tuple, x: torch.Tensor) -> torch.Tensor:
        """``(B, N·n_u)`` input sequences ``U = T z`` of a layer state.

        Parameters
        ----------
        state : tuple of torch.Tensor
            A layer state.
        x : torch.Tensor, shape (B, n_θ)
            Network inputs.

        Returns
        -------
        torch.Tensor, shape (B, N·n_u)
        """
        z = self.decision(state, x)
        return z if self.Tt is None else z @ self.Tt

    def dual(self, state: tuple) -> torch.Tensor:
        """``(B, m_kept)`` nonnegative dual iterate of a layer state (for bounds and the hybrid mode).

        Parameters
        ----------
        state : tuple of torch.Tensor
            A layer state.

        Returns
        -------
        torch.Tensor, shape (B, m_kept)
            Multipliers of the rows of :attr:`qp`.
        """
        raise NotImplementedError

    def active_guess(self, state: tuple) -> torch.Tensor:
        """``(B, m_kept)`` bool guess of the active set read off the sign of the layer state.

        Parameters
        ----------
        state : tuple of torch.Tensor
            A layer state.

        Returns
        -------
        torch.Tensor of bool, shape (B, m_kept)
        """
        raise NotImplementedError

    # --- evaluation ---------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Input sequences ``(B, N·n_u)``: ``depth`` layers from the zero state, then the output.

        Parameters
        ----------
        x : torch.Tensor, shape (B, n_θ)
            Network inputs (states for a plain problem), in the buffers' dtype.

        Returns
        -------
        torch.Tensor, shape (B, N·n_u)
        """
        ctx = self.context(x)
        state = self.init_state(x)
        for _ in range(self.depth):
            state = self.layer(state, ctx)
        return self.output(state, x)

    def control(self, x: torch.Tensor) -> torch.Tensor:
        """First inputs ``(B, n_u)``, the control applied.

        Parameters
        ----------
        x : torch.Tensor, shape (B, n_θ)
            Network inputs, in the buffers' dtype.

        Returns
        -------
        torch.Tensor, shape (B, n_u)
        """
        return self.forward(x)[:, :self.n_u]

    def _states(self, X) -> torch.Tensor:
        return torch.as_tensor(self._inputs(X), dtype=self._dtype)

    def _inputs(self, X) -> np.ndarray:
        """``X`` as a float64 array (B, n_θ); a float64 array of the right shape is taken as it is."""
        if type(X) is np.ndarray and X.dtype == np.float64 and X.shape[-1:] == (self.n_theta,) and X.ndim <= 2:
            return X if X.ndim == 2 else X[None, :]
        if isinstance(X, torch.Tensor):
            X = X.detach().cpu().numpy()
        return self.qp.check_parameters(X)

    # --- the lean path of small batches (mpc2nn.explicit._fast) ------------------------------
    def _fast_spec(self) -> tuple[str, dict, dict] | None:
        """``(kind, buffers, scalars)`` of the layers for :class:`~mpc2nn.explicit._fast.FastLayers`, or ``None``
        where the construction has no lean path (then the torch forward runs).
        """
        return None

    def fast_layers(self) -> FastLayers | None:
        """The network's fixed matrices as float64 numpy arrays for the lean forward of small batches.

        Extracted on first use and again whenever a buffer changes (in place or replaced); ``None`` for a
        float32 network (it runs through torch, keeping float32 semantics) or a construction without one.
        :meth:`evaluate` and :meth:`run` use it for batches of at most
        :data:`~mpc2nn.explicit.FAST_MAX_BATCH` states.

        Returns
        -------
        FastLayers or None
        """
        bufs = self._buffers
        key = (tuple((id(t), t._version) for t in bufs.values() if t is not None),
               tuple(getattr(self, a, None) for a in self._FAST_SCALARS), self._dtype)
        cache = self.__dict__.get("_fast_cache")
        if cache is not None and cache[0] == key:
            return cache[1]
        fast = None
        if self._dtype == torch.float64 and all(t.dtype == torch.float64 for t in bufs.values() if t is not None):
            spec = self._fast_spec()
            if spec is not None:
                kind, arrays, scalars = spec
                Tt = bufs.get("Tt")
                fast = FastLayers(kind, {k: v.detach().cpu().numpy() for k, v in arrays.items()}, scalars,
                                  None if Tt is None else Tt.detach().cpu().numpy())
        self.__dict__["_fast_cache"] = (key, fast)
        return fast

    def _lean(self, Xn: np.ndarray, state0) -> tuple | None:
        """``(U, state)`` by the lean path (numpy state), or ``None`` where the torch forward must run."""
        if Xn.shape[0] > FAST_MAX_BATCH:
            return None
        fast = self.fast_layers()
        return None if fast is None else fast.run(Xn, self.depth, state0)

    def evaluate(self, X) -> np.ndarray:
        """Numpy float64 outputs, without gradients.

        Batches of at most :data:`~mpc2nn.explicit.FAST_MAX_BATCH` states of a float64 network run by the lean
        path (:meth:`fast_layers`: a compiled kernel with numba, numpy without), larger ones and float32
        networks through the torch forward; both agree to rounding.

        Parameters
        ----------
        X : array_like or torch.Tensor, shape (B, n_θ) or (n_θ,)
            Network inputs (states for a plain problem).

        Returns
        -------
        ndarray, shape (B, N·n_u)
        """
        Xn = self._inputs(X)
        lean = self._lean(Xn, None)
        if lean is not None:
            return lean[0]
        with torch.no_grad():
            return self.forward(torch.as_tensor(Xn, dtype=self._dtype)).double().numpy()

    def history(self, X, *, depth: int | None = None, state0: tuple | None = None, reference=None
                ) -> LayerHistory:
        """Run ``depth`` layers (default ``self.depth``) recording the residual of every layer.

        Parameters
        ----------
        X : array_like or torch.Tensor, shape (B, n_θ) or (n_θ,)
            Network inputs (states for a plain problem).
        depth : int, optional
            Layers to run (default :attr:`depth`).
        state0 : tuple of torch.Tensor, optional
            Initial layer state (default zero); the ``state`` of a previous
            :class:`LayerHistory` gives the paper's warm start.
        reference : array_like, shape (B, N·n_u), optional
            Exact outputs; when given, the per-layer error ``‖U_j - U*‖∞`` is recorded.

        Returns
        -------
        LayerHistory
        """
        x = self._states(X)
        J = self.depth if depth is None else int(depth)
        ref = None if reference is None else torch.as_tensor(
            real_array("reference", reference, "exact outputs (B, N·n_u)"), dtype=self._dtype)
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
                if err is not None and ref is not None:
                    err[j] = (self.output(state, x) - ref).abs().amax(dim=1)
            U = self.output(state, x)
        return LayerHistory(res.numpy(), None if err is None else err.numpy(), U.double().numpy(), state)

    def _residual(self, state: tuple, ctx: tuple) -> torch.Tensor:
        nxt = self.layer(state, ctx)
        return torch.sqrt(sum(((a - b) ** 2).sum(dim=1) for a, b in zip(nxt, state, strict=True))).double()

    def run(self, X, *, state0: tuple | None = None) -> tuple:
        """Outputs and the final layer state, without gradients.

        Parameters
        ----------
        X : array_like or torch.Tensor, shape (B, n_θ) or (n_θ,)
            Network inputs (states for a plain problem).
        state0 : tuple of torch.Tensor or ndarray, optional
            Initial layer state (default zero); a previous call's ``state`` continues from there.

        Returns
        -------
        U : ndarray, shape (B, N·n_u)
        state : tuple of torch.Tensor
            The layer state after the last layer.

        Notes
        -----
        Small batches of a float64 network run by the lean path, as in :meth:`evaluate` (the state then
        comes back as float64 tensors sharing the kernel's arrays).
        """
        Xn = self._inputs(X)
        lean = self._lean(Xn, state0)
        if lean is not None:
            return lean[0], tuple(torch.from_numpy(s) for s in lean[1])
        x = torch.as_tensor(Xn, dtype=self._dtype)
        with torch.no_grad():
            ctx = self.context(x)
            # a state from the lean path (numpy arrays) continues here as tensors of the buffers' dtype
            state = self.init_state(x) if state0 is None else tuple(
                torch.as_tensor(s, dtype=self._dtype) if isinstance(s, np.ndarray) else s for s in state0)
            for _ in range(self.depth):
                state = self.layer(state, ctx)
            return self.output(state, x).double().numpy(), state

    def full_dual(self, state: tuple) -> np.ndarray:
        """``(B, m)`` dual iterate in the rows of ``net.qp`` (zeros on pruned rows).

        Parameters
        ----------
        state : tuple of torch.Tensor
            A layer state.

        Returns
        -------
        ndarray, shape (B, m)
        """
        lam_k = self.dual(state).double().numpy()
        lam = np.zeros((lam_k.shape[0], self.net.m))
        lam[:, self.kept_rows] = lam_k
        return lam

    def error_bound(self, X) -> ErrorBound:
        """Upper bounds on ``‖U - U*‖∞`` of this network's output, one per state of ``X``.

        The smallest of three rigorous bounds (always w.r.t. the unpruned QP ``net.qp``): the duality gap of
        the last layer's dual iterate with a feasible point (:func:`dual_gap_bound`); the KKT residuals of the
        point polished on the active set read off the last layer state, checked in extended precision
        (:func:`kkt_bound`, tight where the active set is right); and, where a contraction certificate exists
        (see :meth:`certificate`), the a-priori bound. NaN anywhere gives ``inf``.

        Parameters
        ----------
        X : array_like or torch.Tensor, shape (B, n_θ) or (n_θ,)
            Network inputs (states for a plain problem).

        Returns
        -------
        ErrorBound
            ``.bound`` (B,) the per-sample bounds, ``.kind`` (B,) which bound each is,
            ``.assumptions`` what they rely on; ``.max()`` is the largest bound.
        """
        Xn = self.qp.check_parameters(X if not isinstance(X, torch.Tensor) else X.detach().cpu().numpy())
        _, state = self.run(Xn)
        return self.bound_at(Xn, state)

    def bound_at(self, X, state: tuple, *, a_priori: bool = True) -> ErrorBound:
        """Per-sample bounds on the error of the output of the layer state ``state`` at states ``X`` (the
        bounds of :meth:`error_bound`, for a state reached any way: e.g. a warm start).

        Parameters
        ----------
        X : array_like or torch.Tensor, shape (B, n_θ) or (n_θ,)
            Network inputs.
        state : tuple
            The layer state (as :meth:`run` returns it).
        a_priori : bool
            Include the a-priori bound; it holds only from the zero initial state after ``depth`` layers,
            so pass ``False`` for a warm-started state.

        Returns
        -------
        ErrorBound
        """
        Xn = self.qp.check_parameters(X if not isinstance(X, torch.Tensor) else X.detach().cpu().numpy())
        with torch.no_grad():
            z = self.decision(state, torch.as_tensor(Xn, dtype=self._dtype)).double().numpy()
            guess_k = self.active_guess(state).numpy()
        active = np.zeros((Xn.shape[0], self.net.m), bool)
        active[:, self.kept_rows] = guess_k
        post = kkt_bound(self.net.qp, Xn, active, z)
        lam = self.full_dual(state)
        # the gap bound is at least ‖z - z(λ)‖∞ (its LPs are skipped where the polished bound is below that)
        qp = self.net.qp
        z_lam = qp.primal(np.maximum(lam, 0.0), Xn)
        with np.errstate(invalid="ignore"):
            need = ~(post <= np.abs(z - z_lam).max(axis=1, initial=0.0))
        if need.any():
            post[need] = np.fmin(post[need], dual_gap_bound(qp, Xn[need], lam[need], z[need]))
        post = np.where(np.isnan(post), np.inf, post)
        prior = self._a_priori(Xn) if a_priori else None
        if prior is None:
            return ErrorBound(post, np.full(post.shape, str(BoundKind.A_POSTERIORI)),
                              "λ >= 0 from the last layer (duality gap with a feasible point, dual_gap_bound) or a "
                              "point polished on the last layer's active set (KKT residuals checked in extended "
                              "precision, kkt_bound); no contraction certificate exists for this construction")
        use_prior = prior <= post
        kind = np.where(use_prior, str(BoundKind.A_PRIORI), str(BoundKind.A_POSTERIORI))
        return ErrorBound(np.where(use_prior, prior, post), kind,
                          "a-priori: certified contraction rate (LMI) from the zero initial state; "
                          "a-posteriori: duality gap of the last layer's dual iterate or KKT residuals of the "
                          "point polished on its active set")

    def _a_priori(self, X: np.ndarray) -> np.ndarray | None:
        return None

    def certificate(self) -> ContractionCertificate:
        """The contraction certificate of this construction (none unless ``method="lmi"`` found one)."""
        return ContractionCertificate(False, None, None, None,
                                      f"construction '{self.method}' carries no contraction certificate")

    def extra_repr(self) -> str:
        return (f"method={self.method!r}, depth={self.depth}, n_theta={self.n_theta}, n_U={self.n_U}, "
                f"rows={self.qp.m}")


def row_scale(qp: CondensedQP) -> np.ndarray:
    """``(m,)`` factors ``1/‖G_i‖₂`` (1 for zero rows).

    Parameters
    ----------
    qp : CondensedQP
        The QP whose rows are scaled.

    Returns
    -------
    ndarray, shape (m,)
    """
    n = np.linalg.norm(qp.G, axis=1)
    return 1.0 / np.where(n > 0, n, 1.0)
