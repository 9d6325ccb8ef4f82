"""When an implicit layer's weights are an LCP the exact solver can solve: check and projection.

With the layer's fixed row steps ``α > 0`` and ``D = diag(1/α)``, the fixed points of
``y = W relu(y) + Yθ + b`` are the solutions ``λ = relu(y)``, ``s = relu(-y)/α`` of

    λ >= 0,  s = S λ + q(θ) >= 0,  λᵀs = 0,     S = D(I - W),  q(θ) = -D(Yθ + b).

Where ``S`` is symmetric positive semidefinite this is the KKT system of the QP
``min ½‖z‖² subject to Gz <= q(θ)`` with ``S = GGᵀ`` (``G = V_r Σ_r^½`` from the eigenvalues
of ``S``, ``z = -Gᵀλ``), which :meth:`mpc2nn.ImplicitNetwork.solve` solves exactly;
the output ``U = W_f λ + Y_f θ`` is unique where ``W_f`` vanishes on the kernel of ``S``
(λ is unique only up to that kernel). :func:`check_structure` measures the three
conditions (symmetry, definiteness, output kernel) relative to the weights' scale;
the network is moreover *MPC-like* (:func:`mpc2nn.converse.to_qp` finds an exact QP)
when also ``ker W_f ⊆ ker S``. :func:`project_structure` moves weights that fail
onto the set, each step the Frobenius-nearest: symmetrise ``S``, drop its negative
(and numerically zero) eigenvalues, restrict it to the row space of ``W_f`` (target
``"mpc"``), then project the rows of ``W_f`` onto the range of ``S``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..exceptions import ProblemDefinitionError

__all__ = ["STRUCTURE_TOL", "RANK_TOL", "StructureCheck", "LCPStructureError", "check_structure",
           "project_structure"]

#: Largest relative violation of each structure condition accepted by the forward pass:
#: asymmetry ``‖S - Sᵀ‖_max / ‖S‖_max``, negative curvature ``-λmin(S)/λmax(S)`` and the
#: output kernel ``‖W_f V₀‖_max / ‖W_f‖_max``. The certificate tolerance of the exact solve
#: (CERTIFICATE_TOL): a smaller mismatch cannot show in the certified fixed-point residual.
STRUCTURE_TOL = 1e-9

#: Eigenvalues of ``S`` at most RANK_TOL times the largest count as zero (its kernel ``V₀``).
#: Rounding puts the zero eigenvalues of a compiled network near 1e-16 relative; genuine ones
#: of ill-conditioned problems (the inverted pendulum) reach 1e-10, hence the margin.
RANK_TOL = 1e-12


class LCPStructureError(ProblemDefinitionError):
    """The weights of an implicit layer are no symmetric PSD linear complementarity problem."""


@dataclass(frozen=True, kw_only=True)
class StructureCheck:
    """How far the weights ``(W, W_f)`` are from the structure the exact forward pass needs.

    Attributes
    ----------
    asymmetry : float
        ``‖S - Sᵀ‖_max / ‖S‖_max`` with ``S = diag(1/α)(I - W)``.
    negative_curvature : float
        ``max(0, -λmin(S_sym)) / λmax(S_sym)``.
    output_kernel : float
        ``‖W_f V₀‖_max / ‖W_f‖_max``, ``V₀`` the numerical kernel of ``S_sym``
        (``W_f`` must vanish there for the output to be unique).
    input_kernel : float
        ``‖S V_f‖₂ / λmax(S)``, ``V_f`` the kernel of ``W_f`` (zero for an MPC-like network).
    rank : int
        Numerical rank of ``S`` (:data:`RANK_TOL`).
    valid : bool
        The first three are within :data:`STRUCTURE_TOL`: the exact forward pass applies.
    mpc_like : bool
        ``valid`` and ``input_kernel`` within the tolerance: an MPC-like network, which
        :func:`mpc2nn.converse.to_qp` maps back to a QP exactly.
    message : str
        One line for reports and error messages: the four measures, the rank and the verdict
        (valid and MPC-like, valid but not MPC-like, or not a symmetric PSD LCP).
    """

    asymmetry: float
    negative_curvature: float
    output_kernel: float
    input_kernel: float
    rank: int
    valid: bool
    mpc_like: bool
    message: str


def _lcp_matrix(W: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    return (np.eye(W.shape[0]) - W) / alpha[:, None]


def check_structure(W: np.ndarray, W_f: np.ndarray, alpha: np.ndarray) -> StructureCheck:
    """Measure the conditions of the module docstring on numpy weights.

    Parameters
    ----------
    W : ndarray, shape (m, m)
        Recurrent weight of ``y = W relu(y) + Yθ + b``.
    W_f : ndarray, shape (n_U, m)
        Output weight of ``U = W_f relu(y) + Y_f θ``.
    alpha : ndarray, shape (m,)
        The row steps ``α > 0`` (a compiled network's ``alpha``); ``S = diag(1/α)(I - W)``.

    Returns
    -------
    StructureCheck
        The relative violations, the numerical rank of ``S`` and the verdicts ``valid`` and
        ``mpc_like``. A zero ``S`` (``W = I``) or one without a positive eigenvalue is reported
        as not valid, not raised.

    Examples
    --------
    >>> import mpc2nn
    >>> from mpc2nn.differentiable import check_structure
    >>> net = mpc2nn.compile(mpc2nn.systems.double_integrator())
    >>> check = check_structure(net.W, net.W_f, net.alpha)
    >>> check.valid, check.mpc_like, check.rank
    (True, True, 20)
    """
    S = _lcp_matrix(W, alpha)
    top = float(np.abs(S).max(initial=0.0))
    if top == 0.0:
        return StructureCheck(asymmetry=0.0, negative_curvature=0.0, output_kernel=1.0, input_kernel=0.0, rank=0,
                              valid=False, mpc_like=False, message="S = diag(1/α)(I - W) is zero: W = I has no "
                              "unique fixed point")
    asym = float(np.abs(S - S.T).max()) / top
    ev, V = np.linalg.eigh(0.5 * (S + S.T))
    lam_max = max(float(ev[-1]), 0.0)
    if lam_max <= 0.0:
        return StructureCheck(asymmetry=asym, negative_curvature=np.inf, output_kernel=1.0, input_kernel=0.0,
                              rank=0, valid=False, mpc_like=False,
                              message="S = diag(1/α)(I - W) has no positive eigenvalue")
    neg = max(0.0, -float(ev[0])) / lam_max
    zero = ev <= RANK_TOL * lam_max
    wf_top = max(float(np.abs(W_f).max(initial=0.0)), np.finfo(float).tiny)
    out_k = float(np.abs(W_f @ V[:, zero]).max(initial=0.0)) / wf_top
    _, sv, Vt = np.linalg.svd(W_f)
    r_f = int(np.sum(sv > 1e-12 * sv[0])) if sv.size and sv[0] > 0 else 0
    V_f = Vt[r_f:].T
    in_k = float(np.linalg.norm(S @ V_f, 2)) / lam_max if V_f.shape[1] else 0.0
    valid = asym <= STRUCTURE_TOL and neg <= STRUCTURE_TOL and out_k <= STRUCTURE_TOL
    mpc_like = valid and in_k <= STRUCTURE_TOL
    parts = [f"asymmetry {asym:.2e}", f"negative curvature {neg:.2e}", f"output kernel {out_k:.2e}",
             f"input kernel {in_k:.2e}"]
    verdict = ("valid LCP, MPC-like" if mpc_like else "valid LCP, not MPC-like (to_qp returns the nearest QP)"
               if valid else f"not a symmetric PSD LCP (tolerance {STRUCTURE_TOL:g})")
    return StructureCheck(asymmetry=asym, negative_curvature=neg, output_kernel=out_k, input_kernel=in_k,
                          rank=int((~zero).sum()), valid=valid, mpc_like=mpc_like,
                          message=f"S = diag(1/α)(I - W): {', '.join(parts)}; rank {int((~zero).sum())}: {verdict}")


def project_structure(W: np.ndarray, W_f: np.ndarray, alpha: np.ndarray, target: str = "mpc"):
    """``(W, W_f)`` moved onto the valid (``target="lcp"``) or MPC-like (``"mpc"``) set (module docstring).

    ``Y``, ``b``, ``Y_f`` and the steps ``α`` are not changed.

    Parameters
    ----------
    W : ndarray, shape (m, m)
        Recurrent weight of ``y = W relu(y) + Yθ + b``.
    W_f : ndarray, shape (n_U, m)
        Output weight of ``U = W_f relu(y) + Y_f θ``.
    alpha : ndarray, shape (m,)
        The row steps ``α > 0``; ``S = diag(1/α)(I - W)`` is projected, ``α`` is kept.
    target : {"mpc", "lcp"}
        ``"lcp"``: symmetrise ``S``, drop its negative and numerically zero eigenvalues
        (:data:`RANK_TOL`) and project the rows of ``W_f`` onto the range of ``S``;
        ``"mpc"`` (default): also restrict ``S`` to the row space of ``W_f`` first, so that
        the result is MPC-like.

    Returns
    -------
    W : ndarray, shape (m, m)
        ``I - diag(α) S`` with the projected ``S``.
    W_f : ndarray, shape (n_U, m)
        The projected output weight.

    Raises
    ------
    ProblemDefinitionError
        ``target`` is neither ``"lcp"`` nor ``"mpc"``.
    LCPStructureError
        ``S`` has no positive eigenvalue to keep.

    Examples
    --------
    >>> import numpy as np, mpc2nn
    >>> from mpc2nn.differentiable import check_structure, project_structure
    >>> net = mpc2nn.compile(mpc2nn.systems.double_integrator())
    >>> W = net.W + 1e-3 * np.random.default_rng(0).standard_normal(net.W.shape)
    >>> check_structure(W, net.W_f, net.alpha).valid
    False
    >>> W, W_f = project_structure(W, net.W_f, net.alpha)
    >>> check_structure(W, W_f, net.alpha).mpc_like
    True
    """
    if target not in ("lcp", "mpc"):
        raise ProblemDefinitionError(f"target: expected 'lcp' or 'mpc', got {target!r}")
    S = _lcp_matrix(W, alpha)
    S = 0.5 * (S + S.T)

    def clip(S):
        ev, V = np.linalg.eigh(0.5 * (S + S.T))
        keep = ev > RANK_TOL * max(float(ev[-1]), 0.0)
        return (V[:, keep] * ev[keep]) @ V[:, keep].T, V[:, keep]

    S, V_r = clip(S)
    if target == "mpc":
        _, sv, Vt = np.linalg.svd(W_f)
        r_f = int(np.sum(sv > 1e-12 * sv[0])) if sv.size and sv[0] > 0 else 0
        P = Vt[:r_f].T @ Vt[:r_f]
        S, V_r = clip(P @ S @ P)
    if V_r.shape[1] == 0:
        raise LCPStructureError("project: S = diag(1/α)(I - W) has no positive eigenvalue to keep; the weights "
                                "are too far from an LCP to project")
    W_f = W_f @ V_r @ V_r.T
    return np.eye(W.shape[0]) - alpha[:, None] * S, W_f


def lcp_qp_data(W: np.ndarray, Y: np.ndarray, b: np.ndarray, alpha: np.ndarray):
    """``(G, w, E)`` of the QP ``min ½‖z‖² subject to Gz <= w + Eθ`` whose dual is the layer's LCP."""
    S = _lcp_matrix(W, alpha)
    ev, V = np.linalg.eigh(0.5 * (S + S.T))
    keep = ev > RANK_TOL * max(float(ev[-1]), 0.0)
    G = V[:, keep] * np.sqrt(ev[keep])
    return G, -b / alpha, -Y / alpha[:, None]
