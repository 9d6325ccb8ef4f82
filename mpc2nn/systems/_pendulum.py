"""The linearised inverted pendulum on a cart."""

from __future__ import annotations

import numpy as np

from ..problem import MPCProblem, zoh

__all__ = ["inverted_pendulum"]


def inverted_pendulum() -> MPCProblem:
    """Linearised inverted pendulum on a cart (LinearMPC.jl example library), ZOH at ``Ts = 0.01`` s.

    ``N = 20``, ``|u| <= 2``, cart position ``|x_1| <= 1``; ``Q = diag(1.44, 0, 1, 0)``,
    ``R = 0.01``, P from the DARE. Open-loop unstable. States: cart position (m) and
    velocity (m/s), pole angle (rad) and angular velocity (rad/s); the input's unit is
    not stated by the source.
    """
    Ac = np.array([[0.0, 1, 0, 0], [0, -10, 9.81, 0], [0, 0, 0, 1], [0, -20, 39.24, 0]])
    Bc = np.array([[0.0], [100], [0], [200]])
    A, B = zoh(Ac, Bc, 0.01)
    inf = np.inf
    return MPCProblem(A, B, Q=np.diag([1.44, 0, 1, 0]), R=[[0.01]], horizon=20, P="dare",
                      u_min=[-2.0], u_max=[2.0], x_min=[-1.0, -inf, -inf, -inf], x_max=[1.0, inf, inf, inf],
                      name="inverted_pendulum", sample_box=([-0.5, -1, -0.2, -1], [0.5, 1, 0.2, 1]), dt=0.01,
                      state_names=("cart position", "cart velocity", "pole angle", "pole angular velocity"),
                      state_units=("m", "m/s", "rad", "rad/s"), input_names=("force input",))
