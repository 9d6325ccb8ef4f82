"""Sampling states (and parameters θ) from a box, filtered by the exact solver's feasibility verdict."""

from __future__ import annotations

import numpy as np

from .._checks import as_box, as_count, as_seed
from ..exceptions import ProblemDefinitionError
from ..implicit import ImplicitNetwork, compile
from ..qp import as_qp

__all__ = ["sample_states", "sample_parameters", "sample_feasible", "parameter_box"]

#: Default cap on the candidates of :func:`sample_states` and :func:`sample_parameters`:
#: ``max(MIN_DRAWS, DRAWS_PER_STATE·n)`` draws find ``n`` wanted samples in expectation when one candidate
#: in 200 is wanted, and end the search within seconds (each batch is one exact solve) where the wanted
#: samples are rarer still.
MIN_DRAWS = 10_000
#: See :data:`MIN_DRAWS`.
DRAWS_PER_STATE = 200
#: Smallest batch of candidates drawn and solved at once (``max(2n, 256)``): keeps the per-call overhead
#: of the batched exact solve small when few samples are wanted.
MIN_DRAW_BATCH = 256
#: Rounds of ``2n`` candidates after which :func:`sample_feasible` gives up: 50 rounds find ``n`` feasible
#: samples in expectation unless fewer than 1% of the box is feasible.
MAX_FEASIBLE_ROUNDS = 50


def sample_states(problem, n: int, *, box=None, seed: int = 0, feasible: bool | None = True,
                  max_draws: int | None = None, u_prev=None, x_ref=None, u_ref=None, y_ref=None) -> np.ndarray:
    """Draw ``n`` states uniformly from a box.

    Parameters
    ----------
    problem : MPCProblem, CondensedQP or ImplicitNetwork
        The problem (its QP decides feasibility).
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
        Give up after this many candidate states (default ``max(MIN_DRAWS, DRAWS_PER_STATE·n)``
        = ``max(10_000, 200·n)``).
    u_prev, x_ref, u_ref, y_ref : arrays, optional
        For problems whose QP takes more than the state (input rates, tracking):
        the other parts of ``θ`` at which feasibility is decided (one value for
        all samples; see :meth:`CondensedQP.parameters`). Not used with ``feasible=None``.

    Returns
    -------
    X : ndarray, shape (n, n_x)

    Examples
    --------
    >>> import mpc2nn
    >>> X = mpc2nn.sample_states(mpc2nn.systems.double_integrator(), 5, seed=1)
    >>> X.shape
    (5, 2)
    """
    qp = as_qp(problem)
    n = as_count("n", n)
    if not (feasible is None or isinstance(feasible, (bool, np.bool_))):
        raise ProblemDefinitionError(f"feasible: expected True, False or None, got {feasible!r}")
    if box is None:
        box = qp.sample_box
        if box is None:
            raise ProblemDefinitionError(f"box: problem '{qp.name}' has no sample_box; pass box=(lo, hi)")
    lo, hi = as_box("box", box, qp.n_x)
    rng = np.random.default_rng(as_seed("seed", seed))
    if feasible is None:
        return lo + (hi - lo) * rng.random((n, qp.n_x))

    def draw(batch: int) -> tuple[np.ndarray, np.ndarray]:
        X = lo + (hi - lo) * rng.random((batch, qp.n_x))
        return X, qp.parameters(X, u_prev=u_prev, x_ref=x_ref, u_ref=u_ref, y_ref=y_ref)

    return _filtered(qp, n, draw, feasible, max_draws, "states")


def _filtered(qp, n: int, draw, feasible, max_draws, what: str) -> np.ndarray:
    """``n`` draws whose ``θ`` the exact solver finds feasible (``feasible=True``) or infeasible (``False``).

    ``draw(batch) -> (values, theta)`` makes candidates; the kept ``values`` are returned.
    """
    if not isinstance(feasible, (bool, np.bool_)):
        raise ProblemDefinitionError(f"feasible: expected True, False or None, got {feasible!r}")
    net = compile(qp)
    max_draws = (max(MIN_DRAWS, DRAWS_PER_STATE * n) if max_draws is None
                 else as_count("max_draws", max_draws, 1))
    kept: list[np.ndarray] = []
    drawn = 0
    while sum(len(k) for k in kept) < n and drawn < max_draws:
        batch = min(max(2 * n, MIN_DRAW_BATCH), max_draws - drawn)
        values, theta = draw(batch)
        drawn += batch
        sol = net.solve(theta)
        kept.append(values[sol.feasible if feasible else sol.infeasible])  # proven either way
    out = np.concatenate(kept)[:n] if kept else np.zeros((0, 0))
    if out.shape[0] < n:
        which = "feasible" if feasible else "infeasible"
        raise ProblemDefinitionError(
            f"sampling: found only {out.shape[0]} {which} {what} in {drawn} draws from the box; "
            f"choose a box where {which} {what} are more common, or raise max_draws")
    return out


def parameter_box(problem, state_box=None) -> tuple[np.ndarray, np.ndarray]:
    """The default box of the QP's parameter ``θ``: the sample box for the state parts (``x``, ``x_ref``),
    the input bounds for the input parts (``u_prev``, ``u_ref``) and, for an output reference ``y_ref``,
    the output bounds where they are finite, else the outputs ``C x + D u`` over the state box and
    the input bounds (interval arithmetic).

    Parameters
    ----------
    problem : MPCProblem, CondensedQP or ImplicitNetwork
        The problem whose QP's layout of ``θ`` is boxed.
    state_box : (lo, hi), optional
        The box of the state parts, shape (n_x,) each (default the problem's sample box).

    Returns
    -------
    lo, hi : ndarray, shape (n_θ,)

    Raises
    ------
    ProblemDefinitionError
        The problem has no sample box, or takes an input part while an input bound is infinite
        (then no default box of inputs exists: pass one).
    """
    qp = as_qp(problem)
    state_box = qp.sample_box if state_box is None else state_box
    if state_box is None:
        raise ProblemDefinitionError(f"box: problem '{qp.name}' has no sample_box; pass box=(lo, hi) of θ = "
                                     f"({qp.layout.describe()})")
    if qp.layout.state_only:
        return as_box("box", state_box, qp.n_x)
    prob = qp.problem
    u_box = None
    if prob is not None and np.all(np.isfinite(prob.u_min)) and np.all(np.isfinite(prob.u_max)):
        u_box = (prob.u_min, prob.u_max)
    if u_box is None:
        raise ProblemDefinitionError(
            f"box: QP '{qp.name}' takes θ = ({qp.layout.describe()}) and its input bounds are not all finite, so "
            "there is no default box for the input parts; pass box=(lo, hi) of shape (n_θ,)")
    y_box = None
    if "y_ref" in qp.layout.slices and prob is not None:
        lo_x, hi_x = as_box("state box", state_box, qp.n_x)
        mid, rad = (prob.C @ (lo_x + hi_x) + prob.D @ (u_box[0] + u_box[1])) / 2, (
            np.abs(prob.C) @ (hi_x - lo_x) + np.abs(prob.D) @ (u_box[1] - u_box[0])) / 2
        y_box = (np.where(np.isfinite(prob.y_min), prob.y_min, mid - rad),
                 np.where(np.isfinite(prob.y_max), prob.y_max, mid + rad))
    return qp.layout.box(state_box, u_box=u_box, y_box=y_box)


def sample_parameters(problem, n: int, *, box=None, seed: int = 0, feasible: bool | None = True,
                      max_draws: int | None = None) -> np.ndarray:
    """Draw ``n`` parameter vectors ``θ`` uniformly from a box of ``θ``.

    For a problem that takes only the state this is :func:`sample_states`; for one with input rates
    or tracking it draws the previous input and the references too (by default from the input bounds
    and the sample box, see :func:`parameter_box`), so that validation and benchmarks can run on them.

    Parameters
    ----------
    problem : MPCProblem, CondensedQP or ImplicitNetwork
        The problem (its QP decides feasibility and the layout of ``θ``).
    n : int
        Number of parameter vectors wanted.
    box : (lo, hi), optional
        Arrays of shape (n_θ,); default :func:`parameter_box`.
    seed : int
        Seed of numpy's default generator.
    feasible : True, False or None
        Keep only feasible ``θ`` (decided by the exact solve), only infeasible ones, or all.
    max_draws : int, optional
        Give up after this many candidates (default ``max(MIN_DRAWS, DRAWS_PER_STATE·n)``
        = ``max(10_000, 200·n)``).

    Returns
    -------
    theta : ndarray, shape (n, n_θ)

    Examples
    --------
    >>> import mpc2nn
    >>> rates = mpc2nn.systems.double_integrator().replace(du_min=[-0.5], du_max=[0.5])
    >>> mpc2nn.sampling.sample_parameters(rates, 4, seed=1).shape    # (x, u_prev)
    (4, 3)
    """
    qp = as_qp(problem)
    n = as_count("n", n)
    if not (feasible is None or isinstance(feasible, (bool, np.bool_))):
        raise ProblemDefinitionError(f"feasible: expected True, False or None, got {feasible!r}")
    lo, hi = parameter_box(qp) if box is None else as_box("box", box, qp.n_theta, "n_θ")
    rng = np.random.default_rng(as_seed("seed", seed))
    if feasible is None:
        return lo + (hi - lo) * rng.random((n, qp.n_theta))

    def draw(batch: int) -> tuple[np.ndarray, np.ndarray]:
        theta = lo + (hi - lo) * rng.random((batch, qp.n_theta))
        return theta, theta

    return _filtered(qp, n, draw, feasible, max_draws, "parameter vectors")


def sample_feasible(net: ImplicitNetwork, box, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` feasible parameter vectors drawn uniformly from ``box`` and their exact outputs.

    Parameters
    ----------
    net : ImplicitNetwork
        The network that decides feasibility and gives the outputs.
    box : (lo, hi)
        A box of states (shape (n_x,) each) for a QP that takes only the state, else a box of ``θ``
        (shape (n_θ,), e.g. :func:`parameter_box`).
    n : int
        Number of samples.
    seed : int
        Seed of numpy's default generator.

    Returns
    -------
    theta : ndarray, shape (n, n_θ)
        Feasible parameter vectors.
    U : ndarray, shape (n, N·n_u)
        Their exact input sequences.

    Raises
    ------
    ProblemDefinitionError
        Fewer than ``n`` feasible samples were found in :data:`MAX_FEASIBLE_ROUNDS` rounds of ``2n`` draws.
    """
    qp = net.qp
    lo, hi = as_box("box", box, qp.n_theta, "n_θ" if not qp.layout.state_only else "n_x")
    n = as_count("n", n, 1)
    rng = np.random.default_rng(as_seed("seed", seed))
    Xs, Us = [], []
    got, tries = 0, 0
    while got < n:
        tries += 1
        if tries > MAX_FEASIBLE_ROUNDS:
            raise ProblemDefinitionError(f"box: fewer than {n} feasible states found in {MAX_FEASIBLE_ROUNDS} "
                                         f"draws of {2 * n}; "
                                         "pass feasible states with states=")
        X = lo + (hi - lo) * rng.random((2 * n, lo.size))
        sol = net.solve(X)
        Xs.append(X[sol.feasible])
        Us.append(sol.U[sol.feasible])
        got += int(sol.feasible.sum())
    return np.vstack(Xs)[:n], np.vstack(Us)[:n]
