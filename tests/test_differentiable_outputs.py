"""The differentiable stage on problems with outputs ``y = C x + D u`` (issue 18 follow-up).

References are independent of the code under test: :func:`mpc2nn.condense` (numpy) for the torch
condensation, at the problem's data and at other data (a problem rebuilt with ``replace``, whose
terminal weight numpy's DARE recomputes); DAQP (an exact dual active-set solver) for the forward
pass; central finite differences of DAQP solutions for the gradients, at states kept away from
active-set switches (the layer's separation, and the active set at θ ± h, are checked).
"""
import numpy as np
import pytest
from tolerances import tol

import mpc2nn

torch = pytest.importorskip("torch")
from mpc2nn.differentiable import MPCLayer, TorchCondensation, dare  # noqa: E402

F64 = torch.float64


def output_problem(seed, *, n_x=3, n_u=1, n_y=2, N=3, unstable=False, feed=(True, False), y_bounds=True,
                   state_bounds=True, weight=True, **kw):
    """A random problem with outputs: spectral radius 0.8 or 1.25, input bounds, maybe state bounds,
    ``n_y`` outputs (row ``i`` of ``D`` nonzero where ``feed[i]``), an output weight and output bounds.
    """
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(n_x, n_x))
    A *= (1.25 if unstable else 0.8) / np.abs(np.linalg.eigvals(A)).max()
    B = rng.normal(size=(n_x, n_u))
    Lq, Lr, Lw = rng.normal(size=(n_x, n_x)), rng.normal(size=(n_u, n_u)), rng.normal(size=(n_y, n_y))
    C = rng.normal(size=(n_y, n_x))
    D = rng.normal(size=(n_y, n_u)) * np.array(feed, float)[:, None]
    out = dict(C=C, D=D)
    if weight:
        out["output_weight"] = Lw @ Lw.T + 0.2 * np.eye(n_y)
    if y_bounds:
        out.update(y_min=-rng.uniform(1.5, 3.0, n_y), y_max=rng.uniform(1.5, 3.0, n_y))
    bounds = dict(u_min=-rng.uniform(0.3, 1.0, n_u), u_max=rng.uniform(0.3, 1.0, n_u))
    if state_bounds:
        bounds.update(x_min=-rng.uniform(2.0, 4.0, n_x), x_max=rng.uniform(2.0, 4.0, n_x))
    return mpc2nn.MPCProblem(A, B, 0.1 * (Lq @ Lq.T) + 0.1 * np.eye(n_x), Lr @ Lr.T + 0.2 * np.eye(n_u), N,
                             **bounds, **out, **kw, name=f"outputs {seed}",
                             sample_box=(-1.5 * np.ones(n_x), 1.5 * np.ones(n_x)))


#: The problems of the tests: (seed, keyword arguments of output_problem).
CASES = {
    "weight only, 2 states": (0, dict(n_x=2, n_y=1, feed=(False,), y_bounds=False)),
    "hard outputs, feedthrough, 3 states": (1, dict(n_x=3)),
    "hard outputs, unstable, 4 states, 2 inputs": (2, dict(n_x=4, n_u=2, unstable=True, feed=(True, True))),
    "soft outputs, unstable, 5 states": (3, dict(n_x=5, unstable=True, soft_output_penalty=(2.0, 30.0))),
    "soft outputs and states, 6 states": (4, dict(n_x=6, n_y=3, feed=(False, True, False),
                                                 soft_output_penalty=(2.0, 30.0), soft_state_penalty=(1.0, 8.0))),
    "y_ref tracking, 3 states": (5, dict(n_x=3, tracking=True)),
    "y_ref tracking, rates, blocking, lyapunov, 4 states": (
        6, dict(n_x=4, N=4, tracking=True, du_min=[-0.5], du_max=[0.5], du_weight=[[0.3]], move_blocking=(1, 1, 2),
                P="lyapunov")),
    "bounds without weight, stage and terminal rows, 2 states": (
        7, dict(n_x=2, weight=False, constraints=[(np.array([[1.0, -0.5]]), np.array([[0.5]]), np.array([2.0]))],
                terminal_constraint=(np.vstack([np.eye(2), -np.eye(2)]), 3.0 * np.ones(4)))),
    "soft penalties and nothing to soften, 2 states": (  # no slacks: z = U, T = I, as condense has it
        8, dict(n_x=2, y_bounds=False, state_bounds=False, soft_state_penalty=(1.0, 2.0),
                soft_output_penalty=(1.0, 2.0))),
}


def case(name):
    seed, kw = CASES[name]
    return output_problem(seed, **kw)


def condensation_error(got, ref) -> float:
    """Largest relative difference of H, F, G, w, E (each relative to max(1, its largest entry)); the
    structure (labels, layout, slacks, output map, state-only rows) must be the same."""
    assert got.row_labels == ref.row_labels and got.parameter_sizes == ref.parameter_sizes
    assert got.n_slack == ref.n_slack
    assert np.shape(got.slack_shift) == np.shape(ref.slack_shift)
    assert np.allclose(got.slack_shift, ref.slack_shift, rtol=tol("torch_condense"), atol=0)
    assert (got.output_map is None) == (ref.output_map is None)
    assert (got.state_only is None) == (ref.state_only is None)
    err = 0.0
    pairs = [(getattr(got, k), getattr(ref, k)) for k in ("H", "F", "G", "w", "E")]
    if ref.output_map is not None:
        pairs.append((got.output_map, ref.output_map))
    if ref.state_only is not None:
        pairs += list(zip(got.state_only, ref.state_only, strict=True))
    for a, b in pairs:
        assert a.shape == b.shape
        err = max(err, np.abs(a - b).max(initial=0.0) / max(1.0, np.abs(b).max(initial=0.0)))
    return err


def thetas(qp, n, seed):
    """``n`` parameter vectors: states from the sample box, the other parts of θ (u_prev, references) small."""
    rng = np.random.default_rng(seed)
    lo, hi = qp.sample_box
    X = rng.uniform(-0.5, 0.5, (n, qp.n_theta))
    X[:, :qp.n_x] = lo + (hi - lo) * rng.random((n, qp.n_x))
    return X


def interior_states(layer, X, n, *, sep=1e-3):
    """Up to ``n`` rows of ``X`` with a solution, a strongly active row and separation > sep from a switch."""
    layer(torch.as_tensor(X, dtype=F64))
    r = layer.last
    return X[r.feasible & (r.separation > sep) & r.strongly_active.any(axis=1)][:n]


# --- (1) the torch condensation equals numpy's --------------------------------------------------
@pytest.mark.parametrize("name", sorted(CASES))
def test_torch_condensation_equals_condense(name):
    prob = case(name)
    assert condensation_error(TorchCondensation(prob)().to_condensed(), mpc2nn.condense(prob)) <= tol("torch_condense")


@pytest.mark.parametrize("name", ["hard outputs, feedthrough, 3 states", "soft outputs and states, 6 states",
                                  "y_ref tracking, rates, blocking, lyapunov, 4 states"])
def test_torch_condensation_follows_the_output_data(name):
    """At other values of C, D, Q_y, the output bounds and penalties the torch QP is numpy's QP of the rebuilt
    problem (whose DARE or Lyapunov terminal weight numpy recomputes from the combined stage cost)."""
    prob = case(name)
    rng = np.random.default_rng(1)
    new = dict(C=prob.C + 0.3 * rng.normal(size=prob.C.shape), output_weight=2.0 * prob.output_weight,
               y_max=prob.y_max + 0.5)
    new["D"] = prob.D * (1.0 + rng.uniform(0.5, 1.0, prob.D.shape))  # keeps the zero rows zero (the structure)
    if prob.soft_output_penalty is not None:
        new["soft_output_penalty"] = (3.0, 11.0)
    data = {k: v for k, v in new.items() if k != "soft_output_penalty"}
    if "soft_output_penalty" in new:
        data.update(soft_output_quadratic=3.0, soft_output_linear=11.0)
    got = TorchCondensation(prob)(data).to_condensed()
    assert condensation_error(got, mpc2nn.condense(prob.replace(**new))) <= tol("torch_condense")


def test_dare_with_a_cross_weight_is_the_problems_terminal_weight():
    """MPCProblem's P with an output weight and feedthrough (scipy, with the cross term CᵀQ_yD) vs torch's dare;
    the gradients in all five arguments by gradcheck."""
    prob = case("hard outputs, unstable, 4 states, 2 inputs")
    W, C, D = prob.output_weight, prob.C, prob.D
    args = [torch.tensor(a, dtype=F64, requires_grad=True)
            for a in (prob.A, prob.B, prob.Q + C.T @ W @ C, prob.R + D.T @ W @ D, C.T @ W @ D)]
    P = dare(*args).detach().numpy()
    assert np.abs(P - prob.P).max() <= tol("torch_condense") * np.abs(prob.P).max()
    assert torch.autograd.gradcheck(dare, tuple(args), eps=1e-6, atol=tol("gradcheck_atol"),
                                    rtol=tol("gradcheck_rtol"))


# --- (2) the forward pass equals DAQP --------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(CASES))
def test_forward_equals_daqp(name):
    pytest.importorskip("daqp")
    prob = case(name)
    layer = MPCLayer(prob)
    qp = layer.reference
    X = thetas(qp, 40, 2)
    ref = mpc2nn.solve_daqp(qp, X)
    assert ref.feasible.sum() >= 10
    U = layer(torch.tensor(X, dtype=F64)).numpy()
    assert np.array_equal(layer.last.feasible, ref.feasible)
    f = ref.feasible
    assert np.abs(U[f] - ref.U[f]).max() <= tol("vs_daqp") * max(1.0, np.abs(ref.U[f]).max())


# --- (3) gradients: finite differences of DAQP ------------------------------------------------------
GRAD_CASES = ["y_ref tracking, 3 states", "soft outputs, unstable, 5 states",
              "hard outputs, unstable, 4 states, 2 inputs"]


@pytest.mark.parametrize("name", GRAD_CASES)
def test_theta_jacobian_matches_finite_differences_of_daqp(name):
    """dU/dθ (y_ref included where θ has it) against central differences of DAQP's U."""
    pytest.importorskip("daqp")
    prob = case(name)
    layer = MPCLayer(prob)
    qp = layer.reference
    X = interior_states(layer, thetas(qp, 200, 3), 4)
    assert len(X) >= 3
    th = torch.tensor(X, dtype=F64, requires_grad=True)
    U = layer(th)
    active = layer.last.strongly_active
    J = np.stack([torch.autograd.grad(U[:, i].sum(), th, retain_graph=True)[0].numpy() for i in range(U.shape[1])],
                 axis=1)
    h = 1e-5
    J_fd = np.zeros_like(J)
    for j in range(qp.n_theta):
        e = h * np.eye(qp.n_theta)[j]
        up, dn = mpc2nn.solve_daqp(qp, X + e), mpc2nn.solve_daqp(qp, X - e)
        assert up.feasible.all() and dn.feasible.all()
        J_fd[:, :, j] = (up.U - dn.U) / (2 * h)
        for s in (1, -1):  # the differences stay on the active set of θ
            layer(torch.tensor(X + s * e, dtype=F64))
            assert np.array_equal(layer.last.strongly_active, active)
    if "y_ref" in qp.layout.slices:
        assert np.abs(J_fd[:, :, qp.layout.slices["y_ref"]]).max() > 1e-3  # y_ref moves U: the check has teeth
    rel = np.abs(J - J_fd).max(axis=(1, 2)) / np.abs(J_fd).max(axis=(1, 2))
    assert rel.max() <= tol("fd_daqp"), rel


@pytest.mark.parametrize("name, field", [(n, "output_weight") for n in GRAD_CASES]
                         + [("soft outputs, unstable, 5 states", "C"), ("hard outputs, feedthrough, 3 states", "D")])
def test_output_data_gradient_matches_finite_differences_of_daqp(name, field):
    """d(gᵀU)/d(Q_y, C or D) against fourth-order central differences of DAQP on the rebuilt problem (whose
    DARE terminal weight follows the output weight)."""
    pytest.importorskip("daqp")
    prob = case(name)
    base = np.asarray(getattr(prob, field), float)
    # D of a problem with a zero row on a bounded output cannot be learned (test below): given per call, masked
    layer = MPCLayer(prob) if field == "D" else MPCLayer(prob, learn=(field,))
    X = interior_states(layer, thetas(layer.reference, 200, 4), 3)
    assert len(X) >= 2
    g = np.random.default_rng(0).normal(size=(len(X), layer.reference.n_U))
    V = torch.tensor(base, dtype=F64, requires_grad=True)
    extra = {"D": V * torch.tensor(base != 0, dtype=F64)} if field == "D" else {}
    (layer(torch.tensor(X, dtype=F64), **extra) * torch.tensor(g)).sum().backward()
    grad = V.grad.numpy() if field == "D" else layer.learned[field].grad.numpy()
    sym = field == "output_weight"
    h = 1e-3 * np.abs(base).max()  # fourth-order differences: truncation ~h⁴, rounding ~1e-12/h
    fd = np.zeros_like(base)
    for idx in np.ndindex(base.shape):
        if field == "D" and base[idx] == 0:
            continue  # a zero row of D of a bounded output is structure (its bounds' steps), not data
        d = np.zeros_like(base)
        d[idx] = h
        if sym:  # keep the weight symmetric: d/dW_ij + d/dW_ji
            d = d + d.T - np.diag(np.diag(d))
        f = {s: (mpc2nn.solve_daqp(prob.replace(**{field: base + s * d}), X).U * g).sum() for s in (-2, -1, 1, 2)}
        fd[idx] = (f[-2] - 8 * f[-1] + 8 * f[1] - f[2]) / (12 * h)
    got = grad + grad.T - np.diag(np.diag(grad)) if sym else grad
    assert np.abs(fd).max() > 1e-3
    assert np.abs(got - fd).max() <= tol("fd_daqp") * np.abs(fd).max(), (got, fd)


# --- (4) what the torch path cannot honour is refused by name ---------------------------------------
def test_output_weight_without_y_ref_is_refused():
    """A tracking problem with outputs but no output weight has no y_ref in θ: a learned or given weight could
    not track anything, so it is refused (at construction when learned)."""
    prob = case("bounds without weight, stage and terminal rows, 2 states").replace(tracking=True)
    assert "y_ref" not in mpc2nn.condense(prob).layout.slices
    with pytest.raises(mpc2nn.ProblemDefinitionError, match=r"output_weight: .*has no output reference y_ref"):
        MPCLayer(prob, learn=("output_weight",))
    layer = MPCLayer(prob)
    with pytest.raises(mpc2nn.ProblemDefinitionError, match="output_weight"):
        layer(torch.zeros(1, layer.n_theta, dtype=F64), output_weight=torch.eye(2, dtype=F64))
    # without tracking the weight is data like the others (the QP of the problem that has it)
    plain = case("bounds without weight, stage and terminal rows, 2 states")
    W = np.array([[2.0, 0.3], [0.3, 1.0]])
    got = TorchCondensation(plain)(output_weight=W).to_condensed()
    assert condensation_error(got, mpc2nn.condense(plain.replace(output_weight=W))) <= tol("torch_condense")


def test_d_rows_that_fix_the_bound_steps_are_refused():
    prob = case("hard outputs, feedthrough, 3 states")  # D row 0 nonzero, row 1 zero, both outputs bounded
    with pytest.raises(mpc2nn.ProblemDefinitionError, match=r"learn: D cannot be learned here: row 1"):
        MPCLayer(prob, learn=("D",))
    layer = MPCLayer(prob)
    theta = torch.zeros(1, layer.n_theta, dtype=F64)
    with pytest.raises(mpc2nn.ProblemDefinitionError, match=r"D\[1\]: row 1 of the problem's D is zero"):
        layer(theta, D=torch.ones(2, 1, dtype=F64))
    with pytest.raises(mpc2nn.ProblemDefinitionError, match=r"D\[0\]: row 0 of the problem's D is nonzero"):
        layer(theta, D=torch.zeros(2, 1, dtype=F64))


def test_rows_dropped_as_duplicates_must_stay_duplicates():
    """With C = I and output bounds equal to the state bounds, condense drops the output rows at k = 1..N as
    duplicates of the state rows; a C that separates them is refused instead of silently dropping them."""
    prob = mpc2nn.systems.double_integrator().replace(horizon=3)
    prob = prob.replace(C=np.eye(2), y_min=prob.x_min, y_max=prob.x_max)
    qp = mpc2nn.condense(prob)
    assert not any(lab.startswith("y_") for lab in qp.row_labels)
    cond = TorchCondensation(prob)
    assert condensation_error(cond().to_condensed(), qp) <= tol("torch_condense")
    C = torch.tensor([[1.0, 0.1], [0.0, 1.0]], dtype=F64)
    with pytest.raises(mpc2nn.ProblemDefinitionError, match=r"row 'y_max\[0\] at k=1' equals row 'x_max\[0\] at k=1'"):
        cond(C=C)


@pytest.mark.parametrize("name", ["soft outputs and states, 6 states",
                                  "y_ref tracking, rates, blocking, lyapunov, 4 states"])
def test_gradcheck_theta_and_every_datum(name):
    """torch.autograd.gradcheck in θ and in each datum (the output penalties ρ_q, ρ_l of the soft output rows
    included), at states away from active-set switches; the forward pass it differences is DAQP's (above)."""
    prob = case(name)
    layer = MPCLayer(prob)
    X = interior_states(layer, thetas(layer.reference, 200, 5), 2)
    assert len(X) == 2
    check = dict(eps=1e-6, atol=tol("gradcheck_atol"), rtol=tol("gradcheck_rtol"))
    th = torch.tensor(X, dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: layer(t), (th,), **check)
    assert {"C", "D", "output_weight", "y_min", "y_max"} <= set(layer.names)
    for datum in layer.names:
        v = torch.tensor(layer.condensation.defaults[datum], dtype=F64, requires_grad=True)
        if datum == "D":  # keep the zero rows of D zero: they are structure
            mask = torch.tensor(layer.condensation.defaults["D"] != 0, dtype=F64)
            assert torch.autograd.gradcheck(lambda d, m=mask: layer(th.detach(), D=d * m), (v,), **check)
            continue
        assert torch.autograd.gradcheck(lambda d, k=datum: layer(th.detach(), **{k: d}), (v,), **check), datum
