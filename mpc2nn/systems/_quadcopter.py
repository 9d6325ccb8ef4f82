"""The OSQP documentation's quadcopter."""

from __future__ import annotations

import numpy as np

from ..problem import MPCProblem

__all__ = ["quadcopter", "QUADCOPTER_X_REF"]


_QUAD_A = np.array([
    [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.1, 0.0, 0.0, 0.0, 0.0, 0.0],
    [0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.1, 0.0, 0.0, 0.0, 0.0],
    [0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.1, 0.0, 0.0, 0.0],
    [0.0488, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0016, 0.0, 0.0, 0.0992, 0.0, 0.0],
    [0.0, -0.0488, 0.0, 0.0, 1.0, 0.0, 0.0, -0.0016, 0.0, 0.0, 0.0992, 0.0],
    [0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0992],
    [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0],
    [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0],
    [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0],
    [0.9734, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0488, 0.0, 0.0, 0.9846, 0.0, 0.0],
    [0.0, -0.9734, 0.0, 0.0, 0.0, 0.0, 0.0, -0.0488, 0.0, 0.0, 0.9846, 0.0],
    [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.9846]])


_QUAD_B = np.array([
    [0.0, -0.0726, 0.0, 0.0726],
    [-0.0726, 0.0, 0.0726, 0.0],
    [-0.0152, 0.0152, -0.0152, 0.0152],
    [-0.0, -0.0006, -0.0, 0.0006],
    [0.0006, 0.0, -0.0006, 0.0],
    [0.0106, 0.0106, 0.0106, 0.0106],
    [0.0, -1.4512, 0.0, 1.4512],
    [-1.4512, 0.0, 1.4512, 0.0],
    [-0.3049, 0.3049, -0.3049, 0.3049],
    [-0.0, -0.0236, 0.0, 0.0236],
    [0.0236, 0.0, -0.0236, 0.0],
    [0.2107, 0.2107, 0.2107, 0.2107]])


#: Reference of the OSQP documentation's quadcopter example: yaw ``ψ = x_3 = 1`` rad, hovering
#: (:func:`quadcopter` works in ``x - x_ref``; the state is ``(φ, θ, ψ, x, y, z, φ̇, θ̇, ψ̇, ẋ, ẏ, ż)``).
QUADCOPTER_X_REF = np.array([0, 0, 1.0, 0, 0, 0, 0, 0, 0, 0, 0, 0])


def quadcopter() -> MPCProblem:
    """Linearised quadcopter about hover, the OSQP documentation's MPC example (``N = 10``).

    The state is ``(φ, θ, ψ, x, y, z, φ̇, θ̇, ψ̇, ẋ, ẏ, ż)``: roll, pitch, yaw, position and
    their rates (equal thrust on all rotors moves only ``z`` and ``ż``; opposite rotor
    pairs turn the yaw). Inputs are deviations from the hover thrust 10.5916 (bounds
    ``[-0.9916, 2.4084]``); roll and pitch ``|x_1|, |x_2| <= π/6``, the altitude floor
    ``z = x_6 >= -1``; ``Q = diag(0,0,10,10,10,10,0,0,0,5,5,5)``,
    ``R = 0.1 I``, ``P = Q``. The states are deviations ``x - x_ref`` from the reference
    :data:`QUADCOPTER_X_REF`: it is an equilibrium (``A x_ref = x_ref`` with zero input)
    and zero in every bounded component, so the regulator in deviations is exactly the
    example's tracking problem. Sampled at ``dt = 0.1`` s; the thrusts' unit is not stated
    by the source, so none is given.
    """
    Q = np.diag([0.0, 0, 10, 10, 10, 10, 0, 0, 0, 5, 5, 5])
    inf = np.inf
    return MPCProblem(_QUAD_A, _QUAD_B, Q=Q, R=0.1 * np.eye(4), horizon=10, P=Q,
                      u_min=np.full(4, 9.6 - 10.5916), u_max=np.full(4, 13.0 - 10.5916),
                      x_min=[-np.pi / 6, -np.pi / 6, -inf, -inf, -inf, -1.0, -inf, -inf, -inf, -inf, -inf, -inf],
                      x_max=[np.pi / 6, np.pi / 6, inf, inf, inf, inf, inf, inf, inf, inf, inf, inf],
                      name="quadcopter", dt=0.1,
                      state_names=("roll φ", "pitch θ", "yaw ψ", "x", "y", "z", "roll rate", "pitch rate",
                                   "yaw rate", "x velocity", "y velocity", "z velocity"),
                      state_units=("rad",) * 3 + ("m",) * 3 + ("rad/s",) * 3 + ("m/s",) * 3,
                      input_names=tuple(f"thrust {i} (from hover)" for i in range(1, 5)),
                      sample_box=([-0.3, -0.3, -1, -0.5, -0.5, -0.5, -0.5, -0.5, -0.5, -0.5, -0.5, -0.5],
                                  [0.3, 0.3, 1, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5]))
