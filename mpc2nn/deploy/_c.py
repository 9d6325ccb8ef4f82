"""A dependency-free C function evaluating an explicit network, written from its ONNX graph."""

from __future__ import annotations

import tempfile
from pathlib import Path

from .._checks import require
from .._version import __version__
from ..exceptions import ProblemDefinitionError, SolverError
from ._onnx import to_onnx

__all__ = ["to_c"]

#: The C type, the significant digits and the literal suffix of each dtype: 17 digits round-trip every
#: float64 and 9 every float32 exactly, so the C function computes with the very weights of the network.
C_DIGITS = {"float64": ("double", 17, ""), "float32": ("float", 9, "f")}


def _literal(v: float, digits: int, suffix: str) -> str:
    text = f"{v:.{digits}g}"
    if suffix and not any(c in text for c in ".en"):  # "1" -> "1.0f": a float literal needs a point or exponent
        text += ".0"
    return text + suffix


def to_c(explicit, directory, *, output: str = "control", name: str = "mpc2nn_control",
         dtype: str = "float64") -> Path:
    """Write a dependency-free C function evaluating an explicit network; returns the ``.c`` path.

    Writes ``NAME.c`` and ``NAME.h`` into ``directory`` with
    ``void NAME(const double x[], double u[])``: ``x`` has ``n_θ`` entries (the state,
    or ``θ`` as laid out in ``explicit.qp.parameter_labels``), ``u``
    receives ``n_u`` (``output="control"``) or ``N·n_u`` (``"sequence"``) entries.
    ``dtype="float32"`` writes ``float`` instead of ``double`` throughout (weights rounded
    to float32 by the ONNX export, printed with 9 digits), for targets without double
    arithmetic. The weights are ``static const`` arrays printed with enough significant
    digits to be exact (:data:`C_DIGITS`: 17 for double); each operation of the network's ONNX graph
    (:func:`to_onnx`) becomes a plain loop; intermediate vectors live in static
    buffers reused once their last reader has run, so the function is not
    reentrant (call it from one thread at a time).

    Parameters
    ----------
    explicit : ExplicitNetwork
        A pure construction from :func:`mpc2nn.unravel` (not the hybrid mode).
    directory : str or path-like
        Folder for ``NAME.c`` and ``NAME.h`` (created if missing).
    output : {"control", "sequence"}
        What ``u`` receives: the first input (``n_u`` entries) or the whole sequence (``N·n_u``).
    name : str
        Name of the C function, the files and the header's macros (a C identifier).
    dtype : {"float64", "float32"}
        Arithmetic of the C function: ``"float64"`` (default) writes ``double`` throughout,
        ``"float32"`` writes ``float`` with the weights rounded to float32 (see above).

    Returns
    -------
    pathlib.Path
        The ``.c`` file written.
    """
    if dtype not in C_DIGITS:
        raise ProblemDefinitionError(f"dtype: expected 'float64' or 'float32', got {dtype!r}")
    onnx = require("onnx", "dev")
    numpy_helper = require("onnx.numpy_helper", "dev")
    T, digits, suffix = C_DIGITS[dtype]
    zero = _literal(0.0, digits, suffix)

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        graph = onnx.load(str(to_onnx(explicit, Path(tmp) / "net.onnx", output=output, dtype=dtype))).graph
    consts = {t.name: numpy_helper.to_array(t).astype(float) for t in graph.initializer}
    nodes = list(graph.node)
    for n in nodes:
        if n.op_type == "Constant":
            consts[n.output[0]] = numpy_helper.to_array(n.attribute[0].t).astype(float)
    nodes = [n for n in nodes if n.op_type != "Constant"]
    allowed = {"MatMul", "Add", "Sub", "Mul", "Relu"}
    unknown = {n.op_type for n in nodes} - allowed
    if unknown:
        raise SolverError(f"to_c: the network's graph has operations {sorted(unknown)} the C writer does not know")
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
    weights: list[str] = []
    body: list[str] = []

    def const_ref(key: str) -> str:
        cname = "w" + str(len(weights))
        arr = consts[key]
        values = ", ".join(_literal(v, digits, suffix) for v in arr.ravel()) or zero
        weights.append(f"static const {T} {cname}[{max(arr.size, 1)}] = {{{values}}};")
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
            body.append(f"    for (j = 0; j < {k}; j++) {{ {T} s = {zero}; for (i = 0; i < {k_in}; i++) "
                        f"s += {a}[i] * {B}[i * {k} + j]; {buf}[j] = s; }}")
        elif n.op_type == "Relu":
            a = ops[0][1]
            body.append(f"    for (i = 0; i < {k}; i++) {buf}[i] = {a}[i] > {zero} ? {a}[i] : {zero};")
        else:
            sym = {"Add": "+", "Sub": "-", "Mul": "*"}[n.op_type]
            terms = [f"{o[1]}[i]" if o[0] == "var" or o[2].size > 1 else f"{o[1]}[0]" for o in ops]
            body.append(f"    for (i = 0; i < {k}; i++) {buf}[i] = {terms[0]} {sym} {terms[1]};")
        for key in set(n.input):
            if last_use.get(key) == i and key in buffers and buffers[key] not in ("x", "u"):
                free.setdefault(width[key], []).append(buffers[key])
    n_out = width[out_name]
    decls = [f"static {T} b{j}[{s}];" for j, s in enumerate(sizes)]
    header = (f"/* {name}: explicit MPC network written by mpc2nn {__version__} "
              f"({explicit.method}, depth {explicit.depth}). */\n#ifndef {name.upper()}_H\n#define {name.upper()}_H\n"
              f"#define {name.upper()}_NX {n_x}\n#define {name.upper()}_NU {n_out}\n"
              f"void {name}(const {T} x[{n_x}], {T} u[{n_out}]);\n#endif\n")
    source = "\n".join([f'#include "{name}.h"', "", *weights, "", *decls, "",
                        f"void {name}(const {T} x[{n_x}], {T} u[{n_out}])", "{", "    int i, j;",
                        "    (void)j;", *body, "}", ""])
    (directory / f"{name}.h").write_text(header)
    path = directory / f"{name}.c"
    path.write_text(source)
    return path
