"""The import rule of the package, checked on the source (docs/developer.rst, "Stages and the import rule").

* A stage (a subpackage of ``mpc2nn``) imports only stages to its left in :data:`STAGES`, plus the
  base modules :data:`BASE`; the base modules import only each other.
* Another stage is imported through its public face (``from ..qp import condense``), never through
  one of its private modules (``from ..qp._condense import ...``).
* No module imports a ``_private`` name of another module, and none imports the package root.
* Optional dependencies stay in their rooms: torch, cvxpy, matplotlib and onnx only where
  :data:`OPTIONAL` allows them.
"""
import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "mpc2nn"

#: The pipeline, left to right; consumers last.
STAGES = ("problem", "qp", "implicit", "sampling", "reference", "regions", "explicit", "differentiable", "verify",
          "converse", "evaluation", "io", "deploy", "systems", "cli")
#: Modules any stage may import.
BASE = ("exceptions", "status", "_checks", "interfaces", "_version", "_jit")
#: Compatibility modules at the top level: thin re-exports of moved names, importing anything.
SHIMS = ("__init__", "sets", "oracle", "export", "plotting")
#: Where each optional dependency may be imported (stage, or stage/module).
OPTIONAL = {
    "torch": ("explicit", "differentiable", "deploy", "verify"),
    "cvxpy": ("converse", "explicit/_lmi"),
    "matplotlib": ("evaluation/plotting",),
    "onnx": ("deploy", "verify"),
    "numba": ("_jit", "implicit/_compiled_certificate"),
}


def modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).with_suffix("")
        yield ".".join(("mpc2nn", *rel.parts)), path


def imports(name: str, path: Path):
    """``(line, imported module, imported names)`` for every import statement, relative ones resolved."""
    tree = ast.parse(path.read_text())
    pkg = name.split(".")
    if path.name != "__init__.py":
        pkg = pkg[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, ()
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg[:len(pkg) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            yield node.lineno, target, tuple(a.name for a in node.names)


def place(module: str) -> tuple[str, str]:
    """``(kind, stage)``: kind is "stage", "base", "shim" or "outside" (not mpc2nn)."""
    parts = module.split(".")
    if parts[0] != "mpc2nn":
        return "outside", ""
    if len(parts) == 1:
        return "root", ""
    head = parts[1]
    if head in STAGES:
        return "stage", head
    if head in BASE:
        return "base", head
    if head in SHIMS:
        return "shim", head
    raise AssertionError(f"{module}: not a stage, base or compatibility module; add it to STAGES or BASE")


def violations():
    found = []
    for name, path in modules():
        kind, stage = place(name)
        rel = path.relative_to(PACKAGE.parent)
        for line, target, names in imports(name, path):
            where = f"{rel}:{line}"
            top = target.split(".")[0]
            if top in OPTIONAL:
                room = "/".join(name.split(".")[1:3])
                if not any(room == r or room.split("/")[0] == r for r in OPTIONAL[top]):
                    found.append(f"{where}: imports {top}, allowed only in {OPTIONAL[top]}")
            tkind, tstage = place(target)
            if tkind == "outside":
                continue
            # `from .. import x` names a submodule of the root: judge that submodule
            if tkind == "root":
                for n in names:
                    if n.startswith("_") or n == "__version__":
                        found.append(f"{where}: imports {n} from the package root")
                        continue
                    sub_kind, sub_stage = place(f"mpc2nn.{n}")
                    if kind in ("stage", "base") and sub_kind == "stage" and not _left_of(sub_stage, stage, kind):
                        found.append(f"{where}: {stage or name} imports the stage {sub_stage}, to its right")
                continue
            private_names = [n for n in names if n.startswith("_") and not n.endswith("__")]
            if private_names:
                found.append(f"{where}: imports the private name(s) {private_names} from {target}")
            if kind == "shim":
                continue
            if kind == "base" and tkind != "base":
                found.append(f"{where}: base module {name} imports {target}")
            if kind == "stage" and tkind == "stage" and tstage != stage:
                if not _left_of(tstage, stage, kind):
                    found.append(f"{where}: stage {stage} imports {target}, a stage to its right")
                if len(target.split(".")) > 2:
                    found.append(f"{where}: imports {target}, a private module of another stage; import from "
                                 f"mpc2nn.{tstage}")
            if kind == "stage" and tkind == "shim":
                found.append(f"{where}: imports the compatibility module {target}; import the stage instead")
    return found


def _left_of(target: str, stage: str, kind: str) -> bool:
    return kind == "stage" and STAGES.index(target) < STAGES.index(stage)


def test_import_rule():
    found = violations()
    assert not found, "\n".join(found)


@pytest.mark.parametrize("stage", STAGES)
def test_every_stage_that_exists_has_a_public_face(stage):
    folder = PACKAGE / stage
    if not folder.exists():
        pytest.skip(f"stage {stage} is not built yet")
    init = (folder / "__init__.py").read_text()
    assert "__all__" in init and ast.get_docstring(ast.parse(init)), f"{stage}/__init__.py: docstring and __all__"


def test_the_rule_catches_what_it_forbids(tmp_path, monkeypatch):
    """A module that breaks each clause is reported (the checker is not vacuous)."""
    fake = tmp_path / "mpc2nn"
    for stage in ("problem", "qp"):
        (fake / stage).mkdir(parents=True)
        (fake / stage / "__init__.py").write_text('"""x"""\n__all__ = []\n')
    (fake / "__init__.py").write_text("")
    (fake / "exceptions.py").write_text("")
    (fake / "problem" / "_bad.py").write_text(
        "from ..qp import condense\nfrom ..qp._condense import x\nfrom ._mpc import _bounds\nimport torch\n"
        "from .. import __all__\n")
    monkeypatch.setattr(__import__(__name__), "PACKAGE", fake)
    found = "\n".join(violations())
    assert "stage problem imports mpc2nn.qp, a stage to its right" in found
    assert "a private module of another stage" in found
    assert "private name(s) ['_bounds']" in found
    assert "imports torch" in found
    assert "from the package root" in found
