"""The command line turns every user error into one line and exit 2, an internal error into a
bug-report line and exit 1 (``--debug`` shows the traceback) — issue 13.

Found before: ``--plot x.xyz`` and a TorchScript export to an unwritable path printed tracebacks,
``--seed -1`` reached numpy's ValueError.
"""
import os
import sys

import pytest

from mpc2nn.cli import main


def run(capfd, *argv):
    code = main([str(a) for a in argv])
    out, err = capfd.readouterr()
    return code, out, err


def assert_one_line_error(err, *fragments):
    assert "Traceback" not in err
    lines = [ln for ln in err.strip().splitlines() if not ln.startswith("warning: ")]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for f in fragments:
        assert f in lines[0], (f, lines[0])


def test_plot_in_an_unknown_format_is_a_user_error_found_before_the_run(capfd, tmp_path):
    code, out, err = run(capfd, "simulate", "builtin:double_integrator", "--x0", "1", "0", "--steps", "3",
                         "--plot", tmp_path / "x.xyz")
    assert code == 2 and out == ""
    assert_one_line_error(err, "--plot", "'.xyz'", "png")


def test_plot_into_a_missing_folder_creates_it(capfd, tmp_path):
    target = tmp_path / "no" / "such" / "x.png"
    code, _, err = run(capfd, "simulate", "builtin:double_integrator", "--x0", "1", "0", "--steps", "3",
                       "--plot", target)
    assert code == 0 and "Traceback" not in err and target.stat().st_size > 0


@pytest.mark.parametrize("cmd", ["validate", "bench", "unravel"])
def test_negative_seed_is_an_argument_error(capfd, cmd):
    extra = ["--depth", "3"] if cmd == "unravel" else []
    code, _, err = run(capfd, cmd, "builtin:double_integrator", "--samples", "5", "--seed", "-1", *extra)
    assert code == 2 and "Traceback" not in err and "--seed" in err


@pytest.mark.parametrize("fmt, name", [("torchscript", "c.pt"), ("onnx", "c.onnx"), ("c", "cdir")])
def test_export_to_an_unwritable_path_is_one_line(capfd, tmp_path, fmt, name):
    pytest.importorskip("torch")
    pytest.importorskip("onnx")
    saved = tmp_path / "ex.mpc2nn"
    assert run(capfd, "unravel", "builtin:drummond2024_corrected", "--depth", "3", "--samples", "5", "-o",
               saved)[0] == 0
    for target in (tmp_path / "missing" / "deeper" / name, tmp_path / "ro" / name):
        (tmp_path / "ro").mkdir(exist_ok=True)
        os.chmod(tmp_path / "ro", 0o500)
        try:
            if target.parent.name == "deeper":
                continue  # missing folders are made (issue 19): only the read-only one is an error
            if os.geteuid() == 0 and target.parent.name == "ro":
                continue  # root writes anywhere
            code, _, err = run(capfd, "export", saved, "--format", fmt, "-o", target)
            assert code == 2, err
            assert_one_line_error(err, str(target.parent))
        finally:
            os.chmod(tmp_path / "ro", 0o700)
    blocked = tmp_path / "file"
    blocked.write_text("")
    code, _, err = run(capfd, "export", saved, "--format", fmt, "-o", blocked / name)  # a file as a folder
    assert code == 2
    assert_one_line_error(err)


def test_an_internal_error_is_a_bug_report_line_with_the_way_to_the_traceback(capfd, monkeypatch):
    def broken(args):
        raise ZeroDivisionError("float division by zero")

    import mpc2nn.cli._commands as commands
    monkeypatch.setattr(commands.systems, "as_qp", lambda p: broken(p))
    code, out, err = run(capfd, "validate", "builtin:double_integrator", "--samples", "5", "--quiet")
    assert code == 1 and out == ""
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert "internal error" in err and "ZeroDivisionError" in err and "--debug" in err
    with pytest.raises(ZeroDivisionError):
        main(["validate", "builtin:double_integrator", "--samples", "5", "--debug"])


def test_warnings_are_one_line_each(capfd, tmp_path):
    # two inputs acting almost alike: the condensed Hessian has condition number ~1.7e10
    path = tmp_path / "alike.toml"
    path.write_text("A = [[0.9, 0.0], [0.0, 0.9]]\nB = [[1.0, 1.000001], [1.0, 1.0]]\nQ = [[1.0, 0.0], [0.0, 1.0]]\n"
                    "R = [[1e-9, 0.0], [0.0, 1e-9]]\nhorizon = 3\nu_min = [-1.0, -1.0]\nu_max = [1.0, 1.0]\n")
    code, _, err = run(capfd, "compile", path)
    assert code == 0
    lines = err.strip().splitlines()
    assert lines and all(ln.startswith("warning: ") for ln in lines), err
    assert "condition number" in lines[0] and "IllConditionedWarning" not in err


def test_python_m_mpc2nn_cli_exit_codes_in_a_subprocess(tmp_path):
    import subprocess

    bad = tmp_path / "bad.mpc2nn"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    env = dict(os.environ, PYTHONPATH=str(__import__("pathlib").Path(__file__).resolve().parents[1]))
    out = subprocess.run([sys.executable, "-m", "mpc2nn.cli", "compile", str(bad)], capture_output=True,
                         text=True, env=env)
    assert out.returncode == 2 and out.stderr.startswith("error: ") and "Traceback" not in out.stderr
