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
import sys
import zipfile
from pathlib import Path

import numpy as np

from ._checks import require
from .exceptions import Mpc2nnError
from .implicit import ImplicitNetwork
from .problem import MPCProblem, Polytope, StageConstraint
from .qp import CondensedQP

__all__ = ["save", "load", "problem_hash", "to_onnx", "to_torchscript", "to_c", "FileFormatError", "FORMAT_VERSION"]

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
    # formulation options are stored only where used, so plain problems keep the layout (and hashes) of 0.1
    if np.isfinite(p.du_min).any() or np.isfinite(p.du_max).any():
        arrays["du_min"], arrays["du_max"] = p.du_min, p.du_max
    if p.du_weight is not None:
        arrays["du_weight"] = p.du_weight
    if p.soft_state_penalty is not None:
        fields["soft_state_penalty"] = list(p.soft_state_penalty)
    if p.tracking:
        fields["tracking"] = True
    if p.move_blocking is not None:
        fields["move_blocking"] = list(p.move_blocking)
    return arrays, fields


def _problem_from(arrays, fields) -> MPCProblem:
    cons = [StageConstraint(arrays[f"constraints.{i}.C_x"], arrays[f"constraints.{i}.C_u"],
                            arrays[f"constraints.{i}.d"]) for i in range(fields["n_constraints"])]
    term = Polytope(arrays["terminal.C"], arrays["terminal.d"]) if "terminal.C" in arrays else None
    box = (arrays["sample_box.lo"], arrays["sample_box.hi"]) if "sample_box.lo" in arrays else None
    p = MPCProblem(arrays["A"], arrays["B"], arrays["Q"], arrays["R"], fields["horizon"], P=arrays["P"],
                   u_min=arrays["u_min"], u_max=arrays["u_max"], x_min=arrays["x_min"], x_max=arrays["x_max"],
                   constraints=cons, terminal_constraint=term, name=fields["name"], sample_box=box,
                   soft_state_penalty=fields.get("soft_state_penalty"), du_min=arrays.get("du_min"),
                   du_max=arrays.get("du_max"), du_weight=arrays.get("du_weight"),
                   tracking=fields.get("tracking", False), move_blocking=fields.get("move_blocking"))
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
    if qp.output_map is not None:
        arrays["output_map"] = qp.output_map
    fields = dict(n_u=qp.n_u, row_labels=list(qp.row_labels), name=qp.name, source=qp.source,
                  has_problem=qp.problem is not None)
    if qp.n_slack:
        fields["n_slack"], fields["slack_shift"] = qp.n_slack, qp.slack_shift
    if qp.parameter_sizes != (("x", qp.n_theta),):
        fields["parameter_sizes"] = [list(p) for p in qp.parameter_sizes]
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
                       fields["name"], box, fields["source"], arrays.get("output_map"), fields.get("n_slack", 0),
                       fields.get("slack_shift", 0.0), tuple(tuple(p) for p in fields.get("parameter_sizes", ())))


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
    from .qp import as_qp

    qp = as_qp(obj.net if _is_explicit(obj) else obj)
    return _hash({k: getattr(qp, k) for k in ("H", "F", "G", "w", "E")}, {})


def _kind_of(obj) -> str:
    for kind, (cls, *_) in _KINDS.items():
        if isinstance(obj, cls):
            return kind
    if _is_explicit(obj):
        return "ExplicitNetwork"
    raise TypeError(f"save: expected an MPCProblem, CondensedQP, ImplicitNetwork or explicit network, "
                    f"got {type(obj).__name__}")


def _parts(kind: str):
    """``(to_parts, from_parts)`` of a kind (explicit networks need torch, so they are looked up late)."""
    if kind == "ExplicitNetwork":
        return _explicit_parts, _explicit_from
    return _KINDS[kind][1], _KINDS[kind][2]


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
    arrays, fields = _parts(kind)[0](obj)
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
    if kind not in (*_KINDS, "ExplicitNetwork"):
        raise FileFormatError(f"{path}: unknown kind {kind!r}; expected one of {sorted(_KINDS)} or ExplicitNetwork")
    if _hash(arrays, meta["fields"]) != meta.get("content_hash"):
        raise FileFormatError(f"{path}: content hash mismatch: the arrays or fields were changed or corrupted "
                              "after saving; refusing to load")
    obj = _parts(kind)[1](arrays, meta["fields"])
    if problem_hash(obj) != meta.get("problem_hash"):
        raise FileFormatError(f"{path}: problem hash mismatch: the file's problem does not match its metadata")
    if expect_problem is not None and problem_hash(expect_problem) != meta["problem_hash"]:
        raise FileFormatError(f"{path}: belongs to another problem (problem hash {meta['problem_hash'][:12]}… "
                              f"≠ {problem_hash(expect_problem)[:12]}… of the expected problem)")
    return obj


# --- explicit (unravelled) networks -----------------------------------------------------------
def _explicit_parts(ex) -> tuple[dict, dict]:
    """The implicit network, the construction's parameters, and every buffer (the weights as built)."""
    n_arrays, n_fields = _network_parts(ex.net)
    arrays = {f"net.{k}": v for k, v in n_arrays.items()}
    arrays["kept_rows"] = ex.kept_rows
    arrays.update({f"buffer.{k}": v.detach().cpu().numpy() for k, v in ex.state_dict().items()})
    params = {k: v for k, v in ex.options.items() if isinstance(v, (bool, int, float, str))}
    if type(ex).__name__ == "PaperNetwork":
        arrays["param.alpha"] = np.asarray(ex.alpha, float)
        if ex.scalar_K:
            params["K"] = ex.k
        cert = ex._cert
        if cert is not None:
            params["certificate"] = dict(exists=cert.exists, rate=cert.rate, reason=cert.reason)
            if cert.exists:
                arrays["param.cert_P"] = cert.P
    elif type(ex).__name__ == "MomentumNetwork":
        params["beta"] = ex.beta
    elif type(ex).__name__ == "ADMMNetwork":
        params.update(rho=ex.rho, relax=ex.relax, sigma=ex.sigma)
    selection = None if ex.selection is None else dict(
        tol=ex.selection.tol, depth=ex.selection.depth, max_error=ex.selection.max_error,
        n_states=ex.selection.n_states, guarantee=ex.selection.guarantee)
    fields = dict(net=n_fields, cls=type(ex).__name__, method=ex.method, depth=ex.depth,
                  dtype=str(ex._dtype).replace("torch.", ""), params=params, selection=selection)
    return arrays, fields


def _explicit_from(arrays, fields):
    """Rebuild the network's structure from its parameters, then load the saved weights into it."""
    torch = require("torch", "torch")
    from . import explicit

    net = _network_from({k[4:]: v for k, v in arrays.items() if k.startswith("net.")}, fields["net"])
    cls, params = fields["cls"], fields["params"]
    dtype = getattr(torch, fields["dtype"])
    qp = net.qp if not params.get("prune") else explicit._pruned_qp(net.qp, arrays["kept_rows"])
    kept, depth, opts = arrays["kept_rows"], fields["depth"], dict(params)
    if cls == "PaperNetwork":
        K = params["K"] if "K" in params else arrays["buffer.Kt"].T
        cert = None
        if "certificate" in params:
            c = params["certificate"]
            cert = explicit.ContractionCertificate(c["exists"], c["rate"], None if np.ndim(K) == 0 else K,
                                                   arrays.get("param.cert_P"), c["reason"])
        ex = explicit.PaperNetwork(net, qp, kept, depth, dtype, opts, arrays["param.alpha"], K, cert)
    elif cls == "MomentumNetwork":
        ex = explicit.MomentumNetwork(net, qp, kept, depth, dtype, opts, params["beta"])
    elif cls == "ADMMNetwork":
        ex = explicit.ADMMNetwork(net, qp, kept, depth, dtype, opts, params["rho"], params["relax"],
                                  params["sigma"])
    else:
        raise FileFormatError(f"unknown explicit network class {cls!r}")
    state = {k[len("buffer."):]: torch.from_numpy(np.array(v)) for k, v in arrays.items()
             if k.startswith("buffer.")}
    ex.load_state_dict(state)
    if fields.get("selection"):
        ex.selection = explicit.DepthSelection(**fields["selection"])
    return ex


def _is_explicit(obj) -> bool:
    mod = sys.modules.get("mpc2nn.explicit")
    return mod is not None and isinstance(obj, mod.ExplicitNetwork)


class _ExportWrapper:
    """Builds the module that export writes: the network followed by an output selection as a MatMul."""

    @staticmethod
    def build(ex, output: str, dtype: str):
        torch = require("torch", "torch")
        import copy

        if output not in ("control", "sequence"):
            raise ValueError(f"output: expected 'control' or 'sequence', got {output!r}")
        if dtype not in ("float64", "float32"):
            raise ValueError(f"dtype: expected 'float64' or 'float32', got {dtype!r}")
        tdtype = getattr(torch, dtype)
        model = copy.deepcopy(ex).to(tdtype)
        model._dtype = tdtype
        select = np.eye(ex.n_U)[:, :ex.n_u] if output == "control" else np.eye(ex.n_U)

        class Exported(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.net = model
                self.register_buffer("select", torch.tensor(select, dtype=tdtype))

            def forward(self, x):
                return self.net(x) @ self.select

        return Exported().eval(), tdtype


def to_onnx(explicit, path, *, output: str = "control", dtype: str = "float64", opset: int = 17) -> Path:
    """Write an explicit network as an ONNX graph of MatMul/Add/Sub/Mul/Relu operations only.

    Parameters
    ----------
    explicit : ExplicitNetwork (a pure construction; not the hybrid mode)
    path : output file
    output : ``"control"`` (first input, shape (B, n_u)) or ``"sequence"`` ((B, N·n_u))
    dtype : ``"float64"`` or ``"float32"``
    opset : ONNX opset (default 17)

    The graph has one input ``x`` of shape ``(batch, n_θ)`` — the state, or for
    problems with input rates or tracking the parameter vector ``θ`` laid out as
    ``explicit.qp.parameter_labels`` — and one output ``u``;
    the batch dimension is dynamic. Written with torch's TorchScript-based ONNX
    exporter, which emits exactly the network's matrix products, additions,
    scalings and ReLUs (no Clip, no custom operators), as NN verifiers expect.
    """
    torch = require("torch", "torch")
    require("onnx", "dev")
    if not _is_explicit(explicit):
        raise TypeError(f"to_onnx: expected an explicit network from mpc2nn.unravel, got {type(explicit).__name__}")
    model, tdtype = _ExportWrapper.build(explicit, output, dtype)
    x = torch.zeros(2, explicit.n_theta, dtype=tdtype)
    path = Path(path)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript-based exporter is the one we want
        torch.onnx.export(model, (x,), str(path), input_names=["x"], output_names=["u"],
                          dynamic_axes={"x": {0: "batch"}, "u": {0: "batch"}}, opset_version=opset, dynamo=False)
    return path


def to_torchscript(explicit, path, *, output: str = "control", dtype: str = "float64") -> Path:
    """Write an explicit network as a traced TorchScript module (``torch.jit.load`` reads it)."""
    torch = require("torch", "torch")
    if not _is_explicit(explicit):
        raise TypeError(f"to_torchscript: expected an explicit network from mpc2nn.unravel, "
                        f"got {type(explicit).__name__}")
    model, tdtype = _ExportWrapper.build(explicit, output, dtype)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        traced = torch.jit.trace(model, torch.zeros(2, explicit.n_theta, dtype=tdtype))
        torch.jit.save(traced, str(path))
    return Path(path)


def to_c(explicit, directory, *, output: str = "control", name: str = "mpc2nn_control") -> Path:
    """Write a dependency-free C function evaluating an explicit network; returns the ``.c`` path.

    Writes ``NAME.c`` and ``NAME.h`` into ``directory`` with
    ``void NAME(const double x[], double u[])``: ``x`` has ``n_θ`` entries (the state,
    or ``θ`` as laid out in ``explicit.qp.parameter_labels``), ``u``
    receives ``n_u`` (``output="control"``) or ``N·n_u`` (``"sequence"``) entries.
    The weights are ``static const double`` arrays printed with 17 significant
    digits (exact doubles); each operation of the network's ONNX graph
    (:func:`to_onnx`) becomes a plain loop; intermediate vectors live in static
    buffers reused once their last reader has run, so the function is not
    reentrant (call it from one thread at a time).
    """
    onnx = require("onnx", "dev")
    from onnx import numpy_helper

    import tempfile

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        graph = onnx.load(str(to_onnx(explicit, Path(tmp) / "net.onnx", output=output))).graph
    consts = {t.name: numpy_helper.to_array(t).astype(float) for t in graph.initializer}
    nodes = list(graph.node)
    for n in nodes:
        if n.op_type == "Constant":
            consts[n.output[0]] = numpy_helper.to_array(n.attribute[0].t).astype(float)
    nodes = [n for n in nodes if n.op_type != "Constant"]
    allowed = {"MatMul", "Add", "Sub", "Mul", "Relu"}
    unknown = {n.op_type for n in nodes} - allowed
    if unknown:
        raise ValueError(f"to_c: the network's graph has operations {sorted(unknown)} the C writer does not know")
    last_use = {}
    for i, n in enumerate(nodes):
        for name_in in n.input:
            last_use[name_in] = i
    out_name, in_name = graph.output[0].name, graph.input[0].name
    n_x = explicit.n_theta
    width = {in_name: n_x}
    buffers: dict[str, str] = {in_name: "x"}
    free: dict[int, list[str]] = {}
    sizes: list[int] = []
    weights, body = [], []

    def const_ref(key: str) -> str:
        cname = "w" + str(len(weights))
        arr = consts[key]
        values = ", ".join(f"{v:.17g}" for v in arr.ravel()) or "0"
        weights.append(f"static const double {cname}[{max(arr.size, 1)}] = {{{values}}};")
        consts[key] = (cname, arr)
        return cname

    def operand(key: str):
        """('var', buffer, width) or ('const', c_name, array)."""
        if key in buffers:
            return "var", buffers[key], width[key]
        if not isinstance(consts[key], tuple):
            const_ref(key)
        cname, arr = consts[key]
        return "const", cname, arr

    for i, n in enumerate(nodes):
        ops = [operand(k) for k in n.input]
        if n.op_type == "MatMul":
            (_, a, k_in), (_, B, arr) = ops
            k = arr.shape[1]
        else:
            k = max(o[2] if o[0] == "var" else (o[2].size if o[2].ndim else 1) for o in ops)
        if n.output[0] == out_name:
            buf = "u"
        elif free.get(k):
            buf = free[k].pop()
        else:
            buf = f"b{len(sizes)}"
            sizes.append(k)
        width[n.output[0]], buffers[n.output[0]] = k, buf
        if n.op_type == "MatMul":
            body.append(f"    for (j = 0; j < {k}; j++) {{ double s = 0.0; for (i = 0; i < {k_in}; i++) "
                        f"s += {a}[i] * {B}[i * {k} + j]; {buf}[j] = s; }}")
        elif n.op_type == "Relu":
            a = ops[0][1]
            body.append(f"    for (i = 0; i < {k}; i++) {buf}[i] = {a}[i] > 0.0 ? {a}[i] : 0.0;")
        else:
            sym = {"Add": "+", "Sub": "-", "Mul": "*"}[n.op_type]
            terms = [f"{o[1]}[i]" if o[0] == "var" or o[2].size > 1 else f"{o[1]}[0]" for o in ops]
            body.append(f"    for (i = 0; i < {k}; i++) {buf}[i] = {terms[0]} {sym} {terms[1]};")
        for key in set(n.input):
            if last_use.get(key) == i and key in buffers and buffers[key] not in ("x", "u"):
                free.setdefault(width[key], []).append(buffers[key])
    n_out = width[out_name]
    decls = [f"static double b{j}[{s}];" for j, s in enumerate(sizes)]
    header = (f"/* {name}: explicit MPC network written by mpc2nn {__import__('mpc2nn').__version__} "
              f"({explicit.method}, depth {explicit.depth}). */\n#ifndef {name.upper()}_H\n#define {name.upper()}_H\n"
              f"#define {name.upper()}_NX {n_x}\n#define {name.upper()}_NU {n_out}\n"
              f"void {name}(const double x[{n_x}], double u[{n_out}]);\n#endif\n")
    source = "\n".join([f'#include "{name}.h"', "", *weights, "", *decls, "",
                        f"void {name}(const double x[{n_x}], double u[{n_out}])", "{", "    int i, j;",
                        "    (void)j;", *body, "}", ""])
    (directory / f"{name}.h").write_text(header)
    path = directory / f"{name}.c"
    path.write_text(source)
    return path
