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
           "HIGHS_STATUS", "block_diagonal"]

#: HiGHS options of every LP here: feasibility tolerances tightened from HiGHS's 1e-7 because the
#: answers decide proofs (coverage, redundancy) at the scale of :data:`~mpc2nn.regions.COVER_TOL`.
LP_OPTIONS = dict(primal_feasibility_tolerance=1e-10, dual_feasibility_tolerance=1e-10)

#: Upper bound on every Chebyshev radius in units of the domain's scale (keeps the LPs bounded; a
#: polytope inside the domain box never has a larger inscribed ball).
RADIUS_CAP = 10.0

#: Blocks per batched LP: HiGHS's time grows faster than linearly with the size of one LP, the
#: overhead of a call (about 1 ms) is paid per LP; 128 balances the two on the problems measured.
BLOCKS_PER_LP = 128

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


def block_diagonal(blocks, width: int):
    """CSR matrix with the dense ``blocks`` (each ``(r_k, width)``) on the diagonal (block k in columns
    ``k·width .. (k+1)·width``), built from index arrays in one go.
    """
    K = len(blocks)
    heights = np.array([B.shape[0] for B in blocks], np.int64)
    data = np.concatenate([B.ravel() for B in blocks]) if K else np.zeros(0)
    rows = np.repeat(np.arange(int(heights.sum())), width)
    block_of_row = np.repeat(np.arange(K), heights)
    cols = (block_of_row[:, None] * width + np.arange(width)[None, :]).ravel()
    return scipy.sparse.csr_matrix((data, (rows, cols)), shape=(int(heights.sum()), K * width))


def _block_lp(blocks, n_var: int, box_lo, box_hi, radius_cap: float):
    """Stack LPs ``max r_k s.t. A_k v_k + r_k·g_k <= b_k, Aeq_k v_k = beq_k`` (v_k in the box, r_k <= cap).

    ``blocks``: list of ``(A, b, g, Aeq, beq)``; every block has ``n_var`` variables ``v`` and one radius ``r``.
    Returns ``(V (K, n_var), r (K,))``.
    """
    K = len(blocks)
    if K == 0:
        return np.zeros((0, n_var)), np.zeros(0)
    if K > BLOCKS_PER_LP:
        parts = [_block_lp(blocks[i:i + BLOCKS_PER_LP], n_var, box_lo, box_hi, radius_cap)
                 for i in range(0, K, BLOCKS_PER_LP)]
        return np.vstack([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    width = n_var + 1
    A_ub = block_diagonal([np.hstack([A, g[:, None]]) for A, b, g, _, _ in blocks], width)
    b_ub = np.concatenate([b for _, b, _, _, _ in blocks])
    has_eq = [Aeq is not None and Aeq.shape[0] > 0 for _, _, _, Aeq, _ in blocks]
    A_eq = b_eq = None
    if any(has_eq):
        A_eq = block_diagonal([np.hstack([Aeq, np.zeros((Aeq.shape[0], 1))]) if h else np.zeros((0, width))
                               for (_, _, _, Aeq, _), h in zip(blocks, has_eq, strict=True)], width)
        b_eq = np.concatenate([beq for (_, _, _, _, beq), h in zip(blocks, has_eq, strict=True) if h])
    c = np.tile(np.concatenate([np.zeros(n_var), [-1.0]]), K)
    bounds = np.tile(np.vstack([np.column_stack([box_lo, box_hi]), [[-np.inf, radius_cap]]]), (K, 1))
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
    return _block_lp(blocks, n, box_lo, box_hi, RADIUS_CAP * scale)


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
    return _block_lp(blocks, n, box_lo, box_hi, RADIUS_CAP * scale)


def support_max(directions, G, E, w, D, d, box_lo, box_hi):
    """``max aᵀθ`` over the feasible parameters ``{θ : D θ <= d, ∃ z: G z <= w + E θ}`` for each
    direction ``a`` (rows of ``directions``), one batched LP over ``(z, θ)``.

    Returns ``(K,)`` maxima (``-inf`` everywhere if the feasible set is empty).
    """
    K = directions.shape[0]
    if K == 0:
        return np.zeros(0)
    n_z, n = G.shape[1], D.shape[1]
    block = np.vstack([np.hstack([G, -E]), np.hstack([np.zeros((D.shape[0], n_z)), D])])
    A_ub = block_diagonal([block] * K, n_z + n)
    b_ub = np.tile(np.concatenate([w, d]), K)
    c = np.concatenate([np.concatenate([np.zeros(n_z), -a]) for a in directions])
    bounds = np.tile(np.vstack([np.full((n_z, 2), [-np.inf, np.inf]), np.column_stack([box_lo, box_hi])]), (K, 1))
    res = solve_lp(c, A_ub, b_ub, None, None, bounds)
    if res.status == 2:
        return np.full(K, -np.inf)
    x = res.x.reshape(K, n_z + n)[:, n_z:]
    return np.einsum("kn,kn->k", x, directions)
