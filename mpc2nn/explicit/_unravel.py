"""``unravel``: an explicit network of a chosen depth, or of the depth a tolerance needs, checked on held-out states."""

from __future__ import annotations

import math
import sys
import time

import numpy as np
import torch

from .._checks import as_count
from ..exceptions import ProblemDefinitionError, ToleranceNotMetError
from ..implicit import ImplicitNetwork
from ..status import DepthStatus
from ._base import ExplicitNetwork
from ._curves import RESOLUTION_UNITS, CurveRun, error_curve, first_depth, rounding_level
from ._hybrid import HybridNetwork
from ._registry import CONSTRUCTIONS, ConstructionOptions, construction, in_interval, options_for, positive
from ._results import DepthSelection
from ._selection import Region, draw_feasible, failure_bound, hard_states, perturbed, region_of
from ._tuning import tune

__all__ = ["unravel", "throughput", "error_curve", "first_depth", "MAX_DEPTH", "MAX_CHECKS", "N_SELECT", "N_CHECK",
           "SELECTION_MARGIN"]


#: Largest depth tried by the tolerance search of :func:`unravel`.
MAX_DEPTH = 20000
#: Uniform feasible selection states drawn from the region by default (half as many hard states are added).
N_SELECT = 1000
#: Held-out states of each check by default: with none above the tolerance, ``P(error > tol) <= 0.41 %`` at
#: 95 % confidence (three checks at most, Bonferroni).
N_CHECK = 1000
#: The depth is chosen for ``SELECTION_MARGIN · tol`` on the selection states and checked for ``tol`` on the
#: held-out ones: the rare held-out states slower than every selection state then still meet ``tol`` (without it
#: the inverted pendulum's chosen depth gave 1.08e-6 on 1 of 10⁴ independent states for tol = 1e-6; a linear rate
#: halves the error in a third of a decade's layers, so the margin costs ~10-15 % depth).
SELECTION_MARGIN = 0.5
#: Held-out checks at most: a check that finds states above the tolerance raises the depth to what they need
#: and a fresh sample is drawn; the confidence is split over the checks (Bonferroni).
MAX_CHECKS = 3
#: Selection states run with the construction's likeliest settings to find the slowest ones, which make half of
#: the tuning states (the depth for a tolerance is set by the slowest states, so the tuning must see them).
TAIL_POOL = 600
#: Layers of that run at most (states still above the tolerance then count as the slowest).
TAIL_DEPTH = 3000
#: Worst selection states whose neighbourhoods are searched for harder states after the first choice.
N_CENTRES = 32
#: Perturbations per searched state.
PER_CENTRE = 8
#: Sizes of the perturbations in the rounds of the local search, as fractions of the region's width (the
#: search stops after a round that found no state needing more layers).
PERTURBATIONS = (0.05, 0.02, 0.01, 0.005)


def unravel(net: ImplicitNetwork, depth: int | None = None, *, method: str | ConstructionOptions = "admm",
            tol: float | None = None, states=None, box=None, dtype: torch.dtype = torch.float64,
            prune: bool | None = None, tuning_states=None, n_tuning: int = 100, seed: int = 0,
            hybrid_base: str = "admm", max_depth: int = MAX_DEPTH, n_select: int = N_SELECT,
            n_check: int = N_CHECK, confidence: float = 0.95, on_failure: str = "raise", progress=None,
            hard: bool | tuple = True, **options) -> ExplicitNetwork | HybridNetwork:
    """Unravel an implicit network into an explicit feed-forward network.

    Parameters
    ----------
    net : ImplicitNetwork
        The network to unravel (from :func:`mpc2nn.compile`).
    depth : int, optional
        Number of layers. Give either ``depth`` or ``tol``.
    method : str or options object
        The construction: a name of :data:`~mpc2nn.explicit.CONSTRUCTIONS` (``"admm"``, the default:
        ADMM on diagonally scaled rows, the most depth-efficient pure Linear+ReLU construction measured in
        ``benchmarks/depth.py``; ``"momentum"``, ``"paper"``, ``"lmi"``), ``"hybrid"`` (a pure construction,
        ``hybrid_base``, then an exact finishing stage), or an options object such as
        ``ADMMOptions(scaling="jacobi", rho=2.0, relax=1.9)`` (``network.options`` of a tuned network).
    tol : float, optional
        Choose the depth for ``max ‖U - U*‖∞ <= tol``: on ``n_select`` uniform feasible states of the region
        plus about ``n_select/2`` states near switches of the active set and near the feasible-set boundary
        (or on ``states``), plus perturbations of the worst of them; then checked on ``n_check`` fresh uniform
        feasible states (up to :data:`MAX_CHECKS` times, raising the depth to what failing states need).
        ``network.selection`` (a :class:`DepthSelection`) holds the criterion, the check and a quotable
        statement (``P(error > tol) <= p`` at ``confidence``). The choice is a sampled check, not a proof;
        :meth:`ExplicitNetwork.error_bound` bounds the error of any given state rigorously.
    states : array_like, shape (B, n_θ), optional
        Selection states for ``tol`` (feasible ones are kept) instead of those drawn from the region.
    box : (lo, hi) or Polytope, optional
        The region of states (``(n_x,)`` each), of ``θ`` (``(n_θ,)``) or a :class:`~mpc2nn.problem.Polytope`
        of ``θ``: it serves the tuning, the depth selection, the held-out check and ``prune`` (default: the
        QP's sample box).
    dtype : torch.dtype
        ``torch.float64`` (default) or ``torch.float32``.
    prune : bool, optional
        Drop rows that no state of the region (its bounding box) can make active, proved by one LP per row.
        Such rows change nothing in the region but slow an ADMM unroll down (their multipliers must be driven
        to zero): the depth for 1e-6 on the cart-pole falls four-fold. Default: pruned for ``tol`` when a region
        is known, not pruned for ``depth``. A pruned network is meant for states of the region;
        :meth:`ExplicitNetwork.error_bound` still bounds it everywhere (it is w.r.t. the full QP).
    tuning_states : array_like, shape (B, n_θ), optional
        States for tuning the unset options (default: ``n_tuning`` states of the region, half of them near
        active-set switches and the boundary). Keep them apart from the states used to report accuracy.
    n_tuning : int
        Tuning states drawn when ``tuning_states`` is not given (default 100).
    seed : int
        Seed of every draw (tuning, selection and checks use different streams of it).
    hybrid_base : str
        Pure construction run before the finishing stage of ``method="hybrid"``.
    max_depth : int
        Largest depth tried by the tolerance search and the tuning (default :data:`MAX_DEPTH`).
    n_select, n_check : int
        Uniform selection states and held-out states per check (defaults :data:`N_SELECT`, :data:`N_CHECK`;
        ``n_check=0`` skips the check).
    confidence : float
        Confidence level of the statement on ``P(error > tol)`` (default 0.95).
    on_failure : ``"raise"`` (default) or ``"return"``
        What a tolerance that is not met does: raise :class:`~mpc2nn.exceptions.ToleranceNotMetError` (its
        ``network`` holds the deepest network tried), or return that network with ``selection.status`` saying
        ``"not met"``/``"stalled"``.
    progress : callable or bool, optional
        ``progress(stage, done, total)`` is called during long builds; ``True`` prints one line per stage to
        stderr.
    hard : bool or tuple of str
        The kinds of hard selection states added for ``tol`` (``True``: all of ``"switch"``, ``"boundary"``,
        ``"corner"``; ``False``: none). States near the feasible-set boundary can make a small tolerance
        unreachable (unrolled first-order iterations slow down without bound there); leaving them out makes
        the choice rest on the uniform states and the held-out check alone (measured: on the double integrator
        ``hard=("switch", "corner")`` chose depth 793, which met 1e-6 on its own 1000 held-out states and
        failed on 13 of 10⁴ others, largest error 3.9e-3; the default refuses there).
    **options
        The construction's options, the fields of its options class: ``K`` and ``alpha``
        (``"paper"``: the feedback, 0 for the plain form, and the steps, default the implicit
        network's), ``beta`` (``"momentum"``), ``rho``, ``relax``, ``scaling`` and ``state_rho`` (``"admm"``),
        ``tol`` and ``max_rows`` (``"lmi"``). Unset options are tuned; an option the construction does not
        have is an error.

    Returns
    -------
    ExplicitNetwork or HybridNetwork
        A ``torch.nn.Module``, or a HybridNetwork for ``method="hybrid"``.

    Raises
    ------
    ToleranceNotMetError
        ``tol`` not met within ``max_depth`` layers, stalled at the dtype's rounding level, below the dtype's
        resolution, or exceeded on the held-out states of the last check (unless ``on_failure="return"``).

    Examples
    --------
    >>> import mpc2nn, torch
    >>> net = mpc2nn.compile(mpc2nn.systems.drummond2024())
    >>> ex = mpc2nn.unravel(net, depth=100, method="momentum", beta=0.9)
    >>> ex(torch.tensor([[-200.0, -200.0]], dtype=torch.float64)).shape
    torch.Size([1, 10])
    """
    t0 = time.perf_counter()
    if not isinstance(net, ImplicitNetwork):
        raise ProblemDefinitionError(f"unravel: expected an ImplicitNetwork (from mpc2nn.compile), "
                                     f"got {type(net).__name__}")
    if dtype not in (torch.float64, torch.float32):
        raise ProblemDefinitionError(f"dtype: expected torch.float64 or torch.float32, got {dtype}")
    if (depth is None) == (tol is None):
        raise ProblemDefinitionError("unravel: give exactly one of depth= (number of layers) or tol= "
                                     "(largest error on the selection states)")
    if depth is not None:
        depth = as_count("depth", depth, 1)
    if tol is not None:
        tol = positive("tol", tol, allow_none=False)
    max_depth = as_count("max_depth", max_depth, 1)
    n_tuning = as_count("n_tuning", n_tuning, 1)
    n_select = as_count("n_select", n_select, 1)
    n_check = as_count("n_check", n_check, 0)
    confidence = float(in_interval("confidence", confidence, 0.0, 1.0, closed_lo=False) or 0.95)
    kinds = _hard_kinds(hard)
    if on_failure not in ("raise", "return"):
        raise ProblemDefinitionError(f"on_failure: expected 'raise' or 'return', got {on_failure!r}")
    report = _reporter(progress)
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
    region = region_of(qp_full, box)
    kept = np.arange(qp_full.m)
    qp = qp_full
    if prune is None:
        prune = tol is not None and region is not None and states is None
    if prune:
        if region is None:
            raise ProblemDefinitionError("prune: needs a region of states (box=, or a QP with a sample_box)")
        n_x = qp_full.n_x
        red = net.well_posedness(box=(region.lo[:n_x], region.hi[:n_x])).redundant_rows
        kept = np.setdiff1d(kept, np.asarray(red, dtype=np.int64))
        qp = qp_full.with_rows(kept)

    # selection states (tolerance) and tuning states
    sel_X = sel_U = None
    n_hard, counts = 0, dict[str, int]()
    if tol is not None:
        if states is not None:
            sel_X, sel_U = _feasible_of(net, states, "states")
        else:
            if region is None:
                raise ProblemDefinitionError("tol: needs selection states: states=, or a region (box=, or a QP "
                                             "with a sample_box)")
            report("sampling", 0, n_select)
            Xu, Uu, yu, Xi = draw_feasible(net, region, n_select, seed + 1)
            report("hard states", 0, n_select // 2)
            Xh, Uh, counts = hard_states(net, Xu, yu, Xi, n_select // 2 if kinds else 0, seed + 2, region=region,
                                         kinds=kinds)
            sel_X, sel_U = (np.vstack([Xu, Xh]), np.vstack([Uu, Uh])) if len(Xh) else (Xu, Uu)
            n_hard = len(Xh)
        res = rounding_level(dtype, sel_U, RESOLUTION_UNITS)
        if tol < res:
            raise ToleranceNotMetError(
                f"tol: {tol:g} is below the resolution of {str(dtype).replace('torch.', '')} for these outputs "
                f"({RESOLUTION_UNITS:g} rounding units of max(1, max|U*|) = {res:.3g}); use torch.float64 or a "
                "larger tol")
    tuning = None
    if opts.tuned():
        reference = None
        if tol is not None and tuning_states is None:
            first = _reference(c, qp, opts)
            reference = c.build(net, qp, kept, 0, dtype, first, pruned=prune)
        Xt, Ut = _tuning_set(net, region, tuning_states, n_tuning, seed, sel_X, sel_U, n_hard, c.name, opts,
                             reference, tol, max_depth)
        opts, tuning = tune(c, net, qp, kept, Xt, Ut, depth=depth or 0, tol=tol, dtype=dtype, opts=opts,
                            max_depth=max_depth, pruned=prune, progress=report)

    def build(J: int) -> ExplicitNetwork:
        return c.build(net, qp, kept, J, dtype, opts, pruned=prune)

    if tol is None or sel_X is None or sel_U is None:  # the selection states are drawn whenever tol is given
        model = build(int(depth or 0))
        return HybridNetwork(model) if hybrid else model
    model = build(0)
    model.selection, reached = _select(net, model, region, sel_X, sel_U, n_hard, counts, float(tol), max_depth,
                                       n_check, confidence, seed, opts, tuning, report, t0)
    sel = model.selection
    model.depth = int(sel.depth if sel.depth is not None else reached)
    if not sel.met and on_failure == "raise":
        raise ToleranceNotMetError(f"tol: {sel.statement}", network=model)
    if hybrid:
        return HybridNetwork(model)
    return model


def _hard_kinds(hard) -> tuple:
    every = ("switch", "boundary", "corner")
    if hard is True:
        return every
    if hard is False or hard is None:
        return ()
    try:
        got = tuple(str(k) for k in hard)
    except TypeError:
        got = ("?",)
    if not set(got) <= set(every) or isinstance(hard, str):
        raise ProblemDefinitionError(f"hard: expected True, False or a tuple of {every}, got {hard!r}")
    return got


def _feasible_of(net, X, name: str) -> tuple[np.ndarray, np.ndarray]:
    Xn = net.qp.check_parameters(X, name)
    sol = net.solve(Xn)
    ok = sol.feasible & (sol.status == "solved")
    if not ok.any():
        raise ProblemDefinitionError(f"{name}: none of the {len(Xn)} states is feasible (with a certified exact "
                                     "solution); pass states where the MPC problem has a solution")
    return Xn[ok], sol.U[ok]


def _tuning_set(net, region: Region | None, tuning_states, n: int, seed: int, sel_X, sel_U, n_hard: int,
                name: str, opts, reference=None, tol=None, max_depth=MAX_DEPTH) -> tuple[np.ndarray, np.ndarray]:
    """The given tuning states; else, for a tolerance, the slowest selection states under a reference candidate
    (half the set) and uniform ones (the other half); without a tolerance, states of the region, half of them
    hard ones.
    """
    if tuning_states is not None:
        return _feasible_of(net, tuning_states, "tuning_states")
    if sel_X is not None and sel_U is not None:
        rng = np.random.default_rng(seed + 4)
        pool = rng.permutation(len(sel_X))[:TAIL_POOL]
        n_uniform = n - n // 2
        if reference is None or tol is None:
            return sel_X[pool[:n]], sel_U[pool[:n]]
        run = CurveRun(reference, sel_X[pool], sel_U[pool], tol)
        run.advance(min(max_depth, TAIL_DEPTH), stop_below=1e-2 * tol)
        slow = np.lexsort((run.last_err, run.last_bad))[::-1][: n // 2]
        rest = np.setdiff1d(np.arange(pool.size), slow)[:n_uniform]
        idx = pool[np.concatenate([slow, rest])]
        return sel_X[idx], sel_U[idx]
    if region is None:
        raise ProblemDefinitionError(f"tuning needs states: pass tuning_states=, box=, or the options "
                                     f"{', '.join(opts.tuned())} of method={name!r}")
    Xu, Uu, yu, Xi = draw_feasible(net, region, n - n // 2, seed)
    Xh, Uh, _ = hard_states(net, Xu, yu, Xi, n // 2, seed + 5, region=region, kinds=("switch", "corner"))
    return (np.vstack([Xu, Xh]), np.vstack([Uu, Uh])) if len(Xh) else (Xu, Uu)


def _reference(c, qp, opts):
    """The first candidate of the construction's ladders (its likeliest settings)."""
    ladders = c.ladders(qp)
    for name in [n for n in ladders if n in opts.tuned()] + [n for n in opts.tuned() if n not in ladders]:
        values = ladders[name](opts) if callable(ladders[name]) else ladders[name]
        opts = opts.with_values(**{name: values[0]})
    return opts


def _depth_of(model, X, U, tol: float, max_depth: int, report, stage: str) -> tuple[int | None, CurveRun]:
    run = CurveRun(model, X, U, tol)
    run.advance(max_depth, stop_below=1e-2 * tol, progress=lambda d: report(stage, d, max_depth))
    return first_depth(run.errors(), tol), run


def _select(net, model, region, X, U, n_hard, counts, tol, max_depth, n_check, confidence, seed, opts, tuning,
            report, t0) -> tuple[DepthSelection, int]:
    """Choose the depth on the selection states, search near the worst of them, check on held-out states."""
    floor = rounding_level(model._dtype, U)
    aim = max(SELECTION_MARGIN * tol, min(tol, floor))  # not below where an error curve may stall on rounding
    aim_txt = f"the selection target {aim:g} (tol = {tol:g}, {aim / tol:.2g} × tol for a margin)"
    J, run = _depth_of(model, X, U, aim, max_depth, report, "selection")
    n_states = len(X)
    kind = np.array(["uniform"] * (len(X) - n_hard) + ["near the box's corners"] * counts.get("corner", 0)
                    + ["near active-set switches"] * counts.get("switch", 0)
                    + ["near the feasible-set boundary"] * counts.get("boundary", 0))
    if kind.size != len(X):
        kind = np.array(["given"] * len(X))
    why = ""
    n_local = 0
    if J is not None and region is not None:
        # search the neighbourhoods of the worst states for worse ones (a few rounds of a random local search)
        pool_X, pool_bad = X, run.last_bad
        for r, scale in enumerate(PERTURBATIONS):
            worst = np.argsort(-pool_bad)[:N_CENTRES]
            worst = worst[pool_bad[worst] > 0]
            if worst.size == 0:
                break
            Xp, Up = perturbed(net, region, pool_X[worst], PER_CENTRE, scale, seed + 6 + r)
            if not len(Xp):
                continue
            Jp, run_p = _depth_of(model, Xp, Up, aim, max_depth, report, "refining")
            n_states += len(Xp)
            n_hard += len(Xp)
            n_local += len(Xp)
            if Jp is None:
                J, run = None, run_p
                kind = np.array(["from the local search"] * len(Xp))
                break
            grew = Jp > J
            J = max(J, Jp)
            pool_X, pool_bad = np.vstack([pool_X[worst], Xp]), np.concatenate([pool_bad[worst], run_p.last_bad])
            if not grew and r > 0:
                break
    stalled = run.stalled
    if J is None:
        best = float(np.min(run.errors())) if run.depth else math.inf
        why = (f"the largest error on the selection states stalled at {best:.3g} after {run.depth} layers, within "
               f"the rounding level of {str(model._dtype).replace('torch.', '')} ({floor:.3g}), above {aim_txt}"
               if run.stalled else
               f"the largest error on the selection states is still {run.errors()[-1]:.3g} > {aim_txt} after "
               f"max_depth = {max_depth} layers (best {best:.3g})")
        slow = run.alive[run.last_err[run.alive] > aim] if run.alive.size else np.zeros(0, int)
        if slow.size:
            names, n_of = np.unique(kind[slow], return_counts=True)
            why += "; the states that do not reach it: " + ", ".join(f"{c} {k}" for k, c in zip(names, n_of,
                                                                                            strict=True))
            if "near the feasible-set boundary" in names:
                why += (" (unrolled iterations slow down without bound near the boundary: choose a region further "
                        "inside, or hard=('switch', 'corner') to rest the choice on the held-out check alone: its "
                        "statement is then a statistical bound and the rare states near the boundary may exceed "
                        "tol, as 13 of 10⁴ did on the double integrator)")
    max_err = float(run.errors()[min(J, run.depth) - 1]) if J is not None and run.depth else math.inf
    checks = 0
    k, n_c, worst_c, p_bound = 0, 0, None, None
    delta = (1.0 - confidence) / MAX_CHECKS
    checked = J is not None and region is not None and n_check > 0
    if J is not None and region is not None and n_check > 0:
        for r in range(MAX_CHECKS):
            checks += 1
            report("check", r + 1, MAX_CHECKS)
            Xc, Uc, _, _ = draw_feasible(net, region, n_check, seed + 100 + r)
            model.depth = J
            err = np.abs(model.evaluate(Xc) - Uc).max(axis=1)
            fail = ~(err <= tol)
            k, n_c = int(fail.sum()), len(Xc)
            worst_c = float(np.max(np.where(np.isnan(err), np.inf, err)))
            p_bound = failure_bound(k, n_c, delta)
            if k == 0 or r == MAX_CHECKS - 1:
                break
            Jf, run_f = _depth_of(model, Xc[fail], Uc[fail], aim, max_depth, report, "check")
            if Jf is None:
                stalled = run_f.stalled
                why = (f"{k} of {n_c} held-out states exceed tol = {tol:g} at depth {J} and do not reach it "
                       f"within max_depth = {max_depth} layers" + (" (stalled at the rounding level)" if stalled
                                                                    else ""))
                J = None
                break
            J = max(J, Jf)
    if J is None:
        status = DepthStatus.STALLED if stalled else DepthStatus.NOT_MET
    elif checked and k > 0:
        why = (f"{k} of {n_c} held-out states still exceed tol = {tol:g} after {checks} checks (largest error "
               f"{worst_c:.3g} at depth {J})")
        status = DepthStatus.NOT_MET
    else:
        status = DepthStatus.MET if checked else DepthStatus.MET_ON_SELECTION
    conf_txt = f"{100 * confidence:g} %"
    if region is None or not counts:
        what = (f"{n_states} selection states: the {n_states - n_local} given states and {n_local} from a local "
                "search around the slowest")
    else:
        what = (f"{n_states} selection states: {n_states - n_hard} uniform feasible states of {region.description}, "
                f"{counts.get('switch', 0)} near active-set switches, {counts.get('boundary', 0)} near the "
                f"feasible-set boundary, {counts.get('corner', 0)} near the box's corners, {n_local} from a local "
                "search around the slowest")
    criterion = (f"smallest depth with max ‖U - U*‖∞ <= {aim:g} ({aim / tol:.2g} × tol, a margin) on {what}; "
                 f"held-out check for tol = {tol:g} on {n_check} fresh uniform feasible states (at most {MAX_CHECKS} "
                 "checks, each failure raising the depth)")
    if status == DepthStatus.MET:
        statement = (f"{k} of {n_c} held-out states (uniform on the feasible part of {region.description}, drawn "
                     f"after the choice) have ‖U - U*‖∞ > {tol:g} at depth {J} ⇒ P(error > {tol:g}) <= "
                     f"{p_bound:.2g} at {conf_txt} confidence (Clopper–Pearson, the confidence split over "
                     f"{MAX_CHECKS} possible checks); a sampled check, not a proof")
    elif status == DepthStatus.MET_ON_SELECTION:
        statement = (f"max ‖U - U*‖∞ = {max_err:.3g} <= {tol:g} on the {n_states} selection states at depth {J}; no "
                     "held-out check (no region to draw from: pass box=), so nothing is claimed for other states")
    else:
        statement = f"not met: {why}"
    reached = max(run.depth, J or 0)
    guarantee = (statement + "; the choice is empirical (sampled states), error_bound(x) gives a rigorous "
                 "per-state bound for any state")
    return DepthSelection(
        float(tol), J if status in (DepthStatus.MET, DepthStatus.MET_ON_SELECTION) else None, max_err, n_states,
        guarantee, status=str(status), criterion=criterion, construction=_describe(model, opts), n_hard=n_hard,
        n_check=n_c, check_failures=k, check_max_error=worst_c, failure_bound=p_bound,
        confidence=confidence if p_bound is not None else None, statement=statement, rounds=checks,
        seconds=time.perf_counter() - t0, tuning="" if tuning is None else tuning.summary()), reached


def _describe(model, opts) -> str:
    vals = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in opts.__dict__.items()
                     if not isinstance(v, np.ndarray))
    return f"{model.method} ({vals})"


def _reporter(progress):
    if progress is None or progress is False:
        return lambda stage, done, total: None
    if progress is True:
        seen: set = set()

        def show(stage, done, total):
            if stage not in seen:
                seen.add(stage)
                print(f"unravel: {stage}", file=sys.stderr, flush=True)

        return show
    if not callable(progress):
        raise ProblemDefinitionError(f"progress: expected a callable (stage, done, total), True or None, got "
                                     f"{progress!r}")
    return progress


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
