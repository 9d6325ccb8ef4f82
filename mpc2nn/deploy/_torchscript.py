"""TorchScript export of explicit networks."""

from __future__ import annotations

from pathlib import Path

from .._checks import ignoring_warnings, require
from ._wrapper import check_exportable, export_module

__all__ = ["to_torchscript"]


def to_torchscript(explicit, path, *, output: str = "control", dtype: str = "float64") -> Path:
    """Write an explicit network as a traced TorchScript module (``torch.jit.load`` reads it).

    Parameters
    ----------
    explicit : ExplicitNetwork
        A pure construction from :func:`mpc2nn.unravel` (not the hybrid mode).
    path : str or path-like
        Output file.
    output : {"control", "sequence"}
        ``"control"``: the module returns the first input, shape (B, n_u); ``"sequence"``: the
        whole sequence, shape (B, N·n_u).
    dtype : {"float64", "float32"}
        Dtype of the weights and of the input.

    Returns
    -------
    pathlib.Path
        The file written.
    """
    torch = require("torch", "torch")
    check_exportable(explicit, "to_torchscript")
    model, tdtype = export_module(explicit, output, dtype)
    with ignoring_warnings(DeprecationWarning):
        traced = torch.jit.trace(model, torch.zeros(2, explicit.n_theta, dtype=tdtype))
        with open(path, "wb") as fh:  # an unwritable path is the OSError of open(), not torch's RuntimeError
            torch.jit.save(traced, fh)
    return Path(path)
