"""A lean forward for small batches of explicit networks: fixed float64 arrays, a compiled kernel or numpy.

A torch forward of an unrolled network costs about 1.2 µs of dispatch per operation, 13 operations per
ADMM layer, whatever the network's size: 180 µs for 10 ADMM layers on one state of the double integrator
(benchmarks/latency.py, docs/benchmarks.rst). For a few states the arithmetic is a fraction of that. Here
the fixed matrices of a network are extracted once (:class:`FastLayers`, contiguous float64 numpy arrays)
and the layers run

* in a compiled kernel (`numba <https://numba.pydata.org>`_, the ``fast`` extra), one state after the other,
  matrix-vector products written as loops, no call per operation, for batches of at most
  :data:`JIT_MAX_BATCH` states;
* otherwise in numpy: the torch forward's formulas on numpy arrays (a numpy call costs less than a torch
  one), also for every batch where numba is absent or disabled (``MPC2NN_NO_NUMBA=1`` in the environment).

Batches above :data:`FAST_MAX_BATCH` states go through the torch forward. Both lean paths compute the
torch forward's formulas in float64 (the summation order of the products may differ: the outputs agree
to rounding, not bit for bit). Only float64 networks take this path; float32 ones run through torch, so
that they keep float32 semantics. ``relu`` keeps NaN as torch does (``NaN`` stays NaN).

The same holds for exact (lattice) networks (:class:`FastProgram`): the levels' gathers and max/min in a
compiled kernel, or :meth:`mpc2nn.regions.Program.evaluate` without numba.

The kernels are compiled on their first call (``cache=True``: measured 5 s for the ADMM kernel and 2 s
for a dual one, once after installing or changing this module, on the loaded 2-core development machine;
then loaded from numba's cache in each new process).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._jit import numba  # None without the fast extra (tests set it to None for the numpy path)
from ..exceptions import ProblemDefinitionError
from ..regions import COPY, MIN

__all__ = ["available", "FastLayers", "FastProgram", "FAST_MAX_BATCH", "JIT_MAX_BATCH", "KINDS"]

#: Batches of at most this many states take the lean path in ``evaluate``/``run``; larger ones go through the
#: torch forward. Measured on three public problems while building this path (ADMM, depth 30, one thread, the
#: 2-core development machine, 2026-12-01): the numpy path costs 0.7-0.8x the torch forward at 64 states
#: (double integrator 973 vs 1378 µs, quadcopter 1622 vs 1775, oscillating masses 6545 vs 7468) and about the
#: same at 128.
FAST_MAX_BATCH = 64
#: Batches of at most this many states run by the compiled kernel (one state after the other); larger ones
#: by numpy (matrix-matrix products over the batch). Same measurement: at 4 states the kernel took 102 / 225 /
#: 406 µs and numpy 236 / 290 / 358 µs; at 16 states the kernel was 1.0-1.7x numpy.
JIT_MAX_BATCH = 4
#: The layer forms the lean path knows (the ``kind`` of :class:`FastLayers`).
KINDS = ("admm", "paper", "paper-matrix", "momentum")


def available() -> bool:
    """Whether the compiled kernels can run (numba importable and not disabled by ``MPC2NN_NO_NUMBA``).

    Returns
    -------
    bool

    Examples
    --------
    >>> from mpc2nn.explicit import kernels_available
    >>> isinstance(kernels_available(), bool)
    True
    """
    return numba is not None


class FastLayers:
    """The fixed matrices of one unrolled network as contiguous float64 arrays, and its lean forward.

    Parameters
    ----------
    kind : str
        One of :data:`KINDS`: ``"admm"`` (state ``(U, t)``), ``"paper"`` (state ``(w,)``, scalar feedback
        ``k``), ``"paper-matrix"`` (state ``(w,)``, matrix feedback), ``"momentum"`` (state ``(y, λ_prev)``).
    arrays : dict of str to ndarray
        The matrices the layers use, in the orientation of the torch buffers (``x @ A``).
    scalars : dict of str to float
        ``relax`` (ADMM) or ``k`` (paper).
    Tt : ndarray or None, shape (n_z, N·n_u)
        The output map (``U = z @ Tt``), ``None`` where ``z`` is ``U``.
    """

    def __init__(self, kind: str, arrays: dict, scalars: dict, Tt: np.ndarray | None):
        if kind not in KINDS:
            raise ProblemDefinitionError(f"kind: expected one of {KINDS}, got {kind!r}")
        self.kind = kind
        self.a = {k: np.ascontiguousarray(v, dtype=np.float64) for k, v in arrays.items()}
        self.scalars = {k: float(v) for k, v in scalars.items()}
        self.Tt = None if Tt is None else np.ascontiguousarray(Tt, dtype=np.float64)
        self._jit: tuple | None = None

    def state_sizes(self) -> tuple[int, ...]:
        """Widths of the layer state's parts."""
        a = self.a
        if self.kind == "admm":
            return (a["SKt"].shape[0], a["aGt"].shape[1])
        if self.kind == "momentum":
            return (a["b"].size, a["b"].size)
        return (a["b"].size,)

    def initial(self, B: int, state0) -> list[np.ndarray] | None:
        """The layer state to start from: zeros, or a copy of ``state0`` as float64 arrays ``(B, ·)``.

        Parameters
        ----------
        B : int
            Batch size.
        state0 : sequence of ndarray or torch.Tensor, or None
            The state to copy (``None``: zeros).

        Returns
        -------
        list of ndarray or None
            ``None`` where ``state0`` is not of the shapes of :meth:`state_sizes` (the caller then runs the
            torch forward).
        """
        sizes = self.state_sizes()
        if state0 is None:
            return [np.zeros((B, s)) for s in sizes]
        if len(state0) != len(sizes):
            return None
        out = [np.array(_numpy(s), dtype=np.float64, order="C", copy=True) for s in state0]
        if any(o.shape != (B, s) for o, s in zip(out, sizes, strict=True)):
            return None
        return out

    def run(self, X: np.ndarray, depth: int, state0=None, *, compiled: bool | None = None
            ) -> tuple[np.ndarray, list[np.ndarray]] | None:
        """``depth`` layers from ``state0`` (default zero), then the output.

        Parameters
        ----------
        X : ndarray, shape (B, n_θ)
            Float64 network inputs.
        depth : int
            Layers to run.
        state0 : sequence of ndarray or torch.Tensor, optional
            The layer state to start from (shapes ``(B, ·)`` as :meth:`state_sizes`).
        compiled : bool, optional
            Use the compiled kernel (where numba is available) or the numpy path; default: the kernel for
            batches of at most :data:`JIT_MAX_BATCH` states.

        Returns
        -------
        U : ndarray, shape (B, N·n_u)
        state : list of ndarray
            The final layer state.
        (or ``None`` where ``state0`` is not of the shapes of :meth:`state_sizes`)
        """
        X = np.ascontiguousarray(X, dtype=np.float64)
        state = self.initial(X.shape[0], state0)
        if state is None:
            return None
        if compiled is None:
            compiled = X.shape[0] <= JIT_MAX_BATCH
        if compiled and numba is not None:
            if self._jit is None:
                self._jit = self._args()
            z = _KERNELS[self.kind]()(X, *state, *self._jit, int(depth))
        else:
            z = self._numpy(X, state, int(depth))
        return (z if self.Tt is None else z @ self.Tt), state

    def _args(self) -> tuple:
        a, s = self.a, self.scalars
        if self.kind == "admm":
            # the kernel reads ρ G Kᵀ by rows of length m (a dot product per entry of U: long inner loops)
            return (a["FKt"], a["Et"], a["w"], a["SKt"], np.ascontiguousarray(a["RGKt"].T), a["aGt"], s["relax"])
        if self.kind == "paper":
            return (a["Yt"], a["b"], a["Dt"], s["k"], a["WfT"], a["YfT"])
        if self.kind == "paper-matrix":
            return (a["Yt"], a["b"], a["Dt"], a["Kt"], a["IKt"], a["WfT"], a["YfT"])
        return (a["Yt"], a["b"], a["Wt1"], a["Wt2"], a["WfT"], a["YfT"])

    def _numpy(self, X: np.ndarray, state: list[np.ndarray], depth: int) -> np.ndarray:
        """The torch forward's formulas on numpy arrays; updates ``state`` in place, returns ``z``."""
        a, kind = self.a, self.kind
        if kind == "admm":
            fk, h = X @ a["FKt"], X @ a["Et"] + a["w"]
            U, t = state
            relax = self.scalars["relax"]
            for _ in range(depth):
                r = np.maximum(t, 0.0)
                z = h + t - r
                U = U @ a["SKt"] + (z - r) @ a["RGKt"] + fk
                t = U @ a["aGt"] + (1.0 - relax) * z + r - h
            state[0][...], state[1][...] = U, t
            return state[0].copy()
        zeta = X @ a["Yt"] + a["b"]
        if kind == "momentum":
            y, lam_prev = state
            for _ in range(depth):
                lam = np.maximum(y, 0.0)
                y, lam_prev = lam @ a["Wt1"] + lam_prev @ a["Wt2"] + zeta, lam
            state[0][...], state[1][...] = y, lam_prev
        else:
            (w,) = state
            for _ in range(depth):
                t = np.maximum(w, 0.0) @ a["Dt"] + zeta
                if kind == "paper-matrix":
                    w = w @ a["Kt"] + t @ a["IKt"]
                else:
                    k = self.scalars["k"]
                    w = t if k == 0.0 else t + k * (w - t)
            state[0][...] = w
        return np.maximum(state[0], 0.0) @ a["WfT"] + X @ a["YfT"]


def _numpy(s):
    """A torch tensor or array as a numpy array (no copy where it can be avoided)."""
    if type(s) is np.ndarray:
        return s
    if hasattr(s, "detach"):
        try:
            return s.numpy()  # a CPU tensor without gradient: shares its memory
        except (RuntimeError, TypeError):
            return s.detach().cpu().numpy()
    return np.asarray(s)


class FastProgram:
    """The levels of an exact (lattice) network flattened for the compiled kernel.

    Parameters
    ----------
    program : mpc2nn.regions.Program
        The network's program (float64 gain and offset, level gathers, min/max pairs, output indices).
    """

    def __init__(self, program):
        self.program = program
        self.gain = np.ascontiguousarray(program.gain, dtype=np.float64)
        self.offset = np.ascontiguousarray(program.offset, dtype=np.float64)
        a_all, a_off, pa, pb, sg, pos, p_off = [], [0], [], [], [], [], [0]
        for op, a, b in zip(program.ops, program.a, program.b, strict=True):
            a, b = np.asarray(a, np.int64), np.asarray(b, np.int64)
            pos_ = np.flatnonzero(np.asarray(op) != COPY)
            a_all.append(a)
            a_off.append(a_off[-1] + a.size)
            pa.append(a[pos_])
            pb.append(b[pos_])
            sg.append(np.where(np.asarray(op)[pos_] == MIN, 1.0, -1.0))  # min: x - relu(x - y); max: x + relu(y - x)
            pos.append(pos_)
            p_off.append(p_off[-1] + pos_.size)

        def cat(parts, dtype):
            return np.ascontiguousarray(np.concatenate(parts) if parts else np.zeros(0), dtype=dtype)

        self.a_all, self.a_off = cat(a_all, np.int64), np.asarray(a_off, np.int64)
        self.pa, self.pb, self.pos = cat(pa, np.int64), cat(pb, np.int64), cat(pos, np.int64)
        self.sign, self.p_off = cat(sg, np.float64), np.asarray(p_off, np.int64)
        self.out = np.ascontiguousarray(program.out, dtype=np.int64)
        self.width = int(max([self.offset.size] + [np.size(a) for a in program.a]))

    def evaluate(self, X: np.ndarray, *, compiled: bool | None = None) -> np.ndarray:
        """``(B, n_out)`` outputs at float64 inputs ``X`` (B, n_θ).

        Parameters
        ----------
        X : ndarray, shape (B, n_θ)
            Inputs.
        compiled : bool, optional
            Use the compiled kernel (default: where numba is available) or ``Program.evaluate``.

        Returns
        -------
        ndarray, shape (B, n_out)
        """
        use_jit = available() if compiled is None else bool(compiled and available())
        if not use_jit:
            return self.program.evaluate(X)
        X = np.ascontiguousarray(X, dtype=np.float64)
        return _KERNELS["lattice"]()(X, self.gain, self.offset, self.a_all, self.a_off, self.pa, self.pb, self.sign,
                                     self.pos, self.p_off, self.out, self.width)


# --- compiled kernels (built on first use; numba's cache keeps them across processes) -------------------------
_COMPILED: dict[str, Any] = {}


def _kernel(name: str, build):
    def get():
        if name not in _COMPILED:
            _COMPILED[name] = build()
        return _COMPILED[name]
    return get


def _build_admm():  # pragma: no cover - compiled code is not traced by coverage
    # reassociation lets the dot products over the m rows run in vector registers (1.1-1.2x measured on the
    # oscillating masses and the double integrator); it changes the order of a sum only, never NaN handling
    njit = numba.njit(cache=True, fastmath={"contract", "reassoc"}, boundscheck=False)

    @njit
    def admm(X, U, T, FKt, Et, w, SKt, RGK, aGt, relax, depth):
        B, n_th = X.shape
        n_z, m = U.shape[1], T.shape[1]
        fk, h, r, z, d = np.empty(n_z), np.empty(m), np.empty(m), np.empty(m), np.empty(m)
        Un = np.empty(n_z)
        out = np.empty((B, n_z))
        for s in range(B):
            x, u, t = X[s], U[s], T[s]
            fk[:] = 0.0
            h[:] = w
            for i in range(n_th):
                xi = x[i]
                for j in range(n_z):
                    fk[j] += xi * FKt[i, j]
                for j in range(m):
                    h[j] += xi * Et[i, j]
            for _ in range(depth):
                for j in range(m):
                    tj = t[j]
                    rj = 0.0 if tj <= 0.0 else tj  # relu, NaN kept
                    r[j] = rj
                    zj = h[j] + tj - rj
                    z[j] = zj
                    d[j] = zj - rj
                Un[:] = fk
                for i in range(n_z):
                    ui = u[i]
                    for j in range(n_z):
                        Un[j] += ui * SKt[i, j]
                for j in range(n_z):
                    acc = 0.0
                    for i in range(m):
                        acc += RGK[j, i] * d[i]
                    Un[j] += acc
                for j in range(m):
                    t[j] = (1.0 - relax) * z[j] + r[j] - h[j]
                for i in range(n_z):
                    ui = Un[i]
                    u[i] = ui
                    for j in range(m):
                        t[j] += ui * aGt[i, j]
            out[s] = u
        return out

    return admm


def _build_dual():  # pragma: no cover - compiled code is not traced by coverage
    njit = numba.njit(cache=True, fastmath={"contract"}, boundscheck=False)

    @njit
    def decision(x, w, WfT, YfT, out):
        out[:] = 0.0
        for i in range(w.size):
            wi = w[i]
            if wi > 0.0 or wi != wi:  # relu keeps NaN
                for j in range(out.size):
                    out[j] += wi * WfT[i, j]
        for i in range(x.size):
            xi = x[i]
            for j in range(out.size):
                out[j] += xi * YfT[i, j]

    @njit
    def context(x, Yt, b, zeta):
        zeta[:] = b
        for i in range(x.size):
            xi = x[i]
            for j in range(zeta.size):
                zeta[j] += xi * Yt[i, j]

    @njit
    def relu_times(v, A, out):
        """Add ``relu(v) @ A`` to ``out`` (NaN kept)."""
        for i in range(v.size):
            vi = v[i]
            if vi > 0.0 or vi != vi:
                for j in range(out.size):
                    out[j] += vi * A[i, j]

    @njit
    def times(v, A, out):
        """Add ``v @ A`` to ``out`` (rows of zero entries skipped: relu outputs are sparse)."""
        for i in range(v.size):
            vi = v[i]
            if vi != 0.0:
                for j in range(out.size):
                    out[j] += vi * A[i, j]

    @njit
    def paper(X, W, Yt, b, Dt, k, WfT, YfT, depth):
        B, m = W.shape
        zeta, t = np.empty(m), np.empty(m)
        out = np.empty((B, WfT.shape[1]))
        for s in range(B):
            x, w = X[s], W[s]
            context(x, Yt, b, zeta)
            for _ in range(depth):
                t[:] = zeta
                relu_times(w, Dt, t)
                if k == 0.0:
                    w[:] = t
                else:
                    for j in range(m):
                        w[j] = t[j] + k * (w[j] - t[j])
            decision(x, w, WfT, YfT, out[s])
        return out

    @njit
    def paper_matrix(X, W, Yt, b, Dt, Kt, IKt, WfT, YfT, depth):
        B, m = W.shape
        zeta, t, wn = np.empty(m), np.empty(m), np.empty(m)
        out = np.empty((B, WfT.shape[1]))
        for s in range(B):
            x, w = X[s], W[s]
            context(x, Yt, b, zeta)
            for _ in range(depth):
                t[:] = zeta
                relu_times(w, Dt, t)
                wn[:] = 0.0
                times(w, Kt, wn)
                times(t, IKt, wn)
                w[:] = wn
            decision(x, w, WfT, YfT, out[s])
        return out

    @njit
    def momentum(X, Y, L, Yt, b, Wt1, Wt2, WfT, YfT, depth):
        B, m = Y.shape
        zeta, yn = np.empty(m), np.empty(m)
        out = np.empty((B, WfT.shape[1]))
        for s in range(B):
            x, y, lam = X[s], Y[s], L[s]
            context(x, Yt, b, zeta)
            for _ in range(depth):
                yn[:] = zeta
                relu_times(y, Wt1, yn)
                times(lam, Wt2, yn)
                for j in range(m):
                    yj = y[j]
                    lam[j] = 0.0 if yj <= 0.0 else yj
                y[:] = yn
            decision(x, y, WfT, YfT, out[s])
        return out

    return dict(paper=paper, paper_matrix=paper_matrix, momentum=momentum)


def _build_lattice():  # pragma: no cover - compiled code is not traced by coverage
    njit = numba.njit(cache=True, fastmath={"contract"}, boundscheck=False)

    @njit
    def lattice(X, gain, offset, a_all, a_off, pa, pb, sign, pos, p_off, out_idx, width):
        B, n_th = X.shape
        n_terms = offset.size
        h, g = np.empty(width), np.empty(width)
        out = np.empty((B, out_idx.size))
        for s in range(B):
            x = X[s]
            for j in range(n_terms):
                v = offset[j]
                for i in range(n_th):
                    v += gain[j, i] * x[i]
                h[j] = v
            for lev in range(a_off.size - 1):
                for k in range(a_off[lev], a_off[lev + 1]):
                    g[k - a_off[lev]] = h[a_all[k]]
                for k in range(p_off[lev], p_off[lev + 1]):
                    sk = sign[k]
                    d = (h[pa[k]] - h[pb[k]]) * sk
                    d = 0.0 if d <= 0.0 else d  # relu, NaN kept
                    g[pos[k]] -= d * sk
                h, g = g, h
            for j in range(out_idx.size):
                out[s, j] = h[out_idx[j]]
        return out

    return lattice


_admm_kernel = _kernel("admm", _build_admm)
_dual_kernels = _kernel("dual", _build_dual)
_lattice_kernel = _kernel("lattice", _build_lattice)
_KERNELS = {
    "admm": _admm_kernel,
    "paper": lambda: _dual_kernels()["paper"],
    "paper-matrix": lambda: _dual_kernels()["paper_matrix"],
    "momentum": lambda: _dual_kernels()["momentum"],
    "lattice": _lattice_kernel,
}
