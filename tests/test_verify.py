"""Verification of networks against the MPC law: bounds against DAQP-sampled errors, witnesses re-solved by
DAQP, an injected error found, unrolled networks, ONNX input, Dask against serial, named errors."""
import numpy as np
import pytest
from tolerances import TOL

import mpc2nn
from mpc2nn.exceptions import Mpc2nnError, ProblemDefinitionError, ShapeError
from mpc2nn.status import Proof

torch = pytest.importorskip("torch")
pytest.importorskip("daqp")

from mpc2nn.verify import UnsupportedNetworkError  # noqa: E402


def _train_mlp(problem, hidden=(16, 16), n=1500, steps=400, seed=0):
    """A small ReLU MLP trained by imitation of DAQP's first input on sampled states (the approximate-MPC
    workflow), in float64."""
    X = mpc2nn.sample_states(problem, n, seed=seed)
    U = mpc2nn.solve_daqp(problem, X).U[:, :1]
    torch.manual_seed(seed)
    layers, width = [], X.shape[1]
    for h in hidden:
        layers += [torch.nn.Linear(width, h), torch.nn.ReLU()]
        width = h
    net = torch.nn.Sequential(*layers, torch.nn.Linear(width, 1)).double()
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    Xt, Ut = torch.as_tensor(X.copy()), torch.as_tensor(U.copy())
    for _ in range(steps):
        opt.zero_grad()
        loss = ((net(Xt) - Ut) ** 2).mean()
        loss.backward()
        opt.step()
    return net


def _net_u0(net, X):
    with torch.no_grad():
        return net(torch.as_tensor(np.array(X))).numpy()[:, :1]


def _daqp_error(problem, net, X):
    """Errors of the network against DAQP at the feasible states of X (independent of verify's solver)."""
    ref = mpc2nn.solve_daqp(problem, X)
    err = np.abs(_net_u0(net, X) - ref.U[:, :1]).max(axis=1)
    return err[ref.feasible], ref.feasible


def _check_against_daqp(problem, net, res, n_samples=4000, seed=11):
    """The certified upper bound is at least the error sampled on many held-out states; the witness's error,
    re-solved by DAQP, is the lower bound."""
    assert res.lower_bound <= res.upper_bound
    X = mpc2nn.sample_states(problem, n_samples, seed=seed, feasible=None)
    err, _ = _daqp_error(problem, net, X)
    assert err.max() <= res.upper_bound + TOL["verify_bound", "float64"], (err.max(), res.upper_bound)
    w_err, feas = _daqp_error(problem, net, res.witness[None, :])
    assert feas.all(), "the witness is not a feasible state"
    assert abs(w_err[0] - res.lower_bound) <= TOL["vs_daqp", "float64"]
    return err.max()


@pytest.fixture(scope="module")
def di():
    problem = mpc2nn.systems.double_integrator()
    return problem, mpc2nn.critical_regions(mpc2nn.compile(problem))


@pytest.fixture(scope="module")
def di_mlp(di):
    return _train_mlp(di[0])


@pytest.fixture(scope="module")
def di_mlp_result(di, di_mlp):
    return mpc2nn.verify(di_mlp, di[1], samples=200)


def test_trained_mlp_on_the_double_integrator_bound_covers_samples_and_witness_reproduced(di, di_mlp,
                                                                                          di_mlp_result):
    problem, part = di
    res = di_mlp_result
    assert res.status == Proof.PROVEN and res.method == "partition" and res.covered
    sampled = _check_against_daqp(problem, di_mlp, res)
    # the proven maximum is attained (gap closed), and sampling alone does not exceed it
    assert res.gap <= max(res.tol, res.rtol * res.upper_bound) + TOL["roundoff", "float64"]
    assert sampled <= res.upper_bound
    assert len(res.regions) == part.n_regions and all(r.status == Proof.PROVEN for r in res.regions)
    assert max(r.error_upper for r in res.regions) <= res.upper_bound
    # input-bound violation: bound >= the violation sampled, witness violation reproduced
    X = mpc2nn.sample_states(problem, 4000, seed=12)
    u = _net_u0(di_mlp, X)[:, 0]
    vio = np.maximum(np.maximum(u - problem.u_max[0], problem.u_min[0] - u), 0.0).max()
    assert vio <= res.violation.upper + TOL["verify_bound", "float64"]
    assert res.violation.lower <= res.violation.upper


def test_injected_error_at_a_known_state_is_found(di, di_mlp, di_mlp_result):
    """A narrow bump of height h at x* (a few ReLUs added beside the trained network) is found: the witness
    lies in the bump and the bound is at least the bump's error; sampling the bump's support sparsely would
    miss it."""
    problem, part = di
    x_star, radius, h = np.array([0.7, -0.3]), 0.02, 3.0
    base = di_mlp
    W1, b1 = base[0].weight.detach(), base[0].bias.detach()
    W2, b2 = base[2].weight.detach(), base[2].bias.detach()
    W3, b3 = base[4].weight.detach(), base[4].bias.detach()
    n1, n2 = W1.shape[0], W2.shape[0]
    eye = torch.eye(2, dtype=torch.float64)
    L1 = torch.nn.Linear(2, n1 + 4).double()
    L2 = torch.nn.Linear(n1 + 4, n2 + 1).double()
    L3 = torch.nn.Linear(n2 + 1, 1).double()
    with torch.no_grad():
        L1.weight.copy_(torch.cat([W1, eye, -eye]))  # relu(±(x - x*)): |x - x*| per coordinate
        L1.bias.copy_(torch.cat([b1, -torch.as_tensor(x_star), torch.as_tensor(x_star)]))
        L2.weight.zero_()
        L2.weight[:n2, :n1] = W2
        L2.weight[n2, n1:] = -1.0 / radius  # relu(1 - ‖x - x*‖₁ / r)
        L2.bias.copy_(torch.cat([b2, torch.ones(1, dtype=torch.float64)]))
        L3.weight.copy_(torch.cat([W3, torch.full((1, 1), h, dtype=torch.float64)], dim=1))
        L3.bias.copy_(b3)
    bumped = torch.nn.Sequential(L1, torch.nn.ReLU(), L2, torch.nn.ReLU(), L3)
    res = mpc2nn.verify(bumped, part, samples=200)
    assert res.status == Proof.PROVEN
    err_star, _ = _daqp_error(problem, bumped, x_star[None, :])
    assert di_mlp_result.upper_bound < err_star[0] - 0.5  # the bump, not the trained network, is the worst
    assert res.lower_bound >= err_star[0] - TOL["vs_daqp", "float64"]
    assert np.abs(res.witness - x_star).sum() <= radius
    _check_against_daqp(problem, bumped, res)


@pytest.mark.parametrize("depth", [3, pytest.param(6, marks=pytest.mark.slow)])
def test_unrolled_network_from_unravel(di, depth):
    problem, part = di
    net = mpc2nn.unravel(mpc2nn.compile(problem), depth=depth)
    res = mpc2nn.verify(net, part, samples=200)
    assert res.status == Proof.PROVEN
    wrap = torch.nn.Sequential(net)  # evaluated through its forward, independently of verify's graph
    X = mpc2nn.sample_states(problem, 3000, seed=13)
    ref = mpc2nn.solve_daqp(problem, X)
    with torch.no_grad():
        u = wrap(torch.as_tensor(X)).numpy()[:, :1]
    err = np.abs(u - ref.U[:, :1]).max()
    assert err <= res.upper_bound + TOL["verify_bound", "float64"]
    w = mpc2nn.solve_daqp(problem, res.witness[None, :])
    with torch.no_grad():
        uw = wrap(torch.as_tensor(np.array(res.witness[None, :]))).numpy()[0, 0]
    assert abs(abs(uw - w.U[0, 0]) - res.lower_bound) <= TOL["vs_daqp", "float64"]


def test_random_two_state_problem_with_a_perturbed_network():
    """A random unstable 2-state problem with state bounds; the network is a trained MLP."""
    rng = np.random.default_rng(3)
    A = rng.normal(size=(2, 2))
    A *= 1.1 / max(abs(np.linalg.eigvals(A)))
    problem = mpc2nn.MPCProblem(A, rng.normal(size=(2, 1)), np.eye(2), np.eye(1), 3, P="dare", u_min=[-1.0],
                                u_max=[1.0], x_min=[-3.0, -3.0], x_max=[3.0, 3.0],
                                sample_box=(-np.ones(2), np.ones(2)))
    part = mpc2nn.critical_regions(mpc2nn.compile(problem))
    assert part.complete
    net = _train_mlp(problem, hidden=(12,), n=800, steps=200, seed=1)
    res = mpc2nn.verify(net, part, samples=200)
    assert res.status == Proof.PROVEN
    _check_against_daqp(problem, net, res, n_samples=3000)


def test_problem_as_reference_enumerates_the_partition(di, di_mlp, di_mlp_result):
    problem, part = di
    seen = []
    a = mpc2nn.verify(di_mlp, problem, samples=200, progress=seen.append)
    b = di_mlp_result
    assert [p["done"] for p in seen] == list(range(1, len(a.regions) + 1))
    assert all(p["total"] == len(a.regions) and p["error_lower"] <= a.upper_bound for p in seen)
    assert a.covered and a.status == Proof.PROVEN
    assert abs(a.upper_bound - b.upper_bound) <= max(a.tol, a.rtol * a.upper_bound)


def test_onnx_file_gives_the_torch_bound(tmp_path, di):
    pytest.importorskip("onnx")
    problem, part = di
    net = mpc2nn.unravel(mpc2nn.compile(problem), depth=2)
    path = mpc2nn.deploy.to_onnx(net, tmp_path / "net.onnx")
    from_onnx = mpc2nn.verify(path, part, samples=200)
    from_torch = mpc2nn.verify(net, part, samples=200)
    assert from_onnx.status == Proof.PROVEN
    assert abs(from_onnx.upper_bound - from_torch.upper_bound) <= max(from_torch.tol,
                                                                       from_torch.rtol * from_torch.upper_bound)
    assert "onnx" in from_onnx.network.lower() or str(path) in from_onnx.network


@pytest.mark.slow
def test_dask_local_cluster_gives_the_serial_bound(di, di_mlp, di_mlp_result):
    pytest.importorskip("distributed")
    problem, part = di
    serial = di_mlp_result
    parallel = mpc2nn.verify(di_mlp, part, samples=200, workers=2)
    assert parallel.workers == 2 and parallel.status == Proof.PROVEN
    assert abs(parallel.upper_bound - serial.upper_bound) <= max(serial.tol, serial.rtol * serial.upper_bound)
    _check_against_daqp(problem, di_mlp, parallel)


@pytest.mark.slow
def test_dask_scheduler_address_runs_on_that_cluster(di, di_mlp, di_mlp_result):
    """The same code path given the address of a running scheduler (a local cluster started here)."""
    distributed = pytest.importorskip("distributed")
    problem, part = di
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None,
                                  silence_logs=40) as cluster:
        res = mpc2nn.verify(di_mlp, part, samples=200, scheduler=cluster.scheduler_address)
    assert res.workers == 2 and res.status == Proof.PROVEN
    assert abs(res.upper_bound - di_mlp_result.upper_bound) <= max(res.tol, res.rtol * res.upper_bound)


def test_bad_inputs_raise_named_errors(di, di_mlp, tmp_path):
    problem, part = di
    with pytest.raises(ProblemDefinitionError, match="method"):
        mpc2nn.verify(di_mlp, part, method="nope")
    with pytest.raises(UnsupportedNetworkError, match="Tanh|tanh"):
        mpc2nn.verify(torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1)).double(),
                      part)
    with pytest.raises(ShapeError, match="n_θ"):
        mpc2nn.verify(torch.nn.Sequential(torch.nn.Linear(3, 1)).double(), part)
    with pytest.raises(ShapeError, match="outputs"):
        mpc2nn.verify(torch.nn.Sequential(torch.nn.Linear(2, 3)).double(), part)
    with pytest.raises(ProblemDefinitionError, match="reference"):
        mpc2nn.verify(di_mlp, "not a law")
    with pytest.raises(UnsupportedNetworkError, match="onnx"):
        mpc2nn.verify(tmp_path / "net.txt", part)
    with pytest.raises(ProblemDefinitionError, match="tol"):
        mpc2nn.verify(di_mlp, part, tol=-1.0)
    with pytest.raises(ProblemDefinitionError, match="time_limit"):
        mpc2nn.verify(di_mlp, part, time_limit=0)
    with pytest.raises(ProblemDefinitionError, match="region"):
        mpc2nn.verify(di_mlp, part, region=(np.full(2, -50.0), np.full(2, 50.0)))
    with pytest.raises(Mpc2nnError):
        mpc2nn.verify(di_mlp, part, region=(np.array([np.nan, 0.0]), np.ones(2)))
    with pytest.raises(ProblemDefinitionError, match="progress"):
        mpc2nn.verify(di_mlp, part, progress="yes")
    with pytest.raises(ProblemDefinitionError, match="output"):
        mpc2nn.verify(di_mlp, part, output="u1")
    if __import__("importlib").util.find_spec("distributed") is not None:
        with pytest.raises(ProblemDefinitionError, match="scheduler"):
            mpc2nn.verify(di_mlp, part, samples=10, scheduler=8786)


def test_time_limit_gives_an_incomplete_status_with_a_proven_bound(di):
    """A tight budget on a larger network leaves regions open: the status says so and the bound still covers
    the sampled errors."""
    problem, part = di
    net = _train_mlp(problem, hidden=(32, 32), n=600, steps=60, seed=2)
    res = mpc2nn.verify(net, part, samples=100, time_limit=0.5, rtol=0.0, tol=0.0)
    assert res.status in (Proof.INCOMPLETE, Proof.PROVEN)
    if res.status == Proof.INCOMPLETE:
        assert res.reason
    _check_against_daqp(problem, net, res, n_samples=2000)


def test_command_line_verify_onnx_and_saved_network(tmp_path, capfd):
    pytest.importorskip("onnx")
    import json

    from mpc2nn.cli import main

    problem = mpc2nn.systems.double_integrator()
    net = mpc2nn.unravel(mpc2nn.compile(problem), depth=2)
    onnx_path = mpc2nn.deploy.to_onnx(net, tmp_path / "net.onnx")
    saved = mpc2nn.save(net, tmp_path / "net.mpc2nn")
    capfd.readouterr()
    assert main(["verify", str(onnx_path), "builtin:double_integrator", "--quiet", "--samples", "100"]) == 0
    assert "proven" in capfd.readouterr().out
    code = main(["verify", str(saved), "builtin:double_integrator", "--json", "--samples", "100",
                 "--box", "-1", "-1", "1", "1"])
    data = json.loads(capfd.readouterr().out)
    assert code == 0 and data["status"] == "proven"
    w = np.array(data["error"]["witness"])
    assert np.all(np.abs(w) <= 1.0)
    ref = mpc2nn.solve_daqp(problem, w[None, :])
    with torch.no_grad():
        u = net(torch.as_tensor(w[None, :])).numpy()[0, 0]
    assert abs(abs(u - ref.U[0, 0]) - data["error"]["lower"]) <= TOL["vs_daqp", "float64"]
    assert main(["verify", str(saved), "builtin:double_integrator", "--box", "-1", "1"]) == 2
    assert "--box" in capfd.readouterr().err


def test_polytope_region_and_the_whole_sequence(di):
    """A triangle of states (a Polytope) and ``output="U"`` (the network outputs N·n_u values): the bound on
    the sequence covers DAQP-sampled sequence errors inside the triangle and is at least the first input's."""
    problem, part = di
    net = mpc2nn.unravel(mpc2nn.compile(problem), depth=2)
    tri = mpc2nn.problem.Polytope(np.array([[-1.0, 0.0], [0.0, -1.0], [1.0, 1.0]]), np.array([1.0, 1.0, 1.0]))
    res_u = mpc2nn.verify(net, part, tri, output="U", samples=100)
    res_0 = mpc2nn.verify(net, part, tri, samples=100)
    assert res_u.status == Proof.PROVEN and res_0.status == Proof.PROVEN
    assert res_u.upper_bound >= res_0.lower_bound
    X = mpc2nn.sample_states(problem, 3000, seed=14, box=(-np.ones(2), np.ones(2)))
    X = X[np.all(X @ tri.C.T <= tri.d, axis=1)]
    ref = mpc2nn.solve_daqp(problem, X)
    with torch.no_grad():
        U = net(torch.as_tensor(X.copy())).numpy()
    err = np.abs(U - ref.U).max(axis=1)[ref.feasible]
    assert err.max() <= res_u.upper_bound + TOL["verify_bound", "float64"]
    assert np.all(res_u.witness @ tri.C.T <= tri.d + TOL["feasibility", "float64"])
    wref = mpc2nn.solve_daqp(problem, res_u.witness[None, :])
    with torch.no_grad():
        Uw = net(torch.as_tensor(np.array(res_u.witness[None, :]))).numpy()
    assert abs(np.abs(Uw - wref.U).max() - res_u.lower_bound) <= TOL["vs_daqp", "float64"]


def test_gallery_example_small(tmp_path):
    pytest.importorskip("matplotlib")
    import runpy
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "examples" / "verify_network.py"
    try:
        results = runpy.run_path(str(path), run_name="example")["main"](["--small", "--output", str(tmp_path)])
    finally:
        import sys

        plt = sys.modules.get("matplotlib.pyplot")
        if plt is not None:
            plt.close("all")
    assert all(r.status == Proof.PROVEN and r.lower_bound <= r.upper_bound for r in results.values())
    assert (tmp_path / "verify_network.png").stat().st_size > 10_000


def test_exact_network_is_verified_to_the_lp_tolerance(di):
    """An exact (lattice) network is read from its program (its forward gathers by index, which torch.fx
    cannot read as affine maps); its certified error against the MPC law is at HiGHS's tolerance, and
    a network with one piece moved is caught with the move as its lower bound."""
    problem, part = di
    exact = mpc2nn.exact_network(part)
    assert exact.certify().proven
    res = mpc2nn.verify(exact, part, tol=1e-8)
    assert res.status == Proof.PROVEN and res.upper_bound <= 1e-8
    _check_against_daqp(problem, exact, res)
    with torch.no_grad():
        exact.w[0] += 1e-3  # one affine piece moved by 1e-3 (on the states where it is selected)
    moved = mpc2nn.verify(exact, part, tol=1e-8)
    assert not exact.certify().proven
    assert moved.lower_bound >= 1e-3 - 1e-9 and moved.upper_bound <= 1e-3 + 1e-8
    _check_against_daqp(problem, exact, moved)
