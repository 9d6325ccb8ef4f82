"""An independent reference for MPC problems, shared by the tests: the problem written out in cvxpy.

Used by test_formulations.py (every formulation against it) and by other tests that need a solution
not computed by mpc2nn's condensation.

The reference (:class:`Reference`) is the MPC problem written out in cvxpy in the
states-and-inputs (sparse) form: explicit variables ``x_0..x_N`` and ``u_0..u_{N-1}``,
the dynamics as equality constraints, one slack variable per softened constraint row,
the move-blocking as equalities ``u_j = u_{start of block}``, weighted outputs as explicit
variables ``y_k`` with equalities ``y_k = C x_k + D u_k``, output bounds on ``C x_k + D u_k``
at the steps the MPCProblem docstring states (written out by :func:`_output_steps`). It reads only the problem's
raw fields (A, B, Q, R, P, the bounds, the stage/terminal constraints, horizon, the
penalties, rate bounds and weight, tracking flag, blocks, the outputs C, D with their
weight and bounds) and never touches mpc2nn's
condensation (no ``condense``, no H/F/G). The cost is the *full* MPC cost (the library
minimises half of it without the constants: the minimiser is the same, so the input
sequences U are compared, and costs are compared only through :func:`full_cost`, a
third, plain-numpy encoding of the same cost).

Solvers (both on the same cvxpy model, compiled once per problem with cvxpy Parameters
for ``x, u_prev, x_ref, u_ref`` and re-solved per state; one cvxpy Variable per stage, so
the solvers see Q, R, P, S and the slack weight themselves as the Hessian - an indexed
``X[k]`` would get an auxiliary copy without Hessian, which made DAQP regularise and
miss the exact solution by 3.6e-8 on a random problem and made OSQP slower):

* DAQP (an exact dual active-set QP solver) on every state: it decides feasibility and is
  the sharp reference, ``‖U_lib - U_daqp‖∞ <= TOL["vs_daqp"]`` (1e-8; seen 1e-10..1e-13).
* OSQP at eps_abs = eps_rel = 1e-10 with polishing (the issue's "tested against OSQP") on
  ``N_OSQP`` states per case spread over the batch (all of them in the solve_osqp test),
  ``‖U_lib - U_osqp‖∞ <= TOL["acceptance"]`` (1e-6; seen up to 1.2e-7). OSQP is the slow
  one (up to 0.5 s a state at 1e-10), and it does not always converge in 10_000
  iterations (the quadcopter with input rates: most states; the exact-penalty soft
  problems: a few; 50_000 did not help); those states are rerun at eps 1e-8, polished
  (``RefBatch.solver`` says "OSQP 1e-8"), and are left out ("not converged") where that
  fails too. OSQP and DAQP must agree (feasibility, and U within 1e-6) before the library
  is compared with them.
* CLARABEL was tried as the cross-check and rejected for it: its interior-point U was
  7e-5 from DAQP's on the exact-penalty soft states (relative duality gap on costs up to
  4e5; 2e-8 on the hard double integrator); it appears only in the reference's self-test.

The tolerance 1e-6 is the issue's acceptance bound, 3-4 orders below the input magnitudes
(|u| ~ 0.1..2.4), so a wrong formulation - a missing row, a wrong weight, a shifted
block, an ignored u_prev - cannot pass (each was tried on the reference: the comparisons
fail).
"""
import warnings
from typing import NamedTuple

import numpy as np
import pytest
from tolerances import tol

cp = pytest.importorskip("cvxpy")
osqp = pytest.importorskip("osqp")

__all__ = ["Reference", "RefSol", "RefBatch", "rollout", "full_cost", "theta_of", "box_states", "ACC", "EXACT"]

ACC = tol("acceptance")
EXACT = tol("vs_daqp")

_OSQP_V1 = int(osqp.__version__.split(".")[0]) >= 1
OSQP_OPTS = dict(eps_abs=1e-10, eps_rel=1e-10, max_iter=10_000, verbose=False,
                 **({"polishing": True} if _OSQP_V1 else {"polish": True}))
OSQP_LOOSE_OPTS = {**OSQP_OPTS, "eps_abs": 1e-8, "eps_rel": 1e-8}
#: states per case solved with OSQP as well as DAQP (OSQP at 1e-10 costs up to 0.5 s a state)
N_OSQP = 8
CLARABEL_OPTS = dict(tol_gap_abs=1e-10, tol_gap_rel=1e-10, tol_feas=1e-10, tol_ktratio=1e-8, max_iter=400,
                     verbose=False)


# ---------------------------------------------------------------------------------------------
# the independent reference
def _soft_weights(prob, field="soft_state_penalty"):
    """``(rho_q, rho_l)`` or None, read from the raw field (a number means rho_l = 0)."""
    s = getattr(prob, field, None)
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
            C_x, C_u = (np.atleast_2d(np.asarray(a, float)) for a in c[:2])
            d = np.asarray(c[2], float)
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


def uses_u_prev(prob):
    return bool(np.isfinite(np.asarray(prob.du_min, float)).any()
                or np.isfinite(np.asarray(prob.du_max, float)).any()
                or (prob.du_weight is not None and np.any(np.asarray(prob.du_weight) != 0)))


def _wsq(M, v, p=None):
    """``(v - p)' M (v - p)`` without its constant ``p' M p`` (added back in numpy by
    :meth:`Reference.constant`): ``v' M v - 2 (M p)' v``. ``v`` holds variables only, ``p`` is a
    Parameter (or None): the expression is then DPP, so cvxpy compiles the problem once, and OSQP
    sees ``M`` itself in its Hessian (``sum_squares(L (v - p))`` with a factor ``L`` adds auxiliary
    variables, with which OSQP at 1e-10 ran out of iterations on most quadcopter states)."""
    M = np.asarray(M, float)
    if not np.any(M):
        return 0
    e = cp.quad_form(v, 0.5 * (M + M.T), assume_PSD=True)
    return e if p is None else e - 2 * (M @ p) @ v


def _outputs(prob):
    """``(C, D, W, y_min, y_max)`` from the raw fields (``D`` zero and bounds infinite where not given), or None."""
    if getattr(prob, "C", None) is None:
        return None
    C = np.atleast_2d(np.asarray(prob.C, float))
    n_y = C.shape[0]
    D = np.zeros((n_y, prob.B.shape[1])) if prob.D is None else np.atleast_2d(np.asarray(prob.D, float))
    W = None if prob.output_weight is None else np.asarray(prob.output_weight, float)
    lo = np.full(n_y, -np.inf) if prob.y_min is None else np.asarray(prob.y_min, float)
    hi = np.full(n_y, np.inf) if prob.y_max is None else np.asarray(prob.y_max, float)
    return C, D, W, lo, hi


def _output_steps(D, N):
    """``[(k, rows)]``: the steps at which output bounds hold and the output rows they hold for -
    rows with D = 0 (y = C x) at k = 1..N, rows with D != 0 at k = 0..N-1 (written out here from
    the documented rule, not from the library)."""
    feed = np.any(D != 0, axis=1)
    steps = []
    for k in range(N + 1):
        rows = feed if k == 0 else (~feed if k == N else np.ones_like(feed))
        steps.append((k, np.flatnonzero(rows)))
    return steps


def _blocks(prob):
    N = prob.horizon
    return tuple(int(b) for b in prob.move_blocking) if prob.move_blocking is not None else (1,) * N


class Reference:
    """The MPC problem in cvxpy, states-and-inputs form (see the module docstring)."""

    def __init__(self, prob):
        self.prob = prob
        A, B, Q, R, P = (np.asarray(getattr(prob, k), float) for k in "ABQRP")
        N, n_x, n_u = prob.horizon, A.shape[0], B.shape[1]
        self.N, self.n_x, self.n_u = N, n_x, n_u
        soft = _soft_weights(prob)
        soft_y = _soft_weights(prob, "soft_output_penalty")
        self.soft = soft
        self.uses_u_prev = uses_u_prev(prob)
        self.tracking = bool(prob.tracking)
        outs = _outputs(prob)
        self.outputs = outs
        self.tracks_y = bool(self.tracking and outs is not None and outs[2] is not None and np.any(outs[2]))

        self.x0 = cp.Parameter(n_x, name="x")
        self.u_prev = cp.Parameter(n_u, name="u_prev") if self.uses_u_prev else None
        self.x_ref = cp.Parameter(n_x, name="x_ref") if self.tracking else None
        self.u_ref = cp.Parameter(n_u, name="u_ref") if self.tracking else None
        self.y_ref = cp.Parameter(outs[0].shape[0], name="y_ref") if self.tracks_y else None

        # one Variable per stage: cvxpy passes quad_form(variable, M) to the solver as M itself
        # (an indexed X[k] would get an auxiliary copy with no Hessian, which makes DAQP regularise)
        X = [cp.Variable(n_x, name=f"x{k}") for k in range(N + 1)]
        U = [cp.Variable(n_u, name=f"u{k}") for k in range(N)]
        self.X, self.U = X, U
        cons = [X[0] == self.x0]
        cons += [X[k + 1] == A @ X[k] + B @ U[k] for k in range(N)]
        slacks = []

        def leq(expr, bound, softened, weights=soft):
            """``expr <= bound`` row-wise, with a fresh nonnegative slack per row when softened (penalised
            by ``weights``)."""
            if softened:
                s = cp.Variable(expr.size, name=f"s{len(slacks)}")
                slacks.append((s, weights))
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

        self.Q, self.R, self.P, self.S = Q, R, P, (None if prob.du_weight is None else S)
        cost = 0
        for k in range(N):
            # input bounds: always hard
            if iu_hi.size:
                cons.append(U[k][iu_hi] <= u_max[iu_hi])
            if iu_lo.size:
                cons.append(-U[k][iu_lo] <= -u_min[iu_lo])
            # input rates: always hard, du_0 = u_0 - u_prev
            if self.uses_u_prev:
                du = U[k] - self.u_prev if k == 0 else U[k] - U[k - 1]
                if idu_hi.size:
                    cons.append(du[idu_hi] <= du_max[idu_hi])
                if idu_lo.size:
                    cons.append(-du[idu_lo] <= -du_min[idu_lo])
                if S is not None:
                    cost += _wsq(S, U[0], self.u_prev) if k == 0 else _wsq(S, U[k] - U[k - 1])
            cost += _wsq(Q, X[k], self.x_ref) + _wsq(R, U[k], self.u_ref)
        cost += _wsq(P, X[N], self.x_ref)

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

        # outputs: with a weight, explicit variables y_k = C x_k + D u_k (k = 0..N-1) as equalities, like the
        # dynamics (so the solvers see W as their Hessian); bounds on the expressions C x_k + D u_k (an output
        # variable without a Hessian would make DAQP regularise: seen 3.9e-7 off on a random problem)
        self.W = None
        if outs is not None:
            C, D, W, y_lo, y_hi = outs
            n_y = C.shape[0]
            if W is not None:
                self.W = W
                Yv = [cp.Variable(n_y, name=f"y{k}") for k in range(N)]
                cons += [Yv[k] == C @ X[k] + D @ U[k] for k in range(N)]
                cost += sum(_wsq(W, Yv[k], self.y_ref) for k in range(N))
            for k, rows in _output_steps(D, N):
                hi_rows, lo_rows = rows[np.isfinite(y_hi[rows])], rows[np.isfinite(y_lo[rows])]
                for sel, sign, bound in ((hi_rows, 1.0, y_hi), (lo_rows, -1.0, -y_lo)):
                    if sel.size:
                        y_k = C[sel] @ X[k] + (D[sel] @ U[k] if k < N else 0)
                        leq(sign * y_k, bound[sel], soft_y is not None, soft_y)

        cost += sum(_wsq(w[0] * np.eye(s.size), s) + w[1] * cp.sum(s) for s, w in slacks)
        self.slacks = [s for s, _ in slacks]

        # move blocking: u_j = u_(first index of its block)
        start = 0
        for b in _blocks(prob):
            cons += [U[j] == U[start] for j in range(start + 1, start + b)]
            start += b
        assert start == N

        self.cvx = cp.Problem(cp.Minimize(cost), cons)
        assert self.cvx.is_dpp()

    def constant(self):
        """The cost terms left out of the cvxpy objective by :func:`_wsq` (they do not depend on U)."""
        c = 0.0
        if self.tracking:
            xr, ur = self.x_ref.value, self.u_ref.value
            c += self.N * (xr @ self.Q @ xr + ur @ self.R @ ur) + xr @ self.P @ xr
        if self.uses_u_prev and self.S is not None:
            c += self.u_prev.value @ self.S @ self.u_prev.value
        if self.tracks_y:
            c += self.N * (self.y_ref.value @ self.W @ self.y_ref.value)
        return float(c)

    def solve(self, x, u_prev=None, x_ref=None, u_ref=None, *, solver="OSQP", y_ref=None) -> "RefSol":
        """One state. ``solver="OSQP"``: at eps 1e-10, and where that reaches neither "optimal" nor
        "infeasible" in ``max_iter``, again at eps 1e-8 (``RefSol.solver`` says which); status
        "not converged" where neither converges."""
        x = np.asarray(x, float)
        nan = np.full(self.N * self.n_u, np.nan)
        for c_x, d in self.state_only_k0:
            if c_x @ x > d + tol("roundoff"):
                return RefSol(nan, np.inf, "infeasible", np.nan, np.nan, "numpy (state-only row at k=0)")
        self.x0.value = x
        if self.uses_u_prev:
            if u_prev is None:
                raise ValueError("the reference needs u_prev for this problem")
            self.u_prev.value = np.asarray(u_prev, float)
        if self.tracking:
            self.x_ref.value = np.asarray(x_ref, float)
            self.u_ref.value = np.asarray(u_ref, float)
        if self.tracks_y:
            if y_ref is None:
                raise ValueError("the reference needs y_ref for this problem")
            self.y_ref.value = np.asarray(y_ref, float)
        opts = {"OSQP": OSQP_OPTS, "OSQP 1e-8": OSQP_LOOSE_OPTS, "CLARABEL": CLARABEL_OPTS}.get(solver, {})
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", "Solution may be inaccurate", UserWarning)
                self.cvx.solve(solver=solver.split()[0], **opts)
            status = self.cvx.status
        except cp.SolverError:
            status = "solver error"
        used = solver
        if status not in (cp.OPTIMAL, cp.INFEASIBLE):
            if solver == "OSQP":
                return self.solve(x, u_prev, x_ref, u_ref, solver="OSQP 1e-8", y_ref=y_ref)
            if solver == "OSQP 1e-8":
                return RefSol(nan, np.nan, "not converged", np.nan, np.nan, solver)
            raise AssertionError(f"reference: {solver} gave '{status}' at x = {x!r}")
        if status == cp.INFEASIBLE:
            return RefSol(nan, np.inf, "infeasible", np.nan, np.nan, used)
        s_all = np.concatenate([np.ravel(s.value) for s in self.slacks]) if self.slacks else np.zeros(1)
        return RefSol(np.concatenate([u.value for u in self.U]), float(self.cvx.value) + self.constant(), "optimal",
                      float(s_all.max()), float(s_all.sum()), used)

    def both(self, X, U_prev=None, X_ref=None, U_ref=None, *, n_osqp=N_OSQP, Y_ref=None):
        """``(R, D)``: DAQP on every state (``D``), OSQP on ``n_osqp`` of them spread over the batch
        (``R``; status "not run" on the others), checked against each other."""
        D = self.solve_many(X, U_prev, X_ref, U_ref, solver="DAQP", Y_ref=Y_ref)
        n = len(D.status)
        run = np.unique(np.linspace(0, n - 1, min(n, n_osqp)).round().astype(int))
        def pick(A):
            return (None if A is None else A[run])
        Rr = self.solve_many(X[run], pick(U_prev), pick(X_ref), pick(U_ref), Y_ref=pick(Y_ref))
        R = RefBatch(np.full_like(D.U, np.nan), np.full(n, np.nan), np.full(n, "not run", dtype=object),
                     np.full(n, np.nan), np.full(n, np.nan), np.full(n, "", dtype=object))
        for field in RefSol._fields:
            getattr(R, field)[run] = getattr(Rr, field)
        decided = run[Rr.status != "not converged"]
        assert decided.size >= (run.size + 1) // 2, f"reference: OSQP converged on {decided.size} of {run.size}"
        bad = decided[R.status[decided] != D.status[decided]]
        assert bad.size == 0, f"reference: OSQP and DAQP disagree on feasibility at state {X[bad[0]]!r}"
        both_ok = decided[D.feasible[decided]]
        if both_ok.size:
            err = np.abs(R.U[both_ok] - D.U[both_ok]).max()
            assert err <= ACC, f"reference: OSQP and DAQP differ by {err:.2e} > {ACC:g}"
        return R, D

    def solve_many(self, X, U_prev=None, X_ref=None, U_ref=None, *, solver="OSQP", Y_ref=None) -> "RefBatch":
        """Row-wise :meth:`solve`."""
        X = np.atleast_2d(X)
        def pick(A, i):
            return (None if A is None else A[i])
        out = [self.solve(X[i], pick(U_prev, i), pick(X_ref, i), pick(U_ref, i), solver=solver,
                          y_ref=pick(Y_ref, i))
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


def full_cost(prob, x, U, u_prev=None, x_ref=None, u_ref=None, y_ref=None):
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
    soft_y = _soft_weights(prob, "soft_output_penalty")
    cost = sum((xs[k] - xr) @ prob.Q @ (xs[k] - xr) + (us[k] - ur) @ prob.R @ (us[k] - ur) for k in range(N))
    cost += (xs[N] - xr) @ prob.P @ (xs[N] - xr)
    hard_viol = [0.0]
    soft_viol = []
    outs = _outputs(prob)
    if outs is not None:
        C, D, W, y_lo, y_hi = outs
        ys = [C @ xs[k] + D @ us[k] for k in range(N)]
        if W is not None:
            yr = np.zeros(C.shape[0]) if (y_ref is None or not prob.tracking) else np.asarray(y_ref, float)
            cost += sum((y - yr) @ W @ (y - yr) for y in ys)
        y_viol = []
        with np.errstate(invalid="ignore"):
            for k, rows in _output_steps(D, N):
                y = ys[k] if k < N else C @ xs[N]
                y_viol += list((y - y_hi)[rows]) + list((y_lo - y)[rows])
        y_viol = np.maximum(np.nan_to_num(np.asarray(y_viol, float), nan=-np.inf), 0.0) if y_viol else np.zeros(0)
        if soft_y is not None:
            cost += soft_y[0] * np.sum(y_viol**2) + soft_y[1] * np.sum(y_viol)
        else:
            hard_viol += list(y_viol)
    with np.errstate(invalid="ignore"):
        hard_viol += list(us.ravel() - np.tile(prob.u_max, N)) + list(np.tile(prob.u_min, N) - us.ravel())
        if uses_u_prev(prob):
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


def theta_of(prob, X, U_prev=None, X_ref=None, U_ref=None, Y_ref=None):
    """The documented parameter layout, built by hand: (x, u_prev if rates, x_ref, u_ref if tracking,
    y_ref if tracking with an output weight)."""
    parts = [np.atleast_2d(X)]
    if uses_u_prev(prob):
        parts.append(np.atleast_2d(U_prev))
    if prob.tracking:
        parts += [np.atleast_2d(X_ref), np.atleast_2d(U_ref)]
    if prob.tracking and getattr(prob, "output_weight", None) is not None and np.any(prob.output_weight):
        parts.append(np.atleast_2d(Y_ref))
    return np.hstack(parts)


def box_states(lo, hi, n, seed):
    rng = np.random.default_rng(seed)
    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    return lo + (hi - lo) * rng.random((n, lo.size))


