"""The ``mpc2nn`` command: compile, validate, simulate, benchmark, unravel, export and map back MPC problems
from a shell.

Installed as a console script with the package (its wheel or ``pip install -e .``); ``python -m mpc2nn.cli``
does the same.
Every subcommand takes ``--help``::

    mpc2nn compile  PROBLEM [-o NET.mpc2nn] [--alpha A]
    mpc2nn validate PROBLEM [--samples N] [--seed S] [--reference osqp|daqp|osqp-tight] [--tol T]
    mpc2nn simulate PROBLEM --x0 X1 X2 ... [--steps T] [--controller implicit|mpc|both] [--plot FIG.png]
    mpc2nn bench    PROBLEM [--samples N] [--seed S] [--repeats R]
    mpc2nn unravel  PROBLEM (--depth J | --tol EPS) [--samples N] [--seed S] [-o NET.mpc2nn]
    mpc2nn export   NET.mpc2nn --format onnx|torchscript|c [--dtype float64|float32] -o OUT
    mpc2nn converse NETWORK [--mpc] [--model PROBLEM] [-o OUT.mpc2nn]
    mpc2nn demo     [--output DIR] [--samples N] [--small]

``PROBLEM`` is one of

* a TOML problem file (schema below; one example per public problem in
  ``examples/problems/``);
* a file written by ``mpc2nn compile -o`` or :func:`mpc2nn.save` (suffix
  ``.mpc2nn``: a problem, a condensed QP or an implicit network, used as saved);
* ``builtin:NAME`` for a problem of :func:`mpc2nn.systems.all_problems`, e.g.
  ``builtin:drummond2024_published`` (the paper's QP, quirks kept).

**Problem files.** A TOML document whose top-level keys define an
:class:`mpc2nn.MPCProblem`. Matrices are arrays of rows, vectors arrays of
numbers; ``inf`` and ``-inf`` (valid TOML floats) mean "no bound".

PROBLEM_FILE_TABLE

Problems with input-rate terms or tracking take more than the state (the
previous input, the references; see :meth:`mpc2nn.CondensedQP.parameters`).
The subcommands that draw samples (``validate``, ``bench``, ``unravel``) draw
the whole parameter vector: the state from the sample box, the previous input
from the input bounds, the references from the sample box and the input bounds
(:func:`mpc2nn.sampling.parameter_box`; the input bounds must then be finite).
``simulate`` runs rate problems (the previous input starts at zero) and refuses
tracking problems, which need a reference over time: use the Python API there.
Soft constraints and move blocking work everywhere.

The model is required: either ``A`` and ``B`` (discrete time) or ``Ac``, ``Bc``
and ``dt`` (continuous time), not both.

An example with the optional tables (a double integrator with a mixed stage
constraint and a terminal box)::

    name = "double_integrator_tight"
    horizon = 10
    A = [[1.0, 1.0], [0.0, 1.0]]
    B = [[0.5], [1.0]]
    Q = [[1.0, 0.0], [0.0, 1.0]]
    R = [[0.1]]
    P = "dare"
    u_min = [-1.0]
    u_max = [1.0]
    x_min = [-5.0, -inf]         # no lower bound on x_2
    x_max = [5.0, inf]

    [sample_box]
    lo = [-3.0, -1.0]
    hi = [3.0, 1.0]

    [[constraints]]              # x_2 + u <= 2 at every stage
    C_x = [[0.0, 1.0]]
    C_u = [[1.0]]
    d = [2.0]

    [terminal_constraint]        # |x_N| <= 1 componentwise
    C = [[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]]
    d = [1.0, 1.0, 1.0, 1.0]

Errors in a file are reported on one line naming the file, the key and what was
expected, e.g. ``error: problem.toml: B: expected shape (n_x, n_u) = (2, 1),
got (1, 2)`` or ``error: problem.toml: missing key 'R' (input weight, shape
(n_u, n_u))``; unknown keys are errors that list the valid ones.

**Output.** Human-readable text on stdout by default. With ``--json`` stdout
holds exactly one JSON object (numbers as JSON numbers, arrays as lists,
non-finite values as ``null``) and nothing else.

**Progress.** Sampling, validation and benchmarks work through the states in
chunks of 256 and show a text progress bar on stderr: redrawn in place on a
terminal, a single summary line per bar otherwise. ``--quiet`` and ``--json``
turn it off. States are drawn chunk by chunk, chunk k with a seed derived from
``(--seed, k)`` by :class:`numpy.random.SeedSequence`, so a run is reproducible
from its seed (but differs from one call of :func:`mpc2nn.sample_states`).

**Validation verdicts.** ``validate`` compares the exact network with a
reference solver; where they disagree it solves those states again with the
certified exact solve, DAQP and a tighter OSQP run (:func:`mpc2nn.cross_check`)
and says who is wrong, state by state. Its first line is the verdict: ``PASS``
when the network agrees with the reference, or where it does not the reference
is shown wrong; ``FAIL`` otherwise, naming the states. ``--json`` carries the
per-state detail under ``cross_check``.

**Exit codes.** 0 success; 1 a check failed (``validate``: the network is
not shown right on every state; ``demo``: an error above the tolerance or a
feasibility disagreement; ``unravel --tol``: the tolerance missed on the test
states; ``simulate``: a controller gave no usable input and the loop stopped;
``converse``: the network is not MPC-like); 2 a user error (bad file, bad arguments,
missing optional dependency), reported as one line ``error: ...`` on stderr
without a traceback; 130 interrupted.
"""

from ..io import problem_from_toml, toml_table
from ._main import main
from ._output import CommandLineError
from ._parser import build_parser
from ._problems import load_problem

__doc__ = __doc__.replace("PROBLEM_FILE_TABLE", toml_table())  # the keys, from MPCProblem's field specs

__all__ = ["main", "build_parser", "load_problem", "problem_from_toml", "CommandLineError"]
