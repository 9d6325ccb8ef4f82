"""The differentiable MPC layer :class:`MPCLayer`: exact forward solve, implicit backward pass."""

from __future__ import annotations

import numpy as np
import torch

from ..exceptions import ProblemDefinitionError, ShapeError
from ..implicit import ImplicitNetwork, compile
from ..qp import CondensedQP
from ..status import SOLUTION_PRESENT, is_in
from ._active_set import classify_qp, qp_factors, qp_plan, qp_solution
from ._condense import TorchCondensation
from ._results import LayerResult
from ._torch_qp import TorchQP

__all__ = ["MPCLayer"]


class MPCLayer(torch.nn.Module):
    """An MPC problem as a ``torch.nn.Module``: ``layer(θ)`` is the optimal input sequence.

    The forward pass solves the condensed QP exactly for the whole batch
    (:meth:`mpc2nn.ImplicitNetwork.solve`: a finite active-set method whose solutions
    are certified by their KKT residuals). The backward pass differentiates the KKT
    system on the strongly active rows (implicit function theorem), batched by active
    set, with respect to ``θ`` and to the problem data given as tensors; autograd
    carries the data gradients through :class:`~mpc2nn.differentiable.TorchCondensation`.

    Parameters
    ----------
    problem : MPCProblem, CondensedQP or ImplicitNetwork
        The MPC problem (a QP or a compiled network counts as the QP it holds). Its numbers
        are the default data and fix the structure: which constraint rows exist, the layout
        of ``θ`` (:class:`~mpc2nn.differentiable.TorchCondensation`).
    learn : sequence of str, optional
        Data to hold as trainable ``nn.Parameter`` s (``layer.learned[name]``), initialised
        from the problem, e.g. ``("Q", "R")``; see :attr:`names` for what there is. Any
        data may instead be given per call, ``layer(theta, Q=L @ L.T)``, which is how
        factors, diagonals or other parametrisations are used. Data whose change would
        change the QP's structure are refused here by name
        (:meth:`~mpc2nn.differentiable.TorchCondensation.check_learnable`).
    fill : float
        Output value of samples without a solution (infeasible, failed, invalid θ);
        NaN by default. Those rows get zero gradients and never touch the gradients
        of the other samples or of the shared data.
    dtype : torch.dtype
        Working precision of the layer (float64; the exact solve is float64 always).

    Attributes
    ----------
    last : LayerResult or None
        Per-sample report of the last forward pass: status, feasibility, strongly and
        weakly active rows, degenerate samples (``None`` before the first call).
    condensation : TorchCondensation
        The problem's condensation in torch: the map from the data to the QP that autograd
        differentiates (its :attr:`~TorchCondensation.defaults` are the problem's data).

    Raises
    ------
    ProblemDefinitionError
        ``learn`` names data the problem does not have, or data that cannot be learned
        without changing the QP's structure (an output weight on a tracking problem whose
        ``θ`` has no ``y_ref``, ``D`` with a zero row on a bounded output).

    Notes
    -----
    At a weakly active row (multiplier and margin both zero) the solution map is not
    differentiable; the gradient returned is that of the affine piece on which the
    row is inactive, which is the directional derivative for every direction that
    does not push the row's margin below zero (docs/theory.rst). ``last.weak_rows``
    says which samples and rows. The terminal weight follows the data when the
    problem computes it (``P="dare"`` or ``"lyapunov"``) unless ``P`` is given; the
    constraint rows (which bounds are finite) are fixed by the problem. Weights
    must keep ``H ≻ 0`` (``R ≻ 0``), e.g. ``R = L Lᵀ + εI``.

    Examples
    --------
    >>> import torch, mpc2nn
    >>> layer = mpc2nn.MPCLayer(mpc2nn.systems.double_integrator(), learn=("R",))
    >>> theta = torch.tensor([[-4.0, 1.0], [2.0, 0.5]], dtype=torch.float64, requires_grad=True)
    >>> U = layer(theta)
    >>> U.shape, layer.last.status.tolist()
    (torch.Size([2, 20]), ['solved', 'solved'])
    >>> U[:, 0].sum().backward()
    >>> theta.grad.shape, layer.learned["R"].grad.shape
    (torch.Size([2, 2]), torch.Size([1, 1]))
    """

    def __init__(self, problem, *, learn=(), fill: float = float("nan"), dtype=torch.float64):
        super().__init__()
        self.condensation = TorchCondensation(problem)
        learn = tuple(learn)
        unknown = sorted(set(learn) - set(self.condensation.names))
        if unknown:
            raise ProblemDefinitionError(f"learn: unknown name(s) {unknown}; this problem's data are "
                                         f"{list(self.condensation.names)}")
        self.condensation.check_learnable(learn)
        self.dtype = dtype
        self.fill = float(fill)
        self.learned = torch.nn.ParameterDict(
            {k: torch.nn.Parameter(torch.tensor(self.condensation.defaults[k], dtype=dtype)) for k in learn})
        self.last: LayerResult | None = None
        self._constant: dict = {}
        self._cache: tuple | None = None

    # --- what it depends on ----------------------------------------------------------
    @property
    def names(self) -> tuple:
        """The data the layer's QP depends on (see :class:`~mpc2nn.differentiable.TorchCondensation`)."""
        return self.condensation.names

    @property
    def reference(self) -> CondensedQP:
        """The problem's own condensed QP (structure: rows, labels, layout of θ)."""
        return self.condensation.reference

    @property
    def n_theta(self) -> int:
        """Length of the input ``θ``."""
        return self.reference.n_theta

    def qp(self, device=None, **data) -> TorchQP:
        """The :class:`~mpc2nn.differentiable.TorchQP` at the current data (learned, then ``data`` given).

        Parameters
        ----------
        device : torch.device or str, optional
            Device of the QP's tensors (default: torch's default device).
        **data : tensor or array_like
            Data values by name (names in :attr:`names`) for this call; they replace the learned
            parameters of the same name, the problem's defaults fill in the rest.

        Returns
        -------
        TorchQP
            In the layer's dtype. Without learned or given data the same constant QP is returned
            on every call (computed once per device).
        """
        given = {**dict(self.learned.items()), **data}
        if not given:
            key = (str(device), self.dtype)
            if key not in self._constant:
                self._constant[key] = self.condensation(dtype=self.dtype, device=device)
            return self._constant[key]
        return self.condensation(given, dtype=self.dtype, device=device)

    def _network(self, qp: TorchQP) -> tuple[CondensedQP, ImplicitNetwork, tuple]:
        """The numpy QP, its compiled network and the backward pass's factors ``(L, M)`` at these data values
        (reused while they do not change).
        """
        values = [qp.H, qp.F, qp.G, qp.w, qp.E, qp.slack_shift]
        if qp.state_E is not None and qp.state_w is not None:
            values += [qp.state_E, qp.state_w]
        values = [v.detach() for v in values]
        if self._cache is not None and len(self._cache[0]) == len(values) and all(
                a.shape == b.shape and a.device == b.device and torch.equal(a, b)
                for a, b in zip(self._cache[0], values, strict=True)):
            return self._cache[1], self._cache[2], self._cache[3]
        cqp = qp.to_condensed()
        diag = np.einsum("ij,ij->i", cqp.G @ cqp.H_inv, cqp.G) if cqp.m else np.ones(0)
        net = compile(cqp, alpha=1.0 / max(float(diag.max(initial=0.0)), 1e-300))
        with torch.no_grad():
            factors = qp_factors(qp.H.detach(), qp.G.detach())
        self._cache = ([v.clone() for v in values], cqp, net, factors)
        return cqp, net, factors

    # --- the map ---------------------------------------------------------------------
    def forward(self, theta, **data) -> torch.Tensor:
        """``(B, N·n_u)`` optimal input sequences at the parameters ``theta`` (B, n_θ) or (n_θ,).

        Keyword arguments give data tensors for this call (names in :attr:`names`). The output
        has ``theta``'s device and floating dtype; the work is done in the layer's dtype.
        The per-sample report is left in :attr:`last`.

        Parameters
        ----------
        theta : torch.Tensor or array_like, shape (B, n_θ) or (n_θ,)
            The parameters ``θ = (x, u_prev, x_ref, u_ref, y_ref)``, the parts the problem has
            (``layer.reference.layout``); a single vector is promoted to ``B = 1``. Rows with NaN
            or infinite entries get the ``fill`` value and zero gradients.
        **data : tensor or array_like
            Data values by name for this call, replacing the learned parameters of the same
            name (e.g. ``Q=L @ L.T``); gradients flow back to the tensors given.

        Returns
        -------
        torch.Tensor, shape (B, N·n_u)
            The optimal input sequences ``U``; rows without a solution hold ``fill``.

        Raises
        ------
        ShapeError
            ``theta`` is not of shape (B, n_θ) or (n_θ,).
        ProblemDefinitionError
            Data given that would change the QP's structure (see
            :meth:`~mpc2nn.differentiable.TorchCondensation.data`).
        """
        theta = torch.as_tensor(theta)
        out_dtype = theta.dtype if theta.is_floating_point() else self.dtype
        device = theta.device
        th = theta.to(self.dtype)
        if th.ndim == 1:
            th = th[None, :]
        if th.ndim != 2 or th.shape[1] != self.n_theta:
            raise ShapeError(f"theta: expected shape (B, n_θ) = (B, {self.n_theta}) or ({self.n_theta},), got "
                             f"{tuple(theta.shape)}; θ = ({self.reference.layout.describe()})")
        qp = self.qp(device=device, **data)
        cqp, net, factors = self._network(qp)
        X = th.detach().cpu().numpy().astype(np.float64)
        sol = net.solve(X)
        usable = np.asarray(is_in(sol.status, SOLUTION_PRESENT), dtype=bool)
        valid = np.all(np.isfinite(X), axis=1)
        Xs = np.where(valid[:, None], X, 0.0)
        lam = np.where(usable[:, None], np.maximum(np.nan_to_num(sol.y), 0.0), 0.0)
        Z = np.where(usable[:, None], cqp.primal(lam, Xs), 0.0)
        q_np, h_np = Xs @ cqp.F.T, cqp.w + Xs @ cqp.E.T
        strong, weak, separation = classify_qp(cqp.H, q_np, cqp.G, h_np, Z, lam)
        strong &= usable[:, None]
        weak &= usable[:, None]
        lam = np.where(strong, lam, 0.0)
        with torch.no_grad():
            plan = qp_plan(qp.H.detach(), qp.G.detach(), strong, usable, factors)

        mask = torch.as_tensor(valid, device=device)[:, None]
        th_safe = torch.where(mask, th, torch.zeros_like(th))
        q = th_safe @ qp.F.T
        h = qp.w + th_safe @ qp.E.T
        Zt = qp_solution(qp.H, q, qp.G, h, torch.as_tensor(Z, dtype=self.dtype, device=device),
                         torch.as_tensor(lam, dtype=self.dtype, device=device), plan)
        U = Zt if qp.T is None else Zt @ qp.T.T
        U = torch.where(torch.as_tensor(usable, device=device)[:, None], U, torch.full_like(U, self.fill))
        self.last = LayerResult(status=sol.status, feasible=usable, reason=sol.reason, strongly_active=strong,
                                weak_rows=weak, separation=np.where(usable, separation, np.nan),
                                degenerate=plan.degenerate, n_active_sets=plan.n_sets,
                                solution=sol)
        return U.to(out_dtype)

    def extra_repr(self) -> str:
        qp = self.reference
        return (f"problem={qp.name!r}, n_theta={qp.n_theta}, n_U={qp.n_U}, m={qp.m}, "
                f"learn={list(self.learned.keys())}, dtype={self.dtype}")
