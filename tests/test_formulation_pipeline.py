"""The MPC formulations through the pipeline: problem checks, θ, condensing details, save/load,
explicit networks, export, closed loop, command line and converse map.

Agreement with an independently built QP is in test_formulations.py; these tests check that
every stage carries the formulations and says clearly what it refuses.
"""
import json
import zipfile

import numpy as np
import pytest
from tolerances import tol

import mpc2nn
from mpc2nn import exceptions as exc
from mpc2nn.status import Conversion, Status

DI = mpc2nn.systems.double_integrator()
RATES = dict(du_min=[-0.3], du_max=[0.3], du_weight=[[1.0]])


def _theta(qp, X, seed=0):
    """θ for states X with u_prev inside the input bounds and a steady-state reference where needed."""
    rng = np.random.default_rng(seed)
    layout = dict(qp.parameter_sizes)
    parts = {}
    if "u_prev" in layout:
        parts["u_prev"] = rng.uniform(-0.5, 0.5, (len(X), layout["u_prev"]))
    if "x_ref" in layout:
        parts["x_ref"] = np.column_stack([rng.uniform(-1, 1, len(X)), np.zeros(len(X))])
        parts["u_ref"] = np.zeros((len(X), 1))
    return qp.parameters(X, **parts)


# --- problem definition ----------------------------------------------------------------------
@pytest.mark.parametrize("changes, error, match", [
    (dict(soft_state_penalty=0.0), exc.ProblemDefinitionError, "ρ_q must be finite and > 0"),
    (dict(soft_state_penalty=(1.0, -1.0)), exc.ProblemDefinitionError, "ρ_l must be finite and >= 0"),
    (dict(soft_state_penalty=(1.0, 2.0, 3.0)), exc.ProblemDefinitionError, "a pair"),
    (dict(du_min=[0.1]), exc.InconsistentBoundsError, "must admit Δu = 0"),
    (dict(du_max=[0.1, 0.2]), exc.ShapeError, r"du_max: expected shape \(n_u,\) = \(1,\)"),
    (dict(du_weight=[[-1.0]]), exc.NotPositiveSemidefiniteError, "du_weight"),
    (dict(move_blocking=(5, 5)), exc.ProblemDefinitionError, "sum to 10, expected the horizon N = 20"),
    (dict(move_blocking=(0, 20)), exc.ProblemDefinitionError, "positive integer block lengths"),
    (dict(tracking="yes"), exc.ProblemDefinitionError, "tracking: expected True or False"),
    (dict(tracking=True, terminal_set="lqr"), exc.ProblemDefinitionError, "does not move with the reference"),
])
def test_new_fields_are_checked(changes, error, match):
    with pytest.raises(error, match=match):
        DI.replace(**changes)


def test_plain_problem_keeps_its_qp():
    qp = mpc2nn.condense(DI)
    assert qp.output_map is None and qp.n_slack == 0 and qp.parameter_labels == ("x[0]", "x[1]")
    assert (qp.n_theta, qp.n_x, qp.n_z, qp.n_U) == (2, 2, 20, 20)


def test_parameters_builds_theta_and_names_what_is_missing_or_extra():
    qp = mpc2nn.condense(DI.replace(tracking=True, **RATES))
    assert qp.parameter_labels == ("x[0]", "x[1]", "u_prev[0]", "x_ref[0]", "x_ref[1]", "u_ref[0]")
    th = qp.parameters([[1.0, 2.0], [3.0, 4.0]], u_prev=[0.5], x_ref=[1.0, 0.0], u_ref=[0.0])
    assert np.array_equal(th, [[1, 2, 0.5, 1, 0, 0], [3, 4, 0.5, 1, 0, 0]])
    with pytest.raises(exc.ProblemDefinitionError, match="u_prev: missing; .* give the previous input"):
        qp.parameters([1.0, 2.0], x_ref=[1.0, 0.0], u_ref=[0.0])
    with pytest.raises(exc.ShapeError, match=r"x_ref: expected shape \(2,\) or \(B, 2\)"):
        qp.parameters([1.0, 2.0], u_prev=[0.0], x_ref=[1.0], u_ref=[0.0])
    with pytest.raises(exc.ShapeError, match=r"x: batch size 2 does not match the others \(3\)"):
        qp.parameters(np.zeros((2, 2)), u_prev=np.zeros((3, 1)), x_ref=[1.0, 0.0], u_ref=[0.0])
    plain = mpc2nn.condense(DI)
    with pytest.raises(exc.ProblemDefinitionError, match="takes no u_prev because it has no input-rate"):
        plain.parameters([1.0, 2.0], u_prev=[0.0])


def test_move_blocking_drops_duplicate_and_trivial_rows():
    qp = mpc2nn.condense(DI.replace(move_blocking=(2, 3, 5, 10), **RATES))
    assert qp.n_z == 4 and qp.n_U == 20
    # 4 blocks: input bounds once per block (8 rows), rates only where the input can change:
    # at k = 0 (against u_prev) and at the 3 block starts (8 rows), state bounds 80
    assert qp.m == 8 + 8 + 80
    assert not any("du_max[0] at k=1" == label for label in qp.row_labels)
    U = qp.inputs(np.arange(1.0, 5.0)[None, :])[0]
    assert np.array_equal(U, np.repeat([1.0, 2.0, 3.0, 4.0], [2, 3, 5, 10]))


def test_soft_rows_are_labelled_and_slacks_unshifted():
    qp = mpc2nn.condense(DI.replace(soft_state_penalty=(2.0, 10.0)))
    # one slack per state component and step, shared by its two bounds
    assert qp.n_slack == 40 and qp.slack_shift == pytest.approx(10.0 / (2 * 2.0))
    assert sum(label.endswith("(soft)") for label in qp.row_labels) == 80
    assert qp.row_labels[-40:][:2] == ("slack of x[0] at k=1 >= 0", "slack of x[1] at k=1 >= 0")
    z = np.zeros((1, qp.n_z))
    z[0, -40:] = qp.slack_shift  # s' = δ is s = 0
    assert np.array_equal(qp.soft_slacks(z), np.zeros((1, 40)))


def test_soft_network_reports_slacks_that_are_the_violations():
    prob = DI.replace(soft_state_penalty=(1.0, 1e3))
    net = mpc2nn.compile(prob)
    X = mpc2nn.sample_states(DI, 30, seed=4, feasible=False)
    sol = net.solve(X)
    assert (sol.status == Status.SOLVED).all()
    # each slack equals the violation of its state's bounds by the optimal inputs
    pred = net.qp.predict(X, sol.U)[:, 1:, :]  # (B, N, n_x), x_1..x_N
    viol = np.maximum.reduce([np.zeros_like(pred), pred - DI.x_max, DI.x_min - pred]).reshape(len(X), -1)
    assert np.abs(sol.slack - viol).max() < 1e-8  # the solve's slack vs the violation of its prediction (seen 5.7e-12)
    assert sol.slack.max() > tol("visible")


CON = mpc2nn.StageConstraint([[0.0, 1.0]], [[1.0]], [1.5])  # x_2 + u <= 1.5


@pytest.mark.parametrize("base, changes", [
    (DI, dict(soft_state_penalty=3.0)),
    (DI, dict(constraints=[CON], soft_state_penalty=(1.0, 100.0), terminal_set="lqr")),
    (DI, dict(constraints=[CON], tracking=True, du_weight=[[0.5]], move_blocking=(4, 4, 12),
              soft_state_penalty=(2.0, 50.0))),
    (mpc2nn.systems.quadcopter(), dict(tracking=True, du_weight=0.1 * np.eye(4), du_min=[-0.5] * 4,
                                       du_max=[0.5] * 4)),
], ids=["soft-quadratic", "stage+soft+terminal", "everything", "quadcopter-rates+tracking"])
def test_sparse_form_is_built_from_the_problem_and_agrees(base, changes):
    # the states-and-inputs form is assembled from the problem's fields, not from the condensed
    # matrices, so OSQP on it checks the condensation of every formulation
    prob = base.replace(**changes)
    net = mpc2nn.compile(prob)
    rng = np.random.default_rng(3)
    X = mpc2nn.sample_states(base, 30, seed=9, feasible=None)
    parts = {}
    if prob.uses_previous_input:
        parts["u_prev"] = rng.uniform(-0.5, 0.5, (30, prob.n_u))
    if prob.tracking:
        parts["x_ref"], parts["u_ref"] = rng.uniform(-0.5, 0.5, (30, prob.n_x)), rng.uniform(-0.3, 0.3, (30, prob.n_u))
    theta = net.qp.parameters(X, **parts)
    a, b = net.solve(theta), mpc2nn.solve_osqp(prob, theta, form="sparse")
    assert np.array_equal(a.feasible, b.feasible)
    assert a.feasible.any()
    good = a.feasible & (b.status == Status.SOLVED)
    assert np.abs(a.U[good] - b.U[good]).max() < tol("vs_osqp")


# --- networks, validation, persistence -------------------------------------------------------------
@pytest.mark.parametrize("changes", [dict(soft_state_penalty=(1.0, 1e3)), RATES, dict(tracking=True),
                                     dict(move_blocking=(2, 3, 5, 10))],
                         ids=["soft", "rates", "tracking", "blocking"])
def test_exact_solve_validates_against_osqp_and_daqp(changes):
    prob = DI.replace(**changes)
    net = mpc2nn.compile(prob)
    theta = _theta(net.qp, mpc2nn.sample_states(DI, 60, seed=1))
    for ref in ("osqp", "daqp"):  # OSQP on the states-and-inputs form, DAQP on the condensed QP
        report = mpc2nn.validate(net, prob, theta, reference=ref)
        assert report.feasibility_agrees.all()
        assert report.max_error < tol(f"vs_{ref}"), (ref, report.summary())
        both = report.feasible & report.feasible_ref
        assert report.kkt.worst[both].max() < tol("certificate")


@pytest.mark.parametrize("changes", [dict(soft_state_penalty=(1.0, 1e3)), dict(tracking=True, **RATES),
                                     dict(move_blocking=(2, 3, 5, 10))], ids=["soft", "rates+tracking", "blocking"])
def test_save_load_round_trip(changes, tmp_path):
    prob = DI.replace(**changes)
    net = mpc2nn.compile(prob)
    back = mpc2nn.load(mpc2nn.save(net, tmp_path / "net.mpc2nn"), expect_problem=prob)
    assert back.qp.parameter_sizes == net.qp.parameter_sizes and back.qp.n_slack == net.qp.n_slack
    assert back.qp.problem.move_blocking == prob.move_blocking
    assert back.qp.problem.soft_state_penalty == prob.soft_state_penalty
    theta = _theta(net.qp, mpc2nn.sample_states(DI, 10, seed=2))
    a, b = net.solve(theta), back.solve(theta)
    assert np.array_equal(a.U, b.U, equal_nan=True) and np.array_equal(a.slack, b.slack, equal_nan=True)


def test_plain_problem_file_layout_is_unchanged(tmp_path):
    path = mpc2nn.save(DI, tmp_path / "di.mpc2nn")
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        fields = json.loads(zf.read("metadata.json"))["fields"]
    assert "arrays/A.npy" in names and "arrays/du_min.npy" not in names
    assert "tracking" not in fields and "soft_state_penalty" not in fields


@pytest.fixture(scope="module")
def rate_setup():
    prob = DI.replace(tracking=True, **RATES)
    net = mpc2nn.compile(prob)
    X = mpc2nn.sample_states(DI, 200, seed=5)
    theta = _theta(net.qp, X, seed=5)
    sol = net.solve(theta)
    return prob, net, theta[sol.feasible], sol.U[sol.feasible]


def test_explicit_network_on_theta(rate_setup):
    pytest.importorskip("torch")
    prob, net, theta, U = rate_setup
    ex = mpc2nn.unravel(net, depth=200, tuning_states=theta[:100])
    test = slice(100, None)
    err = np.abs(ex.evaluate(theta[test]) - U[test]).max(axis=1)
    shallow = np.abs(mpc2nn.unravel(net, depth=50, rho=ex.rho, relax=ex.relax).evaluate(theta[test]) - U[test])
    assert np.median(err) < 1e-2 and err.max() < shallow.max()  # converging (slowly: see issue 3's depth work)
    assert np.all(ex.error_bound(theta[test]).bound >= err)
    hybrid = mpc2nn.unravel(net, depth=30, method="hybrid", tuning_states=theta[:100])
    assert np.abs(hybrid(theta[test]) - U[test]).max() < tol("same_math")
    # without tuning states the previous input is drawn from the input bounds (sampling.parameter_box)
    drawn = mpc2nn.unravel(net, depth=10)
    assert drawn.qp.layout.describe() == "x (2), u_prev (1), x_ref (2), u_ref (1)" and drawn.rho > 0
    bare = mpc2nn.compile(DI.replace(du_min=[-0.3], du_max=[0.3], u_min=None, u_max=None))
    with pytest.raises(exc.ProblemDefinitionError, match="no default box for the input parts"):
        mpc2nn.unravel(bare, depth=10)


def test_blocked_explicit_network_outputs_whole_blocked_sequences():
    pytest.importorskip("torch")
    prob = DI.replace(move_blocking=(2, 3, 5, 10))
    net = mpc2nn.compile(prob)
    X = mpc2nn.sample_states(prob, 50, seed=6)
    ex = mpc2nn.unravel(net, depth=60)
    U = ex.evaluate(X)
    assert U.shape == (50, 20)
    assert np.array_equal(U[:, 0], U[:, 1]) and np.array_equal(U[:, 10], U[:, 19])
    err = np.abs(U - net.solve(X).U).max(axis=1)
    assert np.all(ex.error_bound(X).bound >= err)


def test_onnx_and_c_exports_take_theta(rate_setup, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("torch")
    prob, net, theta, _ = rate_setup
    ex = mpc2nn.unravel(net, depth=20, rho=1.0, relax=1.6)
    path = mpc2nn.export.to_onnx(ex, tmp_path / "rates.onnx")
    u = ort.InferenceSession(str(path)).run(None, {"x": theta})[0]
    assert u.shape == (len(theta), 1)
    assert np.abs(u - ex.evaluate(theta)[:, :1]).max() <= tol("export")
    header = mpc2nn.export.to_c(ex, tmp_path / "c").with_suffix(".h").read_text()
    assert "const double x[6]" in header


# --- closed loop -------------------------------------------------------------------------------------
def test_tracking_closed_loop_reaches_the_reference_and_counts_rates():
    prob = DI.replace(tracking=True, **RATES)
    target = mpc2nn.steady_state_target(prob, [3.0], [[1.0, 0.0]])
    assert target.unique and target.admissible
    net = mpc2nn.compile(prob)
    traj = mpc2nn.simulate(prob, net, [0.0, 0.0], 60, reference=target.x, input_reference=target.u)
    mpc = mpc2nn.simulate(prob, prob, [0.0, 0.0], 60, reference=target.x, input_reference=target.u)
    assert np.abs(traj.states - mpc.states).max() < tol("closed_loop")
    assert np.abs(traj.states[-1] - target.x).max() < 1e-3  # it reaches the target in 60 steps (a physical claim)
    rates = np.diff(np.vstack([[0.0], traj.inputs]), axis=0)
    assert rates.min() >= -0.3 - tol("feasibility") and rates.max() <= 0.3 + tol("feasibility")
    assert traj.input_violation.max() <= tol("feasibility")
    # the reported cost is the stage cost with the rate term, summed by hand
    dx, du = traj.states[:-1] - target.x, traj.inputs - target.u
    hand = np.einsum("ki,ij,kj->", dx, prob.Q, dx) + np.einsum("ki,ij,kj->", du, prob.R, du) + (rates ** 2).sum()
    assert traj.cost == pytest.approx(hand, rel=tol("roundoff"))


def test_rate_closed_loop_uses_the_previous_input():
    prob = DI.replace(du_min=[-0.1], du_max=[0.1])
    traj = mpc2nn.simulate(prob, mpc2nn.compile(prob), [-2.0, 0.0], 5, u_prev=[0.5])
    assert traj.stopped_at is None
    assert traj.inputs[0, 0] >= 0.4 - tol("feasibility")  # at most 0.1 below the previous input 0.5
    assert np.abs(np.diff(np.concatenate([[0.5], traj.inputs[:, 0]]))).max() <= 0.1 + tol("feasibility")


def test_simulate_refuses_missing_or_unusable_references():
    tracking = DI.replace(tracking=True)
    with pytest.raises(exc.ProblemDefinitionError, match="tracks references .* pass reference="):
        mpc2nn.simulate(tracking, mpc2nn.compile(tracking), [0.0, 0.0], 3)
    with pytest.raises(exc.ProblemDefinitionError, match=r"QP 'double_integrator' \(tracking=False\) sees only"):
        mpc2nn.simulate(DI, mpc2nn.compile(DI), [0.0, 0.0], 3, reference=[1.0, 0.0], input_reference=[0.5])


def test_steady_state_target_errors():
    with pytest.raises(exc.ProblemDefinitionError, match="no steady state"):
        # two outputs, one input: position 1 with velocity 1 is no steady state
        mpc2nn.steady_state_target(DI, [1.0, 1.0], np.eye(2))
    t = mpc2nn.steady_state_target(DI, [9.0], [[1.0, 0.0]])
    assert t.x[0] == pytest.approx(9.0) and not t.admissible  # the position bound is 5


# --- command line and converse map --------------------------------------------------------------------
def test_cli_reads_the_new_keys_and_samples_theta(tmp_path, capfd):
    from mpc2nn.cli import main, problem_from_toml

    doc = dict(A=[[1.0, 1.0], [0.0, 1.0]], B=[[0.5], [1.0]], Q=[[1.0, 0.0], [0.0, 1.0]], R=[[0.1]], horizon=6,
               u_min=[-1.0], u_max=[1.0], x_min=[-5.0, -2.0], x_max=[5.0, 2.0], du_min=[-0.3], du_max=[0.3],
               du_weight=[[1.0]], soft_state_penalty=[1.0, 100.0], tracking=True, move_blocking=[1, 2, 3])
    p = problem_from_toml(doc)
    assert p.tracking and p.move_blocking == (1, 2, 3) and p.soft_state_penalty == (1.0, 100.0)
    path = tmp_path / "p.toml"
    path.write_text("\n".join([
        "A = [[1.0, 1.0], [0.0, 1.0]]", "B = [[0.5], [1.0]]", "Q = [[1.0, 0.0], [0.0, 1.0]]", "R = [[0.1]]",
        "horizon = 6", "u_min = [-1.0]", "u_max = [1.0]", "du_max = [0.3]", "du_min = [-0.3]",
        "[sample_box]", "lo = [-1.0, -1.0]", "hi = [1.0, 1.0]"]))
    assert main(["compile", str(path)]) == 0
    capfd.readouterr()
    # validate draws θ = (x, u_prev): the previous input from the input bounds
    assert main(["validate", str(path), "--samples", "40", "--json"]) == 0
    data = json.loads(capfd.readouterr().out)
    assert data["states"] == 40 and data["passed"] and data["max_error"] < tol("acceptance")
    bad = dict(doc, tracking="yes")
    with pytest.raises(mpc2nn.Mpc2nnError, match="tracking: expected a boolean \\(true: track"):
        problem_from_toml(bad)


@pytest.mark.parametrize("changes, status", [
    (RATES, Conversion.EXACT), (dict(move_blocking=(5, 5, 10)), Conversion.EXACT),
    # the nearest-QP SDP of the soft network (m = 120 rows) takes ~15 s on two cores
    pytest.param(dict(soft_state_penalty=(1.0, 100.0)), Conversion.NEAREST, marks=pytest.mark.slow)],
    ids=["rates", "blocking", "soft"])
def test_converse_map_on_formulation_networks(changes, status):
    pytest.importorskip("cvxpy")
    from mpc2nn import converse

    net = mpc2nn.compile(DI.replace(**changes))
    result = converse.to_qp(net)
    assert result.status == status
    if status == Conversion.EXACT:
        theta = _theta(net.qp, mpc2nn.sample_states(DI, 40, seed=7))
        a, b = net.solve(theta), mpc2nn.compile(result.qp).solve(theta)
        assert np.array_equal(a.feasible, b.feasible)
        # network -> QP -> network: issue 5's round-trip bound (written as same_math * 10 before; seen 1.2e-12)
        assert np.abs(a.U[a.feasible] - b.U[a.feasible]).max() < tol("round_trip")


def test_a_controller_class_taking_only_the_state_still_works():
    class Saturated:
        """A user's controller written for the state alone (no u_prev / references)."""

        def __init__(self):
            self.calls = 0

        def __call__(self, x):
            self.calls += 1
            return mpc2nn.ControlAction(np.clip([-0.5 * x[0] - x[1]], -1, 1))

        def reset(self):
            self.calls = 0

    ctrl = Saturated()
    traj = mpc2nn.simulate(DI, ctrl, [1.0, 0.0], 10, reference=[0.5, 0.0])
    assert ctrl.calls == 10 and traj.stopped_at is None
    assert traj.inputs[0, 0] == pytest.approx(-0.25)  # it saw x - x_ref = (0.5, 0)
    with pytest.raises(exc.ProblemDefinitionError, match="controller Saturated sees only the state"):
        mpc2nn.simulate(DI, ctrl, [1.0, 0.0], 3, reference=[0.5, 0.0], input_reference=[0.1])
