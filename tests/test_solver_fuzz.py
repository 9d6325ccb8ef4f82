"""Fuzzing the exact solve (issue 13): random problems, states, scales and formulations.

Claims checked against independent references: a certified sample agrees with DAQP and holds
every row at its own scale; a sample called infeasible is infeasible for an LP (HiGHS); no sample
is certified with NaN; the one-state path agrees with the batch. A bounded version runs in the
default suite, a deeper one with ``-m slow``.
"""
import numpy as np
import pytest
import scipy.optimize
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tolerances import tol

import mpc2nn
from mpc2nn.status import Status

daqp = pytest.importorskip("daqp")


@st.composite
def fuzz_cases(draw, max_nx=6):
    """A random MPC problem (stable or unstable, with or without state bounds, rates, soft constraints,
    huge finite bounds, unit changes / similarity transforms) and a batch of θ at a random scale."""
    n_x = draw(st.integers(2, max_nx))
    n_u = draw(st.integers(1, 2))
    N = draw(st.integers(2, 8))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(n_x, n_x))
    A *= draw(st.sampled_from([0.5, 0.95, 1.0, 1.2, 1.5])) / max(abs(np.linalg.eigvals(A)))
    B = rng.normal(size=(n_x, n_u))
    Q = np.eye(n_x) * 10 ** rng.uniform(-1, 2)
    R = np.eye(n_u) * 10 ** rng.uniform(-2, 1)
    kw = dict(u_min=-rng.uniform(0.2, 2, n_u), u_max=rng.uniform(0.2, 2, n_u))
    if draw(st.booleans()):
        x_max = rng.uniform(1, 5, n_x)
        if draw(st.booleans()):  # a "no bound" written as a huge number
            x_max[rng.integers(n_x)] = 10.0 ** draw(st.sampled_from([8, 10, 13]))
        kw.update(x_min=-x_max, x_max=x_max)
    if draw(st.booleans()):
        kw.update(du_min=-rng.uniform(0.1, 1, n_u), du_max=rng.uniform(0.1, 1, n_u))
    if "x_min" in kw and draw(st.integers(0, 3)) == 0:
        kw.update(soft_state_penalty=(1.0, 100.0))
    T = np.eye(n_x)
    if draw(st.booleans()):  # similarity transform / unit change of the states: x = T x̃
        T = np.diag(10.0 ** rng.uniform(-1.5, 1.5, n_x)) @ np.linalg.qr(rng.normal(size=(n_x, n_x)))[0]
    Ti = np.linalg.inv(T)
    A, B, Q = Ti @ A @ T, Ti @ B, T.T @ Q @ T
    Q = (Q + Q.T) / 2
    if "x_min" in kw:  # bounds on x = T x̃ become polytopic rows on x̃
        x_max = kw.pop("x_max")
        kw.pop("x_min")
        kw["constraints"] = [(np.vstack([T, -T]), np.zeros((2 * n_x, n_u)), np.concatenate([x_max, x_max]))]
    prob = mpc2nn.MPCProblem(A, B, Q, R, N, P="dare" if draw(st.booleans()) else np.eye(n_x) * 1.0, **kw,
                             sample_box=(-np.ones(n_x), np.ones(n_x)))
    scale = 10.0 ** draw(st.sampled_from([0, 0, 0, 1, 3, 8, 100, 300]))
    X = Ti @ rng.uniform(-2, 2, size=(16, n_x)).T
    X = (X.T * scale)
    return prob, X, rng


def _theta(qp, prob, X, rng):
    if "u_prev" in dict(qp.parameter_sizes):
        return qp.parameters(X, u_prev=prob.u_min + (prob.u_max - prob.u_min) * rng.random((X.shape[0], prob.n_u)))
    return X


def _lp_feasible(qp, theta):
    if qp.state_only is not None and (qp.state_only[1] + qp.state_only[0] @ theta < 0).any():
        return False, "state-only row violated"
    res = scipy.optimize.linprog(np.zeros(qp.n_z), A_ub=qp.G, b_ub=qp.w + qp.E @ theta,
                                 bounds=[(None, None)] * qp.n_z, method="highs")
    return res.status == 0, res.status


def check_case(prob, X, rng):
    qp = mpc2nn.condense(prob)
    net = mpc2nn.compile(qp)
    theta = _theta(qp, prob, X, rng)
    with np.errstate(all="ignore"):
        sol = net.solve(theta)
    ok = sol.status == Status.SOLVED
    assert np.array_equal(sol.feasible, ok)
    assert np.isfinite(sol.U[ok]).all()
    # certified => every row holds at its own scale and DAQP (where it solves) agrees
    Z = qp.primal(np.maximum(np.nan_to_num(sol.y[ok]), 0.0), theta[ok])
    viol = Z @ qp.G.T - qp.w - theta[ok] @ qp.E.T
    scale = np.abs(Z) @ np.abs(qp.G).T + np.abs(qp.w) + np.abs(theta[ok]) @ np.abs(qp.E).T
    assert (viol <= tol("certificate") * scale).all()
    small = np.abs(theta).max(axis=1) <= 1e6  # DAQP's own tolerances are absolute: compare where they mean it
    ref = mpc2nn.solve_daqp(qp, theta[ok & small])
    Uscale = max(1.0, float(np.abs(ref.U[ref.feasible]).max(initial=0.0)))
    assert np.abs(sol.U[ok & small][ref.feasible] - ref.U[ref.feasible]).max(initial=0.0) <= 1e-6 * Uscale
    # infeasible => an LP agrees (where the LP is well scaled)
    for i in np.flatnonzero(sol.infeasible & small):
        feasible, lp_status = _lp_feasible(qp, theta[i])
        assert not feasible, (i, lp_status, sol.reason[i])
    # no sample is left undecided at moderate scales
    und = sol.undecided & small & np.isfinite(theta).all(axis=1)
    assert not und.any(), (sol.summary(), sol.reason[und][:3], sol.method[und][:3])
    # the one-state path agrees with the batch
    i = int(np.argmax(ok)) if ok.any() else None
    if i is not None:
        one = net.solve(theta[i])
        assert one.status[0] == Status.SOLVED
        assert np.abs(one.U[0] - sol.U[i]).max() <= 1e-8 * max(1.0, float(np.abs(sol.U[i]).max()))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fuzz_cases())
def test_fuzz_exact_solve(case):
    check_case(*case)


@pytest.mark.slow
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fuzz_cases(max_nx=12))
def test_fuzz_exact_solve_deep(case):
    check_case(*case)
