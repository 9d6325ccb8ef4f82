"""The README's Quick start and .ci/run stay in step."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def quick_start_commands():
    text = (ROOT / "README.md").read_text()
    m = re.search(r"^## Quick start\s*$.*?^```sh\s*$(.*?)^```", text, re.S | re.M)
    assert m, "README has no Quick start sh block"
    return [line for line in m.group(1).splitlines() if line.strip()]


def test_quick_start_has_exactly_two_commands():
    cmds = quick_start_commands()
    assert len(cmds) == 2
    assert "examples/quickstart.py" in cmds[0]
    assert "pytest" in cmds[1]


def test_ci_runs_the_readme_test_command():
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert quick_start_commands()[1].strip() in ci_lines
