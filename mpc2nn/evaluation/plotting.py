"""Matplotlib figures: trajectories (small multiples, controllers compared), residual vs layer, error vs
depth, error maps, partitions. Axes carry the problem's signal names and units, time is in seconds where
the problem (or trajectory) knows its sampling time ``dt``.

Each function takes ``ax=None`` (a new figure is made) and returns the axes it
drew on. matplotlib is imported when a function is called (extra ``plot``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from .._checks import require
from ..exceptions import ProblemDefinitionError
from ..implicit import compile
from ..problem import signal_labels
from ..qp import as_qp
from ._simulate import Trajectory
from ._validate import controller_output

__all__ = ["plot_states", "plot_inputs", "plot_outputs", "plot_trajectories", "save_trajectories", "check_image_path",
           "plot_residuals", "plot_error_vs_depth", "plot_error_map", "plot_partition"]

#: Errors are drawn no lower than this on log axes: exact agreement (error 0) has no logarithm, and 1e-17
#: lies below every nonzero difference of numbers of order one (float64 spacing 2.2e-16), so it stands out.
LOG_FLOOR = 1e-17
#: Default error targets drawn as dotted lines by :func:`plot_error_vs_depth`: two reference accuracies,
#: 1e-3 and 1e-6 (the default tolerance of ``mpc2nn validate``), against which the depth curves are read.
ERROR_TARGETS = (1e-3, 1e-6)

_STYLES: list[dict] = [dict(lw=3, alpha=0.35), dict(ls="--", marker=".", ms=4), dict(ls=":", marker="x", ms=4),
           dict(ls="-.", lw=1)]


def _axes(ax):
    if ax is not None:
        return ax
    plt = require("matplotlib.pyplot", "plot")
    return plt.subplots(figsize=(6, 3.6), layout="constrained")[1]


def _time(tr: Trajectory, problem, n: int) -> tuple[np.ndarray, str]:
    """``(t, xlabel)``: seconds when a sampling time is known (the trajectory's, else the problem's)."""
    dt = getattr(tr, "dt", None) or getattr(problem, "dt", None)
    k = np.arange(n, dtype=float)
    return (k, "time step k") if dt is None else (k * dt, "time [s]")


def _labels(problem, kind: str, n: int, units: bool = True) -> list[str]:
    """Signal labels from the problem's names and units (``x1``, ``u1``, ... without a problem)."""
    if problem is not None and hasattr(problem, f"{kind}_names"):
        return list(signal_labels(problem, kind, units=units))
    return [f"{_SYMBOL[kind]}{i + 1}" for i in range(n)]


def _bounds_of(problem, kind: str):
    """``(lo, hi)`` arrays of the problem for one kind of signal, or ``None``."""
    names = {"state": ("x_min", "x_max"), "input": ("u_min", "u_max"), "output": ("y_min", "y_max")}[kind]
    lo, hi = (getattr(problem, n, None) for n in names)
    return None if lo is None or hi is None else (np.asarray(lo, float), np.asarray(hi, float))


def plot_states(trajectories: Mapping[str, Trajectory], *, indices: Sequence[int] | None = None, ax=None,
                bounds=None):
    """States over time on one axes, one line style per trajectory and one colour per state.

    Parameters
    ----------
    trajectories : mapping of str to Trajectory
        The runs by label (the legend).
    indices : sequence of int, optional
        Which states (default all).
    ax : matplotlib.axes.Axes, optional
        Where to draw (default: a new figure).
    bounds : MPCProblem, optional
        Its finite state bounds are drawn dotted and labelled; its names, units and
        sampling time label the axes (time in seconds when ``dt`` is known).

    Returns
    -------
    matplotlib.axes.Axes

    Notes
    -----
    For many states, or to compare controllers, :func:`plot_trajectories` (small multiples,
    differences shown) reads better.
    """
    return _plot_signals(trajectories, "state", indices, ax, bounds)


def plot_inputs(trajectories: Mapping[str, Trajectory], *, indices: Sequence[int] | None = None, ax=None,
                bounds=None):
    """Applied inputs (held over each step), like :func:`plot_states`; input bounds dotted and labelled.

    Parameters
    ----------
    trajectories : mapping of str to Trajectory
        The runs by label (the legend).
    indices : sequence of int, optional
        Which inputs (default all).
    ax : matplotlib.axes.Axes, optional
        Where to draw (default: a new figure).
    bounds : MPCProblem, optional
        Its finite input bounds are drawn dotted and labelled; its names, units and sampling time
        label the axes.

    Returns
    -------
    matplotlib.axes.Axes
    """
    return _plot_signals(trajectories, "input", indices, ax, bounds)


def plot_outputs(trajectories: Mapping[str, Trajectory], *, indices: Sequence[int] | None = None, ax=None,
                 bounds=None):
    """Outputs ``y = C x + D u`` (held over each step), like :func:`plot_inputs`; output bounds labelled.

    The trajectories must have outputs (:func:`mpc2nn.simulate` records them for problems with ``C``).

    Parameters
    ----------
    trajectories : mapping of str to Trajectory
        The runs by label (the legend); each with ``outputs`` of shape (T, n_y).
    indices : sequence of int, optional
        Which outputs (default all ``n_y``).
    ax : matplotlib.axes.Axes, optional
        Where to draw (default: a new figure).
    bounds : MPCProblem, optional
        Its finite output bounds ``y_min``, ``y_max`` are drawn dotted and labelled; its output
        names, units and sampling time label the axes.

    Returns
    -------
    matplotlib.axes.Axes

    Raises
    ------
    ProblemDefinitionError
        A trajectory has no outputs (``outputs is None``).
    """
    return _plot_signals(trajectories, "output", indices, ax, bounds)


_FIELD = {"state": "states", "input": "inputs", "output": "outputs"}
_SYMBOL = {"state": "x", "input": "u", "output": "y"}


def _values(tr: Trajectory, kind: str) -> np.ndarray:
    values = getattr(tr, _FIELD[kind])
    if values is None:
        raise ProblemDefinitionError(f"trajectory: has no {_FIELD[kind]} (outputs are recorded for problems with C)")
    return np.asarray(values, float)


def _draw(ax, t, values, kind, **kw):
    if kind == "state":
        return ax.plot(t[:values.shape[0]], values, **kw)
    # inputs and outputs are held over the step: a step plot that shows the last step too
    return ax.step(np.append(t[:values.shape[0]], t[values.shape[0]]), np.append(values, values[-1:]),
                   where="post", **kw)


def _plot_signals(trajectories, kind: str, indices, ax, problem):
    """Shared body of :func:`plot_states`, :func:`plot_inputs` and :func:`plot_outputs` on one axes."""
    ax = _axes(ax)
    first = next(iter(trajectories.values()))
    n = _values(first, kind).shape[1]
    indices = list(range(n)) if indices is None else list(indices)
    labels = _labels(problem, kind, n)
    t, xlabel = _time(first, problem, first.states.shape[0])
    offset = {"state": 0, "input": 4, "output": 6}[kind]
    for s, (label, tr) in enumerate(trajectories.items()):
        values = _values(tr, kind)
        style = dict(_STYLES[s % len(_STYLES)]) if len(trajectories) > 1 else dict(lw=1.6)  # one: plain
        if kind != "state":
            style = {key: v for key, v in style.items() if key not in ("marker", "ms")}
        for c, i in enumerate(indices):
            _draw(ax, t, values[:, i], kind, color=f"C{(c + offset) % 10}",
                  label=f"{labels[i]}: {label}" if len(trajectories) > 1 or len(indices) > 1 else label, **style)
    lim = _bounds_of(problem, kind) if problem is not None else None
    if lim is not None:
        marks: dict = {}  # one label per bound value, naming every signal bounded there
        for c, i in enumerate(indices):
            for side, v in (("min", lim[0][i]), ("max", lim[1][i])):
                if np.isfinite(v):
                    ax.axhline(v, color=f"C{(c + offset) % 10}", lw=0.9, ls=":")
                    marks.setdefault((side, float(v)), []).append(_short(labels[i]))
        for (side, v), who in marks.items():
            names = ", ".join(who) if len(who) <= 2 else f"{len(who)} {kind}s"
            ax.annotate(f"{side} {names} = {v:.4g}", (1.0, v), xycoords=("axes fraction", "data"),
                        xytext=(-2, 2 if side == "max" else -2), textcoords="offset points", ha="right",
                        va="bottom" if side == "max" else "top", fontsize=7, color="0.3")
    unit = _common_unit(problem, kind, indices)
    ylabel = (", ".join(labels[i] for i in indices) if len(indices) <= 2
              else f"{kind}s" + (f" [{unit}]" if unit else ""))
    ax.set(xlabel=xlabel, ylabel=ylabel)
    ax.legend(fontsize=7, loc="best", framealpha=0.8)
    return ax


#: A signal whose values span less than this (relative to its size, at least 1) is drawn on a fixed range
#: of ±1 around its value: otherwise matplotlib zooms into float64 rounding noise (a "1e-14" axis).
FLAT_SPAN = 1e-9


def _no_noise_zoom(ax, series) -> None:
    v = np.concatenate([np.asarray(s, float).ravel() for s in series])
    v = v[np.isfinite(v)]
    if v.size and v.max() - v.min() <= FLAT_SPAN * max(1.0, float(np.abs(v).max())):
        c = float(v.mean())
        ax.set_ylim(c - 1.0, c + 1.0)


def _short(label: str) -> str:
    """The name part of ``"name [unit]"``."""
    return label.split(" [")[0]


def _common_unit(problem, kind, indices) -> str | None:
    units = getattr(problem, f"{kind}_units", None) if problem is not None else None
    if not units:
        return None
    picked = {units[i] for i in indices}
    return picked.pop() if len(picked) == 1 else None


def plot_trajectories(trajectories: Mapping[str, Trajectory], problem=None, *, title: str = "",
                      reference: str | None = None, columns: int | None = None, setpoints=None, fig=None):
    """Closed loops as small multiples: one panel per state, input and output, and their difference.

    Every trajectory is drawn in every panel (the reference solid and wide, the others dashed on
    top of it), bounds dotted and labelled, axes named with the problem's names and units, time in
    seconds where the sampling time is known. With two or more trajectories a last panel shows,
    per step, the largest difference ``max_i |x_i - x_i,ref|`` (and the same for inputs) of each
    trajectory to the reference, on a log scale.

    Parameters
    ----------
    trajectories : mapping of str to Trajectory
        The closed loops by label (the legend); at least one. Outputs get panels where the
        reference trajectory has them.
    problem : MPCProblem, optional
        Names, units, bounds and ``dt`` (default none: signals named ``x1``, ``u1``, ...,
        no bounds, time in steps unless the trajectory carries its ``dt``).
    title : str
        Figure title (default ``""``: none).
    reference : str, optional
        Label of the trajectory the others are compared with; it is drawn solid and wide under
        them (default the first of ``trajectories``).
    columns : int, optional
        Panels per row (default: 1 for up to 2 panels, 2 up to 6, 3 up to 9, else 4).
    setpoints : {"state" | "input" | "output": (n,) array}, optional
        References drawn as grey dash-dot lines ("setpoint"), e.g. ``{"state": x_ref}``.
    fig : matplotlib.figure.Figure, optional
        An empty figure to draw on (its size is set here); default a new pyplot figure
        (shown by ``plt.show()`` and by notebooks).

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ProblemDefinitionError
        ``trajectories`` is empty, or ``reference`` is not one of its labels.
    """
    if not trajectories:
        raise ProblemDefinitionError("trajectories: expected at least one {label: Trajectory}")
    labels = list(trajectories)
    reference = labels[0] if reference is None else reference
    if reference not in trajectories:
        raise ProblemDefinitionError(f"reference: expected one of {labels}, got {reference!r}")
    first = trajectories[reference]
    kinds = ["state", "input"] + (["output"] if first.outputs is not None else [])
    panels = [(kind, i) for kind in kinds for i in range(_values(first, kind).shape[1])]
    compare = len(trajectories) > 1
    n_panels = len(panels) + compare
    cols = columns or (1 if n_panels <= 2 else 2 if n_panels <= 6 else 3 if n_panels <= 9 else 4)
    rows = -(-n_panels // cols)
    size = (3.4 * cols + 0.6, 2.3 * rows + 0.8)
    if fig is None:
        fig = require("matplotlib.pyplot", "plot").figure(figsize=size, layout="constrained")
    else:
        fig.set_size_inches(*size)
        fig.set_layout_engine("constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols, sharex=True, squeeze=False)).ravel()
    t, xlabel = _time(first, problem, first.states.shape[0])
    order = [reference] + [lab for lab in labels if lab != reference]
    colour = {lab: f"C{j % 10}" for j, lab in enumerate(order)}
    for ax, (kind, i) in zip(axes, panels, strict=False):
        names = _labels(problem, kind, _values(first, kind).shape[1])
        for j, lab in enumerate(order):
            if not compare:  # one loop: a plain line, not the faded underlay of a comparison
                style: dict = dict(lw=1.6)
            else:
                style = dict(lw=2.6, alpha=0.45) if j == 0 else dict(lw=1.2, ls=(0, (4, 2)) if j == 1 else ":")
            _draw(ax, t, _values(trajectories[lab], kind)[:, i], kind, color=colour[lab], label=lab, **style)
        _no_noise_zoom(ax, [_values(trajectories[lab], kind)[:, i] for lab in order])
        if setpoints is not None and kind in setpoints:
            ax.axhline(float(np.asarray(setpoints[kind], float)[i]), color="0.5", lw=1.0, ls="-.", label="setpoint")
        lim = _bounds_of(problem, kind) if problem is not None else None
        if lim is not None:
            drawn = False
            for v in (lim[0][i], lim[1][i]):
                if np.isfinite(v):
                    ax.axhline(v, color="0.35", lw=0.9, ls=":", label=None if drawn else "bound")
                    drawn = True
        ax.set_ylabel(names[i], fontsize=8)
        ax.set_title({"state": "state", "input": "input", "output": "output"}[kind] + f" {i + 1}", fontsize=8,
                     loc="left", color="0.4")
        ax.tick_params(labelsize=7)
    if compare:
        ax = axes[len(panels)]
        for lab in order[1:]:
            for kind, ls in (("state", "-"), ("input", "--")):
                ref_v, v = _values(first, kind), _values(trajectories[lab], kind)
                n = min(ref_v.shape[0], v.shape[0])
                gap = np.abs(v[:n] - ref_v[:n]).max(axis=1)
                ax.semilogy(t[:n], np.maximum(gap, 1e-17), color=colour[lab], ls=ls,
                            label=f"{lab}: {_FIELD[kind]}")
        ax.set_ylabel(f"max |· − {reference}|", fontsize=8)
        ax.set_title("difference to " + reference + " (floor 1e-17)", fontsize=8, loc="left", color="0.4")
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=6)
    for ax in axes[n_panels:]:
        ax.set_visible(False)
    for idx in range(n_panels):
        if idx + cols >= n_panels:  # nothing drawn below it: it carries the time axis
            axes[idx].set_xlabel(xlabel, fontsize=8)
            axes[idx].xaxis.set_tick_params(labelbottom=True)
    legend: dict = {}
    for ax in axes[:len(panels)]:  # every line kind once (a bound or setpoint may be in some panels only)
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            legend.setdefault(lab, h)
    fig.legend(list(legend.values()), list(legend), loc="outside lower center", ncol=len(legend), fontsize=8,
               frameon=False)
    if title:
        fig.suptitle(title, fontsize=10, x=0.01, ha="left")
    return fig


def check_image_path(path, what: str = "path") -> None:
    """Raise ProblemDefinitionError unless matplotlib can write an image to ``path`` (by its suffix).

    Lets a caller refuse ``--plot x.xyz`` before a long run instead of after it.

    Parameters
    ----------
    path : str or path-like
        The file to be written.
    what : str
        How the caller names the path in the message (e.g. ``"--plot"``).
    """
    require("matplotlib", "plot")
    from pathlib import Path

    from matplotlib.figure import Figure

    formats = Figure().canvas.get_supported_filetypes()
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix not in formats:
        raise ProblemDefinitionError(
            f"{what}: cannot write an image to {str(path)!r}: the suffix {'.' + suffix if suffix else '(none)'!r} "
            f"is not an image format matplotlib writes; use one of {', '.join('.' + f for f in sorted(formats))}")


def save_trajectories(path, trajectories: Mapping[str, Trajectory], bounds=None, title: str = ""):
    """:func:`plot_trajectories` written to ``path`` (any matplotlib format, 120 dpi).

    Parameters
    ----------
    path : str or path-like
        File to write; the suffix selects the format.
    trajectories : mapping of str to Trajectory
        The runs by label (the legend).
    bounds : MPCProblem, optional
        Its names, units, bounds and sampling time label the panels.
    title : str
        Figure title.

    Returns
    -------
    path
        The ``path`` given.
    """
    require("matplotlib", "plot")
    from matplotlib.figure import Figure

    fig = plot_trajectories(trajectories, bounds, title=title, fig=Figure())  # not attached to pyplot: no GUI
    fig.savefig(path, dpi=120)
    return path


def plot_residuals(histories: Mapping[str, np.ndarray], *, threshold: float | None = None, ax=None):
    """Residual (log scale) against layer index, one line per history.

    Parameters
    ----------
    histories : mapping of str to array_like, shape (J,)
        Per-layer residuals by label (e.g. ``LayerHistory.residual[:, i]``).
    threshold : float, optional
        Drawn as a dotted horizontal line.
    ax : matplotlib.axes.Axes, optional
        Where to draw (default: a new figure).

    Returns
    -------
    matplotlib.axes.Axes
    """
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
                        targets: Sequence[float] = ERROR_TARGETS):
    """Max error against depth (log-log), one line per construction.

    Parameters
    ----------
    depths : sequence of int
        The depths, the x values of every line.
    errors : mapping of str to sequence of float
        Max errors at ``depths`` by label (zeros are drawn at :data:`LOG_FLOOR`).
    ax : matplotlib.axes.Axes, optional
        Where to draw (default: a new figure).
    targets : sequence of float
        Errors drawn as dotted horizontal lines (default :data:`ERROR_TARGETS`).

    Returns
    -------
    matplotlib.axes.Axes
    """
    ax = _axes(ax)
    for label, e in errors.items():
        ax.loglog(depths, np.maximum(np.asarray(e, dtype=float), LOG_FLOOR), marker="o", ms=3, label=label)
    for t in targets:
        ax.axhline(t, color="gray", ls=":", lw=1, label=f"{t:g} (target)")
    ax.set(xlabel="depth (layers)", ylabel=r"max $\|U - U^*\|_\infty$ (input units)")
    ax.legend(fontsize=7)
    return ax


def plot_error_map(controller, problem, *, dims: tuple[int, int] = (0, 1), box=None, fixed=None,
                   resolution: int = 80, ax=None, clim: tuple[float, float] | None = None):
    """Heat map of ``log10 ‖u_0 - u_0*‖∞`` over a 2-D slice of the state space.

    Infeasible states are grey; exact agreement (error 0) is drawn at :data:`LOG_FLOOR`.

    Parameters
    ----------
    controller : callable, ImplicitNetwork, explicit network or torch module
        ``X (B, n_x) -> U (B, N·n_u) or (B, n_u)``.
    problem : MPCProblem or CondensedQP
        The problem; its exact implicit solve is the reference.
    dims : (int, int)
        The two state indices spanned by the slice.
    box : (lo, hi), optional
        Arrays of shape (n_x,) each; default the problem's sample box.
    fixed : array_like, shape (n_x,), optional
        Values of the other states (default 0).
    resolution : int
        Grid points per axis.
    ax : matplotlib.axes.Axes, optional
        Where to draw (default: a new figure).
    clim : (lo, hi), optional
        Colour range of ``log10`` of the error; give the same one to maps that are compared
        side by side (default: each map's own range).

    Returns
    -------
    matplotlib.axes.Axes
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
    Z = np.log10(np.maximum(err, LOG_FLOOR)).reshape(G1.shape)
    ax = _axes(ax)
    ax.set_facecolor("0.85")
    vmin, vmax = (None, None) if clim is None else clim
    mesh = ax.pcolormesh(G1, G2, np.ma.masked_invalid(Z), shading="auto", cmap="viridis", vmin=vmin, vmax=vmax)
    ax.figure.colorbar(mesh, ax=ax, label=r"$\log_{10}\|u_0 - u_0^*\|_\infty$ (grey: infeasible)")
    names = _labels(qp.problem, "state", qp.n_x)
    ax.set(xlabel=names[i], ylabel=names[j])
    return ax


def plot_partition(partition, dims: tuple[int, int] = (0, 1), fixed=None, ax=None, *, edges: bool = True):
    """A 2-D slice of a :class:`~mpc2nn.Partition`: its regions coloured by their first-input law.

    Regions of one first-input piece share a colour (``partition.pieces``); open facets of an
    incomplete partition are marked with red crosses at their points (``OpenFacet.point``,
    :class:`~mpc2nn.regions.OpenFacet`) projected onto the plane.

    Parameters
    ----------
    partition : Partition
        The partition to draw (from :func:`~mpc2nn.critical_regions`).
    dims : (int, int)
        The two entries of ``θ`` spanned by the slice (default ``(0, 1)``).
    fixed : array_like, shape (n_θ,), optional
        Values of the other entries of ``θ`` (default 0); not used for ``n_θ = 2``.
    ax : matplotlib.axes.Axes, optional
        Where to draw (default: a new figure).
    edges : bool
        Draw the regions' edges (thin, white), so regions of one piece stay apart (default True).

    Returns
    -------
    matplotlib.axes.Axes
    """
    require("matplotlib", "plot")
    from matplotlib.collections import PolyCollection

    ax = _axes(ax)
    polys = partition.slice(dims, fixed)
    piece = partition.pieces.region_piece
    n_pieces = max(partition.pieces.n_pieces, 1)
    import matplotlib as mpl

    cmap = mpl.colormaps["tab20" if n_pieces <= 20 else "turbo"]
    colours = [cmap((piece[r] % 20) / 19 if n_pieces <= 20 else piece[r] / max(n_pieces - 1, 1)) for r, _ in polys]
    coll = PolyCollection([p for _, p in polys], facecolors=colours, edgecolors="white" if edges else "face",
                          linewidths=0.4 if edges else 0.0)
    ax.add_collection(coll)
    if polys:
        allp = np.vstack([p for _, p in polys])
        ax.set_xlim(allp[:, 0].min(), allp[:, 0].max())
        ax.set_ylim(allp[:, 1].min(), allp[:, 1].max())
    labels = partition.qp.parameter_labels
    i, j = dims
    if partition.open_facets:
        pts = np.array([o.point for o in partition.open_facets])
        ax.plot(pts[:, i], pts[:, j], "x", color="red", ms=4, label=f"{len(pts)} open facets (centres)")
        ax.legend(fontsize=7)
    ax.set(xlabel=labels[i], ylabel=labels[j],
           title=f"{partition.n_regions} regions, {partition.pieces.n_pieces} first-input laws ({partition.status})")
    ax.title.set_fontsize(9)
    return ax
