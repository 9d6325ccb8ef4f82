import numpy as np
import pytest

import mpc2nn

PROBLEMS = mpc2nn.systems.all_problems()


@pytest.fixture(params=sorted(PROBLEMS), ids=sorted(PROBLEMS))
def public_problem(request):
    """Every public benchmark problem (MPCProblem or CondensedQP)."""
    return PROBLEMS[request.param]()


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


MPC_PROBLEMS = sorted(k for k, f in PROBLEMS.items() if isinstance(f(), mpc2nn.MPCProblem))


@pytest.fixture(params=MPC_PROBLEMS, ids=MPC_PROBLEMS)
def public_mpc_problem(request):
    """The public problems that are MPCProblems (all but the hand-built published QP)."""
    return PROBLEMS[request.param]()
