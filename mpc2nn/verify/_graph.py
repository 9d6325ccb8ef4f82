"""The network under verification as a graph of affine maps and ReLUs: :class:`ReluGraph`.

Every network :func:`~mpc2nn.verify` accepts (an explicit network of mpc2nn, a ``torch.nn.Sequential`` of
Linear/ReLU layers, an ONNX file) is read into one form: nodes in topological order, node 0 the input
``θ``, each further node either *affine* (``v = Σ_p A_p v_p + c`` over earlier nodes) or a *ReLU*
(``v = max(v_p, 0)`` of one earlier node), and one output node (affine). Unrolled networks keep their
recurrences as nodes (the layer state of layer ``j`` is a node), so the graph grows linearly with the depth.

:class:`Expression` is the algebra the readers build it with: an affine combination of existing nodes,
materialised into a node when it is used by a ReLU or grows past :data:`MAX_TERMS` terms.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .._checks import frozen
from ..exceptions import NonFiniteError, ShapeError

__all__ = ["ReluGraph", "GraphNode", "Expression", "GraphBuilder", "MAX_TERMS", "EVALUATE_CHUNK"]

#: An expression with more than this many distinct nodes in its terms is materialised as an affine node:
#: without it an unrolled recurrence (``U_{j+1} = U_j S + r_j R + ...``) would refer to every earlier
#: layer's ReLUs and the graph would grow quadratically with the depth.
MAX_TERMS = 4

#: Points per chunk of :meth:`ReluGraph.evaluate` (each chunk holds every node's value).
EVALUATE_CHUNK = 4096


@dataclass(frozen=True, eq=False)
class GraphNode:
    """One node of a :class:`ReluGraph`.

    Attributes
    ----------
    kind : str
        ``"input"``, ``"affine"`` or ``"relu"``.
    size : int
        Number of values (neurons) of the node.
    parents : tuple of int
        Affine: the nodes of its terms; ReLU: the one node it rectifies; input: empty.
    weights : tuple of ndarray
        Affine: one matrix ``A_p`` of shape ``(size, size of parent p)`` per parent; empty otherwise.
    bias : ndarray, shape (size,)
        Affine: the offset ``c``; zeros otherwise.
    """

    kind: str
    size: int
    parents: tuple = ()
    weights: tuple = ()
    bias: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def __post_init__(self):
        object.__setattr__(self, "weights", tuple(frozen(np.asarray(w, float)) for w in self.weights))
        object.__setattr__(self, "bias", frozen(np.asarray(self.bias, float).reshape(-1)))
        object.__setattr__(self, "parents", tuple(int(p) for p in self.parents))


class ReluGraph:
    """A continuous piecewise-affine map ``θ ↦ y`` built from affine maps and ReLUs.

    Parameters
    ----------
    nodes : sequence of GraphNode
        In topological order; ``nodes[0]`` is the input (kind ``"input"``, size ``n_in``), every parent
        index is smaller than its node's.
    output : int
        The index of the output node (an affine node or the input).
    source : str
        What the graph was read from (for reports).

    Attributes
    ----------
    n_in, n_out : int
        Sizes of the input ``θ`` and of the output.
    n_relu : int
        Number of ReLU neurons (the binaries of a MILP before the stable ones are removed).
    """

    def __init__(self, nodes, output: int, source: str = "graph"):
        self.nodes = tuple(nodes)
        self.output = int(output)
        self.source = str(source)
        if not self.nodes or self.nodes[0].kind != "input":
            raise ShapeError("nodes: expected the input node first (kind 'input')")
        for i, node in enumerate(self.nodes):
            if node.kind == "input" and i:
                raise ShapeError(f"nodes[{i}]: only node 0 may be the input")
            if any(p >= i or p < 0 for p in node.parents):
                raise ShapeError(f"nodes[{i}]: parents {node.parents} must come before it")
            if node.kind == "affine":
                for p, A in zip(node.parents, node.weights, strict=True):
                    if A.shape != (node.size, self.nodes[p].size):
                        raise ShapeError(f"nodes[{i}]: weight of parent {p} has shape {A.shape}, expected "
                                         f"({node.size}, {self.nodes[p].size})")
                    if not np.all(np.isfinite(A)):
                        raise NonFiniteError(f"{source}: a weight matrix holds NaN or an infinity (node {i}); "
                                             "a network with non-finite weights cannot be verified")
                if node.bias.shape != (node.size,) or not np.all(np.isfinite(node.bias)):
                    raise NonFiniteError(f"{source}: a bias holds NaN or an infinity, or has the wrong shape "
                                         f"(node {i})")
            elif node.kind == "relu":
                if len(node.parents) != 1 or self.nodes[node.parents[0]].size != node.size:
                    raise ShapeError(f"nodes[{i}]: a ReLU has one parent of its own size")
            elif node.kind != "input":
                raise ShapeError(f"nodes[{i}]: unknown kind {node.kind!r}")
        if not 0 <= self.output < len(self.nodes):
            raise ShapeError(f"output: expected a node index in [0, {len(self.nodes)}), got {output}")
        self.n_in = self.nodes[0].size
        self.n_out = self.nodes[self.output].size
        self.n_relu = sum(n.size for n in self.nodes if n.kind == "relu")

    def __repr__(self) -> str:
        n_aff = sum(1 for n in self.nodes if n.kind == "affine")
        n_rl = sum(1 for n in self.nodes if n.kind == "relu")
        return (f"ReluGraph({self.source}: {self.n_in} inputs, {self.n_out} outputs, {n_aff} affine nodes, "
                f"{n_rl} ReLU nodes with {self.n_relu} neurons)")

    # --- evaluation ---------------------------------------------------------------------------------
    def values(self, theta) -> list:
        """Every node's value at the points ``theta``.

        Parameters
        ----------
        theta : array_like, shape (B, n_in)
            The points (a single point (n_in,) is promoted to B = 1).

        Returns
        -------
        list of ndarray
            One ``(B, size)`` float64 array per node.
        """
        theta = np.atleast_2d(np.asarray(theta, float))
        if theta.shape[1] != self.n_in:
            raise ShapeError(f"theta: expected shape (B, n_θ) = (B, {self.n_in}), got {theta.shape}")
        vals: list = []
        for node in self.nodes:
            if node.kind == "input":
                vals.append(theta)
            elif node.kind == "relu":
                vals.append(np.maximum(vals[node.parents[0]], 0.0))
            else:
                v = np.broadcast_to(node.bias, (theta.shape[0], node.size)).copy()
                for p, A in zip(node.parents, node.weights, strict=True):
                    v += vals[p] @ A.T
                vals.append(v)
        return vals

    def evaluate(self, theta) -> np.ndarray:
        """The output at the points ``theta``, in float64 (chunks of :data:`EVALUATE_CHUNK` points).

        Parameters
        ----------
        theta : array_like, shape (B, n_in)
            The points (a single point (n_in,) is promoted to B = 1).

        Returns
        -------
        ndarray, shape (B, n_out)
        """
        theta = np.atleast_2d(np.asarray(theta, float))
        out = np.empty((theta.shape[0], self.n_out))
        live = self._live
        for s in range(0, theta.shape[0], EVALUATE_CHUNK):
            vals = self._values_live(theta[s:s + EVALUATE_CHUNK], live)
            out[s:s + EVALUATE_CHUNK] = vals[self.output]
        return out

    def _values_live(self, theta, live):
        vals: dict = {}
        for i in live:
            node = self.nodes[i]
            if node.kind == "input":
                vals[i] = theta
            elif node.kind == "relu":
                vals[i] = np.maximum(vals[node.parents[0]], 0.0)
            else:
                v = np.broadcast_to(node.bias, (theta.shape[0], node.size)).copy()
                for p, A in zip(node.parents, node.weights, strict=True):
                    v += vals[p] @ A.T
                vals[i] = v
        return vals

    @property
    def _live(self) -> list:
        """Indices of the nodes the output depends on, in order."""
        need = {self.output}
        for i in range(self.output, -1, -1):
            if i in need:
                need.update(self.nodes[i].parents)
        return sorted(need)

    # --- transformations ----------------------------------------------------------------------------
    def pruned(self) -> ReluGraph:
        """The graph without the nodes the output does not depend on (indices renumbered)."""
        live = self._live
        index = {old: new for new, old in enumerate(live)}
        nodes = [GraphNode(n.kind, n.size, tuple(index[p] for p in n.parents), n.weights, n.bias)
                 for n in (self.nodes[i] for i in live)]
        return ReluGraph(nodes, index[self.output], self.source)

    def with_input_map(self, offset, scale) -> ReluGraph:
        """The graph of ``ξ ↦ y(offset + scale ⊙ ξ)`` (the MILPs work in unit-scaled coordinates).

        Parameters
        ----------
        offset : array_like, shape (n_in,)
            ``θ`` at ``ξ = 0``.
        scale : array_like, shape (n_in,)
            Positive scale of each coordinate.

        Returns
        -------
        ReluGraph
        """
        offset = np.asarray(offset, float).reshape(self.n_in)
        scale = np.asarray(scale, float).reshape(self.n_in)
        nodes = [self.nodes[0]]
        for n in self.nodes[1:]:
            if n.kind != "affine" or 0 not in n.parents:
                nodes.append(n)
                continue
            weights, bias = [], n.bias.copy()
            for p, A in zip(n.parents, n.weights, strict=True):
                if p == 0:
                    bias = bias + A @ offset
                    A = A * scale[None, :]
                weights.append(A)
            nodes.append(GraphNode("affine", n.size, n.parents, tuple(weights), bias))
        out = self.output
        if out == 0:  # the identity network: give it an affine output node
            nodes.append(GraphNode("affine", self.n_in, (0,), (np.diag(scale),), offset))
            out = len(nodes) - 1
        return ReluGraph(nodes, out, self.source)

    def select_outputs(self, rows) -> ReluGraph:
        """The graph with only the outputs ``rows`` (e.g. the first input of a sequence).

        Parameters
        ----------
        rows : array_like of int
            Output indices kept, in order.

        Returns
        -------
        ReluGraph
        """
        rows = np.asarray(rows, np.int64)
        builder = GraphBuilder.from_graph(self)
        expr = builder.node_expression(self.output).take(rows)
        return builder.finish(expr, self.source)


class Expression:
    """An affine combination ``Σ_p A_p v_p + c`` of nodes of a :class:`GraphBuilder` (rows: values).

    Parameters
    ----------
    terms : dict of int to ndarray
        ``node index -> A_p`` of shape ``(size, size of node p)``.
    bias : ndarray, shape (size,)
        The constant part.
    """

    __slots__ = ("terms", "bias")

    def __init__(self, terms: dict, bias: np.ndarray):
        self.terms = {p: A for p, A in terms.items() if np.any(A)}
        self.bias = np.asarray(bias, float).reshape(-1)

    @property
    def size(self) -> int:
        """Number of values."""
        return self.bias.size

    @property
    def constant(self) -> bool:
        """No node in the terms: the expression is its bias."""
        return not self.terms

    def matmul(self, C: np.ndarray) -> Expression:
        """``self @ C`` in row-vector convention: ``C`` of shape ``(size, k)``."""
        return Expression({p: C.T @ A for p, A in self.terms.items()}, self.bias @ C)

    def scale(self, c: np.ndarray) -> Expression:
        """Each value times ``c`` (a scalar or a vector of length ``size``)."""
        c = np.broadcast_to(np.asarray(c, float).reshape(-1), (self.size,))
        return Expression({p: c[:, None] * A for p, A in self.terms.items()}, c * self.bias)

    def shift(self, c: np.ndarray) -> Expression:
        """Each value plus ``c`` (a scalar or a vector of length ``size``)."""
        return Expression(dict(self.terms), self.bias + np.broadcast_to(np.asarray(c, float).reshape(-1),
                                                                         (self.size,)))

    def plus(self, other: Expression, sign: float = 1.0) -> Expression:
        """``self + sign·other`` (same size)."""
        if other.size != self.size:
            raise ShapeError(f"adding values of sizes {self.size} and {other.size}")
        terms = dict(self.terms)
        for p, A in other.terms.items():
            terms[p] = terms[p] + sign * A if p in terms else sign * A
        return Expression(terms, self.bias + sign * other.bias)

    def take(self, rows) -> Expression:
        """The values ``rows`` (an index array or slice)."""
        return Expression({p: A[rows] for p, A in self.terms.items()}, self.bias[rows])

    @staticmethod
    def concat(parts) -> Expression:
        """The values of ``parts`` one after the other."""
        sizes = [e.size for e in parts]
        total = sum(sizes)
        terms: dict = {}
        start = 0
        bias = np.concatenate([e.bias for e in parts]) if parts else np.zeros(0)
        for e in parts:
            for p, A in e.terms.items():
                if p not in terms:
                    terms[p] = np.zeros((total, A.shape[1]))
                terms[p][start:start + e.size] = A
            start += e.size
        return Expression(terms, bias)


class GraphBuilder:
    """Builds a :class:`ReluGraph` from :class:`Expression` operations (the readers use it).

    Parameters
    ----------
    n_in : int
        Size of the input ``θ``.
    """

    def __init__(self, n_in: int):
        self.nodes: list[GraphNode] = [GraphNode("input", int(n_in))]

    @classmethod
    def from_graph(cls, graph: ReluGraph) -> GraphBuilder:
        """A builder holding the nodes of ``graph``."""
        b = cls(graph.n_in)
        b.nodes = list(graph.nodes)
        return b

    def input(self) -> Expression:
        """The input ``θ`` as an expression."""
        return self.node_expression(0)

    def node_expression(self, i: int) -> Expression:
        """Node ``i`` as an expression (identity on it)."""
        n = self.nodes[i].size
        return Expression({i: np.eye(n)}, np.zeros(n))

    def materialise(self, e: Expression) -> int:
        """The index of a node holding ``e``: an existing node when ``e`` is one, else a new affine node."""
        if len(e.terms) == 1 and not np.any(e.bias):
            (p, A), = e.terms.items()
            if A.shape[0] == A.shape[1] and np.array_equal(A, np.eye(A.shape[0])):
                return p
        parents = tuple(sorted(e.terms))
        self.nodes.append(GraphNode("affine", e.size, parents, tuple(e.terms[p] for p in parents), e.bias))
        return len(self.nodes) - 1

    def compact(self, e: Expression) -> Expression:
        """``e``, materialised when it has more than :data:`MAX_TERMS` terms."""
        if len(e.terms) <= MAX_TERMS:
            return e
        return self.node_expression(self.materialise(e))

    def relu(self, e: Expression) -> Expression:
        """``max(e, 0)``: a constant is folded, otherwise a ReLU node is added."""
        if e.constant:
            return Expression({}, np.maximum(e.bias, 0.0))
        p = self.materialise(e)
        self.nodes.append(GraphNode("relu", e.size, (p,)))
        return self.node_expression(len(self.nodes) - 1)

    def clamp(self, e: Expression, lo, hi) -> Expression:
        """``min(max(e, lo), hi)`` as ReLUs: ``lo + relu(e - lo) - relu(e - hi)`` (either bound may be None)."""
        if lo is None and hi is None:
            return e
        if hi is None:
            return self.relu(e.shift(-np.asarray(lo, float))).shift(lo)
        if lo is None:  # min(e, hi) = e - relu(e - hi)
            return e.plus(self.relu(e.shift(-np.asarray(hi, float))), -1.0)
        lo_v = np.broadcast_to(np.asarray(lo, float), (e.size,))
        hi_v = np.broadcast_to(np.asarray(hi, float), (e.size,))
        low = self.relu(e.shift(-lo_v)).shift(lo_v)
        return low.plus(self.relu(e.shift(-hi_v)), -1.0)

    def finish(self, e: Expression, source: str) -> ReluGraph:
        """The graph with output ``e`` (a new affine node unless ``e`` is an affine node already)."""
        parents = tuple(sorted(e.terms))
        self.nodes.append(GraphNode("affine", e.size, parents, tuple(e.terms[p] for p in parents), e.bias))
        return ReluGraph(self.nodes, len(self.nodes) - 1, source).pruned()
