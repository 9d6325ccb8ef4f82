"""The error of networks that :func:`~mpc2nn.verify` cannot encode."""

from __future__ import annotations

from ..exceptions import ProblemDefinitionError

__all__ = ["UnsupportedNetworkError", "PartitionRequiredError"]


class UnsupportedNetworkError(ProblemDefinitionError):
    """The network holds an operation that is not affine or a ReLU (or the file is not such a network).

    The message names the operation (layer, torch function or ONNX operator) and where it is.
    """


class PartitionRequiredError(ProblemDefinitionError):
    """Verification without a partition of critical regions was asked for (the KKT encoding), which is not
    built: pass a :class:`~mpc2nn.Partition` from :func:`mpc2nn.critical_regions` (or the problem, and let
    :func:`~mpc2nn.verify` enumerate one).
    """
