"""The condensed QP as torch tensors: :class:`TorchQP` (made by :class:`~mpc2nn.differentiable.TorchCondensation`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..qp import CondensedQP

__all__ = ["TorchQP"]


@dataclass(frozen=True, eq=False, kw_only=True)
class TorchQP:
    """The condensed QP ``min ½zᵀHz + θᵀFᵀz subject to Gz <= w + Eθ``, ``U = Tz``, as torch tensors.

    All tensors have the dtype and device the condensation was called with and carry the
    autograd graph of the data they were computed from.

    Attributes
    ----------
    H : torch.Tensor, shape (n_z, n_z)
        Hessian of the cost, symmetric (positive definite for valid data, ``R ≻ 0``).
    F : torch.Tensor, shape (n_z, n_θ)
        Linear cost term: the cost's gradient at ``z = 0`` is ``Fθ``.
    G : torch.Tensor, shape (m, n_z)
        Constraint rows of ``Gz <= w + Eθ``.
    w : torch.Tensor, shape (m,)
        Constant part of the right-hand side.
    E : torch.Tensor, shape (m, n_θ)
        Parameter part of the right-hand side.
    T : torch.Tensor, shape (N·n_u, n_z), or None
        Output map ``U = Tz`` (move blocking, slack variables); ``None`` for ``T = I``.
    state_E : torch.Tensor, shape (p, n_θ), or None
        Rows on ``θ`` alone, ``w0 + E0 θ >= 0`` (the ``E0`` of
        :attr:`mpc2nn.CondensedQP.state_only`); ``None`` where the QP has none.
    state_w : torch.Tensor, shape (p,), or None
        The ``w0`` of those rows; ``None`` where the QP has none.
    slack_shift : torch.Tensor, shape () or (n_slack,)
        ``δ = ρ_l / (2ρ_q)`` of the soft constraints (0 without soft constraints); one per
        slack where both state and output rows are softened (each group has its own weights).
    reference : CondensedQP
        The QP whose structure (row labels, layout of ``θ``, sizes) this QP has.
    """

    H: torch.Tensor
    F: torch.Tensor
    G: torch.Tensor
    w: torch.Tensor
    E: torch.Tensor
    T: torch.Tensor | None
    state_E: torch.Tensor | None
    state_w: torch.Tensor | None
    slack_shift: torch.Tensor
    reference: CondensedQP

    def to_condensed(self) -> CondensedQP:
        """The same QP as a numpy :class:`~mpc2nn.CondensedQP` (detached, on the CPU, float64)."""
        ref = self.reference

        def np_(t):
            return None if t is None else t.detach().cpu().numpy().astype(np.float64)

        state = None if self.state_E is None else (np_(self.state_E), np_(self.state_w))
        shift = np_(self.slack_shift)
        # one number when every slack has the same shift, as condense stores it
        shift = float(shift) if shift.ndim == 0 else float(shift[0]) if np.all(shift == shift[0]) else shift
        return CondensedQP(H=np_(self.H), F=np_(self.F), G=np_(self.G), w=np_(self.w), E=np_(self.E), n_u=ref.n_u,
                           row_labels=ref.row_labels, state_only=state, name=ref.name, sample_box=ref.sample_box,
                           source="torch condensation", output_map=np_(self.T), n_slack=ref.n_slack,
                           slack_shift=shift, parameter_sizes=ref.parameter_sizes)
