"""Verification to the certificate's accuracy: exact networks get bounds <= 1e-9 (issue 16's goal), a moved
piece is still seen, the verified LP bound is above the LP's maximum (brute force, HiGHS), pre-activation
bounds over the polytope decide ReLUs its bounding box leaves undecided, and on random problems the bounds
of MLPs and unrolled networks stay above their errors sampled against DAQP."""
import numpy as np
import pytest
from tolerances import TOL

import mpc2nn
from mpc2nn.status import Proof

torch = pytest.importorskip("torch")
pytest.importorskip("daqp")

#: the issue's goal for exact networks: certified error <= 1e-9 (units of u)
GOAL = 1e-9


def _u0(net, X):
    with torch.no_grad():
        return net(torch.as_tensor(np.array(X))).numpy()[:, :1]


def _sampled_error(problem, net, n=3000, seed=5):
    """The largest error of the network against DAQP on sampled feasible states (independent of verify)."""
    X = mpc2nn.sample_states(problem, n, seed=seed, feasible=None)
    ref = mpc2nn.solve_daqp(problem, X)
    err = np.abs(_u0(net, X) - ref.U[:, :1]).max(axis=1)
    return float(err[ref.feasible].max())


def _witness_error(problem, net, res):
    ref = mpc2nn.solve_daqp(problem, res.witness[None, :])
    assert ref.feasible.all(), "the witness is not a feasible state"
    return float(np.abs(_u0(net, res.witness[None, :]) - ref.U[:, :1]).max())


def _exact(problem):
    part = mpc2nn.critical_regions(mpc2nn.compile(problem))
    assert part.complete
    net = mpc2nn.exact_network(part)
    assert net.certify().proven
    return part, net


@pytest.mark.parametrize("name", ["double_integrator", "drummond2024_corrected"])
def test_exact_network_certified_error_is_below_1e_9(name):
    problem = mpc2nn.systems.all_problems()[name]()
    part, net = _exact(problem)
    res = mpc2nn.verify(net, part, samples=200)
    assert res.status == Proof.PROVEN, res.reason
    assert res.upper_bound <= GOAL, res.upper_bound
    assert res.violation.upper <= GOAL
    # a proof still: above the error sampled against DAQP (DAQP's own accuracy is what the slack allows)
    assert _sampled_error(problem, net) <= res.upper_bound + TOL["vs_daqp", "float64"]
    assert res.lower_bound <= res.upper_bound
    assert abs(_witness_error(problem, net, res) - res.lower_bound) <= TOL["vs_daqp", "float64"]


@pytest.mark.slow
def test_exact_network_of_the_pendulum_certified_error_is_below_1e_9():
    problem = mpc2nn.systems.inverted_pendulum()
    part, net = _exact(problem)
    res = mpc2nn.verify(net, part, samples=500)
    assert res.status == Proof.PROVEN, res.reason
    assert res.upper_bound <= GOAL and res.violation.upper <= GOAL


@pytest.mark.parametrize("name", ["double_integrator", "drummond2024_corrected"])
def test_exact_network_with_a_bias_moved_by_1e_6_is_caught(name):
    """One affine piece's offset moved by 1e-6: the proof must still see it (upper >= the shift), and the
    witness, re-solved by DAQP, shows it."""
    shift = 1e-6  # the perturbation the test is about
    problem = mpc2nn.systems.all_problems()[name]()
    part, net = _exact(problem)
    with torch.no_grad():
        net.w[0] += shift
    assert not net.certify().proven
    res = mpc2nn.verify(net, part, samples=200)
    assert res.upper_bound >= shift
    assert res.upper_bound <= shift + GOAL  # the bound stays at the certificate's accuracy
    assert res.lower_bound >= shift - GOAL
    assert abs(_witness_error(problem, net, res) - res.lower_bound) <= TOL["vs_daqp", "float64"]
    assert _sampled_error(problem, net) <= res.upper_bound + TOL["vs_daqp", "float64"]


def test_exact_network_with_every_piece_perturbed_closes_at_the_relative_gap():
    """Every term's gain and offset moved by up to 1e-7 at random: the error varies inside the regions and
    pieces cross differently; the bound is closed to rtol and stays above every error sampled against DAQP."""
    problem = mpc2nn.systems.double_integrator()
    part, net = _exact(problem)
    rng = np.random.default_rng(2)
    with torch.no_grad():
        net.Wt += torch.as_tensor(rng.uniform(-1e-7, 1e-7, tuple(net.Wt.shape)))  # the perturbation tested
        net.w += torch.as_tensor(rng.uniform(-1e-7, 1e-7, tuple(net.w.shape)))
    res = mpc2nn.verify(net, part, samples=500)
    assert res.status == Proof.PROVEN, res.reason
    assert res.upper_bound <= max(res.tol, res.rtol * res.upper_bound) + res.lower_bound
    sampled = _sampled_error(problem, net, n=20000)
    assert sampled <= res.upper_bound + TOL["vs_daqp", "float64"]
    assert abs(_witness_error(problem, net, res) - res.lower_bound) <= TOL["vs_daqp", "float64"]


def test_verified_lp_bound_is_above_the_maximum_and_judges_each_row_at_its_scale():
    from mpc2nn.verify._lp import verified_max

    rng = np.random.default_rng(0)
    for trial in range(20):
        n = 2
        A = rng.normal(size=(6, n))
        b = rng.uniform(0.1, 1.0, 6)  # ξ = 0 is inside: never empty
        W = rng.normal(size=(3, n)) * np.array([[1.0], [1e-12], [1e6]])  # rows of very different scales
        c = rng.normal(size=3) * np.array([1.0, 1e-12, 1e6])
        bound, X = verified_max(W, c, A, b)
        # brute force: a dense grid of the box, points of the polytope kept
        g = np.linspace(-1, 1, 201)
        P = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)
        P = P[np.all(P @ A.T <= b, axis=1)]
        brute = (P @ W.T + c).max(axis=0)
        assert np.all(bound >= brute), (trial, bound - brute)
        # HiGHS's optimum, row by row (an independent solve): the bound is within rounding of it
        import scipy.optimize
        for k in range(3):
            res = scipy.optimize.linprog(-W[k] / np.abs(W[k]).sum(), A_ub=A, b_ub=b, bounds=(-1, 1), method="highs")
            opt = -res.fun * np.abs(W[k]).sum() + c[k]
            scale = np.abs(W[k]).sum() + abs(c[k])
            assert bound[k] >= opt - 1e-9 * scale  # HiGHS's own tolerance, relative to the row (1e-9)
            assert bound[k] - opt <= 1e-12 * scale, (k, bound[k] - opt, scale)


def test_preactivation_bounds_over_the_polytope_decide_a_relu_its_box_leaves_undecided():
    from mpc2nn.verify._bounds import propagate
    from mpc2nn.verify._reference import as_graph

    lin = torch.nn.Linear(2, 1).double()
    with torch.no_grad():
        lin.weight[:] = torch.tensor([[1.0, 1.0]])
        lin.bias[:] = torch.tensor([-0.5])  # switches on ξ1 + ξ2 = 0.5: crosses the unit box
    net = torch.nn.Sequential(lin, torch.nn.ReLU(), torch.nn.Linear(1, 1).double())
    g = as_graph(net, 2)
    A = np.array([[1.0, 1.0]]) / np.sqrt(2)  # the polytope ξ1 + ξ2 <= 0: the ReLU is off on all of it
    b = np.zeros(1)
    assert propagate(g).n_unstable(g) == 1
    assert propagate(g, cell=(A, b)).n_unstable(g) == 0


@pytest.mark.parametrize("seed", [1, 4])
def test_random_problems_bounds_of_mlps_and_unrolled_networks_cover_sampled_errors(seed):
    """Random 2- and 3-state problems (unstable, with and without state bounds): an untrained MLP and an
    unrolled network; the certified bound is at least every error sampled against DAQP."""
    rng = np.random.default_rng(seed)
    n_x = 2 + seed % 2
    A = rng.normal(size=(n_x, n_x))
    A *= 1.15 / max(abs(np.linalg.eigvals(A)))
    kw = dict(x_min=-3 * np.ones(n_x), x_max=3 * np.ones(n_x)) if seed % 2 else {}
    problem = mpc2nn.MPCProblem(A, rng.normal(size=(n_x, 1)), np.eye(n_x), np.eye(1), 3, P="dare", u_min=[-1.0],
                                u_max=[1.0], sample_box=(-np.ones(n_x), np.ones(n_x)), **kw)
    law = mpc2nn.compile(problem)
    part = mpc2nn.critical_regions(law)
    assert part.complete
    torch.manual_seed(seed)
    mlp = torch.nn.Sequential(torch.nn.Linear(n_x, 8), torch.nn.ReLU(), torch.nn.Linear(8, 8), torch.nn.ReLU(),
                              torch.nn.Linear(8, 1)).double()
    for net in (mlp, mpc2nn.unravel(law, depth=2)):
        res = mpc2nn.verify(net, part, samples=200, time_limit=60)
        assert res.status == Proof.PROVEN, res.reason
        wrap = torch.nn.Sequential(net)
        assert _sampled_error(problem, wrap, n=2000) <= res.upper_bound + TOL["vs_daqp", "float64"]
        assert abs(_witness_error(problem, wrap, res) - res.lower_bound) <= TOL["vs_daqp", "float64"]
