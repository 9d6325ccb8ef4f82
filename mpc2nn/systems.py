"""Benchmark problems, with numbers copied from the project's public benchmark files.

Each constructor returns what :func:`mpc2nn.compile` accepts (an
:class:`~mpc2nn.MPCProblem`, or a :class:`~mpc2nn.CondensedQP` where the
problem cannot be written as one) with its ``sample_box`` set.
:func:`all_problems` lists them by name.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .problem import MPCProblem, _zoh
from .qp import CondensedQP, as_qp

__all__ = ["drummond2024", "double_integrator", "quadcopter", "inverted_pendulum",
           "oscillating_masses", "all_problems", "as_qp", "DRUMMOND2024_PAPER_SETTINGS"]

_DRUMMOND_A = [[4 / 3, -2 / 3], [1.0, 0.0]]
_DRUMMOND_B = [[0.0], [1.0]]

#: Settings of the authors' released script (run_sim.m) for the published example.
DRUMMOND2024_PAPER_SETTINGS = {
    "alpha": 1.0, "depth": 1000, "closed_loop_steps": 25, "x0": (-200.0, -200.0), "warm_start": True,
}


def drummond2024(variant: str = "corrected") -> MPCProblem | CondensedQP:
    """The example of Drummond, Baldivieso-Monasterios and Valmorbida (L4DC 2024, arXiv 2404.12030).

    ``A = [[4/3, -2/3], [1, 0]]``, ``B = [0, 1]ᵀ``, ``R = 1``, ``N = 10``, ``|u_k| <= 10``.

    Parameters
    ----------
    variant : {"corrected", "published"}
        ``"corrected"`` (an :class:`MPCProblem`): ``Q = [[1, -2/3], [-2/3, 3/2]]``,
        ``P`` the Lyapunov cost ``P = AᵀPA + Q``, the full condensed linear term.
        ``"published"`` (a :class:`CondensedQP`): the QP exactly as the authors'
        script builds it, quirks included: ``Q[1][1] = 3/22`` (an indefinite Q,
        evidently a typo for 3/2), ``P`` rounded to 4 decimals as printed, the
        linear term truncated to ``F = [BᵀQA; 0; ...; 0]`` (only ``u_0`` sees the
        state), constraint rows ``±0.1 u_k <= 1``. The paper's network uses
        ``alpha = 1`` on these rows and 1000 layers (see
        :data:`DRUMMOND2024_PAPER_SETTINGS`).
    """
    box = ([-200.0, -200.0], [200.0, 200.0])
    if variant == "corrected":
        return MPCProblem(_DRUMMOND_A, _DRUMMOND_B, Q=[[1.0, -2 / 3], [-2 / 3, 1.5]], R=[[1.0]], horizon=10,
                          P="lyapunov", u_min=[-10.0], u_max=[10.0], name="drummond2024_corrected",
                          sample_box=box)
    if variant != "published":
        raise ValueError(f"variant: expected 'corrected' or 'published', got {variant!r}")
    A, B, N = np.array(_DRUMMOND_A), np.array(_DRUMMOND_B), 10
    Q = np.array([[1.0, -2 / 3], [-2 / 3, 3 / 22]])
    P = np.array([[7.1667, -4.2222], [-4.2222, 4.6852]])
    from .qp import _prediction_matrices

    Phi, Gamma = _prediction_matrices(A, B, N)
    Qbar = np.kron(np.eye(N), Q)
    Qbar[-2:, -2:] = P
    H = Gamma.T @ Qbar @ Gamma + np.eye(N)
    F = np.zeros((N, 2))
    F[0] = (B.T @ Q @ A)[0]
    G = np.kron(np.eye(N), [[0.1], [-0.1]])
    labels = tuple(f"{s}[0] at k={k} (scaled 0.1)" for k in range(N) for s in ("u_max", "u_min"))
    return CondensedQP(H, F, G, np.ones(2 * N), np.zeros((2 * N, 2)), 1, Phi, Gamma, None, labels, None,
                       "drummond2024_published", (np.array(box[0]), np.array(box[1])),
                       "authors' script run_sim.m (arXiv 2404.12030), quirks kept")


def double_integrator() -> MPCProblem:
    """Textbook double integrator, ``N = 20``, ``|u| <= 1``, ``|x_1| <= 5``, ``|x_2| <= 2``; P from the DARE.

    The state constraints make many states of the sampling box infeasible and the dual degenerate.
    """
    return MPCProblem([[1.0, 1.0], [0.0, 1.0]], [[0.5], [1.0]], Q=np.eye(2), R=[[0.1]], horizon=20, P="dare",
                      u_min=[-1.0], u_max=[1.0], x_min=[-5.0, -2.0], x_max=[5.0, 2.0],
                      name="double_integrator", sample_box=([-5.0, -2.0], [5.0, 2.0]))


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
    example's tracking problem.
    """
    Q = np.diag([0.0, 0, 10, 10, 10, 10, 0, 0, 0, 5, 5, 5])
    inf = np.inf
    return MPCProblem(_QUAD_A, _QUAD_B, Q=Q, R=0.1 * np.eye(4), horizon=10, P=Q,
                      u_min=np.full(4, 9.6 - 10.5916), u_max=np.full(4, 13.0 - 10.5916),
                      x_min=[-np.pi / 6, -np.pi / 6, -inf, -inf, -inf, -1.0, -inf, -inf, -inf, -inf, -inf, -inf],
                      x_max=[np.pi / 6, np.pi / 6, inf, inf, inf, inf, inf, inf, inf, inf, inf, inf],
                      name="quadcopter",
                      sample_box=([-0.3, -0.3, -1, -0.5, -0.5, -0.5, -0.5, -0.5, -0.5, -0.5, -0.5, -0.5],
                                  [0.3, 0.3, 1, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5]))


def inverted_pendulum() -> MPCProblem:
    """Linearised inverted pendulum on a cart (LinearMPC.jl example library), ZOH at ``Ts = 0.01`` s.

    ``N = 20``, ``|u| <= 2``, cart position ``|x_1| <= 1``; ``Q = diag(1.44, 0, 1, 0)``,
    ``R = 0.01``, P from the DARE. Open-loop unstable.
    """
    Ac = np.array([[0.0, 1, 0, 0], [0, -10, 9.81, 0], [0, 0, 0, 1], [0, -20, 39.24, 0]])
    Bc = np.array([[0.0], [100], [0], [200]])
    A, B = _zoh(Ac, Bc, 0.01)
    inf = np.inf
    return MPCProblem(A, B, Q=np.diag([1.44, 0, 1, 0]), R=[[0.01]], horizon=20, P="dare",
                      u_min=[-2.0], u_max=[2.0], x_min=[-1.0, -inf, -inf, -inf], x_max=[1.0, inf, inf, inf],
                      name="inverted_pendulum", sample_box=([-0.5, -1, -0.2, -1], [0.5, 1, 0.2, 1]))


def oscillating_masses(n_masses: int = 6) -> MPCProblem:
    """Chain of unit masses joined by unit springs (Wang and Boyd, "Fast MPC"), ZOH at ``Ts = 0.5`` s.

    ``n_masses`` even; ``n_masses // 2`` tensions act between masses ``(1,2), (3,4), ...``;
    ``|u| <= 0.5``, ``|x| <= 4``, ``Q = I``, ``R = I``, ``N = 10``, P from the DARE.
    The default (6 masses: ``n_x = 12``, ``n_u = 3``) is the public benchmark.
    """
    if not isinstance(n_masses, (int, np.integer)) or n_masses < 2 or n_masses % 2:
        raise ValueError(f"n_masses: expected an even integer >= 2, got {n_masses!r}")
    n = int(n_masses)
    K = -2 * np.eye(n) + np.eye(n, k=1) + np.eye(n, k=-1)
    Ac = np.block([[np.zeros((n, n)), np.eye(n)], [K, np.zeros((n, n))]])
    Bm = np.zeros((n, n // 2))
    for j in range(n // 2):
        Bm[2 * j, j], Bm[2 * j + 1, j] = 1.0, -1.0
    Bc = np.vstack([np.zeros((n, n // 2)), Bm])
    A, B = _zoh(Ac, Bc, 0.5)
    return MPCProblem(A, B, Q=np.eye(2 * n), R=np.eye(n // 2), horizon=10, P="dare",
                      u_min=np.full(n // 2, -0.5), u_max=np.full(n // 2, 0.5),
                      x_min=np.full(2 * n, -4.0), x_max=np.full(2 * n, 4.0), name="oscillating_masses",
                      sample_box=(np.full(2 * n, -1.0), np.full(2 * n, 1.0)))


def all_problems() -> dict[str, Callable[[], MPCProblem | CondensedQP]]:
    """Constructors of every public benchmark problem, by name (the benchmark files' stems)."""
    return {
        "drummond2024_published": lambda: drummond2024("published"),
        "drummond2024_corrected": lambda: drummond2024("corrected"),
        "double_integrator": double_integrator,
        "quadcopter": quadcopter,
        "inverted_pendulum": inverted_pendulum,
        "oscillating_masses": oscillating_masses,
    }
