"""MPCProblem: validation at construction (one test per documented error) and construction paths."""
import numpy as np
import pytest
from tolerances import tol

import mpc2nn
from mpc2nn import exceptions as exc

A = [[1.0, 1.0], [0.0, 1.0]]
B = [[0.5], [1.0]]


def make(**kw):
    args = dict(A=A, B=B, Q=np.eye(2), R=[[0.1]], horizon=5)
    args.update(kw)
    return mpc2nn.MPCProblem(**args)


def test_valid_problem_has_dare_terminal_weight():
    p = make()
    P = p.P
    At, Bt, Q, R = np.array(A), np.array(B), np.eye(2), np.array([[0.1]])
    K = np.linalg.solve(R + Bt.T @ P @ Bt, Bt.T @ P @ At)
    riccati = At.T @ P @ At - At.T @ P @ Bt @ K + Q - P
    assert np.abs(riccati).max() < 1e-9  # the DARE's residual at the P scipy returns (seen 2.2e-15)
    assert p.terminal_weight_source == "dare"
    assert np.abs(np.linalg.eigvals(At - Bt @ K)).max() < 1  # stabilising


def test_lyapunov_terminal_weight_matches_published_value():
    p = mpc2nn.systems.drummond2024("corrected")
    # the published P (4 decimals, hence atol 1e-4) is the Lyapunov solution for Q[1][1] = 3/2
    assert np.allclose(p.P, [[7.1667, -4.2222], [-4.2222, 4.6852]], rtol=0, atol=1e-4)
    assert np.abs(p.A.T @ p.P @ p.A + p.Q - p.P).max() < tol("roundoff")


@pytest.mark.parametrize("field,value,match", [
    ("B", [[0.5, 1.0]], r"B: expected shape \(n_x, n_u\) = \(2, n_u\), got \(1, 2\)"),
    ("Q", np.eye(3), r"Q: expected shape \(n_x, n_x\) = \(2, 2\), got \(3, 3\)"),
    ("R", np.eye(2), r"R: expected shape \(n_u, n_u\) = \(1, 1\), got \(2, 2\)"),
    ("u_max", [1.0, 2.0], r"u_max: expected shape \(n_u,\) = \(1,\), got \(2,\)"),
    ("x_min", [[-1.0, -1.0]], r"x_min: expected shape \(n_x,\) = \(2,\), got \(1, 2\)"),
])
def test_shape_errors_name_field_symbols_and_numbers(field, value, match):
    with pytest.raises(exc.ShapeError, match=match):
        make(**{field: value})


def test_non_square_A():
    with pytest.raises(exc.ShapeError, match=r"A: expected shape \(n_x, n_x\)"):
        make(A=[[1.0, 1.0]])


def test_nan_is_rejected_with_position():
    with pytest.raises(exc.NonFiniteError, match=r"Q: contains NaN \(first at index \(1, 0\)\)"):
        make(Q=[[1.0, 0.0], [np.nan, 1.0]])


def test_inf_only_allowed_in_bounds():
    with pytest.raises(exc.NonFiniteError, match="A: contains an infinity"):
        make(A=[[1.0, np.inf], [0.0, 1.0]])
    p = make(x_max=[np.inf, 2.0], x_min=[None, -2.0])
    assert p.x_max[0] == np.inf and p.x_min[0] == -np.inf


def test_non_symmetric_Q_states_tolerance():
    # the message states the library's WEIGHT_TOL (a string checked, not a test tolerance)
    with pytest.raises(exc.NotSymmetricError, match=r"Q: expected a symmetric matrix \(tolerance 1e-10"):
        make(Q=[[1.0, 0.3], [0.0, 1.0]])


def test_indefinite_Q_states_tolerance_and_eigenvalue():
    with pytest.raises(exc.NotPositiveSemidefiniteError, match=r"Q: .*smallest eigenvalue -0\.8"):
        make(Q=[[1.0, 0.0], [0.0, -0.8]])


def test_indefinite_P():
    with pytest.raises(exc.NotPositiveSemidefiniteError, match="P: expected a positive semidefinite"):
        make(P=-np.eye(2))


def test_R_not_positive_definite():
    with pytest.raises(exc.NotPositiveDefiniteError, match="R: expected a positive definite"):
        make(R=[[0.0]])


@pytest.mark.parametrize("N", [0, -3])
def test_horizon_below_one(N):
    with pytest.raises(exc.HorizonError, match=f"horizon: expected an integer >= 1, got {N}"):
        make(horizon=N)


@pytest.mark.parametrize("N", [2.5, "5", True])
def test_horizon_not_integer(N):
    with pytest.raises(exc.HorizonError, match="horizon: expected an integer >= 1"):
        make(horizon=N)


def test_u_min_above_u_max():
    with pytest.raises(exc.InconsistentBoundsError, match=r"u_min\[0\] = 2 > u_max\[0\] = 1"):
        make(u_min=[2.0], u_max=[1.0])


def test_lower_bound_plus_infinity():
    with pytest.raises(exc.InconsistentBoundsError, match=r"x_min\[1\] = \+inf"):
        make(x_min=[-1.0, np.inf])


def test_riccati_not_stabilisable_says_why():
    # second state unstable and not reachable from the input
    with pytest.raises(exc.RiccatiError, match="not stabilisable.*eigenvalue"):
        make(A=[[0.5, 0.0], [0.0, 1.5]], B=[[1.0], [0.0]])


def test_riccati_unobservable_unit_circle_mode():
    # stabilisable, but Q = 0 leaves the marginally stable mode unobserved: no stabilising DARE solution
    with pytest.raises(exc.RiccatiError, match="no stabilising solution"):
        make(A=[[1.0, 0.0], [0.0, 0.5]], B=[[1.0], [1.0]], Q=np.zeros((2, 2)))


def test_lyapunov_with_unstable_A():
    with pytest.raises(exc.UnstableSystemError, match=r"spectral radius of A is 1(\.0+)? >= 1"):
        make(P="lyapunov")


def test_errors_are_value_errors_and_mpc2nn_errors():
    with pytest.raises(ValueError):
        make(horizon=0)
    with pytest.raises(mpc2nn.Mpc2nnError):
        make(horizon=0)


def test_arrays_are_frozen():
    p = make()
    with pytest.raises(ValueError):
        p.A[0, 0] = 3.0


def test_stage_constraint_tuple_and_terminal_polytope():
    p = make(constraints=[([[1.0, 0.0]], [[1.0]], [2.0])], terminal_constraint=([[1.0, 0.0], [-1.0, 0.0]], [1, 1]))
    assert isinstance(p.constraints[0], mpc2nn.StageConstraint)
    assert isinstance(p.terminal_constraint, mpc2nn.Polytope)
    with pytest.raises(exc.ShapeError, match=r"constraints\[0\]: expected C_x of shape \(p, n_x\) = \(p, 2\)"):
        make(constraints=[([[1.0, 0.0, 0.0]], [[1.0]], [2.0])])


def test_from_statespace_continuous_needs_dt_and_discretises_by_zoh():
    control = pytest.importorskip("control")
    sys_c = control.ss([[0.0, 1.0], [0.0, 0.0]], [[0.0], [1.0]], np.eye(2), np.zeros((2, 1)))
    with pytest.raises(exc.ProblemDefinitionError, match="dt: sys is continuous-time"):
        mpc2nn.MPCProblem.from_statespace(sys_c, np.eye(2), [[1.0]], 5)
    p = mpc2nn.MPCProblem.from_statespace(sys_c, np.eye(2), [[1.0]], 5, dt=1.0, u_min=[-1], u_max=[1])
    # the double integrator's exact ZOH discretisation
    assert np.allclose(p.A, A, rtol=0, atol=tol("roundoff")) and np.allclose(p.B, B, rtol=0, atol=tol("roundoff"))
    assert p.u_max[0] == 1.0


def test_from_statespace_discrete_and_mismatched_dt():
    control = pytest.importorskip("control")
    sys_d = control.ss(A, B, np.eye(2), np.zeros((2, 1)), 0.1)
    p = mpc2nn.MPCProblem.from_statespace(sys_d, np.eye(2), [[1.0]], 5)
    assert np.array_equal(p.A, A)
    with pytest.raises(exc.ProblemDefinitionError, match="dt: sys is discrete-time with dt = 0.1"):
        mpc2nn.MPCProblem.from_statespace(sys_d, np.eye(2), [[1.0]], 5, dt=0.2)


def test_from_statespace_rejects_other_types():
    pytest.importorskip("control")
    with pytest.raises(exc.ProblemDefinitionError, match="expected a control.StateSpace"):
        mpc2nn.MPCProblem.from_statespace(np.eye(2), np.eye(2), [[1.0]], 5)


def test_replace_recomputes_computed_terminal_weight():
    p = make()
    p2 = p.replace(Q=2 * np.eye(2))
    assert p2.terminal_weight_source == "dare"
    assert not np.allclose(p2.P, p.P)
