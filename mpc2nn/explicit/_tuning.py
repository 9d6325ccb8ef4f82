"""Tuning a construction's unset options by successive halving over its ladders.

Every candidate runs a short depth on the tuning states; the third with the smallest predicted depth for the
tolerance (or the smallest predicted error at the requested depth) runs four times as deep, and so on, until
two are left and resolved. The winner's neighbours (a finer step, where the construction has them) are tried
once at the end. Runs are continued, never restarted, and converged states are retired from them, so a
tuning costs a few full-depth runs instead of one per candidate.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from ..exceptions import ProblemDefinitionError
from ._curves import CurveRun, first_depth
from ._registry import Construction, ConstructionOptions

__all__ = ["tune", "TuningReport", "FIRST_BUDGET", "KEEP_FRACTION"]

#: Deepest run of a tuning for a tolerance: beyond it the candidates are ranked by their predicted depths
#: (the depth selection then runs the winner as deep as ``max_depth``).
TUNING_CAP = 4000
#: Depth of the first round of the successive halving (every candidate runs this many layers).
FIRST_BUDGET = 40
#: Fraction of the candidates kept after each round (at least two are kept until both are resolved).
KEEP_FRACTION = 1 / 2
#: Each round runs this many times as deep as the previous one.
GROWTH = 4


@dataclass(frozen=True)
class TuningReport:
    """What the tuning tried: candidates, the chosen options, layers run in total and seconds."""

    candidates: int
    chosen: ConstructionOptions
    score: float
    layers: int
    seconds: float
    n_states: int

    def summary(self) -> str:
        what = "depth" if self.score >= 1 and float(self.score).is_integer() else "score"
        return (f"{self.candidates} candidates on {self.n_states} tuning states by successive halving "
                f"({self.layers} layer-runs, {self.seconds:.1f} s); best {what} {self.score:.4g}")


def _candidates(c: Construction, qp, opts: ConstructionOptions) -> list:
    """Every combination of the ladders of the unset options (ladders may depend on the options chosen so far)."""
    ladders = c.ladders(qp)
    names = [n for n in ladders if n in opts.tuned()]
    names += [n for n in opts.tuned() if n not in names]
    out = [opts]
    for n in names:
        nxt: list = []
        for o in out:
            values = ladders[n](o) if callable(ladders[n]) else ladders[n]
            nxt.extend(o.with_values(**{n: v}) for v in values)
        out = nxt
    return out


def tune(c: Construction, net, qp, kept, X, U, *, depth: int, tol: float | None, dtype, opts, max_depth: int,
         pruned: bool, progress=None) -> tuple[ConstructionOptions, TuningReport]:
    """``opts`` with its unset options chosen on the tuning states ``(X, U)``.

    With ``tol``: the candidate reaching ``tol`` (largest error over the states) at the smallest depth;
    without it: the candidate with the smallest largest error at ``depth``.
    """
    if not depth and tol is None:
        raise ProblemDefinitionError("tune: needs a depth >= 1 or a tolerance (unravel passes one of them)")
    aim = math.inf if tol is None else float(tol)  # used only where there is no target depth, i.e. with tol
    t0 = time.perf_counter()
    cands = _candidates(c, qp, opts)
    runs = {i: CurveRun(c.build(net, qp, kept, 0, dtype, o, pruned=pruned), X, U, tol) for i, o in enumerate(cands)}
    target = int(depth) if depth else None
    cap = min(int(max_depth), TUNING_CAP) if target is None else target
    alive = list(runs)
    budget = min(FIRST_BUDGET, cap)
    layers = 0
    rounds = 0

    def score(i: int) -> float:
        r = runs[i]
        return r.predicted_error(target) if target is not None else r.predicted_depth(aim)

    while True:
        rounds += 1
        best_reached = min(((first_depth(runs[i].errors(), tol) or math.inf) if runs[i].depth else math.inf)
                           for i in alive) if tol else math.inf
        limit = int(min(budget, cap, best_reached + 1))
        for i in alive:
            r = runs[i]
            if r.depth < limit and not r.stalled:
                before = r.depth
                r.advance(limit - r.depth, stop_below=None if tol is None else RESOLVED * tol)
                layers += r.depth - before
        scores = {i: score(i) for i in alive}
        alive.sort(key=lambda i: scores[i])
        if progress is not None:
            progress("tuning", rounds, None)
        resolved = all(_resolved(runs[i], limit, tol, target) for i in alive[:3])
        keep = max(3, math.ceil(len(alive) * KEEP_FRACTION))
        if len(alive) <= 3 and resolved or limit >= cap:
            break
        alive = alive[:keep]
        budget = budget * GROWTH
    best = alive[0]
    chosen, best_score = cands[best], scores[best]
    tried = {repr(chosen)}
    climb = c.neighbours
    for _ in range(CLIMB_STEPS if not math.isinf(best_score) else 0):
        if climb is None:
            break
        improved = False
        for o in climb(qp, chosen):
            if repr(o) in tried:
                continue
            tried.add(repr(o))
            r = CurveRun(c.build(net, qp, kept, 0, dtype, o, pruned=pruned), X, U, tol)
            lim = target if target is not None else int(min(cap, best_score + 1))
            r.advance(lim, stop_below=None if tol is None else RESOLVED * tol)
            layers += r.depth
            s = r.predicted_error(target) if target is not None else (first_depth(r.errors(), aim) or math.inf)
            if s < best_score:
                chosen, best_score, improved = o, s, True
        if not improved:
            break
    report = TuningReport(len(cands), chosen, float(best_score), layers, time.perf_counter() - t0, len(X))
    return chosen, report


#: Rounds of the local search over the winner's neighbours (each moves to the best neighbour, if better).
CLIMB_STEPS = 4
#: A tuning run stops once its largest error is this fraction of the tolerance (it has reached it).
RESOLVED = 0.5


def _resolved(run: CurveRun, limit: int, tol, target) -> bool:
    if run.stalled or run.depth < limit and run.alive.size == 0:
        return True
    if target is not None:
        return run.depth >= target
    return first_depth(run.errors(), tol) is not None or run.depth >= limit

