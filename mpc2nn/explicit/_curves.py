"""Error against depth: running an explicit network layer by layer on states with known exact outputs.

The tuning and the depth choice of :func:`mpc2nn.unravel` only ever need the largest error over a batch after
each layer. :class:`CurveRun` keeps the layer state between calls (so a run can be continued), drops states
that have converged for good (they no longer cost a matrix product) and notices when the curve stalls at
the floating-point rounding level of the network's dtype.
"""

from __future__ import annotations

import math

import numpy as np
import torch

__all__ = ["CurveRun", "error_curve", "first_depth", "rounding_level", "RETIRE_FACTOR", "RETIRE_WINDOW",
           "STALL_WINDOW", "STALL_GAIN", "STALL_UNITS", "RESOLUTION_UNITS"]

#: A state is retired from a run once its error has stayed below ``RETIRE_FACTOR · tol`` for
#: :data:`RETIRE_WINDOW` layers: deep in the linear-convergence regime, it does not climb back above ``tol``
#: (the held-out check runs the full network and would see it).
RETIRE_FACTOR = 1e-3
#: Layers a state must stay below ``RETIRE_FACTOR · tol`` before it is retired (and at least a fifth of the depth).
RETIRE_WINDOW = 50
#: A curve stalls when its best error improved by less than :data:`STALL_GAIN` over the last ``max(STALL_WINDOW,
#: depth/2)`` layers while it lies within the rounding level (a linear rate slower than 2 per 200 layers is
#: slower than any unroll of the benchmark problems outside rounding).
STALL_WINDOW = 200
#: Smallest improvement over a stall window that counts as progress.
STALL_GAIN = 2.0
#: The rounding level of a curve: this many units of the dtype's machine epsilon times ``max(1, max|U*|)``
#: (iterates of an ill-conditioned unroll carry rounding errors amplified by its condition number; 1e4 is
#: above the floors measured on the benchmark problems in float64 and float32).
STALL_UNITS = 1e4
#: Layers between two progress reports of a long run.
PROGRESS_EVERY = 500
#: A tolerance below this many rounding units of ``max(1, max|U*|)`` cannot be resolved in the dtype at all.
RESOLUTION_UNITS = 4.0


def rounding_level(dtype: torch.dtype, U: np.ndarray, units: float = STALL_UNITS) -> float:
    """``units · eps(dtype) · max(1, max|U*|)``: below it an error curve may stall on rounding."""
    scale = max(1.0, float(np.abs(U).max(initial=0.0)))
    return units * float(torch.finfo(dtype).eps) * scale


def first_depth(err_max: np.ndarray, tol: float) -> int | None:
    """Smallest depth ``J`` with ``err_max[j] <= tol`` for all ``j >= J - 1`` (layers counted from 1).

    Parameters
    ----------
    err_max : ndarray, shape (J,)
        Largest error after each layer (an :func:`error_curve`).
    tol : float
        The tolerance.

    Returns
    -------
    int or None
        ``None`` when the last entry is still above ``tol``.

    Examples
    --------
    >>> import numpy as np
    >>> from mpc2nn.explicit import first_depth
    >>> first_depth(np.array([1.0, 1e-3, 1e-2, 1e-5, 1e-7]), 1e-4)    # from layer 4 on
    4
    """
    bad = np.flatnonzero(~(err_max <= tol))
    if bad.size == 0:
        return 1
    if bad[-1] == err_max.size - 1:
        return None
    return int(bad[-1]) + 2


class CurveRun:
    """One explicit network run on a batch of states, advanced on demand.

    Parameters
    ----------
    model : ExplicitNetwork
        The network (its own depth is ignored).
    X : array_like, shape (B, n_θ)
        Network inputs.
    U : array_like, shape (B, N·n_u)
        Their exact outputs.
    tol : float, optional
        Retire states whose error stays below ``RETIRE_FACTOR · tol`` (none retired without it).

    Attributes
    ----------
    curve : list of float
        The largest error over the (unretired) states after each layer.
    last_bad : ndarray, shape (B,)
        The last layer after which each state's error exceeded ``tol`` (0 if never).
    stalled : bool
        The curve stalled at the rounding level (see :data:`STALL_UNITS`).
    """

    def __init__(self, model, X, U, tol: float | None = None):
        self.model, self.tol = model, tol
        x = model._states(X)
        self.B = x.shape[0]
        self.ref = torch.as_tensor(np.asarray(U, float), dtype=model._dtype)
        self.x = x
        with torch.no_grad():
            self.ctx = model.context(x)
            self.state = model.init_state(x)
        self.alive = np.arange(self.B)
        self.below = np.zeros(self.B, dtype=np.int64)
        self.last_bad = np.zeros(self.B, dtype=np.int64)
        self.last_err = np.full(self.B, np.inf)
        self.curve: list[float] = []
        self.stalled = False
        self.floor = rounding_level(model._dtype, U)
        self._best: list[float] = []

    @property
    def depth(self) -> int:
        return len(self.curve)

    def advance(self, layers: int, *, stop_below: float | None = None, progress=None) -> None:
        """Run ``layers`` more layers (fewer when every state is retired, the curve drops below
        ``stop_below`` or it stalls).

        Parameters
        ----------
        layers : int
            Layers to run at most.
        stop_below : float, optional
            Stop once the curve is below this error.
        progress : callable, optional
            ``progress(depth)``, called every :data:`PROGRESS_EVERY` layers.
        """
        m = self.model
        tol = self.tol
        with torch.no_grad():
            for _ in range(int(layers)):
                if self.alive.size == 0:
                    self.curve.append(0.0 if not self.curve else min(self.curve[-1], RETIRE_FACTOR * (tol or 0.0)))
                    self._best.append(self.curve[-1])
                    if stop_below is not None:
                        return
                    continue
                self.state = m.layer(self.state, self.ctx)
                e = (m.output(self.state, self.x) - self.ref).abs().amax(dim=1)
                e_np = e.double().numpy()
                e_np = np.where(np.isnan(e_np), np.inf, e_np)
                worst = float(e_np.max())
                self.curve.append(worst)
                self._best.append(min(worst, self._best[-1]) if self._best else worst)
                j = len(self.curve)
                self.last_err[self.alive] = e_np
                if tol is not None:
                    bad = e_np > tol
                    self.last_bad[self.alive[bad]] = j
                    small = e_np <= RETIRE_FACTOR * tol
                    self.below[self.alive] = np.where(small, self.below[self.alive] + 1, 0)
                    if j % 10 == 0:
                        self._retire(max(RETIRE_WINDOW, j // 5))
                if stop_below is not None and worst <= stop_below:
                    return
                if progress is not None and j % PROGRESS_EVERY == 0:
                    progress(j)
                if j % 25 == 0 and self._stalls():
                    self.stalled = True
                    return

    def _retire(self, window: int) -> None:
        keep = self.below[self.alive] < window
        if keep.all():
            return
        idx = torch.as_tensor(np.flatnonzero(keep))
        self.alive = self.alive[keep]
        self.state = tuple(s.index_select(0, idx) for s in self.state)
        self.ctx = tuple(c.index_select(0, idx) for c in self.ctx)
        self.x = self.x.index_select(0, idx)
        self.ref = self.ref.index_select(0, idx)

    def _stalls(self) -> bool:
        j = len(self._best)
        w = max(STALL_WINDOW, j // 2)
        if j <= w:
            return False
        now, then = self._best[-1], self._best[-1 - w]
        return now <= self.floor and not (now * STALL_GAIN <= then)

    def errors(self) -> np.ndarray:
        return np.asarray(self.curve, dtype=float)

    def predicted_depth(self, tol: float) -> float:
        """The depth at which the curve reaches ``tol``: measured where it did, else extrapolated from the
        linear rate of its best error over the second half of the run (``inf`` where it does not fall).

        Parameters
        ----------
        tol : float
            The error to reach.

        Returns
        -------
        float
        """
        c = self.errors()
        if c.size == 0:
            return math.inf
        d = first_depth(c, tol)
        if d is not None:
            return float(d)
        if self.stalled:
            return math.inf
        best = np.minimum.accumulate(c)
        j = c.size
        h = max(1, j // 2)
        now, then = best[-1], best[j - h - 1] if j > h else best[0]
        if not (now > 0 and now < then and np.isfinite(then)):
            return math.inf
        rate = (now / then) ** (1.0 / h)
        return j + math.log(now / tol) / -math.log(rate)

    def predicted_error(self, depth: int) -> float:
        """The largest error at ``depth``: measured where the run got there, else extrapolated at the run's rate.

        Parameters
        ----------
        depth : int
            Number of layers.

        Returns
        -------
        float
        """
        c = self.errors()
        if c.size == 0:
            return math.inf
        if c.size >= depth:
            return float(c[depth - 1])
        best = np.minimum.accumulate(c)
        j = c.size
        h = max(1, j // 2)
        now, then = best[-1], best[j - h - 1] if j > h else best[0]
        if not (now > 0 and now < then):
            return float(now)
        return float(now * (now / then) ** ((depth - j) / h))


def error_curve(model, X: np.ndarray, U: np.ndarray, J: int, tol: float | None = None) -> np.ndarray:
    """``(J',)`` max error over the states after each layer.

    Parameters
    ----------
    model : ExplicitNetwork
        The network (its own depth is ignored).
    X : array_like, shape (B, n_θ)
        Network inputs.
    U : array_like, shape (B, N·n_u)
        Their exact outputs.
    J : int
        Largest number of layers run.
    tol : float, optional
        Stop after the first layer whose error is 100× below ``tol``.

    Returns
    -------
    ndarray, shape (J',)
        ``max_b ‖U_j(x_b) - U_b‖∞`` for ``j = 1..J'``, ``J' <= J``.
    """
    run = CurveRun(model, X, U)
    run.advance(J, stop_below=None if tol is None else 1e-2 * tol)
    return run.errors()
