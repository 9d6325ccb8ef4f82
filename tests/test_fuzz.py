"""Hypothesis fuzzers over problems, formulations, states, dtypes and files (issue 13).

Each property is one function run twice: bounded in the default suite, deeper under ``-m slow``.

* every explicit construction's error bound (:meth:`ExplicitNetwork.error_bound`) is >= its true
  error against DAQP, in float64 and float32;
* save/load keeps every object bit for bit (problem, QP, implicit and explicit network), and the
  ONNX and TorchScript exports compute the network's outputs;
* random byte flips of a saved file give FileFormatError, or an intact object;
* problem files: ``problem_from_toml(problem_to_toml(p))`` is ``p``.

(The certified ⇒ DAQP agrees / infeasible ⇒ LP agrees fuzzer of the exact solver is another one.)
"""
import io
import sys
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import strategies as st

import mpc2nn
from mpc2nn.exceptions import FileFormatError, IllConditionedWarning
from mpc2nn.io import problem_from_toml, problem_to_toml
from tests.strategies import feasible_parameters, mpc_problems
from tests.tolerances import TOL

tomllib = pytest.importorskip("tomllib" if sys.version_info >= (3, 11) else "tomli")

#: the default suite's run: the same examples every time, no shrinking (a failure is reported as drawn)
QUICK = settings(max_examples=6, deadline=None, derandomize=True, phases=[Phase.explicit, Phase.generate],
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
DEEP = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                        HealthCheck.data_too_large])
CONSTRUCTIONS = ("admm", "momentum", "paper", "lmi")


# --- error bounds >= true error ---------------------------------------------------------------------------
def check_error_bounds(case, method, depth, dtype_name):
    torch = pytest.importorskip("torch")
    if method == "lmi":
        pytest.importorskip("cvxpy")
    prob, seed = case
    theta, U_ref = feasible_parameters(prob, 24, seed % 10_000)
    assume(theta.shape[0] >= 2)
    net = mpc2nn.compile(prob)
    dtype = getattr(torch, dtype_name)
    tuning, _ = feasible_parameters(prob, 8, seed % 10_000 + 1)   # tuned apart from the checked states
    ex = mpc2nn.unravel(net, depth=depth, method=method, dtype=dtype,
                        tuning_states=tuning if tuning.shape[0] else theta)
    err = np.abs(ex.evaluate(theta) - U_ref).max(axis=1)
    bound = ex.error_bound(theta)
    # DAQP's own error (tolerance 1e-10) is the only allowance
    slack = TOL["bound_vs_daqp", "float64"] * np.maximum(1.0, np.abs(U_ref).max(axis=1))
    bad = bound.bound + slack < err
    assert not bad.any(), (f"{method} depth {depth} {dtype_name}: bound {bound.bound[bad]} < error {err[bad]} "
                           f"({bound.kind[bad]})")


# depth >= 1: unravel(depth=0) is refused by name (tests/test_unravel_tol.py)
_bound_cases = (mpc_problems(max_nx=4, max_nu=2, max_N=4), st.sampled_from(CONSTRUCTIONS), st.integers(1, 60),
                st.sampled_from(["float64", "float32"]))


@QUICK
@given(*_bound_cases)
def test_error_bounds_cover_the_true_error(case, method, depth, dtype_name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IllConditionedWarning)
        check_error_bounds(case, method, depth, dtype_name)


@pytest.mark.slow
@DEEP
@given(mpc_problems(max_nx=8, max_nu=3, max_N=6), st.sampled_from(CONSTRUCTIONS), st.integers(1, 400),
       st.sampled_from(["float64", "float32"]))
def test_error_bounds_cover_the_true_error_deeply(case, method, depth, dtype_name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IllConditionedWarning)
        check_error_bounds(case, method, depth, dtype_name)


# --- save/load and export round trips ---------------------------------------------------------------------
def check_round_trips(case, tmp_path):
    prob, seed = case
    net = mpc2nn.compile(prob)
    theta = mpc2nn.sampling.sample_parameters(prob, 10, seed=seed % 10_000, feasible=None)
    for obj in (prob, net.qp, net):
        back = mpc2nn.load(mpc2nn.save(obj, tmp_path / "o.mpc2nn"), expect_problem=prob)
        assert type(back) is type(obj) and mpc2nn.problem_hash(back) == mpc2nn.problem_hash(obj)
    back = mpc2nn.load(tmp_path / "o.mpc2nn")
    a, b = net.solve(theta), back.solve(theta)
    np.testing.assert_array_equal(a.U, b.U)
    np.testing.assert_array_equal(a.status, b.status)
    torch = pytest.importorskip("torch")
    ex = mpc2nn.unravel(net, depth=1 + int(seed % 7), method="paper")
    exb = mpc2nn.load(mpc2nn.save(ex, tmp_path / "e.mpc2nn"))
    np.testing.assert_array_equal(ex.evaluate(theta), exb.evaluate(theta))
    ort = pytest.importorskip("onnxruntime")
    from mpc2nn.deploy import to_onnx, to_torchscript

    to_onnx(ex, tmp_path / "e.onnx", output="sequence")
    sess = ort.InferenceSession(str(tmp_path / "e.onnx"))
    U_onnx = sess.run(None, {"x": theta})[0]
    tol = TOL["same_math", "float64"] * max(1.0, np.abs(ex.evaluate(theta)).max())
    np.testing.assert_allclose(U_onnx, ex.evaluate(theta), atol=tol, rtol=0)
    to_torchscript(ex, tmp_path / "e.pt", output="sequence")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ts = torch.jit.load(str(tmp_path / "e.pt"))
    np.testing.assert_allclose(ts(torch.tensor(theta)).numpy(), ex.evaluate(theta), atol=tol, rtol=0)


@QUICK
@given(mpc_problems(max_nx=4, max_nu=2, max_N=4))
def test_save_load_and_export_round_trips(tmp_path_factory, case):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IllConditionedWarning)
        check_round_trips(case, tmp_path_factory.mktemp("rt"))


@pytest.mark.slow
@DEEP
@given(mpc_problems(max_nx=12, max_nu=3, max_N=8))
def test_save_load_and_export_round_trips_deeply(tmp_path_factory, case):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IllConditionedWarning)
        check_round_trips(case, tmp_path_factory.mktemp("rt"))


# --- byte flips -------------------------------------------------------------------------------------------
def check_byte_flips(case, kind, flips, tmp_path):
    prob, _ = case
    obj = {"problem": prob, "qp": lambda: mpc2nn.condense(prob), "net": lambda: mpc2nn.compile(prob)}[kind]
    obj = obj() if callable(obj) else obj
    data = mpc2nn.save(obj, tmp_path / "f.mpc2nn").read_bytes()
    flipped = bytearray(data)
    for pos, xor in flips:
        flipped[pos % len(data)] ^= xor
    (tmp_path / "g.mpc2nn").write_bytes(bytes(flipped))
    try:
        back = mpc2nn.load(tmp_path / "g.mpc2nn")
    except FileFormatError:
        return
    assert mpc2nn.problem_hash(back) == mpc2nn.problem_hash(obj)  # a flip the format does not depend on


_flips = st.lists(st.tuples(st.integers(0, 2**31), st.integers(1, 255)), min_size=1, max_size=4)


@settings(QUICK, max_examples=30)
@given(mpc_problems(max_nx=3, max_nu=2, max_N=3), st.sampled_from(["problem", "qp", "net"]), _flips)
def test_byte_flips_are_file_format_errors(tmp_path_factory, case, kind, flips):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IllConditionedWarning)
        check_byte_flips(case, kind, flips, tmp_path_factory.mktemp("flip"))


@pytest.mark.slow
@settings(DEEP, max_examples=400)
@given(mpc_problems(max_nx=6, max_nu=3, max_N=5), st.sampled_from(["problem", "qp", "net"]), _flips)
def test_byte_flips_are_file_format_errors_deeply(tmp_path_factory, case, kind, flips):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IllConditionedWarning)
        check_byte_flips(case, kind, flips, tmp_path_factory.mktemp("flip"))


# --- problem files ----------------------------------------------------------------------------------------
def check_toml(case):
    prob, _ = case
    text = problem_to_toml(prob)
    back = problem_from_toml(tomllib.load(io.BytesIO(text.encode())))
    assert mpc2nn.problem_hash(back) == mpc2nn.problem_hash(prob), text
    assert back.name == prob.name and back.tracking == prob.tracking
    assert problem_to_toml(back) == text


@settings(QUICK, max_examples=30)
@given(mpc_problems(max_nx=5, max_nu=3, max_N=6))
def test_problem_files_round_trip(case):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IllConditionedWarning)
        check_toml(case)


@pytest.mark.slow
@settings(DEEP, max_examples=300)
@given(mpc_problems(max_nx=12, max_nu=3, max_N=10))
def test_problem_files_round_trip_deeply(case):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IllConditionedWarning)
        check_toml(case)
