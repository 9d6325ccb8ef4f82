"""LQR terminal set: invariance, admissibility, maximality, and recursive feasibility of MPC with it."""
import numpy as np
import pytest
from tolerances import tol

import mpc2nn
from mpc2nn.sets import lqr_invariant_set


@pytest.fixture(scope="module")
def di():
    return mpc2nn.systems.double_integrator()


def lqr_violates_within(problem, K, x, steps):
    """Does the LQR loop from x break a state or input bound within ``steps`` steps?"""
    AK = problem.A - problem.B @ K
    eps = tol("feasibility")  # a violation counts when it is larger than an exact solution's
    for _ in range(steps):
        u = -K @ x
        if np.any(x > problem.x_max + eps) or np.any(x < problem.x_min - eps) or \
                np.any(u > problem.u_max + eps) or np.any(u < problem.u_min - eps):
            return True
        x = AK @ x
    return False


def test_set_is_invariant_and_admissible(di):
    S = lqr_invariant_set(di)
    rng = np.random.default_rng(0)
    X = rng.uniform(di.x_min, di.x_max, size=(20000, 2))
    inside = X[S.contains(X)]
    assert len(inside) > 500
    AK = di.A - di.B @ S.K
    assert S.contains(inside @ AK.T).all()  # invariant
    U = -inside @ S.K.T
    eps = tol("feasibility")
    assert np.all(U <= di.u_max + eps) and np.all(U >= di.u_min - eps)  # admissible inputs
    assert np.all(inside <= di.x_max) and np.all(inside >= di.x_min)


def test_set_is_maximal(di):
    """States just outside the set make the LQR loop violate a constraint at some future step."""
    S = lqr_invariant_set(di)
    rng = np.random.default_rng(1)
    X = rng.uniform(di.x_min, di.x_max, size=(5000, 2))
    outside = X[~S.contains(X, tol=1e-6)]  # outside by more than 1e-6: "just outside", not on the boundary
    assert len(outside) > 100
    assert all(lqr_violates_within(di, S.K, x, 200) for x in outside)


def test_mpc_with_terminal_set_is_recursively_feasible(di):
    prob = di.replace(terminal_set="lqr", horizon=6)
    assert prob.terminal_set == "lqr" and prob.terminal_constraint is not None
    net = mpc2nn.compile(prob)
    for x0 in mpc2nn.sample_states(prob, 15, seed=2):
        tr = mpc2nn.simulate(prob, net, x0, 40)
        assert tr.stopped_at is None and set(tr.status) == {"solved"}
        assert tr.state_violation.max() <= tol("feasibility")


def test_terminal_set_round_trips_through_save(di, tmp_path):
    prob = di.replace(terminal_set="lqr", horizon=4)
    back = mpc2nn.load(mpc2nn.save(prob, tmp_path / "p.mpc2nn"))
    assert back.terminal_set == "lqr"
    assert np.array_equal(back.terminal_constraint.C, prob.terminal_constraint.C)


def test_terminal_set_errors(di):
    with pytest.raises(mpc2nn.ProblemDefinitionError, match="give one of them"):
        di.replace(terminal_set="lqr", terminal_constraint=([[1.0, 0.0]], [1.0]))
    with pytest.raises(mpc2nn.ProblemDefinitionError, match="expected 'lqr' or None"):
        di.replace(terminal_set="mpi")
    free = mpc2nn.MPCProblem(di.A, di.B, di.Q, di.R, 5)
    with pytest.raises(mpc2nn.ProblemDefinitionError, match="has no constraints"):
        free.replace(terminal_set="lqr")
    with pytest.raises(mpc2nn.ProblemDefinitionError, match="origin must lie inside"):
        di.replace(u_min=[0.5], u_max=[1.0], terminal_set="lqr")
