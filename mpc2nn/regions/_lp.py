"""The linear programs of the region enumeration (HiGHS through scipy), batched block-diagonally.

Many small independent LPs (one per region, facet or row) are stacked into one
block-diagonal LP: its objective is the sum of the blocks' objectives, so its
optimum is every block's optimum at once, for the cost of one HiGHS call
instead of one per block. Each block is built to be feasible and bounded on
its own (a free Chebyshev radius bounded by :data:`RADIUS_CAP`), so one empty
polytope cannot make the whole batch infeasible.
"""

from __future__ import annotations

import numpy as np
import scipy.optimize
import scipy.sparse

from ..exceptions import SolverError

__all__ = ["LP_OPTIONS", "RADIUS_CAP", "solve_lp", "chebyshev_balls", "hyperplane_balls", "support_max",
           "HIGHS_STATUS"]

#: HiGHS options of every LP here: feasibility tolerances tightened from HiGHS's 1e-7 because the
#: answers decide proofs (coverage, redundancy) at the scale of :data:`~mpc2nn.regions.COVER_TOL`.
LP_OPTIONS = dict(primal_feasibility_tolerance=1e-10, dual_feasibility_tolerance=1e-10)

#: Upper bound on every Chebyshev radius in units of the domain's scale (keeps the LPs bounded; a
#: polytope inside the domain box never has a larger inscribed ball).
RADIUS_CAP = 10.0

#: scipy/HiGHS ``res.status`` codes: 0 optimal, 1 iteration limit, 2 infeasible, 3 unbounded, 4 numerical trouble.
HIGHS_STATUS = {0: "optimal", 1: "iteration limit", 2: "infeasible", 3: "unbounded", 4: "numerical difficulties"}


def solve_lp(c, A_ub=None, b_ub=None, A_eq=None, b_eq=None, bounds=None, accept=(0, 2)):
    """``min cᵀv`` by HiGHS; returns scipy's result. A status outside ``accept`` (default optimal or
    infeasible) raises SolverError.
    """
    res = scipy.optimize.linprog(c, A_ub=A_ub, b_ub=b_ub, A_eq=A_eq, b_eq=b_eq, bounds=bounds, method="highs",
                                 options=LP_OPTIONS)
    if res.status not in accept:
        raise SolverError(f"an LP of the region enumeration stopped: {HIGHS_STATUS.get(res.status, res.status)} "
                          f"({res.message})")
    return res


def _block_lp(blocks, n_var: int, objective, box_lo, box_hi, radius_cap: float):
    """Stack LPs ``max r_k s.t. A_k v_k + r_k·g_k <= b_k, Aeq_k v_k = beq_k`` (v_k in the box, |r_k| <= cap).

    ``blocks``: list of ``(A, b, g, Aeq, beq)``; every block has ``n_var`` variables ``v`` and one radius ``r``.
    Returns ``(V (K, n_var), r (K,))``.
    """
    K = len(blocks)
    if K == 0:
        return np.zeros((0, n_var)), np.zeros(0)
    width = n_var + 1
    ub_rows, ub_rhs, eq_rows, eq_rhs = [], [], [], []
    for A, b, g, Aeq, beq in blocks:
        M = np.hstack([A, g[:, None]])
        ub_rows.append(scipy.sparse.coo_matrix(M, shape=(M.shape[0], width)))
        ub_rhs.append(b)
        if Aeq is not None and Aeq.shape[0]:
            eq_rows.append(scipy.sparse.coo_matrix(np.hstack([Aeq, np.zeros((Aeq.shape[0], 1))])))
            eq_rhs.append(beq)
        else:
            eq_rows.append(scipy.sparse.coo_matrix((0, width)))
    A_ub = scipy.sparse.block_diag(ub_rows, format="csr")
    b_ub = np.concatenate(ub_rhs)
    A_eq = scipy.sparse.block_diag(eq_rows, format="csr") if any(e.shape[0] for e in eq_rows) else None
    b_eq = np.concatenate(eq_rhs) if A_eq is not None else None
    c = np.tile(np.concatenate([np.zeros(n_var), [-1.0]]), K) if objective is None else objective
    bounds = np.tile(np.vstack([np.column_stack([box_lo, box_hi]), [[-radius_cap, radius_cap]]]), (K, 1))
    res = solve_lp(c, A_ub, b_ub, A_eq, b_eq, bounds)
    if res.status != 0:
        raise SolverError("a batched Chebyshev LP was infeasible although every block admits a negative radius; "
                          "the domain box is inconsistent")
    x = res.x.reshape(K, width)
    return x[:, :n_var], x[:, n_var]


def chebyshev_balls(polytopes, box_lo, box_hi, scale: float):
    """Chebyshev centres and radii of polytopes ``{θ : A θ <= b}`` (rows of unit norm), one batched LP.

    ``polytopes``: list of ``(A, b)``. The radius is negative where the polytope is empty (its
    magnitude is then the least uniform violation); centres lie in the box ``[box_lo, box_hi]``.
    Returns ``(centres (K, n), radii (K,))``.
    """
    n = box_lo.size
    blocks = [(A, b, np.linalg.norm(A, axis=1), None, None) for A, b in polytopes]
    return _block_lp(blocks, n, None, box_lo, box_hi, RADIUS_CAP * scale)


def hyperplane_balls(pieces, box_lo, box_hi, scale: float):
    """Chebyshev balls inside hyperplanes: for ``(a, beta, A, b)``, the largest ball of
    ``{θ : aᵀθ = beta, A θ <= b}`` measured within the hyperplane (``‖a‖ = 1``).

    A row parallel to ``a`` constrains the hyperplane's position only and gets no radius term.
    Returns ``(centres (K, n), radii (K,))``, radius negative where the piece is empty.
    """
    n = box_lo.size
    blocks = []
    for a, beta, A, b in pieces:
        perp = A - (A @ a)[:, None] * a[None, :]
        blocks.append((A, b, np.linalg.norm(perp, axis=1), a[None, :], np.array([beta])))
    return _block_lp(blocks, n, None, box_lo, box_hi, RADIUS_CAP * scale)


def support_max(directions, G, E, w, D, d, box_lo, box_hi):
    """``max aᵀθ`` over the feasible parameters ``{θ : D θ <= d, ∃ z: G z <= w + E θ}`` for each
    direction ``a`` (rows of ``directions``), one batched LP over ``(z, θ)``.

    Returns ``(K,)`` maxima (``-inf`` everywhere if the feasible set is empty).
    """
    K = directions.shape[0]
    if K == 0:
        return np.zeros(0)
    n_z, n = G.shape[1], D.shape[1]
    block = scipy.sparse.coo_matrix(np.vstack([np.hstack([G, -E]), np.hstack([np.zeros((D.shape[0], n_z)), D])]))
    A_ub = scipy.sparse.block_diag([block] * K, format="csr")
    b_ub = np.tile(np.concatenate([w, d]), K)
    c = np.concatenate([np.concatenate([np.zeros(n_z), -a]) for a in directions])
    bounds = np.tile(np.vstack([np.full((n_z, 2), [-np.inf, np.inf]), np.column_stack([box_lo, box_hi])]), (K, 1))
    res = solve_lp(c, A_ub, b_ub, None, None, bounds)
    if res.status == 2:
        return np.full(K, -np.inf)
    x = res.x.reshape(K, n_z + n)[:, n_z:]
    return np.einsum("kn,kn->k", x, directions)
