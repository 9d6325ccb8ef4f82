"""Critical regions: completeness, laws against DAQP and closed forms, degeneracy, budgets, file format, plot."""
import numpy as np
import pytest
import scipy.spatial
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tolerances import TOL

import mpc2nn
from mpc2nn.regions import FACET_KINDS, critical_regions
from mpc2nn.status import Proof


def _volume(part) -> float:
    """Sum of the regions' volumes by qhull from their vertices (an independent check of the partition)."""
    return sum(scipy.spatial.ConvexHull(R.vertices).volume for R in part.regions)


def _check_laws_against_daqp(part, problem, X):
    """Every located point gets DAQP's input sequence; returns the mask of located points."""
    ref = mpc2nn.solve_daqp(problem, X)
    U = part.evaluate(X, "U")
    located = part.locate(X) >= 0
    assert np.all(ref.feasible[located]), "a point outside the feasible set was located in a region"
    err = np.abs(U[located] - ref.U[located]).max(initial=0.0)
    assert err <= TOL["vs_daqp", "float64"], err
    u0 = part.evaluate(X[located], "u0")
    assert np.allclose(u0, ref.U[located, :part.qp.n_u], atol=TOL["vs_daqp", "float64"], rtol=0)
    return located


@pytest.fixture(scope="module")
def di_partition():
    return critical_regions(mpc2nn.compile(mpc2nn.systems.double_integrator()))


def test_double_integrator_39_regions_complete_and_agrees_with_daqp(di_partition):
    pytest.importorskip("daqp")
    part = di_partition
    # 39 regions over the sample box: the count PPOPT's geometric algorithm gives on the same mpQP (and
    # the 39 active sets the issue collected from 2·10⁵ samples); 7 first-input laws
    assert part.complete and part.status == Proof.PROVEN and not part.open_facets
    assert part.n_regions == 39 and part.pieces.n_pieces == 7
    assert set(np.concatenate([R.facet_kind for R in part.regions])) <= set(FACET_KINDS[:3])
    prob = mpc2nn.systems.double_integrator()
    X = mpc2nn.sample_states(prob, 400, seed=11)  # held-out: the enumeration's seeds use its own generator
    assert _check_laws_against_daqp(part, prob, X).all(), "a feasible state is outside every region"
    bad = mpc2nn.sample_states(prob, 100, seed=12, feasible=False)
    assert (part.locate(bad) == -1).all() and np.isnan(part.evaluate(bad)).all()
    assert max(R.kkt_residual for R in part.regions) <= TOL["certificate", "float64"]


def test_paper_example_99_regions_fill_the_box():
    # drummond2024 ("corrected": an MPCProblem with input bounds only, so every state is feasible) over its
    # sample box [-200, 200]²: PPOPT's geometric, graph and combinatorial algorithms each give 99 regions
    part = critical_regions(mpc2nn.systems.drummond2024("corrected"))
    assert part.complete and part.n_regions == 99 and part.pieces.n_pieces == 17
    assert abs(_volume(part) - 400.0 ** 2) <= TOL["volume", "float64"] * 400.0 ** 2
    assert all(k == "domain boundary" for R in part.regions for k, kd in zip(R.facet_kind, R.row_kind, strict=True)
               if kd == "domain")


def test_partition_regions_have_disjoint_interiors_and_fill_the_feasible_box(di_partition):
    part = di_partition
    X = mpc2nn.sample_states(mpc2nn.systems.double_integrator(), 2000, seed=3, feasible=None)
    inside = (part.violation(X) < -1e-9).sum(axis=1)
    assert inside.max() <= 1  # no two regions share interior points (this problem has unique multipliers there)
    for R in part.regions:
        assert R.contains(R.centre[None, :]).all() and R.radius > 0
        assert np.allclose(np.linalg.norm(R.A, axis=1), 1.0)
        assert np.allclose(R.u0_gain, R.U_gain[:1]) and np.allclose(R.U_gain, R.z_gain)  # T = I here


@st.composite
def small_problems(draw):
    """Random MPC problems with 2-4 states, 1-2 inputs, horizon 2-5: stable or unstable, with or without
    state constraints."""
    n_x, n_u, N = draw(st.integers(2, 4)), draw(st.integers(1, 2)), draw(st.integers(2, 5))
    unstable, state_bounds = draw(st.booleans()), draw(st.booleans())
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    A = rng.normal(size=(n_x, n_x))
    A *= (rng.uniform(1.05, 1.3) if unstable else rng.uniform(0.5, 0.95)) / max(abs(np.linalg.eigvals(A)))
    B = rng.normal(size=(n_x, n_u))
    kw = dict(u_min=-rng.uniform(0.5, 2, n_u), u_max=rng.uniform(0.5, 2, n_u))
    if state_bounds:
        kw.update(x_min=-rng.uniform(2, 4, n_x), x_max=rng.uniform(2, 4, n_x))
    Lq = rng.normal(size=(n_x, n_x))
    return mpc2nn.MPCProblem(A, B, Lq @ Lq.T + 0.1 * np.eye(n_x), np.diag(rng.uniform(0.1, 1, n_u)), N, P="dare",
                             **kw, sample_box=(-np.ones(n_x), np.ones(n_x))), unstable


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(small_problems())
def test_random_problems_partition_is_exact_where_it_covers(case):
    pytest.importorskip("daqp")
    prob, _ = case
    part = critical_regions(prob, max_regions=400, time_limit=20)
    assert part.status == (Proof.PROVEN if part.complete else Proof.INCOMPLETE)
    assert part.complete == (part.n_open == 0) or "reached" in part.reason
    X = mpc2nn.sample_states(prob, 300, seed=5, feasible=None)
    located = _check_laws_against_daqp(part, prob, X)
    if part.complete:
        feasible = mpc2nn.compile(prob).solve(X).feasible
        assert np.array_equal(located, feasible)  # the certificate says the regions fill the feasible box


def test_degenerate_rows_weakly_active_on_open_sets_and_duplicates():
    # z minimises ½‖z - θ‖² under z1 <= 1, z2 <= 1, z1 + z2 <= 2 (implied: weakly active on a whole region,
    # LICQ fails there) and z1 <= 1 once more (a duplicate): z = min(θ, 1) componentwise
    qp = mpc2nn.CondensedQP(H=np.eye(2), F=-np.eye(2), G=[[1.0, 0], [0, 1], [1, 1], [1, 0]], w=[1.0, 1, 2, 1],
                            E=np.zeros((4, 2)), n_u=2, sample_box=(-3 * np.ones(2), 3 * np.ones(2)))
    part = critical_regions(qp)
    assert part.complete
    assert part.pieces.n_pieces == 4
    X = np.random.default_rng(0).uniform(-3, 3, (500, 2))
    assert np.allclose(part.evaluate(X), np.minimum(X, 1.0), atol=TOL["same_math", "float64"], rtol=0)
    for R in part.regions:
        assert mpc2nn.compile(qp).qp.G[list(R.active)].shape[0] <= 2  # LICQ: at most n_z = 2 active rows


def test_lower_dimensional_regions_are_skipped_not_kept(di_partition):
    assert all(R.radius > mpc2nn.regions.MIN_RADIUS * di_partition.scale for R in di_partition.regions)
    assert di_partition.n_lower_dimensional >= 0


def test_budget_honoured_on_the_quadcopter_with_counts_and_advice():
    net = mpc2nn.compile(mpc2nn.systems.quadcopter())
    part = critical_regions(net, max_regions=8, time_limit=60)
    assert not part.complete and part.status == Proof.INCOMPLETE
    assert part.n_regions <= 8 and part.n_open > 0
    assert "max_regions = 8 reached" in part.reason
    for hint in ("smaller box", "move blocking", "unravel"):
        assert hint in part.reason
    assert all(R.facet_kind[o.row] == "open" for o in part.open_facets for R in [part.regions[o.region]])


def test_time_limit_honoured():
    part = critical_regions(mpc2nn.systems.inverted_pendulum(), time_limit=0.3)
    assert not part.complete and "time_limit" in part.reason and part.elapsed < 20


def test_polytope_domain_and_theta_parts_need_a_region():
    prob = mpc2nn.systems.double_integrator()
    tri = mpc2nn.Polytope([[1.0, 0], [0, 1], [-1, -1]], [1.0, 1, 1])
    part = critical_regions(prob, tri)
    assert part.complete
    X = mpc2nn.sample_states(prob, 300, seed=2, feasible=None, box=([-2.0, -2], [1, 1]))
    in_tri = tri.contains(X) & mpc2nn.compile(prob).solve(X).feasible
    assert np.array_equal(part.locate(X) >= 0, in_tri)
    rates = prob.replace(du_min=[-0.3], du_max=[0.3])
    with pytest.raises(mpc2nn.ProblemDefinitionError, match="bounds only the state"):
        critical_regions(rates)
    with pytest.raises(mpc2nn.ProblemDefinitionError, match="max_regions"):
        critical_regions(prob, max_regions=0)


def test_locate_outside_and_nan(di_partition):
    far = np.array([[100.0, 100.0], [np.nan, 0.0]])
    assert di_partition.locate(far).tolist() == [-1, -1]
    assert np.isnan(di_partition.evaluate(far, "U")).all()
    with pytest.raises(mpc2nn.ShapeError):
        di_partition.locate(np.zeros((3, 5)))
    assert "39 regions" in di_partition.summary() and "proven" in di_partition.summary()


def test_save_load_round_trip(tmp_path, di_partition):
    path = mpc2nn.save(di_partition, tmp_path / "part.mpc2nn")
    back = mpc2nn.load(path, expect_problem=mpc2nn.systems.double_integrator())
    assert isinstance(back, mpc2nn.Partition) and back.complete and back.n_regions == di_partition.n_regions
    for a, b in zip(di_partition.regions, back.regions, strict=True):
        assert a.active == b.active and a.neighbours == b.neighbours
        assert np.array_equal(a.A, b.A) and np.array_equal(a.U_gain, b.U_gain) and np.array_equal(a.vertices,
                                                                                                    b.vertices)
        assert list(a.facet_kind) == list(b.facet_kind) and list(a.row_kind) == list(b.row_kind)
    X = np.random.default_rng(1).uniform(-5, 5, (200, 2)) * [1, 0.4]
    assert np.array_equal(back.evaluate(X, "U"), di_partition.evaluate(X, "U"), equal_nan=True)
    incomplete = critical_regions(mpc2nn.systems.inverted_pendulum(), max_regions=5)
    back2 = mpc2nn.load(mpc2nn.save(incomplete, tmp_path / "inc.mpc2nn"))
    assert not back2.complete and back2.n_open == incomplete.n_open and back2.reason == incomplete.reason


def test_plot_partition_axes_labels(di_partition):
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    from mpc2nn.evaluation.plotting import plot_partition

    ax = plot_partition(di_partition)
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("x[0]", "x[1]")
    assert "39 regions" in ax.get_title()
    pend = critical_regions(mpc2nn.systems.inverted_pendulum(), max_regions=30)
    ax = plot_partition(pend, dims=(0, 2), fixed=np.zeros(4))
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("x[0]", "x[2]")
    assert ax.get_legend() is not None  # the open facets of an incomplete partition are marked
    import matplotlib.pyplot as plt

    plt.close("all")


@pytest.mark.slow
def test_inverted_pendulum_complete_fills_the_box_and_agrees_with_daqp():
    pytest.importorskip("daqp")
    prob = mpc2nn.systems.inverted_pendulum()
    part = critical_regions(prob)
    assert part.complete and part.pieces.n_pieces == 3
    lo, hi = (np.asarray(b) for b in prob.sample_box)
    assert abs(_volume(part) - np.prod(hi - lo)) <= TOL["volume", "float64"] * np.prod(hi - lo)
    X = mpc2nn.sample_states(prob, 2000, seed=21)
    assert _check_laws_against_daqp(part, prob, X).all()


@pytest.mark.slow
def test_region_counts_against_ppopt():
    ppopt = pytest.importorskip("ppopt")  # noqa: F841
    from ppopt.mp_solvers.solve_mpqp import mpqp_algorithm, solve_mpqp
    from ppopt.mpqp_program import MPQP_Program

    for prob in (mpc2nn.systems.double_integrator(), mpc2nn.systems.drummond2024("corrected")):
        part = critical_regions(prob)
        qp, dom = part.qp, part.domain
        prog = MPQP_Program(np.array(qp.G), qp.w[:, None].copy(), np.zeros((qp.n_z, 1)), np.array(qp.F),
                            np.array(qp.H), np.array(dom.C), np.array(dom.d)[:, None], np.array(qp.E))
        assert len(solve_mpqp(prog, mpqp_algorithm.geometric).critical_regions) == part.n_regions


def test_progress_callback_and_an_infeasible_domain(capsys):
    seen = []
    part = critical_regions(mpc2nn.systems.drummond2024("published"), progress=seen.append)
    assert seen and {"regions", "pending", "open", "rounds", "elapsed"} <= set(seen[-1])
    assert seen[-1]["regions"] == part.n_regions and seen[-1]["pending"] == 0
    critical_regions(mpc2nn.systems.drummond2024("published"), progress=True)
    assert "critical_regions: round" in capsys.readouterr().err
    critical_regions(mpc2nn.systems.drummond2024("published"))
    assert capsys.readouterr().err == ""  # silent by default
    with pytest.raises(mpc2nn.InfeasibleStateError, match="none of"):
        critical_regions(mpc2nn.systems.double_integrator(), ([100.0, 100.0], [101.0, 101.0]))


def test_lp_path_gives_the_same_partition(monkeypatch):
    """Regions above VERTEX_MAX_DIM are described by LPs only: forced on the double integrator, the same
    39 regions (same active sets) and a complete certificate."""
    from mpc2nn.regions import _explore

    ref = critical_regions(mpc2nn.systems.double_integrator())
    monkeypatch.setattr(_explore, "VERTEX_MAX_DIM", 0)
    part = critical_regions(mpc2nn.systems.double_integrator())
    assert part.complete and all(R.vertices.shape[0] == 0 for R in part.regions)
    assert {R.active for R in part.regions} == {R.active for R in ref.regions}
    assert part.n_facets == ref.n_facets
