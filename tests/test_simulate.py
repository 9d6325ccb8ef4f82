"""Closed-loop simulation and the Controller protocol."""
import numpy as np
import pytest
from tolerances import tol

import mpc2nn
from mpc2nn import plotting
from mpc2nn.status import Status


def test_implicit_network_and_osqp_mpc_give_the_same_closed_loop():
    prob = mpc2nn.systems.quadcopter()
    ref = mpc2nn.systems.QUADCOPTER_X_REF
    x0 = np.zeros(12)  # hover at yaw 0, reference yaw x_3 = 1 rad
    net_tr = mpc2nn.simulate(prob, mpc2nn.compile(prob), x0, 40, reference=ref)
    mpc_tr = mpc2nn.simulate(prob, prob, x0, 40, reference=ref)
    assert np.abs(net_tr.states - mpc_tr.states).max() < tol("vs_osqp")
    assert net_tr.cost == pytest.approx(mpc_tr.cost, rel=1e-9)  # the two runs' costs (seen 1.3e-15 relative)
    # constraints hold in closed loop and the yaw reaches the reference (to 1e-3 rad in 40 steps: a physical claim)
    assert net_tr.state_violation.max() <= tol("feasibility") and net_tr.input_violation.max() <= tol("feasibility")
    assert abs(net_tr.states[-1, 2] - 1.0) < 1e-3
    assert set(net_tr.status) == {"solved"} and net_tr.stopped_at is None


def test_closed_loop_cost_matches_a_hand_computed_sum():
    prob = mpc2nn.systems.drummond2024()
    tr = mpc2nn.simulate(prob, mpc2nn.compile(prob), [-200.0, -200.0], 10)
    x, u = tr.states[:-1], tr.inputs
    by_hand = sum(x[k] @ prob.Q @ x[k] + u[k] @ prob.R @ u[k] for k in range(10))
    assert tr.cost == pytest.approx(by_hand, rel=tol("roundoff"))


def test_mpc_cost_is_not_beaten_by_a_saturated_lqr():
    """MPC minimises the predicted cost; over a long closed loop it should not lose to clipped LQR here."""
    prob = mpc2nn.systems.double_integrator()
    qp = mpc2nn.condense(prob)
    lqr = lambda x: np.clip(qp.unconstrained(x)[0, :1], -1, 1)  # noqa: E731
    # from this x0 the clipped LQR saturates differently from MPC (costs 29.21 and 29.28): the two laws differ
    x0 = [-4.0, 2.0]
    mpc = mpc2nn.simulate(prob, mpc2nn.compile(prob), x0, 40)
    sat = mpc2nn.simulate(prob, lqr, x0, 40, problem=prob)
    assert np.abs(mpc.inputs - sat.inputs).max() > tol("visible")  # the comparison is between different laws
    assert mpc.cost < sat.cost
    assert mpc.state_violation.max() <= tol("feasibility")


def test_infeasible_state_stops_the_run_and_says_so():
    prob = mpc2nn.systems.double_integrator()
    x0 = mpc2nn.sample_states(prob, 1, seed=3, feasible=False)[0]
    tr = mpc2nn.simulate(prob, mpc2nn.compile(prob), x0, 5)
    assert tr.stopped_at == 0 and tr.status[0] == Status.INFEASIBLE
    assert list(tr.status[1:]) == ["not run"] * 4
    assert np.isnan(tr.states[1:]).all()


def test_disturbance_and_warm_start():
    prob = mpc2nn.systems.inverted_pendulum()
    net = mpc2nn.compile(prob)
    rng = np.random.default_rng(0)
    w = rng.normal(scale=1e-3, size=(30, 4))  # a deliberate disturbance, 1e-3 per state and step
    warm = mpc2nn.simulate(prob, mpc2nn.ImplicitController(net, warm_start=True), [0.2, 0, 0.05, 0], 30,
                           disturbance=w)
    cold = mpc2nn.simulate(prob, mpc2nn.ImplicitController(net, warm_start=False), [0.2, 0, 0.05, 0], 30,
                           disturbance=lambda k: w[k])
    assert np.abs(warm.states - cold.states).max() < tol("same_math")
    undisturbed = mpc2nn.simulate(prob, net, [0.2, 0, 0.05, 0], 30)
    assert np.abs(undisturbed.states - warm.states).max() > 1e-4  # the disturbance shows (seen 0.12)


def test_continuous_statespace_plant_is_simulated_exactly():
    control = pytest.importorskip("control")
    prob = mpc2nn.systems.inverted_pendulum()
    Ac = np.array([[0.0, 1, 0, 0], [0, -10, 9.81, 0], [0, 0, 0, 1], [0, -20, 39.24, 0]])
    Bc = np.array([[0.0], [100], [0], [200]])
    plant = control.ss(Ac, Bc, np.eye(4), np.zeros((4, 1)))
    with pytest.raises(mpc2nn.ProblemDefinitionError, match="dt: the plant is continuous-time"):
        mpc2nn.simulate(plant, prob, [0.1, 0, 0, 0], 3)
    a = mpc2nn.simulate(plant, mpc2nn.compile(prob), [0.1, 0, 0.05, 0], 20, dt=0.01)
    b = mpc2nn.simulate(prob, mpc2nn.compile(prob), [0.1, 0, 0.05, 0], 20)
    assert np.abs(a.states - b.states).max() < tol("same_math")


def test_input_errors():
    prob = mpc2nn.systems.drummond2024()
    with pytest.raises(mpc2nn.ShapeError, match=r"x0: expected shape \(n_x,\) = \(2,\), got \(3,\)"):
        mpc2nn.simulate(prob, prob, [0, 0, 0], 3)
    with pytest.raises(mpc2nn.ShapeError, match=r"disturbance: expected shape \(T, n_x\) = \(3, 2\)"):
        mpc2nn.simulate(prob, prob, [0, 0], 3, disturbance=np.zeros((2, 2)))
    with pytest.raises(mpc2nn.ProblemDefinitionError, match="plant: expected an MPCProblem"):
        mpc2nn.simulate("plant", prob, [0, 0], 3)
    with pytest.raises(mpc2nn.ProblemDefinitionError, match="controller: expected"):
        mpc2nn.simulate(prob, 42, [0, 0], 3)


def test_plots_return_axes_with_content(tmp_path):
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    prob = mpc2nn.systems.double_integrator()
    net = mpc2nn.compile(prob)
    tr = {"net": mpc2nn.simulate(prob, net, [-4, 1], 10), "mpc": mpc2nn.simulate(prob, prob, [-4, 1], 10)}
    ax = plotting.plot_states(tr, bounds=prob)
    assert len(ax.lines) == 4 + 4  # 2 states x 2 runs, 4 finite bounds
    ax = plotting.plot_inputs(tr, bounds=prob)
    assert len(ax.lines) == 2 + 2
    ax = plotting.plot_residuals({"step 1": np.logspace(0, -6, 50)}, threshold=1e-3)  # a line to draw, no check
    assert ax.get_yscale() == "log"
    ax = plotting.plot_error_vs_depth([1, 10, 100], {"plain": [1, 0.1, 0.01]})
    assert ax.get_xscale() == "log"
    ax = plotting.plot_error_map(net, prob, resolution=12)
    data = ax.collections[0].get_array()
    assert data.mask.any() and not data.mask.all()  # infeasible corners masked, feasible band drawn
    ax.figure.savefig(tmp_path / "map.png")
