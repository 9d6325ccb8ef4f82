"""Fuzzing the exact solve (issue 13): random problems, states, scales and formulations.

Claims checked against independent references: a certified sample agrees with DAQP and holds
every row at its own scale; a sample called infeasible is infeasible for an LP (HiGHS); no sample
is certified with NaN; the one-state path agrees with the batch. A bounded version runs in the
default suite, a deeper one with ``-m slow``.
"""
import numpy as np
import pytest
import scipy.optimize
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from tolerances import tol

import mpc2nn
from mpc2nn.status import Status

daqp = pytest.importorskip("daqp")


#: Spectral radii of the random ``A`` (stable, marginal, unstable).
RHOS = [0.5, 0.95, 1.0, 1.2, 1.5]
#: Exponents of a "no bound" written as a huge finite number.
HUGE_EXPONENTS = [8, 10, 13]
#: Exponents of the scale of the states (moderate to near overflow).
SCALE_EXPONENTS = [0, 0, 0, 1, 3, 8, 100, 300]


@st.composite
def fuzz_params(draw, max_nx=6):
    """Plain parameters of a fuzz case (see :func:`make_case`): a dict of ints, floats and bools, so a found
    case is written down as an ``@example`` in one line."""
    return dict(
        n_x=draw(st.integers(2, max_nx)), n_u=draw(st.integers(1, 2)), N=draw(st.integers(2, 8)),
        seed=draw(st.integers(0, 2**31 - 1)), rho=draw(st.sampled_from(RHOS)),
        x_bounds=draw(st.booleans()), huge=draw(st.sampled_from([None] + HUGE_EXPONENTS)),
        rates=draw(st.booleans()), soft=draw(st.integers(0, 3)) == 0, transform=draw(st.booleans()),
        dare=draw(st.booleans()), scale=draw(st.sampled_from(SCALE_EXPONENTS)))


def make_case(n_x, n_u, N, seed, rho, x_bounds, huge, rates, soft, transform, dare, scale):
    """A random MPC problem (stable or unstable, with or without state bounds, rates, soft constraints,
    huge finite bounds, unit changes / similarity transforms) and a batch of 16 θ at the scale
    ``10**scale``, all drawn from ``seed``; returns ``(problem, X, rng)``."""
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(n_x, n_x))
    A *= rho / max(abs(np.linalg.eigvals(A)))
    B = rng.normal(size=(n_x, n_u))
    Q = np.eye(n_x) * 10 ** rng.uniform(-1, 2)
    R = np.eye(n_u) * 10 ** rng.uniform(-2, 1)
    kw = dict(u_min=-rng.uniform(0.2, 2, n_u), u_max=rng.uniform(0.2, 2, n_u))
    x_max = None
    if x_bounds:
        x_max = rng.uniform(1, 5, n_x)
        if huge is not None:  # a "no bound" written as a huge number
            x_max[rng.integers(n_x)] = 10.0 ** huge
    if rates:
        kw.update(du_min=-rng.uniform(0.1, 1, n_u), du_max=rng.uniform(0.1, 1, n_u))
    T = np.eye(n_x)
    if transform:  # similarity transform / unit change of the states: x = T x̃
        T = np.diag(10.0 ** rng.uniform(-1.5, 1.5, n_x)) @ np.linalg.qr(rng.normal(size=(n_x, n_x)))[0]
    Ti = np.linalg.inv(T)
    A, B, Q = Ti @ A @ T, Ti @ B, T.T @ Q @ T
    Q = (Q + Q.T) / 2
    if x_max is not None:  # bounds on x = T x̃ become polytopic rows on x̃
        kw["constraints"] = [(np.vstack([T, -T]), np.zeros((2 * n_x, n_u)), np.concatenate([x_max, x_max]))]
        if soft:
            kw.update(soft_state_penalty=(1.0, 100.0))
    prob = mpc2nn.MPCProblem(A, B, Q, R, N, P="dare" if dare else np.eye(n_x) * 1.0, **kw,
                             sample_box=(-np.ones(n_x), np.ones(n_x)))
    X = (Ti @ rng.uniform(-2, 2, size=(16, n_x)).T).T * 10.0 ** scale
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


def returned_z(qp, U, slack):
    """The decision vectors of a returned solution, from its inputs ``U = T z`` and slacks (``T``: 0/1 columns)."""
    if qp.output_map is None:
        return U
    n_v = qp.n_z - qp.n_slack
    Zv = U @ np.linalg.pinv(qp.output_map[:, :n_v]).T
    return np.hstack([Zv, slack + qp.slack_shift])


def check_case(prob, X, rng):
    qp = mpc2nn.condense(prob)
    net = mpc2nn.compile(qp)
    theta = _theta(qp, prob, X, rng)
    with np.errstate(all="ignore"):
        sol = net.solve(theta)
    ok = sol.status == Status.SOLVED
    assert np.array_equal(sol.feasible, ok)
    assert np.isfinite(sol.U[ok]).all()
    # certified => every row holds at its own scale (for the point returned) and DAQP (where it solves) agrees
    Z = returned_z(qp, sol.U[ok], sol.slack[ok])
    viol = Z @ qp.G.T - qp.w - theta[ok] @ qp.E.T
    scale = np.abs(Z) @ np.abs(qp.G).T + np.abs(qp.w) + np.abs(theta[ok]) @ np.abs(qp.E).T
    assert (viol <= tol("certificate") * scale).all()
    small = np.abs(theta).max(axis=1) <= 1e6  # DAQP's own tolerances are absolute: compare where they mean it
    ref = mpc2nn.solve_daqp(qp, theta[ok & small])
    Uscale = max(1.0, float(np.abs(ref.U[ref.feasible]).max(initial=0.0)))
    assert np.abs(sol.U[ok & small][ref.feasible] - ref.U[ref.feasible]).max(initial=0.0) <= 1e-6 * Uscale
    # a soft problem (every state row softened; inputs in a box, rates from a u_prev within it) is feasible for
    # every state: nothing may be proven infeasible, at any scale
    if prob.soft_state_penalty is not None:
        assert not sol.infeasible.any(), sol.reason[sol.infeasible][:2]
    # infeasible => an LP agrees (where the LP is well scaled)
    for i in np.flatnonzero(sol.infeasible & small):
        feasible, lp_status = _lp_feasible(qp, theta[i])
        assert not feasible, (i, lp_status, sol.reason[i])
    # no sample is left undecided at moderate scales
    und = sol.undecided & small & np.isfinite(theta).all(axis=1)
    assert not und.any(), (sol.summary(), sol.reason[und][:3], sol.method[und][:3])
    # the one-state path agrees with the batch: the same certified U, or (only beyond moderate scales, where
    # the certificate of one path can fail on rounding the other's passed) a status that claims nothing
    i = int(np.argmax(ok)) if ok.any() else None
    if i is not None:
        one = net.solve(theta[i])
        if one.status[0] == Status.SOLVED:
            assert np.abs(one.U[0] - sol.U[i]).max() <= 1e-8 * max(1.0, float(np.abs(sol.U[i]).max()))
        else:
            assert not small[i] and one.status[0] in (Status.UNCERTIFIED, Status.FAILED), (one.status, one.reason)


#: Cases the fuzzers found (each failed before its fix), kept as explicit examples of the default test.
FOUND = [
    # states at 1e8: z = -H⁻¹(Fθ + Gᵀλ) cancels (all inputs saturated), the returned point broke input rows by
    # 1e-5 of their own scale while certified, and 15 of 16 states were uncertified (primal correction)
    dict(n_x=5, n_u=1, N=2, seed=1046938220, rho=1.2, x_bounds=True, huge=None, rates=False, soft=True,
         transform=False, dare=True, scale=8),
    # the same cancellation with rates: the one-state path left uncertified what the batch certified
    dict(n_x=6, n_u=1, N=3, seed=1590649181, rho=1.2, x_bounds=False, huge=None, rates=True, soft=False,
         transform=False, dare=True, scale=8),
    # moderate states (1e3), soft, rates, a 1e10 bound, unstable in scaled coordinates: 2 of 16 uncertified
    # (KKT 1.8e-9) where the correction on the active rows certifies them
    dict(n_x=10, n_u=1, N=8, seed=278861406, rho=1.5, x_bounds=True, huge=10, rates=True, soft=True,
         transform=True, dare=False, scale=3),
    # an unstable A in badly scaled coordinates: |P| ~ 2e8, H ~ 3e3 with rounding asymmetry 2e-5 refused by
    # condense's own symmetry check (H is symmetrised by construction now)
    dict(n_x=12, n_u=1, N=6, seed=1017194711, rho=1.2, x_bounds=True, huge=8, rates=True, soft=False,
         transform=True, dare=True, scale=3),
    # states at 1e300 whose active rows fix z: the correction needs ~20 steps of ~16 digits
    dict(n_x=9, n_u=1, N=2, seed=677596345, rho=1.5, x_bounds=False, huge=None, rates=False, soft=False,
         transform=True, dare=False, scale=300),
    # a soft problem (feasible for every state) "proven" infeasible at 1e100: a Farkas certificate whose
    # rounding residual Ḡᵀμ left only a ball of radius 7e98 clear against solutions of size 1e100
    dict(n_x=5, n_u=2, N=5, seed=1181840254, rho=0.95, x_bounds=True, huge=None, rates=False, soft=True,
         transform=True, dare=False, scale=100),
    # an infeasible state at moderate scale left uncertified: the NNLS last resort scaled q by its largest
    # entry, the 1e13 bound, which drowned every other row
    dict(n_x=5, n_u=2, N=8, seed=1655014128, rho=1.5, x_bounds=True, huge=13, rates=True, soft=False,
         transform=True, dare=False, scale=0),
]


def _with_found(test):
    for params in reversed(FOUND):
        test = example(params=params)(test)
    return test


#: The solve's paths: compiled end to end (numba, batches below COMPILED_BATCH), batched numpy sweeps with the
#: compiled fallback, and pure numpy (numba absent).
PATHS = ["compiled", "batched", "numpy"]


@pytest.fixture(params=PATHS)
def solve_path(request, monkeypatch):
    from mpc2nn.implicit import _compiled, _network

    if request.param != "numpy" and not _compiled.available():
        pytest.skip("numba is not installed (the fast extra)")
    if request.param == "batched":
        monkeypatch.setattr(_network, "COMPILED_BATCH", 0)
    if request.param == "numpy":
        monkeypatch.setattr(_compiled, "numba", None)
    return request.param


# derandomize: CI runs the same 25 examples every time (the slow variant below stays random)
@_with_found
@settings(max_examples=25, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(params=fuzz_params())
def test_fuzz_exact_solve(solve_path, params):
    check_case(*make_case(**params))


@pytest.mark.slow
@settings(max_examples=400, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(params=fuzz_params(max_nx=12))
def test_fuzz_exact_solve_deep(solve_path, params):
    check_case(*make_case(**params))
