"""A check that compared nothing does not report success (issue 13, finding 7).

``to_mpc`` reported "exact ... feasibility agreement 1.000" when every check state was NaN (nothing
was compared): both sides called every state infeasible, so they "agreed".
"""
import numpy as np
import pytest

import mpc2nn
from mpc2nn.status import Conversion

pytest.importorskip("cvxpy")
from mpc2nn.converse import to_mpc

PROB = mpc2nn.systems.drummond2024()
NET = mpc2nn.compile(PROB)


def test_to_mpc_with_nothing_to_compare_is_not_exact():
    rec = to_mpc(NET, PROB.A, PROB.B, 10, X=np.full((5, 2), np.nan))
    assert rec.status == Conversion.UNCHECKED and not rec.reproduces
    assert "no check state" in rec.message
    assert np.isnan(rec.max_error) and np.isnan(rec.feasibility_agreement)


def test_to_mpc_with_only_infeasible_states_is_not_exact():
    di = mpc2nn.systems.double_integrator()
    net = mpc2nn.compile(di)
    far = np.array([[50.0, 0.0], [-40.0, 10.0]])        # far outside |x_1| <= 5: infeasible
    assert not net.solve(far).feasible.any()
    rec = to_mpc(net, di.A, di.B, di.horizon, X=far)
    assert rec.status == Conversion.UNCHECKED, str(rec)
    assert "2 infeasible" in rec.message


def test_to_mpc_leaves_invalid_states_out_of_the_agreement():
    X = np.vstack([mpc2nn.sample_states(PROB, 6, seed=2), np.full((4, 2), np.nan)])
    rec = to_mpc(NET, PROB.A, PROB.B, 10, X=X)
    assert rec.status == Conversion.EXACT, str(rec)
    assert rec.feasibility_agreement == 1.0
    assert "4 check states with NaN or infinite entries were left out" in rec.message
