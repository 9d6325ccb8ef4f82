"""Reading an ONNX file into a :class:`~mpc2nn.verify.ReluGraph`.

The operators read are those :func:`mpc2nn.deploy.to_onnx` writes (MatMul, Add, Sub, Mul, Relu,
Constant) and the few an exported Linear/ReLU network of another tool uses (Gemm, Neg, Div, Identity,
Cast, Flatten, Concat and Slice along the feature axis, Clip as two ReLUs). Any other operator raises
:class:`~mpc2nn.verify.UnsupportedNetworkError` naming it and its node.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .._checks import require
from ..exceptions import FileFormatError, NonFiniteError
from ._errors import UnsupportedNetworkError
from ._graph import Expression, GraphBuilder, ReluGraph

__all__ = ["graph_from_onnx", "ONNX_OPERATORS"]

#: The ONNX operators :func:`graph_from_onnx` reads.
ONNX_OPERATORS = ("MatMul", "Gemm", "Add", "Sub", "Mul", "Div", "Neg", "Relu", "Clip", "Identity", "Cast",
                  "Flatten", "Concat", "Slice", "Constant")


def graph_from_onnx(path) -> ReluGraph:
    """The :class:`ReluGraph` of an ONNX model with one input ``(batch, n_θ)`` and one output.

    Parameters
    ----------
    path : str or path-like
        The ``.onnx`` file.

    Returns
    -------
    ReluGraph

    Raises
    ------
    UnsupportedNetworkError
        An operator outside :data:`ONNX_OPERATORS`, or one used in a way that is not affine.
    FileFormatError
        The file is not a readable ONNX model, or has not one input of shape ``(batch, n)``.
    """
    onnx = require("onnx", "verify")
    from onnx import numpy_helper

    path = Path(path)
    try:
        model = onnx.load(str(path))
    except Exception as exc:  # protobuf decode errors have no common base class
        raise FileFormatError(f"network: {path} is not a readable ONNX file ({exc})") from None
    g = model.graph
    label = path.name
    consts: dict = {t.name: numpy_helper.to_array(t).astype(float) for t in g.initializer}
    inputs = [i for i in g.input if i.name not in consts]
    if len(inputs) != 1 or len(g.output) != 1:
        raise FileFormatError(f"network: {path} has {len(inputs)} inputs and {len(g.output)} outputs; expected one "
                              "input x of shape (batch, n_θ) and one output")
    dims = inputs[0].type.tensor_type.shape.dim
    if len(dims) != 2 or not dims[1].dim_value:
        raise FileFormatError(f"network: {path}'s input {inputs[0].name!r} must have shape (batch, n) with a fixed n")
    b = GraphBuilder(int(dims[1].dim_value))
    env: dict = {inputs[0].name: b.input()}
    env.update(consts)

    def const(name: str, what: str) -> np.ndarray:
        v = env[name]
        if isinstance(v, Expression):
            raise UnsupportedNetworkError(f"network {label}: {what} needs a constant operand, got a value that "
                                          "depends on the input")
        if not np.all(np.isfinite(v)):
            raise NonFiniteError(f"network {label}: a weight or constant holds NaN or an infinity ({what}); a "
                                 "network with non-finite weights cannot be verified")
        return v

    def vec(a: np.ndarray, size: int, what: str) -> np.ndarray:
        if a.ndim == 2 and a.shape[0] == 1:
            a = a[0]
        if a.ndim > 1 or (a.ndim == 1 and a.shape[0] not in (1, size)):
            raise UnsupportedNetworkError(f"network {label}: {what} with a constant of shape {a.shape} on values "
                                          f"of size {size}")
        return np.broadcast_to(a.reshape(-1) if a.ndim else a, (size,)).astype(float)

    for node in g.node:
        op, where = node.op_type, f"node {node.name or node.output[0]!r} ({node.op_type})"
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        ins: list[Any] = [env.get(n) if n else None for n in node.input]
        sym = [isinstance(v, Expression) for v in ins]
        if op == "Constant":
            if "value" not in attrs:
                raise UnsupportedNetworkError(f"network {label}: {where} without a tensor value")
            env[node.output[0]] = numpy_helper.to_array(attrs["value"]).astype(float)
            continue
        if op not in ONNX_OPERATORS:
            raise UnsupportedNetworkError(f"network {label}: operator {op} at {where} is not affine or a ReLU; "
                                          f"verify reads {', '.join(ONNX_OPERATORS)}")
        if not any(sym):  # constant folding of weight arithmetic
            env[node.output[0]] = _fold(op, [const(n, where) if n else None for n in node.input], attrs, label,
                                        where)
            continue
        x: Any = ins[0]
        if op in ("Identity", "Cast", "Flatten"):
            out = x
        elif op == "Relu":
            out = b.relu(x)
        elif op == "Neg":
            out = x.scale(-1.0)
        elif op == "MatMul":
            if sym[1]:
                raise UnsupportedNetworkError(f"network {label}: {where} multiplies by a value that depends on "
                                              "the input on the right")
            C = const(node.input[1], where)
            out = b.compact(x.matmul(C if C.ndim == 2 else C[:, None]))
        elif op == "Gemm":
            if any(sym[1:]):
                raise UnsupportedNetworkError(f"network {label}: {where} with an input-dependent B or C")
            if attrs.get("transA", 0):
                raise UnsupportedNetworkError(f"network {label}: {where} with transA = 1")
            B = const(node.input[1], where)
            B = B.T if attrs.get("transB", 0) else B
            out = x.matmul(float(attrs.get("alpha", 1.0)) * B)
            if len(node.input) > 2 and node.input[2]:
                out = out.shift(float(attrs.get("beta", 1.0)) * vec(const(node.input[2], where), out.size, where))
            out = b.compact(out)
        elif op in ("Add", "Sub"):
            sign = 1.0 if op == "Add" else -1.0
            if sym[0] and sym[1]:
                out = b.compact(x.plus(ins[1], sign))
            elif sym[0]:
                out = x.shift(sign * vec(const(node.input[1], where), x.size, where))
            else:
                y = ins[1]
                out = y.scale(sign).shift(vec(const(node.input[0], where), y.size, where))
        elif op in ("Mul", "Div"):
            if sym[0] and sym[1]:
                raise UnsupportedNetworkError(f"network {label}: {where} multiplies two values that depend on the "
                                              "input")
            if op == "Div" and sym[1]:
                raise UnsupportedNetworkError(f"network {label}: {where} divides by a value that depends on the input")
            e, c = (x, node.input[1]) if sym[0] else (ins[1], node.input[0])
            f = vec(const(c, where), e.size, where)
            if op == "Div":
                if np.any(f == 0):
                    raise NonFiniteError(f"network {label}: {where} divides by zero")
                f = 1.0 / f
            out = e.scale(f)
        elif op == "Clip":
            lo = const(node.input[1], where) if len(node.input) > 1 and node.input[1] else None
            hi = const(node.input[2], where) if len(node.input) > 2 and node.input[2] else None
            out = b.clamp(x, lo, hi)
        elif op == "Concat":
            if attrs.get("axis") not in (1, -1):
                raise UnsupportedNetworkError(f"network {label}: {where} along axis {attrs.get('axis')}")
            parts = [v if isinstance(v, Expression) else Expression({}, vec(v, np.size(v), where)) for v in ins]
            out = b.compact(Expression.concat(parts))
        elif op == "Slice":
            out = x.take(_slice_rows(node, env, x.size, label, where, const))
        else:  # pragma: no cover - every operator of ONNX_OPERATORS is handled above
            raise UnsupportedNetworkError(f"network {label}: {where}")
        env[node.output[0]] = out
    result = env.get(g.output[0].name)
    if not isinstance(result, Expression):
        raise UnsupportedNetworkError(f"network {label}: the output does not depend on the input")
    return b.finish(result, label)


def _slice_rows(node, env, size: int, label: str, where: str, const) -> np.ndarray:
    starts = const(node.input[1], where).astype(np.int64)
    ends = const(node.input[2], where).astype(np.int64)
    axes = const(node.input[3], where).astype(np.int64) if len(node.input) > 3 and node.input[3] else np.arange(
        starts.size)
    steps = const(node.input[4], where).astype(np.int64) if len(node.input) > 4 and node.input[4] else np.ones(
        starts.size, np.int64)
    rows = np.arange(size)
    for s, e, a, st in zip(starts, ends, axes, steps, strict=True):
        if a not in (1, -1):
            raise UnsupportedNetworkError(f"network {label}: {where} slices axis {a}; only the feature axis may be "
                                          "sliced")
        rows = rows[slice(int(max(min(s, 2**62), -2**62)), int(max(min(e, 2**62), -2**62)), int(st))]
    return rows


def _fold(op: str, args, attrs: dict, label: str, where: str) -> np.ndarray:
    """Evaluate an operator on constants."""
    a = args[0]
    if op in ("Identity", "Cast"):
        return a
    if op == "Neg":
        return -a
    if op == "Relu":
        return np.maximum(a, 0.0)
    if op == "Add":
        return a + args[1]
    if op == "Sub":
        return a - args[1]
    if op == "Mul":
        return a * args[1]
    if op == "Div":
        return a / args[1]
    if op == "MatMul":
        return a @ args[1]
    raise UnsupportedNetworkError(f"network {label}: {where} on constants only is not supported")
