"""Examples are real scripts: each runs here with its small-size switch."""
import runpy
from pathlib import Path

import numpy as np
import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def run_example(name, *args):
    """Load ``examples/name`` (without running it as a script) and call its ``main(args)``."""
    module = runpy.run_path(str(EXAMPLES / name), run_name="example")
    return module["main"](list(args))


def test_quickstart(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    run_example("quickstart.py", "--small", "--output", str(tmp_path))
    out = capsys.readouterr().out
    assert "feasibility agreement         50/50" in out
    m = [line for line in out.splitlines() if line.startswith("max ‖U - U_osqp‖∞")]
    assert m and float(m[0].split()[-1]) < 1e-8
    assert (tmp_path / "quickstart.png").stat().st_size > 10_000


def test_quadcopter_closed_loop(tmp_path):
    pytest.importorskip("matplotlib")
    result = run_example("quadcopter_closed_loop.py", "--small", "--output", str(tmp_path))
    assert result["gap"] < 1e-8
    for tr in result["runs"].values():
        assert tr.state_violation.max() <= 1e-9 and tr.input_violation.max() <= 1e-9
    assert (tmp_path / "quadcopter_closed_loop.png").stat().st_size > 10_000


def test_inverted_pendulum(tmp_path):
    pytest.importorskip("matplotlib")
    result = run_example("inverted_pendulum.py", "--small", "--output", str(tmp_path))
    assert result["gap"] < 1e-8
    net = result["runs"]["implicit network"]
    assert np.abs(net.states[:, 0]).max() <= 1.0 + 1e-9 and np.abs(net.inputs).max() <= 2.0 + 1e-9
    assert abs(net.states[-1, 2]) < abs(net.states[0, 2])  # the tilt decays


def test_double_integrator_terminal_set(tmp_path):
    pytest.importorskip("matplotlib")
    result = run_example("double_integrator_terminal_set.py", "--small", "--output", str(tmp_path))
    # the terminal set can only remove feasible states, and with N = 2 it does
    assert not (result["feasible_with_set"] & ~result["feasible_plain"]).any()
    assert result["feasible_with_set"].sum() < result["feasible_plain"].sum()
    assert all(tr.stopped_at is None for tr in result["runs"])
    assert (tmp_path / "double_integrator_terminal_set.png").stat().st_size > 10_000


def test_your_own_problem(tmp_path):
    pytest.importorskip("matplotlib")
    pytest.importorskip("control")
    result = run_example("your_own_problem.py", "--small", "--output", str(tmp_path))
    report = result["report"]
    assert report.feasibility_agrees.all() and (~report.feasible_ref).any()
    assert report.max_error < 1e-8 and result["gap"] < 1e-8
    assert (tmp_path / "spring_mass.mpc2nn").exists() and (tmp_path / "your_own_problem.png").exists()


def test_paper_reproduction_matches_the_published_numbers(tmp_path):
    """Numbers from re-running the authors' script (issue 4), not from this code."""
    pytest.importorskip("matplotlib")
    pytest.importorskip("torch")
    import json

    run_example("paper_reproduction.py", "--small", "--output", str(tmp_path))
    s = json.loads((tmp_path / "summary.json").read_text())
    published = [-10, -6.2792, 10, 10, 10, 10, -9.6136, -10, -10, -0.5946]
    assert s["depth"] == 1000 and len(s["first_inputs"]) == 25
    assert np.abs(np.array(s["first_inputs"][:10]) - published).max() < 1e-2   # network inputs
    assert np.abs(np.array(s["mpc_first_inputs"][:10]) - published).max() < 1e-4  # MPC on the same QP
    assert 1e-3 < s["max_state_gap"] < 1e-2  # "agree to about 6e-3"
    first = np.array(s["residual_after_first_layer"][:7])
    assert first.max() <= 5.6 + 0.05 and first.max() >= 5.0 and first[:3].min() >= 1.0
    assert all(300 <= d <= 950 for d in s["layers_to_residual_1e_3"][:6] if d > 2)
    # the default construction reaches better agreement with a small fraction of the layers
    c = s["corrected"]
    assert c["depth"] <= 100 and c["max_state_gap"] <= s["max_state_gap"]
    for name in ("paper_closed_loop.png", "paper_residuals.png", "corrected_default_construction.png"):
        assert (tmp_path / name).stat().st_size > 10_000


def test_depth_vs_accuracy(tmp_path):
    pytest.importorskip("matplotlib")
    pytest.importorskip("torch")
    result = run_example("depth_vs_accuracy.py", "--small", "--output", str(tmp_path))
    curves = result["curves"]
    # errors fall with depth, and the default construction beats the paper's plain form at every depth >= 20
    for err in curves.values():
        assert err[-1] < err[0]
    admm, plain = curves["ADMM (ρ tuned, default)"], curves["paper form, α = 1/λmax"]
    assert np.all(admm[19:] < plain[19:])
    assert np.all(result["bound"] >= result["true"])
    for name in ("depth_vs_accuracy.png", "double_integrator_error_map.png"):
        assert (tmp_path / name).stat().st_size > 10_000


def test_export_onnx(tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("torch")
    result = run_example("export_onnx.py", "--small", "--output", str(tmp_path))
    assert set(result["ops"]) <= {"MatMul", "Gemm", "Add", "Sub", "Mul", "Relu", "Constant"}
    assert result["gap_runtime"] <= 1e-12
    assert result["gap_mpc"] <= 0.05  # tolerance 1e-2 was met on the fitting states; these are others
    assert (tmp_path / "quadcopter.onnx").exists() and (tmp_path / "quadcopter_explicit.mpc2nn").exists()
