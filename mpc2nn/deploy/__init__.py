"""Deployment of explicit networks: ONNX, TorchScript and plain C (torch and onnx are imported when used)."""

from ._c import to_c
from ._onnx import to_onnx
from ._torchscript import to_torchscript

__all__ = ["to_onnx", "to_torchscript", "to_c"]
