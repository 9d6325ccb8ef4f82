"""The errors of :func:`~mpc2nn.verify`: networks it cannot encode (and a retired one)."""

from __future__ import annotations

from ..exceptions import ProblemDefinitionError

__all__ = ["UnsupportedNetworkError", "PartitionRequiredError"]


class UnsupportedNetworkError(ProblemDefinitionError):
    """The network holds an operation that is not affine or a ReLU (or the file is not such a network).

    The message names the operation (layer, torch function or ONNX operator) and where it is.
    """


class PartitionRequiredError(ProblemDefinitionError):
    """Kept for code that catches it: :func:`~mpc2nn.verify` raised it for ``method="kkt"`` before the KKT
    encoding (verification without a partition) was built; it raises it no more.
    """
