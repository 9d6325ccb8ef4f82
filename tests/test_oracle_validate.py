"""Reference solvers and validation reports."""
import numpy as np
import pytest
import scipy.optimize
from tolerances import tol

import mpc2nn


def test_osqp_is_quiet(capfd):
    prob = mpc2nn.systems.drummond2024()
    mpc2nn.solve_osqp(prob, mpc2nn.sample_states(prob, 20))
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_osqp_reports_infeasible_states_per_sample():
    prob = mpc2nn.systems.double_integrator()
    X = np.vstack([mpc2nn.sample_states(prob, 3, seed=1), mpc2nn.sample_states(prob, 3, seed=1, feasible=False),
                   [[np.nan, 0.0]]])
    ref = mpc2nn.solve_osqp(prob, X)
    assert list(ref.feasible) == [True] * 3 + [False] * 4
    assert list(ref.status[3:]) == ["infeasible"] * 3 + ["invalid"]
    assert np.isnan(ref.U[3:]).all()


def test_osqp_settings_are_checked():
    with pytest.raises(ValueError, match=r"unknown OSQP settings \['eps_typo'\]"):
        mpc2nn.solve_osqp(mpc2nn.systems.drummond2024(), [0.0, 0.0], settings={"eps_typo": 1})


def test_sample_states_is_reproducible_and_filters():
    prob = mpc2nn.systems.double_integrator()
    a = mpc2nn.sample_states(prob, 30, seed=3)
    b = mpc2nn.sample_states(prob, 30, seed=3)
    assert np.array_equal(a, b)
    # feasibility judged by an LP (HiGHS: is there a U with G U <= w + E x?), not by the solver that filtered
    qp = mpc2nn.condense(prob)

    def lp_feasible(x):
        res = scipy.optimize.linprog(np.zeros(qp.n_z), A_ub=qp.G, b_ub=qp.w + qp.E @ x,
                                     bounds=[(None, None)] * qp.n_z, method="highs")
        assert res.status in (0, 2), res.message
        return res.status == 0

    assert all(lp_feasible(x) for x in a)
    bad = mpc2nn.sample_states(prob, 30, seed=3, feasible=False)
    assert not any(lp_feasible(x) for x in bad)
    lo, hi = prob.sample_box
    every = mpc2nn.sample_states(prob, 30, feasible=None)
    assert np.all((every >= lo) & (every <= hi))


def test_sample_states_errors():
    prob = mpc2nn.systems.double_integrator()
    with pytest.raises(mpc2nn.ProblemDefinitionError, match=r"box: lo\[0\] = 1 > hi\[0\] = -1"):
        mpc2nn.sample_states(prob, 3, box=([1, 0], [-1, 1]))
    with pytest.raises(mpc2nn.ProblemDefinitionError, match="found only 0 feasible states"):
        mpc2nn.sample_states(prob, 3, box=([100, 100], [101, 101]), max_draws=500)
    p = mpc2nn.MPCProblem([[1.0]], [[1.0]], [[1.0]], [[1.0]], 2)
    with pytest.raises(mpc2nn.ProblemDefinitionError, match="has no sample_box; pass box="):
        mpc2nn.sample_states(p, 3)


def test_validate_callable_and_first_input_controllers():
    prob = mpc2nn.systems.drummond2024()
    net = mpc2nn.compile(prob)
    X = mpc2nn.sample_states(prob, 40)

    def lqr_like(X):  # ignores the constraints: must show large errors and violations
        return net.qp.unconstrained(X)

    rep = mpc2nn.validate(lqr_like, prob, X)
    assert rep.compared == "sequence" and rep.max_error > 1.0
    assert np.nanmax(rep.violation) > 1.0 and rep.kkt is None
    first = mpc2nn.validate(lambda X: net.solve(X).u0, prob, X, reference="daqp")
    assert first.compared == "first input" and first.max_error <= tol("vs_daqp")
    assert "first input" in first.summary()
    with pytest.raises(mpc2nn.ShapeError, match=r"controller output: expected shape \(B, N·n_u\) = \(40, 10\)"):
        mpc2nn.validate(lambda X: X, prob, X)
    with pytest.raises(mpc2nn.ProblemDefinitionError, match="reference: expected one of 'osqp', 'daqp'"):
        mpc2nn.validate(net, prob, X, reference="cvx")


def test_validate_reports_feasibility_agreement_per_sample():
    prob = mpc2nn.systems.double_integrator()
    X = np.vstack([mpc2nn.sample_states(prob, 10), mpc2nn.sample_states(prob, 5, feasible=False)])
    rep = mpc2nn.validate(mpc2nn.compile(prob), prob, X)
    assert rep.feasibility_agrees.all()
    assert np.isnan(rep.error[10:]).all() and np.isfinite(rep.error[:10]).all()
    assert rep.max_error <= tol("vs_osqp")


def test_osqp_is_quiet_even_when_python_stdout_is_replaced(capfd, monkeypatch):
    import ctypes
    import io
    import sys

    monkeypatch.setattr(sys, "stdout", io.StringIO())
    # the condensed form at the origin has no active row: OSQP's C code then prints "Polishing not needed"
    mpc2nn.solve_osqp(mpc2nn.systems.drummond2024("published"), np.zeros((3, 2)))
    ctypes.CDLL(None).fflush(None)  # C stdio buffers when fd 1 is a pipe: flush what it holds now
    assert sys.stdout.getvalue() == ""
    out, _ = capfd.readouterr()
    assert "Polishing" not in out


def test_violation_is_the_distance_to_the_violated_half_space():
    # double integrator, |u_k| <= 1: moving u_0 to 1 + 0.3 is 0.3 from the half-space u_0 <= 1,
    # whatever scale the condensed row G_i has (the row of u_0 <= 1 is e_0 times any factor)
    prob = mpc2nn.systems.double_integrator()
    X = np.array([[0.0, 0.0]])
    U_star = mpc2nn.solve_daqp(prob, X).U

    def controller(X):
        U = U_star.copy()
        U[:, 0] = 1.3
        return U

    report = mpc2nn.validate(controller, prob, X, reference="daqp")
    assert report.violation[0] == pytest.approx(0.3, abs=1e-12)
    assert report.error[0] >= report.violation[0]  # a feasible reference is at least as far away


def test_report_data_fails_on_a_violation_beyond_the_tolerance():
    from mpc2nn.cli._progress import report_data

    prob = mpc2nn.systems.double_integrator()
    X = mpc2nn.sample_states(prob, 4, seed=3)
    report = mpc2nn.validate(mpc2nn.compile(prob), prob, X, reference="daqp")
    assert report_data(report, 1e-6)["passed"]
    # the same agreement but a controller that violates a row by 1e-3 (a report of a wrong reference)
    violating = mpc2nn.evaluation.ValidationReport(**{**report.__dict__, "violation": np.full(4, 1e-3)})
    data = report_data(violating, 1e-6)
    assert data["max_violation"] == pytest.approx(1e-3) and not data["passed"]
