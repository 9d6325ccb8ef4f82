"""Verification without a partition (method="kkt"): the KKT encoding's bound against the partition path's
proven bound (an independent method), against DAQP-sampled errors (an independent solver), witnesses
re-solved by DAQP, exact networks, soft constraints, the honest status where the big-M values cannot be
proven, the auto fallback, the command line and named errors."""
import numpy as np
import pytest
from tolerances import TOL

import mpc2nn
from mpc2nn.exceptions import ProblemDefinitionError
from mpc2nn.status import Proof

torch = pytest.importorskip("torch")
pytest.importorskip("daqp")


def _mlp(problem, hidden=(8,), n=400, steps=100, seed=0):
    """A small ReLU MLP trained by imitation of DAQP's first input (float64)."""
    X = mpc2nn.sample_states(problem, n, seed=seed)
    U = mpc2nn.solve_daqp(problem, X).U[:, :problem.n_u]
    torch.manual_seed(seed)
    layers, width = [], X.shape[1]
    for h in hidden:
        layers += [torch.nn.Linear(width, h), torch.nn.ReLU()]
        width = h
    net = torch.nn.Sequential(*layers, torch.nn.Linear(width, problem.n_u)).double()
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    Xt, Ut = torch.as_tensor(X.copy()), torch.as_tensor(U.copy())
    for _ in range(steps):
        opt.zero_grad()
        ((net(Xt) - Ut) ** 2).mean().backward()
        opt.step()
    return net


def _check_against_daqp(problem, net, res, box, n=3000, seed=7):
    """The bound covers the errors DAQP finds at many states of the box; the witness's error, re-solved by
    DAQP, is the lower bound."""
    lo, hi = (np.asarray(b, float) for b in box)
    X = lo + (hi - lo) * np.random.default_rng(seed).random((n, lo.size))
    ref = mpc2nn.solve_daqp(problem, X)
    with torch.no_grad():
        u = net(torch.as_tensor(X)).numpy()[:, :problem.n_u]
    err = np.abs(u - ref.U[:, :problem.n_u]).max(axis=1)[ref.feasible]
    assert err.size > n // 2
    assert err.max() <= res.upper_bound + TOL["verify_bound", "float64"], (err.max(), res.upper_bound)
    w = mpc2nn.solve_daqp(problem, res.witness[None, :])
    assert w.feasible.all()
    with torch.no_grad():
        uw = net(torch.as_tensor(np.array(res.witness[None, :]))).numpy()[0, :problem.n_u]
    assert abs(np.abs(uw - w.U[0, :problem.n_u]).max() - res.lower_bound) <= TOL["vs_daqp", "float64"]
    return err.max()


def _agree(a, b):
    """Two proven bounds of the same maximum: each method's upper is at least the other's lower."""
    slack = TOL["verify_bound", "float64"]
    assert a.upper_bound >= b.lower_bound - slack and b.upper_bound >= a.lower_bound - slack, (a.summary(),
                                                                                            b.summary())
    assert abs(a.upper_bound - b.upper_bound) <= max(slack, 2 * a.rtol * abs(b.upper_bound))


def _random_problem(seed=3, n_x=2, horizon=3, soft=False):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(n_x, n_x))
    A *= 1.1 / max(abs(np.linalg.eigvals(A)))
    kw = dict(soft_state_penalty=(1.0, 100.0)) if soft else {}
    return mpc2nn.MPCProblem(A, rng.normal(size=(n_x, 1)), np.eye(n_x), np.eye(1), horizon, P="dare",
                             u_min=[-1.0], u_max=[1.0], x_min=[-2.0] * n_x, x_max=[2.0] * n_x,
                             sample_box=(-np.ones(n_x), np.ones(n_x)), **kw)


@pytest.fixture(scope="module")
def rand2():
    problem = _random_problem(seed=11)
    return problem, _mlp(problem)


def test_random_problem_with_state_constraints_kkt_agrees_with_partition_and_daqp(rand2):
    problem, net = rand2
    box = problem.sample_box
    kkt = mpc2nn.verify(net, problem, box, method="kkt", samples=300, time_limit=60)
    assert kkt.method == "kkt" and kkt.covered and kkt.status == Proof.PROVEN, kkt.summary()
    assert "Slater" in kkt.certificate and "KKT" in kkt.certificate
    part = mpc2nn.verify(net, mpc2nn.critical_regions(mpc2nn.compile(problem), box), box, samples=300)
    assert part.method == "partition" and part.status == Proof.PROVEN
    _agree(kkt, part)
    _check_against_daqp(problem, net, kkt, box)
    assert kkt.violation.status == Proof.PROVEN and kkt.violation.upper >= kkt.violation.lower


def test_paper_example_kkt_agrees_with_partition(tmp_path):
    problem = mpc2nn.systems.drummond2024("corrected")
    net = _mlp(problem, hidden=(6,), steps=100)
    box = (np.array([-100.0, -100.0]), np.array([100.0, 100.0]))
    kkt = mpc2nn.verify(net, problem, box, method="kkt", samples=300, time_limit=60)
    part = mpc2nn.verify(net, mpc2nn.critical_regions(mpc2nn.compile(problem), box), box, samples=300)
    assert kkt.status == Proof.PROVEN and part.status == Proof.PROVEN, (kkt.summary(), part.summary())
    _agree(kkt, part)
    _check_against_daqp(problem, net, kkt, box)


def test_exact_network_gets_a_bound_near_zero():
    problem = _random_problem(seed=5, horizon=2)
    part = mpc2nn.critical_regions(mpc2nn.compile(problem))
    assert part.complete
    exact = mpc2nn.exact_network(part)
    res = mpc2nn.verify(exact, problem, method="kkt", samples=200, time_limit=60)
    assert res.covered and res.status == Proof.PROVEN, res.summary()
    assert res.upper_bound <= TOL["verify_bound", "float64"]


def test_soft_state_constraints_are_encoded_like_any_row():
    problem = _random_problem(seed=4, horizon=2, soft=True)
    qp = mpc2nn.condense(problem)
    assert qp.n_slack > 0
    net = _mlp(problem, hidden=(6,), steps=100)
    box = (-2 * np.ones(2), 2 * np.ones(2))  # beyond the hard state bounds: the soft QP is feasible everywhere
    res = mpc2nn.verify(net, problem, box, method="kkt", samples=300, time_limit=60)
    assert res.covered and res.status == Proof.PROVEN, res.summary()
    _check_against_daqp(problem, net, res, box)


def test_unprovable_big_m_gives_an_honest_incomplete_status(rand2):
    """On a box reaching states where the QP is infeasible no affine policy is strictly feasible on the
    whole box: with one cell allowed nothing is covered, and the result says so."""
    problem, net = rand2
    box = (-4 * np.ones(2), 4 * np.ones(2))
    res = mpc2nn.verify(net, problem, box, method="kkt", samples=200, max_cells=1, time_limit=30)
    assert not res.covered and res.status == Proof.INCOMPLETE
    assert "Slater" in res.reason and "not covered" in res.reason
    assert res.upper_bound == np.inf and np.isfinite(res.lower_bound)  # no cell proven: no bound claimed
    # with cells to bisect into, the cells where Slater's bound holds are proven, the rest reported
    box = (-3 * np.ones(2), 3 * np.ones(2))
    res = mpc2nn.verify(net, problem, box, method="kkt", samples=200, max_cells=32, time_limit=60)
    assert res.status == Proof.INCOMPLETE and len(res.regions) >= 1
    assert np.isfinite(res.upper_bound) and res.upper_bound >= res.lower_bound


def test_auto_falls_back_to_kkt_when_the_partition_does_not_complete(rand2, monkeypatch):
    import mpc2nn.verify._verify as V

    problem, net = rand2
    monkeypatch.setattr(V, "AUTO_MAX_REGIONS", 1)
    res = mpc2nn.verify(net, problem, samples=200, time_limit=60)
    assert res.method == "kkt" and "KKT encoding was used" in res.reason
    part = mpc2nn.verify(net, problem, samples=200, time_limit=60, method="partition")
    assert part.method == "partition" and not part.covered and part.status == Proof.INCOMPLETE


def test_command_line_method_kkt(tmp_path, capfd):
    import json

    from mpc2nn.cli import main

    problem = mpc2nn.systems.drummond2024("corrected")
    net = mpc2nn.unravel(mpc2nn.compile(problem), depth=1)
    saved = mpc2nn.save(net, tmp_path / "net.mpc2nn")
    capfd.readouterr()
    code = main(["verify", str(saved), "builtin:drummond2024_corrected", "--json", "--samples", "100",
                 "--method", "kkt", "--box", "-20", "-20", "20", "20"])
    data = json.loads(capfd.readouterr().out)
    assert data["method"] == "kkt" and code == (0 if data["status"] == "proven" else 1)
    assert np.isfinite(data["error"]["upper"]) and data["error"]["upper"] >= data["error"]["lower"]
    assert main(["verify", str(saved), "builtin:drummond2024_corrected", "--method", "nope"]) == 2


def test_bad_arguments_raise_named_errors(rand2):
    problem, net = rand2
    with pytest.raises(ProblemDefinitionError, match="method"):
        mpc2nn.verify(net, problem, method="KKT")
    with pytest.raises(ProblemDefinitionError, match="max_cells"):
        mpc2nn.verify(net, problem, method="kkt", max_cells=0)


def test_double_integrator_kkt_agrees_with_partition_on_a_box_inside_the_feasible_set():
    problem = mpc2nn.systems.double_integrator()
    net = _mlp(problem, hidden=(8,), steps=200)
    box = (np.array([-3.0, -1.0]), np.array([3.0, 1.0]))
    kkt = mpc2nn.verify(net, problem, box, method="kkt", samples=300, time_limit=300)
    part = mpc2nn.verify(net, mpc2nn.critical_regions(mpc2nn.compile(problem), box), box, samples=300)
    assert kkt.covered and kkt.status == Proof.PROVEN and part.status == Proof.PROVEN, kkt.summary()
    _agree(kkt, part)
    _check_against_daqp(problem, net, kkt, box)


def test_three_state_random_problem():
    problem = _random_problem(seed=8, n_x=3, horizon=3)
    net = _mlp(problem, hidden=(10,), steps=150)
    box = problem.sample_box
    kkt = mpc2nn.verify(net, problem, box, method="kkt", samples=300, time_limit=300)
    part = mpc2nn.verify(net, mpc2nn.critical_regions(mpc2nn.compile(problem), box), box, samples=300)
    assert kkt.status == Proof.PROVEN and part.status == Proof.PROVEN, (kkt.summary(), part.summary())
    _agree(kkt, part)
    _check_against_daqp(problem, net, kkt, box)


def test_big_m_bounds_hold_at_sampled_states():
    """The proven bounds on the multipliers and slacks hold for the exact solver's multipliers and slacks at
    many states of the cell, and rows called never active carry no multiplier there."""
    from mpc2nn.verify._kkt_bounds import kkt_bounds

    problem = mpc2nn.systems.double_integrator()
    qp = mpc2nn.condense(problem)
    lo, hi = np.array([-3.0, -1.0]), np.array([3.0, 1.0])
    kb = kkt_bounds(qp, (lo + hi) / 2, (hi - lo) / 2, np.zeros((0, 2)), np.zeros(0))
    assert kb.ok, kb.message
    X = lo + (hi - lo) * np.random.default_rng(0).random((2000, 2))
    ref = mpc2nn.solve_daqp(problem, X)
    assert ref.feasible.all()
    sol = mpc2nn.compile(problem).solve(X)
    lam = np.maximum(sol.y, 0.0)
    assert np.all(lam <= kb.lam_hi)
    s = qp.margin(ref.U, X)  # DAQP's slacks (an independent solver)
    tol = TOL["vs_daqp", "float64"]
    assert np.all(s <= kb.s_hi + tol) and np.all(s >= kb.s_lo - tol)
    assert np.all(lam[:, ~kb.active] <= tol)


def test_rate_bounds_theta_with_the_previous_input():
    """Input-rate bounds put ``u_prev`` into θ; the KKT encoding covers them like any row (against the
    partition path on the same box of θ = (x, u_prev))."""
    base = _random_problem(seed=12, horizon=2)
    problem = mpc2nn.MPCProblem(base.A, base.B, base.Q, base.R, 2, P="dare", u_min=[-1.0], u_max=[1.0],
                                x_min=[-2.0, -2.0], x_max=[2.0, 2.0], du_min=[-0.5], du_max=[0.5],
                                sample_box=(-np.ones(2), np.ones(2)))
    qp = mpc2nn.condense(problem)
    assert qp.n_theta == 3
    box = (np.array([-0.5, -0.5, -0.5]), np.array([0.5, 0.5, 0.5]))
    torch.manual_seed(1)
    net = torch.nn.Sequential(torch.nn.Linear(3, 6), torch.nn.ReLU(), torch.nn.Linear(6, 1)).double()
    kkt = mpc2nn.verify(net, problem, box, method="kkt", samples=300, time_limit=60)
    part = mpc2nn.verify(net, mpc2nn.critical_regions(mpc2nn.compile(problem), box), box, samples=300)
    assert kkt.covered and kkt.status == Proof.PROVEN and part.status == Proof.PROVEN, (kkt.summary(),
                                                                                        part.summary())
    _agree(kkt, part)
