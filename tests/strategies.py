"""Hypothesis strategies: random small MPC problems."""
import numpy as np
from hypothesis import strategies as st

import mpc2nn


@st.composite
def random_problems(draw, max_nx=3, max_nu=2, max_N=5, state_bounds=True):
    """A random MPCProblem with input bounds (and sometimes state bounds), plus a seed for states."""
    n_x = draw(st.integers(1, max_nx))
    n_u = draw(st.integers(1, max_nu))
    N = draw(st.integers(1, max_N))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(n_x, n_x)) / np.sqrt(n_x)
    B = rng.normal(size=(n_x, n_u))
    Lq = rng.normal(size=(n_x, n_x))
    Lr = rng.normal(size=(n_u, n_u))
    Q = Lq @ Lq.T
    R = Lr @ Lr.T + 0.1 * np.eye(n_u)
    kw = dict(u_min=-rng.uniform(0.2, 2, n_u), u_max=rng.uniform(0.2, 2, n_u))
    if state_bounds and draw(st.booleans()):
        kw.update(x_min=-rng.uniform(1, 5, n_x), x_max=rng.uniform(1, 5, n_x))
    prob = mpc2nn.MPCProblem(A, B, Q, R, N, P=np.eye(n_x), **kw, sample_box=(-np.ones(n_x), np.ones(n_x)))
    return prob, seed


@st.composite
def unit_changes(draw, max_n=12):
    """Positive unit factors ``(t, s)`` for up to ``max_n`` states and inputs (``x' = t x``, ``u' = s u``),
    each ``10**k`` for ``k`` in [-6, 6].
    """
    def factors():
        return np.array(draw(st.lists(st.floats(-6, 6), min_size=max_n, max_size=max_n)))

    return 10.0 ** factors(), 10.0 ** factors()


#: The formulations :func:`mpc_problems` may switch on, each drawn independently.
FORMULATIONS = ("state bounds", "soft", "rates", "rate weight", "blocking", "tracking", "mixed", "terminal")


@st.composite
def mpc_problems(draw, min_nx=2, max_nx=12, max_nu=3, max_N=6, formulations=FORMULATIONS):
    """``(problem, seed)``: a random MPCProblem with finite input bounds and a sample box.

    ``A`` stable, marginally stable or unstable (spectral radius 0.6, 1.0 or 1.25), ``P`` from the
    Riccati equation, and any of ``formulations`` (state bounds, softened state bounds with an exact
    L1 penalty, input-rate bounds and weight, move blocking, tracking, a mixed stage constraint, a
    terminal box). ``seed`` is for drawing states.
    """
    n_x = draw(st.integers(min_nx, max_nx))
    n_u = draw(st.integers(1, min(max_nu, n_x)))
    N = draw(st.integers(1, max_N))
    seed = draw(st.integers(0, 2**31 - 1))
    radius = draw(st.sampled_from([0.6, 1.0, 1.25]))
    on = {f: draw(st.booleans()) for f in formulations}
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(n_x, n_x))
    A *= radius / max(np.abs(np.linalg.eigvals(A)).max(), 1e-12)
    B = rng.normal(size=(n_x, n_u))
    Lq = rng.normal(size=(n_x, n_x))
    Lr = rng.normal(size=(n_u, n_u))
    kw = dict(u_min=-rng.uniform(0.2, 2, n_u), u_max=rng.uniform(0.2, 2, n_u),
              sample_box=(-np.ones(n_x), np.ones(n_x)), name=f"random{seed}")
    if on.get("state bounds"):
        kw.update(x_min=-rng.uniform(1, 5, n_x), x_max=rng.uniform(1, 5, n_x))
        if on.get("soft"):
            kw.update(soft_state_penalty=(1.0, 100.0))
    if on.get("rates"):
        kw.update(du_min=-rng.uniform(0.2, 1, n_u), du_max=rng.uniform(0.2, 1, n_u))
    if on.get("rate weight"):
        kw.update(du_weight=0.1 * np.eye(n_u))
    if on.get("blocking") and N >= 2:
        cut = int(draw(st.integers(1, N - 1)))
        kw.update(move_blocking=(cut, N - cut))
    if on.get("tracking"):
        kw.update(tracking=True)
    if on.get("mixed"):
        kw.update(constraints=[(rng.normal(size=(1, n_x)), rng.normal(size=(1, n_u)), [rng.uniform(1, 3)])])
    if on.get("terminal"):
        kw.update(terminal_constraint=(np.vstack([np.eye(n_x), -np.eye(n_x)]), np.full(2 * n_x, 10.0)))
    prob = mpc2nn.MPCProblem(A, B, Lq @ Lq.T + 0.01 * np.eye(n_x), Lr @ Lr.T + 0.1 * np.eye(n_u), N, **kw)
    return prob, seed


def feasible_parameters(problem, n, seed):
    """``(theta, U)``: up to ``n`` parameter vectors of the problem's default box that DAQP solves, and DAQP's
    input sequences (independent of mpc2nn's exact solver)."""
    theta = mpc2nn.sampling.sample_parameters(problem, n, seed=seed, feasible=None)
    ref = mpc2nn.solve_daqp(problem, theta)
    ok = ref.status == "solved"
    return theta[ok], ref.U[ok]
