"""The reference solvers by name: :data:`REFERENCE_SOLVERS`, used by :func:`mpc2nn.validate` and the CLI."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..implicit import compile as compile_network
from ..qp import as_qp
from ..status import Status
from ._daqp import solve_daqp
from ._osqp import OSQP_SETTINGS, solve_osqp
from ._solution import ReferenceSolution

__all__ = ["ReferenceSolver", "REFERENCE_SOLVERS", "OSQP_TIGHT_SETTINGS", "solve_exact", "solve_osqp_tight"]


#: Overrides of :data:`OSQP_SETTINGS` for the tighter OSQP run used as a cross-check: tolerances 1e-13
#: (three orders below the default run, near float64's limit for OSQP's residuals), 50 polishing
#: refinements and 500 000 iterations, on the condensed QP (not the sparse form: a second formulation).
OSQP_TIGHT_SETTINGS = dict(eps_abs=1e-13, eps_rel=1e-13, eps_prim_inf=1e-13, eps_dual_inf=1e-13, max_iter=500_000,
                           polish_refine_iter=50)


def solve_osqp_tight(problem, X) -> ReferenceSolution:
    """OSQP on the condensed QP with :data:`OSQP_TIGHT_SETTINGS` (a cross-check of the default run).

    Parameters
    ----------
    problem : MPCProblem, CondensedQP or ImplicitNetwork
        The problem (condensed first), its QP, or a network holding the QP.
    X : array_like, shape (B, n_θ) or (n_θ,)
        Parameters: states for a plain problem, else built by :meth:`CondensedQP.parameters`.

    Returns
    -------
    ReferenceSolution
        Named ``"osqp-tight"``; statuses, feasibility and solve times as :func:`solve_osqp`
        reports them.
    """
    ref = solve_osqp(problem, X, form="condensed", settings=OSQP_TIGHT_SETTINGS)
    return ReferenceSolution(ref.U, ref.feasible, ref.status, ref.solve_time, "osqp-tight", ref.n_u)


def solve_exact(problem, X) -> ReferenceSolution:
    """The exact, certified solve of the implicit network (:meth:`mpc2nn.ImplicitNetwork.solve`) as a reference.

    Not independent of mpc2nn: use it to check explicit networks and other controllers, not the
    exact network itself. ``feasible`` holds only where the solution is certified.

    Parameters
    ----------
    problem : MPCProblem, CondensedQP or ImplicitNetwork
        The problem (condensed first), its QP, or a network holding the QP (the network is
        compiled again from that QP).
    X : array_like, shape (B, n_θ) or (n_θ,)
        Parameters: states for a plain problem, else built by :meth:`CondensedQP.parameters`.

    Returns
    -------
    ReferenceSolution
        Named ``"exact"``; ``U`` (B, N·n_u) and ``status`` from the exact solve, ``feasible``
        where ``status == "solved"``, ``solve_time`` zeros (not measured).
    """
    qp = as_qp(problem)
    sol = compile_network(qp).solve(X)
    return ReferenceSolution(sol.U, sol.status == Status.SOLVED, sol.status, np.zeros(sol.U.shape[0]), "exact",
                             qp.n_u)


@dataclass(frozen=True)
class ReferenceSolver:
    """One reference solver.

    Attributes
    ----------
    name : str
        The name ``validate(reference=...)`` and ``mpc2nn validate --reference`` take (its key in
        :data:`REFERENCE_SOLVERS`).
    description : str
        One line: what it solves and at which tolerances.
    solve : callable
        ``solve(problem, X) -> ReferenceSolution`` with ``problem`` an MPCProblem or
        CondensedQP and ``X`` (B, n_θ) or (n_θ,).
    independent : bool
        It does not use mpc2nn's exact solver (so it can check that solver).
    extra : str or None
        The optional dependency extra it needs (``pip install 'mpc2nn[extra]'``); default
        ``None``: nothing beyond the base install.
    label : str
        How reports name it, e.g. ``"OSQP"`` (default ``""``: reports use ``name``).
    """

    name: str
    description: str
    solve: Callable[..., ReferenceSolution]
    independent: bool
    extra: str | None = None
    label: str = ""


#: The reference solvers by name. ``"osqp"``, ``"daqp"`` and ``"osqp-tight"`` are independent of mpc2nn's
#: exact solver; ``"exact"`` is that solver (certified by KKT residuals), a reference for explicit networks.
REFERENCE_SOLVERS = {
    "osqp": ReferenceSolver(
        "osqp", f"OSQP, tolerances {OSQP_SETTINGS['eps_abs']:g} with polishing, on the states-and-inputs form",
        solve_osqp, True, label="OSQP"),
    "daqp": ReferenceSolver("daqp", "DAQP, an exact dual active-set solver, on the condensed QP", solve_daqp,
                            True, "daqp", label="DAQP"),
    "osqp-tight": ReferenceSolver(
        "osqp-tight", f"OSQP, tolerances {OSQP_TIGHT_SETTINGS['eps_abs']:g}, 50 polishing refinements, on the "
        "condensed QP", solve_osqp_tight, True, label="a tighter OSQP run"),
    "exact": ReferenceSolver("exact", "mpc2nn's exact solve of the implicit network, certified by its KKT residuals",
                             solve_exact, False, label="the exact solve"),
}
