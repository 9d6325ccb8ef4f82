"""The layout of the QP parameter ``θ = (x, u_prev, x_ref, u_ref, y_ref)``: one class, :class:`ParameterLayout`."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from .._checks import as_box, as_states, real_array
from ..exceptions import ProblemDefinitionError, ShapeError

__all__ = ["ParameterLayout", "PARTS", "parameter_parts"]


def parameter_parts(value) -> tuple:
    """``((name, size), ...)`` from any sequence of pairs; anything else is a ShapeError naming it."""
    try:
        return tuple((str(k), int(v)) for k, v in value)
    except (TypeError, ValueError):
        raise ShapeError(f"parameter_sizes: expected pairs (name, size), e.g. (('x', 2), ('u_prev', 1)), "
                         f"got {value!r:.80}") from None

#: The parts ``θ`` may hold, in their order, with why a problem takes each and why not.
PARTS = {
    "x": ("the current state", "every problem takes the state"),
    "u_prev": ("its input-rate bounds/weight act on u_0 - u_prev: give the previous input",
               "it has no input-rate bounds or weight (du_min, du_max, du_weight)"),
    "x_ref": ("it tracks a reference (tracking=True): give the state reference",
              "it does not track a reference (tracking=False)"),
    "u_ref": ("it tracks a reference (tracking=True): give the input reference "
              "(mpc2nn.steady_state_target computes both from an output reference)",
              "it does not track a reference (tracking=False)"),
    "y_ref": ("it tracks an output reference (tracking=True with an output weight): give the output reference",
              "it has no output reference to track (it needs tracking=True and an output_weight)"),
}


@dataclass(frozen=True)
class ParameterLayout:
    """Which parts ``θ`` holds and where: ``parts = (("x", n_x), ("u_prev", n_u), ...)`` in order.

    Parameters
    ----------
    parts : tuple of (name, size)
        Names from :data:`PARTS`, in that order; ``x`` first.
    name : str
        The QP's name, used in error messages.

    Examples
    --------
    >>> from mpc2nn.qp import ParameterLayout
    >>> lay = ParameterLayout((("x", 2), ("u_prev", 1)))
    >>> lay.n_theta, lay.labels, lay.describe()
    (3, ('x[0]', 'x[1]', 'u_prev[0]'), 'x (2), u_prev (1)')
    >>> lay.build([1.0, 2.0], u_prev=[0.5]).tolist()
    [[1.0, 2.0, 0.5]]
    """

    parts: tuple
    name: str = "qp"

    def __post_init__(self):
        parts = parameter_parts(self.parts)
        names = [k for k, _ in parts]
        if not parts or names[0] != "x" or any(k not in PARTS for k in names) or names != sorted(
                names, key=list(PARTS).index) or len(set(names)) != len(names):
            raise ShapeError(f"parameter layout: expected parts among {list(PARTS)} in that order with x first, "
                             f"got {parts}")
        object.__setattr__(self, "parts", parts)

    @classmethod
    def of(cls, problem, name: str | None = None) -> ParameterLayout:
        """The parts an :class:`~mpc2nn.MPCProblem` takes (rate terms: ``u_prev``; tracking: the references).

        Parameters
        ----------
        problem : MPCProblem
            The problem.
        name : str, optional
            Name for error messages (default the problem's).

        Returns
        -------
        ParameterLayout
        """
        n_x, n_u = problem.n_x, problem.n_u
        parts = [("x", n_x)] + ([("u_prev", n_u)] if problem.uses_previous_input else []) + (
            [("x_ref", n_x), ("u_ref", n_u)] if problem.tracking else []) + (
            [("y_ref", problem.n_y)] if problem.tracks_outputs else [])
        return cls(tuple(parts), problem.name if name is None else name)

    @property
    def n_theta(self) -> int:
        """Length of ``θ``."""
        return sum(n for _, n in self.parts)

    @property
    def n_x(self) -> int:
        """Length of the state part."""
        return self.parts[0][1]

    @property
    def state_only(self) -> bool:
        """``θ`` is the state alone."""
        return len(self.parts) == 1

    @cached_property
    def slices(self) -> dict:
        """``{part: slice of θ}`` for the parts present."""
        out, start = {}, 0
        for k, n in self.parts:
            out[k] = slice(start, start + n)
            start += n
        return out

    @property
    def labels(self) -> tuple:
        """Names of the entries of ``θ``, e.g. ``("x[0]", "x[1]", "u_prev[0]")``."""
        return tuple(f"{k}[{i}]" for k, n in self.parts for i in range(n))

    def describe(self) -> str:
        """``"x (2), u_prev (1)"``: the parts and their sizes."""
        return ", ".join(f"{k} ({n})" for k, n in self.parts)

    def selector(self, part: str, size: int) -> np.ndarray:
        """``(size, n_θ)`` matrix picking ``part`` out of ``θ`` (zero when the layout has no such part).

        Parameters
        ----------
        part : str
            A name of :data:`PARTS`.
        size : int
            Its length (``n_x`` or ``n_u``; needed for a part the layout does not hold).

        Returns
        -------
        ndarray, shape (size, n_θ)
        """
        S = np.zeros((size, self.n_theta))
        if part in self.slices:
            S[:, self.slices[part]] = np.eye(size)
        return S

    def selectors(self, n_u: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(S_x, S_u_prev, S_x_ref, S_u_ref)``: the selectors of these four parts (zero for those absent;
        ``selector("y_ref", n_y)`` picks the output reference).

        Parameters
        ----------
        n_u : int
            Inputs per stage, the size of ``u_prev`` and ``u_ref``.

        Returns
        -------
        tuple of ndarray
            Shapes (n_x, n_θ), (n_u, n_θ), (n_x, n_θ), (n_u, n_θ).
        """
        n_x = self.n_x
        return (self.selector("x", n_x), self.selector("u_prev", n_u), self.selector("x_ref", n_x),
                self.selector("u_ref", n_u))

    def build(self, x, u_prev=None, x_ref=None, u_ref=None, y_ref=None) -> np.ndarray:
        """``θ`` (B, n_θ) from its parts, each ``(n,)`` (repeated over the batch) or ``(B, n)``.

        Exactly the parts of the layout must be given; a missing or unexpected part is
        refused with the reason the QP takes it or not.

        Parameters
        ----------
        x : array_like, shape (B, n_x) or (n_x,)
            States.
        u_prev : array_like, shape (B, n_u) or (n_u,), optional
            Previous inputs (layouts with ``u_prev``).
        x_ref : array_like, shape (B, n_x) or (n_x,), optional
            State references (layouts with ``x_ref``).
        u_ref : array_like, shape (B, n_u) or (n_u,), optional
            Input references (layouts with ``u_ref``).
        y_ref : array_like, shape (B, n_y) or (n_y,), optional
            Output references (layouts with ``y_ref``: tracking problems with an output weight).

        Returns
        -------
        ndarray, shape (B, n_θ)
        """
        given = dict(x=x, u_prev=u_prev, x_ref=x_ref, u_ref=u_ref, y_ref=y_ref)
        sizes = dict(self.parts)
        arrays = {}
        for k, v in given.items():
            if k not in sizes:
                if v is not None:
                    raise ProblemDefinitionError(f"{k}: QP '{self.name}' takes no {k} because {PARTS[k][1]}; "
                                                 f"its parameters are θ = ({self.describe()})")
                continue
            if v is None:
                raise ProblemDefinitionError(f"{k}: missing; QP '{self.name}' needs it because {PARTS[k][0]}. "
                                             f"Its parameters are θ = ({self.describe()})")
            a = real_array(k, v, f"an array ({sizes[k]},) or (B, {sizes[k]})")
            if a.ndim == 1:
                a = a[None, :]
            if a.ndim != 2 or a.shape[1] != sizes[k]:
                raise ShapeError(f"{k}: expected shape ({sizes[k]},) or (B, {sizes[k]}), got {np.shape(v)}")
            arrays[k] = a
        B = max(a.shape[0] for a in arrays.values())
        for k, a in arrays.items():
            if a.shape[0] not in (1, B):
                raise ShapeError(f"{k}: batch size {a.shape[0]} does not match the others ({B}); give (n,) "
                                 "to use one value for all")
        return np.hstack([np.broadcast_to(a, (B, a.shape[1])) for a in arrays.values()])

    def check(self, X, name: str = "X") -> np.ndarray:
        """``X`` as a float array (B, n_θ); a single vector becomes B = 1.

        Parameters
        ----------
        X : array_like, shape (B, n_θ) or (n_θ,)
            Parameter vectors (NaN and infinite entries are passed through).
        name : str
            Argument name used in the error message.

        Returns
        -------
        ndarray, shape (B, n_θ)

        Raises
        ------
        ShapeError
            A wrong shape; the message names the layout.
        """
        if self.state_only:
            return as_states(X, self.n_theta, name)
        try:
            return as_states(X, self.n_theta, name, sym="n_θ")
        except ShapeError as exc:
            raise ShapeError(f"{exc}; the input of QP '{self.name}' is θ = ({self.describe()}), "
                             "build it with qp.parameters(x, u_prev=..., x_ref=..., u_ref=...)") from None

    def box(self, state_box, *, u_box=None, y_box=None) -> tuple[np.ndarray, np.ndarray]:
        """A box of ``θ``: the state box for ``x`` and ``x_ref``, ``u_box`` for ``u_prev`` and ``u_ref``,
        ``y_box`` for ``y_ref``.

        Parameters
        ----------
        state_box : (lo, hi)
            Box of states, arrays of shape (n_x,) each.
        u_box : (lo, hi), optional
            Box of inputs, arrays of shape (n_u,) each; needed when the layout holds an input part.
        y_box : (lo, hi), optional
            Box of outputs, arrays of shape (n_y,) each; needed when the layout holds ``y_ref``.

        Returns
        -------
        lo, hi : ndarray, shape (n_θ,)
        """
        lo_x, hi_x = as_box("state box", state_box, self.n_x, "n_x")
        lo, hi = np.zeros(self.n_theta), np.zeros(self.n_theta)
        for k, sl in self.slices.items():
            if k in ("x", "x_ref"):
                lo[sl], hi[sl] = lo_x, hi_x
            elif k == "y_ref":
                if y_box is None:
                    raise ProblemDefinitionError(
                        f"y_box: QP '{self.name}' takes y_ref as part of θ = ({self.describe()}); give a box of "
                        "outputs (lo, hi) to draw it from, e.g. the output bounds")
                lo[sl], hi[sl] = as_box("output box", y_box, sl.stop - sl.start, "n_y")
            else:
                if u_box is None:
                    raise ProblemDefinitionError(
                        f"u_box: QP '{self.name}' takes {k} as part of θ = ({self.describe()}); give a box of "
                        "inputs (lo, hi) to draw it from, e.g. the input bounds")
                lo[sl], hi[sl] = as_box("input box", u_box, sl.stop - sl.start, "n_u")
        return lo, hi
