"""Interfaces shared across the stages, declared without their heavy dependencies.

:class:`ExplicitLaw` is what every explicit (feed-forward) control law of mpc2nn
declares — unrolled networks, the hybrid mode, exact networks — so that the
consumers (closed-loop simulation, validation, the file format, export) can
recognise one without importing torch.
"""

from __future__ import annotations

import abc
from typing import Any, ClassVar

import numpy as np

__all__ = ["ExplicitLaw"]


class ExplicitLaw(abc.ABC):
    """An explicit control law ``θ ↦ U`` derived from an implicit network.

    Every concrete class declares the attributes ``net`` (the
    :class:`~mpc2nn.ImplicitNetwork` it comes from), ``qp`` (the QP it works
    on), ``n_theta``, ``n_U``, ``n_u``, ``depth`` and ``method`` (the construction's name).

    Attributes
    ----------
    exportable : bool
        The law is a pure torch network of matrix products, additions, scalings and
        ReLUs, so it can be written as ONNX, TorchScript or C.
    """

    exportable: ClassVar[bool] = False
    net: Any
    qp: Any
    n_theta: int
    n_U: int
    n_u: int
    depth: int
    method: str

    @abc.abstractmethod
    def evaluate(self, X) -> np.ndarray:
        """``(B, N·n_u)`` float64 outputs.

        Parameters
        ----------
        X : array_like, shape (B, n_θ) or (n_θ,)
            Parameters (states for a plain problem).

        Returns
        -------
        ndarray, shape (B, N·n_u)
        """

    def run(self, X, *, state0=None) -> tuple[np.ndarray, Any]:
        """Outputs and a state to carry to the next call (``None`` here: the law has no memory).

        Parameters
        ----------
        X : array_like, shape (B, n_θ) or (n_θ,)
            Parameters (states for a plain problem).
        state0 : object, optional
            The state returned by the previous call (ignored here).

        Returns
        -------
        U : ndarray, shape (B, N·n_u)
        state : object
            ``None`` here; a law with layers returns its final layer state.
        """
        return self.evaluate(X), None
