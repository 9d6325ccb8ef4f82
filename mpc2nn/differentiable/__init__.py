"""Differentiable MPC (torch): exact forward solves, implicit backward passes.

:class:`MPCLayer` turns an MPC problem into a ``torch.nn.Module`` whose forward pass is
the certified exact solve of :mod:`mpc2nn.implicit` and whose backward pass
differentiates the KKT system on the active set, with respect to the parameters
``θ`` and to the problem data (through :class:`TorchCondensation`, the condensation
written in torch). :class:`ImplicitLayer` is the deep-equilibrium view: the implicit
network's weights themselves are trainable, solved exactly while they keep the
structure of a linear complementarity problem (:func:`check_structure`).
docs/theory.rst ("Differentiating through the exact solve") has the mathematics.
"""

from ._active_set import ACTIVE_TOL, DEGENERACY_TOL
from ._condense import STRUCTURE_ROW_TOL, TorchCondensation
from ._implicit_layer import ImplicitLayer
from ._mpc_layer import MPCLayer
from ._results import LayerResult
from ._riccati import dare, lyapunov
from ._structure import (
    RANK_TOL,
    STRUCTURE_TOL,
    LCPStructureError,
    StructureCheck,
    check_structure,
    project_structure,
)
from ._torch_qp import TorchQP

__all__ = ["MPCLayer", "ImplicitLayer", "LayerResult", "TorchCondensation", "TorchQP", "StructureCheck",
           "LCPStructureError", "check_structure", "project_structure", "dare", "lyapunov", "ACTIVE_TOL",
           "DEGENERACY_TOL", "STRUCTURE_TOL", "RANK_TOL", "STRUCTURE_ROW_TOL"]
