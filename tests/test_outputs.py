"""Outputs y = C x + D u: output weights, hard and soft output bounds and output references, through
condensation, the sparse form (OSQP), the exact solve, explicit networks, export, converse, files and
closed loops - each against the independent cvxpy model of tests/reference_models.py (its outputs are
explicit variables with equality constraints, its bound steps written out from the documented rule).
"""
import numpy as np
import pytest
import scipy.linalg
from hypothesis import given, settings
from hypothesis import strategies as st
from reference_models import ACC, EXACT, Reference, full_cost, theta_of
from strategies import random_problems
from tolerances import TOL

import mpc2nn
from mpc2nn.status import Status

pytest.importorskip("cvxpy")


def di():
    return mpc2nn.systems.double_integrator()


#: output formulations on the double integrator (bounds at the steps of the MPCProblem docstring)
CASES = {
    "weight": lambda: di().replace(C=[[1.0, 0.5]], output_weight=[[4.0]]),
    "hard bounds": lambda: di().replace(C=[[1.0, 1.0]], y_min=[-3.0], y_max=[3.0]),
    "feedthrough": lambda: di().replace(C=[[1.0, 0.0]], D=[[0.5]], output_weight=[[2.0]], y_min=[-4.0],
                                        y_max=[4.0]),
    "two outputs": lambda: di().replace(C=[[1.0, 0.0], [0.3, 1.0]], D=[[0.0], [0.4]],
                                        output_weight=np.diag([1.0, 0.5]), y_min=[-4.0, -2.5], y_max=[4.0, 1.5]),
    "soft outputs": lambda: di().replace(C=[[1.0, 1.0]], y_min=[-2.0], y_max=[2.0], soft_output_penalty=(1.0, 100.0)),
    "soft outputs and states": lambda: di().replace(C=[[1.0, 1.0]], y_min=[-2.0], y_max=[2.0],
                                                    soft_output_penalty=(2.0, 10.0), soft_state_penalty=(1.0, 1e3)),
    "tracking": lambda: di().replace(C=[[1.0, 0.0]], output_weight=[[3.0]], tracking=True, y_min=[-4.0],
                                     y_max=[4.0]),
}


def draws(prob, n, seed):
    """States from the sample box and, for tracking problems, references."""
    rng = np.random.default_rng(seed)
    lo, hi = prob.sample_box
    X = rng.uniform(lo, hi, (n, prob.n_x))
    if not prob.tracking:
        return X, None, None, None
    return (X, 0.5 * rng.uniform(lo, hi, (n, prob.n_x)), rng.uniform(-0.5, 0.5, (n, prob.n_u)),
            rng.uniform(-2.0, 2.0, (n, prob.n_y)))


def check_against_reference(prob, X, X_ref, U_ref, Y_ref, n_osqp=3):
    R, D = Reference(prob).both(X, None, X_ref, U_ref, Y_ref=Y_ref, n_osqp=n_osqp)
    theta = theta_of(prob, X, None, X_ref, U_ref, Y_ref)
    assert mpc2nn.condense(prob).n_theta == theta.shape[1]
    sol = mpc2nn.compile(prob).solve(theta)
    assert np.array_equal(sol.feasible, D.feasible), (sol.status, D.status)
    ok = D.feasible
    assert (sol.status[ok] == Status.SOLVED).all() and np.isnan(sol.U[~ok]).all()
    assert np.abs(sol.U[ok] - D.U[ok]).max(initial=0.0) <= EXACT
    osqp_ok = R.status == "optimal"
    assert np.abs(sol.U[osqp_ok] - R.U[osqp_ok]).max(initial=0.0) <= ACC
    for i in np.flatnonzero(ok):
        refs = [None if A is None else A[i] for A in (X_ref, U_ref, Y_ref)]
        cost, viol = full_cost(prob, X[i], sol.U[i], None, *refs)
        assert viol <= 1e-8
        assert cost == pytest.approx(D.cost[i], rel=1e-7, abs=1e-8)
    return sol, theta


@pytest.mark.parametrize("case", sorted(CASES))
def test_outputs_match_the_reference(case):
    prob = CASES[case]()
    X, X_ref, U_ref, Y_ref = draws(prob, 12, seed=1)
    sol, theta = check_against_reference(prob, X, X_ref, U_ref, Y_ref)
    # the library's own OSQP reference solves the sparse form (built from the problem, not the QP)
    ref = mpc2nn.solve_osqp(prob, theta[:4])
    ok = sol.feasible[:4] & ref.feasible
    assert np.abs(ref.U[ok] - sol.U[:4][ok]).max(initial=0.0) <= TOL["vs_osqp", "float64"]


def test_output_bounds_hold_at_the_documented_steps():
    """D = 0: y_1..y_N bounded, y_0 (the given state) not; D != 0: y_0..y_{N-1} bounded."""
    prob = di().replace(C=[[1.0, 0.0], [0.0, 1.0]], D=[[0.0], [1.0]], y_min=[-1.0, -1.5], y_max=[1.0, 1.5])
    labels = mpc2nn.condense(prob).row_labels
    N = prob.horizon
    assert {f"y_max[0] at k={k}" for k in range(1, N + 1)} <= set(labels) and "y_max[0] at k=0" not in labels
    assert {f"y_min[1] at k={k}" for k in range(N)} <= set(labels) and f"y_min[1] at k={N}" not in labels
    # a state outside the output bound is not refused: y_0 = C x_0 is given, not decided
    assert mpc2nn.compile(prob).solve([1.2, 0.0]).feasible[0]


def test_exact_soft_output_penalty_equals_the_hard_solution_where_that_exists():
    hard = CASES["hard bounds"]()
    soft = hard.replace(soft_output_penalty=(1.0, 1e4))
    X, *_ = draws(hard, 40, seed=3)
    h, s = mpc2nn.compile(hard).solve(X), mpc2nn.compile(soft).solve(X)
    assert s.feasible.all() and (~h.feasible).any()
    assert np.abs(h.U[h.feasible] - s.U[h.feasible]).max() <= TOL["vs_daqp", "float64"]
    qp = mpc2nn.condense(soft.replace(soft_state_penalty=(3.0, 0.0)))
    assert np.ndim(qp.slack_shift) == 1  # state and output slacks with different shifts


def test_terminal_weight_is_the_dare_of_the_whole_stage_cost():
    """P = "dare" solves the Riccati equation of Q + C'WC, R + D'WD with the cross term C'WD (scipy, directly)."""
    C, D, W = np.array([[1.0, 0.5]]), np.array([[0.3]]), np.array([[2.0]])
    prob = di().replace(C=C, D=D, output_weight=W)
    P = scipy.linalg.solve_discrete_are(prob.A, prob.B, prob.Q + C.T @ W @ C, prob.R + D.T @ W @ D, s=C.T @ W @ D)
    assert np.abs(prob.P - P).max() <= 1e-9 * np.abs(P).max()
    # unconstrained small states: the MPC's first move is the LQR law of that cost (backward recursion)
    K = np.linalg.solve(prob.R + D.T @ W @ D + prob.B.T @ P @ prob.B, prob.B.T @ P @ prob.A + (C.T @ W @ D).T)
    x = np.array([0.2, -0.1])
    assert np.abs(mpc2nn.compile(prob).solve(x).u0[0] + K @ x).max() <= 1e-9


def test_lqr_terminal_set_respects_output_bounds():
    prob = di().replace(horizon=5, C=[[1.0, 1.0]], y_min=[-1.0], y_max=[1.0], terminal_set="lqr")
    inv = mpc2nn.problem.lqr_invariant_set(prob)
    rng = np.random.default_rng(0)
    X = rng.uniform(-3, 3, (400, 2))
    inside = X[inv.contains(X)]
    AK = prob.A - prob.B @ inv.K
    for _ in range(30):  # invariant and within the output bound under u = -Kx
        assert np.all(np.abs(inside @ prob.C.T) <= 1.0 + 1e-9)
        inside = inside @ AK.T


@settings(max_examples=8, deadline=None, derandomize=True)
@given(random_problems(max_N=5), st.booleans(), st.booleans(), st.booleans())
def test_random_problems_with_random_outputs_match_the_reference(case, feed, weight, soft):
    prob, seed = case
    rng = np.random.default_rng(seed)
    n_y = int(rng.integers(1, 3))
    kw = dict(C=rng.normal(size=(n_y, prob.n_x)), y_min=-rng.uniform(0.5, 3, n_y), y_max=rng.uniform(0.5, 3, n_y))
    if feed:
        kw["D"] = rng.normal(size=(n_y, prob.n_u))
    if weight:
        L = rng.normal(size=(n_y, n_y))
        kw["output_weight"] = L @ L.T
    if soft:
        kw["soft_output_penalty"] = (0.5, 20.0)
    prob = prob.replace(**kw)
    check_against_reference(prob, rng.uniform(-1, 1, (6, prob.n_x)), None, None, None, n_osqp=2)


def test_quadcopter_altitude_and_position_outputs():
    q = mpc2nn.systems.quadcopter()
    C = np.zeros((2, 12))
    C[0, 5], C[1, 3] = 1.0, 1.0  # altitude z and position x
    prob = q.replace(C=C, output_weight=np.diag([20.0, 5.0]), y_min=[-0.8, -0.6], y_max=[0.8, 0.6])
    X = mpc2nn.sample_states(prob, 6, seed=4)
    check_against_reference(prob, X, None, None, None, n_osqp=1)


def test_output_tracking_in_closed_loop_reaches_the_output_reference():
    prob = di().replace(C=[[1.0, 0.0]], output_weight=[[10.0]], tracking=True, y_min=[-4.0], y_max=[4.0],
                        sample_box=([-4.0, -1.0], [4.0, 1.0]))
    target = mpc2nn.steady_state_target(prob, [2.5])  # C from the problem
    assert target.unique and target.admissible
    net = mpc2nn.compile(prob)
    tr = mpc2nn.simulate(prob, net, [-2.0, 0.0], 40, reference=target.x, input_reference=target.u,
                         output_reference=[2.5])
    mpc = mpc2nn.simulate(prob, prob, [-2.0, 0.0], 40, reference=target.x, input_reference=target.u,
                          output_reference=[2.5])
    assert tr.stopped_at is None and abs(tr.outputs[-1, 0] - 2.5) < 1e-3
    assert np.abs(tr.outputs - tr.states[:-1] @ prob.C.T).max() == 0.0
    assert np.abs(tr.states - mpc.states).max() <= TOL["vs_osqp", "float64"] * 10
    assert tr.output_violation.max() <= 1e-9
    with pytest.raises(mpc2nn.Mpc2nnError, match="output_reference"):
        mpc2nn.simulate(prob, net, [-2.0, 0.0], 3, reference=target.x, input_reference=target.u)


def test_steady_state_target_with_feedthrough():
    prob = di().replace(C=[[1.0, 0.0]], D=[[2.0]])
    t = mpc2nn.steady_state_target(prob, [1.5])
    assert np.allclose(prob.A @ t.x + prob.B @ t.u, t.x) and np.isclose(prob.C @ t.x + prob.D @ t.u, 1.5)


def test_explicit_networks_and_onnx_export_on_an_output_tracking_problem(tmp_path):
    torch = pytest.importorskip("torch")  # noqa: F841
    prob = CASES["tracking"]()
    net = mpc2nn.compile(prob)
    theta = mpc2nn.sampling.sample_parameters(prob, 60, seed=5)
    exact = net.solve(theta).U
    hyb = mpc2nn.unravel(net, method="hybrid", depth=20, rho=1.0, relax=1.6)
    assert np.abs(hyb.solve(theta).U - exact).max() <= EXACT
    ex = mpc2nn.unravel(net, depth=40, rho=1.0, relax=1.6)  # fixed options: no tuning run
    err = np.abs(ex.evaluate(theta[30:]) - exact[30:]).max(axis=1)
    assert np.all(ex.error_bound(theta[30:]).bound >= err)
    pytest.importorskip("onnxruntime")
    import onnxruntime

    from mpc2nn.export import to_onnx

    path = to_onnx(ex, tmp_path / "y.onnx", output="sequence")
    u = onnxruntime.InferenceSession(str(path)).run(None, {"x": theta[30:]})[0]
    assert u.shape == (30, prob.horizon) and np.abs(u - ex.evaluate(theta[30:])).max() <= 1e-12


def test_converse_reads_output_bounds_back():
    pytest.importorskip("cvxpy")
    prob = di().replace(horizon=5, C=[[1.0, 0.5]], output_weight=[[4.0]], y_min=[-3.0], y_max=[3.0])
    rec = mpc2nn.converse.to_mpc(mpc2nn.compile(prob), prob.A, prob.B, prob.horizon)
    assert rec.reproduces and rec.problem is not None
    assert np.allclose(rec.problem.C, prob.C) and np.allclose(rec.problem.y_max, [3.0])
    assert np.allclose(rec.problem.y_min, [-3.0])


def test_outputs_round_trip_through_files_and_toml(tmp_path):
    from mpc2nn.io import problem_from_toml

    prob = CASES["soft outputs and states"]().replace(dt=1.0, state_names=["position", "velocity"],
                                                     state_units=["m", "m/s"], output_names=["sum"])
    for obj in (prob, mpc2nn.compile(prob)):
        back = mpc2nn.load(mpc2nn.save(obj, tmp_path / "p.mpc2nn"))
        assert mpc2nn.problem_hash(back) == mpc2nn.problem_hash(obj)
    back = mpc2nn.load(mpc2nn.save(prob, tmp_path / "p.mpc2nn"))
    assert back.state_units == ("m", "m/s") and back.soft_output_penalty == (2.0, 10.0) and back.dt == 1.0
    doc = {"A": [[1.0, 1.0], [0.0, 1.0]], "B": [[0.5], [1.0]], "Q": [[1.0, 0.0], [0.0, 1.0]], "R": [[0.1]],
           "horizon": 20, "C": [[1.0, 1.0]], "y_min": [-2.0], "y_max": [2.0], "soft_output_penalty": [2.0, 10.0],
           "u_min": [-1.0], "u_max": [1.0], "x_min": [-5.0, -2.0], "x_max": [5.0, 2.0],
           "soft_state_penalty": [1.0, 1e3], "dt": 1.0, "output_names": ["sum"]}
    from_file = problem_from_toml(doc, default_name="double_integrator")
    assert mpc2nn.problem_hash(from_file) == mpc2nn.problem_hash(prob) and from_file.output_names == ("sum",)


def test_bad_output_fields_are_refused_with_the_reason():
    with pytest.raises(mpc2nn.ProblemDefinitionError, match="without an output matrix C"):
        di().replace(y_max=[1.0])
    with pytest.raises(mpc2nn.ShapeError, match=r"D: expected shape \(n_y, n_u\) = \(1, 1\)"):
        di().replace(C=[[1.0, 0.0]], D=[[1.0, 2.0]])
    with pytest.raises(mpc2nn.ProblemDefinitionError, match="output_names: expected n_y = 1 strings"):
        di().replace(C=[[1.0, 0.0]], output_names=["a", "b"])
    with pytest.raises(mpc2nn.Mpc2nnError, match="y_ref"):
        mpc2nn.condense(CASES["tracking"]()).parameters(np.zeros(2), x_ref=np.zeros(2), u_ref=np.zeros(1))
