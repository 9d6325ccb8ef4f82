"""The lean forward of explicit networks for small batches (mpc2nn.explicit._fast) against the torch forward."""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from strategies import mpc_problems
from tolerances import tol

import mpc2nn

torch = pytest.importorskip("torch")
from mpc2nn.explicit import (  # noqa: E402
    FAST_MAX_BATCH,
    JIT_MAX_BATCH,
    ADMMOptions,
    FastLayers,
    MomentumOptions,
    PaperOptions,
)

ROOT = Path(__file__).resolve().parents[1]


def _options(qp):
    """One options object per layer form of the lean path (no tuning: fixed, valid values)."""
    rng = np.random.default_rng(0)
    K = 0.05 * rng.normal(size=(qp.m, qp.m))
    return {"admm": ADMMOptions(rho=1.0, relax=1.6, scaling="norm"), "paper": PaperOptions(K=0.0),
            "paper K=0.3": PaperOptions(K=0.3), "paper-matrix": PaperOptions(K=K),
            "momentum": MomentumOptions(beta=0.7)}


def _torch_forward(ex, X, state0=None):
    """``(U, state)`` of the torch layers (the reference of every comparison here)."""
    with torch.no_grad():
        x = torch.as_tensor(X, dtype=ex._dtype)
        ctx = ex.context(x)
        state = ex.init_state(x) if state0 is None else tuple(torch.as_tensor(s) for s in state0)
        for _ in range(ex.depth):
            state = ex.layer(state, ctx)
        return ex.output(state, x).double().numpy(), tuple(s.double().numpy() for s in state)


def _close(a, b, purpose="lean_vs_torch"):
    scale = max(1.0, float(np.nanmax(np.abs(b), initial=0.0)))
    assert np.array_equal(np.isnan(a), np.isnan(b))
    assert np.nanmax(np.abs(a - b), initial=0.0) <= tol(purpose) * scale


def _theta(problem, n, seed):
    return mpc2nn.sampling.sample_parameters(problem, n, seed=seed, feasible=None)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mpc_problems(max_nx=8, max_N=5))
def test_lean_path_equals_torch_on_random_problems(case):
    """Every layer form, compiled and numpy, cold and warm-started, on random formulations (θ with u_prev and
    references, move-blocked outputs U = T z), equals the torch forward to rounding."""
    problem, seed = case
    net = mpc2nn.compile(problem)
    X = _theta(problem, 3, seed)
    for name, opts in _options(net.qp).items():
        ex = mpc2nn.unravel(net, depth=12, method=opts)
        fast = ex.fast_layers()
        assert fast is not None and fast.kind == name.split(" ")[0], name
        ref, ref_state = _torch_forward(ex, X)
        for compiled in (True, False):
            U, state = fast.run(X, ex.depth, compiled=compiled)
            _close(U, ref)
            for s, r in zip(state, ref_state, strict=True):
                _close(s, r)
            # warm start: continue from the state reached (the controller's carried layer state)
            U2, _ = fast.run(X, ex.depth, state, compiled=compiled)
            _close(U2, _torch_forward(ex, X, ref_state)[0])
        _close(ex.evaluate(X), ref)


@pytest.mark.parametrize("name", ["double_integrator", "quadcopter"])
def test_public_problems_evaluate_run_and_controller(name):
    """On public problems: evaluate/run on one state and on small batches, ExplicitController with and without
    warm start, against the torch forward; batches above FAST_MAX_BATCH go through torch unchanged."""
    problem = mpc2nn.systems.all_problems()[name]()
    net = mpc2nn.compile(problem)
    ex = mpc2nn.unravel(net, depth=20, method=ADMMOptions(rho=1.0, relax=1.6, scaling="jacobi"))
    X = _theta(problem, FAST_MAX_BATCH + 3, 1)
    ref, _ = _torch_forward(ex, X)
    for B in (1, JIT_MAX_BATCH, JIT_MAX_BATCH + 1, FAST_MAX_BATCH, FAST_MAX_BATCH + 3):
        _close(ex.evaluate(X[:B]), ref[:B])
    _close(ex.evaluate(X[0]), ref[:1])  # a single vector is promoted to B = 1
    U, state = ex.run(X[:2])
    assert all(isinstance(s, torch.Tensor) and s.dtype == torch.float64 for s in state)
    _close(ex.run(X[:2], state0=state)[0], _torch_forward(ex, X[:2], state)[0])
    # the controller, warm-started: the layer state carried across calls, as torch carries it
    ctrl = mpc2nn.ExplicitController(ex, warm_start=True)
    state = None
    for x in X[:5]:
        u = ctrl(x).u
        U_ref, state = _torch_forward(ex, x[None], state)
        _close(u, U_ref[0, :ex.n_u])
    cold = mpc2nn.ExplicitController(ex)
    _close(np.array([cold(x).u for x in X[:5]]), ref[:5, :ex.n_u])
    # record_residuals keeps the torch layers and its residuals
    rec = mpc2nn.ExplicitController(ex, record_residuals=True)
    _close(rec(X[0]).u, ref[0, :ex.n_u])
    assert rec.residuals[0].shape == (ex.depth,)


def test_controller_with_input_rates_and_references():
    """θ = (x, u_prev, x_ref, u_ref) built by the controller: the lean path sees the same θ as torch."""
    problem = mpc2nn.systems.double_integrator().replace(du_min=[-0.3], du_max=[0.3], tracking=True)
    net = mpc2nn.compile(problem)
    ex = mpc2nn.unravel(net, depth=15, method=ADMMOptions(rho=1.0, relax=1.6, scaling="norm"))
    ctrl = mpc2nn.ExplicitController(ex)
    x, u_prev, x_ref, u_ref = np.array([0.5, -0.2]), np.array([0.1]), np.array([0.2, 0.0]), np.array([0.0])
    theta = net.qp.parameters(x, u_prev=u_prev, x_ref=x_ref, u_ref=u_ref)
    _close(ctrl(x, u_prev=u_prev, x_ref=x_ref, u_ref=u_ref).u, _torch_forward(ex, theta)[0][0, :1])


def test_controller_deviation_coordinates_and_shape_errors():
    """A QP without tracking sees x - x_ref (the old path); a wrong shape still gets the layout's message."""
    problem = mpc2nn.systems.double_integrator()
    ex = mpc2nn.unravel(mpc2nn.compile(problem), depth=8, method=ADMMOptions(rho=1.0, relax=1.6))
    ctrl = mpc2nn.ExplicitController(ex)
    x, r = np.array([0.5, -0.2]), np.array([0.1, 0.1])
    _close(ctrl(x, u_prev=np.array([0.3]), x_ref=r).u, _torch_forward(ex, (x - r)[None])[0][0, :1])
    with pytest.raises(mpc2nn.exceptions.ShapeError, match=r"x: expected shape \(2,\)"):
        ctrl(np.zeros(3))


def test_float32_networks_keep_torch_and_float32():
    problem = mpc2nn.systems.double_integrator()
    net = mpc2nn.compile(problem)
    X = _theta(problem, 3, 2)
    ex32 = mpc2nn.unravel(net, depth=10, method=ADMMOptions(rho=1.0, relax=1.6), dtype=torch.float32)
    assert ex32.fast_layers() is None
    with torch.no_grad():
        ref32 = ex32(torch.as_tensor(X, dtype=torch.float32)).double().numpy()
    assert np.array_equal(ex32.evaluate(X), ref32)  # the torch forward itself, float32 arithmetic
    assert np.array_equal(mpc2nn.ExplicitController(ex32)(X[0]).u, ref32[0, :1])
    # a float64 network cast afterwards (module.to + set_dtype) leaves the lean path too
    ex = mpc2nn.unravel(net, depth=10, method=ADMMOptions(rho=1.0, relax=1.6))
    assert ex.fast_layers() is not None
    ex.to(torch.float32)
    ex.set_dtype(torch.float32)
    assert ex.fast_layers() is None
    with torch.no_grad():
        assert np.array_equal(ex.evaluate(X), ex(torch.as_tensor(X, dtype=torch.float32)).double().numpy())


def test_changed_buffers_and_nan_inputs():
    """A buffer changed in place is seen by the lean path (the arrays are re-extracted); NaN stays NaN."""
    problem = mpc2nn.systems.double_integrator()
    net = mpc2nn.compile(problem)
    ex = mpc2nn.unravel(net, depth=10, method=PaperOptions(K=0.2))
    X = _theta(problem, 2, 3)
    ex.evaluate(X)
    with torch.no_grad():
        ex.b.mul_(0.5)
        ex.k = 0.1
    _close(ex.evaluate(X), _torch_forward(ex, X)[0])
    Xn = X.copy()
    Xn[0, 0] = np.nan
    admm = mpc2nn.unravel(net, depth=10, method=ADMMOptions(rho=1.0, relax=1.6))
    for law in (ex, admm):
        for compiled in (True, False):
            U, _ = law.fast_layers().run(Xn, law.depth, compiled=compiled)
            _close(U, _torch_forward(law, Xn)[0])
        assert np.isnan(law.evaluate(Xn)[0]).all() and np.isfinite(law.evaluate(Xn)[1]).all()


def test_state0_of_another_shape_goes_through_torch():
    problem = mpc2nn.systems.double_integrator()
    ex = mpc2nn.unravel(mpc2nn.compile(problem), depth=5, method=MomentumOptions(beta=0.5))
    X = _theta(problem, 3, 4)
    _, state = ex.run(X[:1])
    assert ex.fast_layers().run(X, ex.depth, state) is None  # (1, m) states for 3 inputs: not the lean path's
    U, _ = ex.run(X, state0=state)  # torch broadcasts the state, as before
    _close(U, _torch_forward(ex, X, tuple(s.numpy() for s in state))[0])


def test_exact_network_lean_path():
    problem = mpc2nn.systems.double_integrator()
    part = mpc2nn.critical_regions(problem)
    exact = mpc2nn.exact_network(part)
    X = _theta(problem, 40, 5)
    with torch.no_grad():
        ref = exact(torch.as_tensor(X)).numpy()
    fp = exact._fast_program(exact.program())
    for compiled in (True, False):
        _close(fp.evaluate(X, compiled=compiled), ref)
    _close(np.vstack([exact.evaluate(x) for x in X]), ref)
    _close(exact.evaluate(X), ref)
    _close(np.array([mpc2nn.ExplicitController(exact)(x).u for x in X[:5]]), ref[:5])
    Xn = X[:2].copy()
    Xn[1, 1] = np.nan
    assert np.isnan(exact.evaluate(Xn)[1]).all() and np.isfinite(exact.evaluate(Xn)[0]).all()


def test_without_numba_in_a_fresh_process():
    """MPC2NN_NO_NUMBA=1: nothing is compiled, the numpy path gives the torch forward's numbers."""
    code = textwrap.dedent("""
        import numpy as np, torch, mpc2nn
        from mpc2nn.explicit import kernels_available, ADMMOptions
        assert not kernels_available()
        prob = mpc2nn.systems.double_integrator()
        ex = mpc2nn.unravel(mpc2nn.compile(prob), depth=10, method=ADMMOptions(rho=1.0, relax=1.6))
        X = mpc2nn.sampling.sample_parameters(prob, 3, seed=0, feasible=None)
        with torch.no_grad():
            ref = ex(torch.as_tensor(X)).numpy()
        print(float(np.abs(ex.evaluate(X) - ref).max() / max(1.0, np.abs(ref).max())))
    """)
    env = dict(os.environ, MPC2NN_NO_NUMBA="1", PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    assert float(out.stdout.strip().splitlines()[-1]) <= tol("lean_vs_torch")


def test_kinds_are_known():
    with pytest.raises(mpc2nn.exceptions.ProblemDefinitionError, match="kind"):
        FastLayers("lstm", {}, {}, None)
