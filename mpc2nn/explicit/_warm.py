"""Warm-started unrolls in closed loop: the layer state carried from one time step to the next, with a bound
per step.

At each step the network runs from the layer state its previous step ended in (the paper's warm start), so
that only the change of the state has to be tracked. Either a fixed number of layers runs per step (what an
exported network with a state input does), or layers run until the rigorous per-step a-posteriori bound
(:meth:`ExplicitNetwork.bound_at`) certifies a tolerance: that measures how many layers a closed loop really
needs, against the same certificate from the zero start.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import torch

from .._checks import as_count
from ..exceptions import ProblemDefinitionError
from ._base import ExplicitNetwork
from ._registry import positive

__all__ = ["WarmStartResult", "warm_closed_loop", "CHECK_EVERY"]

#: Layers between two checks of the per-step bound when running to a tolerance (the layer counts reported
#: are multiples of it).
CHECK_EVERY = 5


@dataclass(frozen=True, kw_only=True)
class WarmStartResult:
    """A closed loop of a warm-started explicit network.

    Attributes
    ----------
    states : ndarray, shape (K+1, n_x)
        The closed-loop states, ``x_0`` first.
    inputs : ndarray, shape (K, n_u)
        The inputs applied.
    layers : ndarray, shape (K,)
        Layers run at each step (warm start).
    bound : ndarray, shape (K,)
        Rigorous bound on ``‖U_k - U*(x_k)‖∞`` of each step's output.
    certified : ndarray of bool, shape (K,)
        ``bound <= tol`` (all ``False`` without ``tol``).
    cold_layers : ndarray, shape (K,), or None
        Layers the zero start needs for the same certificate at ``x_k`` (``-1``: not within
        ``max_layers``), or ``None`` when not measured.
    error : ndarray, shape (K,), or None
        ``‖U_k - U*(x_k)‖∞`` against the exact solver, or ``None``.
    tol : float or None
        The per-step tolerance, or ``None``.
    """

    states: np.ndarray
    inputs: np.ndarray
    layers: np.ndarray
    bound: np.ndarray
    certified: np.ndarray
    cold_layers: np.ndarray | None
    error: np.ndarray | None
    tol: float | None

    def summary(self) -> str:
        """Layers per step (warm, and cold where measured) and the largest bound."""
        text = (f"{self.layers.size} steps: layers per step (warm) median {np.median(self.layers):.0f}, max "
                f"{self.layers.max(initial=0)}; largest per-step bound {self.bound.max(initial=0.0):.3g}")
        if self.cold_layers is not None:
            ok = self.cold_layers >= 0
            if ok.any():
                text += (f"; cold start median {np.median(self.cold_layers[ok]):.0f}, max "
                         f"{self.cold_layers[ok].max()}")
        return text


def warm_closed_loop(model: ExplicitNetwork, x0, steps: int, *, layers: int | None = None,
                     tol: float | None = None, max_layers: int = 5000, plant=None, compare_cold: bool = True,
                     reference: bool = True, shift: bool = False) -> WarmStartResult:
    """Run ``model`` in closed loop with the layer state carried across steps.

    Parameters
    ----------
    model : ExplicitNetwork
        A network of a problem whose QP takes only the state (no input rates or references).
    x0 : array_like, shape (n_x,)
        Initial state.
    steps : int
        Number of closed-loop steps ``K``.
    layers : int, optional
        Layers per step (default ``model.depth``); ignored with ``tol``.
    tol : float, optional
        Run each step until the per-step bound is ``<= tol`` (checked every :data:`CHECK_EVERY` layers, at
        most ``max_layers``), and, with ``compare_cold``, measure the layers the zero start needs for it.
    max_layers : int
        Most layers of one step with ``tol``.
    plant : tuple of ndarray, optional
        ``(A, B)``, the model the loop runs on (default the MPC problem's own ``A``, ``B``).
    compare_cold : bool
        Measure the cold-start layers (only with ``tol``).
    reference : bool
        Measure each step's true error against the exact solver.
    shift : bool
        Shift the carried layer state by one stage before each step (the usual MPC warm start: row ``(c, k)``
        takes the value of row ``(c, k + 1)``, the input sequence moves up by one stage, the last stage keeps
        its value), where the rows are labelled by stage; ``False`` carries it as it is (the paper's warm start).

    Returns
    -------
    WarmStartResult

    Examples
    --------
    >>> import mpc2nn
    >>> from mpc2nn.explicit import warm_closed_loop
    >>> net = mpc2nn.compile(mpc2nn.systems.drummond2024())
    >>> ex = mpc2nn.unravel(net, depth=60, rho=1.0, relax=1.6)
    >>> loop = warm_closed_loop(ex, [-200.0, -200.0], 5, tol=1e-6)
    >>> loop.layers.shape, bool(loop.certified.all())
    ((5,), True)
    """
    if not isinstance(model, ExplicitNetwork):
        raise ProblemDefinitionError(f"model: expected an ExplicitNetwork (from mpc2nn.unravel), got "
                                     f"{type(model).__name__}")
    qp = model.net.qp
    if not qp.layout.state_only:
        raise ProblemDefinitionError(f"model: warm_closed_loop runs networks whose QP takes only the state; this one "
                                     f"takes θ = ({qp.layout.describe()})")
    steps = as_count("steps", steps, 1)
    max_layers = as_count("max_layers", max_layers, 1)
    tol = positive("tol", tol) if tol is not None else None
    per_step = model.depth if layers is None else as_count("layers", layers, 1)
    if plant is None:
        prob = qp.problem
        if prob is None:
            raise ProblemDefinitionError("plant: the QP was given directly (no MPC problem); pass plant=(A, B)")
        A, B = np.asarray(prob.A, float), np.asarray(prob.B, float)
    else:
        try:
            A, B = (np.asarray(a, float) for a in plant)
        except (TypeError, ValueError):
            raise ProblemDefinitionError("plant: expected (A, B) of shapes (n_x, n_x), (n_x, n_u)") from None
    n_x, n_u = qp.n_x, qp.n_u
    if A.shape != (n_x, n_x) or B.shape != (n_x, n_u):
        raise ProblemDefinitionError(f"plant: expected (A, B) of shapes ({n_x}, {n_x}), ({n_x}, {n_u}); got "
                                     f"{A.shape}, {B.shape}")
    x = np.asarray(x0, float).reshape(-1)
    if x.shape != (n_x,) or not np.all(np.isfinite(x)):
        raise ProblemDefinitionError(f"x0: expected {n_x} finite numbers, got {x0!r}")
    xs, us = [x.copy()], []
    used, bounds, cold, errs = [], [], [], []
    state = None
    mover = _shifter(model) if shift else None
    for _ in range(steps):
        xt = model._states(x[None, :])
        with torch.no_grad():
            ctx = model.context(xt)
            if state is None:
                state = model.init_state(xt)
            elif mover is not None:
                state = mover(state)
            j, b = _run(model, x, xt, ctx, state, per_step, tol, max_layers)
            state = j[1]
        used.append(j[0])
        bounds.append(b)
        if tol is not None and compare_cold:
            with torch.no_grad():
                jc, bc = _run(model, x, xt, ctx, model.init_state(xt), per_step, tol, max_layers)
            cold.append(jc[0] if bc <= tol else -1)
        with torch.no_grad():
            U = model.output(state, xt).double().numpy()[0]
        if reference:
            sol = model.net.solve(x)
            errs.append(float(np.abs(U - sol.U[0]).max()) if sol.feasible[0] else np.nan)
        u = U[:n_u]
        us.append(u)
        x = A @ x + B @ u
        xs.append(x.copy())
    bound = np.asarray(bounds)
    return WarmStartResult(states=np.asarray(xs), inputs=np.asarray(us), layers=np.asarray(used, dtype=np.int64),
                           bound=bound, certified=bound <= tol if tol is not None else np.zeros(steps, bool),
                           cold_layers=np.asarray(cold, dtype=np.int64) if cold else None,
                           error=np.asarray(errs) if reference else None, tol=tol)


def _run(model, x, xt, ctx, state, per_step, tol, max_layers):
    """``((layers, state), bound)``: a fixed number of layers, or layers until the bound certifies ``tol``."""
    if tol is None:
        for _ in range(per_step):
            state = model.layer(state, ctx)
        return (per_step, state), float(model.bound_at(x[None, :], state, a_priori=False).bound[0])
    done = 0
    b = float(model.bound_at(x[None, :], state, a_priori=False).bound[0])
    while b > tol and done < max_layers:
        for _ in range(CHECK_EVERY):
            state = model.layer(state, ctx)
        done += CHECK_EVERY
        b = float(model.bound_at(x[None, :], state, a_priori=False).bound[0])
    return (done, state), b


def _shifter(model: ExplicitNetwork):
    """The one-stage shift of a layer state (rows labelled ``"... at k=<stage>"``), or ``None`` if the rows are
    not labelled by stage.
    """
    qp = model.qp
    pat = re.compile(r"^(.*) at k=(\d+)$")
    keys = [pat.match(lab) for lab in qp.row_labels]
    if qp.m == 0 or not all(keys):
        return None
    where = {(k.group(1), int(k.group(2))): i for i, k in enumerate(keys) if k is not None}
    src = np.array([where.get((k.group(1), int(k.group(2)) + 1), i) for i, k in enumerate(keys) if k is not None])
    rows = torch.as_tensor(src)
    n_z, n_u = qp.n_z, qp.n_u
    plain = qp.output_map is None and qp.n_slack == 0
    cols = torch.as_tensor(np.concatenate([np.arange(n_u, n_z), np.arange(n_z - n_u, n_z)]))

    def move(state: tuple) -> tuple:
        out = []
        for s in state:
            if s.shape[1] == qp.m:
                out.append(s.index_select(1, rows))
            elif plain and s.shape[1] == n_z:
                out.append(s.index_select(1, cols))
            else:
                out.append(s)
        return tuple(out)

    return move
