"""Terminal weights that follow the data: the DARE and the Lyapunov equation as torch functions.

``P = dare(A, B, Q, R, S)`` solves
``P = AᵀPA - (AᵀPB + S)(R + BᵀPB)⁻¹(BᵀPA + Sᵀ) + Q``, the Riccati equation of the stage
cost ``xᵀQx + 2xᵀSu + uᵀRu`` (``S = 0`` unless given; output weights with a feedthrough give
one, :func:`mpc2nn.problem.stage_weights`). ``P`` is the value of
``min_K (A - BK)ᵀP(A - BK) + Q - SK - KᵀSᵀ + KᵀRK`` at ``K = (R + BᵀPB)⁻¹(BᵀPA + Sᵀ)``, so
(the derivative in ``K`` vanishing there) with ``A_c = A - BK`` its differential is the
Lyapunov equation

    dP = A_cᵀ dP A_c + dQ + Kᵀ dR K - dS K - Kᵀ dSᵀ + A_cᵀ P (dA - dB K) + (dA - dB K)ᵀ P A_c,

and a loss gradient ``Ḡ = ∂L/∂P`` is pulled back through one adjoint Lyapunov solve
``X = A_c X A_cᵀ + Ḡ``: ``∂L/∂Q = X``, ``∂L/∂R = K X Kᵀ``, ``∂L/∂A = 2 P A_c X``,
``∂L/∂B = -2 P A_c X Kᵀ``, ``∂L/∂S = -2 X Kᵀ`` (``Ḡ`` symmetrised). The Lyapunov weight
``P = AᵀPA + Q`` is the case ``B = 0``. The forward passes use scipy exactly as
:class:`~mpc2nn.MPCProblem` does, so the values are the problem's own.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
import torch

from ..exceptions import RiccatiError, UnstableSystemError

__all__ = ["dare", "lyapunov"]


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy().astype(np.float64)


def _back(a: np.ndarray, like: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(a, dtype=like.dtype, device=like.device)


class _Dare(torch.autograd.Function):
    @staticmethod
    def forward(ctx, A, B, Q, R, S):
        A_, B_, Q_, R_, S_ = (_np(t) for t in (A, B, Q, R, S))
        try:
            P = scipy.linalg.solve_discrete_are(A_, B_, Q_, R_, s=S_)
        except (np.linalg.LinAlgError, ValueError) as exc:
            raise RiccatiError(f"P: the Riccati equation of the current (A, B, Q, R, S) has no stabilising "
                               f"solution (solver said: {exc}); give P as data or keep Q ⪰ 0, R ≻ 0") from None
        P = 0.5 * (P + P.T)
        K = np.linalg.solve(R_ + B_.T @ P @ B_, B_.T @ P @ A_ + S_.T)
        Ac = A_ - B_ @ K
        if not np.all(np.isfinite(P)) or np.abs(np.linalg.eigvals(Ac)).max() >= 1.0:
            raise RiccatiError("P: the Riccati solution of the current (A, B, Q, R) is not stabilising; "
                               "give P as data")
        ctx.save_for_backward(_back(P, A), _back(K, A), _back(Ac, A))
        return _back(P, A)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, gP):
        P, K, Ac = ctx.saved_tensors
        gs = 0.5 * (gP + gP.T)
        X = _back(scipy.linalg.solve_discrete_lyapunov(_np(Ac), _np(gs)), gP)
        X = 0.5 * (X + X.T)
        PAX = P @ Ac @ X
        return 2.0 * PAX, -2.0 * PAX @ K.T, X, K @ X @ K.T, -2.0 * X @ K.T


class _Lyapunov(torch.autograd.Function):
    @staticmethod
    def forward(ctx, A, Q):
        A_ = _np(A)
        rho = float(np.abs(np.linalg.eigvals(A_)).max())
        if rho >= 1.0:
            raise UnstableSystemError(f"P='lyapunov': the current A has spectral radius {rho:.6g} >= 1, so "
                                      "P = AᵀPA + Q does not exist; give P as data")
        P = scipy.linalg.solve_discrete_lyapunov(A_.T, _np(Q))
        P = 0.5 * (P + P.T)
        ctx.save_for_backward(A, _back(P, A))
        return _back(P, A)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, gP):
        A, P = ctx.saved_tensors
        gs = 0.5 * (gP + gP.T)
        X = _back(scipy.linalg.solve_discrete_lyapunov(_np(A), _np(gs)), gP)
        X = 0.5 * (X + X.T)
        return 2.0 * P @ A @ X, X


def dare(A: torch.Tensor, B: torch.Tensor, Q: torch.Tensor, R: torch.Tensor,
         S: torch.Tensor | None = None) -> torch.Tensor:
    """``(n_x, n_x)`` stabilising solution of the DARE, differentiable in ``A, B, Q, R, S`` (module docstring).

    ``Q`` and ``R`` are used through their symmetric parts. The value is computed by scipy in float64
    on the CPU (``scipy.linalg.solve_discrete_are``, as :class:`~mpc2nn.MPCProblem` does); the
    backward pass is one adjoint Lyapunov solve.

    Parameters
    ----------
    A : torch.Tensor, shape (n_x, n_x)
        State matrix of ``x⁺ = A x + B u``.
    B : torch.Tensor, shape (n_x, n_u)
        Input matrix.
    Q : torch.Tensor, shape (n_x, n_x)
        State weight, ``Q ⪰ 0`` (its symmetric part ``½(Q + Qᵀ)`` is used).
    R : torch.Tensor, shape (n_u, n_u)
        Input weight, ``R ≻ 0`` (its symmetric part is used).
    S : torch.Tensor, shape (n_x, n_u), optional
        Cross weight of the stage cost ``xᵀQx + 2xᵀSu + uᵀRu`` (default zero), e.g. ``Cᵀ Q_y D`` of
        an output weight ``Q_y`` with feedthrough ``D``.

    Returns
    -------
    torch.Tensor, shape (n_x, n_x)
        ``P``, symmetric, with the dtype and device of ``A``.

    Raises
    ------
    RiccatiError
        The DARE has no stabilising solution at these data (or the one found is not stabilising).

    Examples
    --------
    >>> import torch
    >>> from mpc2nn.differentiable import dare
    >>> A, B = torch.tensor([[1.0, 1.0], [0.0, 1.0]], dtype=torch.float64), torch.tensor([[0.5], [1.0]],
    ...                                                                                  dtype=torch.float64)
    >>> Q = torch.eye(2, dtype=torch.float64, requires_grad=True)
    >>> P = dare(A, B, Q, torch.tensor([[0.1]], dtype=torch.float64))
    >>> P.trace().backward(); Q.grad.shape
    torch.Size([2, 2])
    """
    if S is None:
        S = torch.zeros_like(B)
    return _Dare.apply(A, B, 0.5 * (Q + Q.T), 0.5 * (R + R.T), S)


def lyapunov(A: torch.Tensor, Q: torch.Tensor) -> torch.Tensor:
    """``(n_x, n_x)`` solution of ``P = AᵀPA + Q`` (Schur-stable ``A``), differentiable in ``A`` and ``Q``.

    The value is computed by scipy in float64 on the CPU (``scipy.linalg.solve_discrete_lyapunov``);
    the backward pass is one adjoint Lyapunov solve (module docstring, the case ``B = 0``).

    Parameters
    ----------
    A : torch.Tensor, shape (n_x, n_x)
        State matrix, Schur stable (spectral radius below 1).
    Q : torch.Tensor, shape (n_x, n_x)
        State weight (its symmetric part ``½(Q + Qᵀ)`` is used).

    Returns
    -------
    torch.Tensor, shape (n_x, n_x)
        ``P``, symmetric, with the dtype and device of ``A``.

    Raises
    ------
    UnstableSystemError
        ``A`` has spectral radius >= 1, so ``P`` does not exist.

    Examples
    --------
    >>> import torch
    >>> from mpc2nn.differentiable import lyapunov
    >>> A = torch.tensor([[0.5, 0.1], [0.0, 0.8]], dtype=torch.float64, requires_grad=True)
    >>> P = lyapunov(A, torch.eye(2, dtype=torch.float64))
    >>> round(float(P[0, 0].detach()), 6)
    1.333333
    >>> P.trace().backward(); A.grad.shape
    torch.Size([2, 2])
    """
    return _Lyapunov.apply(A, 0.5 * (Q + Q.T))
