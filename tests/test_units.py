"""Definiteness and rank tests do not depend on units: the same law comes out in any units.

Issue 13: the PBH stabilisability test used an absolute tolerance (B×1e9, R×1e18 or states scaled
by diag(1e6, 1e-6) were refused), ``R = [[1e-12]]`` was refused as not positive definite, and the
condensed Hessian of the double integrator at horizon 600 was refused as "not positive definite"
although it is (it is ill-conditioned). Each law is compared with DAQP on the original problem.
"""
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mpc2nn
from mpc2nn import exceptions as exc
from mpc2nn._checks import check_pd, check_psd, numerical_rank
from tests.strategies import random_problems, unit_changes
from tests.tolerances import TOL

A_DI, B_DI = np.array([[1.0, 1.0], [0.0, 1.0]]), np.array([[0.5], [1.0]])


def _di(**kw):
    base = dict(A=A_DI, B=B_DI, Q=np.eye(2), R=[[0.1]], horizon=8, u_min=[-1.0], u_max=[1.0],
                x_min=[-5.0, -2.0], x_max=[5.0, 2.0])
    base.update(kw)
    return mpc2nn.MPCProblem(**base)


def _in_units(prob, T, S):
    """``prob`` with states ``x' = T x`` and inputs ``u' = S u`` (T, S diagonal positive when bounds exist)."""
    Ti, Si = np.linalg.inv(T), np.linalg.inv(S)
    kw = dict(A=T @ prob.A @ Ti, B=T @ prob.B @ Si, Q=Ti.T @ prob.Q @ Ti, R=Si.T @ prob.R @ Si,
              P=Ti.T @ prob.P @ Ti if prob.terminal_weight_source == "given" else "dare", horizon=prob.horizon)
    if np.all(np.isfinite(prob.u_min)) or np.all(np.isfinite(prob.u_max)):
        kw.update(u_min=np.diag(S) * prob.u_min, u_max=np.diag(S) * prob.u_max)
    if np.isfinite(prob.x_min).any() or np.isfinite(prob.x_max).any():
        kw.update(x_min=np.diag(T) * prob.x_min, x_max=np.diag(T) * prob.x_max)
    return mpc2nn.MPCProblem(**kw)


def _same_law(prob, scaled, T, S, X):
    """The exact law of ``scaled`` at ``T x`` is ``S`` times DAQP's law of ``prob`` at ``x``."""
    ref = mpc2nn.solve_daqp(prob, X)
    sol = mpc2nn.compile(scaled).solve(X @ T.T)
    assert np.array_equal(sol.feasible, ref.status == "solved"), (sol.status, ref.status)
    ok = ref.status == "solved"
    U_back = sol.U[ok].reshape(-1, prob.n_u) @ np.linalg.inv(S).T
    err = np.abs(U_back - ref.U[ok].reshape(-1, prob.n_u)).max(initial=0.0)
    assert err <= TOL["units", "float64"] * max(1.0, np.abs(ref.U[ok]).max(initial=0.0)), err


@pytest.mark.parametrize("T, S", [
    (np.eye(2), np.array([[1e-9]])),                   # inputs in other units: B×1e9, R×1e18
    (np.diag([1e6, 1e-6]), np.eye(1)),                 # states in very different units
    (np.diag([1e-4, 1e3]), np.array([[1e5]])),         # both
])
def test_the_same_law_comes_out_in_other_units(T, S):
    prob = _di()
    scaled = _in_units(prob, T, S)                     # refused as "not stabilisable" before
    X = mpc2nn.sample_states(prob, 30, box=([-5.0, -2.0], [5.0, 2.0]), feasible=None, seed=3)
    _same_law(prob, scaled, T, S, X)


def test_input_units_of_the_issue_are_stabilisable():
    p = _di(B=B_DI * 1e9, R=[[0.1e18]], u_min=None, u_max=None, x_min=None, x_max=None)
    ref = _di(u_min=None, u_max=None, x_min=None, x_max=None)
    # the Riccati solution is the same cost: P does not depend on the input units
    np.testing.assert_allclose(p.P, ref.P, rtol=1e-8)


def test_a_similarity_transform_gives_the_same_law():
    rng = np.random.default_rng(5)
    T = rng.normal(size=(2, 2)) + 2 * np.eye(2)
    prob = _di(x_min=None, x_max=None)                 # box bounds do not survive a dense transform
    scaled = _in_units(prob, T, np.eye(1))
    _same_law(prob, scaled, T, np.eye(1), rng.uniform(-4, 4, (20, 2)))


def test_a_tiny_input_weight_is_positive_definite():
    p = _di(R=[[1e-12]])                               # refused as "not positive definite" before
    # the law of (Q, R) is that of (cQ, cR): the same problem with its cost scaled up
    X = np.array([[1.0, 0.5], [-3.0, 1.0], [4.0, -1.5]])
    sol = mpc2nn.compile(p).solve(X)
    assert (sol.status == "solved").all()
    for c in (1.0, 1e6, 1e12):
        ref = mpc2nn.solve_daqp(_di(Q=c * np.eye(2), R=[[c * 1e-12]]), X)
        assert (ref.status == "solved").all()
        np.testing.assert_allclose(sol.U, ref.U, atol=TOL["units", "float64"])


def test_daqp_reference_does_not_depend_on_the_cost_scale():
    # DAQP's tolerances are absolute: handed Q×1e12 unnormalised it violated u_min by 0.33 and
    # called a feasible state infeasible
    X = np.array([[1.0, 0.5], [-3.0, 1.0], [4.0, -1.5]])
    base = mpc2nn.solve_daqp(_di(), X)
    for c in (1e-12, 1e12):
        ref = mpc2nn.solve_daqp(_di(Q=c * np.eye(2), R=[[c * 0.1]]), X)
        assert (ref.status == "solved").all()
        np.testing.assert_allclose(ref.U, base.U, atol=TOL["vs_daqp", "float64"])


@pytest.mark.parametrize("scale", [1e-30, 1e-12, 1.0, 1e12, 1e30])
def test_definiteness_verdicts_do_not_depend_on_a_cost_scale(scale):
    M = np.array([[2.0, 0.5], [0.5, 1.0]])
    check_pd("M", scale * M)
    check_psd("M", scale * M)
    with pytest.raises(exc.NotPositiveSemidefiniteError):
        check_psd("M", scale * np.diag([1.0, -1e-3]))
    with pytest.raises(exc.NotPositiveDefiniteError):
        check_pd("M", scale * np.diag([1.0, 0.0]))


def test_psd_is_judged_in_units_where_the_diagonal_is_one():
    # an eigenvalue of -1 on the second variable is small next to 1e12 but not in the second variable's units
    with pytest.raises(exc.NotPositiveSemidefiniteError):
        check_psd("Q", np.diag([1e12, -1.0]))
    with pytest.raises(exc.NotSymmetricError):
        check_psd("Q", np.array([[1e12, 0.0], [1e-3, 1e-12]]))  # asymmetric in unit-diagonal scaling


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(2, 6), st.integers(0, 2**31 - 1))
def test_definiteness_and_rank_under_random_units(n, seed):
    rng = np.random.default_rng(seed)
    L = rng.normal(size=(n, n))
    M = L @ L.T + 0.1 * np.eye(n)
    d = 10.0 ** rng.uniform(-8, 8, n)
    Md = d[:, None] * M * d[None, :]
    check_pd("M", Md)
    check_psd("M", Md)
    singular = M.copy()
    singular[:, 0] = singular[0, :] = 0.0
    with pytest.raises(exc.NotPositiveDefiniteError):
        check_pd("M", d[:, None] * singular * d[None, :])
    # rank: [A - λI, B] scaled by rows and columns keeps its rank
    K = rng.normal(size=(n, n + 2))
    K[-1] = K[0] * 3.0                                   # rank n - 1
    r, c = 10.0 ** rng.uniform(-8, 8, n), 10.0 ** rng.uniform(-8, 8, n + 2)
    assert numerical_rank(K) == numerical_rank(r[:, None] * K * c[None, :]) == n - 1


def test_not_stabilisable_is_still_refused_in_any_units():
    T = np.diag([1e6, 1e-6])
    A = T @ np.array([[0.5, 0.0], [0.0, 1.5]]) @ np.linalg.inv(T)
    with pytest.raises(exc.RiccatiError, match="not stabilisable"):
        _di(A=A, B=T @ np.array([[1.0], [0.0]]), x_min=None, x_max=None)


def test_long_horizon_hessian_is_positive_definite_and_said_to_be_ill_conditioned():
    # refused before as "H: expected a positive definite matrix ... smallest eigenvalue 0.35"
    with pytest.warns(exc.IllConditionedWarning, match=r"H: positive definite, but its condition number is 3\.0"):
        qp = mpc2nn.condense(mpc2nn.systems.double_integrator().replace(horizon=600))
    assert qp.H.shape == (600, 600)


def test_too_ill_conditioned_is_not_called_indefinite():
    M = np.array([[1.0, 1.0], [1.0, 1.0 + 4e-15]])    # positive, but within rounding of singular
    with pytest.raises(exc.NotPositiveDefiniteError,
                       match=r"too ill-conditioned.*condition number \d\.\d+e\+14 .*exceeds"):
        check_pd("H", M)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_problems(max_nx=3, max_nu=2, max_N=4), unit_changes())
def test_random_problems_in_random_units_give_the_same_law(case, units):
    prob, seed = case
    t, s = units
    T, S = np.diag(t[:prob.n_x]), np.diag(s[:prob.n_u])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", exc.IllConditionedWarning)
        scaled = _in_units(prob, T, S)
        X = mpc2nn.sample_states(prob, 10, feasible=None, seed=seed % 1000)
        _same_law(prob, scaled, T, S, X)
