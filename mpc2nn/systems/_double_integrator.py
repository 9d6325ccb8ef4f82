"""The textbook double integrator."""

from __future__ import annotations

import numpy as np

from ..problem import MPCProblem

__all__ = ["double_integrator"]


def double_integrator() -> MPCProblem:
    """Textbook double integrator, ``N = 20``, ``|u| <= 1``, ``|x_1| <= 5``, ``|x_2| <= 2``; P from the DARE.

    Position (m) and velocity (m/s) driven by an acceleration (m/s²), sampled at ``dt = 1`` s
    (``A``, ``B`` are its exact zero-order-hold discretisation).

    The state constraints make many states of the sampling box infeasible and the dual degenerate.
    """
    return MPCProblem([[1.0, 1.0], [0.0, 1.0]], [[0.5], [1.0]], Q=np.eye(2), R=[[0.1]], horizon=20, P="dare",
                      u_min=[-1.0], u_max=[1.0], x_min=[-5.0, -2.0], x_max=[5.0, 2.0],
                      name="double_integrator", sample_box=([-5.0, -2.0], [5.0, 2.0]), dt=1.0,
                      state_names=("position", "velocity"), state_units=("m", "m/s"),
                      input_names=("acceleration",), input_units=("m/s²",))
