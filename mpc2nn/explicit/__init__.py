"""Explicit (unravelled) torch networks from an implicit network, with error bounds.

:func:`unravel` turns an :class:`~mpc2nn.ImplicitNetwork` into a feed-forward
:class:`ExplicitNetwork` (a ``torch.nn.Module``) of a chosen depth. Every pure
construction uses only matrix products, additions, scalings and ReLU, so it
exports to ONNX/TorchScript and to neural-network verifiers. Constructions
(``method=``):

``"paper"``
    The paper's form ``w[j+1] = D relu(w[j]) + ζ + K (w[j] - D relu(w[j]) - ζ)``
    with ``D = W``, ``ζ = Y x + b`` of the implicit network, zero initial state
    or a warm start. ``K = 0`` is one projected-gradient step on the dual per layer.
``"lmi"``
    The paper's form with a feedback ``K`` designed by an LMI (cvxpy) that
    certifies a contraction rate ``ρ < 1`` in a weighted norm. A certificate
    exists only when ``G`` has full row rank (see the theory page, well-posedness); otherwise the
    construction says so and falls back to ``K = 0`` with a-posteriori bounds.
``"momentum"``
    Nesterov-momentum dual projected gradient
    ``λ⁺ = relu(v - γ (M v + q(x)))``, ``v = λ + β (λ - λ_prev)``; the layer
    state ``(y, λ_prev)`` keeps it Linear+ReLU. ``β`` is tuned on sampled states.
``"admm"`` (default)
    An OSQP-style ADMM unroll of the condensed QP (the ReLU-QP construction):
    ``U⁺ = (H + σI + ρGᵀG)⁻¹(σU - Fx + Gᵀ(ρz - ν))``, a relaxed projection
    ``z⁺ = min(·, w + Ex) = · - relu(· - w - Ex)``, on constraint rows scaled by a
    positive diagonal (Jacobi, Ruiz or unit norm, :data:`SCALINGS`; per-type penalties
    with ``state_rho``) folded into the fixed weights. The scaling, ``ρ`` and the
    relaxation are tuned on sampled states (the states are never the ones the
    accuracy is reported on, when the caller keeps them apart).
``"hybrid"``
    Not a pure ReLU network: ``depth`` layers of a pure construction, then the
    active set read off the sign of the layer state, a reduced KKT solve,
    a KKT-residual certificate and a fallback to the exact solver for the
    samples that are not certified. Returns a :class:`HybridNetwork`.

Any construction may drop constraint rows that cannot be active anywhere in a
box of states (``prune=True``; an LP per row proves it, see
:meth:`ImplicitNetwork.well_posedness`), which changes nothing in the box.

Error bounds (:meth:`ExplicitNetwork.error_bound`) are per sample and
rigorous, floating-point rounding included; see :func:`dual_gap_bound` and
:func:`kkt_bound` for the a-posteriori bounds used by every construction and
:class:`ContractionCertificate` for the a-priori one. ``unravel(tol=...)``
chooses a depth on sampled states and checks it on held-out ones
(:class:`DepthSelection`: a sampled check with a stated confidence, not a proof);
:func:`warm_closed_loop` runs a network in closed loop with the layer state carried
across steps and a bound per step.

Exact networks are built differently: :func:`exact_network` takes a complete partition from
:func:`mpc2nn.critical_regions` and writes its law as a lattice (max–min) of its distinct affine
pieces, an :class:`ExactNetwork` of Linear+ReLU levels whose :meth:`~ExactNetwork.certify` proves by
LP, region by region, that it *is* the MPC law on the partition's domain.

Small batches (at most :data:`FAST_MAX_BATCH` states) of float64 networks are evaluated by a lean path
(:class:`FastLayers`, :meth:`ExplicitNetwork.fast_layers`): the fixed matrices extracted once into numpy
arrays, run by a compiled numba kernel (the ``fast`` extra; at most :data:`JIT_MAX_BATCH` states) or by
numpy (:func:`kernels_available` says which), the same numbers as the torch forward to rounding; float32
networks keep the torch forward.
"""

from ._admm import ADMM_SIGMA, RELAX_LADDER, RHO_LADDER, SCALING_LADDER, ADMMNetwork, ADMMOptions
from ._base import ExplicitNetwork
from ._bounds import ROUNDING_SLACK, dual_gap_bound, kkt_bound
from ._curves import CurveRun
from ._exact import ExactNetwork, exact_network
from ._fast import FAST_MAX_BATCH, JIT_MAX_BATCH, FastLayers
from ._fast import available as kernels_available
from ._hybrid import HybridNetwork, HybridResult
from ._lmi import LMIOptions, design_feedback
from ._momentum import BETA_LADDER, MomentumNetwork, MomentumOptions
from ._paper import PaperNetwork, PaperOptions
from ._registry import CONSTRUCTIONS, NETWORK_CLASSES, Construction, ConstructionOptions
from ._results import ContractionCertificate, DepthSelection, ErrorBound, LayerHistory
from ._scaling import SCALINGS, row_scaling
from ._selection import failure_bound
from ._unravel import MAX_DEPTH, SELECTION_MARGIN, error_curve, first_depth, throughput, unravel
from ._warm import WarmStartResult, warm_closed_loop

#: Names accepted by ``unravel(method=...)``: the registered constructions and the hybrid mode.
METHODS = (*CONSTRUCTIONS, "hybrid")

__all__ = ["unravel", "ExplicitNetwork", "PaperNetwork", "MomentumNetwork", "ADMMNetwork", "HybridNetwork",
           "HybridResult", "ErrorBound", "LayerHistory", "DepthSelection", "ContractionCertificate",
           "design_feedback", "dual_gap_bound", "throughput", "error_curve", "first_depth", "METHODS",
           "BETA_LADDER", "RHO_LADDER", "RELAX_LADDER", "MAX_DEPTH", "ROUNDING_SLACK", "ADMM_SIGMA",
           "CONSTRUCTIONS", "NETWORK_CLASSES", "Construction", "ConstructionOptions", "ADMMOptions",
           "MomentumOptions", "PaperOptions", "LMIOptions", "exact_network", "ExactNetwork", "kkt_bound", "SCALINGS",
           "SCALING_LADDER", "row_scaling", "failure_bound", "warm_closed_loop", "WarmStartResult", "CurveRun",
           "SELECTION_MARGIN", "FastLayers", "FAST_MAX_BATCH", "JIT_MAX_BATCH", "kernels_available"]
