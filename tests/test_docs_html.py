"""The built documentation as a reader sees it: commands that paste, no temporary paths, tutorials that
show their real result, constants with their own descriptions.

The checks on ``docs/_build/html`` run where the docs were built (CI builds them, then runs this file
again: see ``.ci/run``); elsewhere they skip. The configuration check builds a one-page project and
always runs.
"""
import html
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BUILT = ROOT / "docs" / "_build" / "html"
OPTIONS = ("output", "small", "samples", "steps", "help", "x0", "tol", "reference", "controller", "plot",
           "format", "dtype", "json", "quiet", "seed", "depth", "mpc")
DASHED = re.compile(r"[\u2013\u2014](" + "|".join(OPTIONS) + r")\b")
TEMP = re.compile(r"/tmp/|mpc2nn-gallery-|/var/folders/|\\Temp\\")

needs_build = pytest.mark.skipif(not (BUILT / "index.html").exists(), reason="docs not built (sphinx-build)")


def text_of(page: Path) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", page.read_text(encoding="utf-8")))


def test_docs_configuration_keeps_double_dashes(tmp_path):
    """smartquotes is off: ``--output`` in prose and block quotes stays two hyphens."""
    sphinx = pytest.importorskip("sphinx.application")
    src = tmp_path / "src"
    src.mkdir()
    conf = (ROOT / "docs" / "conf.py").read_text()
    assert "smartquotes = False" in conf
    (src / "conf.py").write_text("smartquotes = False\n")
    (src / "index.rst").write_text("Title\n=====\n\nRun python x.py --output out.\n\n    python x.py --small\n")
    app = sphinx.Sphinx(str(src), str(src), str(tmp_path / "out"), str(tmp_path / "doctrees"), "html",
                        status=None, warning=None)
    app.build()
    page = text_of(tmp_path / "out" / "index.html")
    assert "--output out" in page and "--small" in page and not DASHED.search(page)


@needs_build
def test_no_command_has_an_en_dash_and_no_page_shows_a_temporary_path():
    pages = sorted(BUILT.rglob("*.html"))
    assert len(pages) > 20
    dashed = {str(p.relative_to(BUILT)): DASHED.findall(text_of(p)) for p in pages}
    assert {k: v for k, v in dashed.items() if v} == {}
    temp = {str(p.relative_to(BUILT)): TEMP.findall(text_of(p)) for p in pages}
    assert {k: v for k, v in temp.items() if v} == {}


@needs_build
def test_gallery_output_wraps_instead_of_cutting_lines():
    css = (BUILT / "_static" / "mpc2nn.css").read_text()
    assert "pre-wrap" in css
    for page in (BUILT / "auto_examples").glob("*.html"):
        assert "mpc2nn.css" in page.read_text(encoding="utf-8"), page.name


@needs_build
def test_onnx_tutorial_shows_the_real_network():
    page = text_of(BUILT / "auto_examples" / "export_onnx.html")
    assert "tolerance 1e-06: met on these" in page and "as tuned by the full run" in page
    assert not re.search(r"tolerance 0?\.?01\b|1e-0?2\b", page)


def summary_row(page: Path, name: str) -> str:
    """The description cell of ``name``'s row in an autosummary table."""
    raw = page.read_text(encoding="utf-8")
    m = re.search(r"<tr[^>]*>\s*<td>(?:(?!</tr>).)*?" + re.escape(name) + r"(?:(?!</tr>).)*?</td>\s*<td>(.*?)</td>",
                  raw, re.S)
    assert m, f"no summary row for {name}"
    return html.unescape(re.sub(r"<[^>]+>", "", m.group(1))).strip()


@needs_build
def test_constants_have_their_own_descriptions():
    row = summary_row(BUILT / "api.html", "CERTIFICATE_TOL")
    assert "Convert a string or number" not in row and "certified" in row, row
    for name in ("OSQP_SETTINGS", "DAQP_SETTINGS"):
        assert summary_row(BUILT / "api.html", name).startswith("Settings"), name


@pytest.mark.parametrize("name", ["exact_solve"])
def test_the_split_benchmark_tables_hold_the_measured_numbers(name):
    """The Benchmarks page shows NAME_narrow.txt: NAME.txt's table in two parts, row for row the same numbers."""
    static = ROOT / "docs" / "_static"

    def rows(text):
        out: dict = {}
        for line in text.splitlines():
            if line.strip() and not line.startswith(("#", "problem", "-")):
                out.setdefault(line[:24].strip(), []).extend(line[24:].split())
        return out

    measured, shown = rows(static.joinpath(f"{name}.txt").read_text()), rows(
        static.joinpath(f"{name}_narrow.txt").read_text())
    order = [0, 1, 2, 3, 4, 5, 8, 6, 7]  # the narrow file: throughput columns (and fallback), then agreement
    assert {k: [v[i] for i in order] for k, v in measured.items()} == shown and len(shown) >= 6
