"""Saving, loading and exporting (compatibility module: see :mod:`mpc2nn.io` and :mod:`mpc2nn.deploy`)."""

from .deploy import to_c, to_onnx, to_torchscript
from .io import FORMAT_VERSION, FileFormatError, load, problem_hash, save

__all__ = ["save", "load", "problem_hash", "to_onnx", "to_torchscript", "to_c", "FileFormatError", "FORMAT_VERSION"]
