"""Benchmark problems, with numbers copied from the project's public benchmark files.

Each constructor returns what :func:`mpc2nn.compile` accepts (an
:class:`~mpc2nn.MPCProblem`, or a :class:`~mpc2nn.CondensedQP` where the
problem cannot be written as one) with its ``sample_box`` set.
:func:`all_problems` lists them by name.
"""

from __future__ import annotations

from collections.abc import Callable

from ..problem import MPCProblem
from ..qp import CondensedQP, as_qp
from ._double_integrator import double_integrator
from ._drummond import DRUMMOND2024_PAPER_SETTINGS, drummond2024
from ._masses import oscillating_masses
from ._pendulum import inverted_pendulum
from ._quadcopter import QUADCOPTER_X_REF, quadcopter

__all__ = ["drummond2024", "double_integrator", "quadcopter", "inverted_pendulum", "oscillating_masses",
           "all_problems", "as_qp", "DRUMMOND2024_PAPER_SETTINGS", "QUADCOPTER_X_REF"]


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
