"""Benchmark problems: the numbers copied into mpc2nn.systems match the public benchmark files (tests/data)."""
import json
from pathlib import Path

import numpy as np
import pytest
from tolerances import tol

import mpc2nn

#: The public benchmark files, shipped with the tests (the package itself holds a copy of the numbers).
DATA = Path(__file__).resolve().parent / "data" / "benchmarks"


def load(name):
    return json.loads((DATA / f"{name}.json").read_text())


def bound(values, default):
    return np.array([default if v is None else v for v in values], float) if values is not None else None


@pytest.mark.parametrize("name", ["drummond2024_corrected", "double_integrator", "quadcopter",
                                  "inverted_pendulum", "oscillating_masses"])
def test_problem_numbers_match_benchmark_file(name):
    d = load(name)
    p = mpc2nn.systems.all_problems()[name]()
    assert np.allclose(p.A, d["A"], rtol=0, atol=tol("roundoff"))
    assert np.allclose(p.B, d["B"], rtol=0, atol=tol("roundoff"))
    assert np.allclose(p.Q, d["Q"], rtol=0, atol=tol("decimals"))
    assert np.allclose(p.R, d["R"], rtol=0, atol=tol("decimals"))
    assert p.horizon == d["horizon"]
    P = d["P"]
    assert p.terminal_weight_source == {"dare": "dare", "lyapunov": "lyapunov"}.get(P, "given")
    if P == "Q":
        assert np.array_equal(p.P, p.Q)
    for key, default in (("u_min", -np.inf), ("u_max", np.inf), ("x_min", -np.inf), ("x_max", np.inf)):
        want = bound(d.get(key), default)
        got = getattr(p, key)
        if want is None:
            assert np.all(np.isinf(got))
        else:
            assert np.allclose(got, want, rtol=0, atol=tol("roundoff"))
    assert np.array_equal(p.sample_box[0], d["sample_box"]["lo"])
    assert np.array_equal(p.sample_box[1], d["sample_box"]["hi"])


def test_quadcopter_reference_is_an_equilibrium_zero_in_bounded_components():
    d = load("quadcopter")
    p = mpc2nn.systems.quadcopter()
    x_ref = np.array(d["x_ref"], float)
    assert np.allclose(mpc2nn.systems.QUADCOPTER_X_REF, x_ref)
    assert np.allclose(p.A @ x_ref, x_ref)
    bounded = np.isfinite(p.x_min) | np.isfinite(p.x_max)
    assert np.all(x_ref[bounded] == 0)


def test_published_variant_keeps_the_quirks():
    d = load("drummond2024_published")
    qp = mpc2nn.systems.drummond2024("published")
    A, B = np.array(d["A"]), np.array(d["B"])
    Q = np.array(d["Q"])
    assert np.linalg.eigvalsh(Q)[0] < 0  # indefinite Q, as typed
    # truncated linear term: only u_0 sees the state, F[0] = BᵀQA
    assert np.allclose(qp.F[0], (B.T @ Q @ A)[0]) and np.all(qp.F[1:] == 0)
    assert np.allclose(np.abs(qp.G[np.nonzero(qp.G)]), 0.1) and np.all(qp.w == 1)
    assert mpc2nn.systems.DRUMMOND2024_PAPER_SETTINGS["alpha"] == d["alpha"]
    assert mpc2nn.systems.DRUMMOND2024_PAPER_SETTINGS["depth"] == d["depth"]


def test_oscillating_masses_scales():
    p = mpc2nn.systems.oscillating_masses(4)
    assert (p.n_x, p.n_u) == (8, 2)
    with pytest.raises(ValueError, match="n_masses: expected an even integer >= 2, got 5"):
        mpc2nn.systems.oscillating_masses(5)
