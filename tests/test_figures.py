"""Figures a control engineer reads: names and units on the axes, time in seconds, bounds labelled,
one panel per signal for many states, network and MPC overlaid with their difference shown.

Smoke tests on the matplotlib objects (labels, scales, legend entries), not on pixels.
"""
import numpy as np
import pytest

import mpc2nn

pytest.importorskip("matplotlib")
from mpc2nn import plotting


@pytest.fixture(autouse=True)
def close_figures():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


@pytest.fixture(scope="module")
def di_runs():
    prob = mpc2nn.systems.double_integrator().replace(C=[[1.0, 1.0]], y_min=[-3.0], y_max=[3.0],
                                                      output_names=["position + velocity"], output_units=["m"])
    runs = {"MPC (OSQP)": mpc2nn.simulate(prob, prob, [-4.0, 1.0], 15),
            "implicit network": mpc2nn.simulate(prob, mpc2nn.compile(prob), [-4.0, 1.0], 15)}
    return prob, runs


def visible(fig):
    return [ax for ax in fig.axes if ax.get_visible()]


def test_small_multiples_carry_names_units_seconds_and_the_difference(di_runs):
    prob, runs = di_runs
    fig = plotting.plot_trajectories(runs, prob, title="di")
    axes = visible(fig)
    assert [ax.get_ylabel() for ax in axes[:4]] == ["position [m]", "velocity [m/s]", "acceleration [m/s²]",
                                                   "position + velocity [m]"]
    assert {ax.get_xlabel() for ax in axes if ax.get_xlabel()} == {"time [s]"}
    diff = axes[4]
    assert diff.get_yscale() == "log" and "difference to MPC (OSQP)" in diff.get_title(loc="left")
    gap = np.abs(runs["implicit network"].states - runs["MPC (OSQP)"].states).max(axis=1)
    assert np.allclose(diff.get_lines()[0].get_ydata(), np.maximum(gap, 1e-17))
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == ["MPC (OSQP)", "implicit network", "bound"]
    # the bounds are drawn where they are: position ±5, acceleration ±1, output ±3
    for ax, bound in zip(axes[:4], (5.0, 2.0, 1.0, 3.0), strict=True):
        dotted = sorted(line.get_ydata()[0] for line in ax.get_lines() if line.get_linestyle() == ":")
        assert dotted == [-bound, bound]
    # the time axis ends at the last state, 15 steps of 1 s
    assert axes[0].get_lines()[0].get_xdata()[-1] == 15.0


def test_many_states_get_one_panel_each_and_no_repeated_colours_within_a_panel():
    q = mpc2nn.systems.quadcopter()
    x0 = np.zeros(12)
    x0[2] = -0.5
    runs = {"MPC (OSQP)": mpc2nn.simulate(q, q, x0, 8),
            "implicit network": mpc2nn.simulate(q, mpc2nn.compile(q), x0, 8)}
    fig = plotting.plot_trajectories(runs, q)
    axes = visible(fig)
    assert len(axes) == 12 + 4 + 1
    assert axes[2].get_ylabel() == "yaw ψ [rad]" and axes[12].get_ylabel() == "thrust 1 (from hover)"
    for ax in axes[:16]:
        colours = [tuple(line.get_color()) if not isinstance(line.get_color(), str) else line.get_color()
                   for line in ax.get_lines() if line.get_label() in runs]
        assert len(colours) == 2 and len(set(colours)) == 2
    # a signal that stays at zero is not zoomed into rounding noise
    lo, hi = axes[3].get_ylim()
    assert hi - lo >= 1.0


def test_without_a_sampling_time_the_axis_counts_steps():
    prob = mpc2nn.systems.drummond2024("corrected")
    tr = mpc2nn.simulate(prob, mpc2nn.compile(prob), [-200.0, -200.0], 5)
    fig = plotting.plot_trajectories({"network": tr}, prob)
    axes = visible(fig)
    assert len(axes) == 3 and axes[-1].get_xlabel() == "time step k" and axes[0].get_ylabel() == "x1"
    line = axes[0].get_lines()[0]  # a single loop is drawn plainly, not in a comparison's faded style
    assert line.get_alpha() is None and line.get_linestyle() == "-"


def test_single_axes_plots_label_signals_and_bounds(di_runs):
    prob, runs = di_runs
    ax = plotting.plot_states(runs, bounds=prob)
    assert ax.get_ylabel() == "position [m], velocity [m/s]" and ax.get_xlabel() == "time [s]"
    notes = {t.get_text() for t in ax.texts}
    assert {"max position = 5", "min position = -5", "max velocity = 2", "min velocity = -2"} <= notes
    assert "position [m]: implicit network" in [t.get_text() for t in ax.get_legend().get_texts()]
    ax = plotting.plot_outputs(runs, bounds=prob)
    assert ax.get_ylabel() == "position + velocity [m]" and "max position + velocity = 3" in {
        t.get_text() for t in ax.texts}
    ax = plotting.plot_error_map(mpc2nn.compile(prob), prob, resolution=6, clim=(-10.0, 0.0))
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("position [m]", "velocity [m/s]")
    assert ax.collections[0].get_clim() == (-10.0, 0.0)


def test_cli_simulate_compares_network_and_mpc(tmp_path, capfd):
    from mpc2nn.cli import main

    png = tmp_path / "missing" / "folder" / "loop.png"
    code = main(["simulate", "builtin:double_integrator", "--x0", "-4", "1", "--steps", "10", "--controller", "both",
                 "--plot", str(png)])
    out = capfd.readouterr().out
    assert code == 0 and out.startswith("implicit network vs MPC (OSQP), 10 steps")
    assert "max |x_network - x_MPC| = " in out.splitlines()[0]
    assert png.stat().st_size > 10_000
