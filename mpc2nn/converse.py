"""The converse direction: from an implicit ReLU network back to an MPC-like QP.

The network ``y = W relu(y) + Y x + b``, ``U = W_f relu(y) + Y_f x`` is
*MPC-like* when :func:`mpc2nn.compile` builds it from some QP
``min ½UᵀHU + xᵀFᵀU  s.t.  GU <= w + Ex`` (``H ≻ 0``) with some positive row
steps ``α``. Write ``A = I - W`` and ``D = diag(1/α)``. Since
``W = I - diag(α) G H⁻¹ Gᵀ`` and ``W_f = -H⁻¹Gᵀ``, the network is MPC-like iff

    D A = W_fᵀ H W_f      for a positive diagonal D and H ≻ 0,            (1)

a linear matrix inequality in ``(D, H)``. Given a solution, the QP is

    G = -W_fᵀ H,   F = -H Y_f,   E = -D Y - W_fᵀ H Y_f,   w = -D b,        (2)

and ``compile(qp, alpha=1/diag(D))`` gives back ``(W, Y, b, W_f, Y_f)``: ``Y``,
``b`` and ``Y_f`` never obstruct, only ``(W, W_f)`` do.

**Deciding (1) exactly.** With the thin SVD ``W_f = U_r Σ V_rᵀ`` (rank r),
``W_fᵀ H W_f = V_r (Σ U_rᵀ H U_r Σ) V_rᵀ`` ranges over all ``V_r K V_rᵀ`` with
``K ≻ 0`` as H ranges over positive definite matrices. So (1) holds iff
(a) some positive diagonal D makes ``S = D A`` symmetric, (b) ``S ⪰ 0`` and
(c) ``ker A = ker W_f``. Symmetry ``d_i A_ij = d_j A_ji`` fixes the ratios
``d_j / d_i`` along every edge of the graph of non-zero off-diagonal entries,
so D is unique up to one positive factor per connected component; those
factors do not affect (b) or (c) because S is block diagonal over the
components. :func:`to_qp` therefore decides (1) by linear algebra (a spanning
tree, one eigen-decomposition per component, one SVD) and builds H exactly as
``H = U_r Σ⁻¹ (V_rᵀ S V_r) Σ⁻¹ U_rᵀ + c U_⊥U_⊥ᵀ``. When (1) fails it returns an
:class:`Obstruction` that proves no ``(D, H)`` exists, and the nearest
MPC-like network from the SDP

    minimise ‖D A - V_r K V_rᵀ‖_F   over   d >= 1,  K ⪰ ε I,

solved with cvxpy (``pip install 'mpc2nn[converse]'``). ``method="sdp"``
solves this SDP also in the exact case and then polishes its ``D`` onto the
exact solution set, as a cross-check of the two routes.

**Recovering an MPC cost.** :func:`to_mpc` asks for weights ``(Q, R, P)`` on a
known model ``(A, B, N)`` whose condensed ``H(Q,R,P)``, ``F(Q,R,P)`` reproduce
the whole interior law ``U = Y_f x`` (``H Y_f + F = 0``) *and* lie in the set
of Hessians allowed by (1) (so that the constraint rows (2) reproduce the
constrained law too). Both conditions are linear in ``(Q, R, P, D)``; the
LMI ``Q ⪰ 0, P ⪰ 0, R ⪰ I`` is solved by SDP and the equalities are then
polished by a least-norm linear correction.

**Other activations.** :func:`relu_approximation` writes tanh, sigmoid,
hardtanh and leaky ReLU as ``c + Σ β_k relu(a_k (z - t_k))`` with a certified
error; :func:`widen` turns a network with that activation into a wider ReLU
network, to which :func:`to_qp` applies.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse import csgraph

from ._checks import as_matrix, as_states, require
from .exceptions import ProblemDefinitionError, ShapeError, SolverError
from .implicit import ImplicitNetwork, compile
from .problem import MPCProblem, StageConstraint
from .qp import CondensedQP, _prediction_matrices, condense

__all__ = [
    "ImplicitWeights",
    "Obstruction",
    "HessianFamily",
    "ConverseResult",
    "to_qp",
    "MPCRecovery",
    "to_mpc",
    "ReluApproximation",
    "relu_approximation",
    "WidenedNetwork",
    "widen",
    "ACTIVATIONS",
]

#: Default relative tolerance of the exactness decisions in :func:`to_qp`.
CONVERSE_TOL = 1e-9
#: Relative tolerance used by :func:`to_mpc` to read constraint rows as MPC constraints (coefficients
#: normalised to a largest magnitude of 1 below it count as zero; rows closer than it are the same constraint).
ROW_TOL = 1e-7


# --------------------------------------------------------------------------
# raw network weights
# --------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class ImplicitWeights:
    """Weights of an implicit network, without the QP it may have come from.

    ``y = W φ(y) + Y x + b``, ``U = W_f φ(y) + Y_f x + output_bias`` with the
    activation ``φ`` = relu unless stated otherwise by whoever uses it.

    Parameters
    ----------
    W : (m, m); Y : (m, n_x); b : (m,); W_f : (n_U, m); Y_f : (n_U, n_x)
    output_bias : (n_U,), optional
        Constant output offset (zero by default). A QP's solution has none; see
        :func:`to_qp` for how a non-zero one is handled.
    n_u : int, optional
        Outputs per stage (``n_U`` by default: the whole output is one stage).

    Examples
    --------
    >>> import numpy as np
    >>> from mpc2nn.converse import ImplicitWeights
    >>> wts = ImplicitWeights(W=[[0.5]], Y=[[1.0]], b=[0.0], W_f=[[1.0]], Y_f=[[0.0]])
    >>> wts.m, wts.n_x, wts.n_U
    (1, 1, 1)
    """

    W: np.ndarray
    Y: np.ndarray
    b: np.ndarray
    W_f: np.ndarray
    Y_f: np.ndarray
    output_bias: np.ndarray | None = None
    n_u: int | None = None

    def __post_init__(self):
        W = as_matrix("W", self.W, ("m", "m"), (None, None))
        if W.shape[0] != W.shape[1]:
            raise ShapeError(f"W: expected shape (m, m), a square matrix, got {W.shape}")
        m = W.shape[0]
        Y = as_matrix("Y", self.Y, ("m", "n_x"), (m, None))
        b = as_matrix("b", self.b, ("m",), (m,))
        W_f = as_matrix("W_f", self.W_f, ("n_U", "m"), (None, m))
        n_U = W_f.shape[0]
        Y_f = as_matrix("Y_f", self.Y_f, ("n_U", "n_x"), (n_U, Y.shape[1]))
        bias = np.zeros(n_U) if self.output_bias is None else as_matrix(
            "output_bias", self.output_bias, ("n_U",), (n_U,))
        n_u = n_U if self.n_u is None else self.n_u
        if not isinstance(n_u, (int, np.integer)) or n_u < 1 or n_U % n_u:
            raise ShapeError(f"n_u: expected a positive divisor of n_U = {n_U}, got {self.n_u!r}")
        for k, v in dict(W=W, Y=Y, b=b, W_f=W_f, Y_f=Y_f, output_bias=bias).items():
            v = np.ascontiguousarray(v)
            v.setflags(write=False)
            object.__setattr__(self, k, v)
        object.__setattr__(self, "n_u", int(n_u))

    @classmethod
    def from_network(cls, net: ImplicitNetwork) -> "ImplicitWeights":
        """The weights of a compiled :class:`~mpc2nn.ImplicitNetwork`."""
        return cls(net.W, net.Y, net.b, net.W_f, net.Y_f, None, net.n_u)

    @property
    def m(self) -> int:
        """Width of the implicit layer."""
        return self.W.shape[0]

    @property
    def n_x(self) -> int:
        """Number of inputs (states)."""
        return self.Y.shape[1]

    @property
    def n_U(self) -> int:
        """Number of outputs."""
        return self.W_f.shape[0]

    def output(self, y, X) -> np.ndarray:
        """``(B, n_U)`` output ``W_f relu(y) + Y_f x + output_bias`` for ``y`` (B, m), ``X`` (B, n_x)."""
        X = as_states(X, self.n_x)
        return np.maximum(np.asarray(y, float), 0.0) @ self.W_f.T + X @ self.Y_f.T + self.output_bias

    def fixed_point_residual(self, y, X) -> np.ndarray:
        """``(B,)`` ``‖y - W relu(y) - Y x - b‖∞``."""
        X = as_states(X, self.n_x)
        y = np.atleast_2d(np.asarray(y, float))
        return np.abs(y - np.maximum(y, 0.0) @ self.W.T - X @ self.Y.T - self.b).max(axis=1, initial=0.0)


def _as_weights(net) -> ImplicitWeights:
    if isinstance(net, ImplicitWeights):
        return net
    if isinstance(net, ImplicitNetwork):
        return ImplicitWeights.from_network(net)
    raise ProblemDefinitionError(
        f"net: expected an ImplicitNetwork or ImplicitWeights(W, Y, b, W_f, Y_f), got {type(net).__name__}")


# --------------------------------------------------------------------------
# to_qp
# --------------------------------------------------------------------------
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
    d_basis : tuple of (m,) arrays; H_basis : tuple of (n_U, n_U) arrays; free_basis : (n_U, n_U - r)
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
        return self.status == "exact"

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
    wts = _as_weights(net)
    m = wts.m
    if m == 0:
        raise ShapeError("W: expected shape (m, m) with m >= 1, got (0, 0); a network without units is affine")
    A = np.eye(m) - wts.W
    Uw, sig, Vt = np.linalg.svd(wts.W_f)
    if sig.size == 0 or sig[0] == 0.0:
        raise ProblemDefinitionError("W_f: is zero, so the output does not depend on the implicit layer; "
                                     "there are no constraints to recover")
    r = int(np.sum(sig > 1e-12 * sig[0]))
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
            for blk, c in zip(blocks, scales):
                d[blk] *= c
                S[np.ix_(blk, blk)] *= c
            method_used = "sdp + polish"
        family_d, family_S = [], []
        for blk in blocks:
            db = np.zeros(m)
            db[blk] = d[blk]
            Sb = np.zeros((m, m))
            Sb[np.ix_(blk, blk)] = S[np.ix_(blk, blk)]
            family_d.append(db), family_S.append(Sb)

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
    qp = CondensedQP(H, F, G, w, E, wts.n_u, row_labels=labels, name=name, sample_box=box,
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
    return ConverseResult("exact" if obstruction is None else "nearest", qp, alpha, d, residual, mismatch,
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
    graph = sp.csr_matrix(np.triu(np.where(edge, 1.0 / np.maximum(strength, 1e-300), 0.0)))
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
        prod = float(np.prod([A[a, b_] / A[b_, a] for a, b_ in zip(cycle, cycle[1:] + cycle[:1])]))
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
            return Obstruction("kernel", tuple(int(k) for k in np.flatnonzero(np.abs(v) > 1e-12)), v,
                               float(s_[0] / lam_max),
                               f"W_f v = 0 but ‖(I - W) v‖ relative to ‖I - W‖ is {s_[0] / lam_max:.3e}: the "
                               "network output ignores a direction the implicit layer uses; "
                               "W_fᵀ H W_f v = 0 for every H")
    K = V_r.T @ S @ V_r
    ev, evec = np.linalg.eigh(K)
    if ev[0] <= tol * ev[-1]:
        v = V_r @ evec[:, 0]
        return Obstruction("kernel", tuple(int(k) for k in np.flatnonzero(np.abs(v) > 1e-12)), v,
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


def _cvxpy_solve(problem, solver: str | None):
    cp = require("cvxpy", "converse")
    names = [solver] if solver is not None else [s for s in ("CLARABEL", "SCS") if s in cp.installed_solvers()]
    if not names:
        raise SolverError("no SDP solver found for cvxpy: pip install 'mpc2nn[converse]' (installs Clarabel)")
    last = None
    for name in names:
        try:
            with warnings.catch_warnings():
                # "optimal_inaccurate" is accepted: every caller polishes or reports its residuals
                warnings.filterwarnings("ignore", message="Solution may be inaccurate", category=UserWarning)
                problem.solve(solver=name)
        except cp.error.SolverError as exc:
            last = exc
            continue
        if problem.status in ("optimal", "optimal_inaccurate"):
            return name
        last = problem.status
    raise SolverError(f"the SDP was not solved ({', '.join(names)}): {last}")


def _nearest_sdp(A: np.ndarray, V_r: np.ndarray, solver: str | None) -> tuple[np.ndarray, np.ndarray]:
    """SDP ``min ‖diag(d) A - V_r K V_rᵀ‖_F`` over ``d >= 1``, ``K ⪰ εI``; returns ``(d, V_r K V_rᵀ)``."""
    cp = require("cvxpy", "converse")
    m, r = V_r.shape
    eps = 1e-6 * max(float(np.mean(np.abs(np.diag(A)))), 1e-12)
    d = cp.Variable(m)
    K = cp.Variable((r, r), symmetric=True)
    resid = cp.diag(d) @ A - V_r @ K @ V_r.T
    prob = cp.Problem(cp.Minimize(cp.norm(resid, "fro")), [d >= 1, K >> eps * np.eye(r)])
    _cvxpy_solve(prob, solver)
    dv = np.maximum(np.asarray(d.value, float), 1.0)
    Kv = 0.5 * (K.value + K.value.T)
    ev, evec = np.linalg.eigh(Kv)
    Kv = (evec * np.maximum(ev, eps)) @ evec.T
    return dv, V_r @ Kv @ V_r.T


# --------------------------------------------------------------------------
# to_mpc
# --------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class MPCRecovery:
    """Result of :func:`to_mpc`.

    Attributes
    ----------
    status : str
        ``"exact"``: the recovered MPC reproduces the network on every sampled
        state (within ``tol``); ``"approximate"``: it does not (see the errors).
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
    X : (B, n_x) states used for the check
    U_network, U_recovered : (B, N·n_u) the network's and the recovered MPC's sequences
    max_error : float
        ``max |U_recovered - U_network|`` over states where both are feasible,
        relative to ``max(1, max |U_network|)``.
    feasibility_agreement : float
        Fraction of states on which both agree about feasibility.
    reference : str
        What ``U_network`` was computed with.
    message : str
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
        return self.status == "exact"

    def __str__(self) -> str:
        return (f"to_mpc: {self.status}; gain residual {self.gain_residual:.2e}, Hessian residual "
                f"{self.hessian_residual:.2e}; on {self.X.shape[0]} states max relative error "
                f"{self.max_error:.2e}, feasibility agreement {self.feasibility_agreement:.3f}\n{self.message}")


def _sym_vec_maps(N: int, n_x: int, n_u: int, Phi: np.ndarray, Gamma: np.ndarray):
    """Column-major linear maps ``vec(Q), vec(R), vec(P) ↦ vec(H)`` and ``↦ vec(F)``."""
    n_U = N * n_u
    L_HQ = np.zeros((n_U * n_U, n_x * n_x))
    L_FQ = np.zeros((n_U * n_x, n_x * n_x))
    L_HR = np.zeros((n_U * n_U, n_u * n_u))
    for k in range(N):
        Gk, Pk = Gamma[k * n_x:(k + 1) * n_x], Phi[k * n_x:(k + 1) * n_x]
        Sk = np.zeros((n_u, n_U))
        Sk[:, k * n_u:(k + 1) * n_u] = np.eye(n_u)
        L_HR += np.kron(Sk.T, Sk.T)
        if k < N - 1:
            L_HQ += np.kron(Gk.T, Gk.T)
            L_FQ += np.kron(Pk.T, Gk.T)
    GN, PN = Gamma[-n_x:], Phi[-n_x:]
    return L_HQ, L_HR, np.kron(GN.T, GN.T), L_FQ, np.kron(PN.T, GN.T)


def _commutation(n: int) -> np.ndarray:
    """``T`` with ``T vec(X) = vec(Xᵀ)`` (column-major), shape (n², n²)."""
    T = np.zeros((n * n, n * n))
    for i in range(n):
        for j in range(n):
            T[j + i * n, i + j * n] = 1.0
    return T


def to_mpc(net, A, B, horizon: int, *, X=None, n_samples: int = 100, seed: int = 0,
           tol: float = 1e-7, solver: str | None = None) -> MPCRecovery:
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
    input bounds, state bounds (``x_1..x_N``), stage constraints or terminal
    rows of an :class:`~mpc2nn.MPCProblem`; with the rows known exactly, the
    weights are refined on ``H W_f + G*ᵀ diag(ρ) = 0`` and ``H Y_f + F = 0``
    (exact data, no recovered H). Finally the recovered MPC is solved exactly
    on sampled states and compared with the network.

    ``(Q, R, P)`` need not be unique (on ``drummond2024`` a family of
    ``(Q, P)`` gives the same condensed cost); any member reproduces the law.

    Parameters
    ----------
    net : ImplicitNetwork or ImplicitWeights
        Network with ``n_U = N·n_u`` outputs and ``n_x`` inputs (no output bias).
    A : (n_x, n_x); B : (n_x, n_u); horizon : int N
    X : (B, n_x) states for the check, optional
        Default: ``n_samples`` uniform states of the network's ``qp.sample_box``.
    n_samples, seed : sampling when ``X`` is not given
    tol : float
        Relative tolerance of the check (and of "exact"). The default 1e-7 is
        above what the data allow on weakly identifiable problems: the network's
        ``Y_f = -H⁻¹F`` carries roundoff of order ``cond(H)·eps``, and on the
        double integrator a direction of ``(Q, R, P)`` changes the law by only
        ~1e-9 relative, so the recovered law is within ~3e-8 there.
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
    wts = _as_weights(net)
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
        X = np.random.default_rng(seed).uniform(lo, hi, (n_samples, n_x))
    X = as_states(X, n_x)

    conv = to_qp(wts, tol=CONVERSE_TOL, solver=solver)
    fam = conv.family
    Phi, Gamma = _prediction_matrices(A, B, N)
    L_HQ, L_HR, L_HP, L_FQ, L_FP = _sym_vec_maps(N, n_x, n_u, Phi, Gamma)
    Kg = np.kron(wts.Y_f.T, np.eye(n_U))
    Gain = [Kg @ L_HQ + L_FQ, Kg @ L_HR, Kg @ L_HP + L_FP]
    Hbasis = np.column_stack([Hb.reshape(-1, order="F") for Hb in fam.H_basis])
    U_perp = fam.free_basis
    f = U_perp.shape[1]
    # vec(Z U_⊥ᵀ + U_⊥ Zᵀ) = (kron(U_⊥, I) + kron(I, U_⊥) T) vec(Z), Z of shape (n_U, f)
    L_Z = np.zeros((n_U * n_U, 0))
    if f:
        L_Z = np.kron(U_perp, np.eye(n_U)) + np.kron(np.eye(f), U_perp) @ _commutation_rect(n_U, f)
    h_scale = max(float(np.abs(Hbasis).max()), 1e-300)
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
    objective = cp.norm(res_h) / h_scale + cp.norm(res_g) / g_scale + 1e-6 * cp.trace(Rv) / n_u
    prob = cp.Problem(cp.Minimize(objective), [Qv >> 0, Pv >> 0, Rv >> np.eye(n_u), cv >= 0])
    _cvxpy_solve(prob, solver)
    theta0 = np.concatenate([Qv.value.reshape(-1, order="F"), Rv.value.reshape(-1, order="F"),
                             Pv.value.reshape(-1, order="F"), cv.value] + ([Zv.value] if f else []))

    # polish: least-norm correction onto {Lθ = 0} (the equalities and the symmetry of Q, R, P)
    nq, nr = n_x * n_x, n_u * n_u
    n_theta = theta0.size
    rows = [np.hstack([L_HQ, L_HR, L_HP, -Hbasis, -L_Z]) / h_scale,
            np.hstack([Gain[0], Gain[1], Gain[2], np.zeros((n_U * n_x, n_theta - 2 * nq - nr))]) / g_scale]
    for off, n in ((0, n_x), (nq, n_u), (nq + nr, n_x)):
        Sym = np.zeros((n * n, n_theta))
        Sym[:, off:off + n * n] = np.eye(n * n) - _commutation(n)
        rows.append(Sym)
    L = np.vstack(rows)
    col = np.maximum(np.linalg.norm(L, axis=0), 1e-300)
    theta = theta0.copy()
    for _ in range(2):
        theta = theta - np.linalg.lstsq(L / col, L @ theta, rcond=1e-9)[0] / col
    polished = bool(np.linalg.norm(theta - theta0) <= 1e-3 * np.linalg.norm(theta0))

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
    d = sum(cj * dj for cj, dj in zip(c, fam.d_basis))
    d = np.where(d > 0, d, 1.0)
    DA = d[:, None] * (np.eye(wts.m) - wts.W)
    gain_res = float(np.linalg.norm(H_c @ wts.Y_f + F_c) / (np.linalg.norm(H_c) * max(np.linalg.norm(wts.Y_f),
                                                                                      1e-300)))
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
            np.linalg.norm(wts.Y_f), 1e-300)))
    else:
        qp_rec = CondensedQP(H_c, F_c, G, w, E, n_u, Phi, Gamma, None, (), None, "recovered MPC (general rows)",
                             None, "to_mpc (rows not expressible as MPCProblem constraints)")
    if isinstance(net, ImplicitNetwork):
        ref_sol, reference = net.solve(X), "the network's exact fixed points (ImplicitNetwork.solve)"
    elif conv.exact:
        ref_sol, reference = conv.network().solve(X), "the exact converse QP of the weights (to_qp)"
    else:
        ref_sol, reference = None, "none: the weights are not MPC-like, so there is no exact reference"
    new_sol = compile(qp_rec).solve(X)
    if ref_sol is None:
        U_ref = np.full_like(new_sol.U, np.nan)
        err, agree = float("nan"), float("nan")
    else:
        U_ref = ref_sol.U
        both = ref_sol.feasible & new_sol.feasible
        agree = float(np.mean(ref_sol.feasible == new_sol.feasible))
        scale = max(1.0, float(np.abs(U_ref[both]).max(initial=0.0)))
        err = float(np.abs(new_sol.U[both] - U_ref[both]).max(initial=0.0) / scale)
    ok = ref_sol is not None and err <= tol and agree == 1.0
    msg = (f"recovered Q ⪰ 0, R ⪰ I, P ⪰ 0 on the given (A, B, N = {N}) "
           + ("(SDP, equalities polished)" if polished else "(SDP, not polished: the correction was too large)")
           + "; "
           + ("constraint rows read as an MPCProblem" + (", weights refined on them" if refined else "")
              if problem is not None else f"rows kept general: {why}")
           + f"; checked against {reference}")
    if not ok and ref_sol is not None:
        msg += (f"; the recovered MPC does NOT reproduce the network (max relative error {err:.2e}, "
                f"feasibility agreement {agree:.3f})")
    return MPCRecovery("exact" if ok else "approximate", problem, qp_rec, Q, R, P, gain_res, hess_res, described,
                       X, U_ref, new_sol.U, err, agree, reference, msg)


def _commutation_rect(p: int, q: int) -> np.ndarray:
    """``T`` with ``T vec(Z) = vec(Zᵀ)`` for ``Z`` of shape (p, q), column-major."""
    T = np.zeros((p * q, p * q))
    for i in range(p):
        for j in range(q):
            T[j + i * q, i + j * p] = 1.0
    return T


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
    directions of ``(Q, R, P)`` are corrected (``rcond = 1e-12``). Returns ``(Q, R, P, refined)``;
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
        Sym[:, off:off + n * n] = np.eye(n * n) - _commutation(n)
        blocks.append(Sym)
    blocks = [blk / max(float(np.abs(blk).max()), 1e-300) for blk in blocks]
    L = np.vstack(blocks)
    theta0 = np.concatenate([Q.reshape(-1, order="F"), R.reshape(-1, order="F"), P.reshape(-1, order="F"), rho0])
    col = np.maximum(np.linalg.norm(L, axis=0), 1e-300)
    theta = theta0.copy()
    for _ in range(2):
        theta = theta - np.linalg.lstsq(L / col, L @ theta, rcond=1e-12)[0] / col
    Q1, P1 = (0.5 * (M + M.T) for M in (theta[:nq].reshape(n_x, n_x, order="F"),
                                         theta[nq + nr:2 * nq + nr].reshape(n_x, n_x, order="F")))
    R1 = theta[nq:nq + nr].reshape(n_u, n_u, order="F")
    R1 = 0.5 * (R1 + R1.T)
    in_cones = (np.linalg.eigvalsh(R1)[0] > 0 and np.all(theta[2 * nq + nr:] > 0)
                and all(np.linalg.eigvalsh(M)[0] >= -1e-11 * max(1.0, np.linalg.norm(M, 2)) for M in (Q1, P1)))
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
        res = np.linalg.norm(sol @ Mk.T - J, axis=1) / np.maximum(np.linalg.norm(J, axis=1), 1e-300)
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
    stage, term, described = [], [], []
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
    return spec, Gstar, tuple(described), ""


def _lin(c: np.ndarray, sym: str) -> str:
    return " + ".join(f"{v:.4g}·{sym}[{i}]" for i, v in enumerate(c) if v != 0)


# --------------------------------------------------------------------------
# ReLU approximations of other activations
# --------------------------------------------------------------------------
def _sigmoid(z):
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(z, float)))


#: Named activations: ``(function, Lipschitz constant, largest magnitude of φ'' or None for piecewise-linear ones)``.
ACTIVATIONS = {
    "tanh": (np.tanh, 1.0, 4.0 / (3.0 * np.sqrt(3.0))),
    "sigmoid": (_sigmoid, 0.25, np.sqrt(3.0) / 18.0),
    "hardtanh": (lambda z: np.clip(z, -1.0, 1.0), 1.0, None),
    "relu": (lambda z: np.maximum(z, 0.0), 1.0, None),
    "leaky_relu": (None, 1.0, None),
}


@dataclass(frozen=True, eq=False)
class ReluApproximation:
    """``φ̃(z) = constant + Σ_k weights[k] · relu(signs[k] · (z - breakpoints[k]))``.

    Attributes
    ----------
    activation : str; negative_slope : float (leaky ReLU only)
    interval : (lo, hi) or None
        Where the approximation is made (``None`` for exact representations).
    pieces : int or None
        Linear pieces inside the interval (``None`` for exact representations).
    breakpoints, signs, weights : (K,) arrays; constant : float
    exact : bool
        The representation is exact on all of R (piecewise-linear activations).
    max_error : float
        Certified bound on ``|φ - φ̃|`` over the interval: the largest error on a
        check grid of ``check_points`` per piece plus ``max|φ''| δ² / 8`` (δ the
        grid step; the error's interpolant on the grid is within that of it).
    observed_error : float
        Largest error found on the check grid (a lower bound on the true maximum).
    a_priori_error : float
        ``max|φ''| h² / 8`` for pieces of width h (the classical interpolation bound).
    tail_error : float
        ``sup |φ - φ̃|`` outside the interval (φ̃ is constant there; φ is monotone).
    lipschitz : float
        Lipschitz constant of φ, which bounds that of φ̃.
    """

    activation: str
    negative_slope: float
    interval: tuple | None
    pieces: int | None
    breakpoints: np.ndarray
    signs: np.ndarray
    weights: np.ndarray
    constant: float
    exact: bool
    max_error: float
    observed_error: float
    a_priori_error: float
    tail_error: float
    lipschitz: float

    @property
    def n_relu(self) -> int:
        """Number of ReLUs K per original unit."""
        return self.breakpoints.size

    @property
    def global_error(self) -> float:
        """Bound on ``|φ - φ̃|`` over all of R: ``max(max_error, tail_error)``."""
        return max(self.max_error, self.tail_error)

    def __call__(self, z) -> np.ndarray:
        """φ̃ elementwise (any shape)."""
        z = np.asarray(z, float)
        t = np.maximum(self.signs * (z[..., None] - self.breakpoints), 0.0)
        return self.constant + t @ self.weights

    def target(self, z) -> np.ndarray:
        """The activation φ itself, elementwise."""
        return _activation_fn(self.activation, self.negative_slope)(np.asarray(z, float))


def _activation_fn(name: str, slope: float):
    if name == "leaky_relu":
        return lambda z: np.where(z >= 0, z, slope * z)
    return ACTIVATIONS[name][0]


def relu_approximation(activation: str, interval=None, pieces: int | None = None, *,
                       negative_slope: float = 0.01, check_points: int = 64) -> ReluApproximation:
    """Piecewise-linear approximation of an activation as a sum of shifted ReLUs.

    Smooth activations (``"tanh"``, ``"sigmoid"``) are interpolated linearly at
    ``pieces + 1`` equally spaced points of ``interval`` and held constant
    outside it. Piecewise-linear ones (``"hardtanh"`` = clip to [-1, 1],
    ``"leaky_relu"``, ``"relu"``) are represented exactly through their kinks.
    The sum is anchored at ``z = 0`` (or at ``lo`` if 0 is outside the interval),
    ``φ̃(z) = φ̃(z₀) + s₊ relu(z - z₀) - s₋ relu(z₀ - z)
    + Σ_{t>z₀} Δ_t relu(z - t) + Σ_{t<z₀} Δ_t relu(t - z)``
    with ``s±`` the slopes at ``z₀`` and ``Δ_t`` the slope jumps, so that the
    constant is ``φ̃(0)`` (0 for tanh on a symmetric interval).

    Parameters
    ----------
    activation : {"tanh", "sigmoid", "hardtanh", "leaky_relu", "relu"}
    interval : (lo, hi), required for tanh and sigmoid; must be None otherwise
    pieces : int >= 1, required for tanh and sigmoid; must be None otherwise
    negative_slope : float in [0, 1), slope of leaky ReLU for z < 0
    check_points : int >= 2, points per piece of the grid that certifies ``max_error``

    Returns
    -------
    ReluApproximation

    Examples
    --------
    >>> from mpc2nn.converse import relu_approximation
    >>> ap = relu_approximation("tanh", (-3.0, 3.0), 12)
    >>> ap.n_relu, bool(ap.observed_error <= ap.max_error <= ap.a_priori_error), float(ap.constant)
    (14, True, 0.0)
    >>> hard = relu_approximation("hardtanh")   # relu(z) - relu(-z) + relu(-1 - z) - relu(z - 1)
    >>> hard.breakpoints.tolist(), hard.signs.tolist(), hard.weights.tolist()
    ([0.0, 0.0, -1.0, 1.0], [1.0, -1.0, -1.0, 1.0], [1.0, -1.0, 1.0, -1.0])
    """
    if activation not in ACTIVATIONS:
        raise ProblemDefinitionError(f"activation: expected one of {sorted(ACTIVATIONS)}, got {activation!r}")
    if not (0.0 <= negative_slope < 1.0):
        raise ProblemDefinitionError(f"negative_slope: expected a number in [0, 1), got {negative_slope!r}")
    phi = _activation_fn(activation, negative_slope)
    _, lip, curv = ACTIVATIONS[activation]
    if curv is None:
        if interval is not None or pieces is not None:
            raise ProblemDefinitionError(f"{activation} is piecewise linear and represented exactly through its "
                                         "kinks: leave interval and pieces out (None)")
        kinks = {"hardtanh": [-1.0, 1.0], "relu": [0.0], "leaky_relu": [0.0]}[activation]
        slopes = {"hardtanh": [0.0, 1.0, 0.0], "relu": [0.0, 1.0], "leaky_relu": [negative_slope, 1.0]}[activation]
        t, a, beta, const = _anchored_terms(np.array(kinks), np.array(slopes), phi, 0.0)
        return ReluApproximation(activation, negative_slope, None, None, t, a, beta, const, True, 0.0, 0.0, 0.0,
                                 0.0, lip)
    if interval is None or pieces is None:
        raise ProblemDefinitionError(f"{activation}: give interval=(lo, hi) and pieces (an integer >= 1)")
    if len(interval) != 2 or not np.all(np.isfinite(interval)) or not interval[0] < interval[1]:
        raise ProblemDefinitionError(f"interval: expected finite (lo, hi) with lo < hi, got {interval!r}")
    if isinstance(pieces, (bool, np.bool_)) or not isinstance(pieces, (int, np.integer)) or pieces < 1:
        raise ProblemDefinitionError(f"pieces: expected an integer >= 1, got {pieces!r}")
    if not isinstance(check_points, (int, np.integer)) or check_points < 2:
        raise ProblemDefinitionError(f"check_points: expected an integer >= 2, got {check_points!r}")
    lo, hi = float(interval[0]), float(interval[1])
    nodes = np.linspace(lo, hi, pieces + 1)
    vals = phi(nodes)
    seg = np.diff(vals) / np.diff(nodes)
    slopes = np.concatenate([[0.0], seg, [0.0]])
    z0 = 0.0 if lo < 0.0 < hi else lo
    t, a, beta, const = _anchored_terms(nodes, slopes, phi, z0, values=(nodes, vals))
    approx = ReluApproximation(activation, negative_slope, (lo, hi), int(pieces), t, a, beta, const, False,
                               0.0, 0.0, 0.0, 0.0, lip)
    h = (hi - lo) / pieces
    grid = np.linspace(lo, hi, pieces * (check_points - 1) + 1)
    observed = float(np.abs(phi(grid) - approx(grid)).max())
    delta = h / (check_points - 1)
    tail = float(max(abs(vals[0] - phi(-np.inf * np.ones(1)))[0], abs(phi(np.inf * np.ones(1))[0] - vals[-1])))
    return ReluApproximation(activation, negative_slope, (lo, hi), int(pieces), t, a, beta, const, False,
                             observed + curv * delta ** 2 / 8.0, observed, curv * h ** 2 / 8.0, tail, lip)


def _anchored_terms(kinks: np.ndarray, slopes: np.ndarray, phi, z0: float, values=None):
    """ReLU terms of the continuous PWL function with the given kinks and slopes (len(kinks) + 1).

    ``values = (nodes, φ(nodes))`` fixes the level (interpolation); otherwise φ(z₀) does (exact case).
    """
    # value at z0 of the PWL function
    if values is None:
        c = float(phi(np.array([z0]))[0])
    else:
        c = float(np.interp(z0, values[0], values[1]))
    # slope just right / left of z0
    i_right = int(np.searchsorted(kinks, z0, side="right"))
    i_left = int(np.searchsorted(kinks, z0, side="left"))
    s_right, s_left = slopes[i_right], slopes[i_left]
    t, a, beta = [], [], []
    if s_right != 0.0:
        t.append(z0), a.append(1.0), beta.append(s_right)
    if s_left != 0.0:
        t.append(z0), a.append(-1.0), beta.append(-s_left)
    jumps = np.diff(slopes)
    for tk, dk in zip(kinks, jumps):
        if dk == 0.0 or tk == z0:
            continue
        if tk > z0:
            t.append(tk), a.append(1.0), beta.append(dk)
        else:
            t.append(tk), a.append(-1.0), beta.append(dk)
    return np.array(t), np.array(a), np.array(beta), c


@dataclass(frozen=True, eq=False)
class WidenedNetwork:
    """A ReLU implicit network equivalent to ``y = W φ̃(y) + Y x + b``, ``U = W_f φ̃(y) + Y_f x + bias``.

    Construction (K = ``approximation.n_relu`` terms, ``φ̃(y) = c + Σ_k β_k relu(a_k (y - t_k))``):
    the new pre-activations are ``z_k = a_k (y - t_k 1) ∈ R^m``, stacked as
    ``z = (z_1, ..., z_K) ∈ R^{mK}``; substituting gives the ReLU network

        Ŵ = (a βᵀ) ⊗ W,  Ŷ = a ⊗ Y,  b̂ = a ⊗ (b + c W 1) - (a ∘ t) ⊗ 1,
        Ŵ_f = βᵀ ⊗ W_f,  Ŷ_f = Y_f,  output bias + c W_f 1.

    Its fixed points are exactly ``z_k = a_k (y - t_k)`` for the fixed points
    ``y`` of the φ̃-network (and ``y = a_k z_k + t_k`` back, for any k). So the
    only error is ``|φ - φ̃| <= ε`` (``approximation.global_error``).

    Attributes
    ----------
    weights : ImplicitWeights (width mK)
    approximation : ReluApproximation
    original : ImplicitWeights
    contraction : float
        ``ρ = Lip(φ) ‖W‖_∞``.
    y_error_bound, output_error_bound : float or None
        When ``ρ < 1`` both networks have unique fixed points ``y``, ``ỹ`` and
        ``‖y - ỹ‖_∞ <= ‖W‖_∞ ε / (1 - ρ)``,
        ``‖U - Ũ‖_∞ <= ‖W_f‖_∞ (ε + Lip(φ) ‖y - ỹ‖_∞)``; ``None`` when ``ρ >= 1``
        (no a-priori bound is claimed then).
    """

    weights: ImplicitWeights
    approximation: ReluApproximation
    original: ImplicitWeights
    contraction: float
    y_error_bound: float | None
    output_error_bound: float | None

    def y_from_z(self, z) -> np.ndarray:
        """``(B, m)`` pre-activations of the φ̃-network from widened ones ``z`` (B, mK) (first block)."""
        z = np.atleast_2d(np.asarray(z, float))
        ap = self.approximation
        return ap.signs[0] * z[:, :self.original.m] + ap.breakpoints[0]

    def z_from_y(self, y) -> np.ndarray:
        """``(B, mK)`` widened pre-activations from ``y`` (B, m)."""
        y = np.atleast_2d(np.asarray(y, float))
        ap = self.approximation
        return np.concatenate([a * (y - t) for a, t in zip(ap.signs, ap.breakpoints)], axis=1)


def widen(net, approximation: ReluApproximation) -> WidenedNetwork:
    """Turn an implicit network with activation φ into a wider ReLU implicit network.

    Parameters
    ----------
    net : ImplicitWeights or ImplicitNetwork
        ``y = W φ(y) + Y x + b``, ``U = W_f φ(y) + Y_f x (+ output_bias)``, where φ is
        ``approximation.activation``.
    approximation : ReluApproximation
        From :func:`relu_approximation`.

    Returns
    -------
    WidenedNetwork
        See there for the construction and the error statement.

    Examples
    --------
    >>> import numpy as np
    >>> from mpc2nn.converse import ImplicitWeights, relu_approximation, widen
    >>> wts = ImplicitWeights(W=[[0.3]], Y=[[1.0]], b=[0.0], W_f=[[1.0]], Y_f=[[0.0]])
    >>> wide = widen(wts, relu_approximation("hardtanh"))
    >>> wide.weights.m, wide.output_error_bound
    (4, 0.0)
    """
    if not isinstance(approximation, ReluApproximation):
        raise ProblemDefinitionError(f"approximation: expected a ReluApproximation, got {type(approximation).__name__}")
    wts = _as_weights(net)
    m = wts.m
    a, t, beta, c = approximation.signs, approximation.breakpoints, approximation.weights, approximation.constant
    ones = np.ones(m)
    W_hat = np.kron(np.outer(a, beta), wts.W)
    Y_hat = np.kron(a[:, None], wts.Y)
    b_hat = np.kron(a, wts.b + c * (wts.W @ ones)) - np.kron(a * t, ones)
    Wf_hat = np.kron(beta[None, :], wts.W_f)
    bias = wts.output_bias + c * (wts.W_f @ ones)
    wide = ImplicitWeights(W_hat, Y_hat, b_hat, Wf_hat, wts.Y_f, bias, wts.n_u)
    lip = approximation.lipschitz
    rho = lip * float(np.abs(wts.W).sum(axis=1).max())
    eps = approximation.global_error
    if rho < 1.0:
        y_err = float(np.abs(wts.W).sum(axis=1).max()) * eps / (1.0 - rho)
        u_err = float(np.abs(wts.W_f).sum(axis=1).max()) * (eps + lip * y_err)
    else:
        y_err = u_err = None
    return WidenedNetwork(wide, approximation, wts, rho, y_err, u_err)

