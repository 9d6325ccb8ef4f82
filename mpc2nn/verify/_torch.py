"""Reading a torch network into a :class:`~mpc2nn.verify.ReluGraph` by symbolic tracing (``torch.fx``).

The module is traced once; each traced operation is replayed on :class:`~mpc2nn.verify.Expression`
values (affine combinations of graph nodes) when it involves the input, and run by torch on the
constants otherwise (a transpose of a weight, a product of two buffers). Only affine operations and
ReLUs (and the clamps and hard-tanh written as two ReLUs) are accepted; anything else raises
:class:`~mpc2nn.verify.UnsupportedNetworkError` naming the operation.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import numpy as np

from .._checks import require
from ..exceptions import NonFiniteError, ShapeError
from ._errors import UnsupportedNetworkError
from ._graph import Expression, GraphBuilder, ReluGraph

__all__ = ["graph_from_torch", "torch_input_size"]


def torch_input_size(module) -> int | None:
    """``n_θ`` of an mpc2nn explicit network, ``in_features`` of the first Linear layer, else None."""
    torch = require("torch", "torch")
    for name in ("n_theta", "n_in"):
        if isinstance(getattr(module, name, None), int):
            return int(getattr(module, name))
    for sub in module.modules():
        if isinstance(sub, torch.nn.Linear):
            return int(sub.in_features)
    return None


def graph_from_torch(module, n_in: int | None = None, *, source: str | None = None) -> ReluGraph:
    """The :class:`ReluGraph` of a torch module's ``forward`` (traced by ``torch.fx``).

    Parameters
    ----------
    module : torch.nn.Module
        A network of affine operations and ReLUs (mpc2nn explicit networks, ``nn.Sequential`` of
        Linear/ReLU layers, ...). Its ``forward`` takes one tensor of shape ``(B, n_in)``.
    n_in : int, optional
        Input size; default from the module (:func:`torch_input_size`).
    source : str, optional
        A label for reports (default the module's class name).

    Returns
    -------
    ReluGraph
        Float64 weights (a float32 network is read exactly; its float32 rounding in evaluation is not
        part of the graph).

    Raises
    ------
    UnsupportedNetworkError
        The module cannot be traced, or holds an operation that is not affine or a ReLU.
    """
    torch = require("torch", "torch")
    require("torch.fx", "torch")

    label = source or type(module).__name__
    if n_in is None:
        n_in = torch_input_size(module)
    if n_in is None:
        raise ShapeError(f"network: cannot tell the input size of {label}; pass n_inputs=")
    was_training = module.training
    module.eval()
    try:
        gm = torch.fx.symbolic_trace(module)
    except Exception as exc:  # tracing failures come in many types (TraceError, TypeError, ...)
        raise UnsupportedNetworkError(f"network: {label} cannot be traced by torch.fx ({type(exc).__name__}: "
                                      f"{exc}); give a network whose forward is a fixed sequence of affine "
                                      "operations and ReLUs") from None
    finally:
        module.train(was_training)
    return _Replay(gm, int(n_in), label, torch).run()


class _Replay:
    """Replays an fx graph on expressions (internal)."""

    def __init__(self, gm, n_in: int, label: str, torch):
        self.gm, self.label, self.torch = gm, label, torch
        self.b = GraphBuilder(n_in)
        self.n_in = n_in
        F = torch.nn.functional
        self.functions: dict[Any, Callable[..., Any]] = {
            operator.matmul: self.matmul, torch.matmul: self.matmul, torch.mm: self.matmul,
            operator.add: self.add, torch.add: self.add, operator.sub: self.sub, torch.sub: self.sub,
            operator.mul: self.mul, torch.mul: self.mul, operator.truediv: self.div, torch.div: self.div,
            operator.neg: self.neg, torch.neg: self.neg, operator.getitem: self.getitem,
            torch.relu: self.relu, F.relu: self.relu, torch.clamp: self.clamp, torch.clip: self.clamp,
            torch.clamp_min: lambda x, m: self.clamp(x, m, None), F.hardtanh: self.hardtanh,
            F.relu6: lambda x, inplace=False: self.clamp(x, 0.0, 6.0), F.linear: self.linear,
            torch.cat: self.cat, torch.concat: self.cat,
        }
        self.methods: dict[str, Callable[..., Any]] = {
            "matmul": self.matmul, "__matmul__": self.matmul, "add": self.add, "sub": self.sub, "mul": self.mul,
            "div": self.div, "neg": self.neg, "relu": self.relu, "clamp": self.clamp, "clip": self.clamp,
            "clamp_min": lambda x, m: self.clamp(x, m, None), "clamp_max": lambda x, m: self.clamp(x, None, m),
            "to": self.cast, "double": self.cast, "float": self.cast, "type": self.cast, "type_as": self.cast,
            "contiguous": self.cast,
        }

    # --- conversions ------------------------------------------------------------------------------
    def const(self, v, what: str) -> np.ndarray:
        if isinstance(v, self.torch.Tensor):
            a = v.detach().cpu().double().numpy()
        elif isinstance(v, (int, float, np.ndarray, np.number)):
            a = np.asarray(v, float)
        else:
            raise UnsupportedNetworkError(f"network {self.label}: {what} with an operand of type {type(v).__name__}")
        if not np.all(np.isfinite(a)):
            raise NonFiniteError(f"network {self.label}: a weight or constant holds NaN or an infinity ({what}); "
                                 "a network with non-finite weights cannot be verified")
        return a

    def vector(self, v, size: int, what: str) -> np.ndarray:
        """A constant that broadcasts along the batch: a scalar, shape (size,) or (1, size)."""
        a = self.const(v, what)
        if a.ndim == 2 and a.shape[0] == 1:
            a = a[0]
        if a.ndim > 1 or (a.ndim == 1 and a.shape[0] not in (1, size)):
            raise UnsupportedNetworkError(f"network {self.label}: {what} with a constant of shape {a.shape} on "
                                          f"values of size {size}; only scalars and vectors that broadcast "
                                          "along the batch are affine")
        return np.broadcast_to(a.reshape(-1) if a.ndim else a, (size,)).astype(float)

    def as_expr(self, v, size: int, what: str) -> Expression:
        if isinstance(v, Expression):
            return v
        return Expression({}, self.vector(v, size, what))

    # --- operations ---------------------------------------------------------------------------------
    def matmul(self, a, b):
        if isinstance(b, Expression):
            raise UnsupportedNetworkError(f"network {self.label}: a matrix product with the input on the right "
                                          "(C @ x) is not supported; write x @ Cᵀ")
        C = self.const(b, "a matrix product")
        if C.ndim == 1:
            C = C[:, None]
        if C.ndim != 2 or C.shape[0] != a.size:
            raise UnsupportedNetworkError(f"network {self.label}: a matrix product of values of size {a.size} "
                                          f"with a constant of shape {C.shape}")
        return self.b.compact(a.matmul(C))

    def add(self, a, b, alpha=1.0):
        if not isinstance(a, Expression):
            a, b = b, a
            if alpha != 1.0:
                raise UnsupportedNetworkError(f"network {self.label}: torch.add(c, x, alpha=...)")
        if isinstance(b, Expression):
            return self.b.compact(a.plus(b, float(alpha)))
        return a.shift(float(alpha) * self.vector(b, a.size, "an addition"))

    def sub(self, a, b, alpha=1.0):
        if isinstance(a, Expression) and isinstance(b, Expression):
            return self.b.compact(a.plus(b, -float(alpha)))
        if isinstance(a, Expression):
            return a.shift(-float(alpha) * self.vector(b, a.size, "a subtraction"))
        return b.scale(-float(alpha)).shift(self.vector(a, b.size, "a subtraction"))

    def mul(self, a, b):
        if isinstance(a, Expression) and isinstance(b, Expression):
            raise UnsupportedNetworkError(f"network {self.label}: a product of two values that depend on the "
                                          "input (x * y) is not affine")
        if not isinstance(a, Expression):
            a, b = b, a
        return a.scale(self.vector(b, a.size, "a product"))

    def div(self, a, b, rounding_mode=None):
        if isinstance(b, Expression) or rounding_mode is not None:
            raise UnsupportedNetworkError(f"network {self.label}: a division by a value that depends on the "
                                          "input, or with rounding, is not affine")
        d = self.vector(b, a.size, "a division")
        if np.any(d == 0):
            raise NonFiniteError(f"network {self.label}: a division by zero")
        return a.scale(1.0 / d)

    def neg(self, a):
        return a.scale(-1.0)

    def relu(self, a, inplace=False):
        return self.b.relu(a)

    def clamp(self, a, min=None, max=None):
        lo = None if min is None else self.vector(min, a.size, "a clamp")
        hi = None if max is None else self.vector(max, a.size, "a clamp")
        if lo is not None and hi is not None and np.any(lo > hi):
            raise UnsupportedNetworkError(f"network {self.label}: a clamp with min > max")
        return self.b.clamp(a, lo, hi)

    def hardtanh(self, a, min_val=-1.0, max_val=1.0, inplace=False):
        return self.clamp(a, min_val, max_val)

    def linear(self, a, weight, bias=None):
        W = self.const(weight, "a linear layer")
        out = self.matmul(a, W.T)
        return out if bias is None else out.shift(self.vector(bias, out.size, "a linear layer's bias"))

    def cat(self, parts, dim=0):
        if dim not in (1, -1):
            raise UnsupportedNetworkError(f"network {self.label}: torch.cat along dim {dim}; only the feature "
                                          "dimension (1 or -1) keeps rows apart")
        exprs = [p if isinstance(p, Expression) else Expression({}, self.vector(p, self.const(p, "cat").size, "cat"))
                 for p in parts]
        return self.b.compact(Expression.concat(exprs))

    def getitem(self, a, index):
        if not isinstance(index, tuple):
            index = (slice(None), index) if not isinstance(index, slice) or index != slice(None) else (index,)
        if len(index) == 1 and index[0] == slice(None):
            return a
        if len(index) != 2 or index[0] != slice(None):
            raise UnsupportedNetworkError(f"network {self.label}: indexing {index!r}; only the feature dimension "
                                          "may be indexed (x[:, i:j] or x[:, [i, j]])")
        rows = index[1]
        if isinstance(rows, int):
            raise UnsupportedNetworkError(f"network {self.label}: x[:, {rows}] drops a dimension; write "
                                          f"x[:, {rows}:{rows + 1}]")
        if not isinstance(rows, slice):
            rows = np.asarray(self.const(rows, "an index"), np.int64)
        return a.take(rows)

    def cast(self, a, *args, **kwargs):
        return a

    # --- the replay --------------------------------------------------------------------------------
    def fetch(self, target: str):
        obj = self.gm
        for part in target.split("."):
            obj = getattr(obj, part)
        return obj

    def module_op(self, mod, args, kwargs):
        nn = self.torch.nn
        x = args[0]
        if not isinstance(x, Expression):
            return mod(*args, **kwargs)
        if isinstance(mod, nn.Linear):
            return self.linear(x, mod.weight, mod.bias)
        if isinstance(mod, nn.ReLU):
            return self.relu(x)
        if isinstance(mod, nn.Hardtanh):  # ReLU6 too
            return self.clamp(x, mod.min_val, mod.max_val)
        if isinstance(mod, (nn.Identity, nn.Dropout, nn.Flatten)):
            return x  # traced in eval mode: dropout is the identity; a (B, k) input is already flat
        raise UnsupportedNetworkError(f"network {self.label}: layer {type(mod).__name__} is not affine or a ReLU; "
                                      "verify accepts Linear, ReLU, Hardtanh/ReLU6 (as two ReLUs), Identity, "
                                      "Dropout (eval) and Flatten layers")

    def run(self) -> ReluGraph:
        env: dict = {}
        inputs = 0
        result = None

        def load(v):
            if isinstance(v, self.torch.fx.Node):
                return env[v.name]
            if isinstance(v, (list, tuple)):
                return type(v)(load(u) for u in v)
            if isinstance(v, dict):
                return {k: load(u) for k, u in v.items()}
            if isinstance(v, slice):
                return slice(load(v.start), load(v.stop), load(v.step))
            return v

        def symbolic(v) -> bool:
            if isinstance(v, Expression):
                return True
            if isinstance(v, (list, tuple)):
                return any(symbolic(u) for u in v)
            if isinstance(v, dict):
                return any(symbolic(u) for u in v.values())
            return False

        for node in self.gm.graph.nodes:
            args, kwargs = load(node.args), load(node.kwargs)
            where = f"{node.op} {node.target}"
            if node.op == "placeholder":
                if inputs:
                    raise UnsupportedNetworkError(f"network {self.label}: forward takes more than one tensor")
                inputs += 1
                env[node.name] = self.b.input()
            elif node.op == "get_attr":
                env[node.name] = self.fetch(node.target)
            elif node.op == "call_module":
                env[node.name] = self.module_op(self.fetch(node.target), args, kwargs)
            elif node.op == "call_function":
                if not symbolic((args, kwargs)):
                    env[node.name] = node.target(*args, **kwargs)
                elif node.target in self.functions:
                    env[node.name] = self.functions[node.target](*args, **kwargs)
                else:
                    raise UnsupportedNetworkError(f"network {self.label}: operation {_name(node.target)} on a "
                                                  "value that depends on the input is not affine or a ReLU")
            elif node.op == "call_method":
                if not symbolic((args, kwargs)):
                    env[node.name] = getattr(args[0], node.target)(*args[1:], **kwargs)
                elif node.target in self.methods and isinstance(args[0], Expression):
                    env[node.name] = self.methods[node.target](*args, **kwargs)
                else:
                    raise UnsupportedNetworkError(f"network {self.label}: method .{node.target}() on a value that "
                                                  "depends on the input is not affine or a ReLU")
            elif node.op == "output":
                result = args[0]
            else:  # pragma: no cover - fx has no other node kinds
                raise UnsupportedNetworkError(f"network {self.label}: fx node {where}")
        if not isinstance(result, Expression):
            raise UnsupportedNetworkError(f"network {self.label}: forward must return one tensor that depends on "
                                          f"the input, got {type(result).__name__}")
        return self.b.finish(result, self.label)


def _name(fn) -> str:
    mod = getattr(fn, "__module__", None) or ""
    return f"{mod}.{getattr(fn, '__name__', repr(fn))}".lstrip(".")
