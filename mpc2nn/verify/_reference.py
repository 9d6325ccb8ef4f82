"""What :func:`~mpc2nn.verify` accepts as the network and as the reference law."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..exceptions import ProblemDefinitionError
from ..implicit import ImplicitNetwork, compile
from ..interfaces import ExplicitLaw
from ..problem import MPCProblem
from ..qp import CondensedQP
from ..regions import Partition, Program
from ._errors import UnsupportedNetworkError
from ._graph import ReluGraph

__all__ = ["as_graph", "Reference", "as_reference"]


def as_graph(network, n_inputs: int | None = None) -> ReluGraph:
    """The :class:`ReluGraph` of ``network`` (a torch module, an ONNX file, or a graph).

    Parameters
    ----------
    network : torch.nn.Module, str, path-like or ReluGraph
        An mpc2nn explicit network, any torch module of affine operations and ReLUs, or an ``.onnx`` file.
    n_inputs : int, optional
        The input size, where the module does not tell it.

    Returns
    -------
    ReluGraph

    Raises
    ------
    UnsupportedNetworkError
        The network is not made of affine operations and ReLUs (the hybrid mode of :func:`mpc2nn.unravel`,
        a Tanh layer, an unsupported ONNX operator, ...).
    """
    if isinstance(network, ReluGraph):
        return network
    if isinstance(network, (str, os.PathLike)):
        path = Path(network)
        if path.suffix.lower() != ".onnx":
            raise UnsupportedNetworkError(f"network: {path} is not an .onnx file; give an ONNX file, a torch "
                                          "module or an mpc2nn explicit network")
        if not path.exists():
            raise FileNotFoundError(f"network: {path} does not exist")
        from ._onnx import graph_from_onnx

        return graph_from_onnx(path)
    if isinstance(network, ExplicitLaw) and not network.exportable:
        raise UnsupportedNetworkError(f"network: {type(network).__name__} is not a pure Linear+ReLU network (the "
                                      "hybrid mode solves a reduced KKT system and falls back to the exact solver); "
                                      "verify its pure construction instead")
    program = getattr(network, "program", None)
    if callable(program) and isinstance(program := program(), Program):  # an exact (lattice) network
        from ._program import graph_from_program

        return graph_from_program(program, type(network).__name__)
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(network, torch.nn.Module):
        from ._torch import graph_from_torch

        return graph_from_torch(network, n_inputs)
    raise UnsupportedNetworkError(f"network: expected a torch module (an mpc2nn explicit network, an nn.Sequential "
                                  f"of Linear/ReLU layers), an ONNX file or a ReluGraph, got {type(network).__name__}")


@dataclass
class Reference:
    """The reference law: its QP, the exact solver (re-checks) and the partition where there is one."""

    qp: CondensedQP
    net: ImplicitNetwork
    partition: Partition | None
    u_min: np.ndarray | None
    u_max: np.ndarray | None


def as_reference(reference) -> Reference:
    """The :class:`Reference` of an ImplicitNetwork, MPCProblem, CondensedQP or Partition.

    Parameters
    ----------
    reference : ImplicitNetwork, MPCProblem, CondensedQP or Partition
        The MPC law.

    Returns
    -------
    Reference
    """
    partition = None
    if isinstance(reference, Partition):
        partition = reference
        net = compile(reference.qp)
    elif isinstance(reference, ImplicitNetwork):
        net = reference
    elif isinstance(reference, (MPCProblem, CondensedQP)):
        net = compile(reference)
    else:
        raise ProblemDefinitionError(f"reference: expected an ImplicitNetwork, MPCProblem, CondensedQP or Partition "
                                     f"(the MPC law), got {type(reference).__name__}")
    qp = net.qp
    u_min = u_max = None
    problem = qp.problem
    if isinstance(problem, MPCProblem):  # input bounds are hard rows even where state rows are softened
        u_min = np.asarray(problem.u_min, float).reshape(qp.n_u)
        u_max = np.asarray(problem.u_max, float).reshape(qp.n_u)
        if not (np.isfinite(u_min).any() or np.isfinite(u_max).any()):
            u_min = u_max = None
    return Reference(qp, net, partition, u_min, u_max)
