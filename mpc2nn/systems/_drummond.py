"""The example of Drummond, Baldivieso-Monasterios and Valmorbida (L4DC 2024)."""

from __future__ import annotations

import numpy as np

from ..exceptions import ProblemDefinitionError
from ..problem import MPCProblem
from ..qp import CondensedQP, prediction_matrices

__all__ = ["drummond2024", "DRUMMOND2024_PAPER_SETTINGS"]


_DRUMMOND_A = [[4 / 3, -2 / 3], [1.0, 0.0]]


_DRUMMOND_B = [[0.0], [1.0]]


#: Settings of the authors' released script (run_sim.m) for the published example.
DRUMMOND2024_PAPER_SETTINGS: dict = {
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
        raise ProblemDefinitionError(f"variant: expected 'corrected' or 'published', got {variant!r}")
    A, B, N = np.array(_DRUMMOND_A), np.array(_DRUMMOND_B), 10
    Q = np.array([[1.0, -2 / 3], [-2 / 3, 3 / 22]])
    P = np.array([[7.1667, -4.2222], [-4.2222, 4.6852]])
    Phi, Gamma = prediction_matrices(A, B, N)
    Qbar = np.kron(np.eye(N), Q)
    Qbar[-2:, -2:] = P
    H = Gamma.T @ Qbar @ Gamma + np.eye(N)
    F = np.zeros((N, 2))
    F[0] = (B.T @ Q @ A)[0]
    G = np.kron(np.eye(N), [[0.1], [-0.1]])
    labels = tuple(f"{s}[0] at k={k} (scaled 0.1)" for k in range(N) for s in ("u_max", "u_min"))
    return CondensedQP(H=H, F=F, G=G, w=np.ones(2 * N), E=np.zeros((2 * N, 2)), n_u=1, Phi=Phi, Gamma=Gamma,
                       row_labels=labels, name="drummond2024_published",
                       sample_box=(np.array(box[0]), np.array(box[1])),
                       source="authors' script run_sim.m (arXiv 2404.12030), quirks kept")
