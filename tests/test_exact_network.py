"""Exact explicit networks: proven equal to the MPC law (checked against DAQP), broken ones refused, file and
export round trips, closed loop."""
import numpy as np
import pytest
from tolerances import tol

import mpc2nn
from mpc2nn.exceptions import ProblemDefinitionError
from mpc2nn.status import Proof

torch = pytest.importorskip("torch")
pytest.importorskip("daqp")


def random_problem(seed: int, unstable: bool, state_bounds: bool, n_x: int, n_u: int, N: int, box: float):
    """A seeded random MPC problem (the generator of test_regions' ``small_problems``, with a box of half-width
    ``box``): open-loop stable (spectral radius 0.5..0.95) or unstable (1.05..1.3)."""
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(n_x, n_x))
    A *= (rng.uniform(1.05, 1.3) if unstable else rng.uniform(0.5, 0.95)) / max(abs(np.linalg.eigvals(A)))
    B = rng.normal(size=(n_x, n_u))
    kw = dict(u_min=-rng.uniform(0.5, 2, n_u), u_max=rng.uniform(0.5, 2, n_u))
    if state_bounds:
        kw.update(x_min=-rng.uniform(2, 4, n_x), x_max=rng.uniform(2, 4, n_x))
    Lq = rng.normal(size=(n_x, n_x))
    return mpc2nn.MPCProblem(A, B, Lq @ Lq.T + 0.1 * np.eye(n_x), np.diag(rng.uniform(0.1, 1, n_u)), N, P="dare",
                             **kw, sample_box=(-box * np.ones(n_x), box * np.ones(n_x)))


def assert_agrees_with_daqp(net, problem, n: int, seed: int):
    """On ``n`` held-out states of the problem's box (feasible or not): the network is DAQP's law where DAQP
    finds the state feasible, and ``contains`` is DAQP's feasibility."""
    X = mpc2nn.sample_states(problem, n, seed=seed, feasible=None)
    ref = mpc2nn.solve_daqp(problem, X)
    assert np.array_equal(net.contains(X), ref.feasible)
    k = net.n_out
    Y = net.evaluate(X)
    assert Y.shape == (n, k) and np.all(np.isfinite(Y))  # finite outside the covered set too
    err = np.abs(Y[ref.feasible] - ref.U[ref.feasible, :k]).max(initial=0.0)
    assert err <= tol("vs_daqp"), err
    with torch.no_grad():
        Yt = net(torch.as_tensor(X)).numpy()
    assert np.abs(Yt - Y).max() <= tol("roundoff") * max(1.0, np.abs(Y).max())
    return ref.feasible.sum()


@pytest.fixture(scope="module")
def di():
    prob = mpc2nn.systems.double_integrator()
    return prob, mpc2nn.critical_regions(prob)


@pytest.fixture(scope="module")
def di_sequence(di):
    return mpc2nn.exact_network(di[1], "U")


@pytest.fixture(scope="module")
def paper():
    prob = mpc2nn.systems.drummond2024("corrected")
    return prob, mpc2nn.critical_regions(prob)


@pytest.mark.parametrize("case", ["di", "paper"])
def test_public_problems_first_input_network_is_proven_and_is_daqps_law(case, request):
    prob, part = request.getfixturevalue(case)
    net = mpc2nn.exact_network(part)
    cert = net.certify()
    assert cert.proven and cert.status == Proof.PROVEN, cert.summary()
    assert (cert.verdict == str(Proof.PROVEN)).all() and cert.verdict.size == part.n_regions
    assert (cert.margin <= cert.tol).all() and cert.n_lps > 0
    # distinct first-input laws as counted by sampling in the issue: 7 (double integrator), 17 (paper's example)
    assert net.lattice.n_terms == {"di": 7, "paper": 17}[case]
    assert net.depth <= 8  # the goal for a first input with <= 20 pieces
    assert net.n_out == part.qp.n_u and net.method == "exact lattice"
    assert net.width >= net.lattice.n_terms and net.n_params > 0 and net.flops > 0
    assert assert_agrees_with_daqp(net, prob, 600, seed=101) > 0


@pytest.mark.slow  # ~8 s: 29 000 LPs
def test_paper_problem_whole_sequence_network_is_proven(paper):
    prob, part = paper
    net = mpc2nn.exact_network(part, "U")
    assert net.n_out == part.qp.n_U
    cert = net.certify()
    assert cert.proven, cert.summary()
    assert_agrees_with_daqp(net, prob, 300, seed=102)


def test_double_integrator_sequence_small_late_inputs_are_proven_at_their_own_scale(di, di_sequence):
    # the late inputs of the double integrator are ~1e-8 on its box: their rows are judged at that scale
    prob, part = di
    net = di_sequence
    cert = net.certify()
    assert cert.proven, cert.summary()
    assert cert.tol.min() < 1e-6 * cert.tol.max()  # the small outputs do have a scale of their own
    assert_agrees_with_daqp(net, prob, 300, seed=103)


RANDOM = [  # (seed, unstable, state bounds, n_x, n_u, N, box): regions 18..111 (measured), both kinds of system
    (1, True, False, 3, 2, 4, 1.0),
    (4, True, True, 3, 1, 4, 1.0),
    (1, False, False, 3, 2, 4, 6.0),
    (5, False, False, 4, 2, 5, 3.0),
]


@pytest.mark.parametrize("case", RANDOM, ids=lambda c: f"seed{c[0]}-{'unstable' if c[1] else 'stable'}-nx{c[3]}")
def test_random_problems_proven_and_agree_with_daqp(case):
    prob = random_problem(*case)
    part = mpc2nn.critical_regions(prob, max_regions=400, time_limit=30)
    assert part.complete and part.n_regions > 5, part.reason
    net = mpc2nn.exact_network(part)
    cert = net.certify()
    assert cert.proven, cert.summary()
    # pieces merged: never more terms than the scalar laws of the distinct first-input laws
    assert net.lattice.n_terms <= part.qp.n_u * part.pieces.n_pieces
    assert_agrees_with_daqp(net, prob, 500, seed=104)


def test_broken_networks_fail_the_certificate(di):
    prob, part = di
    net = mpc2nn.exact_network(part)
    scale = float(net.certify().tol[0] / mpc2nn.regions.CERTIFY_TOL)  # the output's scale, max |u0|
    assert scale > 0
    # one bias moved by 1e-6 of the output's scale: refuted, with points where it is wrong (checked with DAQP)
    with torch.no_grad():
        net.w[0] += 1e-6 * scale
    cert = net.certify()
    assert not cert.proven and cert.status == Proof.REFUTED
    assert (cert.verdict != str(Proof.PROVEN)).any() and cert.counterexample.shape[0] > 0
    ref = mpc2nn.solve_daqp(prob, cert.counterexample)  # DAQP's error (<= 1e-11 here) is far below the tolerance
    assert np.all(np.abs(net.evaluate(cert.counterexample)[:, 0] - ref.U[:, 0]) > cert.tol[0])
    # one gain scaled by 1 %: not proven
    net = mpc2nn.exact_network(part)
    with torch.no_grad():
        net.Wt[0, 1] *= 1.01
    assert not net.certify().proven
    # a NaN weight fails at once
    net = mpc2nn.exact_network(part)
    with torch.no_grad():
        net.Wt[0, 0] = float("nan")
    cert = net.certify()
    assert not cert.proven and cert.status == Proof.FAILED and "NaN" in cert.reason
    assert np.isinf(cert.margin).all()
    # a min turned into a max: the levels no longer form the lattice the witness is for
    net = mpc2nn.exact_network(part)
    with torch.no_grad():
        net.sign0[0] *= -1
    cert = net.certify()
    assert not cert.proven and cert.status in (Proof.FAILED, Proof.REFUTED)


def test_incomplete_partition_is_refused_and_never_proven(di):
    _, part = di
    small = mpc2nn.critical_regions(mpc2nn.systems.double_integrator(), max_regions=5)
    assert not small.complete
    with pytest.raises(ProblemDefinitionError, match="incomplete"):
        mpc2nn.exact_network(small)
    # a network of the complete partition judged against the incomplete one: no proof
    net = mpc2nn.exact_network(part)
    cert = mpc2nn.regions.certify_program(small, net.program(), net.lattice)
    assert not cert.proven and cert.status == Proof.INCOMPLETE and "incomplete" in cert.reason
    with pytest.raises(ProblemDefinitionError, match="output"):
        mpc2nn.exact_network(part, "x0")


def test_save_load_round_trip_is_bit_exact_and_keeps_the_proof(paper, di, di_sequence, tmp_path):
    for (prob, part), output in ((paper, "u0"), (di, "U")):
        X = mpc2nn.sample_states(prob, 100, seed=105)
        net = di_sequence if output == "U" else mpc2nn.exact_network(part, output)
        path = mpc2nn.save(net, tmp_path / f"{output}.mpc2nn")
        back = mpc2nn.load(path)
        assert type(back) is type(net) and back.output == output and back.depth == net.depth
        assert back.n_params == net.n_params
        assert np.array_equal(back.evaluate(X), net.evaluate(X))
    assert back.certify().proven
    # a broken network saved and loaded is still broken: the proof reads the weights, not a flag
    with torch.no_grad():
        net.w[0] += 1e-3
    assert not mpc2nn.load(mpc2nn.save(net, tmp_path / "broken.mpc2nn")).certify().proven


def test_onnx_and_torchscript_exports_are_linear_relu_and_match(paper, di, di_sequence, tmp_path):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    prob, part = paper
    X = mpc2nn.sample_states(prob, 40, seed=106)
    net = mpc2nn.exact_network(part)
    path = mpc2nn.export.to_onnx(net, tmp_path / "u0.onnx")
    ops = {n.op_type for n in onnx.load(str(path)).graph.node}
    assert ops <= {"MatMul", "Add", "Sub", "Relu", "Constant"}, ops
    u = ort.InferenceSession(str(path)).run(None, {"x": X})[0]
    assert u.shape == (40, part.qp.n_u) and np.abs(u - net.evaluate(X)).max() <= tol("export")
    ts = torch.jit.load(str(mpc2nn.export.to_torchscript(net, tmp_path / "u0.pt")))
    assert np.abs(ts(torch.tensor(X)).numpy() - net.evaluate(X)).max() <= tol("export")
    seq = di_sequence
    path = mpc2nn.export.to_onnx(seq, tmp_path / "U.onnx", output="sequence")
    X = mpc2nn.sample_states(di[0], 40, seed=106)
    U = ort.InferenceSession(str(path)).run(None, {"x": X})[0]
    assert np.abs(U - seq.evaluate(X)).max() <= tol("export")
    with pytest.raises(ProblemDefinitionError, match="sequence"):
        mpc2nn.export.to_onnx(net, tmp_path / "bad.onnx", output="sequence")


def test_c_export_compiles_and_matches(di, tmp_path):
    import ctypes
    import shutil
    import subprocess

    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc is not installed")
    pytest.importorskip("onnx")
    prob, part = di
    net = mpc2nn.exact_network(part)
    src = mpc2nn.export.to_c(net, tmp_path / "c")
    lib_path = tmp_path / "c" / "lib.so"
    subprocess.run([gcc, "-O2", "-std=c99", "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC", "-o", str(lib_path),
                    str(src)], check=True, capture_output=True)
    lib = ctypes.CDLL(str(lib_path))
    u = np.zeros(1)
    for x in mpc2nn.sample_states(prob, 20, seed=107):
        x = np.ascontiguousarray(x)
        lib.mpc2nn_control(x.ctypes.data_as(ctypes.c_void_p), u.ctypes.data_as(ctypes.c_void_p))
        assert np.abs(u - net.evaluate(x)[0]).max() <= tol("export")


def test_closed_loop_and_validate(di):
    prob, part = di
    net = mpc2nn.exact_network(part)
    x0 = mpc2nn.sample_states(prob, 1, seed=108)[0]
    traj = mpc2nn.simulate(prob, mpc2nn.ExplicitController(net), x0, 30)
    ref = mpc2nn.simulate(prob, mpc2nn.MPCController(prob), x0, 30)
    assert np.abs(traj.inputs - ref.inputs).max() <= tol("vs_osqp")
    report = mpc2nn.validate(net, prob, mpc2nn.sample_states(prob, 200, seed=109), reference="daqp")
    assert report.error.max() <= tol("vs_daqp")
    with pytest.raises(mpc2nn.ProblemDefinitionError, match="record_residuals: ExactNetwork has no layer residuals"):
        mpc2nn.ExplicitController(net, record_residuals=True)


def test_cli_unravel_exact(tmp_path, capfd):
    import json

    from mpc2nn.cli import main

    saved = tmp_path / "exact.mpc2nn"
    code = main(["unravel", "builtin:double_integrator", "--exact", "--samples", "100", "-o", str(saved), "--json"])
    data = json.loads(capfd.readouterr().out)
    assert code == 0 and data["proven"] and data["passed"] and data["regions"] == 39  # PPOPT's count (test_regions)
    assert data["max_error"] <= tol("same_math") and saved.exists()  # against the exact implicit solve
    assert mpc2nn.load(saved).certify().proven
    code = main(["export", str(saved), "--format", "torchscript", "-o", str(tmp_path / "c.pt"), "--json"])
    assert code == 0 and json.loads(capfd.readouterr().out)["kind"] == "ExactNetwork"
    # out of budget: exit code 1, no network, the reason and the advice
    code = main(["unravel", "builtin:double_integrator", "--exact", "--max-regions", "5", "--json"])
    data = json.loads(capfd.readouterr().out)
    assert code == 1 and not data["complete"] and not data["proven"] and "max_regions" in data["reason"]


def test_degenerate_qp_network_is_the_closed_form():
    # z minimises ½‖z - θ‖² under z1 <= 1, z2 <= 1, z1 + z2 <= 2 (weakly active on a whole region, LICQ fails
    # there) and z1 <= 1 once more (a duplicate): z = min(θ, 1) componentwise (test_regions' degenerate case)
    qp = mpc2nn.CondensedQP(H=np.eye(2), F=-np.eye(2), G=[[1.0, 0], [0, 1], [1, 1], [1, 0]], w=[1.0, 1, 2, 1],
                            E=np.zeros((4, 2)), n_u=2, sample_box=(-3 * np.ones(2), 3 * np.ones(2)))
    net = mpc2nn.exact_network(mpc2nn.critical_regions(qp))
    assert net.certify().proven
    X = np.random.default_rng(0).uniform(-3, 3, (500, 2))
    assert net.contains(X).all()
    assert np.abs(net.evaluate(X) - np.minimum(X, 1.0)).max() <= tol("same_math")
    assert net.depth == 1  # one min per output: min(θ_i, 1)


def test_float32_weights_are_judged_as_stored(di):
    prob, part = di
    net = mpc2nn.exact_network(part, dtype=torch.float32)
    assert not net.certify().proven  # rounding to float32 moves the terms by ~1e-7 of the scale: no 1e-9 proof
    X = mpc2nn.sample_states(prob, 200, seed=110)
    ref = mpc2nn.solve_daqp(prob, X)
    assert np.abs(net.evaluate(X) - ref.U[:, :1]).max() <= tol("export", "float32")
