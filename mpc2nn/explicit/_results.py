"""Result types of the explicit networks: error bounds, layer histories, depth selections."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["ErrorBound", "LayerHistory", "DepthSelection", "ContractionCertificate"]


@dataclass(frozen=True)
class ErrorBound:
    """Per-sample upper bounds on ``‖U - U*‖∞`` of an explicit network's output, with their kind.

    Not an array itself: the numbers are :attr:`bound`. For convenience ``max()``, ``len()``,
    indexing and ``np.asarray(eb)`` act on :attr:`bound`.

    Attributes
    ----------
    bound : ndarray, shape (B,)
        Upper bounds (``inf`` where none could be proved).
    kind : ndarray of str, shape (B,)
        A :class:`~mpc2nn.status.BoundKind` value: ``"a-priori"`` (certified contraction, depends
        on ``x`` only) or ``"a-posteriori"`` (duality gap of the last layer's dual iterate).
    assumptions : str
        Plain-language statement of what the bound relies on.

    Examples
    --------
    >>> import numpy as np, mpc2nn
    >>> from mpc2nn.explicit import ErrorBound
    >>> eb = ErrorBound(np.array([1e-3, 2e-6]), np.array(["a-posteriori"] * 2), "duality gap")
    >>> float(eb.max()), len(eb), float(np.asarray(eb)[1])
    (0.001, 2, 2e-06)
    """

    bound: np.ndarray
    kind: np.ndarray
    assumptions: str

    def max(self) -> float:
        """The largest bound over the samples (``0.0`` for none)."""
        return float(np.max(self.bound, initial=0.0))

    def __len__(self) -> int:
        return int(self.bound.shape[0])

    def __getitem__(self, index):
        return self.bound[index]

    def __array__(self, dtype=None, copy=None):
        return np.asarray(self.bound, dtype=dtype)

    def __repr__(self) -> str:
        kinds = ", ".join(f"{int(np.sum(self.kind == k))} {k}" for k in dict.fromkeys(self.kind.tolist()))
        return f"ErrorBound({len(self)} samples, max {self.max():.3e}; {kinds})"


@dataclass(frozen=True)
class LayerHistory:
    """What happens layer by layer for a batch of ``B`` states.

    Attributes
    ----------
    residual : ndarray, shape (J, B)
        ``‖s_j - T(s_j)‖₂`` of the layer state after layer ``j = 1..J`` (for the paper's form:
        ``‖w - D relu(w) - ζ‖₂``, the published residual).
    error : ndarray, shape (J, B), or None
        ``‖U_j - U*‖∞`` when a reference was given.
    U : ndarray, shape (B, N·n_u)
        Output after the last layer.
    state : tuple of torch.Tensor
        The layer state after the last layer (pass it as ``state0`` to continue, e.g. a warm
        start at the next closed-loop step).
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
    tol : float
        The requested ``max ‖U - U*‖∞``.
    depth : int or None
        The chosen depth (``None`` if the tolerance was not reached within the largest depth tried).
    max_error : float
        Largest error on the selection states at that depth.
    n_states : int
        Number of selection states.
    guarantee : str
        What the choice guarantees, in words.
    status : str
        A :class:`~mpc2nn.status.DepthStatus` value (``"met"``, ``"met on selection states"``, ``"not met"``,
        ``"stalled"``).
    criterion : str
        How the depth was chosen (states, where they came from, the rule).
    construction : str
        The construction and its options.
    n_hard : int
        Selection states found near active-set switches and the feasible-set boundary.
    n_check : int
        Held-out states of the last check.
    check_failures : int
        How many of them exceeded ``tol``.
    check_max_error : float or None
        Their largest error.
    failure_bound : float or None
        Upper bound on ``P(error > tol)`` for a state drawn uniformly from the feasible part of the region, at
        confidence ``confidence`` (Clopper–Pearson; ``None`` without a check).
    confidence : float or None
        The confidence level of ``failure_bound``.
    statement : str
        The result in one quotable sentence.
    rounds : int
        Held-out checks run (a failed check raises the depth and draws a fresh sample).
    seconds : float or None
        Build time (tuning, selection and checks).
    tuning : str
        Summary of the tuning, or ``""``.
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
    every state ``x``. Otherwise ``reason`` says why no certificate exists (e.g.
    rank-deficient ``G``).

    Attributes
    ----------
    exists : bool
        A rate below 1 was found and verified by eigenvalues.
    rate : float or None
        The certified contraction rate ``ρ < 1``.
    K : ndarray, shape (m, m), or None
        The feedback of the paper's form.
    P : ndarray, shape (m, m), or None
        The weight of the norm ``‖v‖_P = sqrt(vᵀ P v)`` in which the layers contract.
    reason : str
        How the certificate was obtained, or why none exists.
    """

    exists: bool
    rate: float | None
    K: np.ndarray | None
    P: np.ndarray | None
    reason: str
