"""Result types of the explicit networks: error bounds, layer histories, depth selections."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["ErrorBound", "LayerHistory", "DepthSelection", "ContractionCertificate"]


@dataclass(frozen=True)
class ErrorBound:
    """Per-sample upper bounds on ``‖U - U*‖∞`` of an explicit network's output.

    Attributes
    ----------
    bound : (B,) upper bound (``inf`` where none could be proved)
    kind : (B,) str, a :class:`~mpc2nn.status.BoundKind`: ``"a-priori"`` (certified contraction,
        depends on ``x`` only) or ``"a-posteriori"`` (duality gap of the last layer's dual iterate)
    assumptions : plain-language statement of what the bound relies on
    """

    bound: np.ndarray
    kind: np.ndarray
    assumptions: str


@dataclass(frozen=True)
class LayerHistory:
    """What happens layer by layer for a batch of ``B`` states.

    Attributes
    ----------
    residual : (J, B) ``‖s_{j} - T(s_{j})‖₂`` of the layer state after layer ``j = 1..J``
        (for the paper's form: ``‖w - D relu(w) - ζ‖₂``, the published residual)
    error : (J, B) ``‖U_j - U*‖∞`` when a reference was given, else ``None``
    U : (B, N·n_u) output after the last layer
    state : tuple of tensors, the layer state after the last layer (pass it as ``state0``
        to continue, e.g. a warm start at the next closed-loop step)
    """

    residual: np.ndarray
    error: np.ndarray | None
    U: np.ndarray
    state: tuple


@dataclass(frozen=True)
class DepthSelection:
    """How :func:`unravel` chose the depth for a tolerance, and what the choice is worth.

    Attributes
    ----------
    tol : requested ``max ‖U - U*‖∞``; depth : chosen depth (``None`` if not reached)
    max_error : largest error on the selection states at that depth
    n_states : number of selection states; guarantee : what the choice guarantees, in words
    status : a :class:`~mpc2nn.status.DepthStatus` value (``"met"``, ``"met on selection states"``,
        ``"not met"``, ``"stalled"``)
    criterion : how the depth was chosen (states, where they came from, the rule)
    construction : the construction and its options
    n_hard : selection states found near active-set switches and the feasible-set boundary
    n_check : held-out states of the last check; check_failures : how many of them exceeded ``tol``
    check_max_error : their largest error
    failure_bound : upper bound on ``P(error > tol)`` for a state drawn uniformly from the feasible part of
        the region, at confidence ``confidence`` (Clopper–Pearson; ``None`` without a check)
    statement : the result in one quotable sentence
    rounds : held-out checks run (a failed check raises the depth and draws a fresh sample)
    seconds : build time (tuning, selection and checks)
    tuning : summary of the tuning, or ``""``
    """

    tol: float
    depth: int | None
    max_error: float
    n_states: int
    guarantee: str
    status: str = ""
    criterion: str = ""
    construction: str = ""
    n_hard: int = 0
    n_check: int = 0
    check_failures: int = 0
    check_max_error: float | None = None
    failure_bound: float | None = None
    confidence: float | None = None
    statement: str = ""
    rounds: int = 0
    seconds: float | None = None
    tuning: str = ""

    def __post_init__(self):
        if not self.status:  # a file of an earlier version: only the selection states were used
            object.__setattr__(self, "status", "met on selection states" if self.depth is not None else "not met")

    @property
    def met(self) -> bool:
        """The tolerance was met (on the held-out check where there was one)."""
        return self.status in ("met", "met on selection states")

    def as_fields(self) -> dict:
        """The fields as JSON values (what the file format stores)."""
        return dict(self.__dict__)

    @classmethod
    def from_fields(cls, fields: dict) -> DepthSelection:
        """From :meth:`as_fields` (unknown keys of later versions are ignored; missing ones take defaults)."""
        names = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in fields.items() if k in names})


@dataclass(frozen=True)
class ContractionCertificate:
    """Result of the LMI design of the feedback ``K`` of the paper's form.

    If ``exists``: ``‖Δw⁺‖_P <= rate ‖Δw‖_P`` for every pair of layer states and
    every state ``x``, with ``P`` (m, m) and ``K`` (m, m). Otherwise ``reason``
    says why no certificate exists (e.g. rank-deficient ``G``).
    """

    exists: bool
    rate: float | None
    K: np.ndarray | None
    P: np.ndarray | None
    reason: str
