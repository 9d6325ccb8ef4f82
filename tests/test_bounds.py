"""Error bounds are never below the rounding of the network's dtype (issue 13, finding 3).

The a-priori bound of ``method="lmi"`` was ``ρ^J`` times a constant: 1e-64 at depth 3000 while the
float32 network's error stayed at 1.6e-5 on every state (float64: 2.5e-14 on 76 of 200 states).
"""
import numpy as np
import pytest

import mpc2nn

torch = pytest.importorskip("torch")
pytest.importorskip("cvxpy")

#: only upper input bounds: G has full row rank, so the LMI certifies a contraction rate
ONE_SIDED = mpc2nn.MPCProblem(A=[[1.1, 0.3], [0.0, 0.9]], B=[[0.0], [1.0]], Q=np.eye(2), R=[[1.0]], horizon=5,
                              u_max=[0.5], sample_box=([-3.0, -3.0], [3.0, 3.0]))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("depth", [300, 3000])
def test_lmi_bound_is_at_least_the_error_at_any_depth(dtype, depth):
    net = mpc2nn.compile(ONE_SIDED)
    X = mpc2nn.sample_states(ONE_SIDED, 200, seed=0)
    ex = mpc2nn.unravel(net, depth=depth, method="lmi", dtype=dtype)
    assert ex.certificate().exists
    err = np.abs(ex.evaluate(X) - net.solve(X).U).max(axis=1)
    bound = ex.error_bound(X)
    assert np.all(bound.bound >= err), (bound.bound.min(), err.max())
    prior = ex._a_priori(X)
    assert np.all(prior >= err)
    # never below the dtype's rounding of the output's scale
    eps = float(torch.finfo(dtype).eps)
    assert np.all(prior >= eps / 2 * np.abs(net.solve(X).U).max(axis=1))


def test_lmi_without_constraint_rows_is_exact_and_says_why():
    free = mpc2nn.MPCProblem(A=[[0.5]], B=[[1.0]], Q=[[1.0]], R=[[1.0]], horizon=3)
    net = mpc2nn.compile(free)
    ex = mpc2nn.unravel(net, depth=3, method="lmi")       # failed inside cvxpy before
    cert = ex.certificate()
    assert not cert.exists and "no constraint rows" in cert.reason
    X = np.array([[1.0], [-2.0]])
    assert np.abs(ex.evaluate(X) - net.solve(X).U).max() <= 1e-12
    assert np.all(ex.error_bound(X).bound >= 0)
