"""cross_check: who is wrong where a controller and its reference disagree.

The wrong answers are made here on purpose (a reference perturbed at known states, an explicit
network cut short), so the verdicts can be checked against what is known to be true.
"""
import dataclasses

import numpy as np
import pytest

import mpc2nn
from mpc2nn.reference import REFERENCE_SOLVERS
from mpc2nn.status import Status, Verdict


@pytest.fixture(scope="module")
def di_report():
    prob = mpc2nn.systems.double_integrator()
    X = mpc2nn.sample_states(prob, 30, seed=2)
    return prob, mpc2nn.validate(mpc2nn.compile(prob), prob, X)


def test_a_reference_made_wrong_is_blamed_at_exactly_those_states(di_report):
    prob, report = di_report
    U_ref, feas_ref, status = report.U_ref.copy(), report.feasible_ref.copy(), report.reference_status.astype(object)
    U_ref[[4, 11]] += 1e-4                                   # off by 1e-4 at two states
    feas_ref[17], U_ref[17], status[17] = False, np.nan, "iteration limit"  # no answer at a third
    error = report.error.copy()
    error[[4, 11]] = np.abs(report.U[[4, 11]] - U_ref[[4, 11]]).max(axis=1)
    error[17] = np.nan
    bad = dataclasses.replace(report, U_ref=U_ref, feasible_ref=feas_ref, reference_status=status, error=error)
    check = mpc2nn.cross_check(bad, prob)
    assert check.indices.tolist() == [4, 11, 17]
    assert check.verdict.tolist() == [Verdict.REFERENCE_WRONG] * 3 and check.controller_right
    assert check.cross_checks == ("daqp", "osqp-tight")
    assert all(np.nanmax(e) < 1e-8 for e in check.cross_errors.values())
    assert np.all(check.kkt < mpc2nn.CERTIFICATE_TOL)
    assert "iteration limit" in check.reason[2] and "state 17: reference wrong" in check.summary()
    detail = check.details()[0]
    assert detail["index"] == 4 and detail["reference_error"] == pytest.approx(1e-4, rel=1e-6)


def test_nothing_to_decide_when_they_agree(di_report):
    prob, report = di_report
    check = mpc2nn.cross_check(report, prob)
    assert check.indices.size == 0 and check.controller_right
    assert "agree within 1e-06 on all 30 states" in check.summary()


def test_a_controller_cut_short_is_blamed():
    pytest.importorskip("torch")
    prob = mpc2nn.systems.drummond2024("corrected")
    net = mpc2nn.compile(prob)
    X = mpc2nn.sample_states(prob, 20, seed=1)
    shallow = mpc2nn.unravel(net, depth=3, rho=1.0, relax=1.6)  # far from converged
    report = mpc2nn.validate(shallow, prob, X)
    check = mpc2nn.cross_check(report, prob)
    exact = net.solve(X)
    truly_off = np.abs(shallow.evaluate(X) - exact.U).max(axis=1) > 1e-6
    assert np.array_equal(np.isin(np.arange(20), check.indices), truly_off)
    assert np.all(check.verdict == Verdict.CONTROLLER_WRONG) and not check.controller_right


def test_undecided_when_the_cross_checks_side_with_the_reference(di_report):
    """With tolerance 0 nothing agrees with anything: no one is blamed."""
    prob, report = di_report
    check = mpc2nn.cross_check(report, prob, tol=0.0)
    assert check.indices.size == 30 and np.all(check.verdict == Verdict.UNDECIDED)


def test_the_registry_names_the_references():
    assert {"osqp", "daqp", "osqp-tight", "exact"} <= set(REFERENCE_SOLVERS)
    assert not REFERENCE_SOLVERS["exact"].independent and REFERENCE_SOLVERS["daqp"].independent
    prob = mpc2nn.systems.drummond2024("corrected")
    X = mpc2nn.sample_states(prob, 5, seed=0)
    tight = REFERENCE_SOLVERS["osqp-tight"].solve(prob, X)
    assert (tight.status == Status.SOLVED).all() and tight.solver == "osqp-tight"
    exact = REFERENCE_SOLVERS["exact"].solve(prob, X)
    assert np.abs(exact.U - tight.U).max() < 1e-9
    with pytest.raises(mpc2nn.ProblemDefinitionError, match="'osqp', 'daqp', 'osqp-tight', 'exact'"):
        mpc2nn.validate(mpc2nn.compile(prob), prob, X, reference="cplex")
