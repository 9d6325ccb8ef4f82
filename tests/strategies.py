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
