"""ONNX export of explicit networks (MatMul/Add/Sub/Mul/Relu only)."""

from __future__ import annotations

from pathlib import Path

from .._checks import ignoring_warnings, require
from ._wrapper import check_exportable, export_module

__all__ = ["to_onnx"]


def to_onnx(explicit, path, *, output: str = "control", dtype: str = "float64", opset: int = 17) -> Path:
    """Write an explicit network as an ONNX graph of MatMul/Add/Sub/Mul/Relu operations only.

    The graph has one input ``x`` of shape ``(batch, n_θ)`` — the state, or for
    problems with input rates or tracking the parameter vector ``θ`` laid out as
    ``explicit.qp.parameter_labels`` — and one output ``u``;
    the batch dimension is dynamic. Written with torch's TorchScript-based ONNX
    exporter, which emits exactly the network's matrix products, additions,
    scalings and ReLUs (no Clip, no custom operators), as NN verifiers expect.

    Parameters
    ----------
    explicit : ExplicitNetwork
        A pure construction from :func:`mpc2nn.unravel` (not the hybrid mode).
    path : str or path-like
        Output file.
    output : {"control", "sequence"}
        ``"control"``: the first input, shape (B, n_u); ``"sequence"``: the whole sequence,
        shape (B, N·n_u).
    dtype : {"float64", "float32"}
        Dtype of the weights and of ``x``.
    opset : int
        ONNX opset version.

    Returns
    -------
    pathlib.Path
        The file written.
    """
    torch = require("torch", "torch")
    require("onnx", "dev")
    check_exportable(explicit, "to_onnx")
    model, tdtype = export_module(explicit, output, dtype)
    x = torch.zeros(2, explicit.n_theta, dtype=tdtype)
    path = Path(path)
    with ignoring_warnings(DeprecationWarning):  # the TorchScript-based exporter is the one we want
        torch.onnx.export(model, (x,), str(path), input_names=["x"], output_names=["u"],
                          dynamic_axes={"x": {0: "batch"}, "u": {0: "batch"}}, opset_version=opset, dynamo=False)
    return path
