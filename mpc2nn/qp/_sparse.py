"""The states-and-inputs (sparse) form of an MPC problem, as OSQP takes it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ..problem import MPCProblem
from ._parameters import ParameterLayout

__all__ = ["SparseQP", "sparse_form"]


@dataclass(frozen=True, eq=False)
class SparseQP:
    """States-and-inputs form of the MPC problem (as OSQP takes it), built from the problem
    directly (not from the condensed matrices, so it also checks them).

    Variables ``ζ = (x_1, ..., x_N, u_0, ..., u_{N-1}, s)`` (``s``: one slack per
    softened row, unshifted; outputs ``y_k = C x_k + D u_k`` enter the cost and the rows
    directly, with ``x_0`` from ``θ``); the problem is ``min ½ ζᵀ P ζ + q(θ)ᵀ ζ  s.t.
    l(θ) <= A ζ <= u(θ)`` with ``q(θ) = q0 + q_x θ``, ``l(θ) = l0 + L_x θ``,
    ``u(θ) = u0 + L_x θ`` (the first ``N·n_x`` rows are the dynamics, equalities;
    move blocking adds equalities ``u_k = u_{k-1}`` within blocks). ``U`` is
    ``ζ[n_states:n_states + N·n_u]``.

    Attributes
    ----------
    P : scipy.sparse.csc_matrix, shape (n_ζ, n_ζ)
        Hessian (symmetric positive semidefinite).
    q_x : ndarray, shape (n_ζ, n_θ)
        Dependence of the linear term on ``θ``.
    A : scipy.sparse.csc_matrix, shape (p, n_ζ)
        Constraint matrix (dynamics, bounds, constraints, then ``s >= 0``).
    l0, u0 : ndarray, shape (p,)
        Lower and upper bounds at ``θ = 0`` (``±inf`` for one-sided rows).
    L_x : ndarray, shape (p, n_θ)
        Dependence of both bounds on ``θ``.
    n_states : int
        ``N·n_x``, the number of state variables, which come first in ``ζ``.
    q0 : ndarray, shape (n_ζ,), or None
        Constant linear term (the linear slack penalty ``ρ_l/2``); ``None`` for zero.
    n_inputs : int or None
        ``N·n_u``, the number of inputs after the states.
    """

    P: sp.csc_matrix
    q_x: np.ndarray
    A: sp.csc_matrix
    l0: np.ndarray
    u0: np.ndarray
    L_x: np.ndarray
    n_states: int
    q0: np.ndarray | None = None
    n_inputs: int | None = None

    def vectors(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(q, l, u)`` at one parameter vector.

        Parameters
        ----------
        x : ndarray, shape (n_θ,)
            The parameter vector ``θ`` (the state for a plain problem).

        Returns
        -------
        q : ndarray, shape (n_ζ,)
        l, u : ndarray, shape (p,)
        """
        shift = self.L_x @ x
        q = self.q_x @ x if self.q0 is None else self.q0 + self.q_x @ x
        return q, self.l0 + shift, self.u0 + shift


def sparse_form(problem: MPCProblem) -> SparseQP:
    """The states-and-inputs form of ``problem``, built from its data (not from the condensed QP).

    Parameters
    ----------
    problem : MPCProblem
        Any problem :func:`~mpc2nn.condense` takes.

    Returns
    -------
    SparseQP

    Examples
    --------
    >>> import mpc2nn
    >>> from mpc2nn.qp import sparse_form
    >>> spf = sparse_form(mpc2nn.systems.double_integrator())
    >>> spf.P.shape, spf.n_states, spf.n_inputs     # ζ = (x_1..x_20, u_0..u_19)
    ((60, 60), 40, 20)
    """
    A, B, N = problem.A, problem.B, problem.horizon
    n_x, n_u = problem.n_x, problem.n_u
    nX, nU = N * n_x, N * n_u
    S_x, S_up, S_xr, S_ur = ParameterLayout.of(problem).selectors(n_u)
    n_theta = S_x.shape[1]
    soft = problem.soft_state_penalty is not None

    penalty = {"state": problem.soft_state_penalty, "output": problem.soft_output_penalty}
    n_y = problem.n_y
    S_yr = ParameterLayout.of(problem).selector("y_ref", n_y)

    # constraint blocks: (A_x (p, nX), A_u (p, nU), lower, upper, L (p, n_θ), soften: -1 upper / +1 lower / 0,
    # the penalty that softens it)
    blocks = []

    def add(Ax, Au, lo, hi, L, side=0, group="state"):
        blocks.append((sp.csr_matrix(Ax), sp.csr_matrix(Au), np.asarray(lo, float), np.asarray(hi, float),
                       np.asarray(L, float), side, group))

    # dynamics: x_1 - B u_0 = A x, x_{k+1} - A x_k - B u_k = 0
    L_eq = np.zeros((nX, n_theta))
    L_eq[:n_x] = -A @ S_x
    add(sp.kron(sp.eye(N), -sp.eye(n_x)) + sp.kron(sp.eye(N, k=-1), A), sp.kron(sp.eye(N), B),
        np.zeros(nX), np.zeros(nX), L_eq)
    add(sp.csr_matrix((nU, nX)), sp.eye(nU), np.tile(problem.u_min, N), np.tile(problem.u_max, N),
        np.zeros((nU, n_theta)))
    if np.isfinite(problem.du_min).any() or np.isfinite(problem.du_max).any():
        D = sp.eye(nU) - sp.eye(nU, k=-n_u)
        L = np.zeros((nU, n_theta))
        L[:n_u] = S_up  # Δu_0 = u_0 - u_prev
        add(sp.csr_matrix((nU, nX)), D, np.tile(problem.du_min, N), np.tile(problem.du_max, N), L)
    if problem.move_blocking is not None:
        starts = np.cumsum((0,) + problem.move_blocking[:-1])
        held = [k for k in range(1, N) if k not in starts]
        if held:
            hold = sp.vstack([sp.hstack([sp.csr_matrix((n_u, (k - 1) * n_u)), -sp.eye(n_u), sp.eye(n_u),
                                         sp.csr_matrix((n_u, (N - k - 1) * n_u))]) for k in held])
            add(sp.csr_matrix((len(held) * n_u, nX)), hold, np.zeros(len(held) * n_u),
                np.zeros(len(held) * n_u), np.zeros((len(held) * n_u, n_theta)))
    for bound, side in ((problem.x_max, -1), (problem.x_min, 1)):
        fin = np.flatnonzero(np.isfinite(bound))
        if fin.size:
            pick = sp.kron(sp.eye(N), sp.eye(n_x).tocsr()[fin])
            p = N * fin.size
            val = np.tile(bound[fin], N)
            lower, upper = (np.full(p, -np.inf), val) if side < 0 else (val, np.full(p, np.inf))
            add(pick, sp.csr_matrix((p, nU)), lower, upper, np.zeros((p, n_theta)), side)
    if problem.has_output_bounds:
        # y_k = C x_k + D u_k for k = 0..N (row block k): rows with D ≠ 0 at k = 0..N-1, with D = 0 at k = 1..N
        C, D = problem.C, problem.D
        Ax_all = sp.kron(sp.eye(N + 1, N, k=-1), C).tocsr()
        Au_all = sp.kron(sp.eye(N + 1, N), D).tocsr()
        L_all = np.zeros(((N + 1) * n_y, n_theta))
        L_all[:n_y] = -C @ S_x  # y_0 = C x + D u_0: the bounds on D u_0 move with the state
        feed = np.any(D != 0, axis=1)
        step_ok = np.concatenate([feed] + [np.ones(n_y, bool)] * (N - 1) + [~feed])
        for bound, side in ((problem.y_max, -1), (problem.y_min, 1)):
            rows_y = step_ok & np.tile(np.isfinite(bound), N + 1)
            if rows_y.any():
                val = np.tile(bound, N + 1)[rows_y]
                inf = np.full(int(rows_y.sum()), np.inf)
                lower, upper = (-inf, val) if side < 0 else (val, inf)
                add(Ax_all[rows_y], Au_all[rows_y], lower, upper, L_all[rows_y], side, "output")
    for con in problem.constraints:
        p = con.d.shape[0]
        # k = 0: C_u u_0 <= d - C_x x ; k >= 1: C_x x_k + C_u u_k <= d
        L = np.zeros((N * p, n_theta))
        L[:p] = -con.C_x @ S_x
        keep = np.ones(N * p, bool)  # rows on the given state alone (k = 0, C_u = 0) have only l <= 0 <= u(θ)
        mixed = np.tile(np.any(con.C_x, axis=1), N)
        Ax = sp.kron(sp.eye(N, k=-1), con.C_x).tocsr()
        Au = sp.kron(sp.eye(N), con.C_u).tocsr()
        for picked, side in ((keep & mixed, -1), (keep & ~mixed, 0)):
            if picked.any():
                add(Ax[picked], Au[picked], np.full(picked.sum(), -np.inf), np.tile(con.d, N)[picked], L[picked],
                    side if soft else 0)
    if problem.terminal_constraint is not None:
        C, d = problem.terminal_constraint.C, problem.terminal_constraint.d
        Ax = sp.hstack([sp.csr_matrix((C.shape[0], nX - n_x)), C])
        add(Ax, sp.csr_matrix((C.shape[0], nU)), np.full(d.shape[0], -np.inf), d, np.zeros((d.shape[0], n_theta)),
            -1)

    soft_counts = [blk[0].shape[0] if (penalty[blk[6]] is not None and blk[5] != 0) else 0 for blk in blocks]
    n_s = sum(soft_counts)
    rho = np.concatenate([np.tile(penalty[blk[6]], (c, 1)) for blk, c in zip(blocks, soft_counts, strict=True)
                          if c] or [np.zeros((0, 2))])
    rows: list = []
    lo: list[np.ndarray] = []
    hi: list[np.ndarray] = []
    Lx: list[np.ndarray] = []
    used = 0
    for (Ax, Au, l_, u_, L, side, _), c in zip(blocks, soft_counts, strict=True):
        S = sp.csr_matrix((Ax.shape[0], n_s))
        if c:  # x <= x_max + s (side -1), x >= x_min - s (side +1)
            S = sp.hstack([sp.csr_matrix((c, used)), side * sp.eye(c), sp.csr_matrix((c, n_s - used - c))]).tocsr()
            used += c
        rows.append(sp.hstack([Ax, Au, S]))
        lo.append(l_)
        hi.append(u_)
        Lx.append(L)
    q_x = np.zeros((nX + nU + n_s, n_theta))
    q0 = np.zeros(nX + nU + n_s)
    Qbar = sp.block_diag([problem.Q] * (N - 1) + [problem.P])
    Rbar = sp.kron(sp.eye(N), problem.R)
    Pu = Rbar
    if problem.du_weight is not None:
        D = sp.eye(nU) - sp.eye(nU, k=-n_u)
        Sbar = sp.kron(sp.eye(N), problem.du_weight)
        Pu = Pu + D.T @ Sbar @ D
        e = np.zeros((nU, n_u))
        e[:n_u] = np.eye(n_u)
        q_x[nX:nX + nU] -= D.T @ (Sbar @ (e @ S_up))
    if problem.tracking:
        q_x[:nX] = -(Qbar @ np.kron(np.ones((N, 1)), np.eye(n_x))) @ S_xr
        q_x[nX:nX + nU] -= (Rbar @ np.kron(np.ones((N, 1)), np.eye(n_u))) @ S_ur
    if problem.output_weight is not None:
        # ½ Σ_{k<N} (y_k - y_ref)ᵀ Q_y (y_k - y_ref), y_k = M ζ + c(θ): M over (x_1..x_N, u_0..u_{N-1})
        M = sp.hstack([sp.kron(sp.eye(N, k=-1), problem.C), sp.kron(sp.eye(N), problem.D)]).tocsr()
        c_theta = -np.kron(np.ones((N, 1)), np.eye(n_y)) @ S_yr
        c_theta[:n_y] += problem.C @ S_x
        Wbar = sp.kron(sp.eye(N), problem.output_weight)
        P_y = (M.T @ Wbar @ M).tocsc()
        q_x[:nX + nU] += M.T @ (Wbar @ c_theta)
    P_blocks = [Qbar, Pu]
    if n_s:
        P_blocks.append(sp.diags(rho[:, 0]))
        q0[nX + nU:] = rho[:, 1] / 2.0
        rows.append(sp.hstack([sp.csr_matrix((n_s, nX + nU)), sp.eye(n_s)]))
        lo.append(np.zeros(n_s))
        hi.append(np.full(n_s, np.inf))
        Lx.append(np.zeros((n_s, n_theta)))
    P_all = sp.block_diag(P_blocks, format="csc")
    if problem.output_weight is not None:
        P_all = (P_all + (sp.block_diag([P_y, sp.csc_matrix((n_s, n_s))]) if n_s else P_y)).tocsc()
    return SparseQP(P=P_all, q_x=q_x, A=sp.vstack(rows, format="csc"),
                    l0=np.concatenate(lo), u0=np.concatenate(hi), L_x=np.vstack(Lx), n_states=nX, q0=q0,
                    n_inputs=nU)
