"""Linear MPC problem definition: :class:`MPCProblem`.

The problem at state ``x`` (with previous input ``u_prev`` and references
``x_ref``, ``u_ref`` where the formulation uses them) is

    minimise   Σ_{k=0}^{N-1} (x̃_kᵀ Q x̃_k + ũ_kᵀ R ũ_k + Δu_kᵀ S Δu_k + ỹ_kᵀ Q_y ỹ_k) + x̃_Nᵀ P x̃_N
               + Σ_i (ρ_q s_i² + ρ_l s_i)
    subject to x_{k+1} = A x_k + B u_k,  x_0 = x,  y_k = C x_k + D u_k,
               u_min <= u_k <= u_max                 k = 0..N-1
               du_min <= Δu_k <= du_max              k = 0..N-1
               x_min - s <= x_k <= x_max + s         k = 1..N
               y_min - s <= y_k <= y_max + s         k = 0..N-1 (rows with D ≠ 0), k = 1..N (rows with D = 0)
               C_x x_k + C_u u_k <= d (+ s)          k = 0..N-1   (each StageConstraint)
               C x_N <= d (+ s)                      (terminal_constraint)
               s >= 0                                (only with soft_state_penalty / soft_output_penalty)

with ``x̃_k = x_k - x_ref``, ``ũ_k = u_k - u_ref``, ``ỹ_k = y_k - y_ref``
(``x_ref = u_ref = y_ref = 0`` unless ``tracking``), ``Δu_k = u_k - u_{k-1}`` and
``u_{-1} = u_prev`` (``S = du_weight``, ``Q_y = output_weight``, 0 unless given),
``u_k`` held constant over the blocks of ``move_blocking``. The QP minimises half of
this cost. ``s`` holds the slacks of the softened rows: with ``soft_state_penalty``
every row that involves the state except the output bounds, with
``soft_output_penalty`` the output bounds (each with its own weights ``ρ_q, ρ_l``).

State bounds start at ``k = 1``: the current state is given, not decided. A
stage-constraint row with ``C_u = 0`` at ``k = 0`` only restricts the given
state; such rows are left out of the QP (they carry no decision variable).
Output bounds hold on every ``y_k`` the decisions determine and the horizon
defines: an output row with ``D = 0`` (``y = C x``) at ``k = 1..N`` like a state
bound, a row with ``D ≠ 0`` at ``k = 0..N-1`` (``y_N`` would need ``u_N``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal, Union

import numpy as np

from .._checks import Array, as_matrix, check_pd, check_psd, frozen, real_array
from ..exceptions import (
    HorizonError,
    InconsistentBoundsError,
    ProblemDefinitionError,
    ShapeError,
)
from ._fields import spec
from ._outputs import OUTPUT_FIELDS, check_outputs, refuse_without_outputs
from ._polytope import Polytope
from ._signals import check_dt, check_names
from ._statespace import problem_from_statespace
from ._summary import summary
from ._terminal_cost import terminal_weight
from ._terminal_sets import lqr_invariant_set

__all__ = ["MPCProblem", "StageConstraint"]

@dataclass(frozen=True, eq=False)
class StageConstraint:
    """A mixed stage constraint ``C_x x_k + C_u u_k <= d``, applied at every stage k = 0, ..., N-1.

    Parameters
    ----------
    C_x : array_like, shape (p, n_x)
        State coefficients (a single row may be given as ``(n_x,)``).
    C_u : array_like, shape (p, n_u)
        Input coefficients.
    d : array_like, shape (p,)
        Right-hand sides.
    """

    C_x: Array
    C_u: Array
    d: Array

    def __post_init__(self):
        C_x = np.atleast_2d(as_matrix("StageConstraint.C_x", self.C_x, ("p", "n_x"), (None, None)))
        C_u = np.atleast_2d(real_array("StageConstraint.C_u", self.C_u, "a matrix (p, n_u)"))
        C_u = as_matrix("StageConstraint.C_u", C_u, ("p", "n_u"), (C_x.shape[0], None))
        d = as_matrix("StageConstraint.d", self.d, ("p",), (C_x.shape[0],))
        object.__setattr__(self, "C_x", frozen(C_x))
        object.__setattr__(self, "C_u", frozen(C_u))
        object.__setattr__(self, "d", frozen(d))


TerminalWeight = Union[None, Literal["dare", "lyapunov"], np.ndarray]

# The array fields are array-like (or None for an optional one) on input and read-only float64 arrays after
# validation (unset bounds are ±inf): typed Array (open, see _checks). ``soft_state_penalty`` likewise is a
# number or a pair on input and the pair (ρ_q, ρ_l) (or None) after validation.


@dataclass(frozen=True, eq=False)
class MPCProblem:
    """A linear MPC problem, validated at construction.

    Parameters
    ----------
    A : array, shape (n_x, n_x)
        Discrete-time state matrix.
    B : array, shape (n_x, n_u)
        Input matrix.
    Q : array, shape (n_x, n_x)
        Stage state weight, symmetric positive semidefinite.
    R : array, shape (n_u, n_u)
        Stage input weight, symmetric positive definite.
    horizon : int
        Prediction horizon ``N >= 1``.
    P : None, "dare", "lyapunov" or array (n_x, n_x)
        Terminal weight. ``None``/``"dare"``: the stabilising solution of the
        discrete algebraic Riccati equation (the unconstrained infinite-horizon
        cost); ``"lyapunov"``: ``P = AᵀPA + Q``, the open-loop cost (A must be
        Schur stable); an array: used as given (symmetric PSD).
    u_min, u_max : array (n_u,), optional
        Input bounds; ``±inf`` entries give no constraint.
    x_min, x_max : array (n_x,), optional
        State bounds on ``x_1..x_N``; ``±inf`` entries give no constraint.
    constraints : sequence of StageConstraint or (C_x, C_u, d) tuples
        General mixed stage constraints.
    terminal_constraint : Polytope or (C, d), optional
        ``C x_N <= d``.
    terminal_set : "lqr", optional
        ``"lqr"``: the terminal constraint is the maximal positively invariant set
        of the LQR closed loop under the constraints (see :mod:`mpc2nn.sets`);
        give either this or ``terminal_constraint``.
    soft_state_penalty : float or (quadratic, linear), optional
        Soften every constraint row that involves the state (state bounds,
        stage-constraint rows with ``C_x != 0``, terminal rows) with a slack
        ``s_i >= 0`` penalised by ``ρ_q s_i² + ρ_l s_i``: one per state component
        and step (shared by its lower and upper bound, at most one of which can be
        violated, so nothing changes but the size) and one per other row. A number
        gives ``ρ_q`` (``ρ_l = 0``); a pair gives both. ``ρ_q > 0`` is required
        (it keeps the QP's Hessian positive definite); ``ρ_l`` large enough
        (above the largest multiplier of the hard problem's cost) makes the
        penalty exact: the soft solution is the hard one wherever that exists.
        Every state is then feasible; state-only rows at ``k = 0`` are dropped.
    du_min, du_max : array (n_u,), optional
        Bounds on the input rate ``Δu_k = u_k - u_{k-1}`` (``u_{-1} = u_prev``);
        ``±inf`` entries give no constraint. ``du_min <= 0 <= du_max`` is required
        (holding the input must be allowed).
    du_weight : array (n_u, n_u), optional
        Input-rate weight ``S``, symmetric positive semidefinite.
    tracking : bool
        Track references: the cost penalises ``x_k - x_ref`` and ``u_k - u_ref``
        (and ``y_k - y_ref`` with an output weight), and ``(x_ref, u_ref)`` (and
        ``y_ref``) become inputs of the QP and its networks
        (see :func:`mpc2nn.steady_state_target` to get them from an output
        reference). Constraints stay in absolute coordinates.
    move_blocking : sequence of int, optional
        Block lengths ``(b_1, ..., b_p)``, positive and summing to ``N``: the input
        is held constant within each block, so the QP decides ``p·n_u`` inputs
        instead of ``N·n_u`` (a smaller network); outputs are still ``N·n_u``.
        Fewer input moves also mean fewer feasible states and a higher cost.
    name : str
        Label used in reports.
    sample_box : (lo, hi), optional
        Box of initial states, shape (n_x,) each, used by :func:`mpc2nn.sample_states`
        when no box is given.
    C, D : arrays (n_y, n_x), (n_y, n_u), optional
        Outputs ``y_k = C x_k + D u_k`` (``D = 0`` unless given). Without an output
        weight or bounds they change nothing in the QP; plots show them.
    output_weight : array (n_y, n_y), optional
        Output weight ``Q_y``, symmetric PSD: the stage cost gains
        ``(y_k - y_ref)ᵀ Q_y (y_k - y_ref)``, ``k = 0..N-1``. The DARE terminal weight and
        the LQR terminal set use the combined stage cost (:func:`mpc2nn.problem.stage_weights`).
        With ``tracking`` the output reference ``y_ref`` is an input of the QP (``θ`` gains ``y_ref``).
    y_min, y_max : array (n_y,), optional
        Output bounds (``±inf``: none), at the steps given in the module docstring.
    soft_output_penalty : float or (quadratic, linear), optional
        Soften the output bounds (one slack per output component and step), as
        ``soft_state_penalty`` does for the state rows, with its own weights; either can be
        given without the other.
    dt : float, optional
        Sampling time in seconds: plots and reports use seconds.
    state_names, input_names, output_names : sequences of str, optional
        Names of the signals (``n_x``, ``n_u``, ``n_y`` strings), used in plots and reports.
    state_units, input_units, output_units : sequences of str, optional
        Their units (``""`` for none), e.g. ``("m", "m/s")``.

    Examples
    --------
    >>> import numpy as np, mpc2nn
    >>> prob = mpc2nn.MPCProblem(A=[[1.0, 1.0], [0.0, 1.0]], B=[[0.5], [1.0]],
    ...                          Q=np.eye(2), R=[[0.1]], horizon=5, u_min=[-1.0], u_max=[1.0])
    >>> prob.n_x, prob.n_u, prob.terminal_weight_source
    (2, 1, 'dare')
    """

    A: Array = field(metadata=spec("state matrix, shape (n_x, n_x)", "numbers", required=True))
    B: Array = field(metadata=spec("input matrix, shape (n_x, n_u)", "numbers", required=True))
    Q: Array = field(metadata=spec("state weight, shape (n_x, n_x), symmetric PSD", "numbers", required=True))
    R: Array = field(metadata=spec("input weight, shape (n_u, n_u), symmetric PD", "numbers", required=True))
    horizon: int = field(metadata=spec("prediction horizon, an integer >= 1", "integer", required=True,
                                       stored="field"))
    P: Any = field(default=None, metadata=spec(
        'terminal weight: "dare" (default, Riccati), "lyapunov" (open-loop cost) or a matrix (n_x, n_x)',
        "terminal weight"))
    u_min: Array = field(default=None, metadata=spec("input lower bounds, shape (n_u,)", "numbers"))
    u_max: Array = field(default=None, metadata=spec("input upper bounds, shape (n_u,)", "numbers"))
    x_min: Array = field(default=None, metadata=spec(
        "lower bounds on the predicted states x_1..x_N, shape (n_x,)", "numbers"))
    x_max: Array = field(default=None, metadata=spec(
        "upper bounds on the predicted states x_1..x_N, shape (n_x,)", "numbers"))
    constraints: tuple = field(default=(), metadata=spec(
        "array of tables [[constraints]] with C_x (p, n_x), C_u (p, n_u) and d (p,): C_x x_k + C_u u_k <= d, "
        "k = 0..N-1", "stage tables", stored="parts"))
    terminal_constraint: Polytope | None = field(default=None, metadata=spec(
        "table with C (p, n_x) and d (p,): C x_N <= d", "table", stored="parts"))
    terminal_set: str | None = field(default=None, metadata=spec(
        '"lqr": the LQR maximal invariant set as terminal constraint (instead of [terminal_constraint])',
        "string", stored="field"))
    soft_state_penalty: Any = field(default=None, metadata=spec(
        "ρ_q or [ρ_q, ρ_l]: soften every state constraint (quadratic, and exact L1 with a large ρ_l)",
        "numbers", stored="field if used", used_when="soft"))
    du_min: Array = field(default=None, metadata=spec(
        "input-rate lower bounds on u_k - u_{k-1}, shape (n_u,)", "numbers", stored="array if used",
        used_when="has_rate_bounds"))
    du_max: Array = field(default=None, metadata=spec(
        "input-rate upper bounds on u_k - u_{k-1}, shape (n_u,)", "numbers", stored="array if used",
        used_when="has_rate_bounds"))
    du_weight: Array = field(default=None, metadata=spec(
        "input-rate weight, shape (n_u, n_u), symmetric PSD", "numbers", stored="array if used",
        used_when="has_rate_weight"))
    tracking: bool = field(default=False, metadata=spec(
        "true: track (x_ref, u_ref) given as network inputs", "boolean", stored="field if used",
        used_when="tracking"))
    move_blocking: tuple | None = field(default=None, metadata=spec(
        "block lengths, integers summing to horizon", "numbers", stored="field if used",
        used_when="has_move_blocking"))
    name: str = field(default="mpc", metadata=spec(
        "label used in reports (default: the file name stem)", "string", stored="field"))
    sample_box: tuple | None = field(default=None, metadata=spec(
        "table with lo and hi, each (n_x,): the box of initial states sampled by validate, bench and unravel",
        "table", stored="parts"))
    C: Array = field(default=None, metadata=spec(
        "output matrix, shape (n_y, n_x): outputs y_k = C x_k + D u_k", "numbers", stored="array if used",
        used_when="has_outputs"))
    D: Array = field(default=None, metadata=spec(
        "output feedthrough, shape (n_y, n_u) (default zero)", "numbers", stored="array if used",
        used_when="has_outputs"))
    output_weight: Array = field(default=None, metadata=spec(
        "output weight Q_y, shape (n_y, n_y), symmetric PSD: stage cost (y_k - y_ref)' Q_y (y_k - y_ref)",
        "numbers", stored="array if used", used_when="has_output_weight"))
    y_min: Array = field(default=None, metadata=spec(
        "output lower bounds, shape (n_y,)", "numbers", stored="array if used", used_when="has_outputs"))
    y_max: Array = field(default=None, metadata=spec(
        "output upper bounds, shape (n_y,)", "numbers", stored="array if used", used_when="has_outputs"))
    soft_output_penalty: Any = field(default=None, metadata=spec(
        "ρ_q or [ρ_q, ρ_l]: soften the output bounds (quadratic, and exact L1 with a large ρ_l)", "numbers",
        stored="field if used", used_when="soft_outputs"))
    dt: float | None = field(default=None, metadata=spec(
        "sampling time in seconds, a number > 0 (plots in seconds; with Ac and Bc: the discretisation step)",
        "numbers", stored="field if used", used_when="has_signal_info"))
    state_names: tuple | None = field(default=None, metadata=spec(
        "names of the states, n_x strings", "strings", stored="field if used", used_when="has_signal_info"))
    state_units: tuple | None = field(default=None, metadata=spec(
        'units of the states, n_x strings ("" for none)', "strings", stored="field if used",
        used_when="has_signal_info"))
    input_names: tuple | None = field(default=None, metadata=spec(
        "names of the inputs, n_u strings", "strings", stored="field if used", used_when="has_signal_info"))
    input_units: tuple | None = field(default=None, metadata=spec(
        "units of the inputs, n_u strings", "strings", stored="field if used", used_when="has_signal_info"))
    output_names: tuple | None = field(default=None, metadata=spec(
        "names of the outputs, n_y strings", "strings", stored="field if used", used_when="has_signal_info"))
    output_units: tuple | None = field(default=None, metadata=spec(
        "units of the outputs, n_y strings", "strings", stored="field if used", used_when="has_signal_info"))
    terminal_weight_source: str = field(init=False, default="given", metadata=spec(
        'where P came from: "dare", "lyapunov" or "given"', "", stored="field"))

    def __post_init__(self):
        A = as_matrix("A", self.A, ("n_x", "n_x"), (None, None))
        if A.shape[0] != A.shape[1]:
            raise ShapeError(f"A: expected shape (n_x, n_x), a square matrix, got {A.shape}")
        n_x = A.shape[0]
        if n_x == 0:
            raise ShapeError("A: expected shape (n_x, n_x) with n_x >= 1, got (0, 0)")
        B = as_matrix("B", self.B, ("n_x", "n_u"), (n_x, None))
        n_u = B.shape[1]
        if n_u == 0:
            raise ShapeError(f"B: expected shape (n_x, n_u) = ({n_x}, n_u) with n_u >= 1, got {B.shape}")
        Q = check_psd("Q", as_matrix("Q", self.Q, ("n_x", "n_x"), (n_x, n_x)))
        R = check_pd("R", as_matrix("R", self.R, ("n_u", "n_u"), (n_u, n_u)))
        N = self.horizon
        if isinstance(N, (bool, np.bool_)) or not isinstance(N, (int, np.integer)):
            raise HorizonError(f"horizon: expected an integer >= 1, got {N!r} ({type(N).__name__})")
        if N < 1:
            raise HorizonError(f"horizon: expected an integer >= 1, got {N}")

        u_min, u_max = _bounds("u", self.u_min, self.u_max, n_u, "n_u")
        x_min, x_max = _bounds("x", self.x_min, self.x_max, n_x, "n_x")

        cons = []
        if isinstance(self.constraints, (StageConstraint, str, bytes)) or not hasattr(self.constraints, "__iter__"):
            raise ProblemDefinitionError(
                f"constraints: expected a sequence of StageConstraint or (C_x, C_u, d) tuples, got "
                f"{type(self.constraints).__name__} {self.constraints!r}; wrap a single one in a list")
        for i, c in enumerate(self.constraints):
            if not isinstance(c, StageConstraint):
                if not (isinstance(c, (tuple, list)) and len(c) == 3):
                    raise ProblemDefinitionError(
                        f"constraints[{i}]: expected a StageConstraint or a (C_x, C_u, d) tuple, got {c!r}")
                c = StageConstraint(*c)
            if c.C_x.shape[1] != n_x or c.C_u.shape[1] != n_u:
                raise ShapeError(f"constraints[{i}]: expected C_x of shape (p, n_x) = (p, {n_x}) and C_u of "
                                 f"shape (p, n_u) = (p, {n_u}), got {c.C_x.shape} and {c.C_u.shape}")
            cons.append(c)
        term = self.terminal_constraint
        if term is not None:
            if not isinstance(term, Polytope):
                if not (isinstance(term, (tuple, list)) and len(term) == 2):
                    raise ProblemDefinitionError(
                        f"terminal_constraint: expected a Polytope or a (C, d) tuple, got {term!r}")
                term = Polytope(*term)
            if term.C.shape[1] != n_x:
                raise ShapeError(f"terminal_constraint.C: expected shape (p, n_x) = (p, {n_x}), got {term.C.shape}")

        C_y: np.ndarray | None = None
        D_y: np.ndarray | None = None
        W_y: np.ndarray | None = None
        y_min: np.ndarray | None = None
        y_max: np.ndarray | None = None
        soft_y = None
        if self.C is None:
            refuse_without_outputs({k: getattr(self, k) for k in OUTPUT_FIELDS})
        else:
            C_y, D_y, W_y = check_outputs(self.C, self.D, self.output_weight, n_x, n_u)
            y_min, y_max = _bounds("y", self.y_min, self.y_max, C_y.shape[0], "n_y")
            soft_y = _soft_penalty(self.soft_output_penalty, "soft_output_penalty")
        if W_y is None or C_y is None or D_y is None:
            P, source = terminal_weight(self.P, A, B, Q, R)
        else:  # the DARE / Lyapunov weight of the whole stage cost, output weight and cross term included
            P, source = terminal_weight(self.P, A, B, Q + C_y.T @ W_y @ C_y, R + D_y.T @ W_y @ D_y,
                                         C_y.T @ W_y @ D_y)
        soft = _soft_penalty(self.soft_state_penalty)
        du_min, du_max = _bounds("du", self.du_min, self.du_max, n_u, "n_u")
        for i in range(n_u):
            if not du_min[i] <= 0.0 <= du_max[i]:
                raise InconsistentBoundsError(
                    f"du_min[{i}] = {du_min[i]:g}, du_max[{i}] = {du_max[i]:g}: the rate bounds must admit Δu = 0 "
                    "(du_min <= 0 <= du_max), or holding the input would be infeasible")
        S = None if self.du_weight is None else check_psd(
            "du_weight", as_matrix("du_weight", self.du_weight, ("n_u", "n_u"), (n_u, n_u)))
        if not isinstance(self.tracking, (bool, np.bool_)):
            raise ProblemDefinitionError(f"tracking: expected True or False, got {self.tracking!r}")
        blocks = _move_blocks(self.move_blocking, int(N))

        box = self.sample_box
        if box is not None:
            if isinstance(box, (str, bytes, dict)) or not hasattr(box, "__len__"):
                raise ShapeError(f"sample_box: expected a pair (lo, hi) of arrays (n_x,), got {type(box).__name__}")
            if len(box) != 2:
                raise ShapeError(f"sample_box: expected a pair (lo, hi), got {len(box)} items")
            lo = as_matrix("sample_box lo", box[0], ("n_x",), (n_x,))
            hi = as_matrix("sample_box hi", box[1], ("n_x",), (n_x,))
            if np.any(lo > hi):
                i = int(np.argmax(lo > hi))
                raise InconsistentBoundsError(f"sample_box: lo[{i}] = {lo[i]:g} > hi[{i}] = {hi[i]:g}")
            box = (frozen(lo), frozen(hi))

        for k, v in dict(A=A, B=B, Q=Q, R=R, P=P, u_min=u_min, u_max=u_max, x_min=x_min, x_max=x_max,
                         du_min=du_min, du_max=du_max).items():
            object.__setattr__(self, k, frozen(v))
        object.__setattr__(self, "du_weight", None if S is None else frozen(S))
        for k, out in dict(C=C_y, D=D_y, output_weight=W_y, y_min=y_min, y_max=y_max).items():
            object.__setattr__(self, k, None if out is None else frozen(out))
        object.__setattr__(self, "soft_output_penalty", soft_y)
        n_y = 0 if C_y is None else C_y.shape[0]
        object.__setattr__(self, "dt", check_dt(self.dt))
        for kind, n, sym in (("state", n_x, "n_x"), ("input", n_u, "n_u"), ("output", n_y, "n_y")):
            for what in ("names", "units"):
                f = f"{kind}_{what}"
                object.__setattr__(self, f, check_names(f, getattr(self, f), n, sym))
        object.__setattr__(self, "soft_state_penalty", soft)
        object.__setattr__(self, "tracking", bool(self.tracking))
        object.__setattr__(self, "move_blocking", blocks)
        object.__setattr__(self, "horizon", int(N))
        object.__setattr__(self, "constraints", tuple(cons))
        object.__setattr__(self, "terminal_constraint", term)
        object.__setattr__(self, "sample_box", box)
        object.__setattr__(self, "terminal_weight_source", source)
        if self.terminal_set is not None:
            if not (isinstance(self.terminal_set, str) and self.terminal_set == "lqr"):
                raise ProblemDefinitionError(f"terminal_set: expected 'lqr' or None, got {self.terminal_set!r}; "
                                             "give a polytope as terminal_constraint")
            if term is not None:
                raise ProblemDefinitionError("terminal_set='lqr' and terminal_constraint were both given; "
                                             "give one of them")
            if self.tracking:
                raise ProblemDefinitionError(
                    "terminal_set='lqr' is the invariant set for regulation to the origin and does not move "
                    "with the reference; with tracking=True give a terminal_constraint polytope (absolute "
                    "coordinates) or none")
            inv = lqr_invariant_set(self)
            object.__setattr__(self, "terminal_constraint", Polytope(inv.C, inv.d))

    # --- sizes -----------------------------------------------------------
    @property
    def soft(self) -> bool:
        """State constraints are softened (``soft_state_penalty`` is given)."""
        return self.soft_state_penalty is not None

    @property
    def has_rate_bounds(self) -> bool:
        """Some input-rate bound is finite."""
        return bool(np.isfinite(self.du_min).any() or np.isfinite(self.du_max).any())

    @property
    def has_rate_weight(self) -> bool:
        """An input-rate weight is given."""
        return self.du_weight is not None

    @property
    def has_move_blocking(self) -> bool:
        """The inputs are blocked (``move_blocking`` is given)."""
        return self.move_blocking is not None

    @property
    def uses_previous_input(self) -> bool:
        """The QP depends on the previous input (rate bounds or a rate weight are given)."""
        return self.has_rate_bounds or bool(self.du_weight is not None and np.any(self.du_weight))

    @property
    def has_outputs(self) -> bool:
        """Outputs ``y = C x + D u`` are defined (``C`` is given)."""
        return self.C is not None

    @property
    def has_output_weight(self) -> bool:
        """An output weight is given."""
        return self.output_weight is not None

    @property
    def has_output_bounds(self) -> bool:
        """Some output bound is finite."""
        return self.C is not None and bool(np.isfinite(self.y_min).any() or np.isfinite(self.y_max).any())

    @property
    def soft_outputs(self) -> bool:
        """The output bounds are softened (``soft_output_penalty`` is given)."""
        return self.soft_output_penalty is not None

    @property
    def tracks_outputs(self) -> bool:
        """The QP takes an output reference ``y_ref``: ``tracking`` with a nonzero output weight."""
        return bool(self.tracking and self.output_weight is not None and np.any(self.output_weight))

    @property
    def has_signal_info(self) -> bool:
        """A sampling time, names or units are given (they change nothing in the QP)."""
        return self.dt is not None or any(getattr(self, f"{k}_{w}") is not None for k in ("state", "input", "output")
                                          for w in ("names", "units"))

    @property
    def n_y(self) -> int:
        """Number of outputs (0 without ``C``)."""
        return 0 if self.C is None else self.C.shape[0]

    @property
    def n_x(self) -> int:
        """Number of states."""
        return self.A.shape[0]

    @property
    def n_u(self) -> int:
        """Number of inputs."""
        return self.B.shape[1]

    def __repr__(self) -> str:
        return summary(self)

    def replace(self, **changes) -> MPCProblem:
        """A copy with some fields changed (validated again).

        A terminal weight that was computed (DARE or Lyapunov) is computed again
        for the new data unless ``P`` is among the changes; so is an LQR terminal set.

        Parameters
        ----------
        **changes
            New values of fields of :class:`MPCProblem`, by name (e.g. ``horizon=10``).

        Returns
        -------
        MPCProblem

        Examples
        --------
        >>> import mpc2nn
        >>> mpc2nn.systems.double_integrator().replace(horizon=5).horizon
        5
        """
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.init}
        if "P" not in changes and self.terminal_weight_source != "given":
            fields["P"] = self.terminal_weight_source
        if self.terminal_set is not None:
            fields["terminal_constraint"] = None  # computed: computed again for the new data
        fields.update(changes)
        return MPCProblem(**fields)

    # --- construction from python-control --------------------------------
    @classmethod
    def from_statespace(cls, sys, Q, R, horizon: int, *, dt: float | None = None, **kwargs) -> MPCProblem:
        """Build from a python-control ``StateSpace``.

        A continuous-time system (``sys.dt == 0``) needs ``dt`` and is discretised
        by zero-order hold; a discrete-time system is used as it is (``dt``, if
        given, must equal ``sys.dt``). The problem keeps the sampling time, the
        system's outputs (``C``, ``D``, unless ``C`` is given or the outputs are the
        states, ``C = I``, ``D = 0``) and the names of its signals where they are not
        python-control's defaults (``x[0]``, ...).

        Parameters
        ----------
        sys : control.StateSpace
            The model.
        Q : array_like, shape (n_x, n_x)
            Stage state weight.
        R : array_like, shape (n_u, n_u)
            Stage input weight.
        horizon : int
            Prediction horizon ``N >= 1``.
        dt : float, optional
            Sampling time ``> 0``; required for a continuous-time ``sys``.
        **kwargs
            Other fields of :class:`MPCProblem` (bounds, constraints, ``P``, ...).

        Returns
        -------
        MPCProblem
        """
        return problem_from_statespace(cls, sys, Q, R, horizon, dt, kwargs)


def _bounds(v: str, lo, hi, n: int, sym: str) -> tuple[np.ndarray, np.ndarray]:
    """Bounds as float arrays; ``None`` (whole or per entry) means unbounded (``∓inf``)."""

    def one(name, val, default):
        if val is None:
            return np.full(n, default)
        if isinstance(val, (list, tuple)):
            val = [default if e is None else e for e in val]
        return as_matrix(name, val, (sym,), (n,), allow_inf=True)

    lo_arr, hi_arr = one(f"{v}_min", lo, -np.inf), one(f"{v}_max", hi, np.inf)
    if np.any(lo_arr == np.inf):
        i = int(np.argmax(lo_arr == np.inf))
        raise InconsistentBoundsError(f"{v}_min[{i}] = +inf: a lower bound of +inf admits nothing; use -inf for none")
    if np.any(hi_arr == -np.inf):
        i = int(np.argmax(hi_arr == -np.inf))
        raise InconsistentBoundsError(f"{v}_max[{i}] = -inf: an upper bound of -inf admits nothing; use +inf for none")
    bad = lo_arr > hi_arr
    if bad.any():
        i = int(np.argmax(bad))
        raise InconsistentBoundsError(
            f"{v}_min[{i}] = {lo_arr[i]:g} > {v}_max[{i}] = {hi_arr[i]:g}: each lower bound must not exceed "
            "its upper bound")
    return lo_arr, hi_arr


def _soft_penalty(value, field: str = "soft_state_penalty") -> tuple[float, float] | None:
    """``(ρ_q, ρ_l)`` from a number or a pair; ``None`` stays ``None``."""
    if value is None:
        return None
    try:
        pair = (value, 0.0) if np.ndim(value) == 0 else tuple(value)
    except (TypeError, ValueError):
        pair = ()
    if len(pair) != 2:
        raise ProblemDefinitionError(
            f"{field}: expected a number ρ_q > 0 or a pair (ρ_q, ρ_l), got {value!r}")
    try:
        rq, rl = float(pair[0]), float(pair[1])
    except (TypeError, ValueError):
        raise ProblemDefinitionError(
            f"{field}: expected a number ρ_q > 0 or a pair (ρ_q, ρ_l) of numbers, got {value!r}") from None
    if not (np.isfinite(rq) and rq > 0):
        raise ProblemDefinitionError(
            f"{field}: the quadratic weight ρ_q must be finite and > 0 (it keeps the QP's Hessian "
            f"positive definite), got {rq!r}; for an exact penalty use a small ρ_q with a large linear ρ_l")
    if not (np.isfinite(rl) and rl >= 0):
        raise ProblemDefinitionError(f"{field}: the linear weight ρ_l must be finite and >= 0, got {rl!r}")
    return rq, rl


def _move_blocks(value, N: int) -> tuple | None:
    """Block lengths as a tuple of positive ints summing to ``N``; ``None`` stays ``None``."""
    if value is None:
        return None
    try:
        blocks = tuple(value)
    except TypeError:
        raise ProblemDefinitionError(
            f"move_blocking: expected a sequence of block lengths summing to N = {N}, got {value!r}") from None
    if not blocks or not all(isinstance(b, (int, np.integer)) and not isinstance(b, bool) and b >= 1
                             for b in blocks):
        raise ProblemDefinitionError(
            f"move_blocking: expected positive integer block lengths summing to N = {N}, got {value!r}")
    if sum(blocks) != N:
        raise ProblemDefinitionError(
            f"move_blocking: the block lengths {list(map(int, blocks))} sum to {sum(blocks)}, expected the "
            f"horizon N = {N}")
    return tuple(int(b) for b in blocks)
