"""Every public function, class and method documents each of its parameters (numpydoc format).

Modelled on python-control's ``control/tests/docstrings_test.py``: the docstrings are parsed with
``numpydoc.docscrape`` and every parameter of the signature (for a dataclass: every field set by its
``__init__``) must appear in the Parameters (or, for classes, Attributes) section. Entries may group
names (``lo, hi : ...``). Exceptions are listed in :data:`SKIP` with their reason.

Each entry must also be well formed: a name line ``name : type`` followed by an indented description,
one entry per line. The one-line style ``a : x; b : y`` (which numpydoc reads as one entry ``a`` whose
type is the rest) and paragraphs that slipped into a Parameters section are refused, and a Parameters
entry must name a parameter of the signature.
"""
import dataclasses
import importlib
import inspect

import pytest

numpydoc = pytest.importorskip("numpydoc.docscrape", reason="numpydoc is part of the dev and docs extras")

#: The public faces whose ``__all__`` is checked (torch-dependent ones only where torch is installed).
MODULES = ["mpc2nn", "mpc2nn.problem", "mpc2nn.qp", "mpc2nn.implicit", "mpc2nn.sampling", "mpc2nn.reference",
           "mpc2nn.evaluation", "mpc2nn.evaluation.plotting", "mpc2nn.converse", "mpc2nn.io", "mpc2nn.systems",
           "mpc2nn.cli", "mpc2nn.status", "mpc2nn.interfaces", "mpc2nn.regions", "mpc2nn.verify"]
TORCH_MODULES = ["mpc2nn.explicit", "mpc2nn.deploy", "mpc2nn.differentiable"]

#: ``qualified name: reason`` for objects whose parameters are documented elsewhere.
SKIP = {
    "mpc2nn.cli.build_parser": "takes no parameters; the parser's options are documented by --help",
    "mpc2nn.Controller": "a typing.Protocol: its __init__ is typing's placeholder (*args, **kwargs), never "
                         "called; the call ctrl(x, u_prev=, x_ref=, u_ref=) is documented in the class docstring",
}


def _modules():
    out = []
    for name in MODULES:
        try:
            out.append(importlib.import_module(name))
        except ModuleNotFoundError:
            continue  # a stage not built yet
    try:
        import torch  # noqa: F401
    except ImportError:
        return out
    for name in TORCH_MODULES:
        try:
            out.append(importlib.import_module(name))
        except ModuleNotFoundError:
            continue
    return out


def _documented(doc, *sections) -> set:
    names = set()
    for section in sections:
        for p in doc[section]:
            for n in p.name.split(","):
                names.add(n.strip().lstrip("*"))
    return names


def _signature_params(fn, skip_first: bool) -> list:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return []
    params = list(sig.parameters.values())
    if skip_first and params and params[0].name in ("self", "cls"):
        params = params[1:]
    return [p.name for p in params if p.kind is not inspect.Parameter.VAR_POSITIONAL]


def _targets():
    seen = set()
    for mod in _modules():
        for name in getattr(mod, "__all__", ()):
            obj = getattr(mod, name)
            if inspect.ismodule(obj) or not (inspect.isfunction(obj) or inspect.isclass(obj)):
                continue
            qual = f"{obj.__module__}.{obj.__qualname__}"
            if qual in seen or not obj.__module__.startswith("mpc2nn"):
                continue
            seen.add(qual)
            yield f"{mod.__name__}.{name}", obj
            if inspect.isclass(obj):
                for mname, member in vars(obj).items():
                    if mname.startswith("_") or not inspect.isfunction(member):
                        continue
                    if member.__doc__ is None and any(mname in vars(base) for base in obj.__mro__[1:]):
                        continue  # an override without a docstring of its own: the base's is checked
                    yield f"{mod.__name__}.{name}.{mname}", member


def _doc_and_wanted(obj):
    """The parsed docstring and the names it must document (signature parameters or dataclass fields)."""
    if inspect.isclass(obj):
        doc = numpydoc.ClassDoc(obj, config={"show_class_members": False})
        if dataclasses.is_dataclass(obj):
            wanted = [f.name for f in dataclasses.fields(obj) if f.init]
        else:
            wanted = _signature_params(obj.__init__, skip_first=True) if "__init__" in vars(obj) else []
    else:
        doc = numpydoc.FunctionDoc(obj)
        wanted = _signature_params(obj, skip_first="." in obj.__qualname__)
    return doc, wanted


def _missing(qualname: str, obj) -> list:
    doc, wanted = _doc_and_wanted(obj)
    sections = ("Parameters", "Attributes", "Other Parameters") if inspect.isclass(obj) else (
        "Parameters", "Other Parameters")
    have = _documented(doc, *sections)
    return [p for p in wanted if p not in have]


def _malformed(qualname: str, obj) -> list:
    """What is wrong with the entries of the Parameters, Other Parameters and Attributes sections."""
    doc, wanted = _doc_and_wanted(obj)
    problems = []
    for section in ("Parameters", "Other Parameters", "Attributes"):
        for p in doc[section]:
            names = [n.strip().lstrip("*") for n in p.name.split(",")]
            if not all(n.isidentifier() for n in names):
                problems.append(f"{section}: {p.name!r} is not a name (a paragraph inside the section?)")
                continue
            if ";" in p.type:
                problems.append(f"{section}: {p.name!r} has ';' in its type {p.type!r}: one entry per line")
            if not p.desc:
                problems.append(f"{section}: {p.name!r} has no indented description")
            if section != "Attributes" and wanted:
                problems += [f"{section}: {n!r} is not a parameter" for n in names if n not in wanted]
    return problems


TARGETS = sorted(_targets())


@pytest.mark.parametrize("qualname, obj", TARGETS, ids=[t[0] for t in TARGETS])
def test_parameters_are_documented(qualname, obj):
    if qualname in SKIP:
        pytest.skip(SKIP[qualname])
    missing = _missing(qualname, obj)
    assert not missing, f"{qualname}: parameters without documentation: {missing}"


@pytest.mark.parametrize("qualname, obj", TARGETS, ids=[t[0] for t in TARGETS])
def test_entries_are_well_formed(qualname, obj):
    problems = _malformed(qualname, obj)
    assert not problems, f"{qualname}: " + "; ".join(problems)


def test_the_check_catches_an_undocumented_parameter():
    def documented_one(a, b):
        """Add.

        Parameters
        ----------
        a : float
            First.
        """

    assert _missing("f", documented_one) == ["b"]


def test_the_check_catches_the_one_line_style():
    def one_line(a, b):
        """Add.

        Parameters
        ----------
        a : float; b : float
        """

    def stray_paragraph(a):
        """Add.

        Parameters
        ----------
        a : float
            First.

        The sum is returned.
        """

    assert _missing("f", one_line) == ["b"]
    problems = _malformed("f", one_line)
    assert any("';'" in p for p in problems) and any("no indented description" in p for p in problems)
    assert any("is not a name" in p for p in _malformed("f", stray_paragraph))
