"""Bad inputs end in a named mpc2nn error, never a raw numpy/Python one or a silent cast (issue 13).

Complex arrays were cast to real (numpy warned once, then not); ``from_statespace(dt="0.1")``,
``constraints=5``, ``sample_states(seed=-1)``, ``save(dict)``, ``simulate(steps=0)`` and plant /
controller / disturbance size mismatches raised raw errors.
"""
import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

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


def test_complex_steps_are_refused_by_every_controller():
    """The controllers' lean θ (parts side by side) refuses complex parts as the general path does."""
    rates = DI.replace(du_min=[-0.5], du_max=[0.5])
    net = mpc2nn.compile(rates)
    ctrls = [mpc2nn.MPCController(rates), mpc2nn.ImplicitController(net),
             mpc2nn.ExplicitController(mpc2nn.unravel(net, depth=3))]
    for ctrl in ctrls:
        with pytest.raises(exc.ComplexValueError, match="x: expected real numbers"):
            ctrl(np.array([1.0 + 1e-9j, 0.0]), u_prev=np.array([0.0]))
        with pytest.raises(exc.ComplexValueError, match="u_prev: expected real numbers"):
            ctrl(np.array([1.0, 0.0]), u_prev=np.array([0.5j]))
        assert np.isfinite(ctrl(np.array([1.0, 0.0]), u_prev=np.array([0.0])).u).all()


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


# --- a fuzzer: junk in any argument ends in a named error ------------------------------------------------
JUNK = st.one_of(st.none(), st.text(max_size=3), st.integers(-3, 3), st.floats(allow_nan=True, allow_infinity=True),
                 st.booleans(), st.lists(st.floats(allow_nan=True), max_size=3),
                 st.lists(st.lists(st.floats(-2, 2), min_size=1, max_size=3), min_size=1, max_size=3),
                 st.sampled_from([np.eye(2), np.ones((2, 3)), {}, object(), [[1, 2], [3]], np.array(["a", "b"]),
                                  ((1.0,), (2.0,)), 1j, np.zeros((0, 2)), np.full(2, np.nan), 10**30, -1.5,
                                  lambda *a: None]))
_NET = mpc2nn.compile(DI)
_QP = _NET.qp
#: (function of keyword arguments, good keyword arguments): one argument at a time is replaced by junk.
CALLS = {
    "MPCProblem": (lambda **k: mpc2nn.MPCProblem(**k),
                   dict(A=A, B=B, Q=np.eye(2), R=[[0.1]], horizon=3, u_min=[-1.0], u_max=[1.0], P=None, x_min=None,
                        x_max=None, constraints=(), terminal_constraint=None, terminal_set=None,
                        soft_state_penalty=None, du_min=None, du_max=None, du_weight=None, tracking=False,
                        move_blocking=None, name="p", sample_box=None)),
    "solve": (_NET.solve, dict(X=np.zeros(2), y0=None)),
    "compile": (lambda **k: mpc2nn.compile(DI, **k), dict(alpha=None)),
    "well_posedness": (lambda **k: _NET.well_posedness(**k), dict(box=None)),
    "sample_states": (lambda **k: mpc2nn.sample_states(DI, **k), dict(n=3, box=None, seed=0, feasible=True,
                                                                      max_draws=None)),
    "sample_parameters": (lambda **k: mpc2nn.sampling.sample_parameters(DI, **k), dict(n=3, box=None, seed=0,
                                                                                       feasible=True)),
    "simulate": (lambda **k: mpc2nn.simulate(DI, _NET, **k), dict(x0=[1.0, 0.0], steps=2, disturbance=None,
                                                                  reference=None, u_prev=None, dt=None)),
    "validate": (lambda **k: mpc2nn.validate(_NET, DI, **k), dict(X=np.zeros((1, 2)), reference="daqp")),
    "solve_osqp": (lambda **k: mpc2nn.solve_osqp(DI, **k), dict(X=np.zeros(2), form="auto", settings=None)),
    "solve_daqp": (lambda **k: mpc2nn.solve_daqp(DI, **k), dict(X=np.zeros(2))),
    "save": (lambda **k: mpc2nn.save(DI, **k), dict(path="/nonexistent-dir/x.mpc2nn")),
    "load": (lambda **k: mpc2nn.load(**k), dict(path="/nonexistent-dir/x.mpc2nn", expect_problem=None)),
    "parameters": (lambda **k: _QP.parameters(**k), dict(x=np.zeros(2))),
    "steady_state_target": (lambda **k: mpc2nn.steady_state_target(DI, **k), dict(y_ref=[1.0], C=[[1.0, 0.0]])),
    "CondensedQP": (lambda **k: mpc2nn.CondensedQP(**{**dict(H=_QP.H, F=_QP.F, G=_QP.G, w=_QP.w, E=_QP.E), **k}),
                    dict(n_u=1, H=_QP.H, sample_box=None, parameter_sizes=(), output_map=None, n_slack=0)),
    "with_row_scaling": (lambda **k: _QP.with_row_scaling(**k), dict(scale=1.0)),
    "with_rows": (lambda **k: _QP.with_rows(**k), dict(rows=[0, 1])),
    "Polytope": (lambda **k: mpc2nn.Polytope(**k), dict(C=np.eye(2), d=np.ones(2))),
    "StageConstraint": (lambda **k: mpc2nn.StageConstraint(**k), dict(C_x=np.eye(2), C_u=np.ones((2, 1)),
                                                                      d=np.ones(2))),
    "OSQPSession": (lambda **k: mpc2nn.OSQPSession(DI, **k).solve(np.zeros(2)), dict(form="auto", settings=None)),
}


def check_junk(name, data):
    import os
    import tempfile

    fn, kw = CALLS[name]
    kw = dict(kw)
    arg = data.draw(st.sampled_from(sorted(kw)))
    kw[arg] = data.draw(JUNK)
    here = os.getcwd()
    with tempfile.TemporaryDirectory() as scratch:
        os.chdir(scratch)  # a junk string is a valid relative path: save() writes it here, not into the checkout
        try:
            fn(**kw)
        except (exc.Mpc2nnError, OSError):
            pass  # a named error (or the file system's)
        finally:
            os.chdir(here)


@settings(max_examples=300, deadline=None, derandomize=True, phases=[Phase.explicit, Phase.generate],
          suppress_health_check=list(HealthCheck))
@given(st.sampled_from(sorted(CALLS)), st.data())
def test_junk_arguments_end_in_named_errors(name, data):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_junk(name, data)


@pytest.mark.slow
@settings(max_examples=5000, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.sampled_from(sorted(CALLS)), st.data())
def test_junk_arguments_end_in_named_errors_deeply(name, data):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_junk(name, data)


@pytest.mark.parametrize("field, value", [
    ("sample_box", False), ("soft_state_penalty", [[1.0], [2.0, 3.0]]), ("terminal_set", np.eye(2)),
])
def test_what_the_junk_fuzzer_found_in_mpc_problem(field, value):
    with pytest.raises(exc.ProblemDefinitionError, match=field):
        _problem(**{field: value})


def test_what_the_junk_fuzzer_found_elsewhere(tmp_path):
    with pytest.raises(exc.ProblemDefinitionError, match="n: 1000000000000000000000000000000 is more"):
        mpc2nn.sample_states(DI, 10**30)
    with pytest.raises(exc.ProblemDefinitionError, match="steps"):
        mpc2nn.simulate(DI, lambda x: np.zeros(1), [0.0, 0.0], 10**30)
    with pytest.raises(exc.ProblemDefinitionError, match="feasible: expected True, False or None"):
        mpc2nn.sample_states(DI, 3, feasible=np.ones(2))
    with pytest.raises(exc.ProblemDefinitionError, match="reference: expected"):
        mpc2nn.validate(_NET, DI, np.zeros((1, 2)), reference=np.eye(2))
    with pytest.raises(exc.ProblemDefinitionError, match="settings: expected a dict"):
        mpc2nn.solve_osqp(DI, np.zeros(2), settings=5)
    with pytest.raises(exc.ShapeError, match="rows: expected indices"):
        _QP.with_rows([[1, 2], [3]])
    with pytest.raises(exc.ShapeError, match="rows: expected indices"):
        _QP.with_rows([0, 10**6])
    with pytest.raises(exc.ShapeError, match="scale: expected a number or shape"):
        _QP.with_row_scaling(np.eye(2))
    with pytest.raises(exc.ShapeError, match="H: expected a square matrix"):
        mpc2nn.CondensedQP(H=np.ones((2, 3)), F=np.zeros((2, 1)), G=np.eye(2), w=np.ones(2), E=np.zeros((2, 1)),
                           n_u=1)
    with pytest.raises(exc.ShapeError, match="parameter_sizes: expected pairs"):
        mpc2nn.CondensedQP(H=np.eye(2), F=np.zeros((2, 1)), G=np.eye(2), w=np.ones(2), E=np.zeros((2, 1)), n_u=1,
                           parameter_sizes=[1.0, 2.0])
    with pytest.raises(exc.UnsupportedObjectError, match="path: expected a file path"):
        mpc2nn.save(DI, 42)
    with pytest.raises(exc.UnsupportedObjectError, match="path: expected a file path"):
        mpc2nn.load(None)
    with pytest.raises(exc.ShapeError, match="StageConstraint.C_u"):
        mpc2nn.StageConstraint(np.eye(2), [[1, 2], [3]], np.ones(2))
