"""The exact solver against stored reference solutions of the public problems (tests/data/golden).

The files were written by tests/data/make_golden.py with DAQP; they pin the answers, so a change
that moves a solution (in the condensation, the solver, or a problem's numbers) fails here even
where the live cross-checks would move along with it.
"""
from pathlib import Path

import numpy as np
import pytest
from tolerances import tol

import mpc2nn
from mpc2nn.status import Status

GOLDEN = Path(__file__).resolve().parent / "data" / "golden"
PROBLEMS = mpc2nn.systems.all_problems()


@pytest.mark.parametrize("name", sorted(PROBLEMS))
def test_exact_solve_reproduces_the_golden_solutions(name):
    data = np.load(GOLDEN / f"{name}.npz")
    problem = PROBLEMS[name]()
    assert str(data["problem_hash"]) == mpc2nn.problem_hash(problem), \
        f"{name} changed since its golden file was written: rerun tests/data/make_golden.py if that was intended"
    sol = mpc2nn.compile(problem).solve(data["X"])
    feasible = data["feasible"]
    assert np.array_equal(sol.status == Status.SOLVED, feasible)
    assert np.all(sol.status[~feasible] == Status.INFEASIBLE)
    assert np.abs(sol.U[feasible] - data["U"][feasible]).max(initial=0.0) <= tol("vs_daqp")
