"""Closed-loop simulation of a plant with any controller."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass

import numpy as np

from .._checks import as_count, as_matrix, as_positive, real_array
from ..exceptions import ProblemDefinitionError, ShapeError
from ..problem import MPCProblem, zoh
from ..status import Status
from ._controllers import as_controller

__all__ = ["Trajectory", "simulate"]


@dataclass(frozen=True)
class Trajectory:
    """A closed-loop run of ``T`` steps.

    Attributes
    ----------
    states : ndarray, shape (T+1, n_x)
        Plant states, ``x_0`` first (NaN after a stop).
    inputs : ndarray, shape (T, n_u)
        Applied inputs (NaN after a stop).
    status : ndarray of str, shape (T,)
        Controller status per step (``"not run"`` after a stop).
    step_time : ndarray, shape (T,)
        Seconds the controller took per step (:meth:`step_time_percentiles` summarises them).
    cost : float or None
        Closed-loop cost ``Σ_k (x̃_kᵀ Q x̃_k + ũ_kᵀ R ũ_k + Δu_kᵀ S Δu_k + ỹ_kᵀ Q_y ỹ_k)`` over the
        steps run (``x̃ = x - x_ref,k``, ``ũ = u - u_ref,k``, ``ỹ = y - y_ref,k``, ``Δu_k = u_k - u_{k-1}``,
        ``S`` the problem's ``du_weight``, ``Q_y`` its ``output_weight``, each 0 where not given);
        ``None`` where the loop stopped at its first step (no input was applied: there is no cost to
        report), or without an MPCProblem to take Q, R from.
    state_violation : ndarray, shape (T+1,), or None
        Largest violation of the state bounds and pure-state stage constraints per step.
    input_violation : ndarray, shape (T,), or None
        Largest violation of the input bounds and input-rate bounds per step.
    stopped_at : int or None
        First step whose controller gave no usable input.
    outputs : ndarray, shape (T, n_y), or None
        Outputs ``y_k = C x_k + D u_k`` of the steps run (NaN after a stop); ``None`` without a
        problem with outputs.
    output_violation : ndarray, shape (T,), or None
        Largest violation of the output bounds per step.
    dt : float or None
        Seconds per step (the ``dt`` given, else the problem's); ``None``: plots then count steps.
    """

    states: np.ndarray
    inputs: np.ndarray
    status: np.ndarray
    step_time: np.ndarray
    cost: float | None
    state_violation: np.ndarray | None
    input_violation: np.ndarray | None
    stopped_at: int | None
    outputs: np.ndarray | None = None
    output_violation: np.ndarray | None = None
    dt: float | None = None

    @property
    def steps_run(self) -> int:
        """Number of steps whose input was applied (``T`` unless the loop stopped)."""
        return self.inputs.shape[0] if self.stopped_at is None else self.stopped_at

    @property
    def time(self) -> np.ndarray:
        """``(T+1,)`` time of each state: seconds when ``dt`` is known, else the step index."""
        k = np.arange(self.states.shape[0], dtype=float)
        return k if self.dt is None else k * self.dt

    def __repr__(self) -> str:
        stop = "all steps ran" if self.stopped_at is None else f"stopped at step {self.stopped_at}"
        cost = "n/a" if self.cost is None else f"{self.cost:.6g}"
        clock = "" if self.dt is None else f", dt={self.dt:g} s"
        return (f"Trajectory({self.inputs.shape[0]} steps{clock}, n_x={self.states.shape[1]}, "
                f"n_u={self.inputs.shape[1]}; {stop}; cost {cost})")

    def step_time_percentiles(self, q=(50, 90, 99, 100)) -> dict[float, float]:
        """``{percentile: seconds}`` of the controller's time per step over the steps run (NaN if none ran).

        Parameters
        ----------
        q : sequence of float
            The percentiles (0 to 100).

        Returns
        -------
        dict
            ``{q_i: seconds}``.

        Examples
        --------
        >>> import mpc2nn
        >>> prob = mpc2nn.systems.double_integrator()
        >>> traj = mpc2nn.simulate(prob, mpc2nn.compile(prob), [1.0, 0.0], 5)
        >>> sorted(traj.step_time_percentiles())
        [50, 90, 99, 100]
        """
        ran = self.step_time[self.status != Status.NOT_RUN]
        return {p: float(np.percentile(ran, p)) if ran.size else float("nan") for p in q}


def _plant_step(plant, dt):
    """``(step(x, u) -> x⁺, n_x or None, n_u or None, problem or None)`` for the accepted plant kinds."""
    if isinstance(plant, MPCProblem):
        return (lambda x, u: plant.A @ x + plant.B @ u), plant.n_x, plant.n_u, plant
    if isinstance(plant, tuple) and len(plant) == 2:
        A = as_matrix("plant A", plant[0], ("n_x", "n_x"), (None, None))
        if A.shape[0] != A.shape[1]:
            raise ShapeError(f"plant A: expected shape (n_x, n_x), a square matrix, got {A.shape}")
        B = as_matrix("plant B", plant[1], ("n_x", "n_u"), (A.shape[0], None))
        return (lambda x, u: A @ x + B @ u), A.shape[0], B.shape[1], None
    control = sys.modules.get("control")
    if control is not None and isinstance(plant, control.StateSpace):
        A = as_matrix("plant A", plant.A, ("n_x", "n_x"), (None, None))
        B = as_matrix("plant B", plant.B, ("n_x", "n_u"), (A.shape[0], None))
        if control.isctime(plant, strict=True):
            if dt is None:
                raise ProblemDefinitionError("dt: the plant is continuous-time; pass the sampling time dt > 0 "
                                             "(it is simulated exactly between samples, input held constant)")
            A, B = zoh(A, B, _sampling_time(dt))
        return (lambda x, u: A @ x + B @ u), A.shape[0], B.shape[1], None
    if callable(plant):
        return plant, None, None, None
    raise ProblemDefinitionError(
        f"plant: expected an MPCProblem, an (A, B) pair, a control.StateSpace or a callable (x, u) -> x⁺, "
        f"got {type(plant).__name__}")


def _sampling_time(dt) -> float:
    return as_positive("dt", dt, "a sampling time, a finite number > 0")


def _controller_sizes(ctrl) -> tuple[int | None, int | None]:
    """``(n_x, n_u)`` a controller expects and returns, where it says (a QP-based one does)."""
    qp = getattr(ctrl, "qp", None)
    if qp is not None and hasattr(qp, "n_x"):
        return int(qp.n_x), int(qp.n_u)
    prob = getattr(ctrl, "problem", None)
    if prob is not None and hasattr(prob, "n_x"):
        return int(prob.n_x), int(prob.n_u)
    n_u = getattr(ctrl, "n_u", None)
    return None, None if n_u is None else int(n_u)


def simulate(plant, controller, x0, steps: int, *, disturbance=None, reference=None, input_reference=None,
             u_prev=None, dt: float | None = None, problem: MPCProblem | None = None,
             output_reference=None) -> Trajectory:
    """Run ``controller`` in closed loop with ``plant`` for ``steps`` steps.

    Parameters
    ----------
    plant : MPCProblem, (A, B), control.StateSpace or callable ``(x, u) -> x⁺``
        An MPCProblem's own model; a discrete StateSpace; a continuous one
        (needs ``dt``; simulated exactly with the input held between samples).
    controller : Controller or anything :func:`as_controller` accepts
        The feedback law; it is reset before the run.
    x0 : array_like, shape (n_x,)
        Initial state.
    steps : int
        Number of steps ``T >= 0``.
    disturbance : (T, n_x) array or callable ``k -> w_k``, optional
        Added to the next state: ``x_{k+1} = f(x_k, u_k) + w_k``.
    reference : (n_x,) or (T+1, n_x), optional
        State reference ``x_ref,k``. A tracking problem (``tracking=True``) takes it
        as a network input; any other controller sees ``x_k - x_ref,k``
        (regulation in deviation coordinates).
    input_reference : (n_u,) or (T, n_u), optional
        Input reference ``u_ref,k``, for tracking problems (with ``reference``;
        :func:`mpc2nn.steady_state_target` computes both from an output reference).
    output_reference : (n_y,) or (T, n_y), optional
        Output reference ``y_ref,k`` for tracking problems with an output weight
        (``θ`` holds ``y_ref``); passed to the controller as ``y_ref=`` (only when given).
    u_prev : (n_u,), optional
        The input applied before the run (default zero), seen by controllers whose
        problem has input-rate terms; afterwards each step's previous input.
    dt : float, optional
        Sampling time in seconds: needed for continuous-time StateSpace plants, and the
        time step of the trajectory (default the problem's ``dt``).
    problem : MPCProblem, optional
        Where Q, R, the output weight and the constraints for cost and violations come from
        (default: the plant if it is an MPCProblem, else the controller's problem).

    Returns
    -------
    Trajectory
        The run stops at the first step whose input is not finite (``stopped_at``).

    Examples
    --------
    >>> import mpc2nn
    >>> prob = mpc2nn.systems.drummond2024()
    >>> traj = mpc2nn.simulate(prob, mpc2nn.compile(prob), [-200.0, -200.0], 25)
    >>> traj.states.shape, traj.inputs.shape, round(float(traj.inputs[0, 0]), 6)
    ((26, 2), (25, 1), 10.0)
    """
    as_count("steps", steps, 0)
    if dt is not None:
        dt = _sampling_time(dt)
    step, n_x, plant_n_u, plant_problem = _plant_step(plant, dt)
    ctrl = as_controller(controller)
    ctrl_n_x, ctrl_n_u = _controller_sizes(ctrl)
    for what, plant_n, ctrl_n in (("states n_x", n_x, ctrl_n_x), ("inputs n_u", plant_n_u, ctrl_n_u)):
        if plant_n is not None and ctrl_n is not None and plant_n != ctrl_n:
            raise ShapeError(f"controller: the plant has {what} = {plant_n}, the controller's problem "
                             f"{ctrl_n}; simulate a controller built for this plant")
    n_x = n_x if n_x is not None else ctrl_n_x
    x0 = as_matrix("x0", x0, ("n_x",), (n_x,))
    n_x = x0.shape[0]
    T = int(steps)
    refs = _per_step("reference", reference, T + 1, n_x, "n_x")
    n_u = ctrl_n_u or plant_n_u or (plant_problem.n_u if plant_problem is not None else None)
    if n_u is None and (input_reference is not None or u_prev is not None):
        n_u = np.shape(u_prev if u_prev is not None else input_reference)[-1]
    urefs = None if n_u is None else _per_step("input_reference", input_reference, T, n_u, "n_u")
    u_last = None
    if n_u is not None:
        u_last = np.zeros(n_u) if u_prev is None else as_matrix("u_prev", u_prev, ("n_u",), (n_u,))
    if disturbance is None:
        dist = lambda k: np.zeros(n_x)  # noqa: E731
    elif callable(disturbance):
        def dist(k):
            w = real_array(f"disturbance({k})", disturbance(k), "a disturbance (n_x,)")
            return np.full(n_x, float(w)) if w.ndim == 0 else as_matrix(f"disturbance({k})", w, ("n_x",), (n_x,),
                                                                         allow_inf=True)
    else:
        d = as_matrix("disturbance", disturbance, ("T", "n_x"), (T, n_x), allow_inf=True)
        dist = lambda k: d[k]  # noqa: E731
    problem = problem or plant_problem or getattr(ctrl, "problem", None)
    if problem is not None and not isinstance(problem, MPCProblem):
        problem = None
    yrefs = None
    if output_reference is not None:
        n_y = np.asarray(output_reference, float).shape[-1] if problem is None else problem.n_y
        yrefs = _per_step("output_reference", output_reference, T, n_y, "n_y")

    ctrl.reset()
    states = np.full((T + 1, n_x), np.nan)
    states[0] = x0
    inputs, status, times = None, np.full(T, Status.NOT_RUN, dtype=object), np.zeros(T)
    stopped = None
    for k in range(T):
        t0 = time.perf_counter()
        more = {} if yrefs is None else {"y_ref": yrefs[k]}  # only when given: Controllers need not take it
        act = ctrl(states[k], u_prev=u_last, x_ref=None if refs is None else refs[k],
                   u_ref=None if urefs is None else urefs[k], **more)
        times[k] = time.perf_counter() - t0
        u = np.atleast_1d(real_array("controller output", act.u, "an input (n_u,)"))
        want_u = plant_n_u if plant_n_u is not None else (inputs.shape[1] if inputs is not None else u.shape[0])
        if u.shape != (want_u,):
            raise ShapeError(f"controller output at step {k}: expected shape (n_u,) = ({want_u},), got {u.shape}")
        if inputs is None:
            inputs = np.full((T, u.shape[0]), np.nan)
        status[k] = act.status
        if not np.all(np.isfinite(u)):
            stopped = k
            break
        inputs[k] = u
        u_last = u
        nxt = real_array("plant(x, u)", step(states[k], u), "the next state (n_x,)")
        if nxt.size != n_x:
            raise ShapeError(f"plant(x, u) at step {k}: expected the next state, shape (n_x,) = ({n_x},), "
                             f"got {nxt.shape}")
        states[k + 1] = nxt.reshape(n_x) + dist(k)
    if inputs is None:
        inputs = np.full((T, n_u if n_u is not None else 1), np.nan)
    u_before = np.zeros(inputs.shape[1]) if u_prev is None else np.asarray(u_prev, float)
    outputs = y_viol = None
    if problem is not None and problem.C is not None and inputs.shape[1] == problem.n_u:
        outputs = states[:-1] @ problem.C.T + inputs @ problem.D.T
        with np.errstate(invalid="ignore"):
            y_viol = np.maximum.reduce([np.zeros(T), (outputs - problem.y_max).max(axis=1, initial=-np.inf),
                                        (problem.y_min - outputs).max(axis=1, initial=-np.inf)])
    cost, x_viol, u_viol = _cost_and_violations(problem, states, inputs, refs, urefs, u_before)
    if cost is not None and outputs is not None and problem is not None and problem.output_weight is not None:
        ran = np.isfinite(inputs).all(axis=1)
        dy = outputs[ran] - (0.0 if yrefs is None else yrefs[ran])
        cost += float(np.einsum("ki,ij,kj->", dy, problem.output_weight, dy))
    if dt is None and problem is not None:
        dt = problem.dt
    return Trajectory(states, inputs, status.astype(str), times, cost, x_viol, u_viol, stopped, outputs, y_viol,
                      None if dt is None else float(dt))


def _per_step(name: str, value, steps: int, n: int, sym: str) -> np.ndarray | None:
    """A reference as ``(steps, n)`` from ``(n,)`` or ``(steps, n)``; ``None`` stays ``None``."""
    if value is None:
        return None
    r = real_array(name, value, f"a reference ({sym},) or ({steps}, {sym})")
    if r.shape == (n,):
        return np.broadcast_to(r, (steps, n)).copy()
    if r.shape == (steps, n):
        return r
    raise ShapeError(f"{name}: expected shape ({sym},) = ({n},) or ({steps}, {sym}) = ({steps}, {n}), got {r.shape}")


def _cost_and_violations(problem, states, inputs, refs, urefs, u_before
                         ) -> tuple[float | None, np.ndarray | None, np.ndarray | None]:
    if problem is None:
        return None, None, None
    ran = np.isfinite(inputs).all(axis=1)
    dx = states[:-1][ran] - (0.0 if refs is None else refs[:-1][ran])
    du = inputs[ran] - (0.0 if urefs is None else urefs[ran])
    if inputs.shape[1] != problem.n_u:
        return None, None, None  # the inputs are not this problem's (nothing ran, or another plant)
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
            xv = np.maximum(xv, (states @ con.C_x.T - con.d).max(axis=1, initial=-np.inf))
        uv = np.maximum.reduce([np.zeros(inputs.shape[0]),
                                (inputs - problem.u_max).max(axis=1, initial=-np.inf),
                                (problem.u_min - inputs).max(axis=1, initial=-np.inf),
                                (rate - problem.du_max).max(axis=1, initial=-np.inf),
                                (problem.du_min - rate).max(axis=1, initial=-np.inf)])
    # no step ran (the controller gave no input at x_0, e.g. an infeasible start): no cost, not 0
    return (None if ran.size and not ran.any() else cost), xv, uv
