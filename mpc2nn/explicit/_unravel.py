"""``unravel``: an explicit network of a chosen depth (or tolerance), its tuning and depth search."""

from __future__ import annotations

import math
import time

import numpy as np
import torch

from ..exceptions import ProblemDefinitionError, ShapeError
from ..implicit import ImplicitNetwork, compile
from ..sampling import sample_feasible
from ._admm import ADMMNetwork
from ._base import ExplicitNetwork
from ._hybrid import HybridNetwork
from ._lmi import design_feedback
from ._momentum import MomentumNetwork
from ._paper import PaperNetwork
from ._results import DepthSelection

__all__ = ["unravel", "throughput", "error_curve", "first_depth", "METHODS", "BETA_LADDER", "RHO_LADDER",
           "RELAX_LADDER", "MAX_DEPTH"]


#: Constructions accepted by :func:`unravel`.
METHODS = ("admm", "momentum", "paper", "lmi", "hybrid")


#: Momentum ladder searched by ``method="momentum"`` when ``beta`` is not given.
BETA_LADDER = (0.0, 0.5, 0.7, 0.8, 0.85, 0.9, 0.93, 0.95, 0.97, 0.98)


#: ADMM penalty ladder (multiplied by ``trace(H)/m``, rows of G at unit norm) and relaxations searched by
#: ``method="admm"``.
RHO_LADDER = tuple(float(v) for v in np.logspace(-4, 4, 25))


RELAX_LADDER = (1.6, 1.8, 1.9)


#: Largest depth tried by the tolerance search of :func:`unravel`.
MAX_DEPTH = 20000


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


def first_depth(err_max: np.ndarray, tol: float) -> int | None:
    """Smallest depth ``J`` with ``err_max[j] <= tol`` for all ``j >= J - 1`` (layers counted from 1)."""
    bad = np.flatnonzero(~(err_max <= tol))
    if bad.size == 0:
        return 1
    if bad[-1] == err_max.size - 1:
        return None
    return int(bad[-1]) + 2


def error_curve(model: ExplicitNetwork, X: np.ndarray, U: np.ndarray, J: int, tol: float | None = None
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
        qp = qp_full.with_rows(kept)
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
            tune = sample_feasible(net, qp_full.sample_box, n_tuning, seed)

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
            Xs, Us = sample_feasible(net, region, n_tuning, seed + 1)
        model = build(0)
        curve = error_curve(model, Xs, Us, int(max_depth), float(tol))
        J = first_depth(curve, float(tol))
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
            curve = error_curve(model, X, U, depth)
            key = (float(curve[-1]),)
        else:
            limit = cap if best_key is None else min(cap, best_key[0])
            curve = error_curve(model, X, U, limit, tol)
            J = first_depth(curve, tol)
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
