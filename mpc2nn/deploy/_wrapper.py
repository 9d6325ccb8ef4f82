"""The module that every export writes: the network followed by an output selection."""

from __future__ import annotations

import copy

import numpy as np

from .._checks import require
from ..exceptions import ProblemDefinitionError, UnsupportedObjectError
from ..interfaces import ExplicitLaw

__all__ = ["export_module", "check_exportable"]


def check_exportable(law, what: str) -> None:
    """Raise UnsupportedObjectError (a TypeError) unless ``law`` is a pure Linear+ReLU explicit network."""
    if not (isinstance(law, ExplicitLaw) and law.exportable):
        kind = type(law).__name__
        extra = " (the hybrid mode solves a linear system per state, which no graph of layers holds)" \
            if isinstance(law, ExplicitLaw) else ""
        raise UnsupportedObjectError(f"{what}: expected an explicit network from mpc2nn.unravel, got {kind}{extra}")


def export_module(ex, output: str, dtype: str):
    """``(module, torch dtype)``: a copy of ``ex`` in ``dtype`` followed by the selection of ``output``.

    ``output`` is ``"control"`` (the first input, (B, n_u)) or ``"sequence"`` ((B, N·n_u)).
    """
    torch = require("torch", "torch")
    if output not in ("control", "sequence"):
        raise ProblemDefinitionError(f"output: expected 'control' or 'sequence', got {output!r}")
    if dtype not in ("float64", "float32"):
        raise ProblemDefinitionError(f"dtype: expected 'float64' or 'float32', got {dtype!r}")
    tdtype = getattr(torch, dtype)
    # a network may output fewer columns than the sequence (an exact first-input network: n_out = n_u)
    n_out = getattr(ex, "n_out", ex.n_U)
    if output == "sequence" and n_out != ex.n_U:
        raise ProblemDefinitionError(f"output: the network gives {n_out} outputs (the first input), not the "
                                     f"sequence of {ex.n_U}; export it with output='control'")
    model = copy.deepcopy(ex).to(tdtype)
    model.set_dtype(tdtype)
    select = np.eye(n_out)[:, :ex.n_u] if output == "control" else np.eye(n_out)

    class Exported(torch.nn.Module):  # type: ignore[name-defined]  # torch is imported at run time
        def __init__(self):
            super().__init__()
            self.net = model
            self.register_buffer("select", torch.tensor(select, dtype=tdtype))

        def forward(self, x):
            return self.net(x) @ self.select

    return Exported().eval(), tdtype
