"""Stage 9 — verification: the proven worst-case error of a ReLU network against the MPC law over a region.

:func:`verify` reads any network of affine maps and ReLUs (an mpc2nn explicit network, a
``torch.nn.Sequential`` of Linear/ReLU layers trained elsewhere, an ONNX file) into a :class:`ReluGraph`
and bounds ``max ‖u_net(θ) - u_mpc(θ)‖∞`` over the feasible part of a region of states: from above by
MILPs and LPs solved by HiGHS (``scipy.optimize.milp``), from below by a witness state re-checked by the
exact solver; and the same for the amount by which the network leaves the input bounds. The law is affine
on each critical region of a partition (:func:`mpc2nn.critical_regions`, given or enumerated here); the
regions are independent and run on Dask (``dask.distributed``, the ``verify`` extra) when asked.
Without a partition (``method="kkt"``, or ``"auto"`` when the enumeration does not complete) the law enters
the MILP by the KKT conditions of its QP, one binary per constraint row, with big-M values proven by
Slater's argument and LPs (:mod:`._kkt_bounds`).

The stage itself needs numpy and scipy; torch is imported to read a torch module, onnx to read an ONNX
file, distributed to use a cluster. The module is callable: ``mpc2nn.verify(network, reference, region)``
is :func:`verify`.
"""

import sys
import types

from ._bab import DEFAULT_MAX_BINARIES, MILP_TIME_SHARE, MIN_CELL, WITNESS_TOL
from ._bounds import BOUND_SLACK, DEFAULT_WINDOW
from ._errors import UnsupportedNetworkError
from ._graph import EVALUATE_CHUNK, MAX_TERMS, GraphNode, ReluGraph
from ._kkt import DEFAULT_KKT_CELLS, KKT_MIN_CELL
from ._kkt_bounds import BIGM_PAD, INACTIVE_TOL, POLICY_CAP, POLICY_RELAX, SLATER_MIN
from ._milp import FEASIBILITY_TOL, HIGHS_MILP_OPTIONS, MIP_ABS_GAP, MIP_REL_GAP
from ._onnx import ONNX_OPERATORS
from ._reference import as_graph
from ._result import Bound, RegionReport, VerificationResult
from ._scheduler import IN_FLIGHT_PER_WORKER
from ._verify import (
    AUTO_MAX_REGIONS,
    AUTO_PARTITION_SHARE,
    DEFAULT_RTOL,
    DEFAULT_SAMPLES,
    DEFAULT_TIME_LIMIT,
    DEFAULT_TOL,
    METHODS,
    RECHECK_CANDIDATES,
    verify,
)

__all__ = ["verify", "VerificationResult", "Bound", "RegionReport", "ReluGraph", "GraphNode", "as_graph",
           "UnsupportedNetworkError", "ONNX_OPERATORS", "METHODS", "DEFAULT_TOL",
           "DEFAULT_RTOL",
           "DEFAULT_TIME_LIMIT", "DEFAULT_SAMPLES", "DEFAULT_MAX_BINARIES", "AUTO_PARTITION_SHARE",
           "AUTO_MAX_REGIONS", "RECHECK_CANDIDATES", "MIP_REL_GAP", "MIP_ABS_GAP", "FEASIBILITY_TOL",
           "HIGHS_MILP_OPTIONS", "BOUND_SLACK", "DEFAULT_WINDOW", "MIN_CELL", "MILP_TIME_SHARE", "WITNESS_TOL",
           "MAX_TERMS", "EVALUATE_CHUNK", "IN_FLIGHT_PER_WORKER", "DEFAULT_KKT_CELLS", "KKT_MIN_CELL", "BIGM_PAD",
           "INACTIVE_TOL", "POLICY_CAP", "POLICY_RELAX", "SLATER_MIN"]


class _CallableModule(types.ModuleType):
    """The stage's module, callable as :func:`verify` (so ``mpc2nn.verify(...)`` works beside
    ``mpc2nn.verify.VerificationResult``).
    """

    def __call__(self, *args, **kwargs):
        return verify(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
