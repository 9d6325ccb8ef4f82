"""TorchScript export of explicit networks."""

from __future__ import annotations

from pathlib import Path

from .._checks import ignoring_warnings, require
from ._wrapper import check_exportable, export_module

__all__ = ["to_torchscript"]


def to_torchscript(explicit, path, *, output: str = "control", dtype: str = "float64") -> Path:
    """Write an explicit network as a traced TorchScript module (``torch.jit.load`` reads it)."""
    torch = require("torch", "torch")
    check_exportable(explicit, "to_torchscript")
    model, tdtype = export_module(explicit, output, dtype)
    with ignoring_warnings(DeprecationWarning):
        traced = torch.jit.trace(model, torch.zeros(2, explicit.n_theta, dtype=tdtype))
        with open(path, "wb") as fh:  # an unwritable path is the OSError of open(), not torch's RuntimeError
            torch.jit.save(traced, fh)
    return Path(path)
