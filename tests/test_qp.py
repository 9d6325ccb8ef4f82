"""Condensation: prediction, cost, constraints and KKT residuals."""
import numpy as np
import pytest
from hypothesis import given, settings
from strategies import random_problems
from tolerances import tol

import mpc2nn


def rollout(prob, x, U):
    xs = [x]
    for k in range(prob.horizon):
        xs.append(prob.A @ xs[-1] + prob.B @ U[k * prob.n_u:(k + 1) * prob.n_u])
    return np.array(xs)


@settings(max_examples=40, deadline=None)
@given(random_problems())
def test_condensed_prediction_equals_rollout(case):
    prob, seed = case
    qp = mpc2nn.condense(prob)
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(3, prob.n_x))
    U = rng.normal(size=(3, qp.n_U))
    pred = qp.predict(X, U)
    for i in range(3):
        traj = rollout(prob, X[i], U[i])
        assert np.abs(pred[i] - traj).max() <= tol("same_math") * max(1, np.abs(traj).max())


@settings(max_examples=40, deadline=None)
@given(random_problems())
def test_condensed_cost_and_constraints_equal_stagewise_definition(case):
    prob, seed = case
    qp = mpc2nn.condense(prob)
    rng = np.random.default_rng(seed + 1)
    x, U, U2 = rng.normal(size=prob.n_x), rng.normal(size=qp.n_U), rng.normal(size=qp.n_U)

    def cost(U):
        traj, us = rollout(prob, x, U), U.reshape(prob.horizon, prob.n_u)
        stage = sum(traj[k] @ prob.Q @ traj[k] + us[k] @ prob.R @ us[k] for k in range(prob.horizon))
        return 0.5 * (stage + traj[-1] @ prob.P @ traj[-1])

    # the QP leaves out the terms that depend on x alone: compare differences
    diff_qp = qp.objective(U, x)[0] - qp.objective(U2, x)[0]
    assert np.isclose(cost(U) - cost(U2), diff_qp, rtol=tol("same_math"), atol=tol("same_math"))
    traj, us = rollout(prob, x, U), U.reshape(prob.horizon, prob.n_u)
    # constraint rows hold exactly when the stage-wise bounds hold (both up to round-off of the rollout)
    eps = tol("roundoff")
    ok_stagewise = (np.all(us <= prob.u_max + eps) and np.all(us >= prob.u_min - eps)
                    and np.all(traj[1:] <= prob.x_max + eps) and np.all(traj[1:] >= prob.x_min - eps))
    ok_condensed = bool(np.all(qp.margin(U[None], x[None]) >= -eps))
    assert ok_stagewise == ok_condensed


def test_infinite_bounds_give_no_rows():
    inf = np.inf
    p = mpc2nn.MPCProblem([[1.0]], [[1.0]], [[1.0]], [[1.0]], 4, u_min=[-inf], u_max=[1.0],
                          x_min=[-inf], x_max=[inf])
    qp = mpc2nn.condense(p)
    assert qp.m == 4
    assert all(lbl.startswith("u_max") for lbl in qp.row_labels)


def test_stage_and_terminal_constraints_rows():
    # C_x x_k + C_u u_k <= d at k = 0..N-1; k = 0 row with C_u = 0 is state-only
    p = mpc2nn.MPCProblem([[1.0, 1.0], [0, 1]], [[0.5], [1.0]], np.eye(2), [[1.0]], 3,
                          constraints=[([[1.0, 0.0], [0.0, 1.0]], [[0.0], [1.0]], [2.0, 1.0])],
                          terminal_constraint=([[1.0, 0.0]], [0.5]))
    qp = mpc2nn.condense(p)
    # row 0 (C_u = 0) at k = 0 is state-only; 2 rows at k = 1, 2; row 1 at k = 0; 1 terminal row
    assert qp.m == 1 + 2 * 2 + 1
    assert qp.state_only[0].shape == (1, 2)
    x = np.array([3.0, 0.0])
    assert qp.state_only_violation(x)[0] == pytest.approx(1.0)
    rng = np.random.default_rng(0)
    for _ in range(20):
        x, U = rng.normal(size=2), rng.normal(size=3)
        traj = rollout(p, x, U)
        direct = [traj[k][1] + U[k] - 1.0 for k in range(3)] + [traj[k][0] - 2.0 for k in (1, 2)] + \
                 [traj[3][0] - 0.5]
        viol_direct = max(0.0, max(direct))
        viol_qp = max(0.0, float((-qp.margin(U[None], x[None])).max()))
        assert viol_qp == pytest.approx(viol_direct, abs=tol("roundoff"))


def test_kkt_residuals_vanish_at_solution_and_detect_perturbations():
    prob = mpc2nn.systems.double_integrator()
    net = mpc2nn.compile(prob)
    X = mpc2nn.sample_states(prob, 30, seed=3)
    sol = net.solve(X)
    lam = np.maximum(sol.y, 0)
    res = net.qp.kkt_residuals(sol.U, lam, X)
    # the four residuals, written out here from (H, F, G, w, E) and compared entry by entry
    qp = net.qp
    margin = qp.w + X @ qp.E.T - sol.U @ qp.G.T
    expected = dict(stationarity=np.abs(sol.U @ qp.H + X @ qp.F.T + lam @ qp.G).max(axis=1),
                    primal=np.maximum(0.0, (-margin).max(axis=1)), dual=np.maximum(0.0, (-lam).max(axis=1)),
                    complementarity=np.abs(lam * margin).max(axis=1))
    for name, value in expected.items():
        assert np.allclose(getattr(res, name), value, rtol=0, atol=tol("few_ulps")), name
    # and they vanish because DAQP, an independent solver, gives the same inputs
    pytest.importorskip("daqp")
    assert np.abs(sol.U - mpc2nn.solve_daqp(prob, X).U).max() <= tol("vs_daqp")
    assert res.worst.max() <= tol("certificate")
    # and detect a deliberate perturbation of size 1e-3: of U (stationarity > 1e-5, seen 26) and of λ (the dual
    # residual is the perturbation itself where some λ = 0, up to rel 1e-6; seen exactly)
    step = 1e-3
    bad = net.qp.kkt_residuals(sol.U + step, lam, X)
    assert bad.stationarity.min() > 1e-5
    neg = net.qp.kkt_residuals(sol.U, lam - step, X)
    assert neg.dual.min() == pytest.approx(step, rel=1e-6)


def test_sparse_form_osqp_agrees_with_exact_condensed_solve(public_mpc_problem):
    """OSQP on the states-and-inputs form never sees the condensation: agreement checks it."""
    public_problem = public_mpc_problem
    X = mpc2nn.sample_states(public_problem, 15, seed=5)
    sparse = mpc2nn.solve_osqp(public_problem, X, form="sparse")
    condensed = mpc2nn.solve_osqp(public_problem, X, form="condensed")
    exact = mpc2nn.compile(public_problem).solve(X)
    assert sparse.feasible.all() and condensed.feasible.all()
    assert np.abs(sparse.U - exact.U).max() <= tol("vs_osqp")
    # OSQP on the condensed form polishes less reliably on degenerate duals (seen: 2e-7 on the
    # double integrator), so only the acceptance bound is asserted for it
    assert np.abs(condensed.U - exact.U).max() <= tol("acceptance")


def test_sparse_form_refused_for_a_hand_built_qp():
    qp = mpc2nn.systems.drummond2024("published")
    with pytest.raises(mpc2nn.ProblemDefinitionError, match="was not condensed from an MPCProblem"):
        qp.sparse_form()


def test_row_scaling_keeps_solution():
    prob = mpc2nn.systems.inverted_pendulum()
    qp = mpc2nn.condense(prob)
    rng = np.random.default_rng(0)
    qp2 = qp.with_row_scaling(rng.uniform(0.1, 10, qp.m))
    X = mpc2nn.sample_states(prob, 40)
    U1, U2 = mpc2nn.compile(qp).solve(X).U, mpc2nn.compile(qp2).solve(X).U
    assert np.abs(U1 - U2).max() <= tol("same_math")
    with pytest.raises(mpc2nn.ProblemDefinitionError, match="row scales must be finite and > 0"):
        qp.with_row_scaling(-1.0)


def test_condensed_qp_validates_its_data():
    H, F = np.eye(2), np.zeros((2, 3))
    G, w, E = np.eye(2), np.ones(2), np.zeros((2, 3))
    qp = mpc2nn.CondensedQP(H=H, F=F, G=G, w=w, E=E, n_u=1)
    assert (qp.n_U, qp.n_x, qp.m, qp.horizon) == (2, 3, 2, 2)
    with pytest.raises(mpc2nn.NotPositiveDefiniteError, match="H: expected a positive definite matrix"):
        mpc2nn.CondensedQP(H=np.diag([1.0, 0.0]), F=F, G=G, w=w, E=E, n_u=1)
    with pytest.raises(mpc2nn.ShapeError, match=r"F: expected shape \(n_z, n_θ\) = \(2, n_θ\), got \(3, 3\)"):
        mpc2nn.CondensedQP(H=H, F=np.zeros((3, 3)), G=G, w=w, E=E, n_u=1)
    with pytest.raises(mpc2nn.ShapeError, match=r"w: expected shape \(m,\) = \(2,\), got \(3,\)"):
        mpc2nn.CondensedQP(H=H, F=F, G=G, w=np.ones(3), E=E, n_u=1)
    with pytest.raises(mpc2nn.ShapeError, match=r"E: expected shape \(m, n_θ\) = \(2, 3\), got \(2, 2\)"):
        mpc2nn.CondensedQP(H=H, F=F, G=G, w=w, E=np.zeros((2, 2)), n_u=1)
    with pytest.raises(mpc2nn.ShapeError, match=r"n_u: expected a positive divisor of N·n_u = 2, got 3"):
        mpc2nn.CondensedQP(H=H, F=F, G=G, w=w, E=E, n_u=3)
    with pytest.raises(mpc2nn.ShapeError, match="row_labels: expected m = 2 labels, got 1"):
        mpc2nn.CondensedQP(H=H, F=F, G=G, w=w, E=E, n_u=1, row_labels=("a",))
    with pytest.raises(mpc2nn.ProblemDefinitionError, match="was given directly and has no prediction model"):
        qp.predict(np.zeros(3), np.zeros((1, 2)))


def test_condensed_qp_methods_refuse_complex_and_mismatched_batches():
    qp = mpc2nn.CondensedQP(H=np.eye(2), F=np.zeros((2, 3)), G=np.eye(2), w=np.ones(2), E=np.zeros((2, 3)), n_u=1)
    theta, Z, lam = np.zeros((3, 3)), np.zeros((3, 2)), np.zeros((3, 2))
    assert np.array_equal(qp.kkt_residuals(Z, lam, theta).worst, np.zeros(3))  # the origin is optimal here
    with pytest.raises(mpc2nn.ComplexValueError, match="Z: expected real numbers"):
        qp.inputs(Z + 1j)
    with pytest.raises(mpc2nn.ComplexValueError, match="lam: expected real numbers"):
        qp.kkt_residuals(Z, lam + 1j, theta)
    with pytest.raises(mpc2nn.ShapeError, match=r"Z: expected one row per parameter θ \(B = 3\), got 2 rows"):
        qp.objective(Z[:2], theta)
    with pytest.raises(mpc2nn.ShapeError, match=r"lam: expected shape \(B, m\) = \(B, 2\)"):
        qp.kkt_residuals(Z, np.zeros((3, 5)), theta)
    with pytest.raises(mpc2nn.ShapeError, match="multipliers"):
        qp.kkt_residuals(Z, "x", theta)
