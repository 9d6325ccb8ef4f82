"""Reading an exact network's lattice program (:class:`mpc2nn.regions.Program`) into a :class:`ReluGraph`.

An exact network's ``forward`` gathers and scatters its affine terms by index (fast, but not a fixed graph of
affine maps for ``torch.fx``); its program says the same in matrices: ``h₀ = θ Gᵀ + g``, then per level
``h ← h K - relu(h D) E`` (0/±1 matrices), and the outputs ``h S``.
"""

from __future__ import annotations

from ..regions import Program
from ._graph import GraphBuilder, ReluGraph

__all__ = ["graph_from_program"]


def graph_from_program(program: Program, source: str) -> ReluGraph:
    """The :class:`ReluGraph` of a lattice program.

    Parameters
    ----------
    program : Program
        The program of an exact network as it stands (``ExactNetwork.program()`` reads its buffers).
    source : str
        A label for reports.

    Returns
    -------
    ReluGraph
    """
    builder = GraphBuilder(program.gain.shape[1])
    h = builder.input().matmul(program.gain.T).shift(program.offset)
    for K, D, E in program.dense_levels():
        h = builder.compact(h.matmul(K).plus(builder.relu(h.matmul(D)).matmul(E), -1.0))
    return builder.finish(h.matmul(program.selection()), source)
