"""Documentation coverage: every public name is documented and listed in the API reference."""
import re
import sys
from pathlib import Path

import pytest

import mpc2nn

DOCS = Path(__file__).resolve().parents[1] / "docs"


def api_entries():
    text = (DOCS / "api.rst").read_text()
    return set(re.findall(r"^   ([A-Za-z_][A-Za-z_0-9.]*)\s*$", text, re.M))


@pytest.mark.parametrize("name", mpc2nn.__all__)
def test_public_name_is_documented(name):
    obj = getattr(mpc2nn, name)
    assert name in api_entries(), f"{name} is public but missing from docs/api.rst"
    if callable(obj) or isinstance(obj, type(mpc2nn)):
        assert (obj.__doc__ or "").strip(), f"{name} has no docstring"


def test_import_needs_no_optional_dependency():
    import subprocess

    code = ("import sys, mpc2nn; heavy = [m for m in ('torch', 'matplotlib', 'cvxpy', 'control') "
            "if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_version_has_one_source():
    """pyproject reads the version from mpc2nn/_version.py; the installed metadata agrees with the package."""
    import importlib.metadata

    text = (DOCS.parent / "pyproject.toml").read_text()
    assert 'version = { attr = "mpc2nn._version.__version__" }' in text and 'dynamic = ["version"]' in text
    assert importlib.metadata.version("mpc2nn") == mpc2nn.__version__
