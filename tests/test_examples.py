"""Examples are real scripts: each runs here with its small-size switch."""
import runpy
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def run_example(name, *args):
    """Run ``examples/name`` as ``__main__`` with ``args``; return its globals (exceptions propagate)."""
    argv = sys.argv
    sys.argv = [str(EXAMPLES / name), *args]
    try:
        return runpy.run_path(str(EXAMPLES / name), run_name="__main__")
    finally:
        sys.argv = argv


def test_quickstart(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    run_example("quickstart.py", "--small", "--output", str(tmp_path))
    out = capsys.readouterr().out
    assert "feasibility agreement         50/50" in out
    m = [line for line in out.splitlines() if line.startswith("max ‖U - U_osqp‖∞")]
    assert m and float(m[0].split()[-1]) < 1e-8
    assert (tmp_path / "quickstart.png").stat().st_size > 10_000
