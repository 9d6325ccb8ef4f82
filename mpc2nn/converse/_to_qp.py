"""``to_qp``: an implicit network back to an MPC-like QP (decided exactly by linear algebra)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse import csgraph

from .._checks import require
from ..exceptions import ProblemDefinitionError, ShapeError
from ..implicit import ImplicitNetwork, as_weights, compile
from ..qp import CondensedQP
from ..status import Conversion
from ._sdp import solve_sdp

__all__ = ["Obstruction", "HessianFamily", "ConverseResult", "to_qp", "CONVERSE_TOL"]


#: Default relative tolerance of the exactness decisions in :func:`to_qp`.
CONVERSE_TOL = 1e-9
#: Singular values of ``W_f`` below ``RANK_RTOL·σ_max`` count as zero (its numerical rank ``r``): singular
#: values that vanish in exact arithmetic come out of the SVD at about ``eps·σ_max`` plus the roundoff of
#: ``W_f`` itself, so 1e-12 (about 4500 eps) keeps them apart from the genuine ones.
RANK_RTOL = 1e-12
#: Entries of a certificate vector ``v`` (unit norm) above this magnitude make up its support, the rows
#: an :class:`Obstruction` names: roundoff leaves entries of order eps elsewhere.
SUPPORT_TOL = 1e-12
#: Floor of divisors that may be zero (edge strengths, scales, norms): far below any meaningful value,
#: above the smallest normal float64 (2.2e-308), so a division by it stays finite.
DIVISION_FLOOR = 1e-300
#: The nearest-network SDP asks for ``K ⪰ ε I`` with ``ε = SDP_MARGIN·mean|diag(I - W)|``: strictly
#: positive definite (so ``H ≻ 0``), but small relative to the data, so the nearest network is barely
#: moved by the margin.
SDP_MARGIN = 1e-6
#: Floor of the scale ``mean|diag(I - W)|`` in ``ε`` (a network whose diagonal vanishes still gets ``ε > 0``).
SDP_SCALE_FLOOR = 1e-12


@dataclass(frozen=True)
class Obstruction:
    """Proof that no positive diagonal D and ``H ≻ 0`` satisfy ``D (I - W) = W_fᵀ H W_f``.

    Attributes
    ----------
    kind : str
        ``"diagonal"``: ``(I - W)_ii <= 0`` although ``d_i (I - W)_ii = ‖(W_f)_i‖²_H > 0``
        (or the column of W_f is zero and the unit would need a zero constraint row);
        ``"sign"``: ``(I - W)_ij`` and ``(I - W)_ji`` differ in sign, or only one is zero,
        so ``d_i A_ij = d_j A_ji`` has no positive solution;
        ``"cycle"``: the ratios ``A_ij / A_ji`` around a cycle of rows multiply to
        ``≠ 1``, so no D symmetrises ``A = I - W``;
        ``"not-psd"``: ``vᵀ D A v < 0`` for every admissible D (``v`` lives on one
        connected block, where D is unique up to a positive factor);
        ``"kernel"``: ``W_f v = 0`` but ``A v ≠ 0``, or ``A v = 0`` but ``W_f v ≠ 0``.
    rows : tuple of int
        The rows involved (the pair, the cycle, or the support of ``vector``).
    vector : (m,) array or None
        The certificate vector for ``"not-psd"`` and ``"kernel"``.
    value : float
        How far from consistent, relative (see ``message``); compare with the tolerance.
    message : str
        Plain-language explanation with the numbers.
    """

    kind: str
    rows: tuple
    vector: np.ndarray | None
    value: float
    message: str

    def __str__(self) -> str:
        return f"no MPC-like QP exists ({self.kind}): {self.message}"


@dataclass(frozen=True, eq=False)
class HessianFamily:
    """Every ``(D, H)`` that reproduces the network (exact case) or its nearest MPC-like network.

    ``D = Σ_j c_j diag(d_basis[j])`` and
    ``H = Σ_j c_j H_basis[j] + Z U_⊥ᵀ + U_⊥ Zᵀ`` with ``c_j > 0``, any ``Z`` of
    shape ``(n_U, n_U - r)`` keeping ``H ≻ 0``, and ``U_⊥ = free_basis`` the
    orthonormal complement of ``range(W_f)`` (empty when ``W_f`` has full row rank).
    One ``c_j`` per connected block of ``I - W``.

    Attributes
    ----------
    d_basis : tuple of ndarray, shape (m,)
        One diagonal ``d_j`` per connected block, zero outside it (one full ``d`` in the nearest case).
    H_basis : tuple of ndarray, shape (n_U, n_U)
        The Hessian part ``H_j`` that goes with ``d_j``.
    free_basis : ndarray, shape (n_U, n_U - r)
        ``U_⊥``, the orthonormal complement of ``range(W_f)``.
    """

    d_basis: tuple
    H_basis: tuple
    free_basis: np.ndarray

    @property
    def n_blocks(self) -> int:
        """Number of free positive factors ``c_j``."""
        return len(self.d_basis)


@dataclass(frozen=True, eq=False)
class ConverseResult:
    """Result of :func:`to_qp`.

    Attributes
    ----------
    status : str
        ``"exact"``: the QP reproduces the network (``D A = W_fᵀ H W_f`` within
        the tolerance); ``"nearest"``: no MPC-like QP exists (see ``obstruction``);
        ``qp`` is the QP of the nearest MPC-like network ``W_nearest``.
    qp : CondensedQP
        The recovered QP ``(H, F, G, w, E)``.
    alpha : (m,)
        Row steps: ``compile(qp, alpha=alpha)`` rebuilds the network (exact case).
    d : (m,)
        ``D = diag(d) = diag(1/alpha)``.
    residual : float
        ``‖(I - W) - D⁻¹ W_fᵀ H W_f‖_F / ‖I - W‖_F``.
    network_mismatch : dict
        Relative error ``‖X' - X‖_max / max(1, ‖X‖_max)`` of each rebuilt weight
        ``X ∈ {W, Y, b, W_f, Y_f}`` (``compile(qp, alpha=alpha)`` against the input).
    W_nearest : (m, m)
        ``I - D⁻¹ W_fᵀ H W_f``: equal to W in the exact case.
    obstruction : Obstruction or None
        Why no exact QP exists (``None`` when status is ``"exact"``).
    family : HessianFamily
        All the ``(D, H)`` that do the same job (used by :func:`to_mpc`).
    method : str
        ``"algebraic"`` or ``"sdp"`` (plus ``" + polish"`` when the SDP's D was
        projected onto the exact solution set).
    state_augmented : bool
        True when the network had an output bias: the QP's parameter is then
        ``(x, 1)`` of size ``n_x + 1`` (the bias is the last column of ``Y_f``).
    message : str
        Plain-language summary of the result.
    """

    status: str
    qp: CondensedQP
    alpha: np.ndarray
    d: np.ndarray
    residual: float
    network_mismatch: dict
    W_nearest: np.ndarray
    obstruction: Obstruction | None
    family: HessianFamily
    method: str
    state_augmented: bool
    message: str

    @property
    def exact(self) -> bool:
        """``status == "exact"``."""
        return self.status == Conversion.EXACT

    def network(self) -> ImplicitNetwork:
        """``compile(qp, alpha=alpha)``: the input network (exact case) or the nearest MPC-like one."""
        return compile(self.qp, alpha=self.alpha)

    def __str__(self) -> str:
        mism = ", ".join(f"{k} {v:.1e}" for k, v in self.network_mismatch.items())
        lines = [f"to_qp: {self.status} ({self.method}); m = {self.qp.m}, n_U = {self.qp.n_U}, "
                 f"n_x = {self.qp.n_x}; residual {self.residual:.2e}; rebuilt network mismatch: {mism}",
                 self.message]
        if self.obstruction is not None:
            lines.append(str(self.obstruction))
        return "\n".join(lines)


def to_qp(net, *, method: str = "auto", tol: float = CONVERSE_TOL, solver: str | None = None) -> ConverseResult:
    """Recover an MPC-like QP from an implicit ReLU network.

    Parameters
    ----------
    net : ImplicitNetwork or ImplicitWeights
        The network ``y = W relu(y) + Y x + b``, ``U = W_f relu(y) + Y_f x`` with
        ``W`` (m, m), ``Y`` (m, n_x), ``b`` (m,), ``W_f`` (n_U, m), ``Y_f`` (n_U, n_x).
        Raw arrays go in through ``ImplicitWeights(W, Y, b, W_f, Y_f)``.
    method : {"auto", "algebraic", "sdp"}
        ``"auto"``/``"algebraic"``: decide existence exactly by linear algebra
        (module docstring); where no exact QP exists, solve the SDP for the
        nearest one (``"algebraic"`` raises instead of calling cvxpy).
        ``"sdp"``: always solve the SDP, then polish its D onto the exact
        solution set when one exists.
    tol : float
        Relative tolerance of the exactness decisions (symmetry, signs, PSD,
        kernels), default :data:`CONVERSE_TOL`.
    solver : str, optional
        cvxpy solver name for the SDP (default Clarabel, else SCS).

    Returns
    -------
    ConverseResult
        ``status`` ``"exact"`` or ``"nearest"``; never ``None``.

    Notes
    -----
    A non-zero ``output_bias`` (which no QP solution has) is absorbed by
    augmenting the parameter: the QP is in ``(x, 1)`` and ``state_augmented``
    is set. ``H`` is not unique where ``W_f`` lacks full row rank or ``I - W``
    has several connected blocks; every member of ``family`` gives the same ``U``.

    Examples
    --------
    >>> import numpy as np, mpc2nn
    >>> from mpc2nn.converse import to_qp
    >>> net = mpc2nn.compile(mpc2nn.systems.drummond2024())
    >>> res = to_qp(net)
    >>> res.status, bool(res.residual < 1e-12)
    ('exact', True)
    >>> X = [[-200.0, -200.0], [50.0, 10.0]]
    >>> bool(np.allclose(res.network().solve(X).U, net.solve(X).U, atol=1e-9))
    True
    """
    if method not in ("auto", "algebraic", "sdp"):
        raise ProblemDefinitionError(f"method: expected 'auto', 'algebraic' or 'sdp', got {method!r}")
    if not (isinstance(tol, (float, int)) and 0 < tol < 1):
        raise ProblemDefinitionError(f"tol: expected a number in (0, 1), got {tol!r}")
    wts = as_weights(net)
    m = wts.m
    if m == 0:
        raise ShapeError("W: expected shape (m, m) with m >= 1, got (0, 0); a network without units is affine")
    A = np.eye(m) - wts.W
    Uw, sig, Vt = np.linalg.svd(wts.W_f)
    if sig.size == 0 or sig[0] == 0.0:
        raise ProblemDefinitionError("W_f: is zero, so the output does not depend on the implicit layer; "
                                     "there are no constraints to recover")
    r = int(np.sum(sig > RANK_RTOL * sig[0]))
    U_r, U_perp, s_r, V_r = Uw[:, :r], Uw[:, r:], sig[:r], Vt[:r].T

    exact = _decide_exact(A, wts.W_f, V_r, Vt[r:].T, tol)
    if isinstance(exact, Obstruction):
        if method == "algebraic":
            raise ProblemDefinitionError(f"to_qp(method='algebraic'): {exact}")
        d, S = _nearest_sdp(A, V_r, solver)
        method_used, obstruction = "sdp", exact
        family_d, family_S = [d], [S]
    else:
        blocks, d, S = exact
        obstruction, method_used = None, "algebraic"
        if method == "sdp":
            d_sdp, _ = _nearest_sdp(A, V_r, solver)
            scales = [float(d_sdp[blk] @ d[blk] / (d[blk] @ d[blk])) for blk in blocks]
            for blk, c in zip(blocks, scales, strict=True):
                d[blk] *= c
                S[np.ix_(blk, blk)] *= c
            method_used = "sdp + polish"
        family_d, family_S = [], []
        for blk in blocks:
            db = np.zeros(m)
            db[blk] = d[blk]
            Sb = np.zeros((m, m))
            Sb[np.ix_(blk, blk)] = S[np.ix_(blk, blk)]
            family_d.append(db)
            family_S.append(Sb)

    def hessian(Sm: np.ndarray) -> np.ndarray:
        Hrr = (V_r.T @ Sm @ V_r) / np.outer(s_r, s_r)
        return U_r @ Hrr @ U_r.T

    H = hessian(S)
    if U_perp.shape[1]:
        H = H + (np.trace(H) / r) * (U_perp @ U_perp.T)
    H = 0.5 * (H + H.T)
    family = HessianFamily(tuple(family_d), tuple(hessian(Sb) for Sb in family_S), U_perp.copy())

    Y, Y_f, b = wts.Y, wts.Y_f, wts.b
    augmented = bool(np.any(wts.output_bias != 0))
    if augmented:
        Y = np.hstack([Y, np.zeros((m, 1))])
        Y_f = np.hstack([Y_f, wts.output_bias[:, None]])
    G = -wts.W_f.T @ H
    F = -H @ Y_f
    E = -d[:, None] * Y - wts.W_f.T @ H @ Y_f
    w = -d * b
    name, labels, box = "converse", (), None
    if isinstance(net, ImplicitNetwork):
        name, labels = f"converse of {net.qp.name}", net.qp.row_labels
        box = None if augmented else net.qp.sample_box
    qp = CondensedQP(H=H, F=F, G=G, w=w, E=E, n_u=wts.n_u, row_labels=labels, name=name, sample_box=box,
                     source=f"to_qp ({method_used}, {'exact' if obstruction is None else 'nearest'})")
    alpha = 1.0 / d
    W_near = np.eye(m) - (wts.W_f.T @ H @ wts.W_f) / d[:, None]
    residual = float(np.linalg.norm(W_near - wts.W) / np.linalg.norm(A))
    rebuilt = compile(qp, alpha=alpha)
    mismatch = {k: _rel_err(getattr(rebuilt, k), ref)
                for k, ref in dict(W=wts.W, Y=Y, b=b, W_f=wts.W_f, Y_f=Y_f).items()}
    if obstruction is None:
        msg = ("the network is MPC-like: compile(result.qp, alpha=result.alpha) rebuilds it"
               + (f"; H is not unique ({family.n_blocks} connected blocks, {U_perp.shape[1]} free directions)"
                  if family.n_blocks > 1 or U_perp.shape[1] else ""))
    else:
        msg = (f"no MPC-like QP reproduces this network; result.qp is the QP of the nearest MPC-like network "
               f"(relative distance ‖W - W_nearest‖_F / ‖I - W‖_F = {residual:.3e}); Y, b, W_f, Y_f are kept")
    if augmented:
        msg += "; the network has an output bias, so the QP's parameter is (x, 1)"
    status = str(Conversion.EXACT if obstruction is None else Conversion.NEAREST)
    return ConverseResult(status, qp, alpha, d, residual, mismatch,
                          W_near, obstruction, family, method_used, augmented, msg)


def _rel_err(a: np.ndarray, ref: np.ndarray) -> float:
    if ref.size == 0:
        return 0.0
    return float(np.abs(a - ref).max() / max(1.0, float(np.abs(ref).max())))


def _decide_exact(A: np.ndarray, W_f: np.ndarray, V_r: np.ndarray, V_perp: np.ndarray, tol: float):
    """``(blocks, d, S)`` with ``S = diag(d) A`` symmetric PSD and ``ker S = ker W_f``, or an Obstruction."""
    m = A.shape[0]
    diag = np.diag(A).copy()
    if np.any(diag <= 0):
        i = int(np.argmin(diag))
        return Obstruction("diagonal", (i,), None, float(diag[i]),
                           f"(I - W)_{i}{i} = {diag[i]:.6g} <= 0, but d_i (I - W)_ii = ‖(W_f)_i‖²_H must be > 0 "
                           f"(‖(W_f)_{i}‖ = {np.linalg.norm(W_f[:, i]):.3g}; a zero column would need a constraint "
                           "row without decision variables)")
    scale = np.sqrt(np.outer(diag, diag))
    big = np.abs(A) > tol * scale
    np.fill_diagonal(big, False)
    edge = big | big.T
    bad = edge & ~(big & big.T & (np.sign(A) == np.sign(A.T)))
    if bad.any():
        i, j = (int(v) for v in np.argwhere(bad)[0])
        return Obstruction("sign", (i, j), None, float(A[i, j] * A[j, i] / (scale[i, j] ** 2)),
                           f"(I - W)_{i},{j} = {A[i, j]:.6g} but (I - W)_{j},{i} = {A[j, i]:.6g} (entries below "
                           f"{tol:g}·sqrt(A_ii A_jj) count as zero): d_i A_ij = d_j A_ji has no solution with "
                           "d_i, d_j > 0")
    strength = np.where(edge, np.sqrt(np.abs(A * A.T)) / scale, 0.0)
    graph = sp.csr_matrix(np.triu(np.where(edge, 1.0 / np.maximum(strength, DIVISION_FLOOR), 0.0)))
    n_comp, labels = csgraph.connected_components(graph, directed=False)
    tree = csgraph.minimum_spanning_tree(graph)
    logd = np.zeros(m)
    preds = np.full(m, -9999)
    blocks = []
    for c in range(n_comp):
        root = int(np.flatnonzero(labels == c)[0])
        order, pred = csgraph.breadth_first_order(tree, root, directed=False, return_predecessors=True)
        for node in order[1:]:
            p = pred[node]
            logd[node] = logd[p] + np.log(A[p, node] / A[node, p])
            preds[node] = p
        blk = np.sort(order)
        logd[blk] -= logd[blk].max()
        blocks.append(blk)
    d = np.exp(logd)
    S = d[:, None] * A
    Sdiag = np.diag(S)
    asym = np.where(edge, np.abs(S - S.T) / np.sqrt(np.outer(Sdiag, Sdiag)), 0.0)
    if asym.max(initial=0.0) > tol:
        i, j = (int(v) for v in np.unravel_index(np.argmax(asym), asym.shape))
        cycle = _tree_path(preds, i, j)
        prod = float(np.prod([A[a, b_] / A[b_, a] for a, b_ in zip(cycle, cycle[1:] + cycle[:1], strict=True)]))
        return Obstruction("cycle", tuple(cycle), None, abs(prod - 1.0),
                           f"around the rows {cycle} the ratios (I - W)_ab / (I - W)_ba multiply to {prod:.12g} "
                           "instead of 1, so no positive diagonal D makes D(I - W) symmetric "
                           f"(relative asymmetry {asym[i, j]:.3e} > tol {tol:g})")
    S = 0.5 * (S + S.T)
    lam_max = float(np.linalg.eigvalsh(S)[-1]) if m else 0.0
    for blk in blocks:
        ev, evec = np.linalg.eigh(S[np.ix_(blk, blk)])
        if ev[0] < -tol * lam_max:
            v = np.zeros(m)
            v[blk] = evec[:, 0]
            return Obstruction("not-psd", tuple(int(k) for k in blk), v, float(ev[0] / lam_max),
                               f"D(I - W) has the eigenvalue {ev[0]:.6g} (relative {ev[0] / lam_max:.3e}) on the "
                               f"connected block of {blk.size} rows, where D is unique up to a positive factor; "
                               "vᵀ D (I - W) v < 0 for the vector given, while vᵀ W_fᵀ H W_f v >= 0 "
                               "for every H ≻ 0")
    if V_perp.shape[1]:
        SV = S @ V_perp
        _, s_, vt = np.linalg.svd(SV)
        if s_[0] > tol * lam_max:
            v = V_perp @ vt[0]
            return Obstruction("kernel", tuple(int(k) for k in np.flatnonzero(np.abs(v) > SUPPORT_TOL)), v,
                               float(s_[0] / lam_max),
                               f"W_f v = 0 but ‖(I - W) v‖ relative to ‖I - W‖ is {s_[0] / lam_max:.3e}: the "
                               "network output ignores a direction the implicit layer uses; "
                               "W_fᵀ H W_f v = 0 for every H")
    K = V_r.T @ S @ V_r
    ev, evec = np.linalg.eigh(K)
    if ev[0] <= tol * ev[-1]:
        v = V_r @ evec[:, 0]
        return Obstruction("kernel", tuple(int(k) for k in np.flatnonzero(np.abs(v) > SUPPORT_TOL)), v,
                           float(ev[0] / ev[-1]),
                           f"(I - W) v ≈ 0 (relative {ev[0] / ev[-1]:.3e}) while ‖W_f v‖ = "
                           f"{np.linalg.norm(W_f @ v):.3g}: vᵀ W_fᵀ H W_f v > 0 for every H ≻ 0")
    return blocks, d, S


def _tree_path(preds: np.ndarray, i: int, j: int) -> list:
    """Rows on the spanning-tree path from ``i`` to ``j`` (the cycle closes with the edge ``(j, i)``)."""
    up_i, up_j = [i], [j]
    while preds[up_i[-1]] >= 0:
        up_i.append(int(preds[up_i[-1]]))
    while preds[up_j[-1]] >= 0:
        up_j.append(int(preds[up_j[-1]]))
    pos_i = {node: k for k, node in enumerate(up_i)}
    k_j = next(k for k, node in enumerate(up_j) if node in pos_i)
    return up_i[:pos_i[up_j[k_j]] + 1] + up_j[:k_j][::-1]


def _nearest_sdp(A: np.ndarray, V_r: np.ndarray, solver: str | None) -> tuple[np.ndarray, np.ndarray]:
    """SDP ``min ‖diag(d) A - V_r K V_rᵀ‖_F`` over ``d >= 1``, ``K ⪰ εI``; returns ``(d, V_r K V_rᵀ)``."""
    cp = require("cvxpy", "converse")
    m, r = V_r.shape
    eps = SDP_MARGIN * max(float(np.mean(np.abs(np.diag(A)))), SDP_SCALE_FLOOR)
    d = cp.Variable(m)
    K = cp.Variable((r, r), symmetric=True)
    resid = cp.diag(d) @ A - V_r @ K @ V_r.T
    prob = cp.Problem(cp.Minimize(cp.norm(resid, "fro")), [d >= 1, K >> eps * np.eye(r)])
    solve_sdp(prob, solver)
    dv = np.maximum(np.asarray(d.value, float), 1.0)
    Kv = 0.5 * (K.value + K.value.T)
    ev, evec = np.linalg.eigh(Kv)
    Kv = (evec * np.maximum(ev, eps)) @ evec.T
    return dv, V_r @ Kv @ V_r.T
