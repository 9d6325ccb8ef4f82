"""Solving the converse map's SDPs with cvxpy (Clarabel, else SCS)."""

from __future__ import annotations

from .._checks import ignoring_warnings, require
from ..exceptions import SolverError

__all__ = ["solve_sdp"]


def solve_sdp(problem, solver: str | None):
    cp = require("cvxpy", "converse")
    names = [solver] if solver is not None else [s for s in ("CLARABEL", "SCS") if s in cp.installed_solvers()]
    if not names:
        raise SolverError("no SDP solver found for cvxpy: pip install 'mpc2nn[converse]' (installs Clarabel)")
    last = None
    for name in names:
        try:
            # "optimal_inaccurate" is accepted: every caller polishes or reports its residuals
            with ignoring_warnings(UserWarning, "Solution may be inaccurate"):
                problem.solve(solver=name)
        except cp.error.SolverError as exc:
            last = exc
            continue
        if problem.status in ("optimal", "optimal_inaccurate"):
            return name
        last = problem.status
    raise SolverError(f"the SDP was not solved ({', '.join(names)}): {last}")
