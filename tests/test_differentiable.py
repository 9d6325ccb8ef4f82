"""The differentiable stage: MPCLayer and ImplicitLayer.

References are independent of the code under test: :func:`mpc2nn.condense` (numpy) for the
torch condensation, central finite differences of DAQP solutions (an exact dual active-set
solver) and of the forward pass itself (``torch.autograd.gradcheck``) for the gradients,
:func:`mpc2nn.converse.to_qp` plus a fresh compile for the round trip of the DEQ view.
States for finite differences are kept away from active-set switches (their separation
from a switch, reported by the layer, is checked, and so is the active set at θ ± h).
"""
import numpy as np
import pytest
from tolerances import tol

import mpc2nn

torch = pytest.importorskip("torch")
from mpc2nn.differentiable import (  # noqa: E402
    ACTIVE_TOL,
    ImplicitLayer,
    LCPStructureError,
    MPCLayer,
    TorchCondensation,
    check_structure,
    dare,
    lyapunov,
)

F64 = torch.float64


def random_problem(seed, *, n_x=2, n_u=1, N=3, unstable=False, state_bounds=True, P="dare", **kw):
    """A small random MPC problem: spectral radius 0.8 (stable) or 1.25, input bounds, maybe state bounds."""
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(n_x, n_x))
    A *= (1.25 if unstable else 0.8) / np.abs(np.linalg.eigvals(A)).max()
    B = rng.normal(size=(n_x, n_u))
    Lq, Lr = rng.normal(size=(n_x, n_x)), rng.normal(size=(n_u, n_u))
    bounds = dict(u_min=-rng.uniform(0.3, 1.0, n_u), u_max=rng.uniform(0.3, 1.0, n_u))
    if state_bounds:
        bounds.update(x_min=-rng.uniform(1.5, 3.0, n_x), x_max=rng.uniform(1.5, 3.0, n_x))
    box = (-2 * np.ones(n_x), 2 * np.ones(n_x))
    return mpc2nn.MPCProblem(A, B, Lq @ Lq.T + 0.1 * np.eye(n_x), Lr @ Lr.T + 0.2 * np.eye(n_u), N, P=P,
                             **bounds, **kw, name=f"random {seed}", sample_box=box)


def interior_states(layer, theta, n, *, sep=1e-3, active=True):
    """Up to ``n`` rows of ``theta`` with a solution, ``separation > sep`` and (``active``) a strongly active row."""
    layer(torch.as_tensor(theta, dtype=F64))
    r = layer.last
    keep = r.feasible & (r.separation > sep)
    if active:
        keep &= r.strongly_active.any(axis=1)
    return theta[keep][:n]


def thetas(qp, n, seed, scale=1.0):
    """``n`` random parameter vectors: states from the sample box, other parts of θ small."""
    rng = np.random.default_rng(seed)
    lo, hi = qp.sample_box if qp.sample_box is not None else (-np.ones(qp.n_x), np.ones(qp.n_x))
    X = np.zeros((n, qp.n_theta))
    X[:, :qp.n_x] = lo + (hi - lo) * rng.random((n, qp.n_x))
    X[:, qp.n_x:] = scale * rng.uniform(-0.3, 0.3, (n, qp.n_theta - qp.n_x))
    return X


FORMULATIONS = {
    "soft": dict(soft_state_penalty=(1.0, 4.0)),
    "rates": dict(du_min=[-0.3], du_max=[0.25], du_weight=[[0.5]]),
    "tracking": dict(tracking=True),
    "blocking": dict(move_blocking=(1, 2)),
    "stage+terminal": dict(constraints=[(np.array([[1.0, 0.5]]), np.array([[1.0]]), np.array([1.5]))],
                           terminal_constraint=(np.vstack([np.eye(2), -np.eye(2)]), 2.5 * np.ones(4))),
}


# --- the torch condensation ---------------------------------------------------------
def condensation_error(problem) -> float:
    ref = mpc2nn.condense(problem) if isinstance(problem, mpc2nn.MPCProblem) else problem
    got = TorchCondensation(problem)().to_condensed()
    err = 0.0
    for k in ("H", "F", "G", "w", "E"):
        a, b = getattr(got, k), getattr(ref, k)
        assert a.shape == b.shape, k
        err = max(err, np.abs(a - b).max(initial=0.0) / max(1.0, np.abs(b).max(initial=0.0)))
    assert (got.output_map is None) == (ref.output_map is None)
    if ref.output_map is not None:
        err = max(err, np.abs(got.output_map - ref.output_map).max())
    assert (got.state_only is None) == (ref.state_only is None)
    if ref.state_only is not None:
        err = max(err, max(np.abs(x - y).max(initial=0.0) for x, y in zip(got.state_only, ref.state_only, strict=True)))
    assert got.row_labels == ref.row_labels and got.parameter_sizes == ref.parameter_sizes
    assert got.n_slack == ref.n_slack and got.slack_shift == pytest.approx(ref.slack_shift, rel=1e-15)
    return err


def test_torch_condensation_equals_condense_on_public_problems(public_problem):
    assert condensation_error(public_problem) <= tol("torch_condense")


@pytest.mark.parametrize("name", sorted(FORMULATIONS) + ["all on the quadcopter", "soft masses tracking"])
def test_torch_condensation_equals_condense_on_formulations(name):
    if name == "all on the quadcopter":
        prob = mpc2nn.systems.quadcopter().replace(tracking=True, du_min=-0.2 * np.ones(4), du_max=0.2 * np.ones(4),
                                                   du_weight=np.eye(4), move_blocking=(1, 1, 2, 3, 3))
    elif name == "soft masses tracking":
        prob = mpc2nn.systems.oscillating_masses().replace(soft_state_penalty=(3.0, 10.0), tracking=True)
    else:
        prob = mpc2nn.systems.double_integrator().replace(horizon=3, **FORMULATIONS[name])
    assert condensation_error(prob) <= tol("torch_condense")


@pytest.mark.parametrize("seed", range(4))
def test_torch_condensation_equals_condense_on_random_problems(seed):
    """Stable and unstable, 2-12 states, with and without state constraints, stage rows on x_0 alone."""
    n_x = [2, 5, 12, 3][seed]
    prob = random_problem(seed, n_x=n_x, n_u=1 + seed % 2, N=4, unstable=seed % 2 == 1, state_bounds=seed != 2,
                          P=["dare", "dare", np.eye(n_x), "dare"][seed])
    if seed == 3:  # a stage constraint on the state alone (kept apart at k = 0) and a soft version
        prob = prob.replace(constraints=[(np.eye(3)[:1], np.zeros((1, 2)), np.array([1.5]))])
        assert mpc2nn.condense(prob).state_only is not None
        assert condensation_error(prob.replace(soft_state_penalty=2.0)) <= tol("torch_condense")
    assert condensation_error(prob) <= tol("torch_condense")


def test_condensation_refuses_unknown_data_and_changed_bounds():
    cond = TorchCondensation(mpc2nn.systems.double_integrator())
    with pytest.raises(mpc2nn.ProblemDefinitionError, match="unknown name"):
        cond(S=torch.eye(2))
    with pytest.raises(mpc2nn.ProblemDefinitionError, match="which bounds are finite"):
        cond(u_max=torch.tensor([np.inf], dtype=F64))
    with pytest.raises(mpc2nn.ShapeError, match="expected shape"):
        cond(Q=torch.eye(3, dtype=F64))


# --- gradients: gradcheck ----------------------------------------------------------------
GRADCHECK = dict(eps=1e-6, atol=tol("gradcheck_atol"), rtol=tol("gradcheck_rtol"))


def check_all_gradients(prob, X):
    layer = MPCLayer(prob)
    th = torch.tensor(X, dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: layer(t), (th,), **GRADCHECK)
    for name in layer.names:
        d = torch.tensor(layer.condensation.defaults[name], dtype=F64, requires_grad=True)
        assert torch.autograd.gradcheck(lambda v, name=name: layer(th.detach(), **{name: v}), (d,), **GRADCHECK), name
    return layer


@pytest.mark.parametrize("seed", range(3))
def test_gradcheck_theta_and_every_parameter_on_random_problems(seed):
    prob = random_problem(10 + seed, n_x=2 + seed % 2, n_u=1, N=3, unstable=seed == 1, state_bounds=seed != 2)
    layer = MPCLayer(prob)
    X = interior_states(layer, thetas(layer.reference, 200, seed, 1.0), 3)
    assert len(X) == 3
    check_all_gradients(prob, X)


@pytest.mark.parametrize("name", sorted(FORMULATIONS) + ["lyapunov terminal weight", "QP given directly"])
def test_gradcheck_on_the_formulations(name):
    if name == "lyapunov terminal weight":
        prob = mpc2nn.systems.drummond2024("corrected").replace(horizon=3, u_min=[-2.0], u_max=[2.0])
        scale = 1.0
    elif name == "QP given directly":
        prob, scale = mpc2nn.systems.drummond2024("published"), 1.0
    else:
        prob = random_problem(3, N=3, **FORMULATIONS[name])
        scale = 1.0
    layer = MPCLayer(prob)
    X = interior_states(layer, thetas(layer.reference, 300, 1, scale), 3)
    assert len(X) == 3
    layer = check_all_gradients(prob, X)
    if name == "QP given directly":
        assert layer.names == ("H", "F", "G", "w", "E")


def test_gradcheck_riccati_and_lyapunov():
    rng = np.random.default_rng(0)
    A = torch.tensor(rng.normal(size=(3, 3)) * 0.5, dtype=F64, requires_grad=True)
    B = torch.tensor(rng.normal(size=(3, 2)), dtype=F64, requires_grad=True)
    Q = torch.tensor(np.eye(3) + 0.1, dtype=F64, requires_grad=True)
    R = torch.tensor(np.eye(2), dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(dare, (A, B, Q, R), **GRADCHECK)
    assert torch.autograd.gradcheck(lambda a, q: lyapunov(0.5 * a, q), (A, Q), **GRADCHECK)
    # the values are scipy's, as MPCProblem computes them
    p = mpc2nn.MPCProblem(A.detach().numpy(), B.detach().numpy(), Q.detach().numpy(), R.detach().numpy(), 3)
    assert np.abs(dare(A, B, Q, R).detach().numpy() - p.P).max() <= 1e-12 * np.abs(p.P).max()


# --- gradients: finite differences of DAQP solutions -----------------------------------
def daqp_jacobian(qp, X, h):
    """Central differences of DAQP's U in each θ entry: (B, n_U, n_θ)."""
    J = np.zeros((len(X), qp.n_U, qp.n_theta))
    for j in range(qp.n_theta):
        e = np.zeros(qp.n_theta)
        e[j] = h
        up, dn = mpc2nn.solve_daqp(qp, X + e), mpc2nn.solve_daqp(qp, X - e)
        assert up.feasible.all() and dn.feasible.all()
        J[:, :, j] = (up.U - dn.U) / (2 * h)
    return J


def layer_jacobian(layer, X):
    th = torch.tensor(X, dtype=F64, requires_grad=True)
    U = layer(th)
    J = np.zeros((len(X), U.shape[1], X.shape[1]))
    for i in range(U.shape[1]):
        (g,) = torch.autograd.grad(U[:, i].sum(), th, retain_graph=True)
        J[:, i] = g.numpy()
    return J


@pytest.mark.parametrize("name", ["double_integrator", "quadcopter", "rates+tracking", "soft"])
def test_theta_jacobian_matches_finite_differences_of_daqp(name):
    pytest.importorskip("daqp")
    if name in ("double_integrator", "quadcopter"):
        prob = mpc2nn.systems.all_problems()[name]()
    elif name == "soft":
        prob = mpc2nn.systems.double_integrator().replace(soft_state_penalty=(1.0, 5.0), horizon=8)
    else:
        prob = mpc2nn.systems.double_integrator().replace(horizon=8, tracking=True, du_min=[-0.4], du_max=[0.4])
    layer = MPCLayer(prob)
    qp = layer.reference
    X = interior_states(layer, thetas(qp, 400, 2), 8, sep=1e-3)
    assert len(X) >= 4
    h = 1e-5
    J = layer_jacobian(layer, X)
    active = layer.last.strongly_active
    J_fd = daqp_jacobian(qp, X, h)
    for j in range(qp.n_theta):  # the finite differences stay on the active set of θ
        for s in (+1, -1):
            layer(torch.tensor(X + s * h * np.eye(qp.n_theta)[j], dtype=F64))
            assert np.array_equal(layer.last.strongly_active, active)
    rel = np.abs(J - J_fd).max(axis=(1, 2)) / np.abs(J_fd).max(axis=(1, 2))
    assert rel.max() <= tol("fd_daqp"), rel


@pytest.mark.parametrize("name", ["Q", "R", "A", "B", "x_max", "u_min"])
def test_data_gradient_matches_finite_differences_of_daqp(name):
    """d(gᵀU)/d(data) against fourth-order central differences of DAQP on the re-condensed problem (P follows
    the DARE)."""
    pytest.importorskip("daqp")
    prob = mpc2nn.systems.double_integrator().replace(horizon=6)
    layer = MPCLayer(prob, learn=(name,))
    X = interior_states(layer, thetas(layer.reference, 300, 3), 5, sep=1e-3)
    rng = np.random.default_rng(0)
    g = rng.normal(size=(len(X), layer.reference.n_U))
    (layer(torch.tensor(X, dtype=F64)) * torch.tensor(g)).sum().backward()
    grad = layer.learned[name].grad.numpy()
    base = np.asarray(getattr(prob, name), float)
    fd = np.zeros_like(base)
    h = 1e-3 * np.abs(base[np.isfinite(base)]).max()  # fourth-order differences: truncation ~h⁴, rounding ~1e-12/h
    for idx in np.ndindex(base.shape):
        d = np.zeros_like(base)
        d[idx] = h
        if name in ("Q", "R"):  # keep the weight symmetric: d/dQ_ij + d/dQ_ji
            d = d + d.T - np.diag(np.diag(d))
        f = {s: (mpc2nn.solve_daqp(prob.replace(**{name: base + s * d}), X).U * g).sum() for s in (-2, -1, 1, 2)}
        fd[idx] = (f[-2] - 8 * f[-1] + 8 * f[1] - f[2]) / (12 * h)
    got = grad + grad.T - np.diag(np.diag(grad)) if name in ("Q", "R") else grad
    assert np.abs(got - fd).max() <= tol("fd_daqp") * np.abs(fd).max(), (got, fd)


# --- infeasible samples, weak rows, degenerate active sets ---------------------------------
def test_infeasible_samples_do_not_touch_the_other_gradients():
    prob = mpc2nn.systems.double_integrator().replace(horizon=8)
    net = mpc2nn.compile(prob)
    good = mpc2nn.sample_states(prob, 4, seed=1)
    bad = mpc2nn.sample_states(prob, 2, seed=1, feasible=False)
    X = np.vstack([good[:2], bad[:1], good[2:], bad[1:], [[np.nan, 0.0]]])
    assert list(net.solve(X).feasible) == [True, True, False, True, True, False, False]
    outs = {}
    for which, Xb in (("mixed", X), ("feasible only", good)):
        layer = MPCLayer(prob, learn=("Q",))
        th = torch.tensor(Xb, dtype=F64, requires_grad=True)
        U = layer(th)
        (U ** 2).sum().backward()  # NaN loss: the infeasible rows are NaN, as the layer documents
        outs[which] = (th.grad.clone(), layer.learned["Q"].grad.clone(), U.detach(), layer.last)
    g_mix, q_mix, U_mix, last = outs["mixed"]
    g_ok, q_ok, U_ok, _ = outs["feasible only"]
    ok = last.feasible
    assert list(last.status[~ok]) == ["infeasible", "infeasible", "invalid"]
    assert torch.isnan(U_mix[~ok]).all() and not torch.isnan(U_mix[ok]).any()
    assert torch.isfinite(g_mix).all() and torch.isfinite(q_mix).all()
    assert (g_mix[~ok] == 0).all()
    assert torch.allclose(g_mix[ok], g_ok, rtol=1e-12, atol=1e-12) and torch.allclose(q_mix, q_ok, rtol=1e-12)
    # a fill value keeps the loss finite too
    layer = MPCLayer(prob, fill=0.0)
    U = layer(torch.tensor(X, dtype=F64))
    assert (U[~torch.tensor(ok)] == 0).all()


def test_weakly_active_rows_are_reported_with_the_one_sided_derivative():
    """x⁺ = x + u, N = 1, Q = R = P = 1, u <= 1: u* = min(1, -x/2), the bound is weakly active at x = -2."""
    prob = mpc2nn.MPCProblem([[1.0]], [[1.0]], [[1.0]], [[1.0]], 1, P=[[1.0]], u_max=[1.0])
    layer = MPCLayer(prob)
    th = torch.tensor([[-2.0], [-1.0], [-3.0]], dtype=F64, requires_grad=True)
    U = layer(th)
    U.sum().backward()
    assert U.detach().numpy().ravel() == pytest.approx([1.0, 0.5, 1.0], rel=1e-15)
    assert layer.last.weakly_active.tolist() == [True, False, False]
    assert layer.last.weak_rows[0].tolist() == [True] and layer.last.separation[0] <= ACTIVE_TOL
    # the derivative of the piece where the row is inactive: right-sided, not the left one (0)
    assert th.grad.numpy().ravel() == pytest.approx([-0.5, -0.5, 0.0], abs=1e-15)
    h = 1e-6
    right = (layer(torch.tensor([[-2.0 + h]], dtype=F64)) - 1.0).item() / h
    left = (1.0 - layer(torch.tensor([[-2.0 - h]], dtype=F64))).item() / h
    assert right == pytest.approx(-0.5, rel=1e-9) and left == pytest.approx(0.0, abs=1e-12)


def test_degenerate_active_set_uses_least_norm_multipliers():
    """min ½z² + qz s.t. z <= 1, 2z <= 2 at q = -3: both rows active and dependent, multipliers (1, 0.5).

    The exact solver keeps its active rows independent, so this comes from the backward pass's own
    functions: the pseudo-inverse gives dz/dq = 0 (exact on both sides) and the derivative along the
    perturbations of h that keep the rows consistent (h = (t, 2t): dz/dt = 1).
    """
    from mpc2nn.differentiable._active_set import qp_plan, qp_solution

    H = torch.eye(1, dtype=F64, requires_grad=True)
    G = torch.tensor([[1.0], [2.0]], dtype=F64, requires_grad=True)
    q = torch.tensor([[-3.0]], dtype=F64, requires_grad=True)
    t = torch.tensor(1.0, dtype=F64, requires_grad=True)
    h = torch.stack([t, 2 * t])[None]
    strong, usable = np.array([[True, True]]), np.array([True])
    plan = qp_plan(H.detach(), G.detach(), strong, usable)
    assert plan.degenerate.tolist() == [True]
    z = qp_solution(H, q, G, h, torch.tensor([[1.0]], dtype=F64), torch.tensor([[1.0, 0.5]], dtype=F64), plan)
    z.sum().backward()
    assert q.grad.item() == pytest.approx(0.0, abs=1e-15) and t.grad.item() == pytest.approx(1.0, rel=1e-14)


# --- devices and dtypes ------------------------------------------------------------------------
def test_float32_in_float32_out_computed_in_float64():
    prob = mpc2nn.systems.double_integrator()
    layer = MPCLayer(prob)
    X = mpc2nn.sample_states(prob, 5, seed=4)
    th32 = torch.tensor(X, dtype=torch.float32, requires_grad=True)
    U32 = layer(th32)
    assert U32.dtype == torch.float32
    U64 = layer(torch.tensor(th32.detach().numpy(), dtype=F64))
    assert torch.allclose(U32.double(), U64, rtol=0, atol=1e-6)
    U32.sum().backward()
    assert th32.grad.dtype == torch.float32 and torch.isfinite(th32.grad).all()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_tensors_match_the_cpu():
    prob = mpc2nn.systems.double_integrator()
    X = mpc2nn.sample_states(prob, 50, seed=5)
    res = {}
    for dev in ("cpu", "cuda"):
        layer = MPCLayer(prob, learn=("Q", "R")).to(dev)
        th = torch.tensor(X, dtype=F64, device=dev, requires_grad=True)
        U = layer(th)
        assert U.device.type == dev
        (U ** 2).sum().backward()
        res[dev] = [U.detach().cpu(), th.grad.cpu(), layer.learned["Q"].grad.cpu()]
    for a, b in zip(res["cpu"], res["cuda"], strict=True):
        assert torch.allclose(a, b, rtol=1e-10, atol=1e-10)


# --- the DEQ view --------------------------------------------------------------------------------
def small_network():
    prob = mpc2nn.systems.double_integrator().replace(horizon=2)
    return prob, mpc2nn.compile(prob)


def test_implicit_layer_solves_exactly_and_passes_gradcheck():
    prob, net = small_network()
    layer = ImplicitLayer.from_network(net)
    X = interior_states(layer, mpc2nn.sample_states(prob, 100, seed=6), 3, sep=1e-3)
    assert len(X) == 3
    th = torch.tensor(X, dtype=F64, requires_grad=True)
    assert np.abs(layer(th).detach().numpy() - net.solve(X).U).max() <= tol("same_math")
    assert torch.autograd.gradcheck(lambda t: layer(t), (th,), **GRADCHECK)
    for k in ("Y", "b", "Y_f"):
        p = getattr(layer, k).detach().clone().requires_grad_()
        assert torch.autograd.gradcheck(
            lambda v, k=k: torch.func.functional_call(layer, {k: v}, (th.detach(),)), (p,), **GRADCHECK), k
    # W and W_f along directions that keep the LCP structure: W = I - diag(α)(S + P X P), W_f + X' P
    alpha = layer.alpha
    S0 = (torch.eye(layer.m, dtype=F64) - layer.W.detach()) / alpha[:, None]
    ev, V = torch.linalg.eigh(0.5 * (S0 + S0.T))
    Vr = V[:, ev > 1e-12 * ev[-1]]
    P = Vr @ Vr.T

    def with_W(X):
        W = torch.eye(layer.m, dtype=F64) - alpha[:, None] * (S0 + P @ (0.5 * (X + X.T)) @ P)
        return torch.func.functional_call(layer, {"W": W}, (th.detach(),))

    def with_W_f(X):
        return torch.func.functional_call(layer, {"W_f": layer.W_f.detach() + X @ P}, (th.detach(),))

    Xw = torch.zeros(layer.m, layer.m, dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(with_W, (Xw,), **GRADCHECK)
    Xf = torch.zeros(layer.W_f.shape, dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(with_W_f, (Xf,), **GRADCHECK)


def test_implicit_layer_refuses_weights_that_are_no_lcp_or_projects_them():
    prob, net = small_network()
    X = torch.tensor(mpc2nn.sample_states(prob, 10, seed=7), dtype=F64)
    rng = np.random.default_rng(0)
    W = net.W + 1e-3 * rng.normal(size=net.W.shape)
    assert not check_structure(W, net.W_f, net.alpha).valid
    layer = ImplicitLayer(W, net.Y, net.b, net.W_f, net.Y_f, alpha=net.alpha, n_u=1)
    with pytest.raises(LCPStructureError, match="project_"):
        layer(X)
    projecting = ImplicitLayer(W, net.Y, net.b, net.W_f, net.Y_f, alpha=net.alpha, n_u=1, on_invalid="project")
    U = projecting(X)
    assert projecting.projected == 1 and projecting.structure().valid and torch.isfinite(U).all()
    # the projection onto the (convex) set of symmetric PSD S moves W towards every member, the compiled one too
    dist = np.linalg.norm(projecting.W.detach().numpy() - net.W)
    assert dist < np.linalg.norm(W - net.W)


def test_deq_training_round_trip_through_to_qp():
    """Train the weights of a compiled network towards another MPC law, project after each step, read the QP."""
    from mpc2nn.converse import to_qp

    prob, net = small_network()
    layer = ImplicitLayer.from_network(net)
    expert = mpc2nn.compile(prob.replace(R=[[1.0]]))
    X = mpc2nn.sample_states(prob, 100, seed=8)
    X = X[expert.solve(X).feasible]
    Xt, Ut = torch.tensor(X, dtype=F64), torch.tensor(expert.solve(X).U, dtype=F64)
    opt = torch.optim.Adam(layer.parameters(), lr=2e-3)
    losses = []
    for _ in range(15):
        opt.zero_grad()
        U = layer(Xt)
        ok = torch.tensor(layer.last.feasible)
        loss = ((U[ok] - Ut[ok]) ** 2).mean()
        loss.backward()
        opt.step()
        assert layer.project_().mpc_like
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]
    res = to_qp(layer.weights())
    assert res.exact and res.residual <= tol("same_math")
    sol = res.network().solve(X)
    U = layer(Xt).detach().numpy()
    f = sol.feasible & layer.last.feasible
    assert f.mean() > 0.9 and np.abs(sol.U[f] - U[f]).max() <= tol("same_math")
    # without the projection the trained weights are no MPC-like network: to_qp says why and gives the nearest
    layer.W.data += 1e-4 * torch.randn_like(layer.W)
    assert not layer.structure().valid
    nearest = to_qp(layer.weights())
    assert nearest.status == "nearest" and nearest.obstruction is not None


def test_lazy_exports():
    assert mpc2nn.MPCLayer is MPCLayer and mpc2nn.ImplicitLayer is ImplicitLayer


def test_layer_takes_a_network_and_names_its_errors():
    prob = mpc2nn.systems.double_integrator()
    net = mpc2nn.compile(prob)
    layer = MPCLayer(net)
    X = mpc2nn.sample_states(prob, 3, seed=9)
    assert np.abs(layer(torch.tensor(X)).numpy() - net.solve(X).U).max() <= tol("same_math")
    assert layer(torch.tensor(X[0])).shape == (1, 20)  # a single θ is a batch of one
    with pytest.raises(mpc2nn.ShapeError, match=r"\(B, n_θ\) = \(B, 2\)"):
        layer(torch.zeros(3, 3, dtype=F64))
    with pytest.raises(mpc2nn.ProblemDefinitionError, match="learn: unknown"):
        MPCLayer(prob, learn=("S",))
    with pytest.raises(mpc2nn.ProblemDefinitionError, match="expected an MPCProblem"):
        MPCLayer("double integrator")
