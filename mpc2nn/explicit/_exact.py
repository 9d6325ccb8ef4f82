"""Exact explicit networks: the MPC law of a complete partition as a small Linear+ReLU network, with its proof.

:func:`exact_network` builds the lattice (max–min) form of the partition's first-input law (or
input-sequence law) over its distinct pieces (:func:`~mpc2nn.regions.lattice_of`), lays it out in
levels of pairwise max/min (:func:`~mpc2nn.regions.schedule`) and wraps it as a
:class:`ExactNetwork`: one Linear layer of affine terms, then ``depth`` Linear+ReLU levels with a linear
skip (``min(x, y) = x - relu(x - y)``, ``max(x, y) = x + relu(y - x)``). :meth:`ExactNetwork.certify`
proves, region by region by LP, that the network as it stands equals every region's law.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

from ..exceptions import ProblemDefinitionError, ShapeError
from ..implicit import ImplicitNetwork, compile
from ..interfaces import ExplicitLaw
from ..regions import (
    LOCATE_TOL,
    MAX,
    MIN,
    Lattice,
    LatticeCertificate,
    Partition,
    Program,
    certify_program,
    covered_set,
    lattice_of,
    schedule,
)
from ._fast import FAST_MAX_BATCH, FastProgram, available

__all__ = ["ExactNetwork", "exact_network", "program_from_buffers"]


class ExactNetwork(torch.nn.Module, ExplicitLaw):
    """The law of a complete partition as a Linear+ReLU network (built by :func:`exact_network`).

    ``forward(θ)`` computes the affine terms ``h = θ Wt + w`` and then, level by level,
    ``h[j] = op_j(h[a_j], h[b_j])`` with ``op`` a copy, a min (``x - relu(x - y)``) or a max
    (``x + relu(y - x)``); it returns ``(B, n_u)`` for ``output="u0"``, ``(B, N·n_u)`` for ``"U"``. Evaluated
    with gathers; when traced (TorchScript, ONNX) each level is written as 0/±1 matrix products
    ``h K - relu(h D) E`` instead, the same numbers in MatMul/Relu/Sub operations only.

    Outside the partition's covered set ``Θ ∩ K`` (:meth:`contains`) the network is the same max–min
    of affine pieces, continued: continuous and finite, but no MPC law (the MPC problem may be
    infeasible there) and no bound claimed.

    Parameters
    ----------
    partition : Partition
        The complete partition whose law the network represents.
    lattice : Lattice
        Its lattice form (groups and the cells that witness the proof).
    program : Program
        The levels of the network.
    dtype : torch.dtype
        ``torch.float64`` (default) or ``torch.float32``.

    Attributes
    ----------
    partition, lattice : Partition, Lattice
        What the network was built from (:meth:`certify` needs both).
    output : str
        ``"u0"`` or ``"U"``.
    net : ImplicitNetwork
        The implicit network of the partition's QP (the MPC problem the law solves).
    qp : CondensedQP
        That QP.
    n_theta, n_U, n_u, n_out : int
        Input size, the sequence length ``N·n_u``, one input's size, and the outputs of ``forward``.
    method : str
        ``"exact lattice"``.
    """

    method = "exact lattice"
    exportable = True
    Wt: torch.Tensor
    w: torch.Tensor
    out: torch.Tensor

    def __init__(self, partition: Partition, lattice: Lattice, program: Program, *, dtype: torch.dtype = torch.float64):
        super().__init__()
        self.partition, self.lattice = partition, lattice
        self.output = lattice.output
        self.qp = partition.qp
        self._net: ImplicitNetwork | None = None
        self.n_theta, self.n_U, self.n_u = self.qp.n_theta, self.qp.n_U, self.qp.n_u
        self.n_out = program.n_out
        self._dtype = dtype
        self.register_buffer("Wt", torch.tensor(program.gain.T.copy(), dtype=dtype))
        self.register_buffer("w", torch.tensor(program.offset, dtype=dtype))
        self.n_levels = program.depth
        for level, (op, a, b) in enumerate(zip(program.ops, program.a, program.b, strict=True)):
            pos = np.flatnonzero(op != 0)
            self.register_buffer(f"a{level}", torch.tensor(a, dtype=torch.int64))
            self.register_buffer(f"pos{level}", torch.tensor(pos, dtype=torch.int64))
            self.register_buffer(f"pb{level}", torch.tensor(b[pos], dtype=torch.int64))
            self.register_buffer(f"sign{level}", torch.tensor(np.where(op[pos] == MIN, 1.0, -1.0), dtype=dtype))
        self.register_buffer("out", torch.tensor(program.out, dtype=torch.int64))
        self._cache: tuple | None = None

    # --- what the network is ----------------------------------------------------------------------
    @property
    def net(self) -> ImplicitNetwork:
        """The implicit network of the partition's QP (compiled on first use)."""
        if self._net is None:
            self._net = compile(self.qp)
        return self._net

    def _levels(self):
        return [(getattr(self, f"a{k}"), getattr(self, f"pos{k}"), getattr(self, f"pb{k}"), getattr(self, f"sign{k}"))
                for k in range(self.n_levels)]

    def program(self) -> Program:
        """The network as it stands (its buffers now), as a :class:`~mpc2nn.regions.Program` in float64.

        A level whose min/max operands are inconsistent (``pos``, ``sign`` not naming max/min operations
        of the values the level carries) gives a program whose outputs read nothing, which fails
        :meth:`certify`'s structure check.

        Returns
        -------
        Program
        """
        # the module has no submodules: its own buffers are all of them (``self.buffers()`` costs ~10 µs a call)
        key = tuple((id(t), t._version) for t in self._buffers.values() if t is not None)
        if self._cache is None or self._cache[0] != key:
            arrays = {k: v.detach().cpu().numpy() for k, v in self.state_dict().items()}
            self._cache = (key, program_from_buffers(arrays, self.n_levels))
        return self._cache[1]

    @classmethod
    def from_buffers(cls, partition: Partition, lattice: Lattice, buffers: dict, dtype: torch.dtype) -> ExactNetwork:
        """Rebuild a network from its saved buffers (``state_dict`` as numpy arrays), bit for bit.

        Parameters
        ----------
        partition : Partition
            The partition it was built from.
        lattice : Lattice
            Its lattice (the witness of the proof).
        buffers : dict of str to ndarray
            The buffers, by name.
        dtype : torch.dtype
            The dtype of the float buffers.

        Returns
        -------
        ExactNetwork
        """
        n_levels = sum(1 for k in buffers if k.startswith("a") and k[1:].isdigit())
        ex = cls(partition, lattice, program_from_buffers(buffers, n_levels), dtype=dtype)
        ex.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in buffers.items()})
        return ex

    @property
    def depth(self) -> int:  # type: ignore[override]
        """ReLU layers in sequence (levels of pairwise max/min)."""
        return self.n_levels

    @property
    def width(self) -> int:
        """The most ReLU units in one level, or the number of affine terms where larger."""
        return self.program().width

    @property
    def n_params(self) -> int:
        """Nonzero weights and biases (:attr:`~mpc2nn.regions.Program.n_params`)."""
        return self.program().n_params

    @property
    def flops(self) -> int:
        """Floating-point operations per state (:attr:`~mpc2nn.regions.Program.flops`)."""
        return self.program().flops

    def set_dtype(self, dtype: torch.dtype) -> None:
        """Declare the dtype the buffers were cast to (``module.to(dtype)`` casts them; this records it).

        Parameters
        ----------
        dtype : torch.dtype
            The new dtype of the float buffers; inputs are converted to it from now on.
        """
        self._dtype = dtype

    # --- evaluation ---------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The network's outputs ``(B, n_out)``.

        Parameters
        ----------
        x : torch.Tensor, shape (B, n_θ)
            Network inputs (states for a plain problem), in the buffers' dtype.

        Returns
        -------
        torch.Tensor, shape (B, n_out)
        """
        h = x @ self.Wt + self.w
        if torch.jit.is_tracing() or torch.onnx.is_in_onnx_export():
            return self._forward_dense(h)
        for a, pos, pb, sign in self._levels():
            g = h[:, a]
            if pos.numel():
                d = torch.relu((h[:, a[pos]] - h[:, pb]) * sign) * sign
                g = g.index_add(1, pos, -d)
            h = g
        return h[:, self.out]

    def _forward_dense(self, h: torch.Tensor) -> torch.Tensor:
        """The levels as 0/±1 matrix products (constants of the traced graph: MatMul, Relu, Sub only)."""
        with warnings.catch_warnings():
            # reading the index buffers into constant matrices is what the trace should record
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            prog = self.program()
            for K, D, E in prog.dense_levels():
                Kt, Dt, Et = (torch.tensor(m, dtype=h.dtype) for m in (K, D, E))
                h = h @ Kt - torch.relu(h @ Dt) @ Et
            return h @ torch.tensor(prog.selection(), dtype=h.dtype)

    def control(self, x: torch.Tensor) -> torch.Tensor:
        """First inputs ``(B, n_u)``, the control applied.

        Parameters
        ----------
        x : torch.Tensor, shape (B, n_θ)
            Network inputs, in the buffers' dtype.

        Returns
        -------
        torch.Tensor, shape (B, n_u)
        """
        return self.forward(x)[:, :self.n_u]

    def evaluate(self, X) -> np.ndarray:
        """Numpy float64 outputs ``(B, n_out)`` (gathers in numpy, the fastest path for small networks; batches
        of at most :data:`~mpc2nn.explicit.FAST_MAX_BATCH` states in a compiled kernel where numba is installed).

        Parameters
        ----------
        X : array_like or torch.Tensor, shape (B, n_θ) or (n_θ,)
            Network inputs (states for a plain problem).

        Returns
        -------
        ndarray, shape (B, n_out)
            ``n_out = n_u`` for ``output="u0"``, ``N·n_u`` for ``"U"``.
        """
        if type(X) is np.ndarray and X.dtype == np.float64 and X.shape[-1:] == (self.n_theta,) and X.ndim <= 2:
            X = X if X.ndim == 2 else X[None, :]
        else:
            if isinstance(X, torch.Tensor):
                X = X.detach().cpu().numpy()
            X = self.qp.check_parameters(X)
        prog = self.program()
        if self._dtype == torch.float64 and np.all(prog.out >= 0):
            if X.shape[0] <= FAST_MAX_BATCH and available():
                return self._fast_program(prog).evaluate(X)
            return prog.evaluate(X)
        with torch.no_grad():
            return self.forward(torch.as_tensor(X, dtype=self._dtype)).double().numpy()

    def _fast_program(self, prog: Program) -> FastProgram:
        """The flattened levels of ``prog`` for the compiled kernel (rebuilt when the program changes)."""
        cache = self.__dict__.get("_fast_cache")
        if cache is None or cache[0] is not prog:
            cache = (prog, FastProgram(prog))
            self.__dict__["_fast_cache"] = cache
        return cache[1]

    def contains(self, theta, tol: float | None = None) -> np.ndarray:
        """``(B,)`` mask of the inputs inside the partition's covered set ``Θ ∩ K`` (the domain intersected
        with the feasible set), where the network is proven to be the MPC law.

        Parameters
        ----------
        theta : array_like, shape (B, n_θ) or (n_θ,)
            Network inputs.
        tol : float, optional
            Absolute tolerance on every row (default :data:`~mpc2nn.regions.LOCATE_TOL` times the domain's
            scale). NaN inputs are outside.

        Returns
        -------
        ndarray of bool, shape (B,)
        """
        theta = self.qp.check_parameters(theta, "theta")
        if tol is None:
            tol = LOCATE_TOL * self.partition.scale
        poly = self._covered
        with np.errstate(invalid="ignore"):
            inside = np.all(theta @ poly.C.T <= poly.d + tol, axis=1)
        return inside & np.all(np.isfinite(theta), axis=1)

    @property
    def _covered(self):
        if not hasattr(self, "_covered_set"):
            self._covered_set = covered_set(self.partition)
        return self._covered_set

    # --- the proof ----------------------------------------------------------------------------------
    def certify(self) -> LatticeCertificate:
        """Prove, region by region by LP, that the network as it stands equals the law of every region.

        The buffers are read now (a network changed after it was built is certified as it is); see
        :func:`~mpc2nn.regions.certify_program` for what is checked and at which tolerance.

        Returns
        -------
        LatticeCertificate
            ``proven`` is True only when every region of the (complete) partition is proven.
        """
        return certify_program(self.partition, self.program(), self.lattice)

    def extra_repr(self) -> str:
        return (f"output={self.output!r}, depth={self.depth}, terms={self.Wt.shape[1]}, regions="
                f"{self.partition.n_regions}, n_theta={self.n_theta}")


def program_from_buffers(arrays: dict, n_levels: int) -> Program:
    """The :class:`~mpc2nn.regions.Program` that buffers ``Wt, w, a{l}, pos{l}, pb{l}, sign{l}, out`` evaluate."""
    ops, As, Bs = [], [], []
    valid = True
    for k in range(n_levels):
        a = np.asarray(arrays[f"a{k}"], np.int64)
        pos = np.asarray(arrays[f"pos{k}"], np.int64)
        pb = np.asarray(arrays[f"pb{k}"], np.int64)
        sign = np.asarray(arrays[f"sign{k}"], float)
        op = np.zeros(a.size, np.int8)
        b = a.copy()
        if pos.size != pb.size or pos.size != sign.size or np.unique(pos).size != pos.size or (
                pos.size and (pos.min() < 0 or pos.max() >= a.size)) or not np.all(np.abs(sign) == 1.0):
            valid = False
        else:
            op[pos] = np.where(sign > 0, MIN, MAX)
            b[pos] = pb
        ops.append(op)
        As.append(a)
        Bs.append(b)
    out = np.asarray(arrays["out"], np.int64)
    return Program(gain=np.asarray(arrays["Wt"], float).T.copy(), offset=np.asarray(arrays["w"], float).copy(),
                   ops=tuple(ops), a=tuple(As), b=tuple(Bs), out=out if valid else np.full(out.size, -1))


def exact_network(partition: Partition, output: str = "u0", *, orientation: str = "best",
                  dtype: torch.dtype = torch.float64) -> ExactNetwork:
    """The law of a complete partition as an exact Linear+ReLU network (a lattice max–min of its pieces).

    Parameters
    ----------
    partition : Partition
        From :func:`mpc2nn.critical_regions`; it must be complete (status ``"proven"``): the lattice
        needs every piece of the law, and the proof needs regions that cover the domain.
    output : {"u0", "U"}
        The first input (``(B, n_u)``, what a controller applies) or the whole input sequence
        (``(B, N·n_u)``, much larger: later inputs have many more pieces).
    orientation : {"best", "max-min", "min-max"}
        The lattice form of every output; ``"best"`` takes per output the one with fewer operations.
    dtype : torch.dtype
        ``torch.float64`` (default) or ``torch.float32`` for the weights. The certificate judges the
        weights as stored: float32 weights are off by about 1e-7 of the output's scale, so a float32
        network is refuted at :data:`~mpc2nn.regions.CERTIFY_TOL` (measured on the double integrator:
        bound 8e-8); certify the float64 network and export it in float32 if that is what runs.

    Returns
    -------
    ExactNetwork
        Call :meth:`ExactNetwork.certify` for the proof.

    Raises
    ------
    ProblemDefinitionError
        The partition is incomplete (the message gives its counts and what to try), or an argument is
        invalid.

    Examples
    --------
    >>> import mpc2nn
    >>> part = mpc2nn.critical_regions(mpc2nn.systems.double_integrator())
    >>> net = mpc2nn.exact_network(part)
    >>> net.depth, net.certify().proven
    (3, True)
    """
    if not isinstance(partition, Partition):
        raise ProblemDefinitionError(f"partition: expected a Partition from mpc2nn.critical_regions, got "
                                     f"{type(partition).__name__}")
    if not partition.complete:
        raise ProblemDefinitionError(
            f"exact_network: the partition is incomplete ({partition.n_regions} regions, {partition.n_open} facets "
            f"open; {partition.reason}); an exact network needs a complete partition")
    if dtype not in (torch.float64, torch.float32):
        raise ProblemDefinitionError(f"dtype: expected torch.float64 or torch.float32, got {dtype}")
    if not partition.regions:
        raise ShapeError("partition: it has no regions")
    lat = lattice_of(partition, output, orientation=orientation)
    return ExactNetwork(partition, lat, schedule(lat), dtype=dtype)
