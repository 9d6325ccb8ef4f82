"""Implicit network: construction, exact solve, infeasibility, well-posedness diagnostics."""
import numpy as np
import pytest
import scipy.optimize
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import random_problems
from tolerances import tol

import mpc2nn
from mpc2nn.status import Status


def lp_feasible(qp, x):
    """Independent feasibility check of G U <= w + E x by an LP (HiGHS)."""
    res = scipy.optimize.linprog(np.zeros(qp.n_U), A_ub=qp.G, b_ub=qp.w + qp.E @ x,
                                 bounds=[(None, None)] * qp.n_U, method="highs")
    return res.status == 0


def test_osqp_kkt_point_is_a_fixed_point_of_the_network(public_mpc_problem):
    """The network's matrices, checked against OSQP's primal-dual solution (not against our solver)."""
    net = mpc2nn.compile(public_mpc_problem)
    qp = net.qp
    X = mpc2nn.sample_states(public_mpc_problem, 5, seed=2)
    osqp = pytest.importorskip("osqp")
    import scipy.sparse as sp

    for x in X:  # OSQP at 1e-11, tighter than solve_osqp's 1e-10: its own KKT residual scales the checks below
        s = osqp.OSQP()
        s.setup(sp.csc_matrix(np.triu(qp.H)), qp.F @ x, sp.csc_matrix(qp.G), np.full(qp.m, -np.inf),
                qp.w + qp.E @ x, verbose=False, eps_abs=1e-11, eps_rel=1e-11, polishing=True, max_iter=200000)
        res = s.solve(raise_error=False)
        lam, U = np.maximum(res.y, 0.0), res.x
        slack = np.maximum(qp.w + qp.E @ x - qp.G @ U, 0.0)
        # how exact OSQP's own KKT point is: the network equation can hold only that well
        osqp_kkt = max(np.abs(qp.H @ U + qp.F @ x + qp.G.T @ lam).max(), np.abs(lam * slack).max())
        y = lam - net.alpha * slack
        fp = np.abs(y - net.W @ np.maximum(y, 0) - net.Y @ x - net.b).max()
        scale = max(1.0, np.abs(net.Y @ x + net.b).max())
        # residuals propagate through alpha (and H^-1 below) with a factor 10 to spare; 1e-10: a floor for an
        # OSQP point that is exact to round-off
        assert fp / scale <= 10 * net.alpha.max() * osqp_kkt + 1e-10
        out_err = np.abs(net.W_f @ np.maximum(y, 0) + net.Y_f @ x - U).max()
        assert out_err <= 10 * np.abs(np.linalg.inv(qp.H)).sum(axis=1).max() * osqp_kkt + 1e-10


def test_solve_matches_osqp_and_daqp_on_1000_states(public_problem):
    """The issue's acceptance check: 1000 sampled feasible states per public problem."""
    net = mpc2nn.compile(public_problem)
    X = mpc2nn.sample_states(public_problem, 1000, seed=11)
    sol = net.solve(X)
    assert (sol.status == Status.SOLVED).all(), sol.summary()
    ref = mpc2nn.solve_osqp(public_problem, X)
    # at 1e-10 tolerances OSQP can run out of iterations on a few ill-conditioned states
    # (seen: 2-3/1000 on the inverted pendulum); it never claims infeasibility there
    conv = ref.status == Status.SOLVED
    assert conv.mean() >= 0.99
    assert set(ref.status[~conv]) <= {Status.ITERATION_LIMIT, Status.SOLVED_INACCURATE}
    assert np.abs(sol.U[conv] - ref.U[conv]).max() <= tol("vs_osqp")
    pytest.importorskip("daqp")
    daqp = mpc2nn.solve_daqp(public_problem, X)
    assert daqp.feasible.all()
    assert np.abs(sol.U - daqp.U).max() <= tol("vs_daqp")
    # the returned y is a fixed point of the network built here from (H, F, G, w, E) alone, and U is
    # the minimiser of the Lagrangian at λ = relu(y), both computed without the library's matrices
    qp = net.qp
    Hinv_G = np.linalg.solve(qp.H, qp.G.T)
    M = qp.G @ Hinv_G
    a = net.alpha[:, None]
    W, Y, b = np.eye(qp.m) - a * M, -a * (qp.G @ np.linalg.solve(qp.H, qp.F) + qp.E), -net.alpha * qp.w
    lam = np.maximum(sol.y, 0.0)
    c = X @ Y.T + b
    fp = np.abs(sol.y - lam @ W.T - c).max(axis=1)
    scale = np.maximum(1.0, np.maximum(np.abs(lam @ W.T).max(axis=1), np.abs(c).max(axis=1)))
    assert (fp <= tol("certificate") * scale).all()
    U_lagrangian = qp.inputs(-np.linalg.solve(qp.H, (X @ qp.F.T + lam @ qp.G).T).T)
    assert np.abs(sol.U - U_lagrangian).max() <= tol("same_math") * max(1.0, np.abs(sol.U).max())


def test_infeasible_double_integrator_states_are_all_flagged():
    prob = mpc2nn.systems.double_integrator()
    net = mpc2nn.compile(prob)
    rng = np.random.default_rng(7)
    X = rng.uniform(prob.sample_box[0], prob.sample_box[1], size=(400, 2))
    sol = net.solve(X)
    truth = np.array([lp_feasible(net.qp, x) for x in X])
    assert (~truth).sum() > 10  # the box holds infeasible states
    assert np.array_equal(sol.feasible, truth)
    bad = ~truth
    assert (sol.status[bad] == Status.INFEASIBLE).all()
    assert np.isnan(sol.U[bad]).all() and np.isnan(sol.y[bad]).all()
    assert all("Farkas certificate" in r for r in sol.reason[bad])
    assert (sol.status[truth] == Status.SOLVED).all()


def test_bad_samples_do_not_disturb_the_rest():
    prob = mpc2nn.systems.double_integrator()
    net = mpc2nn.compile(prob)
    good = mpc2nn.sample_states(prob, 20, seed=1)
    infeasible = mpc2nn.sample_states(prob, 5, seed=2, feasible=False)
    X = np.vstack([good[:10], infeasible, [[np.nan, 0.0]], good[10:], [[np.inf, 1.0]]])
    sol = net.solve(X)
    alone = net.solve(good)
    ok = np.r_[np.ones(10, bool), np.zeros(6, bool), np.ones(10, bool), False]
    assert np.array_equal(sol.U[ok], alone.U)
    assert list(sol.status[10:16]) == ["infeasible"] * 5 + ["invalid"]
    assert sol.status[-1] == Status.INVALID and "NaN or infinite" in sol.reason[-1]
    assert not sol.feasible[~ok].any()


def test_state_only_constraint_violation_is_infeasible():
    p = mpc2nn.MPCProblem([[1.0]], [[1.0]], [[1.0]], [[1.0]], 3, u_min=[-1], u_max=[1],
                          constraints=[([[1.0]], [[0.0]], [2.0])])
    sol = mpc2nn.compile(p).solve([[3.0], [1.0]])
    assert list(sol.status) == ["infeasible", "solved"]
    assert "current state alone" in sol.reason[0]


@settings(max_examples=30, deadline=None)
@given(random_problems(), st.integers(0, 2**31 - 1))
def test_random_problems_fixed_points_satisfy_kkt_and_match_osqp(case, seed):
    prob, _ = case
    net = mpc2nn.compile(prob)
    X = np.random.default_rng(seed).uniform(-2, 2, size=(20, prob.n_x))
    sol = net.solve(X)
    truth = np.array([lp_feasible(net.qp, x) for x in X])
    assert np.array_equal(sol.feasible, truth)
    ok = sol.feasible
    assert (sol.status[ok] == Status.SOLVED).all()
    assert (sol.kkt.worst[ok] <= tol("certificate")).all()
    if ok.any():
        ref = mpc2nn.solve_osqp(prob, X[ok])
        assert np.abs(ref.U - sol.U[ok]).max() <= tol("acceptance") * max(1.0, np.abs(ref.U).max())


@settings(max_examples=20, deadline=None)
@given(random_problems(), st.integers(0, 2**31 - 1))
def test_U_does_not_depend_on_alpha(case, seed):
    prob, _ = case
    rng = np.random.default_rng(seed)
    X = mpc2nn.sample_states(prob, 10, seed=seed % 1000, feasible=None)
    base = mpc2nn.compile(prob).solve(X)
    m = base.y.shape[1]
    other = mpc2nn.compile(prob, alpha=rng.uniform(0.01, 10, m)).solve(X)
    assert np.array_equal(base.feasible, other.feasible)
    ok = base.feasible
    assert np.abs(base.U[ok] - other.U[ok]).max(initial=0) <= tol("same_math") * max(
        1, np.abs(base.U[ok]).max(initial=0))


def test_warm_start_reuses_the_active_set():
    prob = mpc2nn.systems.quadcopter()
    net = mpc2nn.compile(prob)
    X = mpc2nn.sample_states(prob, 50, seed=4)
    cold = net.solve(X)
    warm = net.solve(X, y0=cold.y)
    assert (warm.iterations == 1).all()
    assert np.abs(warm.U - cold.U).max() <= tol("same_math")
    with pytest.raises(mpc2nn.ShapeError, match=r"y0: expected shape \(B, m\) = \(50, 130\)"):
        net.solve(X, y0=np.zeros((50, 3)))


def test_single_state_is_promoted_to_a_batch():
    net = mpc2nn.compile(mpc2nn.systems.drummond2024())
    sol = net.solve([10.0, -5.0])
    assert sol.U.shape == (1, 10) and sol.u0.shape == (1, 1)
    with pytest.raises(mpc2nn.ShapeError, match=r"X: expected shape \(B, n_x\) = \(B, 2\)"):
        net.solve([1.0, 2.0, 3.0])


def test_no_constraints_gives_the_unconstrained_law():
    p = mpc2nn.MPCProblem([[1.0, 1.0], [0, 1]], [[0.5], [1.0]], np.eye(2), [[1.0]], 4)
    net = mpc2nn.compile(p)
    X = np.random.default_rng(0).normal(size=(5, 2))
    sol = net.solve(X)
    assert net.m == 0 and (sol.status == Status.SOLVED).all()
    assert np.abs(sol.U - net.qp.unconstrained(X)).max() < tol("roundoff")


@pytest.mark.parametrize("alpha,match", [
    (-1.0, "every step must be finite and > 0"),
    (np.ones(3), r"alpha: expected shape \(m,\) = \(20,\), got \(3,\)"),
    (np.nan, "alpha: every step must be finite and > 0, got nan"),
])
def test_alpha_errors(alpha, match):
    with pytest.raises(mpc2nn.ProblemDefinitionError, match=match):
        mpc2nn.compile(mpc2nn.systems.drummond2024(), alpha=alpha)


def test_compile_rejects_other_objects():
    with pytest.raises(mpc2nn.ProblemDefinitionError, match="expected an MPCProblem or a CondensedQP, got dict"):
        mpc2nn.compile({})


def test_well_posedness_rank_deficient_problem():
    rep = mpc2nn.compile(mpc2nn.systems.double_integrator()).well_posedness()
    assert rep.m == 120 and rep.rank_G == 20 and not rep.p_matrix
    assert rep.contraction_rate is None
    assert abs(rep.eig_min_M) < 1e-8 * rep.eig_max_M  # singular M: λ_min is eigvalsh's round-off (seen 5e-16 rel.)
    assert len(rep.opposite_pairs) >= 20  # upper and lower input bounds
    assert "rank 20" in str(rep)


def test_well_posedness_full_rank_contraction_rate_holds():
    # only upper input bounds: G = I has full row rank, I - W is a P-matrix
    p = mpc2nn.MPCProblem([[1.0, 1.0], [0, 1]], [[0.5], [1.0]], np.eye(2), [[1.0]], 6, u_max=[0.5])
    net = mpc2nn.compile(p)
    rep = net.well_posedness(box=([-1, -1], [1, 1]))
    assert rep.p_matrix and rep.rank_G == 6 and rep.contraction_rate is not None
    # the plain iteration contracts at least at the reported rate (weighted 2-norm)
    rng = np.random.default_rng(0)
    c = net.Y @ rng.normal(size=2) + net.b
    y1, y2 = rng.normal(size=6) * 5, rng.normal(size=6) * 5
    wgt = 1 / np.sqrt(net.alpha)
    for _ in range(30):
        d0 = np.linalg.norm(wgt * (y1 - y2))
        y1, y2 = net.W @ np.maximum(y1, 0) + c, net.W @ np.maximum(y2, 0) + c
        assert np.linalg.norm(wgt * (y1 - y2)) <= rep.contraction_rate * d0 + tol("roundoff")


def test_well_posedness_finds_duplicated_and_redundant_rows():
    p = mpc2nn.MPCProblem([[1.0]], [[1.0]], [[1.0]], [[1.0]], 2, u_min=[-1], u_max=[1],
                          constraints=[([[0.0]], [[2.0]], [2.0]), ([[0.0]], [[1.0]], [5.0])])
    qp = mpc2nn.condense(p)
    rep = mpc2nn.compile(qp).well_posedness(box=([-1], [1]))
    labels = qp.row_labels
    dup = {(labels[i], labels[j]) for i, j in rep.duplicated_rows}
    assert ("u_max[0] at k=0", "constraints[0] row 0 at k=0") in dup
    redundant = {labels[i] for i in rep.redundant_rows}
    # u <= 5 can never be active while u <= 1 holds
    assert {"constraints[1] row 0 at k=0", "constraints[1] row 0 at k=1"} <= redundant
    assert "u_min[0] at k=0" not in redundant


def test_gram_inverse_updates_match_direct_inverses():
    # the dual active-set fallback keeps K⁻¹ of each working set up to date by bordering and
    # elimination; after random adds and drops it must equal the inverse computed directly
    from mpc2nn.implicit._batched_linalg import border as _border
    from mpc2nn.implicit._batched_linalg import eliminate as _eliminate

    rng = np.random.default_rng(0)
    n, b = 6, 5
    rows = [rng.normal(size=(8, n)) for _ in range(b)]
    work = [[] for _ in range(b)]
    Kinv = np.broadcast_to(np.eye(n), (b, n, n)).copy()
    for step in range(12):
        for i in range(b):
            k = len(work[i])
            grow = k < 4 and (k == 0 or rng.random() < 0.6)
            if grow:
                cand = [r for r in range(8) if r not in work[i]][0]
                a = rows[i][cand]
                N = np.array([rows[i][w] for w in work[i]]).reshape(k, n)
                r = np.linalg.solve(N @ N.T, N @ a) if k else np.zeros(0)
                d = a - N.T @ r
                _border(Kinv, np.array([i]), np.array([k]), r[None, :], np.array([d @ d]), min(n, k + 1))
                work[i].append(cand)
            else:
                j = int(rng.integers(k))
                _eliminate(Kinv, np.array([i]), np.array([j]), np.array([k - 1]), k)
                work[i][j] = work[i][-1]
                work[i].pop()
            k = len(work[i])
            N = np.array([rows[i][w] for w in work[i]]).reshape(k, n)
            expected = np.eye(n)
            expected[:k, :k] = np.linalg.inv(N @ N.T)
            assert np.abs(Kinv[i] - expected).max() < tol("same_math"), (step, i)


def test_fallback_in_blocks_gives_the_same_solutions(monkeypatch):
    from mpc2nn.implicit import _active_set as exact

    prob = mpc2nn.systems.double_integrator().replace(du_min=[-0.3], du_max=[0.3])
    net = mpc2nn.compile(prob)
    X = mpc2nn.sample_states(mpc2nn.systems.double_integrator(), 300, seed=3, feasible=None)
    theta = net.qp.parameters(X, u_prev=[0.0])
    whole = net.solve(theta)
    monkeypatch.setattr(exact, "GI_CHUNK", 16)
    blocks = mpc2nn.compile(prob).solve(theta)
    assert (whole.method == "dual active set").sum() > 16  # the blocks are exercised
    assert np.array_equal(whole.status, blocks.status)
    assert np.allclose(whole.U, blocks.U, atol=tol("roundoff"), equal_nan=True)
