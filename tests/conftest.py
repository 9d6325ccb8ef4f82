import os

import numpy as np
import pytest
from hypothesis import settings

import mpc2nn

# Property tests are reproducible by default: the same examples on every run and machine, and no
# example database replaying a failure found in an earlier session.  HYPOTHESIS_PROFILE=random
# explores fresh examples (what the ``slow`` deep fuzzers are for); a failure found there is then
# pinned as an explicit ``@example``.
settings.register_profile("reproducible", derandomize=True, database=None, deadline=None)
settings.register_profile("random", derandomize=False, database=None, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "reproducible"))

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
