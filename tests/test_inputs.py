"""Bad inputs end in a named mpc2nn error, never a raw numpy/Python one or a silent cast (issue 13).

Complex arrays were cast to real (numpy warned once, then not); ``from_statespace(dt="0.1")``,
``constraints=5``, ``sample_states(seed=-1)``, ``save(dict)``, ``simulate(steps=0)`` and plant /
controller / disturbance size mismatches raised raw errors.
"""
import numpy as np
import pytest

import mpc2nn
from mpc2nn import exceptions as exc
from mpc2nn.converse import to_mpc, to_qp

DI = mpc2nn.systems.double_integrator()
A, B = DI.A, DI.B


def _problem(**kw):
    base = dict(A=A, B=B, Q=np.eye(2), R=[[0.1]], horizon=4, u_min=[-1.0], u_max=[1.0])
    base.update(kw)
    return mpc2nn.MPCProblem(**base)


@pytest.mark.parametrize("field, value", [
    ("A", A + 1e-3j), ("B", B * (1 + 0j)), ("Q", np.eye(2) + 0j), ("R", [[0.1 + 0.1j]]),
    ("u_min", [-1.0 + 0j]), ("x_max", np.array([5.0, 2.0j])), ("P", np.eye(2, dtype=complex)),
    ("sample_box", (np.zeros(2, complex), np.ones(2))),
])
def test_complex_problem_data_are_refused(field, value):
    with pytest.raises(exc.ComplexValueError, match=f"{field.split('_box')[0]}.*complex"):
        _problem(**{field: value})


def test_complex_states_are_refused_by_every_solver():
    net = mpc2nn.compile(DI)
    X = np.array([[1.0 + 1e-9j, 0.0]])
    for solve in (net.solve, lambda X: mpc2nn.solve_daqp(DI, X), lambda X: mpc2nn.solve_osqp(DI, X),
                  lambda X: mpc2nn.validate(net, DI, X), lambda X: mpc2nn.condense(DI).parameters(X)):
        with pytest.raises(exc.ComplexValueError, match="(X|x): expected real numbers"):
            solve(X)
    rates = DI.replace(du_min=[-0.5], du_max=[0.5])
    with pytest.raises(exc.ComplexValueError, match="u_prev"):
        mpc2nn.condense(rates).parameters([1.0, 0.0], u_prev=[0.5j])


def test_complex_data_are_refused_by_the_converse_maps():
    net = mpc2nn.compile(mpc2nn.systems.drummond2024())
    with pytest.raises(exc.ComplexValueError, match="A: expected real"):
        to_mpc(net, net.qp.problem.A + 0j, net.qp.problem.B, 10)
    with pytest.raises(exc.ComplexValueError, match="X: expected real"):
        to_mpc(net, net.qp.problem.A, net.qp.problem.B, 10, X=np.ones((2, 2)) * 1j)
    with pytest.raises(exc.ComplexValueError, match="W: expected real"):
        to_qp(mpc2nn.implicit.ImplicitWeights(W=net.W + 0j, Y=net.Y, b=net.b, W_f=net.W_f, Y_f=net.Y_f))


def test_complex_data_are_refused_by_the_closed_loop():
    net = mpc2nn.compile(DI)
    with pytest.raises(exc.ComplexValueError, match="x0"):
        mpc2nn.simulate(DI, net, [1.0 + 0j, 0.0], 3)
    with pytest.raises(exc.ComplexValueError, match="controller output"):
        mpc2nn.simulate(DI, lambda x: np.array([0.1j]), [1.0, 0.0], 3)
    with pytest.raises(exc.ComplexValueError, match="disturbance"):
        mpc2nn.simulate(DI, net, [1.0, 0.0], 3, disturbance=np.zeros((3, 2)) * 1j)


def test_sampling_time_must_be_a_number():
    control = pytest.importorskip("control")
    sys = control.ss([[0.0, 1.0], [0.0, 0.0]], [[0.0], [1.0]], np.eye(2), 0)
    for dt in ("0.1", True, -1.0, float("nan"), [0.1]):
        with pytest.raises(exc.ProblemDefinitionError, match="dt: expected a sampling time"):
            mpc2nn.MPCProblem.from_statespace(sys, np.eye(2), [[1.0]], 5, dt=dt)
    sysd = control.ss(np.eye(2), [[0.0], [1.0]], np.eye(2), 0, dt=0.1)
    with pytest.raises(exc.ProblemDefinitionError, match="dt: expected a sampling time"):
        mpc2nn.MPCProblem.from_statespace(sysd, np.eye(2), [[1.0]], 5, dt="0.1")


@pytest.mark.parametrize("value", [5, "C", mpc2nn.StageConstraint([[1.0, 0.0]], [[0.0]], [1.0])])
def test_constraints_must_be_a_sequence(value):
    with pytest.raises(exc.ProblemDefinitionError, match="constraints: expected a sequence"):
        _problem(constraints=value)


@pytest.mark.parametrize("seed", [-1, 2.5, "1", True])
def test_seeds_are_checked(seed):
    with pytest.raises(exc.ProblemDefinitionError, match="seed: expected an integer >= 0"):
        mpc2nn.sample_states(DI, 3, seed=seed)
    with pytest.raises(exc.ProblemDefinitionError, match="seed: expected an integer >= 0"):
        mpc2nn.sampling.sample_parameters(DI, 3, seed=seed)
    assert mpc2nn.sample_states(DI, 2, seed=np.random.default_rng(0)).shape == (2, 2)


@pytest.mark.parametrize("obj", [{}, None, np.eye(2), "net.mpc2nn"])
def test_save_of_something_else_is_a_named_type_error(obj, tmp_path):
    with pytest.raises(exc.UnsupportedObjectError, match="save: expected an MPCProblem"):
        mpc2nn.save(obj, tmp_path / "x.mpc2nn")
    assert issubclass(exc.UnsupportedObjectError, TypeError)


def test_simulate_zero_steps():
    traj = mpc2nn.simulate(DI, mpc2nn.compile(DI), [1.0, 0.0], 0)
    assert traj.states.shape == (1, 2) and traj.inputs.shape == (0, 1)
    assert traj.cost == 0.0 and traj.stopped_at is None
    assert traj.state_violation.shape == (1,) and traj.input_violation.shape == (0,)
    # a function controller and an (A, B) plant: nothing known about n_u but the plant's B
    traj = mpc2nn.simulate((A, B), lambda x: np.zeros(1), [1.0, 0.0], 0)
    assert traj.inputs.shape == (0, 1) and traj.cost is None


def test_simulate_size_mismatches_are_named():
    net = mpc2nn.compile(DI)
    with pytest.raises(exc.ShapeError, match="the plant has states n_x = 3, the controller's problem 2"):
        mpc2nn.simulate((np.eye(3), np.ones((3, 1))), net, [1.0, 0.0, 0.0], 3)
    with pytest.raises(exc.ShapeError, match="the plant has inputs n_u = 2, the controller's problem 1"):
        mpc2nn.simulate((A, np.ones((2, 2))), net, [1.0, 0.0], 3)
    with pytest.raises(exc.ShapeError, match=r"disturbance\(0\): expected shape \(n_x,\) = \(2,\), got \(3,\)"):
        mpc2nn.simulate(DI, net, [1.0, 0.0], 3, disturbance=lambda k: np.zeros(3))
    with pytest.raises(exc.ShapeError, match=r"controller output at step 0: expected shape \(n_u,\) = \(1,\)"):
        mpc2nn.simulate(DI, lambda x: np.zeros(3), [1.0, 0.0], 3)
    with pytest.raises(exc.ShapeError, match=r"plant\(x, u\) at step 0: expected the next state"):
        mpc2nn.simulate(lambda x, u: np.zeros(5), net, [1.0, 0.0], 3)
    with pytest.raises(exc.ShapeError, match=r"plant A: expected shape \(n_x, n_x\), a square matrix"):
        mpc2nn.simulate((np.ones((2, 3)), B), net, [1.0, 0.0], 3)
    # a scalar disturbance is broadcast, as before
    traj = mpc2nn.simulate(DI, net, [1.0, 0.0], 2, disturbance=lambda k: 0.0)
    assert np.isfinite(traj.states).all()


def test_bare_value_errors_are_gone_from_reference_deploy_and_systems():
    with pytest.raises(exc.ProblemDefinitionError, match="form: expected"):
        mpc2nn.OSQPSession(DI, form="dense")
    with pytest.raises(exc.ProblemDefinitionError, match="n_masses"):
        mpc2nn.systems.oscillating_masses(3)
    with pytest.raises(exc.ProblemDefinitionError, match="variant"):
        mpc2nn.systems.drummond2024("other")
