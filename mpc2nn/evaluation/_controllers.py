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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from .._checks import loaded_torch, real_array, torch_function
from ..exceptions import ProblemDefinitionError
from ..implicit import ImplicitNetwork
from ..interfaces import ExplicitLaw
from ..problem import MPCProblem
from ..qp import CondensedQP
from ..reference import OSQPSession
from ..status import Status

__all__ = ["ControlAction", "Controller", "MPCController", "ImplicitController", "ExplicitController",
           "FunctionController", "as_controller"]


@dataclass(frozen=True)
class ControlAction:
    """What a controller returns for one state.

    Attributes
    ----------
    u : ndarray, shape (n_u,)
        The input to apply (NaN where the controller has none).
    status : str
        A :class:`~mpc2nn.status.Status` value: the solver's outcome, ``"evaluated"`` for a
        control law without an optimality claim, ``"invalid output"`` for non-finite inputs.
    """

    u: np.ndarray
    status: str = str(Status.EVALUATED)


@runtime_checkable
class Controller(Protocol):
    """A feedback law ``x ↦ u`` used by :func:`simulate`.

    Called as ``ctrl(x, u_prev=..., x_ref=..., u_ref=...)``: state ``(n_x,)``, the input
    applied at the previous step ``(n_u,)`` and the step's references (``None`` where
    there are none); :func:`simulate` adds ``y_ref=`` (the output reference) only when
    one is given, so a Controller needs that keyword only to track outputs.
    """

    def __call__(self, x: np.ndarray, *, u_prev=None, x_ref=None, u_ref=None) -> ControlAction: ...

    def reset(self) -> None: ...


def _deviation(x, x_ref, u_ref, who: str, fix: str = "") -> np.ndarray:
    """``x - x_ref`` for a controller that sees only the state; an input reference is refused."""
    if u_ref is not None and np.any(np.asarray(u_ref) != 0):
        raise ProblemDefinitionError(f"input reference: {who} sees only the state (minus the state reference); "
                                     f"it cannot take an input reference{fix}")
    x = real_array("x", x, "a state (n_x,)")
    return x if x_ref is None else x - x_ref


def _no_output_reference(y_ref, who: str) -> None:
    if y_ref is not None:
        raise ProblemDefinitionError(f"output reference: {who} sees only the state; it cannot take an output "
                                     "reference (leave output_reference out)")


def _parameters(qp: CondensedQP, x, u_prev, x_ref, u_ref, y_ref=None) -> np.ndarray:
    """``θ`` (1, n_θ) of one step for a QP-based controller (see the module docstring)."""
    layout = dict(qp.parameter_sizes)
    if "y_ref" not in layout:
        if y_ref is not None:
            raise ProblemDefinitionError(
                f"output reference: QP '{qp.name}' takes no y_ref (it needs tracking=True and an output_weight); "
                "leave output_reference out")
    elif y_ref is None:
        raise ProblemDefinitionError(
            f"output reference: QP '{qp.name}' tracks an output reference; pass output_reference= to simulate")
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
    return qp.parameters(x, u_prev=u_prev, x_ref=x_ref, u_ref=u_ref, y_ref=y_ref)


#: The parts of θ in their order (ParameterLayout.build): the keywords of a controller's call.
_PARTS = ("x", "u_prev", "x_ref", "u_ref", "y_ref")


class _StepTheta:
    """``θ`` (n_θ,) of one step for a QP-based controller, built without the general checks where it can be.

    (A batch of steps given to a controller keeps its (B, n_θ) shape, for the solver to refuse or take.)

    The parts the QP takes are put side by side where each is given as a real ``(n,)`` vector and no
    reference the QP does not take is given; anything else goes to :func:`_parameters` (its deviation
    coordinates, refusals and messages). Complex parts are refused either way.
    """

    def __init__(self, qp: CondensedQP):
        sizes = dict(qp.parameter_sizes)
        self.qp = qp
        self._parts = tuple((i, sizes[k]) for i, k in enumerate(_PARTS) if k in sizes)
        # references the QP does not take (given one, _parameters decides: deviation coordinates or a refusal)
        self._untaken = tuple(i for i, k in enumerate(_PARTS) if k not in sizes and k != "u_prev")

    def __call__(self, x, u_prev=None, x_ref=None, u_ref=None, y_ref=None) -> np.ndarray:
        if len(self._parts) == 1 and x_ref is None and u_ref is None and y_ref is None:  # θ is the state
            theta = real_array("x", x, f"a state ({self._parts[0][1]},)")
            if theta.shape == (self._parts[0][1],):
                return theta
        given = (x, u_prev, x_ref, u_ref, y_ref)
        if all(given[i] is None for i in self._untaken) and all(given[i] is not None for i, _ in self._parts):
            parts = [real_array(_PARTS[i], given[i], f"a vector ({n},)") for i, n in self._parts]
            if all(p.shape == (n,) for p, (_, n) in zip(parts, self._parts, strict=True)):
                return parts[0] if len(parts) == 1 else np.concatenate(parts)
        theta = _parameters(self.qp, *given)
        return theta[0] if theta.shape[0] == 1 else theta


class MPCController:
    """MPC by OSQP (warm-started across calls, tolerances of :data:`mpc2nn.OSQP_SETTINGS`).

    Parameters
    ----------
    problem : MPCProblem or CondensedQP
        The problem solved at every step.
    """

    def __init__(self, problem: MPCProblem | CondensedQP):
        self._session = OSQPSession(problem)
        self.problem = problem
        self.qp = self._session.qp
        self.n_u = self._session.qp.n_u
        self._theta = _StepTheta(self.qp)

    def __call__(self, x, *, u_prev=None, x_ref=None, u_ref=None, y_ref=None):
        ref = self._session.solve(np.atleast_2d(self._theta(x, u_prev, x_ref, u_ref, y_ref)))
        return ControlAction(ref.u0[0], str(ref.status[0]))

    def reset(self):
        """Nothing to forget beyond OSQP's warm start, which adapts by itself."""


_SOLVED = str(Status.SOLVED)


class ImplicitController:
    """The exact implicit network as a controller.

    Parameters
    ----------
    net : ImplicitNetwork
        The network solved exactly at every step.
    warm_start : bool
        Start each solve's active set from the previous step's fixed point.
    """

    def __init__(self, net: ImplicitNetwork, *, warm_start: bool = True):
        self.net, self.warm_start = net, warm_start
        self.problem = net.qp.problem if net.qp.problem is not None else net.qp
        self.qp = net.qp
        self.n_u = net.n_u
        self._theta = _StepTheta(net.qp)
        self._y: np.ndarray | None = None
        # the compiled single-state path (numba): certified states only, anything else goes to net.solve
        self._step = net.stepper() if warm_start else None

    def __call__(self, x, *, u_prev=None, x_ref=None, u_ref=None, y_ref=None):
        theta = self._theta(x, u_prev, x_ref, u_ref, y_ref)
        if self._step is not None and theta.shape == (self.qp.n_theta,):
            u = self._step(np.ascontiguousarray(theta, dtype=float).reshape(1, -1))
            if u is not None:
                return ControlAction(u, _SOLVED)
        # the previous fixed point's active set is verified first (one reduced solve) before any search
        sol = self.net.solve(theta, y0=self._y if self.warm_start else None)
        if sol.feasible[0]:
            self._y = sol.y[0]
        if self._step is not None:
            self._step.remember(self._y)
        return ControlAction(sol.u0[0], str(sol.status[0]))

    def reset(self):
        """Forget the previous fixed point."""
        self._y = None
        if self._step is not None:
            self._step.remember(None)


#: The parts of θ in their order (:meth:`mpc2nn.qp.ParameterLayout.build`).


class ExplicitController:
    """An explicit network from :func:`mpc2nn.unravel` or :func:`mpc2nn.exact_network`.

    A float64 network runs one state by its lean path (a compiled kernel, or numpy without numba; see
    :meth:`mpc2nn.explicit.ExplicitNetwork.fast_layers`); with ``record_residuals`` the torch layers run,
    recording every layer's residual.

    Parameters
    ----------
    explicit : ExplicitLaw
        The network (anything with ``net``, ``n_u`` and ``run``, e.g. a
        :class:`~mpc2nn.explicit.ExplicitNetwork`; ``history`` too for ``record_residuals``).
    warm_start : bool
        Carry the layer state from one call to the next (the paper's closed loop: the network
        starts where it stopped at the previous step).
    record_residuals : bool
        Every call appends the per-layer residual ``(depth,)`` to :attr:`residuals`.
    """

    def __init__(self, explicit, *, warm_start: bool = False, record_residuals: bool = False):
        self.explicit, self.warm_start, self.record_residuals = explicit, warm_start, record_residuals
        if record_residuals and not callable(getattr(explicit, "history", None)):
            raise ProblemDefinitionError(
                f"record_residuals: {type(explicit).__name__} has no layer residuals to record (it is not an "
                "unrolled iteration); pass record_residuals=False")
        qp = self.qp = explicit.net.qp
        self.problem = qp.problem if qp.problem is not None else qp
        self.n_u = explicit.n_u
        self._theta = _StepTheta(qp)
        self.residuals: list[np.ndarray] = []
        self._state = None
        # the lean path of one state (ExplicitNetwork.fast_layers: numpy arrays in, numpy layer state out)
        lean = getattr(explicit, "fast_layers", None)
        self._lean = lean if callable(lean) and not record_residuals else None

    def __call__(self, x, *, u_prev=None, x_ref=None, u_ref=None, y_ref=None):
        theta = self._theta(x, u_prev, x_ref, u_ref, y_ref)
        state0 = self._state if self.warm_start else None
        fast = self._lean() if self._lean is not None and theta.shape == (self.explicit.n_theta,) else None
        lean = None if fast is None else fast.run(theta[None, :], self.explicit.depth, state0)
        if lean is not None:
            U, state = lean
        elif self.record_residuals:
            hist = self.explicit.history(theta, state0=state0)
            U, state = hist.U, hist.state
            self.residuals.append(hist.residual[:, 0])
        else:
            U, state = self.explicit.run(theta, state0=state0)
        if self.warm_start:
            self._state = state
        return ControlAction(U[0, :self.n_u], str(Status.EVALUATED))

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

    def __call__(self, x, *, u_prev=None, x_ref=None, u_ref=None, y_ref=None):
        _no_output_reference(y_ref, f"controller {type(self._ctrl).__name__}")
        return self._ctrl(_deviation(x, x_ref, u_ref, f"controller {type(self._ctrl).__name__}"))

    def reset(self):
        self._ctrl.reset()


class FunctionController:
    """Any function ``x (n_x,) ↦ u (n_u,)``; NaN outputs get status ``"invalid output"``, others ``"evaluated"``.

    The function sees the deviation ``x - x_ref`` when a state reference is given;
    it does not see ``u_prev``, and an input reference is refused.

    Parameters
    ----------
    fn : callable
        ``x (n_x,) -> u (n_u,)`` (a number for one input).
    """

    def __init__(self, fn: Callable[[np.ndarray], np.ndarray]):
        self.fn = fn

    def __call__(self, x, *, u_prev=None, x_ref=None, u_ref=None, y_ref=None):
        _no_output_reference(y_ref, "a FunctionController")
        u = np.atleast_1d(real_array("controller output", self.fn(_deviation(x, x_ref, u_ref, "a FunctionController")),
                                     "an input (n_u,)"))
        return ControlAction(u, str(Status.EVALUATED if np.all(np.isfinite(u)) else Status.INVALID_OUTPUT))

    def reset(self):
        """Stateless."""


def as_controller(obj) -> Controller:
    """Wrap ``obj`` as a :class:`Controller`.

    An ``ImplicitNetwork`` becomes an :class:`ImplicitController`, an
    ``MPCProblem``/``CondensedQP`` an :class:`MPCController`, an explicit network
    an :class:`ExplicitController` (no warm start), another torch module (``x (1, n_x) -> u (1, n_u)``,
    e.g. an MLP trained elsewhere) a ``FunctionController`` of it, a Controller stays itself (one
    whose ``__call__`` takes only the state is given ``x - x_ref``, like a
    FunctionController), another callable becomes a :class:`FunctionController`.

    Parameters
    ----------
    obj : ImplicitNetwork, MPCProblem, CondensedQP, explicit network, torch module, Controller or callable
        What to wrap.

    Returns
    -------
    Controller

    Raises
    ------
    ProblemDefinitionError
        ``obj`` is none of these.
    """
    if isinstance(obj, ImplicitNetwork):
        return ImplicitController(obj)
    if isinstance(obj, (MPCProblem, CondensedQP)):
        return MPCController(obj)
    if isinstance(obj, (MPCController, ImplicitController, ExplicitController, FunctionController)):
        return obj
    if isinstance(obj, ExplicitLaw):
        return ExplicitController(obj)
    torch = loaded_torch()
    if torch is not None and isinstance(obj, torch.nn.Module):
        return FunctionController(torch_function(obj))
    if isinstance(obj, Controller):
        return obj if _takes_step_keywords(obj) else _StateOnlyController(obj)
    if callable(obj):
        return FunctionController(obj)
    raise ProblemDefinitionError(
        f"controller: expected an ImplicitNetwork, MPCProblem, CondensedQP, explicit network, Controller or "
        f"callable x -> u, got {type(obj).__name__}")
