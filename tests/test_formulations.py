"""MPC formulations (soft state constraints, input rates, tracking, move blocking) against
an independent reference.

The reference (:class:`Reference`) is the MPC problem written out in cvxpy in the
states-and-inputs (sparse) form: explicit variables ``x_0..x_N`` and ``u_0..u_{N-1}``,
the dynamics as equality constraints, one slack variable per softened constraint row,
the move-blocking as equalities ``u_j = u_{start of block}``. It reads only the problem's
raw fields (A, B, Q, R, P, the bounds, the stage/terminal constraints, horizon, the
penalty, rate bounds and weight, tracking flag, blocks) and never touches mpc2nn's
condensation (no ``condense``, no H/F/G). The cost is the *full* MPC cost (the library
minimises half of it without the constants: the minimiser is the same, so the input
sequences U are compared, and costs are compared only through :func:`full_cost`, a
third, plain-numpy encoding of the same cost).

Solver: OSQP through cvxpy at eps_abs = eps_rel = 1e-10 with polishing (the issue's
"tested against OSQP"), compiled once per problem with cvxpy Parameters for
``x, u_prev, x_ref, u_ref`` and re-solved per state. OSQP is a first-order method;
with the exact-penalty weight ``rho_l = 1e4`` the problem is badly scaled, so the soft
cases (and one state of every case, for the reference's own sake) are also solved with
CLARABEL (interior point, tolerances 1e-10) and the two reference solvers must agree
before the library is compared to them.

Tolerance: ``TOL["acceptance"]`` (1e-6) on ``‖U_lib - U_ref‖∞``: the reference is
OSQP at 1e-10 (polished: KKT-exact to ~1e-10 on the active set it finds); 1e-6 leaves
room for OSQP's conditioning on the degenerate double-integrator duals (see
test_qp.py: 2e-7 seen on the condensed form) while still being 3-4 orders below the
input magnitudes (|u| ~ 0.1..2.4), so a wrong formulation (a missing row, a wrong
weight, a shifted block) cannot pass.
"""
from typing import NamedTuple

import numpy as np
import pytest
import scipy.linalg

import mpc2nn
from tolerances import TOL

cp = pytest.importorskip("cvxpy")
osqp = pytest.importorskip("osqp")

ACC = TOL["acceptance", "float64"]
#: how closely the two reference solvers (OSQP, CLARABEL) must agree with each other: CLARABEL's
#: U is the less accurate of the two (1.2e-7 from OSQP on the double integrator, where OSQP agrees
#: with the exact library solve to 4e-12), so they are held to the acceptance bound
REF_AGREE = TOL["acceptance", "float64"]

_OSQP_V1 = int(osqp.__version__.split(".")[0]) >= 1
OSQP_OPTS = dict(eps_abs=1e-10, eps_rel=1e-10, max_iter=100_000, verbose=False,
                 **({"polishing": True} if _OSQP_V1 else {"polish": True}))
CLARABEL_OPTS = dict(tol_gap_abs=1e-10, tol_gap_rel=1e-10, tol_feas=1e-10, tol_ktratio=1e-8, max_iter=400,
                     verbose=False)


# ---------------------------------------------------------------------------------------------
# the independent reference
def _soft_weights(prob):
    """``(rho_q, rho_l)`` or None, read from the raw field (a number means rho_l = 0)."""
    s = prob.soft_state_penalty
    if s is None:
        return None
    if np.ndim(s) == 0:
        return float(s), 0.0
    return float(s[0]), float(s[1])


def _stage_rows(prob):
    """Every stage-constraint row as (c_x, c_u, d) from the raw field (StageConstraint or tuple)."""
    rows = []
    for c in prob.constraints:
        if isinstance(c, (tuple, list)):
            C_x, C_u, d = (np.atleast_2d(np.asarray(a, float)) for a in c[:2]) + (np.asarray(c[2], float),)
        else:
            C_x, C_u, d = np.atleast_2d(c.C_x), np.atleast_2d(c.C_u), np.asarray(c.d, float)
        for i in range(C_x.shape[0]):
            rows.append((C_x[i], C_u[i], float(d[i])))
    return rows


def _terminal(prob):
    t = prob.terminal_constraint
    if t is None:
        return None
    if isinstance(t, (tuple, list)):
        return np.atleast_2d(np.asarray(t[0], float)), np.asarray(t[1], float)
    return np.atleast_2d(t.C), np.asarray(t.d, float)


def _uses_u_prev(prob):
    return bool(np.isfinite(np.asarray(prob.du_min, float)).any()
                or np.isfinite(np.asarray(prob.du_max, float)).any()
                or (prob.du_weight is not None and np.any(np.asarray(prob.du_weight) != 0)))


def _factor(M):
    """``L`` with ``L'L = M`` for a symmetric PSD M (cvxpy then sees ``sum_squares(L e)``, which stays
    DPP when ``e`` contains a Parameter, unlike ``quad_form``)."""
    w, V = np.linalg.eigh(0.5 * (M + M.T))
    keep = w > 1e-13 * max(1.0, float(np.abs(w).max()))
    return np.sqrt(w[keep])[:, None] * V[:, keep].T


def _sq(L, e):
    """``‖L e‖²`` (0 for a zero weight)."""
    return cp.sum_squares(L @ e) if L.shape[0] else 0


def _blocks(prob):
    N = prob.horizon
    return tuple(int(b) for b in prob.move_blocking) if prob.move_blocking is not None else (1,) * N


class Reference:
    """The MPC problem in cvxpy, states-and-inputs form (see the module docstring).

    ``hard=True`` ignores ``soft_state_penalty`` (the hard problem with the same data).
    """

    def __init__(self, prob, *, hard: bool = False):
        self.prob = prob
        A, B, Q, R, P = (np.asarray(getattr(prob, k), float) for k in "ABQRP")
        N, n_x, n_u = prob.horizon, A.shape[0], B.shape[1]
        self.N, self.n_x, self.n_u = N, n_x, n_u
        soft = None if hard else _soft_weights(prob)
        self.soft = soft
        self.uses_u_prev = _uses_u_prev(prob)
        self.tracking = bool(prob.tracking)

        self.x0 = cp.Parameter(n_x, name="x")
        self.u_prev = cp.Parameter(n_u, name="u_prev") if self.uses_u_prev else None
        self.x_ref = cp.Parameter(n_x, name="x_ref") if self.tracking else None
        self.u_ref = cp.Parameter(n_u, name="u_ref") if self.tracking else None
        xr = self.x_ref if self.tracking else np.zeros(n_x)
        ur = self.u_ref if self.tracking else np.zeros(n_u)

        X = cp.Variable((N + 1, n_x), name="X")
        U = cp.Variable((N, n_u), name="U")
        self.X, self.U = X, U
        cons = [X[0] == self.x0]
        cons += [X[k + 1] == A @ X[k] + B @ U[k] for k in range(N)]
        slacks = []

        def leq(expr, bound, softened):
            """``expr <= bound`` row-wise, with a fresh nonnegative slack per row when softened."""
            if softened:
                s = cp.Variable(expr.shape, name=f"s{len(slacks)}")
                slacks.append(s)
                cons.extend([expr <= bound + s, s >= 0])
            else:
                cons.append(expr <= bound)

        u_min, u_max = np.asarray(prob.u_min, float), np.asarray(prob.u_max, float)
        x_min, x_max = np.asarray(prob.x_min, float), np.asarray(prob.x_max, float)
        du_min, du_max = np.asarray(prob.du_min, float), np.asarray(prob.du_max, float)
        iu_hi, iu_lo = np.flatnonzero(np.isfinite(u_max)), np.flatnonzero(np.isfinite(u_min))
        ix_hi, ix_lo = np.flatnonzero(np.isfinite(x_max)), np.flatnonzero(np.isfinite(x_min))
        idu_hi, idu_lo = np.flatnonzero(np.isfinite(du_max)), np.flatnonzero(np.isfinite(du_min))
        S = None if prob.du_weight is None else np.asarray(prob.du_weight, float)

        LQ, LR = _factor(Q), _factor(R)
        cost = 0
        for k in range(N):
            # input bounds: always hard
            if iu_hi.size:
                cons.append(U[k][iu_hi] <= u_max[iu_hi])
            if iu_lo.size:
                cons.append(-U[k][iu_lo] <= -u_min[iu_lo])
            # input rates: always hard, du_0 = u_0 - u_prev
            if self.uses_u_prev:
                du = U[k] - (self.u_prev if k == 0 else U[k - 1])
                if idu_hi.size:
                    cons.append(du[idu_hi] <= du_max[idu_hi])
                if idu_lo.size:
                    cons.append(-du[idu_lo] <= -du_min[idu_lo])
                if S is not None:
                    cost += _sq(_factor(S), du)
            cost += _sq(LQ, X[k] - xr) + _sq(LR, U[k] - ur)
        cost += _sq(_factor(P), X[N] - xr)

        # state bounds on x_1..x_N; upper and lower rows get separate slacks
        for k in range(1, N + 1):
            if ix_hi.size:
                leq(X[k][ix_hi], x_max[ix_hi], soft is not None)
            if ix_lo.size:
                leq(-X[k][ix_lo], -x_min[ix_lo], soft is not None)

        # stage constraints at k = 0..N-1; at k = 0 a row with c_u = 0 restricts only the given
        # state: hard, it is checked in numpy (feasible or not); soft, it is dropped
        self.state_only_k0 = []
        for c_x, c_u, d in _stage_rows(prob):
            involves_state = bool(np.any(c_x != 0))
            for k in range(N):
                if k == 0 and not np.any(c_u != 0):
                    if soft is None:
                        self.state_only_k0.append((c_x, d))
                    continue
                leq(c_x @ X[k] + c_u @ U[k], d, soft is not None and involves_state)
        term = _terminal(prob)
        if term is not None:
            leq(term[0] @ X[N], term[1], soft is not None)

        if soft is not None and slacks:
            s_all = cp.hstack([cp.vec(s, order="C") for s in slacks])
            cost += soft[0] * cp.sum_squares(s_all) + soft[1] * cp.sum(s_all)
        self.slacks = slacks

        # move blocking: u_j = u_(first index of its block)
        start = 0
        for b in _blocks(prob):
            cons += [U[j] == U[start] for j in range(start + 1, start + b)]
            start += b
        assert start == N

        self.cvx = cp.Problem(cp.Minimize(cost), cons)
        assert self.cvx.is_dpp()

    def solve(self, x, u_prev=None, x_ref=None, u_ref=None, *, solver="OSQP") -> "RefSol":
        """One state. With ``solver="OSQP"``, a state where OSQP reaches neither "optimal" nor
        "infeasible" (iteration limit, "inaccurate") is decided by CLARABEL (``RefSol.solver`` says so)."""
        x = np.asarray(x, float)
        nan = np.full(self.N * self.n_u, np.nan)
        for c_x, d in self.state_only_k0:
            if c_x @ x > d + 1e-12:
                return RefSol(nan, np.inf, "infeasible", np.nan, np.nan, "numpy (state-only row at k=0)")
        self.x0.value = x
        if self.uses_u_prev:
            if u_prev is None:
                raise ValueError("the reference needs u_prev for this problem")
            self.u_prev.value = np.asarray(u_prev, float)
        if self.tracking:
            self.x_ref.value = np.asarray(x_ref, float)
            self.u_ref.value = np.asarray(u_ref, float)
        opts = OSQP_OPTS if solver == "OSQP" else CLARABEL_OPTS
        try:
            self.cvx.solve(solver=solver, **opts)
            status = self.cvx.status
        except cp.SolverError:
            status = "solver error"
        if status not in (cp.OPTIMAL, cp.INFEASIBLE):
            if solver == "OSQP":
                return self.solve(x, u_prev, x_ref, u_ref, solver="CLARABEL")
            raise AssertionError(f"reference: {solver} gave '{status}' at x = {x!r}")
        if status == cp.INFEASIBLE:
            return RefSol(nan, np.inf, "infeasible", np.nan, np.nan, solver)
        s_all = np.concatenate([np.ravel(s.value) for s in self.slacks]) if self.slacks else np.zeros(1)
        return RefSol(np.asarray(self.U.value).reshape(-1), float(self.cvx.value), "optimal",
                      float(s_all.max()), float(s_all.sum()), solver)

    def solve_many(self, X, U_prev=None, X_ref=None, U_ref=None, *, solver="OSQP") -> "RefBatch":
        """Row-wise :meth:`solve`."""
        X = np.atleast_2d(X)
        pick = (lambda A, i: None if A is None else A[i])
        out = [self.solve(X[i], pick(U_prev, i), pick(X_ref, i), pick(U_ref, i), solver=solver)
               for i in range(X.shape[0])]
        return RefBatch(*(np.array([getattr(o, f) for o in out]) for f in RefSol._fields))


class RefSol(NamedTuple):
    U: np.ndarray
    cost: float
    status: str
    s_max: float
    s_sum: float
    solver: str


class RefBatch(NamedTuple):
    U: np.ndarray
    cost: np.ndarray
    status: np.ndarray
    s_max: np.ndarray
    s_sum: np.ndarray
    solver: np.ndarray

    @property
    def feasible(self):
        return self.status == "optimal"


def rollout(prob, x, U):
    xs = [np.asarray(x, float)]
    for k in range(prob.horizon):
        xs.append(prob.A @ xs[-1] + prob.B @ U[k * prob.n_u:(k + 1) * prob.n_u])
    return np.array(xs)


def full_cost(prob, x, U, u_prev=None, x_ref=None, u_ref=None):
    """The full MPC cost of the input sequence U in plain numpy, and the largest violation of a
    hard constraint (0 when U is feasible). Softened rows cost their optimal slack ``max(0, viol)``
    (the penalty increases with the slack, so the best slack for a given U is the violation)."""
    N, n_u = prob.horizon, prob.n_u
    U = np.asarray(U, float)
    us = U.reshape(N, n_u)
    xs = rollout(prob, x, U)
    xr = np.zeros(prob.n_x) if not prob.tracking else np.asarray(x_ref, float)
    ur = np.zeros(n_u) if not prob.tracking else np.asarray(u_ref, float)
    soft = _soft_weights(prob)
    cost = sum((xs[k] - xr) @ prob.Q @ (xs[k] - xr) + (us[k] - ur) @ prob.R @ (us[k] - ur) for k in range(N))
    cost += (xs[N] - xr) @ prob.P @ (xs[N] - xr)
    hard_viol = [0.0]
    soft_viol = []
    with np.errstate(invalid="ignore"):
        hard_viol += list(us.ravel() - np.tile(prob.u_max, N)) + list(np.tile(prob.u_min, N) - us.ravel())
        if _uses_u_prev(prob):
            du = np.diff(np.vstack([u_prev, us]), axis=0)
            hard_viol += list((du - prob.du_max).ravel()) + list((prob.du_min - du).ravel())
            if prob.du_weight is not None:
                cost += sum(d @ prob.du_weight @ d for d in du)
        state_viol = list((xs[1:] - prob.x_max).ravel()) + list((prob.x_min - xs[1:]).ravel())
        for c_x, c_u, d in _stage_rows(prob):
            for k in range(N):
                v = c_x @ xs[k] + c_u @ us[k] - d
                if k == 0 and not np.any(c_u != 0):
                    if soft is None:
                        hard_viol.append(v)
                elif soft is not None and np.any(c_x != 0):
                    soft_viol.append(v)
                else:
                    hard_viol.append(v)
        term = _terminal(prob)
        if term is not None:
            state_viol += list(term[0] @ xs[N] - term[1])
    (soft_viol if soft is not None else hard_viol).extend(state_viol)
    hard_viol = np.nan_to_num(np.asarray(hard_viol, float), nan=-np.inf)  # inf - inf rows are absent
    if soft is not None:
        s = np.maximum(np.nan_to_num(np.asarray(soft_viol, float), nan=-np.inf), 0.0)
        cost += soft[0] * np.sum(s**2) + soft[1] * np.sum(s)
    return float(cost), float(max(hard_viol.max(), 0.0))


def theta_of(prob, X, U_prev=None, X_ref=None, U_ref=None):
    """The documented parameter layout, built by hand: (x, u_prev if rates, x_ref, u_ref if tracking)."""
    parts = [np.atleast_2d(X)]
    if _uses_u_prev(prob):
        parts.append(np.atleast_2d(U_prev))
    if prob.tracking:
        parts += [np.atleast_2d(X_ref), np.atleast_2d(U_ref)]
    return np.hstack(parts)


def box_states(lo, hi, n, seed):
    rng = np.random.default_rng(seed)
    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    return lo + (hi - lo) * rng.random((n, lo.size))


def check_reference(ref, X, U_ref, *args):
    """The reference's own consistency on the first feasible state: CLARABEL agrees with OSQP."""
    ok = np.flatnonzero(np.isfinite(U_ref).all(axis=1))
    if ok.size:
        i = ok[0]
        extra = [None if a is None else a[i] for a in args]
        U_c = ref.solve(X[i], *extra, solver="CLARABEL").U
        assert np.abs(U_c - U_ref[i]).max() <= REF_AGREE


# ---------------------------------------------------------------------------------------------
# the reference on its own (no mpc2nn solver involved)
def di():
    return mpc2nn.systems.double_integrator()


def test_reference_terminal_weight_is_the_riccati_solution():
    prob = di()
    P = scipy.linalg.solve_discrete_are(prob.A, prob.B, prob.Q, prob.R)
    assert np.abs(prob.P - P).max() <= 1e-9 * np.abs(P).max()


def test_reference_unconstrained_equals_backward_riccati_recursion():
    """Small states of the double integrator touch no bound: the reference is the finite-horizon
    LQR, computed here by the backward Riccati recursion (a different algorithm)."""
    prob = di()
    A, B, Q, R = prob.A, prob.B, prob.Q, prob.R
    Pk, gains = prob.P, []
    for _ in range(prob.horizon):
        K = np.linalg.solve(R + B.T @ Pk @ B, B.T @ Pk @ A)
        Pk = Q + A.T @ Pk @ (A - B @ K)
        gains.append(K)
    gains = gains[::-1]
    ref = Reference(prob)
    for x in box_states([-0.3, -0.1], [0.3, 0.1], 5, seed=0):
        U, cost, status, *_ = ref.solve(x)
        xk, U_lqr = x.copy(), []
        for K in gains:
            U_lqr.append(-K @ xk)
            xk = A @ xk + B @ U_lqr[-1]
        U_lqr = np.concatenate(U_lqr)
        assert status == "optimal"
        assert np.abs(U - U_lqr).max() <= 1e-8
        assert cost == pytest.approx(x @ Pk @ x, rel=1e-8)  # the optimal cost is x' P_0 x
        assert cost == pytest.approx(full_cost(prob, x, U)[0], rel=1e-8)


def test_reference_soft_blocked_rate_tracking_model_is_consistent():
    """The cvxpy model's optimum is feasible, its value equals the numpy cost of its U, and
    OSQP and CLARABEL agree: the two encodings of the cost and the two solvers are consistent."""
    prob = combo_problem()
    ref = Reference(prob)
    rng = np.random.default_rng(3)
    for _ in range(3):
        x = rng.uniform([-8, -3], [8, 3])
        u_prev = rng.uniform(-1, 1, 1)
        x_ref, u_ref = np.array([rng.uniform(-3, 3), 0.0]), np.zeros(1)
        U, cost, status, *_ = ref.solve(x, u_prev, x_ref, u_ref)
        U_c, cost_c, status_c, *_ = ref.solve(x, u_prev, x_ref, u_ref, solver="CLARABEL")
        assert status == status_c == "optimal"
        assert np.abs(U - U_c).max() <= REF_AGREE
        c_np, viol = full_cost(prob, x, U, u_prev, x_ref, u_ref)
        assert viol <= 1e-8
        assert c_np == pytest.approx(cost, rel=1e-7)
        assert np.all(np.abs(np.diff(U.reshape(-1)[[0, 1]])) <= 1e-9)  # first block (2 steps) held


def combo_problem():
    """Double integrator with soft states, rates, tracking and blocking all at once."""
    return di().replace(soft_state_penalty=(1.0, 1e3), du_min=[-0.5], du_max=[0.5], du_weight=[[0.1]],
                        tracking=True, move_blocking=(2, 3, 5, 10))
