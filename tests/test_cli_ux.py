"""The command line as a new user meets it: help that says what is there, output folders created,
advice that names what the command line has, honest numbers for a loop that never started, the
converse map and float32 export; and every example script documents its options."""
import argparse
import json
import runpy
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import mpc2nn
from mpc2nn.cli import main

ROOT = Path(__file__).resolve().parents[1]


def run(capfd, *argv):
    code = main([str(a) for a in argv])
    out, err = capfd.readouterr()
    return code, out, err


def test_export_help_lists_every_format_and_the_dtype(capfd):
    code, out, _ = run(capfd, "export", "--help")
    assert code == 0 and "ONNX, TorchScript or C" in out and "float32" in out and "--dtype" in out


def test_outputs_in_missing_folders_are_created(tmp_path, capfd):
    target = tmp_path / "not" / "there" / "net.mpc2nn"
    code, out, _ = run(capfd, "compile", "builtin:drummond2024_corrected", "-o", target)
    assert code == 0 and target.exists() and out.startswith("compiled: the exact solve applies")
    blocked = tmp_path / "file"
    blocked.write_text("x")
    code, _, err = run(capfd, "compile", "builtin:drummond2024_corrected", "-o", blocked / "net.mpc2nn")
    assert code == 2 and "a file of that name is in the way" in err


def test_sampling_advice_names_the_problem_file_not_max_draws(tmp_path, capfd):
    bad = tmp_path / "far.toml"
    bad.write_text((ROOT / "examples/problems/double_integrator.toml").read_text().split("[sample_box]")[0]
                   + "[sample_box]\nlo = [100.0, 100.0]\nhi = [101.0, 101.0]\n")
    code, _, err = run(capfd, "validate", bad, "--samples", "5", "--quiet")
    assert code == 2 and "max_draws" not in err and "[sample_box]" in err


def test_key_typos_suggest_the_key(tmp_path, capfd):
    text = (ROOT / "examples/problems/double_integrator.toml").read_text().replace("horizon =", "N =")
    bad = tmp_path / "typo.toml"
    bad.write_text(text)
    code, _, err = run(capfd, "compile", bad)
    assert code == 2 and "unknown key 'N'; did you mean 'horizon'?" in err


def test_an_infeasible_start_reports_no_cost(capfd):
    code, out, _ = run(capfd, "simulate", "builtin:double_integrator", "--x0", "5", "2", "--steps", "5")
    assert code == 1 and "n/a (no step ran)" in out and "0.000e+00" not in out.split("closed-loop cost")[1][:30]
    main(["simulate", "builtin:double_integrator", "--x0", "5", "2", "--steps", "5", "--json"])
    data = json.loads(capfd.readouterr().out)
    assert data["cost"] is None and data["stopped_at"] == 0


def test_converse_subcommand(tmp_path, capfd):
    code, out, _ = run(capfd, "converse", "builtin:drummond2024_corrected", "-o", tmp_path / "qp.mpc2nn")
    assert code == 0 and out.startswith("MPC-like: the network is the implicit network of a QP")
    assert isinstance(mpc2nn.load(tmp_path / "qp.mpc2nn"), mpc2nn.CondensedQP)
    # weights that no QP produces: W's off-diagonal entries differ in sign (an obstruction, not a guess)
    weights = tmp_path / "w.npz"
    np.savez(weights, W=np.array([[0.5, 0.2], [-0.2, 0.5]]), Y=np.eye(2), b=np.zeros(2), W_f=np.eye(2),
             Y_f=np.zeros((2, 2)))
    code, out, _ = run(capfd, "converse", weights)
    assert code == 1 and out.startswith("not MPC-like: no MPC-like QP exists (sign)")
    code, _, err = run(capfd, "converse", weights, "--mpc")
    assert code == 2 and "--model" in err


def test_converse_recovers_mpc_weights(capfd):
    pytest.importorskip("cvxpy")
    main(["converse", "builtin:drummond2024_corrected", "--mpc", "--samples", "20", "--json"])
    data = json.loads(capfd.readouterr().out)
    assert data["status"] == "exact" and data["mpc"]["status"] == "exact"


def test_float32_export_to_onnx_and_c(tmp_path, capfd):
    pytest.importorskip("mpc2nn.explicit", reason="torch is not installed")
    ort = pytest.importorskip("onnxruntime")
    net_file = tmp_path / "ex.mpc2nn"
    assert run(capfd, "unravel", "builtin:drummond2024_corrected", "--depth", "40", "--samples", "20", "--quiet",
               "-o", net_file)[0] == 0
    onnx_file = tmp_path / "new" / "c.onnx"
    code, out, _ = run(capfd, "export", net_file, "--format", "onnx", "--dtype", "float32", "-o", onnx_file)
    assert code == 0 and "(float32)" in out
    X = mpc2nn.sample_states(mpc2nn.systems.drummond2024("corrected"), 10, seed=3)
    u32 = ort.InferenceSession(str(onnx_file)).run(None, {"x": X.astype(np.float32)})[0]
    u64 = mpc2nn.load(net_file).evaluate(X)[:, :1]
    assert u32.dtype == np.float32 and np.abs(u32 - u64).max() <= 1e-4 * max(1.0, np.abs(u64).max())
    code, _, _ = run(capfd, "export", net_file, "--format", "c", "--dtype", "float32", "-o", tmp_path / "c32")
    src = (tmp_path / "c32" / "mpc2nn_control.c").read_text()
    assert code == 0 and "static const float" in src and "double" not in src
    gcc = shutil.which("gcc")
    if gcc is not None:
        subprocess.run([gcc, "-std=c99", "-Wall", "-Wextra", "-Werror", "-c", "-o", str(tmp_path / "c32.o"),
                        str(tmp_path / "c32" / "mpc2nn_control.c")], check=True)


@pytest.mark.parametrize("script", sorted(p.name for p in (ROOT / "examples").glob("*.py")))
def test_every_example_option_is_documented(script, monkeypatch):
    """--help of each example: every option has a help text (the parser is caught as main builds it)."""
    seen = []

    def capture(self, *args, **kwargs):
        seen.append(self)
        raise SystemExit(0)

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", capture)
    module = runpy.run_path(str(ROOT / "examples" / script), run_name="example")
    with pytest.raises(SystemExit):
        module["main"](["--help"])
    parser = seen[0]
    assert parser.description
    undocumented = [a.option_strings for a in parser._actions if a.option_strings and not a.help]
    assert undocumented == []
