"""``unravel``: an explicit network of a chosen depth (or tolerance), its tuning and depth search."""

from __future__ import annotations

import itertools
import math
import time

import numpy as np
import torch

from .._checks import as_box, as_count
from ..exceptions import ProblemDefinitionError
from ..implicit import ImplicitNetwork
from ..sampling import parameter_box, sample_feasible
from ._base import ExplicitNetwork
from ._hybrid import HybridNetwork
from ._registry import CONSTRUCTIONS, Construction, ConstructionOptions, construction, options_for, positive
from ._results import DepthSelection

__all__ = ["unravel", "throughput", "error_curve", "first_depth", "MAX_DEPTH"]


#: Largest depth tried by the tolerance search of :func:`unravel`.
MAX_DEPTH = 20000
#: :func:`error_curve` stops once the error is below ``EARLY_STOP_FACTOR·tol``: the depth search only needs
#: the first depth below ``tol`` and that the error stays there, and 100× below it the curve is taken to
#: stay below (checking it to the end would cost up to ``max_depth`` layers per candidate).
EARLY_STOP_FACTOR = 1e-2


def first_depth(err_max: np.ndarray, tol: float) -> int | None:
    """Smallest depth ``J`` with ``err_max[j] <= tol`` for all ``j >= J - 1`` (layers counted from 1).

    Parameters
    ----------
    err_max : ndarray, shape (J,)
        Largest error after each layer (an :func:`error_curve`).
    tol : float
        The tolerance.

    Returns
    -------
    int or None
        ``None`` when the last entry is still above ``tol``.

    Examples
    --------
    >>> import numpy as np
    >>> from mpc2nn.explicit import first_depth
    >>> first_depth(np.array([1.0, 1e-3, 1e-2, 1e-5, 1e-7]), 1e-4)    # from layer 4 on
    4
    """
    bad = np.flatnonzero(~(err_max <= tol))
    if bad.size == 0:
        return 1
    if bad[-1] == err_max.size - 1:
        return None
    return int(bad[-1]) + 2


def error_curve(model: ExplicitNetwork, X: np.ndarray, U: np.ndarray, J: int, tol: float | None = None
                 ) -> np.ndarray:
    """``(J',)`` max error over the states after each layer.

    Parameters
    ----------
    model : ExplicitNetwork
        The network (its own depth is ignored).
    X : array_like, shape (B, n_θ)
        Network inputs.
    U : array_like, shape (B, N·n_u)
        Their exact outputs.
    J : int
        Largest number of layers run.
    tol : float, optional
        Stop after the first layer whose error is below ``EARLY_STOP_FACTOR·tol`` (100× below).

    Returns
    -------
    ndarray, shape (J',)
        ``max_b ‖U_j(x_b) - U_b‖∞`` for ``j = 1..J'``, ``J' <= J``.
    """
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
            if tol is not None and e <= EARLY_STOP_FACTOR * tol:
                break
    return np.asarray(out)


def unravel(net: ImplicitNetwork, depth: int | None = None, *, method: str | ConstructionOptions = "admm",
            tol: float | None = None, states=None, box=None, dtype: torch.dtype = torch.float64,
            prune: bool = False, tuning_states=None, n_tuning: int = 300, seed: int = 0,
            hybrid_base: str = "admm", max_depth: int = MAX_DEPTH, **options) -> ExplicitNetwork | HybridNetwork:
    """Unravel an implicit network into an explicit feed-forward network.

    Parameters
    ----------
    net : ImplicitNetwork
        The network to unravel (from :func:`mpc2nn.compile`).
    depth : int, optional
        Number of layers. Give either ``depth`` or ``tol``.
    method : str or options object
        The construction: a name of :data:`~mpc2nn.explicit.CONSTRUCTIONS` (``"admm"``, the
        default and the most depth-efficient pure Linear+ReLU construction measured on the public
        suite, ``"momentum"``, ``"paper"``, ``"lmi"``), ``"hybrid"`` (a pure construction,
        ``hybrid_base``, then an exact finishing stage), or an options object such as
        ``ADMMOptions(rho=2.0, relax=1.6)``.
    tol : float, optional
        Choose the smallest depth whose largest ``‖U - U*‖∞`` over ``states`` (or
        ``n_tuning`` feasible states drawn from ``box``, default the QP's sample box)
        is <= ``tol``. The choice is empirical on those states; ``selection`` on the
        result says so, and :meth:`ExplicitNetwork.error_bound` bounds any other state.
    states : array_like, shape (B, n_θ), optional
        Selection states for ``tol`` (feasible ones are kept).
    box : (lo, hi), optional
        Box of states, arrays of shape (n_x,) each: where selection states are drawn (without
        ``states``) and where ``prune`` proves rows inactive; default the QP's sample box.
    dtype : torch.dtype
        ``torch.float64`` (default) or ``torch.float32``.
    prune : bool
        Drop rows that no state of ``box`` (default: the sample box) can make active,
        proved by one LP per row.
    tuning_states : array_like, shape (B, n_θ), optional
        States for tuning ``beta``/``rho``/``relax`` (default: ``n_tuning`` feasible states
        drawn from the sample box with ``seed``). Keep them apart from the states used to
        report accuracy.
    n_tuning : int
        Number of states drawn for tuning, and for the depth selection without ``states``.
    seed : int
        Seed of the tuning states (the selection states use ``seed + 1``).
    hybrid_base : str
        Pure construction run before the finishing stage of ``method="hybrid"``.
    max_depth : int
        Largest depth tried by the tolerance search and the tuning (default :data:`MAX_DEPTH`).
    **options
        The construction's options, the fields of its options class: ``K`` and ``alpha``
        (``"paper"``: the feedback, 0 for the plain form, and the steps, default the implicit
        network's), ``beta`` (``"momentum"``, tuned over :data:`BETA_LADDER` when not given),
        ``rho`` and ``relax`` (``"admm"``, tuned over :data:`RHO_LADDER` × :data:`RELAX_LADDER`,
        the penalty scaled by ``trace(H)/m`` on rows at unit norm), ``tol`` and ``max_rows``
        (``"lmi"``). An option the construction does not have is an error.

    Returns
    -------
    ExplicitNetwork or HybridNetwork
        A ``torch.nn.Module``, or a HybridNetwork for ``method="hybrid"``.

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
    if dtype not in (torch.float64, torch.float32):
        raise ProblemDefinitionError(f"dtype: expected torch.float64 or torch.float32, got {dtype}")
    if (depth is None) == (tol is None):
        raise ProblemDefinitionError("unravel: give exactly one of depth= (number of layers) or tol= "
                                     "(largest error on the selection states)")
    if depth is not None:
        depth = as_count("depth", depth, 0)
    if tol is not None:
        tol = positive("tol", tol, allow_none=False)
    max_depth = as_count("max_depth", max_depth, 1)
    n_tuning = as_count("n_tuning", n_tuning, 1)
    hybrid = isinstance(method, str) and method == "hybrid"
    if isinstance(method, ConstructionOptions):
        if options:
            raise ProblemDefinitionError(f"unravel: options {sorted(options)} given beside the options object "
                                         f"{type(method).__name__}; put them into it")
        c = next((c for c in CONSTRUCTIONS.values() if isinstance(method, c.options)), None)
        if c is None:
            raise ProblemDefinitionError(f"method: {type(method).__name__} is not the options class of a "
                                         "registered construction")
        opts = method
    elif isinstance(method, str):
        c = construction(hybrid_base if hybrid else method)
        opts = options_for(c, options)
    else:
        raise ProblemDefinitionError(f"method: expected a construction name or an options object, got {method!r}")
    qp_full = net.qp
    box = None if box is None else as_box("box", box, qp_full.n_x)
    region = box if box is not None else qp_full.sample_box
    kept = np.arange(qp_full.m)
    qp = qp_full
    if prune:
        if region is None:
            raise ProblemDefinitionError("prune: needs a box of states (box=, or a QP with a sample_box)")
        red = net.well_posedness(box=region).redundant_rows
        kept = np.setdiff1d(kept, np.asarray(red, dtype=np.int64))
        qp = qp_full.with_rows(kept)
    J0 = int(depth) if depth is not None else 0

    tune = None
    if opts.tuned():
        if tuning_states is not None:
            Xt = qp_full.check_parameters(tuning_states, "tuning_states")
            sol = net.solve(Xt)
            tune = (Xt[sol.feasible], sol.U[sol.feasible])
        else:
            if qp_full.sample_box is None and box is None:
                raise ProblemDefinitionError(f"tuning needs states: pass tuning_states=, box=, or the options "
                                             f"{', '.join(opts.tuned())} of method={c.name!r}")
            tune = sample_feasible(net, parameter_box(qp_full, box), n_tuning, seed)

    if tune is not None:
        opts = _tune(c, qp, kept, net, tune, J0, tol, dtype, opts, max_depth, prune)

    def build(J: int) -> ExplicitNetwork:
        return c.build(net, qp, kept, J, dtype, opts, pruned=prune)

    if tol is not None:
        if states is not None:
            Xs = qp_full.check_parameters(states, "states")
            sol = net.solve(Xs)
            Xs, Us = Xs[sol.feasible], sol.U[sol.feasible]
        else:
            if region is None:
                raise ProblemDefinitionError("tol: needs selection states (states= or box=)")
            Xs, Us = sample_feasible(net, parameter_box(qp_full, region), n_tuning, seed + 1)
        model = build(0)
        curve = error_curve(model, Xs, Us, int(max_depth), float(tol))
        J = first_depth(curve, float(tol))
        if J is None:
            J = curve.size
        model.depth = J
        guarantee = (f"max ‖U - U*‖∞ = {curve[J - 1]:.3g} on {len(Xs)} selection states (empirical); "
                     "error_bound(x) gives a per-state bound for any other state")
        if model.certificate().exists:
            guarantee += "; a-priori bound from the certified contraction rate also available"
        model.selection = DepthSelection(float(tol), J if curve[J - 1] <= tol else None, float(curve[J - 1]),
                                         len(Xs), guarantee)
    else:
        model = build(J0)
    if hybrid:
        return HybridNetwork(model)
    return model


def _tune(c: Construction, qp, kept, net, tune, depth, tol, dtype, opts, max_depth, pruned):
    """``opts`` with its unset options chosen from the construction's ladders: the candidate with the
    smallest error at ``depth`` (or, for a tolerance, the smallest depth reaching ``tol``).
    """
    X, U = tune
    ladders = c.ladders(qp)
    names = opts.tuned()
    cands = [opts.with_values(**dict(zip(names, values, strict=True)))
             for values in itertools.product(*(ladders[n] for n in names))]
    best, best_key = opts, None
    key: tuple[float, ...]
    cap = int(max_depth) if depth == 0 else depth
    for cand in cands:
        model = c.build(net, qp, kept, 0, dtype, cand, pruned=pruned)
        if depth:
            curve = error_curve(model, X, U, depth)
            key = (float(curve[-1]),)
        else:
            limit = cap if best_key is None else min(cap, int(min(best_key[0], cap)))
            curve = error_curve(model, X, U, limit, tol)
            J = first_depth(curve, tol)
            key = (J if J is not None else math.inf, float(curve[-1]))
        if best_key is None or key < best_key:
            best, best_key = cand, key
    return best


def throughput(model: ExplicitNetwork, X, *, repeats: int = 5) -> float:
    """Median states per second of ``model`` on a batch (no gradients, after one warm-up call).

    Parameters
    ----------
    model : ExplicitNetwork
        The network timed.
    X : array_like, shape (B, n_θ)
        The batch, evaluated at once.
    repeats : int
        Timed runs; the median is taken.

    Returns
    -------
    float
        ``B`` divided by the median time of one forward pass.
    """
    x = model._states(X)
    times = []
    with torch.no_grad():
        model(x[:8])
        for _ in range(repeats):
            t0 = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - t0)
    return x.shape[0] / float(np.median(times))
