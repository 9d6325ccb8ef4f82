"""A network of affine terms and pairwise max/min levels: :class:`Program`, and its schedule from a lattice.

The network computes the affine terms ``h_0 = θ Wᵀ + w`` (one Linear layer), then levels
``h_{l+1}[j] = op_j(h_l[a_j], h_l[b_j])`` with ``op`` a copy, ``min(x, y) = x - relu(x - y)`` or
``max(x, y) = x + relu(y - x)``, and returns ``h_D[out]``. Every level is Linear+ReLU with a linear skip:
``h_{l+1} = h_l K - relu(h_l D) E`` with 0/±1 matrices, which is how it is exported.

The schedule (:func:`schedule`) builds each output's inner reductions (the minimum over a group of a
max–min form) level by level, pairing within every group the pairs that most groups share first (one
node computes a pair for every group holding it), so a group of ``m`` terms takes ``⌈log2 m⌉`` levels;
the outer reduction merges the two earliest available values first, which gives the smallest depth a
binary tree over values available at those times can have.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from .._checks import frozen
from ..exceptions import ShapeError
from ._lattice import Lattice

__all__ = ["Program", "schedule", "COPY", "MIN", "MAX", "OPS", "EVAL_BYTES"]

#: Operation codes of a level.
COPY, MIN, MAX = 0, 1, 2
#: Their names.
OPS = ("copy", "min", "max")
#: Bytes of the widest level per chunk of states in :meth:`Program.evaluate`: chunks of about 512 KiB stay in
#: the cache between levels; measured at batch 1e4, a 116-term network ran 1.5x faster in chunks of 512 states
#: than of 4096, a 17-term one 1.5x slower in chunks of 512 (per-level overhead), both best near this size.
EVAL_BYTES = 2**19


@dataclass(frozen=True, eq=False, kw_only=True)
class Program:
    """Affine terms followed by levels of pairwise max/min (see the module docstring).

    Attributes
    ----------
    gain, offset : ndarray, shapes (T, n_θ) and (T,)
        The affine terms.
    ops : tuple of ndarray of int8
        Per level ``l``, the operation of each value ``j`` of level ``l + 1`` (:data:`COPY`, :data:`MIN`,
        :data:`MAX`).
    a, b : tuple of ndarray of int
        Per level, the operands (indices into the previous level; ``b`` is unused by a copy).
    out : (n_out,) int
        The outputs, indices into the last level (into the terms when there are no levels).
    """

    gain: np.ndarray
    offset: np.ndarray
    ops: tuple
    a: tuple
    b: tuple
    out: np.ndarray

    def __post_init__(self):
        object.__setattr__(self, "gain", np.ascontiguousarray(self.gain, float))
        object.__setattr__(self, "offset", np.ascontiguousarray(self.offset, float))
        object.__setattr__(self, "ops", tuple(np.asarray(o, np.int8) for o in self.ops))
        object.__setattr__(self, "a", tuple(np.asarray(x, np.int64) for x in self.a))
        object.__setattr__(self, "b", tuple(np.asarray(x, np.int64) for x in self.b))
        object.__setattr__(self, "out", np.asarray(self.out, np.int64))

    # --- sizes ------------------------------------------------------------------------------------
    @property
    def n_theta(self) -> int:
        """Input dimension."""
        return self.gain.shape[1]

    @property
    def n_out(self) -> int:
        """Number of outputs."""
        return self.out.size

    @property
    def n_terms(self) -> int:
        """Number of affine terms."""
        return self.offset.size

    @property
    def depth(self) -> int:
        """ReLU layers in sequence: the levels (each holds at least one max or min)."""
        return len(self.ops)

    @cached_property
    def pairs(self) -> np.ndarray:
        """``(depth,)`` max/min operations (ReLU units) per level."""
        return np.array([int(np.count_nonzero(o)) for o in self.ops], np.int64)

    @property
    def width(self) -> int:
        """The widest layer: the most ReLU units of a level, or the terms where there are more."""
        return int(max(self.n_terms, int(self.pairs.max(initial=0))))

    @property
    def n_params(self) -> int:
        """Nonzero weights and biases: ``T (n_θ + 1)`` of the terms, three ±1 per max/min (two in
        ``D``, one in ``E``) and one per value carried (``K``), one per output of the final selection.
        """
        carried = sum(o.size for o in self.ops)
        return int(self.n_terms * (self.n_theta + 1) + 3 * self.pairs.sum() + carried + self.n_out)

    @property
    def flops(self) -> int:
        """Floating-point operations per state: ``2 T n_θ`` for the terms (a multiply and an add per weight),
        three per max/min (a subtraction, the ReLU, an addition); copies and selections are free.
        """
        return int(2 * self.n_terms * self.n_theta + 3 * self.pairs.sum())

    # --- evaluation -------------------------------------------------------------------------------
    def evaluate(self, theta) -> np.ndarray:
        """``(B, n_out)`` outputs at ``theta`` (B, n_θ), in numpy with gathers (no dense 0/±1 products).

        Parameters
        ----------
        theta : array_like, shape (B, n_θ) or (n_θ,)
            Inputs.

        Returns
        -------
        ndarray, shape (B, n_out)
        """
        theta = np.atleast_2d(np.asarray(theta, float))
        if theta.ndim != 2 or theta.shape[1] != self.n_theta:
            raise ShapeError(f"theta: expected shape (B, n_θ) = (B, {self.n_theta}), got {theta.shape}")
        out = np.empty((theta.shape[0], self.n_out))
        plan = self._plan
        # values as rows (width, chunk): every gather copies contiguous rows (about 25 % faster than columns)
        widest = max([self.n_terms] + [o.size for o in self.ops])
        chunk = int(np.clip(EVAL_BYTES // (8 * max(widest, 1)), 256, 8192))
        for s in range(0, theta.shape[0], chunk):
            h = self.gain @ theta[s:s + chunk].T + self.offset[:, None]
            for a, pa, pb, sign, pos in plan:
                g = h[a]
                if pos.size:
                    d = h[pa] - h[pb]
                    d *= sign
                    np.maximum(d, 0.0, out=d)
                    d *= sign
                    g[pos] -= d
                h = g
            out[s:s + chunk] = h[self.out].T
        return out

    @cached_property
    def _plan(self):
        """Per level: ``(a, a of pairs, b of pairs, sign of pairs, position of pairs)``; min: sign +1
        (``x - relu(x - y)``), max: sign -1 (``x + relu(y - x)``).
        """
        plan = []
        for op, a, b in zip(self.ops, self.a, self.b, strict=True):
            pos = np.flatnonzero(op != COPY)
            sign = np.where(op[pos] == MIN, 1.0, -1.0)[:, None]
            plan.append((a, a[pos], b[pos], sign, pos))
        return plan

    def dense_levels(self) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Per level ``(K (L_in, L_out), D (L_in, p), E (p, L_out))`` with ``h_next = h K - relu(h D) E``.

        Returns
        -------
        list of (ndarray, ndarray, ndarray)
            The 0/±1 matrices of each level.
        """
        levels = []
        width = self.n_terms
        for op, a, b in zip(self.ops, self.a, self.b, strict=True):
            L = op.size
            K = np.zeros((width, L))
            K[a, np.arange(L)] = 1.0
            pos = np.flatnonzero(op != COPY)
            sign = np.where(op[pos] == MIN, 1.0, -1.0)
            D = np.zeros((width, pos.size))
            D[a[pos], np.arange(pos.size)] += sign
            D[b[pos], np.arange(pos.size)] -= sign
            E = np.zeros((pos.size, L))
            E[np.arange(pos.size), pos] = sign
            levels.append((K, D, E))
            width = L
        return levels

    def selection(self) -> np.ndarray:
        """``(L_D, n_out)`` the 0/1 matrix selecting the outputs from the last level.

        Returns
        -------
        ndarray
        """
        width = self.ops[-1].size if self.ops else self.n_terms
        S = np.zeros((width, self.n_out))
        S[self.out, np.arange(self.n_out)] = 1.0
        return S


def schedule(lat: Lattice) -> Program:
    """The levels of a lattice's network (see the module docstring).

    Parameters
    ----------
    lat : Lattice
        The groups of every output.

    Returns
    -------
    Program
    """
    T = lat.n_terms
    # nodes: id -> (op, a, b, time); terms are nodes 0..T-1 at time 0
    nodes: list[tuple[int, int, int, int]] = [(COPY, k, k, 0) for k in range(T)]
    memo: dict[tuple[int, int, int], int] = {}

    def node(op: int, x: int, y: int) -> int:
        if x == y:
            return x
        key = (op, min(x, y), max(x, y))
        if key not in memo:
            memo[key] = len(nodes)
            nodes.append((op, key[1], key[2], max(nodes[x][3], nodes[y][3]) + 1))
        return memo[key]

    # inner reductions, shared across groups and outputs: (op, items) per group
    work: list[tuple[int, list[int]]] = []
    for o in lat.outputs:
        inner = MIN if o.orientation == "max-min" else MAX
        for g in o.groups:
            work.append((inner, sorted(int(k) for k in g)))
    while any(len(items) > 1 for _, items in work):
        count: dict[tuple[int, int, int], int] = {}
        for op, items in work:
            if len(items) > 1:
                for i in range(len(items)):
                    for j in range(i + 1, len(items)):
                        key = (op, items[i], items[j])
                        count[key] = count.get(key, 0) + 1
        shared = sorted((c, key) for key, c in count.items() if c > 1)[::-1]
        new_items: list[list[int]] = []
        for op, items in work:
            if len(items) <= 1:
                new_items.append(items)
                continue
            free = set(items)
            made = []
            for _, (op2, x, y) in shared:
                if op2 == op and x in free and y in free:
                    free -= {x, y}
                    made.append(node(op, x, y))
            rest = sorted(free)
            while len(rest) >= 2:
                made.append(node(op, rest.pop(0), rest.pop(0)))
            made.extend(rest)
            new_items.append(sorted(made))
        work = [(op, items) for (op, _), items in zip(work, new_items, strict=True)]
    group_nodes = iter(items[0] for _, items in work)
    outputs = []
    for o in lat.outputs:
        outer = MAX if o.orientation == "max-min" else MIN
        heap = [(nodes[v][3], v) for v in (next(group_nodes) for _ in o.groups)]
        heapq.heapify(heap)
        while len(heap) > 1:
            _, x = heapq.heappop(heap)
            _, y = heapq.heappop(heap)
            v = node(outer, x, y)
            heapq.heappush(heap, (nodes[v][3], v))
        outputs.append(heap[0][1])
    return _levels(lat, nodes, outputs)


def _levels(lat: Lattice, nodes, outputs: list[int]) -> Program:
    """Lay the node DAG out in levels: each value lives from its level to the level before its last use."""
    depth = max((nodes[v][3] for v in outputs), default=0)
    used = {v for v in outputs}
    stack = list(outputs)
    while stack:
        v = stack.pop()
        op, x, y, _ = nodes[v]
        if op != COPY:
            for u in (x, y):
                if u not in used:
                    used.add(u)
                    stack.append(u)
    last = {v: depth for v in outputs}
    for v in used:
        op, x, y, t = nodes[v]
        if op != COPY:
            for u in (x, y):
                last[u] = max(last.get(u, 0), t - 1)
    column: dict[int, int] = {k: k for k in range(lat.n_terms)}  # value -> column at the current level
    ops, As, Bs = [], [], []
    for level in range(1, depth + 1):
        live = sorted(v for v in used if nodes[v][3] <= level and last.get(v, -1) >= level)
        op_l = np.zeros(len(live), np.int8)
        a_l = np.zeros(len(live), np.int64)
        b_l = np.zeros(len(live), np.int64)
        new_column = {}
        for j, v in enumerate(live):
            op, x, y, t = nodes[v]
            if t == level:
                op_l[j], a_l[j], b_l[j] = op, column[x], column[y]
            else:
                a_l[j] = b_l[j] = column[v]
            new_column[v] = j
        ops.append(op_l)
        As.append(a_l)
        Bs.append(b_l)
        column = new_column
    out = np.array([column[v] for v in outputs], np.int64)
    return Program(gain=frozen(lat.gain), offset=frozen(lat.offset), ops=tuple(ops), a=tuple(As), b=tuple(Bs),
                   out=out)
