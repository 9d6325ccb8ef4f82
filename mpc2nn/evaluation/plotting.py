"""Matplotlib figures: trajectories, residual vs layer, error vs depth, error maps.

Each function takes ``ax=None`` (a new figure is made) and returns the axes it
drew on. matplotlib is imported when a function is called (extra ``plot``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from .._checks import require
from ..exceptions import ProblemDefinitionError
from ..implicit import compile
from ..qp import as_qp
from ._simulate import Trajectory
from ._validate import controller_output

__all__ = ["plot_states", "plot_inputs", "save_trajectories", "plot_residuals", "plot_error_vs_depth", "plot_error_map"]

_STYLES: list[dict] = [dict(lw=3, alpha=0.35), dict(ls="--", marker=".", ms=4), dict(ls=":", marker="x", ms=4),
           dict(ls="-.", lw=1)]


def _axes(ax):
    if ax is not None:
        return ax
    plt = require("matplotlib.pyplot", "plot")
    return plt.subplots(figsize=(6, 3.6))[1]


def plot_states(trajectories: Mapping[str, Trajectory], *, indices: Sequence[int] | None = None, ax=None,
                bounds=None):
    """States over time, one line style per trajectory and one colour per state.

    Parameters
    ----------
    trajectories : {label: Trajectory}
    indices : which states (default all)
    bounds : MPCProblem, optional; its finite state bounds are drawn dotted
    """
    return _plot_signals(trajectories, "states", indices, ax, bounds)


def plot_inputs(trajectories: Mapping[str, Trajectory], *, indices: Sequence[int] | None = None, ax=None,
                bounds=None):
    """Applied inputs (held over each step), like :func:`plot_states`; input bounds dotted."""
    return _plot_signals(trajectories, "inputs", indices, ax, bounds)


def _plot_signals(trajectories, which: str, indices, ax, bounds):
    """Shared body of :func:`plot_states` (lines, colours C0..) and :func:`plot_inputs` (steps, colours C4..)."""
    ax = _axes(ax)
    states = which == "states"
    symbol, offset, lo, hi = ("x", 0, "x_min", "x_max") if states else ("u", 4, "u_min", "u_max")
    first = getattr(next(iter(trajectories.values())), which)
    indices = range(first.shape[1]) if indices is None else indices
    for s, (label, tr) in enumerate(trajectories.items()):
        values = getattr(tr, which)
        k = np.arange(values.shape[0])
        style = dict(_STYLES[s % len(_STYLES)])
        if not states:
            style = {key: v for key, v in style.items() if key not in ("marker", "ms")}
        for c, i in enumerate(indices):
            kw = dict(color=f"C{c + offset}", label=f"${symbol}_{{{i + 1}}}$ {label}", **style)
            if states:
                ax.plot(k, values[:, i], **kw)
            else:
                ax.step(k, values[:, i], where="post", **kw)
    if bounds is not None:
        for c, i in enumerate(indices):
            for v in (getattr(bounds, lo)[i], getattr(bounds, hi)[i]):
                if np.isfinite(v):
                    ax.axhline(v, color=f"C{c + offset}", lw=0.8, ls=":")
    ax.set(xlabel="time step k", ylabel="state" if states else "input")
    ax.legend(fontsize=7, ncol=max(1, len(trajectories)))
    return ax


def save_trajectories(path, trajectories: Mapping[str, Trajectory], bounds=None, title: str = ""):
    """States and inputs over time, one above the other, written to ``path`` (any matplotlib format).

    Parameters
    ----------
    path : file to write; trajectories : {label: Trajectory}; bounds : MPCProblem, optional
    title : figure title

    Returns
    -------
    path
    """
    require("matplotlib", "plot")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 6), layout="constrained")
    ax_x, ax_u = fig.subplots(2, 1, sharex=True)
    plot_states(trajectories, ax=ax_x, bounds=bounds)
    plot_inputs(trajectories, ax=ax_u, bounds=bounds)
    ax_x.set_xlabel("")
    fig.suptitle(title, fontsize=10)
    fig.savefig(path, dpi=120)
    return path


def plot_residuals(histories: Mapping[str, np.ndarray], *, threshold: float | None = None, ax=None):
    """Residual (log scale) against layer index, one line per history ``{label: (J,) array}``."""
    ax = _axes(ax)
    for label, r in histories.items():
        r = np.asarray(r, dtype=float)
        ax.semilogy(np.arange(1, r.size + 1), r, label=label, lw=1.2)
    if threshold is not None:
        ax.axhline(threshold, color="gray", ls=":", lw=1, label=f"{threshold:g}")
    ax.set(xlabel="layer", ylabel="residual")
    ax.legend(fontsize=7)
    return ax


def plot_error_vs_depth(depths: Sequence[int], errors: Mapping[str, Sequence[float]], *, ax=None,
                        targets: Sequence[float] = (1e-3, 1e-6)):
    """Max error against depth (log-log), one line per construction ``{label: errors}``."""
    ax = _axes(ax)
    for label, e in errors.items():
        ax.loglog(depths, np.maximum(np.asarray(e, dtype=float), 1e-17), marker="o", ms=3, label=label)
    for t in targets:
        ax.axhline(t, color="gray", ls=":", lw=1, label=f"{t:g} (target)")
    ax.set(xlabel="depth (layers)", ylabel=r"max $\|U - U^*\|_\infty$ (input units)")
    ax.legend(fontsize=7)
    return ax


def plot_error_map(controller, problem, *, dims: tuple[int, int] = (0, 1), box=None, fixed=None,
                   resolution: int = 80, ax=None):
    """Heat map of ``log10 ‖u_0 - u_0*‖∞`` over a 2-D slice of the state space.

    Parameters
    ----------
    controller : callable ``X (B, n_x) -> U (B, N·n_u) or (B, n_u)``, an ImplicitNetwork or a torch module
    problem : MPCProblem or CondensedQP (the exact implicit solve is the reference)
    dims : the two state indices spanned by the slice
    box : (lo, hi) of shape (n_x,) each, default the problem's sample box
    fixed : (n_x,) values of the other states (default 0)
    resolution : grid points per axis

    Infeasible states are grey; exact agreement (error 0) is drawn at 1e-17.
    """
    qp = as_qp(problem)
    box = box if box is not None else qp.sample_box
    if box is None:
        raise ProblemDefinitionError("box: the problem has no sample_box; pass box=(lo, hi)")
    i, j = dims
    g1 = np.linspace(box[0][i], box[1][i], resolution)
    g2 = np.linspace(box[0][j], box[1][j], resolution)
    G1, G2 = np.meshgrid(g1, g2)
    X = np.tile(np.zeros(qp.n_x) if fixed is None else np.asarray(fixed, float), (G1.size, 1))
    X[:, i], X[:, j] = G1.ravel(), G2.ravel()
    ref = compile(qp).solve(X)
    U, _, _ = controller_output(controller, X)
    k = U.shape[1] if U.shape[1] in (qp.n_u, qp.n_U) else qp.n_u
    err = np.full(X.shape[0], np.nan)
    ok = ref.feasible
    err[ok] = np.abs(U[ok, :qp.n_u] - ref.U[ok, :qp.n_u]).max(axis=1) if k else np.nan
    Z = np.log10(np.maximum(err, 1e-17)).reshape(G1.shape)
    ax = _axes(ax)
    ax.set_facecolor("0.85")
    mesh = ax.pcolormesh(G1, G2, np.ma.masked_invalid(Z), shading="auto", cmap="viridis")
    ax.figure.colorbar(mesh, ax=ax, label=r"$\log_{10}\|u_0 - u_0^*\|_\infty$ (grey: infeasible)")
    ax.set(xlabel=f"$x_{{{i + 1}}}$", ylabel=f"$x_{{{j + 1}}}$")
    return ax
