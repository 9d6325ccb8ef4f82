"""Tests of the converse direction (mpc2nn.converse): network → MPC-like QP → network."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from tolerances import tol

import mpc2nn
from mpc2nn.converse import (
    ImplicitWeights,
    relu_approximation,
    to_mpc,
    to_qp,
    widen,
)
from mpc2nn.exceptions import ProblemDefinitionError, ShapeError
from mpc2nn.status import Conversion, Status

pytest.importorskip("cvxpy")

ROUND_TRIP_TOL = tol("round_trip")
TO_MPC_TOL = tol("to_mpc")
PROBLEMS = mpc2nn.systems.all_problems()
N_STATES = 40


def _states(qp, n=N_STATES, seed=0):
    lo, hi = qp.sample_box
    return np.random.default_rng(seed).uniform(lo, hi, (n, len(lo)))


def _brute_force_fixed_points(W, Y, b, X):
    """Every fixed point of ``y = W relu(y) + Y x + b`` by enumerating the 2^m active sets (small m only)."""
    m = W.shape[0]
    out = []
    for x in np.atleast_2d(X):
        c = Y @ x + b
        sols = []
        for pattern in itertools.product([False, True], repeat=m):
            S = np.array(pattern)
            y = np.empty(m)
            M = np.eye(S.sum()) - W[np.ix_(S, S)]
            if S.any():     # singular active sets (rank-deficient I - W): a least-squares point, checked below
                y[S] = np.linalg.lstsq(M, c[S], rcond=None)[0]
            y[~S] = W[np.ix_(~S, S)] @ y[S] + c[~S]
            # the oracle's decisions: the least-squares point solves the active rows (relative 1e-9: round-off is
            # ~1e-15, an inconsistent singular system misses by O(1)) and has the signs of its pattern
            consistent = np.abs(M @ y[S] - c[S]).max(initial=0.0) <= 1e-9 * max(1.0, np.abs(c).max())
            if consistent and np.all(y[S] >= -tol("roundoff")) and np.all(y[~S] <= tol("roundoff")):
                sols.append(y)
        out.append(sols)
    return out


# --------------------------------------------------------------------------
# to_qp: round trips on every public problem
# --------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(PROBLEMS))
def test_round_trip_every_public_problem(name):
    qp = mpc2nn.systems.as_qp(PROBLEMS[name]())
    net = mpc2nn.compile(qp)
    res = to_qp(net)
    assert res.status == Conversion.EXACT and res.obstruction is None
    assert res.residual < tol("converse_exact")
    # rebuilt vs given weights: held to same_math here (m up to 120 rows), to converse_exact on the small random
    # networks below; seen 2.8e-12
    assert max(res.network_mismatch.values()) < tol("same_math")
    X = _states(qp)
    ref = net.solve(X)
    back = res.network().solve(X)                   # MPC → network → QP' → network' (same steps)
    other = mpc2nn.compile(res.qp).solve(X)         # any step gives the same U
    np.testing.assert_array_equal(back.feasible, ref.feasible)
    np.testing.assert_array_equal(other.feasible, ref.feasible)
    ok = ref.feasible
    assert ok.any()
    scale = max(1.0, np.abs(ref.U[ok]).max())
    assert np.abs(back.U[ok] - ref.U[ok]).max() <= ROUND_TRIP_TOL * scale
    assert np.abs(other.U[ok] - ref.U[ok]).max() <= ROUND_TRIP_TOL * scale
    # the recovered QP is the original one up to a positive scale (W_f has full row rank on these problems)
    ratio = res.qp.H / qp.H
    assert np.allclose(ratio, ratio.flat[0], rtol=ROUND_TRIP_TOL)


def test_round_trip_with_per_row_steps_recovers_the_steps():
    qp = mpc2nn.systems.as_qp(PROBLEMS["inverted_pendulum"]())
    alpha = np.random.default_rng(3).uniform(0.01, 0.5, qp.m)
    net = mpc2nn.compile(qp, alpha=alpha)
    res = to_qp(net)
    assert res.exact
    # D is unique up to one factor on each connected block of I - W
    for d_block in res.family.d_basis:
        blk = np.flatnonzero(d_block)
        ratio = res.alpha[blk] / alpha[blk]
        assert np.allclose(ratio, ratio[0], rtol=tol("same_math"))
    X = _states(qp, 20)
    np.testing.assert_allclose(res.network().solve(X).U, net.solve(X).U, atol=ROUND_TRIP_TOL)


def test_sdp_route_agrees_with_the_algebraic_one():
    net = mpc2nn.compile(PROBLEMS["drummond2024_corrected"]())
    alg, sdp = to_qp(net), to_qp(net, method="sdp")
    assert sdp.status == Conversion.EXACT and sdp.method == "sdp + polish"
    assert sdp.residual < tol("roundoff")
    X = _states(net.qp, 20)
    np.testing.assert_allclose(sdp.network().solve(X).U, alg.network().solve(X).U, atol=ROUND_TRIP_TOL)


# --------------------------------------------------------------------------
# to_qp: random networks
# --------------------------------------------------------------------------
def _monotone_weights(rng, m, n_U, n_x, *, skew=0.0, steps=False):
    """``I - W = D⁻¹(μI + BᵀB + skew·(C - Cᵀ))`` (monotone operator parameterisation).

    W_f is random, so of full column rank when n_U >= m.
    """
    Bm = rng.normal(size=(m, m))
    C = rng.normal(size=(m, m))
    A = 0.3 * np.eye(m) + Bm.T @ Bm / m + skew * (C - C.T)
    d = rng.uniform(0.3, 3.0, m) if steps else np.ones(m)
    W = np.eye(m) - A / d[:, None]
    return ImplicitWeights(W, rng.normal(size=(m, n_x)), rng.normal(size=m), rng.normal(size=(n_U, m)),
                           rng.normal(size=(n_U, n_x)))


@pytest.mark.parametrize("seed, steps", [(0, False), (1, True), (2, True)])
def test_random_monotone_network_maps_to_a_qp_with_the_same_fixed_points(seed, steps):
    rng = np.random.default_rng(seed)
    m, n_U, n_x = 5, 7, 3
    wts = _monotone_weights(rng, m, n_U, n_x, steps=steps)
    res = to_qp(wts)
    assert res.status == Conversion.EXACT, str(res)
    assert max(res.network_mismatch.values()) < tol("converse_exact")
    assert res.family.free_basis.shape == (n_U, n_U - m)      # H is not unique: U is
    X = rng.normal(size=(25, n_x)) * 2
    sols = _brute_force_fixed_points(wts.W, wts.Y, wts.b, X)
    assert all(len(s) == 1 for s in sols)                     # well-posed: one fixed point each
    U_net = wts.output(np.array([s[0] for s in sols]), X)
    qp_sol = res.network().solve(X)
    assert np.all(qp_sol.status == Status.SOLVED)
    np.testing.assert_allclose(qp_sol.U, U_net, atol=ROUND_TRIP_TOL)
    # the QP's KKT points are the network's fixed points: check the QP itself with OSQP
    osqp = mpc2nn.solve_osqp(res.qp, X)
    # 1e-4: a loose check that the QP is the right one, not of OSQP's accuracy (seen 1.2e-13: vs_osqp would hold)
    np.testing.assert_allclose(osqp.U, U_net, atol=1e-4)


def test_rank_deficient_random_network_like_real_mpc():
    """m > n_U: I - W is singular (as in MPC with many rows); fixed points are not unique but U is."""
    rng = np.random.default_rng(7)
    m, n_U, n_x = 6, 3, 2
    Wf = rng.normal(size=(n_U, m))
    L = rng.normal(size=(n_U, n_U))
    H0 = L @ L.T + np.eye(n_U)
    alpha = rng.uniform(0.05, 0.2, m)
    W = np.eye(m) - alpha[:, None] * (Wf.T @ H0 @ Wf)
    wts = ImplicitWeights(W, rng.normal(size=(m, n_x)), rng.uniform(-1, 0.2, m), Wf, rng.normal(size=(n_U, n_x)))
    res = to_qp(wts)
    assert res.exact
    X = rng.normal(size=(20, n_x))
    sols = _brute_force_fixed_points(W, wts.Y, wts.b, X)
    qp_sol = res.network().solve(X)
    for i, s in enumerate(sols):
        if not s:                                              # no fixed point ⇔ QP infeasible
            assert not qp_sol.feasible[i]
            continue
        assert qp_sol.feasible[i]
        for y in s:                                            # every fixed point has the same U
            np.testing.assert_allclose(wts.output(y, X[i])[0], qp_sol.U[i], atol=ROUND_TRIP_TOL)


def test_non_symmetric_network_gets_the_honest_answer():
    rng = np.random.default_rng(11)
    wts = _monotone_weights(rng, 5, 7, 2, skew=0.5)
    res = to_qp(wts)
    assert res.status == Conversion.NEAREST
    obs = res.obstruction
    assert obs is not None and obs.kind in ("sign", "cycle")
    A = np.eye(5) - wts.W
    if obs.kind == "sign":
        i, j = obs.rows
        assert A[i, j] * A[j, i] <= 0
    else:                                                      # the certificate: ratios around a cycle ≠ 1
        cyc = list(obs.rows)
        prod = np.prod([A[a, b] / A[b, a] for a, b in zip(cyc, cyc[1:] + cyc[:1], strict=True)])
        assert abs(prod - 1.0) > tol("nonzero")
    assert "no MPC-like QP" in str(res)
    assert res.residual > tol("visible")  # the mismatch is reported, not hidden
    # the QP is exactly the QP of the nearest MPC-like network, which keeps Y, b, W_f, Y_f
    rebuilt = res.network()
    np.testing.assert_allclose(rebuilt.W, res.W_nearest, atol=tol("same_math"))
    np.testing.assert_allclose(rebuilt.W_f, wts.W_f, atol=tol("same_math"))
    np.testing.assert_allclose(rebuilt.Y, wts.Y, atol=tol("same_math"))
    assert abs(np.linalg.norm(res.W_nearest - wts.W) / np.linalg.norm(A) - res.residual) < tol("roundoff")
    with pytest.raises(ProblemDefinitionError, match="no MPC-like QP"):
        to_qp(wts, method="algebraic")


def test_obstructions_kernel_and_not_psd():
    rng = np.random.default_rng(5)
    # m > n_U but I - W of full rank: W_f v = 0 while (I - W) v ≠ 0
    wts = _monotone_weights(rng, 5, 3, 2)
    res = to_qp(wts)
    assert res.status == Conversion.NEAREST and res.obstruction.kind == "kernel"
    v = res.obstruction.vector
    # v is an SVD null vector of W_f (1e-9: seen 1.4e-16), and not one of I - W
    assert np.linalg.norm(wts.W_f @ v) < 1e-9 and np.linalg.norm((np.eye(5) - wts.W) @ v) > tol("visible")
    # symmetric I - W with a negative eigenvalue
    S = np.diag([2.0, 1.0, 1.0]) + np.array([[0, 1.6, 0], [1.6, 0, 0.1], [0, 0.1, 0]])
    bad = ImplicitWeights(np.eye(3) - S, np.ones((3, 1)), np.zeros(3), rng.normal(size=(4, 3)), np.ones((4, 1)))
    res = to_qp(bad)
    assert res.obstruction.kind == "not-psd"
    v = res.obstruction.vector
    assert v @ (res.d[:, None] * S) @ v < 0 or v @ S @ v < 0


def test_output_bias_is_an_extra_parameter():
    rng = np.random.default_rng(2)
    base = _monotone_weights(rng, 4, 5, 2)
    bias = rng.normal(size=5)
    wts = ImplicitWeights(base.W, base.Y, base.b, base.W_f, base.Y_f, bias)
    res = to_qp(wts)
    assert res.exact and res.state_augmented and res.qp.n_x == 3
    X = rng.normal(size=(10, 2))
    sols = _brute_force_fixed_points(wts.W, wts.Y, wts.b, X)
    U_net = wts.output(np.array([s[0] for s in sols]), X)
    U_qp = res.network().solve(np.hstack([X, np.ones((10, 1))])).U
    np.testing.assert_allclose(U_qp, U_net, atol=ROUND_TRIP_TOL)


def test_input_errors_name_the_problem():
    with pytest.raises(ShapeError, match=r"W_f: expected shape \(n_U, m\) = \(n_U, 2\), got \(3, 3\)"):
        ImplicitWeights(np.eye(2), np.ones((2, 1)), np.zeros(2), np.ones((3, 3)), np.ones((3, 1)))
    with pytest.raises(ProblemDefinitionError, match="ImplicitNetwork or ImplicitWeights"):
        to_qp(np.eye(2))
    with pytest.raises(ProblemDefinitionError, match="method"):
        to_qp(mpc2nn.compile(PROBLEMS["drummond2024_corrected"]()), method="magic")
    net = mpc2nn.compile(PROBLEMS["drummond2024_corrected"]())
    with pytest.raises(ShapeError, match=r"N·n_u = 5·1 = 5"):
        to_mpc(net, net.qp.problem.A, net.qp.problem.B, 5)


def test_import_mpc2nn_does_not_import_cvxpy():
    code = "import sys, mpc2nn, mpc2nn.converse; print('cvxpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# --------------------------------------------------------------------------
# to_mpc
# --------------------------------------------------------------------------
@pytest.mark.parametrize("name", [n for n in PROBLEMS if n != "drummond2024_published"])
def test_to_mpc_recovers_an_mpc_with_the_same_law(name):
    prob = PROBLEMS[name]()
    net = mpc2nn.compile(prob)
    rec = to_mpc(net, prob.A, prob.B, prob.horizon, n_samples=25, seed=1)
    assert rec.status == Conversion.EXACT, str(rec)
    assert rec.problem is not None
    assert rec.max_error <= TO_MPC_TOL and rec.feasibility_agreement == 1.0
    assert np.linalg.eigvalsh(rec.R)[0] >= 1 - 1e-6  # normalisation R ⪰ I, up to 1e-6 (seen: λ_min(R) >= 1.0003)
    # Q, P ⪰ 0 up to eigvalsh's round-off, relative to their largest entry (seen λ_min / max|Q| >= 9e-17: the
    # quadcopter's recovered Q is singular)
    assert np.linalg.eigvalsh(rec.Q)[0] >= -1e-9 * np.abs(rec.Q).max()
    assert np.linalg.eigvalsh(rec.P)[0] >= -1e-9 * np.abs(rec.P).max()
    # (Q, R, P) need not be the original weights (e.g. drummond2024_corrected has a family of (Q, P) with the
    # same condensed cost), but the condensed cost is the original one up to one positive factor
    qp0 = mpc2nn.condense(prob)
    s = rec.qp.H[0, 0] / qp0.H[0, 0]
    np.testing.assert_allclose(rec.qp.H, s * qp0.H, atol=TO_MPC_TOL * s * np.abs(qp0.H).max())
    np.testing.assert_allclose(rec.qp.F, s * qp0.F, atol=TO_MPC_TOL * s * np.abs(qp0.F).max())
    # the constraints are read back as the original bounds
    np.testing.assert_allclose(rec.problem.u_max, prob.u_max, rtol=TO_MPC_TOL)
    np.testing.assert_allclose(rec.problem.u_min, prob.u_min, rtol=TO_MPC_TOL)
    np.testing.assert_allclose(rec.problem.x_max, prob.x_max, rtol=TO_MPC_TOL)
    np.testing.assert_allclose(rec.problem.x_min, prob.x_min, rtol=TO_MPC_TOL)
    # and its own MPC law, on other states, is the network's
    X = _states(net.qp, 15, seed=9)
    ref, new = net.solve(X), mpc2nn.compile(rec.problem).solve(X)
    ok = ref.feasible
    np.testing.assert_array_equal(new.feasible, ok)
    assert np.abs(new.U[ok] - ref.U[ok]).max() <= TO_MPC_TOL * max(1.0, np.abs(ref.U[ok]).max())


def test_to_mpc_is_honest_on_the_published_example():
    """The authors' QP has an indefinite Q and a truncated linear term: no MPC with Q ⪰ 0 reproduces it."""
    qp = PROBLEMS["drummond2024_published"]()
    net = mpc2nn.compile(qp, alpha=1.0)
    A, B = np.array([[4 / 3, -2 / 3], [1.0, 0.0]]), np.array([[0.0], [1.0]])
    rec = to_mpc(net, A, B, 10, n_samples=20)
    assert rec.status == Conversion.APPROXIMATE
    assert rec.max_error > tol("visible") and rec.gain_residual > tol("visible")
    assert "does NOT reproduce" in rec.message


# --------------------------------------------------------------------------
# ReLU approximations of other activations
# --------------------------------------------------------------------------
@pytest.mark.parametrize("act", ["tanh", "sigmoid"])
def test_relu_approximation_error_falls_with_pieces_and_matches_the_bound(act):
    errs = []
    dense = np.linspace(-4.0, 4.0, 200_001)
    for pieces in (2, 4, 8, 16, 32):
        ap = relu_approximation(act, (-4.0, 4.0), pieces)
        true_err = np.abs(ap(dense) - ap.target(dense)).max()
        assert ap.observed_error <= ap.max_error <= ap.a_priori_error * (1 + tol("roundoff"))
        assert true_err <= ap.max_error + tol("roundoff")  # the stated bound holds (+ roundoff of the sum)
        assert ap.max_error <= 1.01 * true_err + 1e-15  # and is tight: within 1 % (1e-15: a floor; errors are >= 7e-4)
        errs.append(ap.max_error)
        outside = np.concatenate([np.linspace(-50, -4, 1000), np.linspace(4, 50, 1000)])
        assert np.abs(ap(outside) - ap.target(outside)).max() <= ap.tail_error + tol("roundoff")
        assert ap.n_relu <= pieces + 2
    assert all(b < a for a, b in zip(errs, errs[1:], strict=False))
    assert errs[-2] / errs[-1] > 3.5                                # O(h²): halving h quarters the error


@pytest.mark.parametrize("act", ["hardtanh", "leaky_relu", "relu"])
def test_piecewise_linear_activations_are_exact(act):
    ap = relu_approximation(act, negative_slope=0.1) if act == "leaky_relu" else relu_approximation(act)
    z = np.linspace(-10, 10, 10_001)
    assert ap.exact and ap.global_error == 0.0
    np.testing.assert_allclose(ap(z), ap.target(z), atol=tol("few_ulps"))
    with pytest.raises(ProblemDefinitionError, match="piecewise linear"):
        relu_approximation(act, (-1, 1), 4)


def test_relu_approximation_argument_errors():
    with pytest.raises(ProblemDefinitionError, match="activation"):
        relu_approximation("softplus", (-1, 1), 3)
    with pytest.raises(ProblemDefinitionError, match="interval"):
        relu_approximation("tanh", (1, -1), 3)
    with pytest.raises(ProblemDefinitionError, match="pieces"):
        relu_approximation("tanh", (-1, 1), 0)


def _iterate(W, c, act, n=400):
    y = np.zeros_like(c)
    for _ in range(n):
        y = act(y) @ W.T + c
    return y


@pytest.mark.parametrize("act, pieces", [("tanh", 16), ("sigmoid", 8), ("hardtanh", None)])
def test_widened_relu_network_reproduces_the_approximated_network(act, pieces):
    rng = np.random.default_rng(4)
    m, n_U, n_x = 4, 3, 2
    W = rng.normal(size=(m, m))
    W *= 0.6 / np.abs(W).sum(axis=1).max()                         # ‖W‖∞ = 0.6: a contraction
    wts = ImplicitWeights(W, rng.normal(size=(m, n_x)), rng.normal(size=m), rng.normal(size=(n_U, m)),
                          rng.normal(size=(n_U, n_x)))
    ap = relu_approximation(act, (-4.0, 4.0), pieces) if pieces else relu_approximation(act)
    wide = widen(wts, ap)
    assert wide.weights.m == m * ap.n_relu
    X = rng.normal(size=(30, n_x))
    c = X @ wts.Y.T + wts.b
    y_tilde = _iterate(W, c, ap)                                    # fixed point of the φ̃-network
    z = wide.z_from_y(y_tilde)
    assert wide.weights.fixed_point_residual(z, X).max() < tol("roundoff")  # exactly a fixed point of the ReLU network
    np.testing.assert_allclose(wide.y_from_z(z), y_tilde, atol=tol("roundoff"))
    U_tilde = wide.weights.output(z, X)
    np.testing.assert_allclose(U_tilde, ap(y_tilde) @ wts.W_f.T + X @ wts.Y_f.T, atol=tol("roundoff"))
    y_true = _iterate(W, c, ap.target)                              # fixed point of the original network
    U_true = ap.target(y_true) @ wts.W_f.T + X @ wts.Y_f.T
    assert wide.output_error_bound is not None
    assert np.abs(U_true - U_tilde).max() <= wide.output_error_bound + tol("roundoff")
    if ap.exact:
        # exact activation: both are 400 steps of the same contraction (rate 0.6); 1e-10, seen 2.7e-15
        np.testing.assert_allclose(U_tilde, U_true, atol=1e-10)


def test_to_qp_applies_to_widened_networks_and_says_why_they_are_not_mpc_like():
    """Bounded activations need ReLU terms of both monotonicities, so no positive D symmetrises I - Ŵ."""
    base = mpc2nn.compile(PROBLEMS["drummond2024_corrected"]())
    for ap, kind in [(relu_approximation("hardtanh"), "sign"), (relu_approximation("tanh", (-3, 3), 6), "sign"),
                     (relu_approximation("leaky_relu"), "not-psd")]:
        wide = widen(base, ap)
        res = to_qp(wide.weights)
        assert res.status == Conversion.NEAREST and res.obstruction.kind == kind
        assert res.qp.m == wide.weights.m and res.residual > 0.1  # far from MPC-like, not a near miss
    # the identity "activation" widens to a network that is still MPC-like
    same = widen(base, relu_approximation("relu"))
    assert to_qp(same.weights).status == Conversion.EXACT


# --------------------------------------------------------------------------
# example
# --------------------------------------------------------------------------
def test_example_runs(tmp_path):
    root = Path(__file__).resolve().parents[1]
    script = root / "examples" / "converse.py"
    # the checkout's package, not whichever one the interpreter has installed (a script's folder, not the
    # current one, heads sys.path)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))}
    out = subprocess.run([sys.executable, str(script), "--small", "--output", str(tmp_path)],
                         capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    pngs = sorted(p.name for p in tmp_path.glob("*.png"))
    assert pngs == ["converse_closed_loop.png", "converse_random_networks.png", "converse_relu_approximation.png",
                    "converse_round_trip_errors.png"]
    assert "no MPC-like QP" in out.stdout
