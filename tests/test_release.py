"""The release: version, changelog and README agree, and the wheel holds the whole package."""
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import mpc2nn

ROOT = Path(__file__).resolve().parents[1]


def test_version_changelog_and_readme_agree():
    version = mpc2nn.__version__
    sections = re.findall(r"^## \[([^\]]+)\](?: - (.*))?$", (ROOT / "CHANGELOG.md").read_text(), re.M)
    assert sections[0] == (version, "Unreleased"), sections  # the top section is the version the package carries
    assert [v for v, _ in sections].count(version) == 1 and "Unreleased" not in [v for v, _ in sections]
    readme = (ROOT / "README.md").read_text()
    assert f"mpc2nn {version} is the first release" in readme and f"dist/mpc2nn-{version}-py3-none-any.whl" in readme
    assert "python -m build" in (ROOT / ".ci" / "run").read_text()


@pytest.mark.slow
def test_the_wheel_holds_every_module(tmp_path):
    pytest.importorskip("build")
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp_path), str(ROOT)],
                   check=True, capture_output=True)
    wheel = next(tmp_path.glob(f"mpc2nn-{mpc2nn.__version__}-py3-none-any.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {str(p.relative_to(ROOT)) for p in (ROOT / "mpc2nn").rglob("*.py")} | {"mpc2nn/py.typed"}
    assert expected <= names, sorted(expected - names)
