"""Condensed parametric QP of a linear MPC problem: :class:`CondensedQP`, :func:`condense`.

With ``U = (u_0, ..., u_{N-1})`` (shape ``(N·n_u,)``) and the predicted states
``(x_1, ..., x_N) = Φ x + Γ U``, the plain MPC problem at state ``x`` is

    minimise ½ Uᵀ H U + xᵀ Fᵀ U   subject to   G U <= w + E x,
    H = Γᵀ Q̄ Γ + R̄,  F = Γᵀ Q̄ Φ,  Q̄ = blkdiag(Q, ..., Q, P),  R̄ = blkdiag(R, ..., R).

In general (input rates, tracking, outputs, soft constraints, move blocking; see
:class:`~mpc2nn.MPCProblem`) the QP is

    minimise ½ zᵀ H z + θᵀ Fᵀ z   subject to   G z <= w + E θ,     U = T z,

in a decision vector ``z = (V, s')`` (``V`` the ``p·n_u`` blocked inputs, ``s'``
the shifted slacks, one per softened quantity) and a parameter vector
``θ = (x, u_prev, x_ref, u_ref, y_ref)`` holding only the parts the problem uses
(:attr:`CondensedQP.parameter_labels`, built by :meth:`CondensedQP.parameters`).
The output map ``T`` expands the blocks and drops the slacks. A linear slack
penalty ``ρ_l s`` is absorbed by the shift ``s' = s + δ``, ``δ = ρ_l / (2ρ_q)``
(per slack: state and output slacks may have different penalties, and
``slack_shift`` is then an array), so the QP keeps this form with no constant
linear term; :meth:`CondensedQP.slacks` undoes the shift. For a plain problem
``z = U``, ``θ = x`` and ``T = I``.

Outputs ``y_k = C x_k + D u_k`` (``k = 0..N-1``) are ``Cy x + Dy U`` with
``Cy = (I ⊗ C) Φ₀``, ``Dy = (I ⊗ C) Γ₀ + I ⊗ D`` (``Φ₀``, ``Γ₀`` predict
``x_0..x_{N-1}``); an output weight adds ``Dyᵀ Q̄_y Dy`` to ``H`` and
``Dyᵀ Q̄_y (Cy S_x - (1 ⊗ I) S_yref)`` to ``F`` (``Q̄_y = I ⊗ Q_y``).

Constraint rows come in this order: input bounds (stage by stage, upper then
lower), input-rate bounds, state bounds on ``x_1..x_N``, output bounds (step by
step; see :class:`~mpc2nn.MPCProblem` for the steps), stage constraints,
terminal constraint, then ``s >= 0``; ``row_labels`` names each row. Rows that
are identical to an earlier row (input bounds within a block) or hold
trivially (a rate bound within a block) are left out. Rows that do not involve
``z`` at all (a stage constraint on ``x_0`` alone) restrict only the state and
are kept apart in ``state_only = (E0, w0)``: the problem is infeasible where
``w0 + E0 θ < 0`` (with soft constraints these rows are dropped).
"""

from __future__ import annotations

import numpy as np
import scipy.linalg

from .._checks import frozen
from ..exceptions import ProblemDefinitionError
from ..problem import MPCProblem
from ._condensed import CondensedQP
from ._parameters import ParameterLayout
from ._prediction import prediction_matrices

__all__ = ["condense", "as_qp"]


def condense(problem: MPCProblem) -> CondensedQP:
    """Condense an :class:`MPCProblem` into a :class:`CondensedQP`.

    Parameters
    ----------
    problem : MPCProblem
        The problem; the module docstring gives the QP's form, its rows and their order.

    Returns
    -------
    CondensedQP
        With ``problem``, ``Phi``, ``Gamma``, row labels and the parameter layout set.

    Raises
    ------
    ProblemDefinitionError
        ``problem`` is not an MPCProblem, or one of its constraints holds for no input
        sequence (a row that reads ``0 <= w`` with ``w < 0``).

    Examples
    --------
    >>> import mpc2nn
    >>> qp = mpc2nn.condense(mpc2nn.systems.double_integrator())
    >>> qp.H.shape, qp.G.shape    # N = 20, n_u = 1; 40 input rows + 80 state rows
    ((20, 20), (120, 20))
    >>> soft = mpc2nn.condense(mpc2nn.systems.double_integrator().replace(soft_state_penalty=(1.0, 1e3)))
    >>> soft.n_z, soft.n_slack, soft.n_U    # one slack per state and step (N·n_x = 40)
    (60, 40, 20)
    """
    if not isinstance(problem, MPCProblem):
        raise ProblemDefinitionError(f"condense: expected an MPCProblem, got {type(problem).__name__}")
    A, B, N = problem.A, problem.B, problem.horizon
    n_x, n_u = problem.n_x, problem.n_u
    nU = N * n_u
    Phi, Gamma = prediction_matrices(A, B, N)

    layout = ParameterLayout.of(problem)
    S_x, S_up, S_xr, S_ur = layout.selectors(n_u)
    n_theta = S_x.shape[1]
    n_y = problem.n_y
    S_yr = layout.selector("y_ref", n_y)

    # cost in U: ½UᵀH_U U + θᵀF_UᵀU (half of the stage sums), ΔU = D U - e u_prev
    Qbar = np.kron(np.eye(N), problem.Q)
    Qbar[-n_x:, -n_x:] = problem.P
    Rbar = np.kron(np.eye(N), problem.R)
    D = np.eye(nU) - np.eye(nU, k=-n_u)
    e = np.zeros((nU, n_u))
    e[:n_u] = np.eye(n_u)
    ones_x, ones_u = np.kron(np.ones((N, 1)), np.eye(n_x)), np.kron(np.ones((N, 1)), np.eye(n_u))
    H = Gamma.T @ Qbar @ Gamma + Rbar
    F = Gamma.T @ Qbar @ (Phi @ S_x - ones_x @ S_xr) - Rbar @ ones_u @ S_ur
    if problem.du_weight is not None:
        Sbar = np.kron(np.eye(N), problem.du_weight)
        H = H + D.T @ Sbar @ D
        F = F - D.T @ Sbar @ e @ S_up
    if n_y:
        # outputs y_k = C x_k + D u_k, k = 0..N-1: (y_0..y_{N-1}) = Cy x + Dy U (before the reference)
        Cy, Dy = _output_prediction(problem, Phi, Gamma)
    if problem.output_weight is not None:
        Wbar = np.kron(np.eye(N), problem.output_weight)
        H = H + Dy.T @ Wbar @ Dy
        F = F + Dy.T @ Wbar @ (Cy @ S_x - np.kron(np.ones((N, 1)), np.eye(n_y)) @ S_yr)
    # symmetric by construction; the products leave rounding of the size ε|Γ|ᵀ|Q̄||Γ|, which for an unstable A
    # in badly scaled coordinates (|P| ~ 1e8, |H| ~ 1e3) exceeds the symmetry check's 1e-10·max|H|
    H = 0.5 * (H + H.T)

    rows_G, rows_w, rows_E, labels, soft_rows = [], [], [], [], []
    state_E, state_w = [], []
    soft = problem.soft_state_penalty is not None

    def add(g, w_, e_theta, label, slack=None, group="state"):
        """One row; ``slack`` names the slack that softens it (rows naming the same share it), ``group``
        the penalty that softens it (``"state"``: soft_state_penalty, ``"output"``: soft_output_penalty).
        """
        rows_G.append(g)
        rows_w.append(w_)
        rows_E.append(e_theta)
        labels.append(label)
        on = soft if group == "state" else problem.soft_output_penalty is not None
        soft_rows.append((group, slack) if on and slack is not None else None)

    no_theta = np.zeros(n_theta)
    for k in range(N):
        for i in range(n_u):
            g = np.zeros(nU)
            g[k * n_u + i] = 1.0
            if np.isfinite(problem.u_max[i]):
                add(g, problem.u_max[i], no_theta, f"u_max[{i}] at k={k}")
            if np.isfinite(problem.u_min[i]):
                add(-g, -problem.u_min[i], no_theta, f"u_min[{i}] at k={k}")
    for k in range(N):
        for i in range(n_u):
            r = k * n_u + i
            e_up = (e @ S_up)[r]  # u_prev enters the rate at k = 0 only
            if np.isfinite(problem.du_max[i]):
                add(D[r], problem.du_max[i], e_up, f"du_max[{i}] at k={k}")
            if np.isfinite(problem.du_min[i]):
                add(-D[r], -problem.du_min[i], -e_up, f"du_min[{i}] at k={k}")
    for k in range(1, N + 1):
        Gk, Pk = Gamma[(k - 1) * n_x:k * n_x], Phi[(k - 1) * n_x:k * n_x] @ S_x
        for i in range(n_x):
            if np.isfinite(problem.x_max[i]):
                add(Gk[i], problem.x_max[i], -Pk[i], f"x_max[{i}] at k={k}", f"x[{i}] at k={k}")
            if np.isfinite(problem.x_min[i]):  # one slack for both bounds: at most one can be violated
                add(-Gk[i], -problem.x_min[i], Pk[i], f"x_min[{i}] at k={k}", f"x[{i}] at k={k}")
    if problem.has_output_bounds:
        # y_k at k = 0..N-1 for rows with D ≠ 0 (at k = 0 a row with D = 0 is the given state's output),
        # at k = N for rows with D = 0 (y_N = C x_N; with D ≠ 0 it would need u_N)
        feed = np.any(problem.D != 0, axis=1)
        GN, PN = problem.C @ Gamma[-n_x:], problem.C @ Phi[-n_x:] @ S_x
        for k in range(N + 1):
            for i in range(n_y):
                if (k == 0 and not feed[i]) or (k == N and feed[i]):
                    continue
                g, p_ = (Dy[k * n_y + i], Cy[k * n_y + i] @ S_x) if k < N else (GN[i], PN[i])
                if np.isfinite(problem.y_max[i]):
                    add(g, problem.y_max[i], -p_, f"y_max[{i}] at k={k}", f"y[{i}] at k={k}", "output")
                if np.isfinite(problem.y_min[i]):
                    add(-g, -problem.y_min[i], p_, f"y_min[{i}] at k={k}", f"y[{i}] at k={k}", "output")
    for c_idx, con in enumerate(problem.constraints):
        for k in range(N):
            Pk = S_x if k == 0 else Phi[(k - 1) * n_x:k * n_x] @ S_x
            Gk = np.zeros((n_x, nU)) if k == 0 else Gamma[(k - 1) * n_x:k * n_x]
            Su = np.zeros((n_u, nU))
            Su[:, k * n_u:(k + 1) * n_u] = np.eye(n_u)
            g_rows = con.C_x @ Gk + con.C_u @ Su
            e_rows = -con.C_x @ Pk
            for r in range(con.d.shape[0]):
                if not np.any(g_rows[r]):
                    if not soft:  # with soft constraints a row on the given state alone has no effect
                        state_E.append(e_rows[r])
                        state_w.append(con.d[r])
                else:
                    label = f"constraints[{c_idx}] row {r} at k={k}"
                    add(g_rows[r], con.d[r], e_rows[r], label, label if np.any(con.C_x[r]) else None)
    if problem.terminal_constraint is not None:
        C, d = problem.terminal_constraint.C, problem.terminal_constraint.d
        GN, PN = C @ Gamma[-n_x:], C @ Phi[-n_x:] @ S_x
        for r in range(d.shape[0]):
            add(GN[r], d[r], -PN[r], f"terminal row {r}", f"terminal row {r}")

    m = len(rows_G)
    G = np.array(rows_G).reshape(m, nU)
    E = np.array(rows_E).reshape(m, n_theta)
    w = np.array(rows_w, float)
    slack_of = np.empty(m, dtype=object)  # (group, slack name) of each row, or None
    for i, key in enumerate(soft_rows):
        slack_of[i] = key

    # move blocking: U = T_b V
    T_b = _blocking_matrix(problem.move_blocking, N, n_u)
    H, F, G = T_b.T @ H @ T_b, T_b.T @ F, G @ T_b
    G, w, E, labels, slack_of, more_E, more_w = _drop_trivial_rows(G, w, E, labels, slack_of, problem.name)
    state_E += more_E
    state_w += more_w

    # soft constraints: one slack per softened quantity, shifted by δ = ρ_l / (2ρ_q) of its penalty (no
    # constant linear term)
    soft_mask = np.array([k is not None for k in slack_of], bool)
    names = list(dict.fromkeys(k for k in slack_of if k is not None))
    n_s = len(names)
    shift: float | np.ndarray = 0.0
    if n_s:
        penalty = {"state": problem.soft_state_penalty, "output": problem.soft_output_penalty}
        rho_q = np.array([penalty[g][0] for g, _ in names])
        delta = np.array([penalty[g][1] / (2.0 * penalty[g][0]) for g, _ in names])
        nV = G.shape[1]
        S = np.zeros((G.shape[0], n_s))
        column = {k: j for j, k in enumerate(names)}
        rows = np.flatnonzero(soft_mask)
        S[rows, [column[slack_of[i]] for i in rows]] = -1.0
        row_shift = np.zeros(G.shape[0])
        row_shift[rows] = delta[[column[slack_of[i]] for i in rows]]
        G = np.vstack([np.hstack([G, S]), np.hstack([np.zeros((n_s, nV)), -np.eye(n_s)])])
        w = np.concatenate([w - row_shift, -delta])
        E = np.vstack([E, np.zeros((n_s, n_theta))])
        labels = [lab + " (soft)" if s_ else lab for lab, s_ in zip(labels, soft_mask, strict=True)]
        labels += [f"slack of {k} >= 0" for _, k in names]
        H = scipy.linalg.block_diag(H, np.diag(rho_q))
        F = np.vstack([F, np.zeros((n_s, n_theta))])
        T_b = np.hstack([T_b, np.zeros((nU, n_s))])
        # one number when every slack has the same shift (every soft problem before outputs existed)
        shift = float(delta[0]) if np.all(delta == delta[0]) else delta

    output_map = None if T_b.shape == (nU, nU) and np.array_equal(T_b, np.eye(nU)) else T_b
    state_only = (np.array(state_E).reshape(-1, n_theta), np.array(state_w)) if state_E else None
    return CondensedQP(H=H, F=F, G=G, w=w, E=E, n_u=n_u, Phi=frozen(Phi), Gamma=frozen(Gamma), problem=problem,
                       row_labels=tuple(labels), state_only=state_only, name=problem.name,
                       sample_box=problem.sample_box, source="condense", output_map=output_map, n_slack=n_s,
                       slack_shift=shift, parameter_sizes=layout.parts)


def _output_prediction(problem: MPCProblem, Phi: np.ndarray, Gamma: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(Cy, Dy)``, shapes (N·n_y, n_x) and (N·n_y, N·n_u): the outputs ``(y_0, ..., y_{N-1}) = Cy x + Dy U``."""
    N, n_x, n_u = problem.horizon, problem.n_x, problem.n_u
    Phi0 = np.vstack([np.eye(n_x), Phi[:-n_x]])                      # x_0..x_{N-1} = Phi0 x + Gamma0 U
    Gamma0 = np.vstack([np.zeros((n_x, N * n_u)), Gamma[:-n_x]])
    C_bar, D_bar = np.kron(np.eye(N), problem.C), np.kron(np.eye(N), problem.D)
    return C_bar @ Phi0, C_bar @ Gamma0 + D_bar


def _blocking_matrix(blocks, N: int, n_u: int) -> np.ndarray:
    """``T_b`` (N·n_u, p·n_u) holding the input constant over each block (identity without blocking)."""
    if blocks is None:
        return np.eye(N * n_u)
    hold = np.zeros((N, len(blocks)))
    start = 0
    for j, b in enumerate(blocks):
        hold[start:start + b, j] = 1.0
        start += b
    return np.kron(hold, np.eye(n_u))


def _drop_trivial_rows(G, w, E, labels, slack_of, name):
    """Rows without decision variables or repeated: ``0 <= w`` is dropped, ``0 <= w + Eθ`` kept apart,
    ``0 <= w < 0`` is an error; exact duplicates of an earlier row are dropped.
    """
    keep, state_E, state_w, seen = [], [], [], set()
    for i in range(G.shape[0]):
        if not np.any(G[i]):
            if np.any(E[i]):
                state_E.append(E[i])
                state_w.append(w[i])
            elif w[i] < 0:
                raise ProblemDefinitionError(
                    f"constraint '{labels[i]}' of problem '{name}' holds for no input sequence "
                    f"(it reads 0 <= {w[i]:g})")
            continue
        key = (G[i].tobytes(), E[i].tobytes(), float(w[i]))
        if key in seen:
            continue
        seen.add(key)
        keep.append(i)
    rows = np.array(keep, dtype=np.int64)
    return (G[rows], w[rows], E[rows], [labels[i] for i in rows], slack_of[rows], state_E, state_w)


def as_qp(obj) -> CondensedQP:
    """The condensed QP behind ``obj``.

    Parameters
    ----------
    obj : MPCProblem, CondensedQP or network
        An MPCProblem is condensed, a CondensedQP returned as it is, a network (anything with
        a ``qp`` attribute holding a CondensedQP, e.g. an ImplicitNetwork) gives its QP.

    Returns
    -------
    CondensedQP

    Raises
    ------
    ProblemDefinitionError
        ``obj`` is none of these.
    """
    if isinstance(obj, MPCProblem):
        return condense(obj)
    if isinstance(obj, CondensedQP):
        return obj
    if isinstance(getattr(obj, "qp", None), CondensedQP):
        return obj.qp
    raise ProblemDefinitionError(
        f"problem: expected an MPCProblem, CondensedQP or ImplicitNetwork, got {type(obj).__name__}")
