"""The compiled per-sample path of the exact solve (numba, the ``fast`` extra) against the numpy path.

The compiled path re-implements the dual active-set method and the certificate; these tests hold it to
the numpy path's verdicts, to the KKT residuals of :meth:`CondensedQP.kkt_residuals` computed on its own
returned point, to DAQP, and check that whatever it cannot certify goes back to the numpy path.
"""
import numpy as np
import pytest
from tolerances import tol

import mpc2nn
from mpc2nn.implicit import _compiled, _network
from mpc2nn.status import Status

pytestmark = pytest.mark.skipif(not _compiled.available(), reason="numba is not installed (the fast extra)")


def _random(n_x, rho, seed, x_bounds):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(n_x, n_x))
    A *= rho / max(abs(np.linalg.eigvals(A)))
    B = rng.normal(size=(n_x, 2))
    kw = dict(x_min=-5 * np.ones(n_x), x_max=5 * np.ones(n_x)) if x_bounds else {}
    return mpc2nn.MPCProblem(A, B, np.eye(n_x), 0.1 * np.eye(2), 6, u_min=-np.ones(2), u_max=np.ones(2),
                             sample_box=(-3 * np.ones(n_x), 3 * np.ones(n_x)), **kw)


CASES = {"double_integrator": mpc2nn.systems.double_integrator, "quadcopter": mpc2nn.systems.quadcopter,
         "unstable_4": lambda: _random(4, 1.3, 1, True), "stable_7": lambda: _random(7, 0.9, 2, False),
         "unstable_12": lambda: _random(12, 1.1, 3, True)}


def _numpy_net(prob, monkeypatch):
    with monkeypatch.context() as mp:
        mp.setattr(_compiled, "numba", None)
        net = mpc2nn.compile(prob)
        assert net._compiled is None
    return net


@pytest.mark.parametrize("name", CASES)
def test_compiled_verdicts_and_points_match_numpy_and_daqp(name, monkeypatch):
    prob = CASES[name]()
    net = mpc2nn.compile(prob)
    assert net._compiled is not None
    X = np.vstack([mpc2nn.sample_states(prob, 20, seed=4), 2.5 * mpc2nn.sample_states(prob, 20, seed=5)])
    ref = _numpy_net(prob, monkeypatch).solve(X)
    batch = net.solve(X)  # 40 < COMPILED_BATCH: compiled end to end
    ones = [net.solve(x) for x in X]  # the lean single-state path
    assert np.array_equal(batch.status, ref.status)
    assert [str(o.status[0]) for o in ones] == list(ref.status)
    ok = ref.feasible
    assert ok.any()
    assert np.abs(batch.U[ok] - ref.U[ok]).max() <= tol("vs_daqp")
    assert np.abs(np.vstack([o.U for o in ones])[ok] - ref.U[ok]).max() <= tol("vs_daqp")
    dq = mpc2nn.solve_daqp(net.qp, X[ok])
    assert dq.feasible.all()
    assert np.abs(batch.U[ok] - dq.U).max() <= tol("vs_daqp")
    assert (batch.kkt.worst[ok] <= tol("certificate")).all()


@pytest.mark.parametrize("name", ["quadcopter", "unstable_12"])
def test_compiled_residuals_are_those_of_kkt_residuals(name):
    """The residuals the compiled certificate judges are CondensedQP.kkt_residuals of the point it returns."""
    prob = CASES[name]()
    net = mpc2nn.compile(prob)
    X = mpc2nn.sample_states(prob, 30, seed=6)
    U, y, Z, code, _, _, _, kkt, *_ = net._compiled.solve(X)
    ok = code == _compiled.SOLVED
    assert ok.any()
    ind = net.qp.kkt_residuals(Z[ok], np.maximum(y[ok], 0.0), X[ok])
    for j, field in enumerate(_network._KKT_FIELDS):
        mine, theirs = kkt[ok, j], getattr(ind, field)
        # the same formulas in another order of summation: equal to rounding of their own terms
        assert np.allclose(mine, theirs, rtol=1e-6, atol=tol("certificate") * 1e-3), field
    assert (ind.worst <= tol("certificate")).all()
    assert np.allclose(U[ok], Z[ok] @ net.qp.output_map.T if net.qp.output_map is not None else Z[ok])


def test_nan_in_the_compiled_certificate_is_never_solved():
    net = mpc2nn.compile(mpc2nn.systems.double_integrator())
    X = np.array([[np.nan, 0.0], [np.inf, 1.0], [1e300, -1e300]])
    _, _, _, code, *_ = net._compiled.solve(X)
    assert (code != _compiled.SOLVED).all()
    sol = net.solve(X)
    assert not sol.feasible.any()
    assert all(str(s) == Status.INVALID for s in sol.status[:2])


def test_what_the_compiled_path_cannot_certify_goes_to_the_numpy_path(monkeypatch):
    prob = CASES["unstable_4"]()
    net = mpc2nn.compile(prob)
    X = np.vstack([mpc2nn.sample_states(prob, 15, seed=7), 3 * mpc2nn.sample_states(prob, 15, seed=8)])
    ref = _numpy_net(prob, monkeypatch).solve(X)
    real = _compiled.CompiledSolver.solve

    def refuse(self, theta, active0=None):  # the compiled certificate fails on every sample
        res = list(real(self, theta, active0))
        res[3] = np.where(res[3] == _compiled.SOLVED, _compiled.UNCERTIFIED, res[3]).astype(np.int8)
        return tuple(res)

    monkeypatch.setattr(_compiled.CompiledSolver, "solve", refuse)
    batch = net.solve(X)
    assert np.array_equal(batch.status, ref.status)
    assert np.abs(batch.U[ref.feasible] - ref.U[ref.feasible]).max() <= tol("vs_daqp")
    one = net.solve(X[np.argmax(ref.feasible)])
    assert one.status[0] == Status.SOLVED


def test_package_solves_without_numba(monkeypatch):
    monkeypatch.setattr(_compiled, "numba", None)
    net = mpc2nn.compile(mpc2nn.systems.double_integrator())
    assert net._compiled is None
    sol = net.solve([[1.0, 0.5], [5.0, 2.0]])
    assert [str(s) for s in sol.status] == ["solved", "infeasible"]


@pytest.mark.parametrize("name", ["double_integrator", "unstable_4", "unstable_12"])
def test_controller_single_state_path_matches_daqp_along_a_closed_loop(name):
    """The controller's compiled stepper (warm-started from the previous certified state) gives DAQP's input
    at every step of a simulated closed loop, and a state it cannot certify goes to net.solve, which says why."""
    prob = CASES[name]()
    net = mpc2nn.compile(prob)
    ctrl = mpc2nn.ImplicitController(net)
    assert ctrl._step is not None
    traj = mpc2nn.simulate(prob, ctrl, mpc2nn.sample_states(prob, 1, seed=7)[0], 25)
    X = traj.states[:-1]
    dq = mpc2nn.solve_daqp(net.qp, X)
    assert dq.feasible.all() and (traj.status == Status.SOLVED).all()
    assert np.abs(traj.inputs - dq.U[:, :net.n_u]).max() <= tol("vs_daqp")
    far = 100.0 * np.ones(net.qp.n_theta)  # outside the feasible set
    act = ctrl(far)
    assert act.status == Status.INFEASIBLE and np.isnan(act.u).all()
    assert ctrl(np.full(net.qp.n_theta, np.nan)).status == Status.INVALID
    again = ctrl(X[3])  # after the refusals the stepper still solves (from a fresh search)
    assert again.status == Status.SOLVED
    assert np.abs(again.u - dq.U[3, :net.n_u]).max() <= tol("vs_daqp")


def test_stepper_returns_nothing_it_has_not_certified():
    net = mpc2nn.compile(mpc2nn.systems.double_integrator())
    step = net.stepper()
    assert step(np.array([[1.0, 0.5]])) is not None
    assert step(np.array([[5.0, 2.0]])) is None  # infeasible: net.solve proves it and says so
    assert step(np.array([[np.nan, 0.0]])) is None
    u = step(np.array([[1.0, 0.5]]))
    assert np.abs(u - mpc2nn.solve_daqp(net.qp, np.array([[1.0, 0.5]])).U[0, :1]).max() <= tol("vs_daqp")


def test_controller_steps_rate_bound_problems_through_the_stepper(monkeypatch):
    """θ = (x, u_prev) built by the controller goes through the compiled stepper too (net.solve is not
    called while every step certifies), with DAQP's inputs."""
    prob = mpc2nn.MPCProblem(np.array([[1.0, 1.0], [0.0, 1.0]]), np.array([[0.5], [1.0]]), np.eye(2),
                             0.1 * np.eye(1), 8, u_min=[-1.0], u_max=[1.0], du_min=[-0.3], du_max=[0.3],
                             x_min=[-5.0, -5.0], x_max=[5.0, 5.0])
    net = mpc2nn.compile(prob)
    ctrl = mpc2nn.ImplicitController(net)
    calls = []
    solve = type(net).solve
    monkeypatch.setattr(type(net), "solve", lambda *a, **k: calls.append(1) or solve(*a, **k))
    traj = mpc2nn.simulate(prob, ctrl, np.array([2.0, -0.5]), 15)
    assert (traj.status == Status.SOLVED).all() and not calls
    theta = np.hstack([traj.states[:-1], np.vstack([np.zeros((1, 1)), traj.inputs[:-1]])])
    dq = mpc2nn.solve_daqp(net.qp, theta)
    assert np.abs(traj.inputs - dq.U[:, :1]).max() <= tol("vs_daqp")
