"""Reliability of the exact solve (issue 13): certificates judged row by row, NaN and overflow, what
``feasible`` means, ill-conditioned QPs, bounded memory. Every expected value comes from DAQP or HiGHS."""
import numpy as np
import pytest
import scipy.optimize
from tolerances import tol

import mpc2nn
from mpc2nn.status import Status


def lp_feasible(qp, theta):
    """Independent feasibility check of G z <= w + E θ by an LP (HiGHS)."""
    res = scipy.optimize.linprog(np.zeros(qp.n_z), A_ub=qp.G, b_ub=qp.w + qp.E @ theta,
                                 bounds=[(None, None)] * qp.n_z, method="highs")
    return res.status == 0


def rows_hold(qp, Z, theta, tol):
    """``(B,)`` every row of ``G z <= w + E θ`` holds to ``tol`` times its own scale ``|G_i||z| + |w_i| + |E_i||θ|``."""
    viol = Z @ qp.G.T - qp.w - theta @ qp.E.T
    scale = np.abs(Z) @ np.abs(qp.G).T + np.abs(qp.w) + np.abs(theta) @ np.abs(qp.E).T
    return (viol <= tol * scale).all(axis=1)


def huge_bound_problem(bound=1e13):
    """The issue's double integrator: |u| <= 1, |x_1| <= 5, x_2 within ±1e13 (a "no bound" written as a number)."""
    return mpc2nn.MPCProblem([[1.0, 1.0], [0.0, 1.0]], [[0.5], [1.0]], Q=np.eye(2), R=[[0.1]], horizon=10, P="dare",
                             u_min=[-1.0], u_max=[1.0], x_min=[-5.0, -bound], x_max=[5.0, bound],
                             sample_box=([-5.0, -2.0], [5.0, 2.0]))


def test_large_finite_bound_does_not_loosen_the_other_rows():
    pytest.importorskip("daqp")
    prob = huge_bound_problem()
    net = mpc2nn.compile(prob)
    sol = net.solve([4.0, 1.5])
    ref = mpc2nn.solve_daqp(prob, [[4.0, 1.5]])
    assert ref.feasible[0]
    if sol.status[0] == Status.SOLVED:
        assert np.abs(sol.U - ref.U).max() <= tol("vs_daqp")
    assert not (sol.status[0] == Status.SOLVED and np.abs(sol.U - ref.U).max() > 1e-6)


@pytest.mark.parametrize("bound", [1e10, 1e12, 1e13, 1e20])
def test_large_finite_bound_certified_means_right(bound):
    pytest.importorskip("daqp")
    prob = huge_bound_problem(bound)
    net = mpc2nn.compile(prob)
    X = mpc2nn.sample_states(prob, 300, seed=0, feasible=None)
    sol = net.solve(X)
    ref = mpc2nn.solve_daqp(prob, X)
    ok = sol.status == Status.SOLVED
    truth = np.array([lp_feasible(net.qp, x) for x in X])
    assert not (ok & ~truth).any(), "an infeasible state was called solved"
    assert np.abs(sol.U[ok] - ref.U[ok]).max(initial=0) <= tol("vs_daqp")
    Z = np.nan_to_num(net.qp.primal(np.maximum(np.nan_to_num(sol.y), 0), X))
    assert rows_hold(net.qp, Z[ok], X[ok], tol("certificate")).all()
    # and it still decides (nearly) every state: the big rows cost no certificates
    assert ok.sum() + (sol.status == Status.INFEASIBLE).sum() >= 295, sol.summary()


def test_certificate_judges_each_row_at_its_own_scale():
    """A violation of a small row is not forgiven because another row is big."""
    prob = huge_bound_problem()
    qp = mpc2nn.condense(prob)
    x = np.array([[0.0, 0.0]])
    Z = np.zeros((1, qp.n_z))
    Z[0, 0] = 1.0 + 1e-3  # u_0 above its bound 1 by 1e-3
    lam = np.zeros((1, qp.m))
    res = qp.kkt_residuals(Z, lam, x)
    assert res.worst[0] > 1e-4


def test_nan_fails_every_certificate_test():
    qp = mpc2nn.condense(mpc2nn.systems.double_integrator())
    Z = np.full((1, qp.n_z), np.nan)
    res = qp.kkt_residuals(Z, np.zeros((1, qp.m)), np.zeros((1, 2)))
    assert not (res.worst <= tol("certificate")).any()


@pytest.mark.parametrize("name", ["double_integrator", "quadcopter", "inverted_pendulum", "oscillating_masses",
                                  "drummond2024_corrected"])
@pytest.mark.parametrize("value", [1e300, 1e305, 1e307])
def test_huge_states_never_come_back_solved_with_nan(name, value):
    net = mpc2nn.compile(mpc2nn.systems.all_problems()[name]())
    X = np.full((1, net.qp.n_theta), value)
    sol = net.solve(X)
    if sol.status[0] == Status.SOLVED:
        assert np.isfinite(sol.U).all()
        assert rows_hold(net.qp, np.nan_to_num(net.qp.primal(np.maximum(sol.y, 0), X)), X,
                         tol("certificate")).all()
    else:
        assert not sol.feasible[0] and sol.reason[0]
    with np.errstate(over="ignore", invalid="ignore"):
        overflows = not np.isfinite(X @ net.qp.F.T @ net.qp.H_inv).all()
    if overflows:
        assert sol.status[0] == Status.INVALID and "overflow" in sol.reason[0]


def test_input_bounds_only_at_huge_states():
    """Without state constraints every state is feasible; at 1e300 the answer is the bound or honestly uncertified."""
    p = mpc2nn.MPCProblem([[1.0, 1.0], [0.0, 1.0]], [[0.5], [1.0]], Q=np.eye(2), R=[[0.1]], horizon=10,
                          u_min=[-1.0], u_max=[1.0])
    net = mpc2nn.compile(p)
    for v in (1e300, 1e305, 1e307):
        sol = net.solve([[v, v]])
        assert sol.status[0] != Status.SOLVED or np.abs(sol.U[0] + 1).max() <= 1e-9, (v, sol.U[0, :3])
        assert sol.feasible[0] == (sol.status[0] == Status.SOLVED)


def test_uncertified_samples_are_not_feasible(monkeypatch):
    from mpc2nn.implicit import _certificate, _compiled

    monkeypatch.setattr(_compiled, "numba", None)  # the compiled path has the tolerance built in

    prob = mpc2nn.systems.double_integrator()
    X = mpc2nn.sample_states(prob, 20, seed=1)
    monkeypatch.setattr(_certificate, "CERTIFICATE_TOL", 0.0)  # nothing can be certified
    sol = mpc2nn.compile(prob).solve(X)
    unc = sol.status == Status.UNCERTIFIED
    assert unc.sum() >= 10
    assert not sol.feasible[unc].any()
    assert not sol.infeasible[unc].any()  # not proven either way
    assert np.array_equal(sol.feasible, sol.status == Status.SOLVED)


def test_sampling_infeasible_states_keeps_proven_ones_only(monkeypatch):
    from mpc2nn.implicit import _certificate, _compiled

    monkeypatch.setattr(_compiled, "numba", None)  # the compiled path has the tolerance built in

    prob = mpc2nn.systems.double_integrator()
    monkeypatch.setattr(_certificate, "CERTIFICATE_TOL", 0.0)
    X = mpc2nn.sample_states(prob, 20, seed=1, feasible=False)
    qp = mpc2nn.condense(prob)
    assert not any(lp_feasible(qp, x) for x in X)


def test_overflowing_state_is_invalid_with_the_reason():
    net = mpc2nn.compile(mpc2nn.systems.double_integrator())
    sol = net.solve([[1e307, 1e307], [1.0, 0.0]])
    assert sol.status[0] == Status.INVALID and "overflow" in sol.reason[0]
    assert sol.status[1] == Status.SOLVED


def test_no_runtime_warnings_on_huge_states():
    import warnings

    for name, make in mpc2nn.systems.all_problems().items():
        net = mpc2nn.compile(make())
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)
            net.solve(np.full((3, net.qp.n_theta), [[1e300], [1e305], [1e308]]))
        del name


def test_chunked_solve_gives_the_same_results_and_reports_progress():
    prob = mpc2nn.systems.double_integrator()
    net = mpc2nn.compile(prob)
    X = mpc2nn.sample_states(prob, 300, seed=5, feasible=None)
    whole = mpc2nn.compile(prob).solve(X, chunk_size=10_000)
    calls = []
    parts = net.solve(X, chunk_size=64, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(64, 300), (128, 300), (192, 300), (256, 300), (300, 300)]
    assert np.array_equal(whole.status, parts.status)
    assert np.allclose(whole.U, parts.U, atol=1e-12, equal_nan=True)
    with pytest.raises(mpc2nn.ProblemDefinitionError, match="chunk_size: expected an integer >= 1"):
        net.solve(X, chunk_size=0)


def test_solve_memory_is_bounded_by_chunks():
    import tracemalloc

    prob = mpc2nn.systems.double_integrator()
    net = mpc2nn.compile(prob)
    X = np.random.default_rng(0).uniform(-1, 1, size=(20_000, 2))
    net.solve(X[:10])
    tracemalloc.start()
    sol = net.solve(X)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    results = sum(a.nbytes for a in (sol.U, sol.y, sol.status, sol.reason, sol.method, sol.iterations))
    assert peak - results < 64 * 2**20, (peak, results)


def test_compile_refuses_a_horizon_it_cannot_hold_with_the_number():
    prob = mpc2nn.systems.double_integrator().replace(horizon=10**6, P=np.eye(2))
    with pytest.raises(mpc2nn.ProblemTooLargeError, match=r"needs about [\d.]+ TiB") as info:
        mpc2nn.compile(prob)
    assert isinstance(info.value, MemoryError)
    with pytest.raises(mpc2nn.ProblemTooLargeError, match="allowed"):
        mpc2nn.compile(mpc2nn.systems.double_integrator(), memory_limit=1e5)


def test_compile_memory_estimate_is_not_below_the_network():
    from mpc2nn.implicit import compile_memory

    for make in mpc2nn.systems.all_problems().values():
        prob = make()
        net = mpc2nn.compile(prob)
        arrays = sum(a.nbytes for a in (net.W, net.Y, net.W_f, net.qp.G, net.qp.H, net.qp.dual_hessian))
        assert compile_memory(prob) >= arrays


def test_single_state_lean_path_agrees_with_the_batch():
    prob = mpc2nn.systems.quadcopter()
    net = mpc2nn.compile(prob)
    X = mpc2nn.sample_states(prob, 40, seed=2)
    batch = net.solve(X)
    for i, x in enumerate(X):
        one = net.solve(x)
        assert one.status[0] == Status.SOLVED
        assert np.abs(one.U[0] - batch.U[i]).max() <= tol("same_math")
        assert one.kkt.worst[0] <= tol("certificate")
    # a warm start from the previous fixed point is verified by one step
    again = net.solve(X[3], y0=batch.y[3])
    assert again.iterations[0] == 1 and np.abs(again.U[0] - batch.U[3]).max() <= tol("same_math")


def test_the_origin_is_certified():
    """At x = 0 every term of the stationarity equation is zero: nothing to divide by must not give NaN."""
    for make in mpc2nn.systems.all_problems().values():
        net = mpc2nn.compile(make())
        sol = net.solve(np.zeros((1, net.qp.n_theta)))
        assert sol.status[0] in (Status.SOLVED, Status.INFEASIBLE), sol.reason[0]
        assert not np.isnan(sol.kkt.worst[0]) or sol.status[0] == Status.INFEASIBLE
