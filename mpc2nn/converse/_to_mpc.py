"""``to_mpc``: MPC weights and constraints on a known model from an implicit network."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._checks import as_count, as_matrix, as_seed, as_states, require
from ..exceptions import ProblemDefinitionError, ShapeError
from ..implicit import ImplicitNetwork, ImplicitWeights, as_weights, compile
from ..problem import MPCProblem, StageConstraint
from ..qp import CondensedQP, condense, prediction_matrices
from ..status import Conversion
from ._linalg import commutation, cost_maps
from ._sdp import solve_sdp
from ._to_qp import CONVERSE_TOL, DIVISION_FLOOR, to_qp

__all__ = ["MPCRecovery", "to_mpc", "ROW_TOL"]


#: Relative tolerance used by :func:`to_mpc` to read constraint rows as MPC constraints (coefficients
#: normalised to a largest magnitude of 1 below it count as zero; rows closer than it are the same constraint).
ROW_TOL = 1e-7
#: Default relative tolerance of :func:`to_mpc`'s check on sampled states (and of ``"exact"``): above what
#: the data allow on weakly identifiable problems (the network's ``Y_f = -H⁻¹F`` carries roundoff of order
#: ``cond(H)·eps``, and on the double integrator a direction of ``(Q, R, P)`` changes the law by only ~1e-9
#: relative, so the recovered law is within ~3e-8 there).
RECOVERY_TOL = 1e-7
#: Weight of ``trace(R)/n_u`` in the SDP objective: it makes the choice among equally good fits definite
#: (the smallest ``R`` above the normalisation ``R ⪰ I``), and is small so that it does not trade accuracy
#: of the residual terms (scaled to order one) for a smaller ``R``.
R_TRACE_WEIGHT = 1e-6
#: ``rcond`` of the least-squares polish of the SDP solution onto the equalities: singular directions of the
#: (column-scaled) equality matrix below 1e-9 relative are not corrected, because the SDP point is only
#: about 1e-8 accurate (the solvers' default tolerances) and a correction along them would amplify that
#: error by up to ``1/rcond``.
POLISH_RCOND = 1e-9
#: The polish is kept only if it moves ``(Q, R, P, c)`` by at most this fraction of their norm: a larger
#: move means the SDP point was not near the equalities' solution set, and the SDP point is kept.
POLISH_MAX_CHANGE = 1e-3
#: Least-squares passes of each polish (iterative refinement: the second pass removes the first one's
#: roundoff).
POLISH_PASSES = 2
#: ``rcond`` of the refinement on the rows read exactly: its data are exact (no recovered H), so even
#: weakly identifiable directions of ``(Q, R, P)`` are corrected, down to 1e-12 relative (about 4500 eps).
REFINE_RCOND = 1e-12
#: The refined ``Q`` and ``P`` must satisfy ``λmin >= -CONE_TOL·max(1, ‖·‖₂)``: negative eigenvalues up to
#: ten times :data:`REFINE_RCOND`, the refinement's resolution, are roundoff and clipped to 0; larger ones
#: reject the refinement (the SDP's weights are kept).
CONE_TOL = 1e-11


@dataclass(frozen=True, eq=False)
class MPCRecovery:
    """Result of :func:`to_mpc`.

    Attributes
    ----------
    status : str
        ``"exact"``: the recovered MPC reproduces the network on every sampled
        state (within ``tol``; at least one state feasible for both); ``"approximate"``:
        it does not (see the errors); ``"unchecked"``: no check state could be compared
        (all invalid, or infeasible for both), so nothing was checked.
    problem : MPCProblem or None
        The recovered MPC problem, when every constraint row is a bound, stage
        constraint or terminal constraint applied uniformly over the horizon;
        ``None`` otherwise (``qp`` still holds the rows).
    qp : CondensedQP
        ``condense(problem)``, or the recovered cost with the general rows.
    Q, R, P : arrays (n_x, n_x), (n_u, n_u), (n_x, n_x)
        The recovered weights (``Q ⪰ 0``, ``R ⪰ I``, ``P ⪰ 0``).
    gain_residual : float
        ``‖H Y_f + F‖_F / (‖H‖_F ‖Y_f‖_F)``: how far the interior law is from ``U = Y_f x``.
    hessian_residual : float
        ``‖W_fᵀ H W_f - D(I - W)‖_F / ‖D(I - W)‖_F``: how far the constrained law can be off.
    constraints : tuple of str
        How each constraint row was read (bound, stage or terminal constraint).
    X : ndarray, shape (B, n_x)
        States used for the check.
    U_network, U_recovered : ndarray, shape (B, N·n_u)
        The network's and the recovered MPC's input sequences.
    max_error : float
        ``max |U_recovered - U_network|`` over states where both are feasible,
        relative to ``max(1, max |U_network|)`` (NaN where there is none).
    feasibility_agreement : float
        Fraction of the check states with finite entries on which both agree about
        feasibility (NaN where there is none).
    reference : str
        What ``U_network`` was computed with.
    message : str
        Plain-language summary of the result.
    """

    status: str
    problem: MPCProblem | None
    qp: CondensedQP
    Q: np.ndarray
    R: np.ndarray
    P: np.ndarray
    gain_residual: float
    hessian_residual: float
    constraints: tuple
    X: np.ndarray
    U_network: np.ndarray
    U_recovered: np.ndarray
    max_error: float
    feasibility_agreement: float
    reference: str
    message: str

    @property
    def reproduces(self) -> bool:
        """``status == "exact"``."""
        return self.status == Conversion.EXACT

    def __str__(self) -> str:
        return (f"to_mpc: {self.status}; gain residual {self.gain_residual:.2e}, Hessian residual "
                f"{self.hessian_residual:.2e}; on {self.X.shape[0]} states max relative error "
                f"{self.max_error:.2e}, feasibility agreement {self.feasibility_agreement:.3f}\n{self.message}")


def to_mpc(net, A, B, horizon: int, *, X=None, n_samples: int = 100, seed: int = 0,
           tol: float = RECOVERY_TOL, solver: str | None = None) -> MPCRecovery:
    """Recover MPC weights ``(Q, R, P)`` and constraints on a known model from an implicit network.

    The whole predicted sequence is matched, not only ``u_0``: the network's
    output is ``U``, and ``u_0``'s law alone does not determine a condensed
    cost linearly. The weights solve the LMI

        H(Q,R,P) Y_f + F(Q,R,P) = 0,     H(Q,R,P) ∈ {H : D(I - W) = W_fᵀ H W_f, D > 0},
        Q ⪰ 0,  P ⪰ 0,  R ⪰ I  (normalisation; scaling the cost changes nothing),

    (minimising the equality residuals by SDP, then polishing them by a
    least-norm linear correction). The first condition reproduces the
    interior law ``U = Y_f x``; the second makes the constraint rows
    ``G = -W_fᵀ H``, ``E = -D Y - G H⁻¹ F``, ``w = -D b`` (with D from the LMI)
    reproduce the constrained law. Each row is then read as
    ``c_xᵀ x_k + c_uᵀ u_k <= d`` at the first stage ``k`` that fits
    (least squares, relative residual <= ROW_TOL; pure state constraints on
    ``x_1..x_N`` are tried first), rows are grouped by their normalised
    ``(c_x, c_u, d)`` (tolerance :data:`ROW_TOL`), and groups present at every stage become
    input bounds, state bounds (``x_1..x_N``), output bounds (a pure state row
    ``c_xᵀ x_k <= d`` on ``x_1..x_N`` that is no bound of one state: an output
    ``y = c_xᵀ x``), stage constraints or terminal rows of an :class:`~mpc2nn.MPCProblem`;
    with the rows known exactly, the weights are refined on ``H W_f + G*ᵀ diag(ρ) = 0`` and ``H Y_f + F = 0``
    (exact data, no recovered H). Finally the recovered MPC is solved exactly
    on sampled states and compared with the network.

    ``(Q, R, P)`` need not be unique (on ``drummond2024`` a family of
    ``(Q, P)`` gives the same condensed cost); any member reproduces the law.

    Parameters
    ----------
    net : ImplicitNetwork or ImplicitWeights
        Network with ``n_U = N·n_u`` outputs and ``n_x`` inputs (no output bias).
    A : array_like, shape (n_x, n_x)
        The known state matrix.
    B : array_like, shape (n_x, n_u)
        The known input matrix.
    horizon : int
        The horizon ``N``.
    X : array_like, shape (B, n_x), optional
        States for the check. Default: ``n_samples`` uniform states of the network's
        ``qp.sample_box``.
    n_samples : int
        Number of states drawn when ``X`` is not given.
    seed : int
        Seed of those states.
    tol : float
        Relative tolerance of the check (and of "exact"), default :data:`RECOVERY_TOL` = 1e-7:
        above what the data allow on weakly identifiable problems (the network's
        ``Y_f = -H⁻¹F`` carries roundoff of order ``cond(H)·eps``, and on the
        double integrator a direction of ``(Q, R, P)`` changes the law by only
        ~1e-9 relative, so the recovered law is within ~3e-8 there).
    solver : str, optional
        cvxpy solver name (default Clarabel, else SCS).

    Returns
    -------
    MPCRecovery

    Examples
    --------
    >>> import mpc2nn
    >>> from mpc2nn.converse import to_mpc
    >>> prob = mpc2nn.systems.drummond2024()
    >>> rec = to_mpc(mpc2nn.compile(prob), prob.A, prob.B, prob.horizon, n_samples=20)
    >>> rec.status, round(float(rec.problem.u_max[0]), 9)
    ('exact', 10.0)
    """
    cp = require("cvxpy", "converse")
    wts = as_weights(net)
    if np.any(wts.output_bias != 0):
        raise ProblemDefinitionError("net: has a non-zero output_bias; an MPC law has no constant offset "
                                     "(use to_qp, which treats it as an extra parameter)")
    n_x = wts.n_x
    A = as_matrix("A", A, ("n_x", "n_x"), (n_x, n_x))
    B = as_matrix("B", B, ("n_x", "n_u"), (n_x, None))
    n_u = B.shape[1]
    if isinstance(horizon, (bool, np.bool_)) or not isinstance(horizon, (int, np.integer)) or horizon < 1:
        raise ProblemDefinitionError(f"horizon: expected an integer >= 1, got {horizon!r}")
    N, n_U = int(horizon), wts.n_U
    if N * n_u != n_U:
        raise ShapeError(f"W_f: expected N·n_u = {N}·{n_u} = {N * n_u} outputs (rows), got {n_U}")
    if X is None:
        if not isinstance(net, ImplicitNetwork) or net.qp.sample_box is None:
            raise ProblemDefinitionError("X: the network has no sample box; pass the states to check, shape (B, n_x)")
        lo, hi = net.qp.sample_box
        n_samples = as_count("n_samples", n_samples, 1)
        X = np.random.default_rng(as_seed("seed", seed)).uniform(lo, hi, (n_samples, n_x))
    X = as_states(X, n_x)

    conv = to_qp(wts, tol=CONVERSE_TOL, solver=solver)
    fam = conv.family
    Phi, Gamma = prediction_matrices(A, B, N)
    L_HQ, L_HR, L_HP, L_FQ, L_FP = cost_maps(N, n_x, n_u, Phi, Gamma)
    Kg = np.kron(wts.Y_f.T, np.eye(n_U))
    Gain = [Kg @ L_HQ + L_FQ, Kg @ L_HR, Kg @ L_HP + L_FP]
    Hbasis = np.column_stack([Hb.reshape(-1, order="F") for Hb in fam.H_basis])
    U_perp = fam.free_basis
    f = U_perp.shape[1]
    # vec(Z U_⊥ᵀ + U_⊥ Zᵀ) = (kron(U_⊥, I) + kron(I, U_⊥) T) vec(Z), Z of shape (n_U, f)
    L_Z = np.zeros((n_U * n_U, 0))
    if f:
        L_Z = np.kron(U_perp, np.eye(n_U)) + np.kron(np.eye(f), U_perp) @ commutation(n_U, f)
    h_scale = max(float(np.abs(Hbasis).max()), DIVISION_FLOOR)
    g_scale = max(1.0, float(np.linalg.norm(wts.Y_f)))

    Qv = cp.Variable((n_x, n_x), symmetric=True)
    Rv = cp.Variable((n_u, n_u), symmetric=True)
    Pv = cp.Variable((n_x, n_x), symmetric=True)
    cv = cp.Variable(fam.n_blocks)
    vq, vr, vp = cp.vec(Qv, order="F"), cp.vec(Rv, order="F"), cp.vec(Pv, order="F")
    res_h = L_HQ @ vq + L_HR @ vr + L_HP @ vp - Hbasis @ cv
    if f:
        Zv = cp.Variable(n_U * f)
        res_h = res_h - L_Z @ Zv
    res_g = Gain[0] @ vq + Gain[1] @ vr + Gain[2] @ vp
    objective = cp.norm(res_h) / h_scale + cp.norm(res_g) / g_scale + R_TRACE_WEIGHT * cp.trace(Rv) / n_u
    prob = cp.Problem(cp.Minimize(objective), [Qv >> 0, Pv >> 0, Rv >> np.eye(n_u), cv >= 0])
    solve_sdp(prob, solver)
    theta0 = np.concatenate([Qv.value.reshape(-1, order="F"), Rv.value.reshape(-1, order="F"),
                             Pv.value.reshape(-1, order="F"), cv.value] + ([Zv.value] if f else []))

    # polish: least-norm correction onto {Lθ = 0} (the equalities and the symmetry of Q, R, P)
    nq, nr = n_x * n_x, n_u * n_u
    n_theta = theta0.size
    rows = [np.hstack([L_HQ, L_HR, L_HP, -Hbasis, -L_Z]) / h_scale,
            np.hstack([Gain[0], Gain[1], Gain[2], np.zeros((n_U * n_x, n_theta - 2 * nq - nr))]) / g_scale]
    for off, n in ((0, n_x), (nq, n_u), (nq + nr, n_x)):
        Sym = np.zeros((n * n, n_theta))
        Sym[:, off:off + n * n] = np.eye(n * n) - commutation(n, n)
        rows.append(Sym)
    L = np.vstack(rows)
    col = np.maximum(np.linalg.norm(L, axis=0), DIVISION_FLOOR)
    theta = theta0.copy()
    for _ in range(POLISH_PASSES):
        theta = theta - np.linalg.lstsq(L / col, L @ theta, rcond=POLISH_RCOND)[0] / col
    polished = bool(np.linalg.norm(theta - theta0) <= POLISH_MAX_CHANGE * np.linalg.norm(theta0))

    def unpack(t):
        Q_ = t[:nq].reshape(n_x, n_x, order="F")
        R_ = t[nq:nq + nr].reshape(n_u, n_u, order="F")
        P_ = t[nq + nr:2 * nq + nr].reshape(n_x, n_x, order="F")
        return _psd_part(Q_), 0.5 * (R_ + R_.T), _psd_part(P_), t[2 * nq + nr:2 * nq + nr + fam.n_blocks]

    Q, R, P, c = unpack(theta)
    if not polished or np.linalg.eigvalsh(R)[0] <= 0 or np.any(c <= 0):
        Q, R, P, c = unpack(theta0)
        polished = False
    H_c = Gamma[:-n_x].T @ np.kron(np.eye(N - 1), Q) @ Gamma[:-n_x] + Gamma[-n_x:].T @ P @ Gamma[-n_x:] \
        + np.kron(np.eye(N), R)
    F_c = Gamma[:-n_x].T @ np.kron(np.eye(N - 1), Q) @ Phi[:-n_x] + Gamma[-n_x:].T @ P @ Phi[-n_x:]
    d = sum(cj * dj for cj, dj in zip(c, fam.d_basis, strict=True))
    d = np.where(d > 0, d, 1.0)
    DA = d[:, None] * (np.eye(wts.m) - wts.W)
    gain_res = float(np.linalg.norm(H_c @ wts.Y_f + F_c) / (np.linalg.norm(H_c) * max(np.linalg.norm(wts.Y_f),
                                                                                      DIVISION_FLOOR)))
    hess_res = float(np.linalg.norm(wts.W_f.T @ H_c @ wts.W_f - DA) / np.linalg.norm(DA))
    G = -wts.W_f.T @ H_c
    E = -d[:, None] * wts.Y - G @ np.linalg.solve(H_c, F_c)
    w = -d * wts.b

    spec, Gstar, described, why = _read_rows(G, w, E, Phi, Gamma, N, n_x, n_u)
    problem, refined = None, False
    if spec is not None:
        # the rows are now known exactly (up to positive factors ρ): refine (Q, R, P) on the well-conditioned
        # linear conditions H W_f + G*ᵀ diag(ρ) = 0 and H Y_f + F = 0 (no H⁻¹, no division by the
        # singular values of W_f)
        rho0 = np.einsum("ij,ij->i", G, Gstar) / np.einsum("ij,ij->i", Gstar, Gstar)
        Q, R, P, refined = _refine_cost(Q, R, P, rho0, Gstar, wts, L_HQ, L_HR, L_HP, Gain)
        problem = MPCProblem(A, B, Q, R, N, P=P, name="recovered MPC", **spec)
        qp_rec = condense(problem)
        H_c, F_c = qp_rec.H, qp_rec.F
        gain_res = float(np.linalg.norm(H_c @ wts.Y_f + F_c) / (np.linalg.norm(H_c) * max(
            np.linalg.norm(wts.Y_f), DIVISION_FLOOR)))
    else:
        qp_rec = CondensedQP(H=H_c, F=F_c, G=G, w=w, E=E, n_u=n_u, Phi=Phi, Gamma=Gamma,
                             name="recovered MPC (general rows)",
                             source="to_mpc (rows not expressible as MPCProblem constraints)")
    if isinstance(net, ImplicitNetwork):
        ref_sol, reference = net.solve(X), "the network's exact fixed points (ImplicitNetwork.solve)"
    elif conv.exact:
        ref_sol, reference = conv.network().solve(X), "the exact converse QP of the weights (to_qp)"
    else:
        ref_sol, reference = None, "none: the weights are not MPC-like, so there is no exact reference"
    new_sol = compile(qp_rec).solve(X)
    valid = np.all(np.isfinite(X), axis=1)
    n_compared = 0
    if ref_sol is None:
        U_ref = np.full_like(new_sol.U, np.nan)
        err, agree = float("nan"), float("nan")
    else:
        U_ref = ref_sol.U
        both = ref_sol.feasible & new_sol.feasible & valid
        n_compared = int(both.sum())
        agree = float(np.mean(ref_sol.feasible[valid] == new_sol.feasible[valid])) if valid.any() else float("nan")
        scale = max(1.0, float(np.abs(U_ref[both]).max(initial=0.0)))
        err = float(np.abs(new_sol.U[both] - U_ref[both]).max() / scale) if n_compared else float("nan")
    ok = ref_sol is not None and n_compared > 0 and err <= tol and agree == 1.0
    msg = (f"recovered Q ⪰ 0, R ⪰ I, P ⪰ 0 on the given (A, B, N = {N}) "
           + ("(SDP, equalities polished)" if polished else "(SDP, not polished: the correction was too large)")
           + "; "
           + ("constraint rows read as an MPCProblem" + (", weights refined on them" if refined else "")
              if problem is not None else f"rows kept general: {why}")
           + f"; checked against {reference}")
    if not valid.all():
        msg += f"; {int((~valid).sum())} check states with NaN or infinite entries were left out"
    unchecked = ref_sol is not None and n_compared == 0 and not (agree < 1.0)
    if unchecked and ref_sol is not None:
        n_infeasible = int((valid & ~ref_sol.feasible).sum())
        msg += (f"; NOT checked: no check state is feasible for both ({n_infeasible} infeasible, "
                f"{int((~valid).sum())} invalid), so the law was compared nowhere; pass feasible states X")
    elif not ok and ref_sol is not None:
        msg += (f"; the recovered MPC does NOT reproduce the network (max relative error {err:.2e}, "
                f"feasibility agreement {agree:.3f})")
    status = str(Conversion.EXACT if ok else Conversion.UNCHECKED if unchecked else Conversion.APPROXIMATE)
    return MPCRecovery(status, problem, qp_rec, Q, R, P, gain_res, hess_res, described,
                       X, U_ref, new_sol.U, err, agree, reference, msg)


def _psd_part(M: np.ndarray) -> np.ndarray:
    """Symmetric part with eigenvalues below zero (roundoff of the polish) set to zero."""
    M = 0.5 * (M + M.T)
    ev, evec = np.linalg.eigh(M)
    if ev[0] >= 0:
        return M
    M = (evec * np.maximum(ev, 0.0)) @ evec.T
    return 0.5 * (M + M.T)


def _refine_cost(Q, R, P, rho0, Gstar, wts: ImplicitWeights, L_HQ, L_HR, L_HP, Gain):
    """Least-norm correction of ``(Q, R, P, ρ)`` onto ``H W_f + G*ᵀ diag(ρ) = 0``, ``H Y_f + F = 0``, symmetry.

    The data of these equations are exact (no recovered H enters), so even weakly identifiable
    directions of ``(Q, R, P)`` are corrected (``rcond =`` :data:`REFINE_RCOND`). Returns ``(Q, R, P, refined)``;
    the input comes back unchanged (``refined = False``) when the corrected point leaves the cones
    (beyond roundoff) or does not lower the residual.
    """
    n_x, n_u, m, n_U = Q.shape[0], R.shape[0], wts.m, wts.n_U
    nq, nr = n_x * n_x, n_u * n_u
    Kw = np.kron(wts.W_f.T, np.eye(n_U))
    Lrho = np.zeros((n_U * m, m))
    for i in range(m):
        Lrho[i * n_U:(i + 1) * n_U, i] = Gstar[i]
    blocks = [np.hstack([Kw @ L_HQ, Kw @ L_HR, Kw @ L_HP, Lrho]),
              np.hstack([Gain[0], Gain[1], Gain[2], np.zeros((n_U * wts.n_x, m))])]
    n_theta = 2 * nq + nr + m
    for off, n in ((0, n_x), (nq, n_u), (nq + nr, n_x)):
        Sym = np.zeros((n * n, n_theta))
        Sym[:, off:off + n * n] = np.eye(n * n) - commutation(n, n)
        blocks.append(Sym)
    blocks = [blk / max(float(np.abs(blk).max()), DIVISION_FLOOR) for blk in blocks]
    L = np.vstack(blocks)
    theta0 = np.concatenate([Q.reshape(-1, order="F"), R.reshape(-1, order="F"), P.reshape(-1, order="F"), rho0])
    col = np.maximum(np.linalg.norm(L, axis=0), DIVISION_FLOOR)
    theta = theta0.copy()
    for _ in range(POLISH_PASSES):
        theta = theta - np.linalg.lstsq(L / col, L @ theta, rcond=REFINE_RCOND)[0] / col
    Q1, P1 = (0.5 * (M + M.T) for M in (theta[:nq].reshape(n_x, n_x, order="F"),
                                         theta[nq + nr:2 * nq + nr].reshape(n_x, n_x, order="F")))
    R1 = theta[nq:nq + nr].reshape(n_u, n_u, order="F")
    R1 = 0.5 * (R1 + R1.T)
    in_cones = (np.linalg.eigvalsh(R1)[0] > 0 and np.all(theta[2 * nq + nr:] > 0)
                and all(np.linalg.eigvalsh(M)[0] >= -CONE_TOL * max(1.0, float(np.linalg.norm(M, 2)))
                        for M in (Q1, P1)))
    if not in_cones or np.linalg.norm(L @ theta) >= np.linalg.norm(L @ theta0):
        return Q, R, P, False
    return _psd_part(Q1), R1, _psd_part(P1), True


def _read_rows(G, w, E, Phi, Gamma, N, n_x, n_u):
    """Read the rows ``G U <= w + E x`` as MPC constraints.

    Returns ``(spec, Gstar, descriptions, why_not)``: ``spec`` holds the MPCProblem
    keyword arguments for the constraints (``None`` when some row does not fit) and
    ``Gstar`` (m, n_U) the rows rebuilt from the normalised, cleaned coefficients.
    """
    n_U = N * n_u
    m = G.shape[0]
    J = np.hstack([G, E])                      # row i: (g_i, e_i); constraint g U <= w + e x
    found_k = np.full(m, -1)
    coef = np.zeros((m, n_x + n_u))
    # pure state constraints on x_1..x_N first, then mixed ones c_xᵀ x_k + c_uᵀ u_k at k = 0..N-1
    for k, mixed in [(k, False) for k in range(1, N + 1)] + [(k, True) for k in range(N)]:
        Mk = np.zeros((n_U + n_x, n_x + n_u))
        if k > 0:
            Mk[:n_U, :n_x] = Gamma[(k - 1) * n_x:k * n_x].T
            Mk[n_U:, :n_x] = -Phi[(k - 1) * n_x:k * n_x].T
        else:
            Mk[n_U:, :n_x] = -np.eye(n_x)
        if mixed:
            Mk[k * n_u:(k + 1) * n_u, n_x:] = np.eye(n_u)
        sol = np.linalg.lstsq(Mk, J.T, rcond=None)[0].T
        res = np.linalg.norm(sol @ Mk.T - J, axis=1) / np.maximum(np.linalg.norm(J, axis=1), DIVISION_FLOOR)
        new = (found_k < 0) & (res <= ROW_TOL)
        found_k[new], coef[new] = k, sol[new]
    if np.any(found_k < 0):
        i = int(np.flatnonzero(found_k < 0)[0])
        return None, None, (), f"row {i} is not of the form c_xᵀ x_k + c_uᵀ u_k <= d for any stage k"
    size = np.abs(coef).max(axis=1)
    coef, rhs = coef / size[:, None], w / size
    coef[np.abs(coef) < ROW_TOL] = 0.0
    groups: list[list[int]] = []
    for i in range(m):
        for g in groups:
            j = g[0]
            if np.allclose(coef[i], coef[j], rtol=0, atol=ROW_TOL) and np.isclose(rhs[i], rhs[j], rtol=ROW_TOL,
                                                                                   atol=ROW_TOL):
                g.append(i)
                break
        else:
            groups.append([i])
    u_min, u_max = np.full(n_u, -np.inf), np.full(n_u, np.inf)
    x_min, x_max = np.full(n_x, -np.inf), np.full(n_x, np.inf)
    stage, term, described, outputs = [], [], [], []
    for g in groups:
        ks = sorted(set(found_k[g].tolist()))
        c_x, c_u, dd = coef[g[0], :n_x], coef[g[0], n_x:], float(np.mean(rhs[g]))
        txt = f"{_lin(c_x, 'x')} {'+ ' if c_x.any() and c_u.any() else ''}{_lin(c_u, 'u')} <= {dd:.6g}"
        unit_u = not c_x.any() and np.count_nonzero(c_u) == 1 and abs(c_u[np.flatnonzero(c_u)[0]]) == 1.0
        unit_x = not c_u.any() and np.count_nonzero(c_x) == 1 and abs(c_x[np.flatnonzero(c_x)[0]]) == 1.0
        if c_u.any() and ks == list(range(N)):
            j = int(np.flatnonzero(c_u)[0]) if unit_u else -1
            if unit_u and c_u[j] > 0 and u_max[j] == np.inf:
                u_max[j] = dd
                described.append(f"u_max[{j}] = {dd:.6g} (rows {g})")
            elif unit_u and c_u[j] < 0 and u_min[j] == -np.inf:
                u_min[j] = -dd
                described.append(f"u_min[{j}] = {-dd:.6g} (rows {g})")
            else:
                stage.append(StageConstraint(c_x[None], c_u[None], [dd]))
                described.append(f"stage constraint {txt} at k = 0..{N - 1} (rows {g})")
        elif not c_u.any() and ks == list(range(1, N + 1)) and unit_x:
            j = int(np.flatnonzero(c_x)[0])
            if c_x[j] > 0 and x_max[j] == np.inf:
                x_max[j] = dd
                described.append(f"x_max[{j}] = {dd:.6g} on x_1..x_N (rows {g})")
            elif c_x[j] < 0 and x_min[j] == -np.inf:
                x_min[j] = -dd
                described.append(f"x_min[{j}] = {-dd:.6g} on x_1..x_N (rows {g})")
            else:
                return None, None, tuple(described), f"rows {g} repeat a state bound with another value"
        elif not c_u.any() and ks == list(range(1, N + 1)):  # not a unit vector: an output bound on y = c_xᵀx
            outputs.append((c_x, dd))
            described.append(f"output bound {txt} on x_1..x_N (rows {g})")
        elif not c_u.any() and ks == [N]:
            term.append((c_x, dd))
            described.append(f"terminal constraint {txt} (rows {g})")
        else:
            return None, None, tuple(described), (f"rows {g} ({txt}) apply at stages {ks}, which no bound, stage "
                                                  "or terminal constraint of an MPCProblem reproduces")
    terminal = (np.array([t[0] for t in term]), np.array([t[1] for t in term])) if term else None
    Gstar = np.zeros((m, n_U))
    for i in range(m):
        k = found_k[i]
        if k > 0:
            Gstar[i] = coef[i, :n_x] @ Gamma[(k - 1) * n_x:k * n_x]
        if coef[i, n_x:].any():
            Gstar[i, k * n_u:(k + 1) * n_u] += coef[i, n_x:]
    spec = dict(u_min=u_min, u_max=u_max, x_min=x_min, x_max=x_max, constraints=tuple(stage),
                terminal_constraint=terminal)
    if outputs:  # one output per direction: c_xᵀx <= d is an upper bound, its opposite row a lower bound
        C_rows: list[np.ndarray] = []
        lo: list[float] = []
        hi: list[float] = []
        for c_x, dd in outputs:
            for j, c in enumerate(C_rows):
                if np.allclose(c_x, c, rtol=0, atol=ROW_TOL) and hi[j] == np.inf:
                    hi[j] = dd
                    break
                if np.allclose(c_x, -c, rtol=0, atol=ROW_TOL) and lo[j] == -np.inf:
                    lo[j] = -dd
                    break
            else:
                C_rows.append(c_x)
                lo.append(-np.inf)
                hi.append(dd)
        spec.update(C=np.array(C_rows), y_min=np.array(lo), y_max=np.array(hi))
    return spec, Gstar, tuple(described), ""


def _lin(c: np.ndarray, sym: str) -> str:
    return " + ".join(f"{v:.4g}·{sym}[{i}]" for i, v in enumerate(c) if v != 0)
