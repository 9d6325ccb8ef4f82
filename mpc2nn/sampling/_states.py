"""Sampling states (and parameters θ) from a box, filtered by the exact solver's feasibility verdict."""

from __future__ import annotations

import numpy as np

from .._checks import as_matrix
from ..exceptions import ProblemDefinitionError, ShapeError
from ..implicit import ImplicitNetwork, compile
from ..qp import as_qp

__all__ = ["sample_states", "sample_feasible"]


def sample_states(problem, n: int, *, box=None, seed: int = 0, feasible: bool | None = True,
                  max_draws: int | None = None, u_prev=None, x_ref=None, u_ref=None) -> np.ndarray:
    """Draw ``n`` states uniformly from a box.

    Parameters
    ----------
    problem : MPCProblem, CondensedQP or ImplicitNetwork
    n : int
        Number of states wanted.
    box : (lo, hi), optional
        Arrays of shape (n_x,); default the problem's ``sample_box``.
    seed : int
        Seed of numpy's default generator (same seed, same states).
    feasible : True, False or None
        ``True``: keep only states where the MPC problem is feasible; ``False``:
        only infeasible ones; ``None``: no filter. Feasibility is decided by the
        exact implicit solve (certified).
    max_draws : int, optional
        Give up after this many candidate states (default ``max(10_000, 200·n)``).
    u_prev, x_ref, u_ref : arrays, optional
        For problems whose QP takes more than the state (input rates, tracking):
        the other parts of ``θ`` at which feasibility is decided (one value for
        all samples; see :meth:`CondensedQP.parameters`). Not used with ``feasible=None``.

    Returns
    -------
    X : (n, n_x)

    Examples
    --------
    >>> import mpc2nn
    >>> X = mpc2nn.sample_states(mpc2nn.systems.double_integrator(), 5, seed=1)
    >>> X.shape
    (5, 2)
    """
    qp = as_qp(problem)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ProblemDefinitionError(f"n: expected a number of states >= 0, got {n!r}")
    if box is None:
        box = qp.sample_box
        if box is None:
            raise ProblemDefinitionError(f"box: problem '{qp.name}' has no sample_box; pass box=(lo, hi)")
    if len(box) != 2:
        raise ShapeError(f"box: expected a pair (lo, hi), got {len(box)} items")
    lo = as_matrix("box lo", box[0], ("n_x",), (qp.n_x,))
    hi = as_matrix("box hi", box[1], ("n_x",), (qp.n_x,))
    if np.any(lo > hi):
        i = int(np.argmax(lo > hi))
        raise ProblemDefinitionError(f"box: lo[{i}] = {lo[i]:g} > hi[{i}] = {hi[i]:g}")
    if feasible not in (True, False, None):
        raise ProblemDefinitionError(f"feasible: expected True, False or None, got {feasible!r}")
    rng = np.random.default_rng(seed)
    if feasible is None:
        return lo + (hi - lo) * rng.random((n, qp.n_x))
    net = compile(qp)
    max_draws = max(10_000, 200 * n) if max_draws is None else max_draws
    kept: list[np.ndarray] = []
    drawn = 0
    while sum(len(k) for k in kept) < n and drawn < max_draws:
        batch = min(max(2 * n, 256), max_draws - drawn)
        X = lo + (hi - lo) * rng.random((batch, qp.n_x))
        drawn += batch
        keep = net.solve(qp.parameters(X, u_prev=u_prev, x_ref=x_ref, u_ref=u_ref)).feasible == feasible
        kept.append(X[keep])
    X = np.concatenate(kept)[:n] if kept else np.zeros((0, qp.n_x))
    if X.shape[0] < n:
        which = "feasible" if feasible else "infeasible"
        raise ProblemDefinitionError(
            f"sample_states: found only {X.shape[0]} {which} states in {drawn} draws from the box; "
            f"choose a box where {which} states are more common, or raise max_draws")
    return X


def sample_feasible(net: ImplicitNetwork, box, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` feasible states drawn uniformly from ``box`` and their exact outputs."""
    qp = net.qp
    if qp.n_theta != qp.n_x:
        raise ProblemDefinitionError(
            f"QP '{qp.name}' takes θ = ({qp.layout.describe()}), not only the state, so states cannot be drawn from "
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
        Xs.append(X[sol.feasible])
        Us.append(sol.U[sol.feasible])
        got += int(sol.feasible.sum())
    return np.vstack(Xs)[:n], np.vstack(Us)[:n]
