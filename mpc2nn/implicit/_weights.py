"""Weights of an implicit network, without the QP they may have come from."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._checks import UNSET, as_matrix, as_states
from ..exceptions import ProblemDefinitionError, ShapeError

__all__ = ["ImplicitWeights", "as_weights"]


@dataclass(frozen=True, eq=False)
class ImplicitWeights:
    """Weights of an implicit network, without the QP it may have come from.

    ``y = W φ(y) + Y x + b``, ``U = W_f φ(y) + Y_f x + output_bias`` with the
    activation ``φ`` = relu unless stated otherwise by whoever uses it.

    Parameters
    ----------
    W : array_like, shape (m, m)
        Implicit-layer weight.
    Y : array_like, shape (m, n_x)
        Input weight (``n_x`` network inputs).
    b : array_like, shape (m,)
        Bias of the implicit layer.
    W_f : array_like, shape (n_U, m)
        Output weight.
    Y_f : array_like, shape (n_U, n_x)
        Output input-weight.
    output_bias : array_like, shape (n_U,), optional
        Constant output offset (zero by default). A QP's solution has none; see
        :func:`to_qp` for how a non-zero one is handled.
    n_u : int, optional
        Outputs per stage (``n_U`` by default: the whole output is one stage).

    Examples
    --------
    >>> import numpy as np
    >>> from mpc2nn.converse import ImplicitWeights
    >>> wts = ImplicitWeights(W=[[0.5]], Y=[[1.0]], b=[0.0], W_f=[[1.0]], Y_f=[[0.0]])
    >>> wts.m, wts.n_x, wts.n_U
    (1, 1, 1)
    """

    W: np.ndarray
    Y: np.ndarray
    b: np.ndarray
    W_f: np.ndarray
    Y_f: np.ndarray
    output_bias: np.ndarray = UNSET
    n_u: int = UNSET

    def __post_init__(self):
        W = as_matrix("W", self.W, ("m", "m"), (None, None))
        if W.shape[0] != W.shape[1]:
            raise ShapeError(f"W: expected shape (m, m), a square matrix, got {W.shape}")
        m = W.shape[0]
        Y = as_matrix("Y", self.Y, ("m", "n_x"), (m, None))
        b = as_matrix("b", self.b, ("m",), (m,))
        W_f = as_matrix("W_f", self.W_f, ("n_U", "m"), (None, m))
        n_U = W_f.shape[0]
        Y_f = as_matrix("Y_f", self.Y_f, ("n_U", "n_x"), (n_U, Y.shape[1]))
        bias = np.zeros(n_U) if self.output_bias is None else as_matrix(
            "output_bias", self.output_bias, ("n_U",), (n_U,))
        n_u = n_U if self.n_u is None else self.n_u
        if not isinstance(n_u, (int, np.integer)) or n_u < 1 or n_U % n_u:
            raise ShapeError(f"n_u: expected a positive divisor of n_U = {n_U}, got {self.n_u!r}")
        for k, v in dict(W=W, Y=Y, b=b, W_f=W_f, Y_f=Y_f, output_bias=bias).items():
            v = np.ascontiguousarray(v)
            v.setflags(write=False)
            object.__setattr__(self, k, v)
        object.__setattr__(self, "n_u", int(n_u))

    @classmethod
    def from_network(cls, net: ImplicitWeights) -> ImplicitWeights:
        """The bare weights of a compiled :class:`~mpc2nn.ImplicitNetwork` (an ImplicitWeights already).

        Parameters
        ----------
        net : ImplicitWeights
            A network or weights.

        Returns
        -------
        ImplicitWeights
            The weights alone (no QP), every network input counted as an input.
        """
        return cls(net.W, net.Y, net.b, net.W_f, net.Y_f, net.output_bias, net.n_u)

    def bare(self) -> ImplicitWeights:
        """These weights without anything a subclass adds (a compiled network's QP and steps)."""
        return self

    @property
    def m(self) -> int:
        """Width of the implicit layer."""
        return self.W.shape[0]

    @property
    def n_theta(self) -> int:
        """Number of network inputs."""
        return self.Y.shape[1]

    @property
    def n_x(self) -> int:
        """Number of network inputs (the states, for a network that takes only the state)."""
        return self.Y.shape[1]

    def _inputs(self, X) -> np.ndarray:
        """``X`` as ``(B, n_θ)`` float64 (a hook: a compiled network checks it against its QP's layout)."""
        return as_states(X, self.n_theta)

    @property
    def n_U(self) -> int:
        """Number of outputs."""
        return self.W_f.shape[0]

    def output(self, y, X) -> np.ndarray:
        """``(B, n_U)`` output ``W_f relu(y) + Y_f x + output_bias``.

        Parameters
        ----------
        y : array_like, shape (B, m)
            Implicit-layer states.
        X : array_like, shape (B, n_x) or (n_x,)
            Network inputs.

        Returns
        -------
        ndarray, shape (B, n_U)
        """
        X = self._inputs(X)
        return np.maximum(np.asarray(y, float), 0.0) @ self.W_f.T + X @ self.Y_f.T + self.output_bias

    def fixed_point_residual(self, y, X) -> np.ndarray:
        """``(B,)`` fixed-point residual ``‖y - W relu(y) - Y x - b‖∞``.

        Parameters
        ----------
        y : array_like, shape (B, m) or (m,)
            Implicit-layer states.
        X : array_like, shape (B, n_x) or (n_x,)
            Network inputs.

        Returns
        -------
        ndarray, shape (B,)
        """
        X = self._inputs(X)
        y = np.atleast_2d(np.asarray(y, float))
        return np.abs(y - np.maximum(y, 0.0) @ self.W.T - X @ self.Y.T - self.b).max(axis=1, initial=0.0)


def as_weights(net) -> ImplicitWeights:
    """The bare weights of ``net``, else a named error.

    The bare weights count every network input as an input (``n_x = n_θ``).

    Parameters
    ----------
    net : ImplicitWeights or ImplicitNetwork
        Weights, or a compiled network (whose QP is left behind).

    Returns
    -------
    ImplicitWeights

    Raises
    ------
    ProblemDefinitionError
        ``net`` is neither.
    """
    if isinstance(net, ImplicitWeights):
        return net.bare()
    raise ProblemDefinitionError(
        f"net: expected an ImplicitNetwork or ImplicitWeights(W, Y, b, W_f, Y_f), got {type(net).__name__}")
