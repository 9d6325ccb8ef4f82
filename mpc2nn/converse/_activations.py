"""ReLU approximations of other activations, and the wider ReLU network of a network using one."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._checks import real_array
from ..exceptions import ProblemDefinitionError
from ..implicit import ImplicitWeights, as_weights

__all__ = ["ReluApproximation", "relu_approximation", "WidenedNetwork", "widen", "ACTIVATIONS", "CHECK_POINTS"]

#: Default points per piece of the grid on which :func:`relu_approximation` measures its error: the
#: certified bound adds ``max|φ''| δ²/8`` for the grid step ``δ = h/(CHECK_POINTS - 1)``, so 64 points make
#: that term ``1/3969`` of the a-priori bound ``max|φ''| h²/8`` for 63 evaluations of φ per piece.
CHECK_POINTS = 64


def _sigmoid(z):
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(z, float)))


#: Named activations: ``(function, Lipschitz constant, largest magnitude of φ'' or None for piecewise-linear ones)``.
ACTIVATIONS = {
    "tanh": (np.tanh, 1.0, 4.0 / (3.0 * np.sqrt(3.0))),
    "sigmoid": (_sigmoid, 0.25, np.sqrt(3.0) / 18.0),
    "hardtanh": (lambda z: np.clip(z, -1.0, 1.0), 1.0, None),
    "relu": (lambda z: np.maximum(z, 0.0), 1.0, None),
    "leaky_relu": (None, 1.0, None),
}


@dataclass(frozen=True, eq=False)
class ReluApproximation:
    """``φ̃(z) = constant + Σ_k weights[k] · relu(signs[k] · (z - breakpoints[k]))``.

    Attributes
    ----------
    activation : str
        The activation approximated, a key of :data:`ACTIVATIONS`.
    negative_slope : float
        Slope for ``z < 0`` of leaky ReLU (unused by the other activations).
    interval : (lo, hi) or None
        Where the approximation is made (``None`` for exact representations).
    pieces : int or None
        Linear pieces inside the interval (``None`` for exact representations).
    breakpoints, signs, weights : ndarray, shape (K,)
        The terms ``weights[k] · relu(signs[k] · (z - breakpoints[k]))``, ``signs[k] = ±1``.
    constant : float
        The constant term ``φ̃(z₀)``, ``z₀`` the anchor (0, or ``lo`` if 0 is outside the interval).
    exact : bool
        The representation is exact on all of R (piecewise-linear activations).
    max_error : float
        Certified bound on ``|φ - φ̃|`` over the interval: the largest error on a
        check grid of ``check_points`` per piece plus ``max|φ''| δ² / 8`` (δ the
        grid step; the error's interpolant on the grid is within that of it).
    observed_error : float
        Largest error found on the check grid (a lower bound on the true maximum).
    a_priori_error : float
        ``max|φ''| h² / 8`` for pieces of width h (the classical interpolation bound).
    tail_error : float
        ``sup |φ - φ̃|`` outside the interval (φ̃ is constant there; φ is monotone).
    lipschitz : float
        Lipschitz constant of φ, which bounds that of φ̃.
    """

    activation: str
    negative_slope: float
    interval: tuple | None
    pieces: int | None
    breakpoints: np.ndarray
    signs: np.ndarray
    weights: np.ndarray
    constant: float
    exact: bool
    max_error: float
    observed_error: float
    a_priori_error: float
    tail_error: float
    lipschitz: float

    @property
    def n_relu(self) -> int:
        """Number of ReLUs K per original unit."""
        return self.breakpoints.size

    @property
    def global_error(self) -> float:
        """Bound on ``|φ - φ̃|`` over all of R: ``max(max_error, tail_error)``."""
        return max(self.max_error, self.tail_error)

    def __call__(self, z) -> np.ndarray:
        """φ̃ elementwise.

        Parameters
        ----------
        z : array_like
            Pre-activations, any shape.

        Returns
        -------
        ndarray
            ``φ̃(z)``, the shape of ``z``.
        """
        z = real_array("z", z, "numbers")
        t = np.maximum(self.signs * (z[..., None] - self.breakpoints), 0.0)
        return self.constant + t @ self.weights

    def target(self, z) -> np.ndarray:
        """The activation φ itself, elementwise.

        Parameters
        ----------
        z : array_like
            Pre-activations, any shape.

        Returns
        -------
        ndarray
            ``φ(z)``, the shape of ``z``.
        """
        return _activation_fn(self.activation, self.negative_slope)(real_array("z", z, "numbers"))


def _activation_fn(name: str, slope: float):
    if name == "leaky_relu":
        return lambda z: np.where(z >= 0, z, slope * z)
    return ACTIVATIONS[name][0]


def relu_approximation(activation: str, interval=None, pieces: int | None = None, *,
                       negative_slope: float = 0.01, check_points: int = CHECK_POINTS) -> ReluApproximation:
    """Piecewise-linear approximation of an activation as a sum of shifted ReLUs.

    Smooth activations (``"tanh"``, ``"sigmoid"``) are interpolated linearly at
    ``pieces + 1`` equally spaced points of ``interval`` and held constant
    outside it. Piecewise-linear ones (``"hardtanh"`` = clip to [-1, 1],
    ``"leaky_relu"``, ``"relu"``) are represented exactly through their kinks.
    The sum is anchored at ``z = 0`` (or at ``lo`` if 0 is outside the interval),
    ``φ̃(z) = φ̃(z₀) + s₊ relu(z - z₀) - s₋ relu(z₀ - z)
    + Σ_{t>z₀} Δ_t relu(z - t) + Σ_{t<z₀} Δ_t relu(t - z)``
    with ``s±`` the slopes at ``z₀`` and ``Δ_t`` the slope jumps, so that the
    constant is ``φ̃(0)`` (0 for tanh on a symmetric interval).

    Parameters
    ----------
    activation : {"tanh", "sigmoid", "hardtanh", "leaky_relu", "relu"}
        The activation to represent.
    interval : (float, float), optional
        ``(lo, hi)`` with ``lo < hi`` where a smooth activation is interpolated; required for tanh
        and sigmoid, must be None otherwise.
    pieces : int, optional
        Linear pieces ``>= 1`` inside the interval; required for tanh and sigmoid, must be None
        otherwise.
    negative_slope : float
        Slope of leaky ReLU for ``z < 0``, in [0, 1).
    check_points : int
        Points ``>= 2`` per piece of the grid that certifies ``max_error``
        (default :data:`CHECK_POINTS`).

    Returns
    -------
    ReluApproximation

    Examples
    --------
    >>> from mpc2nn.converse import relu_approximation
    >>> ap = relu_approximation("tanh", (-3.0, 3.0), 12)
    >>> ap.n_relu, bool(ap.observed_error <= ap.max_error <= ap.a_priori_error), float(ap.constant)
    (14, True, 0.0)
    >>> hard = relu_approximation("hardtanh")   # relu(z) - relu(-z) + relu(-1 - z) - relu(z - 1)
    >>> hard.breakpoints.tolist(), hard.signs.tolist(), hard.weights.tolist()
    ([0.0, 0.0, -1.0, 1.0], [1.0, -1.0, -1.0, 1.0], [1.0, -1.0, 1.0, -1.0])
    """
    if activation not in ACTIVATIONS:
        raise ProblemDefinitionError(f"activation: expected one of {sorted(ACTIVATIONS)}, got {activation!r}")
    if not (0.0 <= negative_slope < 1.0):
        raise ProblemDefinitionError(f"negative_slope: expected a number in [0, 1), got {negative_slope!r}")
    phi = _activation_fn(activation, negative_slope)
    _, lip, curv = ACTIVATIONS[activation]
    if curv is None:
        if interval is not None or pieces is not None:
            raise ProblemDefinitionError(f"{activation} is piecewise linear and represented exactly through its "
                                         "kinks: leave interval and pieces out (None)")
        kinks = np.array({"hardtanh": [-1.0, 1.0], "relu": [0.0], "leaky_relu": [0.0]}[activation])
        slopes = np.array({"hardtanh": [0.0, 1.0, 0.0], "relu": [0.0, 1.0],
                           "leaky_relu": [negative_slope, 1.0]}[activation])
        t, a, beta, const = _anchored_terms(np.array(kinks), np.array(slopes), phi, 0.0)
        return ReluApproximation(activation, negative_slope, None, None, t, a, beta, const, True, 0.0, 0.0, 0.0,
                                 0.0, lip)
    if interval is None or pieces is None:
        raise ProblemDefinitionError(f"{activation}: give interval=(lo, hi) and pieces (an integer >= 1)")
    if len(interval) != 2 or not np.all(np.isfinite(interval)) or not interval[0] < interval[1]:
        raise ProblemDefinitionError(f"interval: expected finite (lo, hi) with lo < hi, got {interval!r}")
    if isinstance(pieces, (bool, np.bool_)) or not isinstance(pieces, (int, np.integer)) or pieces < 1:
        raise ProblemDefinitionError(f"pieces: expected an integer >= 1, got {pieces!r}")
    if not isinstance(check_points, (int, np.integer)) or check_points < 2:
        raise ProblemDefinitionError(f"check_points: expected an integer >= 2, got {check_points!r}")
    lo, hi = float(interval[0]), float(interval[1])
    nodes = np.linspace(lo, hi, pieces + 1)
    vals = phi(nodes)
    seg = np.diff(vals) / np.diff(nodes)
    slopes = np.concatenate([[0.0], seg, [0.0]])
    z0 = 0.0 if lo < 0.0 < hi else lo
    t, a, beta, const = _anchored_terms(nodes, slopes, phi, z0, values=(nodes, vals))
    approx = ReluApproximation(activation, negative_slope, (lo, hi), int(pieces), t, a, beta, const, False,
                               0.0, 0.0, 0.0, 0.0, lip)
    h = (hi - lo) / pieces
    grid = np.linspace(lo, hi, pieces * (check_points - 1) + 1)
    observed = float(np.abs(phi(grid) - approx(grid)).max())
    delta = h / (check_points - 1)
    tail = float(max(abs(vals[0] - phi(-np.inf * np.ones(1)))[0], abs(phi(np.inf * np.ones(1))[0] - vals[-1])))
    return ReluApproximation(activation, negative_slope, (lo, hi), int(pieces), t, a, beta, const, False,
                             observed + curv * delta ** 2 / 8.0, observed, curv * h ** 2 / 8.0, tail, lip)


def _anchored_terms(kinks: np.ndarray, slopes: np.ndarray, phi, z0: float, values=None):
    """ReLU terms of the continuous PWL function with the given kinks and slopes (len(kinks) + 1).

    ``values = (nodes, φ(nodes))`` fixes the level (interpolation); otherwise φ(z₀) does (exact case).
    """
    # value at z0 of the PWL function
    if values is None:
        c = float(phi(np.array([z0]))[0])
    else:
        c = float(np.interp(z0, values[0], values[1]))
    # slope just right / left of z0
    i_right = int(np.searchsorted(kinks, z0, side="right"))
    i_left = int(np.searchsorted(kinks, z0, side="left"))
    s_right, s_left = slopes[i_right], slopes[i_left]
    t, a, beta = [], [], []
    if s_right != 0.0:
        t.append(z0)
        a.append(1.0)
        beta.append(s_right)
    if s_left != 0.0:
        t.append(z0)
        a.append(-1.0)
        beta.append(-s_left)
    jumps = np.diff(slopes)
    for tk, dk in zip(kinks, jumps, strict=True):
        if dk == 0.0 or tk == z0:
            continue
        if tk > z0:
            t.append(tk)
            a.append(1.0)
            beta.append(dk)
        else:
            t.append(tk)
            a.append(-1.0)
            beta.append(dk)
    return np.array(t), np.array(a), np.array(beta), c


@dataclass(frozen=True, eq=False)
class WidenedNetwork:
    """A ReLU implicit network equivalent to ``y = W φ̃(y) + Y x + b``, ``U = W_f φ̃(y) + Y_f x + bias``.

    Construction (K = ``approximation.n_relu`` terms, ``φ̃(y) = c + Σ_k β_k relu(a_k (y - t_k))``):
    the new pre-activations are ``z_k = a_k (y - t_k 1) ∈ R^m``, stacked as
    ``z = (z_1, ..., z_K) ∈ R^{mK}``; substituting gives the ReLU network

        Ŵ = (a βᵀ) ⊗ W,  Ŷ = a ⊗ Y,  b̂ = a ⊗ (b + c W 1) - (a ∘ t) ⊗ 1,
        Ŵ_f = βᵀ ⊗ W_f,  Ŷ_f = Y_f,  output bias + c W_f 1.

    Its fixed points are exactly ``z_k = a_k (y - t_k)`` for the fixed points
    ``y`` of the φ̃-network (and ``y = a_k z_k + t_k`` back, for any k). So the
    only error is ``|φ - φ̃| <= ε`` (``approximation.global_error``).

    Attributes
    ----------
    weights : ImplicitWeights
        The widened ReLU network (width ``mK``).
    approximation : ReluApproximation
        The ``φ̃`` used.
    original : ImplicitWeights
        The network with activation φ it was made from.
    contraction : float
        ``ρ = Lip(φ) ‖W‖_∞``.
    y_error_bound, output_error_bound : float or None
        When ``ρ < 1`` both networks have unique fixed points ``y``, ``ỹ`` and
        ``‖y - ỹ‖_∞ <= ‖W‖_∞ ε / (1 - ρ)``,
        ``‖U - Ũ‖_∞ <= ‖W_f‖_∞ (ε + Lip(φ) ‖y - ỹ‖_∞)``; ``None`` when ``ρ >= 1``
        (no a-priori bound is claimed then).
    """

    weights: ImplicitWeights
    approximation: ReluApproximation
    original: ImplicitWeights
    contraction: float
    y_error_bound: float | None
    output_error_bound: float | None

    def y_from_z(self, z) -> np.ndarray:
        """``(B, m)`` pre-activations of the φ̃-network from widened ones (read off the first block).

        Parameters
        ----------
        z : array_like, shape (B, mK)
            Widened pre-activations.

        Returns
        -------
        ndarray, shape (B, m)
        """
        z = np.atleast_2d(real_array("z", z, "numbers"))
        ap = self.approximation
        return ap.signs[0] * z[:, :self.original.m] + ap.breakpoints[0]

    def z_from_y(self, y) -> np.ndarray:
        """``(B, mK)`` widened pre-activations ``z_k = a_k (y - t_k)``.

        Parameters
        ----------
        y : array_like, shape (B, m)
            Pre-activations of the φ̃-network.

        Returns
        -------
        ndarray, shape (B, mK)
        """
        y = np.atleast_2d(real_array("y", y, "numbers"))
        ap = self.approximation
        return np.concatenate([a * (y - t) for a, t in zip(ap.signs, ap.breakpoints, strict=True)], axis=1)


def widen(net, approximation: ReluApproximation) -> WidenedNetwork:
    """Turn an implicit network with activation φ into a wider ReLU implicit network.

    Parameters
    ----------
    net : ImplicitWeights or ImplicitNetwork
        ``y = W φ(y) + Y x + b``, ``U = W_f φ(y) + Y_f x (+ output_bias)``, where φ is
        ``approximation.activation``.
    approximation : ReluApproximation
        From :func:`relu_approximation`.

    Returns
    -------
    WidenedNetwork
        See there for the construction and the error statement.

    Examples
    --------
    >>> import numpy as np
    >>> from mpc2nn.converse import ImplicitWeights, relu_approximation, widen
    >>> wts = ImplicitWeights(W=[[0.3]], Y=[[1.0]], b=[0.0], W_f=[[1.0]], Y_f=[[0.0]])
    >>> wide = widen(wts, relu_approximation("hardtanh"))
    >>> wide.weights.m, wide.output_error_bound
    (4, 0.0)
    """
    if not isinstance(approximation, ReluApproximation):
        raise ProblemDefinitionError(f"approximation: expected a ReluApproximation, got {type(approximation).__name__}")
    wts = as_weights(net)
    m = wts.m
    a, t, beta, c = approximation.signs, approximation.breakpoints, approximation.weights, approximation.constant
    ones = np.ones(m)
    W_hat = np.kron(np.outer(a, beta), wts.W)
    Y_hat = np.kron(a[:, None], wts.Y)
    b_hat = np.kron(a, wts.b + c * (wts.W @ ones)) - np.kron(a * t, ones)
    Wf_hat = np.kron(beta[None, :], wts.W_f)
    bias = wts.output_bias + c * (wts.W_f @ ones)
    wide = ImplicitWeights(W_hat, Y_hat, b_hat, Wf_hat, wts.Y_f, bias, wts.n_u)
    y_err: float | None
    u_err: float | None
    lip = approximation.lipschitz
    rho = lip * float(np.abs(wts.W).sum(axis=1).max())
    eps = approximation.global_error
    if rho < 1.0:
        y_err = float(np.abs(wts.W).sum(axis=1).max()) * eps / (1.0 - rho)
        u_err = float(np.abs(wts.W_f).sum(axis=1).max()) * (eps + lip * y_err)
    else:
        y_err = u_err = None
    return WidenedNetwork(wide, approximation, wts, rho, y_err, u_err)
