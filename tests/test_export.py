"""save/load: exact round trips, refusal of corrupted, too new or mismatched files."""
import json
import zipfile

import numpy as np
import pytest
from tolerances import tol

import mpc2nn
import mpc2nn.export
from mpc2nn.export import FORMAT_VERSION


def objects(p):
    qp = mpc2nn.systems.as_qp(p)
    return ([p] if isinstance(p, mpc2nn.MPCProblem) else []) + [qp, mpc2nn.compile(qp)]


def test_round_trips_are_exact(public_problem, tmp_path):
    X = mpc2nn.sample_states(public_problem, 20)
    for obj in objects(public_problem):
        back = mpc2nn.load(mpc2nn.save(obj, tmp_path / "f.mpc2nn"))
        assert type(back) is type(obj)
        names = {mpc2nn.MPCProblem: ("A", "B", "Q", "R", "P", "u_min", "u_max", "x_min", "x_max"),
                 mpc2nn.CondensedQP: ("H", "F", "G", "w", "E"),
                 mpc2nn.ImplicitNetwork: ("W", "Y", "b", "W_f", "Y_f", "alpha")}[type(obj)]
        for n in names:
            assert np.array_equal(getattr(back, n), getattr(obj, n))
        assert mpc2nn.problem_hash(back) == mpc2nn.problem_hash(obj)
        # the loaded object computes the same control law, bit for bit
        U1 = mpc2nn.compile(obj if not isinstance(obj, mpc2nn.ImplicitNetwork) else obj.qp).solve(X).U
        U2 = mpc2nn.compile(back if not isinstance(back, mpc2nn.ImplicitNetwork) else back.qp).solve(X).U
        assert np.array_equal(U1, U2)


def test_problem_qp_and_network_share_a_problem_hash():
    p = mpc2nn.systems.double_integrator()
    hashes = {mpc2nn.problem_hash(o) for o in objects(p)}
    assert len(hashes) == 1
    assert mpc2nn.problem_hash(mpc2nn.systems.quadcopter()) not in hashes


def test_metadata_is_documented_json(tmp_path):
    path = mpc2nn.save(mpc2nn.compile(mpc2nn.systems.drummond2024()), tmp_path / "n.mpc2nn")
    with zipfile.ZipFile(path) as zf:
        meta = json.loads(zf.read("metadata.json"))
        assert "arrays/W.npy" in zf.namelist()
    assert meta["format"] == "mpc2nn" and meta["format_version"] == FORMAT_VERSION
    assert meta["kind"] == "ImplicitNetwork" and meta["mpc2nn_version"] == mpc2nn.__version__
    assert len(meta["content_hash"]) == 64 and meta["created"].endswith("+00:00")


def rewrite(path, out, *, meta_change=None, array_change=None):
    with zipfile.ZipFile(path) as zin, zipfile.ZipFile(out, "w") as zout:
        for name in zin.namelist():
            data = zin.read(name)
            if name == "metadata.json" and meta_change:
                meta = json.loads(data)
                meta_change(meta)
                data = json.dumps(meta).encode()
            if array_change and name == array_change[0]:
                data = array_change[1](data)
            zout.writestr(name, data)
    return out


def test_corrupted_array_is_refused(tmp_path):
    path = mpc2nn.save(mpc2nn.compile(mpc2nn.systems.drummond2024()), tmp_path / "n.mpc2nn")
    flip = lambda b: b[:-8] + bytes([b[-8] ^ 1]) + b[-7:]  # noqa: E731  one bit of the last float
    bad = rewrite(path, tmp_path / "bad.mpc2nn", array_change=("arrays/W.npy", flip))
    with pytest.raises(mpc2nn.FileFormatError, match="content hash mismatch"):
        mpc2nn.load(bad)


def test_newer_format_and_foreign_files_are_refused(tmp_path):
    path = mpc2nn.save(mpc2nn.systems.drummond2024(), tmp_path / "p.mpc2nn")
    newer = rewrite(path, tmp_path / "new.mpc2nn",
                    meta_change=lambda m: m.update(format_version=FORMAT_VERSION + 1))
    with pytest.raises(mpc2nn.FileFormatError, match="newer than this mpc2nn reads"):
        mpc2nn.load(newer)
    junk = tmp_path / "junk.mpc2nn"
    junk.write_bytes(b"not a zip")
    with pytest.raises(mpc2nn.FileFormatError, match="not a readable mpc2nn file"):
        mpc2nn.load(junk)


def test_mismatched_problem_is_refused(tmp_path):
    path = mpc2nn.save(mpc2nn.compile(mpc2nn.systems.double_integrator()), tmp_path / "n.mpc2nn")
    assert isinstance(mpc2nn.load(path, expect_problem=mpc2nn.systems.double_integrator()), mpc2nn.ImplicitNetwork)
    with pytest.raises(mpc2nn.FileFormatError, match="belongs to another problem"):
        mpc2nn.load(path, expect_problem=mpc2nn.systems.quadcopter())


# --- explicit networks: save/load, ONNX, TorchScript ------------------------------------------
torch = pytest.importorskip("torch")
CONSTRUCTIONS = [dict(method="admm", depth=25), dict(method="paper", depth=30),
                 dict(method="momentum", depth=25, beta=0.5), dict(method="admm", depth=25, prune=True)]
LINEAR_RELU_OPS = {"MatMul", "Gemm", "Add", "Sub", "Mul", "Relu", "Constant"}


@pytest.fixture(scope="module")
def di_setup():
    prob = mpc2nn.systems.double_integrator()
    return prob, mpc2nn.compile(prob), mpc2nn.sample_states(prob, 40, seed=8)


@pytest.mark.parametrize("kw", CONSTRUCTIONS, ids=lambda kw: kw["method"] + ("+prune" if kw.get("prune") else ""))
def test_explicit_network_round_trip_is_exact(di_setup, kw, tmp_path):
    prob, net, X = di_setup
    ex = mpc2nn.unravel(net, **kw)
    back = mpc2nn.load(mpc2nn.save(ex, tmp_path / "ex.mpc2nn"), expect_problem=prob)
    assert type(back) is type(ex) and back.depth == ex.depth
    assert np.array_equal(back.evaluate(X), ex.evaluate(X))
    assert np.array_equal(back.error_bound(X).bound, ex.error_bound(X).bound)


@pytest.mark.parametrize("kw", CONSTRUCTIONS[:3], ids=lambda kw: kw["method"])
def test_onnx_export_is_linear_relu_and_matches_torch(di_setup, kw, tmp_path):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    _, net, X = di_setup
    ex = mpc2nn.unravel(net, **kw)
    for output, cols in (("control", 1), ("sequence", ex.n_U)):
        path = mpc2nn.export.to_onnx(ex, tmp_path / f"{output}.onnx", output=output)
        model = onnx.load(str(path))
        assert {n.op_type for n in model.graph.node} <= LINEAR_RELU_OPS
        u = ort.InferenceSession(str(path)).run(None, {"x": X})[0]
        assert u.shape == (X.shape[0], cols)  # dynamic batch: exported with 2 states, run with 40
        assert np.abs(u - ex.evaluate(X)[:, :cols]).max() <= tol("export")


def test_onnx_float32(di_setup, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    _, net, X = di_setup
    ex = mpc2nn.unravel(net, method="admm", depth=25)
    path = mpc2nn.export.to_onnx(ex, tmp_path / "f32.onnx", dtype="float32")
    u = ort.InferenceSession(str(path)).run(None, {"x": X.astype(np.float32)})[0]
    assert u.dtype == np.float32
    # documented float32 tolerance: 1e-4 relative to max(1, |u|) against the float64 network
    assert np.abs(u - ex.evaluate(X)[:, :1]).max() <= tol("export", "float32") * max(1.0, np.abs(u).max())


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")
def test_torchscript_export(di_setup, tmp_path):
    _, net, X = di_setup
    ex = mpc2nn.unravel(net, method="momentum", depth=25, beta=0.5)
    path = mpc2nn.export.to_torchscript(ex, tmp_path / "ex.pt", output="sequence")
    loaded = torch.jit.load(str(path))
    assert np.abs(loaded(torch.tensor(X)).numpy() - ex.evaluate(X)).max() <= tol("export")


def test_export_refuses_other_objects(di_setup, tmp_path):
    _, net, _ = di_setup
    with pytest.raises(TypeError, match="expected an explicit network from mpc2nn.unravel, got ImplicitNetwork"):
        mpc2nn.export.to_onnx(net, tmp_path / "x.onnx")
    hybrid = mpc2nn.unravel(net, depth=10, method="hybrid")
    with pytest.raises(TypeError, match="got HybridNetwork"):
        mpc2nn.export.to_torchscript(hybrid, tmp_path / "x.pt")
    ex = mpc2nn.unravel(net, method="admm", depth=5)
    with pytest.raises(ValueError, match="output: expected 'control' or 'sequence'"):
        mpc2nn.export.to_onnx(ex, tmp_path / "x.onnx", output="first")


@pytest.mark.parametrize("kw", CONSTRUCTIONS[:3], ids=lambda kw: kw["method"])
def test_c_export_compiles_and_matches(di_setup, kw, tmp_path):
    import ctypes
    import shutil
    import subprocess

    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc is not installed")
    _, net, X = di_setup
    ex = mpc2nn.unravel(net, **kw)
    for output, width in (("control", ex.n_u), ("sequence", ex.n_U)):
        src = mpc2nn.export.to_c(ex, tmp_path / output, output=output)
        lib_path = tmp_path / output / "lib.so"  # a fresh path: dlopen caches libraries by path
        subprocess.run([gcc, "-O2", "-std=c99", "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC", "-o",
                        str(lib_path), str(src)], check=True, capture_output=True)
        lib = ctypes.CDLL(str(lib_path))
        u = np.zeros(width)
        for x in X:
            x = np.ascontiguousarray(x)
            lib.mpc2nn_control(x.ctypes.data_as(ctypes.c_void_p), u.ctypes.data_as(ctypes.c_void_p))
            assert np.abs(u - ex.evaluate(x)[0, :width]).max() <= tol("export")
    header = (tmp_path / "control" / "mpc2nn_control.h").read_text()
    assert "void mpc2nn_control(const double x[2], double u[1]);" in header
