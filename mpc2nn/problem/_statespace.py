"""An :class:`~mpc2nn.MPCProblem` from a python-control ``StateSpace`` (``MPCProblem.from_statespace``)."""

from __future__ import annotations

import re

import numpy as np

from .._checks import as_matrix, as_positive, require
from ..exceptions import ProblemDefinitionError
from ._discretize import zoh

__all__ = ["problem_from_statespace"]


def problem_from_statespace(cls, sys, Q, R, horizon: int, dt, kwargs: dict):
    """The body of :meth:`MPCProblem.from_statespace` (its docstring says what it does)."""
    control = require("control", "control")
    if not isinstance(sys, control.StateSpace):
        raise ProblemDefinitionError(
            f"sys: expected a control.StateSpace, got {type(sys).__name__}; "
            "convert transfer functions with control.ss(sys)")
    if control.isctime(sys, strict=True):
        if dt is None:
            raise ProblemDefinitionError(
                "dt: sys is continuous-time (sys.dt == 0); pass the sampling time dt > 0 "
                "to discretise it by zero-order hold")
        A, B = zoh(as_matrix("sys.A", sys.A, ("n_x", "n_x"), (None, None)),
                   as_matrix("sys.B", sys.B, ("n_x", "n_u"), (None, None)),
                   as_positive("dt", dt, "a sampling time, a finite number > 0"))
    else:
        if dt is not None and (isinstance(dt, (bool, np.bool_, str)) or not np.isscalar(dt)):
            raise ProblemDefinitionError(f"dt: expected a sampling time, a number > 0, got {dt!r}")
        if dt is not None and sys.dt not in (None, True) and not np.isclose(dt, sys.dt):
            raise ProblemDefinitionError(
                f"dt: sys is discrete-time with dt = {sys.dt}, got dt = {dt!r}; leave dt out to use sys.dt")
        A, B = np.asarray(sys.A, float), np.asarray(sys.B, float)
        if dt is None and sys.dt not in (None, True):
            dt = float(sys.dt)
    kwargs.setdefault("dt", dt)
    C, D = np.asarray(sys.C, float), np.asarray(sys.D, float)
    full_state = C.shape == (A.shape[0], A.shape[0]) and np.array_equal(C, np.eye(A.shape[0])) and not D.any()
    if "C" not in kwargs and C.size and not full_state:  # y = x adds nothing to the states
        kwargs["C"] = C
        kwargs.setdefault("D", D)
    for kind, labels in (("state", "state_labels"), ("input", "input_labels"), ("output", "output_labels")):
        names = [str(n) for n in getattr(sys, labels, [])]
        if kind == "output" and "output_names" not in kwargs and kwargs.get("C") is not C:
            continue  # outputs given by the caller: the system's output names need not fit them
        if names and not all(re.fullmatch(r"[xuy]\[\d+\]", n) for n in names):
            kwargs.setdefault(f"{kind}_names", names)
    return cls(A, B, Q, R, horizon, **kwargs)
