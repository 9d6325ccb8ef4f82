"""Closed-loop simulation: :func:`simulate`, the :class:`Controller` protocol and its adapters.

Every controller — MPC through OSQP, the exact implicit network, an explicit
network, or any function ``x ↦ u`` — is used through one protocol: called with a
state ``(n_x,)`` (and, as keywords, the previous input ``u_prev`` and the
references ``x_ref``, ``u_ref`` of the step) it returns a :class:`ControlAction`
(the input ``(n_u,)`` and a status); ``reset()`` forgets warm-start memory.
:func:`as_controller` wraps the usual objects.

Controllers built on a QP pass what their QP takes (:meth:`CondensedQP.parameters`):
``u_prev`` where it has input-rate terms, ``x_ref`` and ``u_ref`` where it tracks.
A QP that does not track sees the deviation ``x - x_ref`` instead (regulation in
deviation coordinates, as before tracking existed); an input reference is then
refused.
"""

from __future__ import annotations

import inspect
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from ._checks import as_matrix
from .exceptions import ProblemDefinitionError, ShapeError
from .implicit import ImplicitNetwork
from .oracle import OSQPSession
from .problem import MPCProblem, _zoh
from .qp import CondensedQP

__all__ = ["ControlAction", "Controller", "MPCController", "ImplicitController", "ExplicitController",
           "FunctionController",
           "as_controller", "Trajectory", "simulate"]


@dataclass(frozen=True)
class ControlAction:
    """What a controller returns for one state: the input ``u`` (n_u,) and a status string."""

    u: np.ndarray
    status: str = "ok"


@runtime_checkable
class Controller(Protocol):
    """A feedback law ``x ↦ u`` used by :func:`simulate`.

    Called as ``ctrl(x, u_prev=..., x_ref=..., u_ref=...)``: state ``(n_x,)``, the input
    applied at the previous step ``(n_u,)`` and the step's references (``None`` where
    there are none).
    """

    def __call__(self, x: np.ndarray, *, u_prev=None, x_ref=None, u_ref=None) -> ControlAction: ...

    def reset(self) -> None: ...


def _deviation(x, x_ref, u_ref, who: str, fix: str = "") -> np.ndarray:
    """``x - x_ref`` for a controller that sees only the state; an input reference is refused."""
    if u_ref is not None and np.any(np.asarray(u_ref) != 0):
        raise ProblemDefinitionError(f"input reference: {who} sees only the state (minus the state reference); "
                                     f"it cannot take an input reference{fix}")
    x = np.asarray(x, float)
    return x if x_ref is None else x - x_ref


def _parameters(qp: CondensedQP, x, u_prev, x_ref, u_ref) -> np.ndarray:
    """``θ`` (1, n_θ) of one step for a QP-based controller (see the module docstring)."""
    layout = dict(qp.parameter_sizes)
    if "x_ref" not in layout:
        x = _deviation(x, x_ref, u_ref, f"QP '{qp.name}' (tracking=False)",
                       "; build the problem with tracking=True to track (x_ref, u_ref)")
        x_ref = u_ref = None
    elif x_ref is None or u_ref is None:
        raise ProblemDefinitionError(
            f"reference: QP '{qp.name}' tracks references (tracking=True); pass reference= (the state "
            "reference) and input_reference= to simulate (mpc2nn.steady_state_target gives both)")
    if "u_prev" not in layout:
        u_prev = None
    return qp.parameters(x, u_prev=u_prev, x_ref=x_ref, u_ref=u_ref)


class MPCController:
    """MPC by OSQP (warm-started across calls, tolerances of :data:`mpc2nn.OSQP_SETTINGS`)."""

    def __init__(self, problem: MPCProblem | CondensedQP):
        self._session = OSQPSession(problem)
        self.problem = problem
        self.qp = self._session.qp
        self.n_u = self._session.qp.n_u

    def __call__(self, x, *, u_prev=None, x_ref=None, u_ref=None):
        ref = self._session.solve(_parameters(self.qp, x, u_prev, x_ref, u_ref))
        return ControlAction(ref.u0[0], str(ref.status[0]))

    def reset(self):
        """Nothing to forget beyond OSQP's warm start, which adapts by itself."""


class ImplicitController:
    """The exact implicit network; with ``warm_start`` each solve starts from the previous fixed point."""

    def __init__(self, net: ImplicitNetwork, *, warm_start: bool = True):
        self.net, self.warm_start = net, warm_start
        self.problem = net.qp.problem if net.qp.problem is not None else net.qp
        self.qp = net.qp
        self.n_u = net.n_u
        self._y = None

    def __call__(self, x, *, u_prev=None, x_ref=None, u_ref=None):
        theta = _parameters(self.qp, x, u_prev, x_ref, u_ref)
        sol = self.net.solve(theta, y0=self._y if self.warm_start else None)
        if sol.feasible[0]:
            self._y = sol.y
        return ControlAction(sol.u0[0], str(sol.status[0]))

    def reset(self):
        """Forget the previous fixed point."""
        self._y = None


class ExplicitController:
    """An explicit network from :func:`mpc2nn.unravel`.

    With ``warm_start`` the layer state is carried from one call to the next (the
    paper's closed loop: the network starts where it stopped at the previous
    step). With ``record_residuals`` every call appends the per-layer residual
    ``(depth,)`` to :attr:`residuals`.
    """

    def __init__(self, explicit, *, warm_start: bool = False, record_residuals: bool = False):
        self.explicit, self.warm_start, self.record_residuals = explicit, warm_start, record_residuals
        qp = self.qp = explicit.net.qp
        self.problem = qp.problem if qp.problem is not None else qp
        self.n_u = explicit.n_u
        self.residuals: list[np.ndarray] = []
        self._state = None

    def __call__(self, x, *, u_prev=None, x_ref=None, u_ref=None):
        theta = _parameters(self.qp, x, u_prev, x_ref, u_ref)
        state0 = self._state if self.warm_start else None
        if self.record_residuals:
            hist = self.explicit.history(theta, state0=state0)
            U, state = hist.U, hist.state
            self.residuals.append(hist.residual[:, 0])
        else:
            U, state = self.explicit.run(theta, state0=state0)
        if self.warm_start:
            self._state = state
        return ControlAction(U[0, :self.n_u], f"explicit network, depth {self.explicit.depth}")

    def reset(self):
        """Forget the carried layer state and the recorded residuals."""
        self._state = None
        self.residuals = []


def _takes_step_keywords(obj) -> bool:
    """``obj(x, u_prev=, x_ref=, u_ref=)`` is accepted by the signature of ``obj.__call__``."""
    try:
        params = inspect.signature(obj).parameters.values()
    except (TypeError, ValueError):
        return True
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return True
    return {"u_prev", "x_ref", "u_ref"} <= {p.name for p in params}


class _StateOnlyController:
    """A Controller whose ``__call__`` takes only the state: it sees ``x - x_ref``, as a FunctionController."""

    def __init__(self, ctrl):
        self._ctrl = ctrl
        self.n_u = getattr(ctrl, "n_u", None)
        self.problem = getattr(ctrl, "problem", None)

    def __call__(self, x, *, u_prev=None, x_ref=None, u_ref=None):
        return self._ctrl(_deviation(x, x_ref, u_ref, f"controller {type(self._ctrl).__name__}"))

    def reset(self):
        self._ctrl.reset()


class FunctionController:
    """Any function ``x (n_x,) ↦ u (n_u,)``; NaN outputs get status ``"invalid output"``.

    The function sees the deviation ``x - x_ref`` when a state reference is given;
    it does not see ``u_prev``, and an input reference is refused.
    """

    def __init__(self, fn: Callable[[np.ndarray], np.ndarray]):
        self.fn = fn

    def __call__(self, x, *, u_prev=None, x_ref=None, u_ref=None):
        u = np.atleast_1d(np.asarray(self.fn(_deviation(x, x_ref, u_ref, "a FunctionController")), dtype=float))
        return ControlAction(u, "ok" if np.all(np.isfinite(u)) else "invalid output")

    def reset(self):
        """Stateless."""


def as_controller(obj) -> Controller:
    """Wrap ``obj`` as a :class:`Controller`.

    An ``ImplicitNetwork`` becomes an :class:`ImplicitController`, an
    ``MPCProblem``/``CondensedQP`` an :class:`MPCController`, an explicit network
    an :class:`ExplicitController` (no warm start), another torch module with a
    ``control`` method a ``FunctionController`` of it, a Controller stays itself (one
    whose ``__call__`` takes only the state is given ``x - x_ref``, like a
    FunctionController), another callable becomes a :class:`FunctionController`.
    """
    if isinstance(obj, ImplicitNetwork):
        return ImplicitController(obj)
    if isinstance(obj, (MPCProblem, CondensedQP)):
        return MPCController(obj)
    if isinstance(obj, (MPCController, ImplicitController, ExplicitController, FunctionController)):
        return obj
    explicit = sys.modules.get("mpc2nn.explicit")
    if explicit is not None and isinstance(obj, explicit.ExplicitNetwork):
        return ExplicitController(obj)
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(obj, torch.nn.Module) and hasattr(obj, "control"):
        dtype = next(iter(obj.buffers())).dtype

        def explicit(x):
            with torch.no_grad():
                return obj.control(torch.as_tensor(np.asarray(x, float)[None, :], dtype=dtype))[0].double().numpy()

        return FunctionController(explicit)
    if isinstance(obj, Controller):
        return obj if _takes_step_keywords(obj) else _StateOnlyController(obj)
    if callable(obj):
        return FunctionController(obj)
    raise ProblemDefinitionError(
        f"controller: expected an ImplicitNetwork, MPCProblem, CondensedQP, explicit network, Controller or "
        f"callable x -> u, got {type(obj).__name__}")


@dataclass(frozen=True)
class Trajectory:
    """A closed-loop run of ``T`` steps.

    Attributes
    ----------
    states : (T+1, n_x) plant states (NaN after a stop)
    inputs : (T, n_u) applied inputs (NaN after a stop)
    status : (T,) controller status per step (``"not run"`` after a stop)
    step_time : (T,) seconds the controller took per step
    cost : closed-loop cost ``Σ_k (x̃_kᵀ Q x̃_k + ũ_kᵀ R ũ_k + Δu_kᵀ S Δu_k)`` over the steps run
        (``x̃ = x - x_ref,k``, ``ũ = u - u_ref,k``, ``Δu_k = u_k - u_{k-1}``, ``S`` the
        problem's ``du_weight`` or 0), or ``None`` without an MPCProblem to take Q, R from
    state_violation : (T+1,) largest violation of the state bounds and polytopic
        constraints per step, or ``None``
    input_violation : (T,) largest violation of the input bounds and input-rate
        bounds per step, or ``None``
    stopped_at : first step whose controller gave no usable input, or ``None``
    """

    states: np.ndarray
    inputs: np.ndarray
    status: np.ndarray
    step_time: np.ndarray
    cost: float | None
    state_violation: np.ndarray | None
    input_violation: np.ndarray | None
    stopped_at: int | None


def _plant_step(plant, dt):
    """``(step(x, u) -> x⁺, n_x or None, problem or None)`` for the accepted plant kinds."""
    if isinstance(plant, MPCProblem):
        return (lambda x, u: plant.A @ x + plant.B @ u), plant.n_x, plant
    if isinstance(plant, tuple) and len(plant) == 2:
        A = as_matrix("plant A", plant[0], ("n_x", "n_x"), (None, None))
        B = as_matrix("plant B", plant[1], ("n_x", "n_u"), (A.shape[0], None))
        return (lambda x, u: A @ x + B @ u), A.shape[0], None
    control = sys.modules.get("control")
    if control is not None and isinstance(plant, control.StateSpace):
        A, B = np.asarray(plant.A, float), np.asarray(plant.B, float)
        if control.isctime(plant, strict=True):
            if dt is None:
                raise ProblemDefinitionError("dt: the plant is continuous-time; pass the sampling time dt > 0 "
                                             "(it is simulated exactly between samples, input held constant)")
            A, B = _zoh(A, B, float(dt))
        return (lambda x, u: A @ x + B @ u), A.shape[0], None
    if callable(plant):
        return plant, None, None
    raise ProblemDefinitionError(
        f"plant: expected an MPCProblem, an (A, B) pair, a control.StateSpace or a callable (x, u) -> x⁺, "
        f"got {type(plant).__name__}")


def simulate(plant, controller, x0, steps: int, *, disturbance=None, reference=None, input_reference=None,
             u_prev=None, dt: float | None = None, problem: MPCProblem | None = None) -> Trajectory:
    """Run ``controller`` in closed loop with ``plant`` for ``steps`` steps.

    Parameters
    ----------
    plant : MPCProblem, (A, B), control.StateSpace or callable ``(x, u) -> x⁺``
        An MPCProblem's own model; a discrete StateSpace; a continuous one
        (needs ``dt``; simulated exactly with the input held between samples).
    controller : Controller or anything :func:`as_controller` accepts
    x0 : (n_x,) initial state
    steps : int, number of steps ``T``
    disturbance : (T, n_x) array or callable ``k -> w_k``, optional
        Added to the next state: ``x_{k+1} = f(x_k, u_k) + w_k``.
    reference : (n_x,) or (T+1, n_x), optional
        State reference ``x_ref,k``. A tracking problem (``tracking=True``) takes it
        as a network input; any other controller sees ``x_k - x_ref,k``
        (regulation in deviation coordinates).
    input_reference : (n_u,) or (T, n_u), optional
        Input reference ``u_ref,k``, for tracking problems (with ``reference``;
        :func:`mpc2nn.steady_state_target` computes both from an output reference).
    u_prev : (n_u,), optional
        The input applied before the run (default zero), seen by controllers whose
        problem has input-rate terms; afterwards each step's previous input.
    dt : float, for continuous-time StateSpace plants
    problem : MPCProblem, optional
        Where Q, R and the constraints for cost and violations come from
        (default: the plant if it is an MPCProblem, else the controller's problem).

    Returns
    -------
    Trajectory

    Examples
    --------
    >>> import mpc2nn
    >>> prob = mpc2nn.systems.drummond2024()
    >>> traj = mpc2nn.simulate(prob, mpc2nn.compile(prob), [-200.0, -200.0], 25)
    >>> traj.states.shape, traj.inputs.shape, round(float(traj.inputs[0, 0]), 6)
    ((26, 2), (25, 1), 10.0)
    """
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
        raise ProblemDefinitionError(f"steps: expected an integer >= 0, got {steps!r}")
    step, n_x, plant_problem = _plant_step(plant, dt)
    ctrl = as_controller(controller)
    x0 = np.asarray(x0, dtype=float)
    if x0.ndim != 1 or (n_x is not None and x0.shape[0] != n_x):
        raise ShapeError(f"x0: expected shape (n_x,) = ({n_x if n_x is not None else '?'},), got {x0.shape}")
    n_x = x0.shape[0]
    T = int(steps)
    refs = _per_step("reference", reference, T + 1, n_x, "n_x")
    n_u = getattr(ctrl, "n_u", None) or (plant_problem.n_u if plant_problem is not None else None)
    if n_u is None and (input_reference is not None or u_prev is not None):
        n_u = np.asarray(u_prev if u_prev is not None else input_reference, float).shape[-1]
    urefs = None if n_u is None else _per_step("input_reference", input_reference, T, n_u, "n_u")
    u_last = None
    if n_u is not None:
        u_last = np.zeros(n_u) if u_prev is None else as_matrix("u_prev", u_prev, ("n_u",), (n_u,))
    if disturbance is None:
        dist = lambda k: 0.0  # noqa: E731
    elif callable(disturbance):
        dist = disturbance
    else:
        d = np.asarray(disturbance, dtype=float)
        if d.shape != (T, n_x):
            raise ShapeError(f"disturbance: expected shape (T, n_x) = ({T}, {n_x}), got {d.shape}")
        dist = lambda k: d[k]  # noqa: E731
    problem = problem or plant_problem or getattr(ctrl, "problem", None)
    if problem is not None and not isinstance(problem, MPCProblem):
        problem = None

    ctrl.reset()
    states = np.full((T + 1, n_x), np.nan)
    states[0] = x0
    inputs, status, times = None, np.full(T, "not run", dtype=object), np.zeros(T)
    stopped = None
    for k in range(T):
        t0 = time.perf_counter()
        act = ctrl(states[k], u_prev=u_last, x_ref=None if refs is None else refs[k],
                   u_ref=None if urefs is None else urefs[k])
        times[k] = time.perf_counter() - t0
        u = np.atleast_1d(np.asarray(act.u, dtype=float))
        if inputs is None:
            inputs = np.full((T, u.shape[0]), np.nan)
        status[k] = act.status
        if not np.all(np.isfinite(u)):
            stopped = k
            break
        inputs[k] = u
        u_last = u
        states[k + 1] = np.asarray(step(states[k], u), dtype=float).reshape(n_x) + dist(k)
    if inputs is None:
        inputs = np.zeros((0, 0)) if T == 0 else np.full((T, 1), np.nan)
    u_before = np.zeros(inputs.shape[1]) if u_prev is None else np.asarray(u_prev, float)
    return Trajectory(states, inputs, status.astype(str), times,
                      *_cost_and_violations(problem, states, inputs, refs, urefs, u_before), stopped)


def _per_step(name: str, value, steps: int, n: int, sym: str) -> np.ndarray | None:
    """A reference as ``(steps, n)`` from ``(n,)`` or ``(steps, n)``; ``None`` stays ``None``."""
    if value is None:
        return None
    r = np.asarray(value, dtype=float)
    if r.shape == (n,):
        return np.broadcast_to(r, (steps, n)).copy()
    if r.shape == (steps, n):
        return r
    raise ShapeError(f"{name}: expected shape ({sym},) = ({n},) or ({steps}, {sym}) = ({steps}, {n}), got {r.shape}")


def _cost_and_violations(problem, states, inputs, refs, urefs, u_before):
    if problem is None:
        return None, None, None
    ran = np.isfinite(inputs).all(axis=1)
    dx = states[:-1][ran] - (0.0 if refs is None else refs[:-1][ran])
    du = inputs[ran] - (0.0 if urefs is None else urefs[ran])
    cost = float(np.einsum("ki,ij,kj->", dx, problem.Q, dx) + np.einsum("ki,ij,kj->", du, problem.R, du))
    rate = np.diff(np.vstack([u_before[None, :], inputs]), axis=0) if inputs.size else inputs
    if problem.du_weight is not None and ran.any():
        cost += float(np.einsum("ki,ij,kj->", rate[ran], problem.du_weight, rate[ran]))
    with np.errstate(invalid="ignore"):
        xv = np.maximum.reduce([np.zeros(states.shape[0]),
                                (states - problem.x_max).max(axis=1), (problem.x_min - states).max(axis=1)])
        for con in problem.constraints:
            if con.C_u.any():
                continue  # mixed constraints need the input; reported only for pure-state rows
            xv = np.maximum(xv, (states @ con.C_x.T - con.d).max(axis=1))
        uv = np.maximum.reduce([np.zeros(inputs.shape[0]),
                                (inputs - problem.u_max).max(axis=1), (problem.u_min - inputs).max(axis=1),
                                (rate - problem.du_max).max(axis=1), (problem.du_min - rate).max(axis=1)])
    return cost, xv, uv
