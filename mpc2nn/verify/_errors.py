"""The errors of :func:`~mpc2nn.verify`: networks it cannot encode."""

from __future__ import annotations

from ..exceptions import ProblemDefinitionError

__all__ = ["UnsupportedNetworkError"]


class UnsupportedNetworkError(ProblemDefinitionError):
    """The network holds an operation that is not affine or a ReLU (or the file is not such a network).

    The message names the operation (layer, torch function or ONNX operator) and where it is.
    """

