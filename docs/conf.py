"""Sphinx configuration of the mpc2nn documentation.

Build locally:  pip install -c constraints.txt -e ".[docs]" && sphinx-build -W -b html docs docs/_build/html
"""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # document this checkout's mpc2nn, whatever is installed

import mpc2nn  # noqa: E402

project = "mpc2nn"
author = "mpc2nn developers"
release = version = mpc2nn.__version__
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.doctest",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "myst_parser",
]
autosummary_generate = True
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_validation_checks = set()
html_theme = "furo"
html_title = f"mpc2nn {release}"
exclude_patterns = ["_build", "auto_examples/*.ipynb", "auto_examples/*.py.md5", "auto_examples/*.zip"]
nitpicky = False
# myst.header: the changelog page includes CHANGELOG.md without its H1 (the page has its own title)
suppress_warnings = ["config.cache", "myst.header"]
# docutils' smart quotes would turn "--output" into an en dash in prose and block quotes, and a command
# pasted from the page would then fail ("unrecognized arguments"); commands are literal blocks anyway
smartquotes = False
html_static_path = ["_static"]
html_css_files = ["mpc2nn.css"]


def _example_args(gallery_conf, script_vars):
    """Run every example with its small-size switch, as a reader would: ``--output out``.

    sphinx-gallery runs each example in ``examples/``, so the files land in ``examples/out/`` (ignored
    by git) and the printed paths read ``out/...``, as they do for ``python examples/NAME.py --output out``.
    """
    return ["--small", "--output", "out"]


sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r".*\.py$",
    "ignore_pattern": os.environ.get("MPC2NN_DOCS_IGNORE", r"__init__\.py"),
    "reset_argv": _example_args,
    "download_all_examples": False,
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
    "matplotlib_animations": False,
    "show_memory": False,
    "capture_repr": (),
    "abort_on_example_error": True,
}
os.environ.setdefault("MPLBACKEND", "Agg")
