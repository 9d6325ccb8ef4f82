"""Saving, loading and exporting mpc2nn objects.

File format (``.mpc2nn``): a zip archive holding

* ``metadata.json`` — ``format`` (``"mpc2nn"``), ``format_version`` (integer),
  ``mpc2nn_version``, ``kind`` (``"MPCProblem"``, ``"CondensedQP"``,
  ``"ImplicitNetwork"``, ...), ``created`` (UTC, ISO 8601), ``content_hash`` and
  ``problem_hash`` (SHA-256, see below), and kind-specific ``fields``
  (horizon, names, construction, depth, error bound ...);
* ``arrays/NAME.npy`` — one NumPy ``.npy`` file per array (readable from any
  language with a zip and an npy reader).

``content_hash`` is the SHA-256 of every array (name, dtype, shape, bytes, in
name order) and the ``fields``; ``problem_hash`` the same over the arrays that
define the problem (for a network: its QP). :func:`load` recomputes both and
refuses a file whose hashes do not match (corrupted or edited), whose format
version is newer than this mpc2nn reads, or — given ``expect_problem`` — that
belongs to another problem.
"""

from __future__ import annotations

import datetime
import hashlib
import io
import json
import zipfile
from pathlib import Path

import numpy as np

from .exceptions import Mpc2nnError
from .implicit import ImplicitNetwork
from .problem import MPCProblem, Polytope, StageConstraint
from .qp import CondensedQP

__all__ = ["save", "load", "problem_hash", "FileFormatError", "FORMAT_VERSION"]

#: Version of the file layout written by :func:`save`.
FORMAT_VERSION = 1


class FileFormatError(Mpc2nnError, ValueError):
    """A file is not an mpc2nn file, is corrupted, too new, or belongs to another problem."""


def _hash(arrays: dict[str, np.ndarray], fields: dict) -> str:
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    h.update(json.dumps(fields, sort_keys=True).encode())
    return h.hexdigest()


# --- (de)composition of each kind into arrays + fields ---------------------------
def _problem_parts(p: MPCProblem) -> tuple[dict, dict]:
    arrays = {k: getattr(p, k) for k in ("A", "B", "Q", "R", "P", "u_min", "u_max", "x_min", "x_max")}
    for i, c in enumerate(p.constraints):
        arrays[f"constraints.{i}.C_x"], arrays[f"constraints.{i}.C_u"], arrays[f"constraints.{i}.d"] = c.C_x, c.C_u, c.d
    if p.terminal_constraint is not None:
        arrays["terminal.C"], arrays["terminal.d"] = p.terminal_constraint.C, p.terminal_constraint.d
    if p.sample_box is not None:
        arrays["sample_box.lo"], arrays["sample_box.hi"] = p.sample_box
    fields = dict(horizon=p.horizon, name=p.name, n_constraints=len(p.constraints),
                  terminal_weight_source=p.terminal_weight_source, terminal_set=p.terminal_set)
    return arrays, fields


def _problem_from(arrays, fields) -> MPCProblem:
    cons = [StageConstraint(arrays[f"constraints.{i}.C_x"], arrays[f"constraints.{i}.C_u"],
                            arrays[f"constraints.{i}.d"]) for i in range(fields["n_constraints"])]
    term = Polytope(arrays["terminal.C"], arrays["terminal.d"]) if "terminal.C" in arrays else None
    box = (arrays["sample_box.lo"], arrays["sample_box.hi"]) if "sample_box.lo" in arrays else None
    p = MPCProblem(arrays["A"], arrays["B"], arrays["Q"], arrays["R"], fields["horizon"], P=arrays["P"],
                   u_min=arrays["u_min"], u_max=arrays["u_max"], x_min=arrays["x_min"], x_max=arrays["x_max"],
                   constraints=cons, terminal_constraint=term, name=fields["name"], sample_box=box)
    # provenance of computed parts, restored without computing them again
    object.__setattr__(p, "terminal_weight_source", fields["terminal_weight_source"])
    object.__setattr__(p, "terminal_set", fields.get("terminal_set"))
    return p


def _qp_parts(qp: CondensedQP) -> tuple[dict, dict]:
    arrays = {k: getattr(qp, k) for k in ("H", "F", "G", "w", "E")}
    if qp.Phi is not None:
        arrays["Phi"], arrays["Gamma"] = qp.Phi, qp.Gamma
    if qp.state_only is not None:
        arrays["state_only.E0"], arrays["state_only.w0"] = qp.state_only
    if qp.sample_box is not None:
        arrays["sample_box.lo"], arrays["sample_box.hi"] = qp.sample_box
    fields = dict(n_u=qp.n_u, row_labels=list(qp.row_labels), name=qp.name, source=qp.source,
                  has_problem=qp.problem is not None)
    if qp.problem is not None:
        p_arrays, p_fields = _problem_parts(qp.problem)
        arrays.update({f"problem.{k}": v for k, v in p_arrays.items()})
        fields["problem"] = p_fields
    return arrays, fields


def _qp_from(arrays, fields) -> CondensedQP:
    problem = None
    if fields["has_problem"]:
        problem = _problem_from({k[len("problem."):]: v for k, v in arrays.items() if k.startswith("problem.")},
                                fields["problem"])
    so = (arrays["state_only.E0"], arrays["state_only.w0"]) if "state_only.E0" in arrays else None
    box = (arrays["sample_box.lo"], arrays["sample_box.hi"]) if "sample_box.lo" in arrays else None
    return CondensedQP(arrays["H"], arrays["F"], arrays["G"], arrays["w"], arrays["E"], fields["n_u"],
                       arrays.get("Phi"), arrays.get("Gamma"), problem, tuple(fields["row_labels"]), so,
                       fields["name"], box, fields["source"])


def _network_parts(net: ImplicitNetwork) -> tuple[dict, dict]:
    q_arrays, q_fields = _qp_parts(net.qp)
    arrays = {f"qp.{k}": v for k, v in q_arrays.items()}
    arrays.update({k: getattr(net, k) for k in ("W", "Y", "b", "W_f", "Y_f", "alpha")})
    return arrays, dict(qp=q_fields)


def _network_from(arrays, fields) -> ImplicitNetwork:
    qp = _qp_from({k[3:]: v for k, v in arrays.items() if k.startswith("qp.")}, fields["qp"])
    return ImplicitNetwork(arrays["W"], arrays["Y"], arrays["b"], arrays["W_f"], arrays["Y_f"], arrays["alpha"], qp)


_KINDS = {
    "MPCProblem": (MPCProblem, _problem_parts, _problem_from),
    "CondensedQP": (CondensedQP, _qp_parts, _qp_from),
    "ImplicitNetwork": (ImplicitNetwork, _network_parts, _network_from),
}


def problem_hash(obj) -> str:
    """SHA-256 of the QP ``(H, F, G, w, E)`` behind ``obj``.

    An MPCProblem is condensed first, so a problem, its QP and every network
    compiled from it share one hash.
    """
    from .validate import _as_qp

    qp = _as_qp(obj)
    return _hash({k: getattr(qp, k) for k in ("H", "F", "G", "w", "E")}, {})


def _kind_of(obj) -> str:
    for kind, (cls, *_) in _KINDS.items():
        if isinstance(obj, cls):
            return kind
    raise TypeError(f"save: expected an MPCProblem, CondensedQP or ImplicitNetwork, got {type(obj).__name__}")


def save(obj, path) -> Path:
    """Write ``obj`` to ``path`` in the documented ``.mpc2nn`` format; returns the path.

    Examples
    --------
    >>> import mpc2nn, tempfile, os
    >>> net = mpc2nn.compile(mpc2nn.systems.drummond2024())
    >>> path = mpc2nn.save(net, os.path.join(tempfile.mkdtemp(), "net.mpc2nn"))
    >>> mpc2nn.load(path).W.shape
    (20, 20)
    """
    from . import __version__

    kind = _kind_of(obj)
    arrays, fields = _KINDS[kind][1](obj)
    arrays = {k: np.asarray(v) for k, v in arrays.items()}
    meta = dict(format="mpc2nn", format_version=FORMAT_VERSION, mpc2nn_version=__version__, kind=kind,
                created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                content_hash=_hash(arrays, fields), problem_hash=problem_hash(obj), fields=fields)
    path = Path(path)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("metadata.json", json.dumps(meta, indent=1))
        for name, a in arrays.items():
            buf = io.BytesIO()
            np.save(buf, a, allow_pickle=False)
            zf.writestr(f"arrays/{name}.npy", buf.getvalue())
    return path


def load(path, *, expect_problem=None):
    """Read an object written by :func:`save`, checking format version and hashes.

    Parameters
    ----------
    path : file path
    expect_problem : MPCProblem, CondensedQP or ImplicitNetwork, optional
        If given, the file must belong to the same problem (same ``problem_hash``).

    Raises
    ------
    FileFormatError
        Not an mpc2nn file, a newer format version, a hash mismatch (corrupted or
        edited file), or a different problem than ``expect_problem``.
    """
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as zf:
            meta = json.loads(zf.read("metadata.json"))
            arrays = {}
            for name in zf.namelist():
                if name.startswith("arrays/") and name.endswith(".npy"):
                    arrays[name[len("arrays/"):-4]] = np.load(io.BytesIO(zf.read(name)), allow_pickle=False)
    except FileNotFoundError:
        raise
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise FileFormatError(f"{path}: not a readable mpc2nn file ({exc})") from None
    if meta.get("format") != "mpc2nn":
        raise FileFormatError(f"{path}: metadata.json does not declare format 'mpc2nn'")
    version = meta.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise FileFormatError(f"{path}: format version {version!r} is newer than this mpc2nn reads "
                              f"({FORMAT_VERSION}); upgrade mpc2nn (file written by {meta.get('mpc2nn_version')})")
    kind = meta.get("kind")
    if kind not in _KINDS:
        raise FileFormatError(f"{path}: unknown kind {kind!r}; expected one of {sorted(_KINDS)}")
    if _hash(arrays, meta["fields"]) != meta.get("content_hash"):
        raise FileFormatError(f"{path}: content hash mismatch: the arrays or fields were changed or corrupted "
                              "after saving; refusing to load")
    obj = _KINDS[kind][2](arrays, meta["fields"])
    if problem_hash(obj) != meta.get("problem_hash"):
        raise FileFormatError(f"{path}: problem hash mismatch: the file's problem does not match its metadata")
    if expect_problem is not None and problem_hash(expect_problem) != meta["problem_hash"]:
        raise FileFormatError(f"{path}: belongs to another problem (problem hash {meta['problem_hash'][:12]}… "
                              f"≠ {problem_hash(expect_problem)[:12]}… of the expected problem)")
    return obj
