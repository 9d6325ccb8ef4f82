"""The deep-equilibrium view: :class:`ImplicitLayer`, an implicit ReLU network with trainable weights."""

from __future__ import annotations

import numpy as np
import torch

from .._checks import UNSET
from ..exceptions import ProblemDefinitionError, ShapeError
from ..implicit import CERTIFICATE_TOL, ImplicitNetwork, ImplicitWeights, compile
from ..qp import CondensedQP
from ..status import SOLUTION_PRESENT, Status, is_in
from ._active_set import classify_fixed_point, fixed_point, fixed_point_plan
from ._results import LayerResult
from ._structure import LCPStructureError, StructureCheck, check_structure, lcp_qp_data, project_structure

__all__ = ["ImplicitLayer"]


class ImplicitLayer(torch.nn.Module):
    """A trainable implicit ReLU network ``y = W relu(y) + Yθ + b``, ``U = W_f relu(y) + Y_f θ``.

    A deep equilibrium model whose forward pass is exact: while the weights keep the
    structure of a symmetric positive semidefinite linear complementarity problem
    (:func:`~mpc2nn.differentiable.check_structure`: ``S = diag(1/α)(I - W)`` symmetric
    PSD, ``W_f`` zero on its kernel), the fixed point is the solution of a QP, solved
    and certified by :meth:`mpc2nn.ImplicitNetwork.solve`. The backward pass is implicit:
    on the active set ``𝒜 = {y > 0}``, ``λ_𝒜 = (I - W_𝒜𝒜)⁻¹(Y_𝒜θ + b_𝒜)``.

    Parameters
    ----------
    W, Y, b, W_f, Y_f : arrays or tensors, shapes (m, m), (m, n_θ), (m,), (N·n_u, m), (N·n_u, n_θ)
        Initial weights (trainable ``nn.Parameter`` s of the same names).
    alpha : array (m,) or float, optional
        The row steps ``α > 0`` the LCP structure is judged with (fixed, a buffer). A
        compiled network's own (:meth:`from_network`); 1 for all rows by default.
    n_u : int, optional
        Inputs per stage (default: the whole output is one stage).
    on_invalid : {"raise", "project"}
        What the forward pass does with weights that are no valid LCP: raise
        :class:`~mpc2nn.differentiable.LCPStructureError` (default), or project them in
        place first (:meth:`project_`, recorded in :attr:`projected`).
    fill : float
        Output value of samples without a fixed point (infeasible LCP); NaN by default.
    dtype : torch.dtype
        dtype of the trainable weights and of the backward pass (float64 by default; the
        exact solve is float64 always).

    Notes
    -----
    A gradient step leaves the structure (the gradient of ``W`` is not of the form
    ``diag(α)·symmetric``), so train with projected gradient descent: call
    :meth:`project_` after each ``optimizer.step()``. The projection targets the
    MPC-like set when the initial weights are MPC-like (then
    :func:`mpc2nn.converse.to_qp` maps the trained weights back to a QP exactly,
    :meth:`weights` gives them to it), else the valid-LCP set.

    Examples
    --------
    >>> import torch, mpc2nn
    >>> net = mpc2nn.compile(mpc2nn.systems.drummond2024())
    >>> layer = mpc2nn.ImplicitLayer.from_network(net)
    >>> theta = torch.tensor([[-200.0, -200.0]], dtype=torch.float64)
    >>> round(float(layer(theta).detach()[0, 0]), 6), layer.structure().mpc_like
    (10.0, True)
    """

    def __init__(self, W, Y, b, W_f, Y_f, *, alpha=None, n_u: int | None = None, on_invalid: str = "raise",
                 fill: float = float("nan"), dtype=torch.float64):
        super().__init__()
        arrays = [v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else np.array(v, float)
                  for v in (W, Y, b, W_f, Y_f)]
        wts = ImplicitWeights(W=arrays[0], Y=arrays[1], b=arrays[2], W_f=arrays[3], Y_f=arrays[4],
                              n_u=UNSET if n_u is None else n_u)
        if on_invalid not in ("raise", "project"):
            raise ProblemDefinitionError(f"on_invalid: expected 'raise' or 'project', got {on_invalid!r}")
        a = np.ones(wts.m) if alpha is None else np.broadcast_to(np.asarray(alpha, float), (wts.m,)).copy()
        if not np.all(np.isfinite(a)) or np.any(a <= 0):
            raise ProblemDefinitionError(f"alpha: every step must be finite and > 0, got {alpha!r}")
        self.dtype = dtype
        self.W = torch.nn.Parameter(torch.tensor(wts.W, dtype=dtype))
        self.Y = torch.nn.Parameter(torch.tensor(wts.Y, dtype=dtype))
        self.b = torch.nn.Parameter(torch.tensor(wts.b, dtype=dtype))
        self.W_f = torch.nn.Parameter(torch.tensor(wts.W_f, dtype=dtype))
        self.Y_f = torch.nn.Parameter(torch.tensor(wts.Y_f, dtype=dtype))
        self.alpha: torch.Tensor
        self.register_buffer("alpha", torch.tensor(a, dtype=dtype))
        self.n_u = wts.n_u
        self.on_invalid = on_invalid
        self.fill = float(fill)
        self.target = "mpc" if self.structure().mpc_like else "lcp"
        self.last: LayerResult | None = None
        self.projected = 0

    @classmethod
    def from_network(cls, net: ImplicitNetwork, **kwargs) -> ImplicitLayer:
        """The layer initialised with the weights and steps of a compiled network (:func:`mpc2nn.compile`)."""
        if not isinstance(net, ImplicitNetwork):
            raise ProblemDefinitionError(f"net: expected an ImplicitNetwork (mpc2nn.compile), got "
                                         f"{type(net).__name__}")
        kwargs.setdefault("alpha", net.alpha)
        kwargs.setdefault("n_u", net.n_u)
        return cls(net.W, net.Y, net.b, net.W_f, net.Y_f, **kwargs)

    def _np(self, name: str) -> np.ndarray:
        return getattr(self, name).detach().cpu().numpy().astype(np.float64)

    @property
    def m(self) -> int:
        """Width of the implicit layer."""
        return int(self.W.shape[0])

    @property
    def n_theta(self) -> int:
        """Number of inputs."""
        return int(self.Y.shape[1])

    def weights(self) -> ImplicitWeights:
        """The current weights as numpy :class:`~mpc2nn.converse.ImplicitWeights` (for ``to_qp``)."""
        return ImplicitWeights(W=self._np("W"), Y=self._np("Y"), b=self._np("b"), W_f=self._np("W_f"),
                               Y_f=self._np("Y_f"), n_u=self.n_u)

    def structure(self) -> StructureCheck:
        """The structure check of the current weights (:func:`~mpc2nn.differentiable.check_structure`)."""
        return check_structure(self._np("W"), self._np("W_f"), self._np("alpha"))

    def project_(self, target: str | None = None) -> StructureCheck:
        """Move the weights onto the structure in place (``target`` "lcp" or "mpc", default :attr:`target`).

        Only ``W`` and ``W_f`` change (:func:`~mpc2nn.differentiable.project_structure`); call it
        after each optimizer step.

        Parameters
        ----------
        target : {"lcp", "mpc"}, optional
            ``"lcp"``: the nearest valid LCP; ``"mpc"``: the nearest MPC-like weights. Default
            :attr:`target`: ``"mpc"`` when the initial weights were MPC-like, else ``"lcp"``.

        Returns
        -------
        StructureCheck
            The structure check of the projected weights.

        Raises
        ------
        ProblemDefinitionError
            ``target`` is neither ``"lcp"`` nor ``"mpc"``.
        LCPStructureError
            The weights are too far from an LCP to project (``S`` has no positive eigenvalue).
        """
        W, W_f = project_structure(self._np("W"), self._np("W_f"), self._np("alpha"), target or self.target)
        with torch.no_grad():
            self.W.copy_(torch.as_tensor(W, dtype=self.W.dtype))
            self.W_f.copy_(torch.as_tensor(W_f, dtype=self.W_f.dtype))
        return self.structure()

    def network(self) -> ImplicitNetwork:
        """The exact solver's network of the current weights: the QP ``min ½‖z‖² subject to Gz <= q(θ)`` of the LCP."""
        alpha = self._np("alpha")
        G, w, E = lcp_qp_data(self._np("W"), self._np("Y"), self._np("b"), alpha)
        r = G.shape[1]
        qp = CondensedQP(H=np.eye(r), F=np.zeros((r, self.n_theta)), G=G, w=w, E=E, n_u=1, name="implicit layer",
                         source="ImplicitLayer (LCP)")
        return compile(qp, alpha=alpha)

    def forward(self, theta) -> torch.Tensor:
        """``(B, n_U)`` outputs at the inputs ``theta`` (B, n_θ) or (n_θ,) (device and dtype of ``theta``).

        The per-sample report is left in :attr:`last`.

        Parameters
        ----------
        theta : torch.Tensor or array_like, shape (B, n_θ) or (n_θ,)
            The inputs; a single vector is promoted to ``B = 1``. Rows with NaN or infinite
            entries get the ``fill`` value and zero gradients.

        Returns
        -------
        torch.Tensor, shape (B, n_U)
            ``U = W_f λ + Y_f θ`` at the exact fixed point; rows without one hold ``fill``.

        Raises
        ------
        ShapeError
            ``theta`` is not of shape (B, n_θ) or (n_θ,).
        LCPStructureError
            The weights are no valid LCP and the layer was built with ``on_invalid="raise"``
            (with ``"project"`` they are projected first).
        """
        theta = torch.as_tensor(theta)
        out_dtype = theta.dtype if theta.is_floating_point() else self.dtype
        device = theta.device
        th = theta.to(self.dtype)
        if th.ndim == 1:
            th = th[None, :]
        if th.ndim != 2 or th.shape[1] != self.n_theta:
            raise ShapeError(f"theta: expected shape (B, n_θ) = (B, {self.n_theta}) or ({self.n_theta},), got "
                             f"{tuple(theta.shape)}")
        check = self.structure()
        if not check.valid:
            if self.on_invalid == "raise":
                raise LCPStructureError(f"ImplicitLayer: the weights are no valid LCP, so the exact forward pass "
                                        f"does not apply ({check.message}). Call layer.project_() after each "
                                        "optimizer step, or build the layer with on_invalid='project'")
            self.project_()
            self.projected += 1
        net = self.network()
        X = th.detach().cpu().numpy().astype(np.float64)
        sol = net.solve(X)
        status = np.array(sol.status, dtype=object)
        reason = np.array(sol.reason, dtype=object)
        usable = np.asarray(is_in(status, SOLUTION_PRESENT), dtype=bool)
        valid = np.all(np.isfinite(X), axis=1)
        Xs = np.where(valid[:, None], X, 0.0)
        W, Y, b = self._np("W"), self._np("Y"), self._np("b")
        y = np.where(usable[:, None], np.nan_to_num(sol.y), 0.0)
        c = Xs @ Y.T + b
        # the certificate with the layer's own weights (the solver's differ by the structure tolerance)
        Wr = np.maximum(y, 0.0) @ W.T
        fp = np.abs(y - Wr - c).max(axis=1, initial=0.0)
        scale = np.maximum.reduce([np.ones(len(X)), np.abs(Wr).max(axis=1, initial=0.0),
                                   np.abs(c).max(axis=1, initial=0.0)])
        bad = usable & (status == str(Status.SOLVED)) & (fp > CERTIFICATE_TOL * scale)
        status[bad] = str(Status.UNCERTIFIED)
        for i in np.flatnonzero(bad):
            reason[i] = f"relative fixed-point residual with the layer's weights {fp[i] / scale[i]:.2e}"
        strong, weak, separation = classify_fixed_point(W, c, y)
        strong &= usable[:, None]
        weak &= usable[:, None]
        lam = np.where(strong, np.maximum(y, 0.0), 0.0)
        with torch.no_grad():
            plan = fixed_point_plan(self.W.detach().to(device), strong, usable)
        mask = torch.as_tensor(valid, device=device)[:, None]
        th_safe = torch.where(mask, th, torch.zeros_like(th))
        Wd, Yd, bd, W_f, Y_f = (p.to(device) for p in (self.W, self.Y, self.b, self.W_f, self.Y_f))
        lam_t = fixed_point(Wd, Yd, bd, th_safe, torch.as_tensor(lam, dtype=self.dtype, device=device), plan)
        U = lam_t @ W_f.T + th_safe @ Y_f.T
        U = torch.where(torch.as_tensor(usable, device=device)[:, None], U, torch.full_like(U, self.fill))
        self.last = LayerResult(status=status.astype(str), feasible=usable, reason=reason.astype(str),
                                strongly_active=strong, weak_rows=weak,
                                separation=np.where(usable, separation, np.nan), degenerate=plan.degenerate,
                                n_active_sets=plan.n_sets, solution=sol)
        return U.to(out_dtype)

    def extra_repr(self) -> str:
        return f"m={self.m}, n_theta={self.n_theta}, n_U={int(self.W_f.shape[0])}, target={self.target!r}"
