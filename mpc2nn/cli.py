"""The ``mpc2nn`` command: compile, validate, simulate, benchmark and unravel MPC problems from a shell.

Installed as a console script by ``pip install mpc2nn``; ``python -m mpc2nn.cli`` does the same.
Every subcommand takes ``--help``::

    mpc2nn compile  PROBLEM [-o NET.mpc2nn] [--alpha A]
    mpc2nn validate PROBLEM [--samples N] [--seed S] [--reference osqp|daqp|exact] [--tol T]
    mpc2nn simulate PROBLEM --x0 X1 X2 ... [--steps T] [--controller implicit|mpc] [--plot FIG.png]
    mpc2nn bench    PROBLEM [--samples N] [--seed S] [--repeats R]
    mpc2nn unravel  PROBLEM (--depth J | --tol EPS) [--samples N] [--seed S] [-o NET.mpc2nn]
    mpc2nn export   NET.mpc2nn --format onnx|torchscript|c -o OUT
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

=========================  ========  ====================================================
key                        required  meaning
=========================  ========  ====================================================
``A``                      model     state matrix, shape (n_x, n_x)
``B``                      model     input matrix, shape (n_x, n_u)
``Ac``, ``Bc``, ``dt``     model     continuous-time model ``dx/dt = Ac x + Bc u`` and the
                                     sampling time in seconds (a number > 0); discretised
                                     by zero-order hold
``Q``                      yes       state weight, shape (n_x, n_x), symmetric PSD
``R``                      yes       input weight, shape (n_u, n_u), symmetric PD
``horizon``                yes       prediction horizon, an integer >= 1
``P``                      no        terminal weight: ``"dare"`` (default, Riccati),
                                     ``"lyapunov"`` (open-loop cost) or a matrix (n_x, n_x)
``u_min``, ``u_max``       no        input bounds, shape (n_u,)
``x_min``, ``x_max``       no        bounds on the predicted states x_1..x_N, shape (n_x,)
``name``                   no        label used in reports (default: the file name stem)
``[sample_box]``           no        table with ``lo`` and ``hi``, each (n_x,): the box of
                                     initial states sampled by ``validate``, ``bench`` and
                                     ``unravel`` (needed by them)
``[[constraints]]``        no        array of tables with ``C_x`` (p, n_x), ``C_u`` (p, n_u)
                                     and ``d`` (p,): ``C_x x_k + C_u u_k <= d``, k = 0..N-1
``[terminal_constraint]``  no        table with ``C`` (p, n_x) and ``d`` (p,): ``C x_N <= d``
``terminal_set``           no        ``"lqr"``: the LQR maximal invariant set as terminal
                                     constraint (instead of ``[terminal_constraint]``)
``soft_state_penalty``     no        ``ρ_q`` or ``[ρ_q, ρ_l]``: soften every state constraint
                                     (quadratic, and exact L1 with a large ``ρ_l``)
``du_min``, ``du_max``     no        input-rate bounds on ``u_k - u_{k-1}``, shape (n_u,)
``du_weight``              no        input-rate weight, shape (n_u, n_u), symmetric PSD
``tracking``               no        ``true``: track ``(x_ref, u_ref)`` given as inputs
``move_blocking``          no        block lengths (integers summing to ``horizon``)
=========================  ========  ====================================================

Problems with input-rate terms or tracking take more than the state (the
previous input, the references; see :meth:`mpc2nn.CondensedQP.parameters`).
``compile`` works on them and ``simulate`` on rate problems (the previous input
starts at zero); the subcommands that draw states (``validate``, ``bench``,
``unravel``) and ``simulate`` of a tracking problem refuse them with that
reason: use the Python API there. Soft constraints and move blocking work
everywhere.

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

**Exit codes.** 0 success; 1 a check failed (``validate`` or ``demo``: an error
above the tolerance or a feasibility disagreement; ``unravel --tol``: the
tolerance missed on the test states; ``simulate``: the controller gave no
usable input and the loop stopped); 2 a user error (bad file, bad arguments,
missing optional dependency), reported as one line ``error: ...`` on stderr
without a traceback; 130 interrupted.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import math
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from . import __version__, systems
from ._checks import as_matrix, require
from .exceptions import MissingDependencyError, Mpc2nnError, ProblemDefinitionError, ShapeError
from .export import load, problem_hash, save
from .implicit import ImplicitNetwork, compile as compile_network
from .oracle import OSQPSession, solve_daqp
from .problem import MPCProblem, _zoh
from .qp import CondensedQP, KKTResiduals
from .simulate import MPCController, Trajectory, simulate
from .validate import ValidationReport, sample_states, validate

__all__ = ["main", "build_parser", "load_problem", "problem_from_toml", "CommandLineError"]

#: States per chunk of sampling, validation and benchmark work (one progress update each).
CHUNK = 256

_KEYS = {
    "name": "a label used in reports, a string",
    "A": "state matrix, shape (n_x, n_x)",
    "B": "input matrix, shape (n_x, n_u)",
    "Ac": "continuous-time state matrix, shape (n_x, n_x)",
    "Bc": "continuous-time input matrix, shape (n_x, n_u)",
    "dt": "sampling time in seconds for discretising Ac, Bc, a number > 0",
    "Q": "state weight, shape (n_x, n_x)",
    "R": "input weight, shape (n_u, n_u)",
    "horizon": "prediction horizon, an integer >= 1",
    "P": "terminal weight: \"dare\", \"lyapunov\" or a matrix of shape (n_x, n_x)",
    "u_min": "input lower bounds, shape (n_u,)",
    "u_max": "input upper bounds, shape (n_u,)",
    "x_min": "state lower bounds, shape (n_x,)",
    "x_max": "state upper bounds, shape (n_x,)",
    "sample_box": "a table with lo and hi, each of shape (n_x,)",
    "constraints": "an array of tables [[constraints]], each with C_x, C_u and d",
    "terminal_constraint": "a table with C and d",
    "terminal_set": "\"lqr\" for the LQR maximal invariant set as terminal constraint",
    "soft_state_penalty": "a number ρ_q > 0 or an array [ρ_q, ρ_l]",
    "du_min": "input-rate lower bounds, shape (n_u,)",
    "du_max": "input-rate upper bounds, shape (n_u,)",
    "du_weight": "input-rate weight, shape (n_u, n_u)",
    "tracking": "true to track references given as inputs, a boolean",
    "move_blocking": "block lengths, an array of integers summing to horizon",
}
_BOX_KEYS = {"lo": "lower corner, shape (n_x,)", "hi": "upper corner, shape (n_x,)"}
_STAGE_KEYS = {"C_x": "state coefficients, shape (p, n_x)", "C_u": "input coefficients, shape (p, n_u)",
               "d": "right-hand side, shape (p,)"}
_TERMINAL_KEYS = {"C": "state coefficients, shape (p, n_x)", "d": "right-hand side, shape (p,)"}


class CommandLineError(Mpc2nnError, ValueError):
    """A user error found by the command line: a bad problem file, argument or missing feature."""


# --- problem files ---------------------------------------------------------------------------------------------
def _check_keys(where: str, table: Any, schema: Mapping[str, str]) -> None:
    if not isinstance(table, dict):
        raise CommandLineError(f"{where}: expected a table with keys {', '.join(schema)}, "
                               f"got {_toml_type(table)}")
    for key in table:
        if key not in schema:
            prefix = f"{where}: " if where else ""
            raise CommandLineError(f"{prefix}unknown key '{key}'; valid keys: {', '.join(schema)}")


def _required(where: str, table: Mapping[str, Any], key: str, schema: Mapping[str, str], hint: str = "") -> Any:
    if key not in table:
        prefix = f"{where}: " if where else ""
        raise CommandLineError(f"{prefix}missing key '{key}' ({schema[key]}){hint}")
    return table[key]


def _toml_type(value: Any) -> str:
    for kind, name in ((bool, "a boolean"), (str, "a string"), (dict, "a table"), (list, "an array"),
                       (int, "an integer"), (float, "a float")):
        if isinstance(value, kind):
            return name
    return f"a {type(value).__name__}"  # dates and times


def _numbers(key: str, value: Any, path: str = "") -> Any:
    """``value`` unchanged if it is a number or (nested) array of numbers, else a CommandLineError."""
    if isinstance(value, list):
        for i, v in enumerate(value):
            _numbers(key, v, f"{path}[{i}]")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise CommandLineError(f"{key}: expected numbers, found {_toml_type(value)} ({value!r}) at {key}{path}")
    return value


def problem_from_toml(data: Mapping[str, Any], *, default_name: str = "mpc") -> MPCProblem:
    """Build an :class:`~mpc2nn.MPCProblem` from a parsed TOML document.

    Parameters
    ----------
    data : mapping
        The document, as :func:`tomllib.loads` returns it; the schema is in this
        module's docstring.
    default_name : str
        Name of the problem when ``data`` has no ``name`` key.

    Returns
    -------
    MPCProblem

    Raises
    ------
    CommandLineError
        Unknown or missing keys, or non-numeric matrix entries (naming the key).
    ProblemDefinitionError
        Shapes, definiteness and bounds, as :class:`~mpc2nn.MPCProblem` checks them.

    Examples
    --------
    >>> from mpc2nn.cli import problem_from_toml
    >>> doc = {"A": [[1.0]], "B": [[1.0]], "Q": [[1.0]], "R": [[1.0]], "horizon": 3,
    ...        "u_min": [-1.0], "u_max": [float("inf")]}
    >>> p = problem_from_toml(doc, default_name="scalar")
    >>> p.name, p.horizon, p.u_max
    ('scalar', 3, array([inf]))
    """
    _check_keys("", data, _KEYS)
    discrete = [k for k in ("A", "B") if k in data]
    continuous = [k for k in ("Ac", "Bc", "dt") if k in data]
    if discrete and continuous:
        raise CommandLineError(f"both {', '.join(discrete)} and {', '.join(continuous)} given: define the model "
                               "either by A and B (discrete time) or by Ac, Bc and dt (continuous time)")
    if continuous:
        Ac = as_matrix("Ac", _numbers("Ac", _required("", data, "Ac", _KEYS)), ("n_x", "n_x"), (None, None))
        if Ac.shape[0] != Ac.shape[1]:
            raise ShapeError(f"Ac: expected shape (n_x, n_x), a square matrix, got {Ac.shape}")
        Bc = as_matrix("Bc", _numbers("Bc", _required("", data, "Bc", _KEYS)), ("n_x", "n_u"), (Ac.shape[0], None))
        dt = _numbers("dt", _required("", data, "dt", _KEYS))
        if isinstance(dt, list) or not (math.isfinite(dt) and dt > 0):
            raise CommandLineError(f"dt: expected a sampling time, a number > 0, got {dt!r}")
        A, B = _zoh(Ac, Bc, float(dt))
    else:
        hint = "; or give a continuous-time model by Ac, Bc and dt"
        A = _numbers("A", _required("", data, "A", _KEYS, hint))
        B = _numbers("B", _required("", data, "B", _KEYS, hint))
    Q = _numbers("Q", _required("", data, "Q", _KEYS))
    R = _numbers("R", _required("", data, "R", _KEYS))
    horizon = _required("", data, "horizon", _KEYS)
    P = data.get("P", "dare")
    if not isinstance(P, str):
        P = _numbers("P", P)
    bounds = {k: _numbers(k, data[k]) for k in ("u_min", "u_max", "x_min", "x_max", "du_min", "du_max", "du_weight",
                                                "soft_state_penalty", "move_blocking") if k in data}
    for key, kind in (("tracking", bool), ("terminal_set", str)):
        if key in data:
            if not isinstance(data[key], kind):
                raise CommandLineError(f"{key}: expected {_KEYS[key]}, got {_toml_type(data[key])} "
                                       f"({data[key]!r})")
            bounds[key] = data[key]
    name = data.get("name", default_name)
    if not isinstance(name, str):
        raise CommandLineError(f"name: expected a string, got {_toml_type(name)} ({name!r})")

    box = None
    if "sample_box" in data:
        table = data["sample_box"]
        _check_keys("sample_box", table, _BOX_KEYS)
        box = tuple(_numbers(f"sample_box.{k}", _required("sample_box", table, k, _BOX_KEYS)) for k in ("lo", "hi"))
    constraints = data.get("constraints", [])
    if not (isinstance(constraints, list) and all(isinstance(c, dict) for c in constraints)):
        raise CommandLineError("constraints: expected an array of tables ([[constraints]] sections), "
                               f"got {_toml_type(constraints)}")
    stages = []
    for i, table in enumerate(constraints):
        where = f"constraints[{i}]"
        _check_keys(where, table, _STAGE_KEYS)
        stages.append(tuple(_numbers(f"{where}.{k}", _required(where, table, k, _STAGE_KEYS))
                            for k in ("C_x", "C_u", "d")))
    terminal = None
    if "terminal_constraint" in data:
        table = data["terminal_constraint"]
        _check_keys("terminal_constraint", table, _TERMINAL_KEYS)
        terminal = tuple(_numbers(f"terminal_constraint.{k}",
                                  _required("terminal_constraint", table, k, _TERMINAL_KEYS)) for k in ("C", "d"))
    return MPCProblem(A, B, Q, R, horizon, P=P, constraints=stages, terminal_constraint=terminal, name=name,
                      sample_box=box, **bounds)


def load_problem(spec: str) -> MPCProblem | CondensedQP | ImplicitNetwork:
    """The problem named by a command-line ``PROBLEM`` argument.

    Parameters
    ----------
    spec : str
        ``builtin:NAME`` (see :func:`mpc2nn.systems.all_problems`), a file saved
        by :func:`mpc2nn.save` (suffix ``.mpc2nn``), or a TOML problem file.

    Returns
    -------
    MPCProblem, CondensedQP or ImplicitNetwork

    Raises
    ------
    CommandLineError, ProblemDefinitionError, FileFormatError
        With messages prefixed by the file name.
    FileNotFoundError
        The file does not exist.
    """
    if spec.startswith("builtin:"):
        name = spec[len("builtin:"):]
        problems = systems.all_problems()
        if name not in problems:
            raise CommandLineError(f"unknown builtin problem '{name}'; available: {', '.join(problems)}")
        return problems[name]()
    path = Path(spec)
    if path.suffix == ".mpc2nn":
        obj = load(path)
        if not isinstance(obj, (MPCProblem, CondensedQP, ImplicitNetwork)):
            raise CommandLineError(f"{path}: holds a {type(obj).__name__}, not a problem or implicit network")
        return obj
    with open(path, "rb") as fh:
        raw = fh.read()
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise CommandLineError(f"{path}: not a TOML file (not UTF-8 text: {exc.reason})") from None
    except tomllib.TOMLDecodeError as exc:
        raise CommandLineError(f"{path}: invalid TOML: {exc}") from None
    try:
        return problem_from_toml(data, default_name=path.stem)
    except (CommandLineError, ProblemDefinitionError) as exc:
        raise type(exc)(f"{path}: {exc}") from None


def _problem_of(obj: MPCProblem | CondensedQP | ImplicitNetwork) -> MPCProblem | CondensedQP:
    if isinstance(obj, ImplicitNetwork):
        return obj.qp.problem if obj.qp.problem is not None else obj.qp
    return obj


def _network_of(obj: MPCProblem | CondensedQP | ImplicitNetwork, alpha: float | None = None) -> ImplicitNetwork:
    if isinstance(obj, ImplicitNetwork) and alpha is None:
        return obj
    return compile_network(obj.qp if isinstance(obj, ImplicitNetwork) else obj, alpha=alpha)


def _describe(problem: MPCProblem | CondensedQP) -> str:
    kind = "MPC problem" if isinstance(problem, MPCProblem) else "condensed QP"
    return f"{kind} {problem.name}: n_x = {problem.n_x}, n_u = {problem.n_u}, N = {problem.horizon}"


# --- progress and chunked work --------------------------------------------------------------------------------
class _Progress:
    """Text progress bar on stderr; redrawn in place on a terminal, one final line otherwise."""

    def __init__(self, label: str, total: int, enabled: bool, stream: TextIO | None = None):
        self.label, self.total, self.enabled = label, max(int(total), 1), enabled
        self.stream = sys.stderr if stream is None else stream
        self.done, self.start = 0, time.perf_counter()
        self.live = enabled and self.stream.isatty()

    def _line(self) -> str:
        width = 30
        fill = int(width * self.done / self.total)
        return (f"{self.label:<16} [{'#' * fill}{'.' * (width - fill)}] {self.done}/{self.total} "
                f"{time.perf_counter() - self.start:.1f}s")

    def advance(self, k: int) -> None:
        self.done = min(self.total, self.done + k)
        if self.live:
            self.stream.write("\r" + self._line())
            self.stream.flush()

    def __enter__(self) -> "_Progress":
        return self

    def __exit__(self, *exc_info) -> None:
        if self.enabled and exc_info[0] is None:
            self.stream.write(("\r" if self.live else "") + self._line() + "\n")
            self.stream.flush()
        elif self.live:
            self.stream.write("\n")


def _chunks(n: int) -> list[slice]:
    return [slice(i, min(i + CHUNK, n)) for i in range(0, n, CHUNK)]


def _sample(problem: MPCProblem | CondensedQP, n: int, seed: int, show: bool, label: str = "sampling"
            ) -> np.ndarray:
    """``n`` feasible states of the problem's sample box, drawn in chunks (chunk k seeded from ``(seed, k)``)."""
    _only_states(problem, "draws states from the sample box")
    if problem.sample_box is None:
        raise CommandLineError(f"problem '{problem.name}' has no sample box to draw states from; "
                               "add a [sample_box] table with lo and hi to the problem file")
    chunks = _chunks(n)
    seeds = np.random.SeedSequence(seed).generate_state(len(chunks), dtype=np.uint64)
    parts = []
    with _Progress(label, n, show) as bar:
        for sl, s in zip(chunks, seeds):
            parts.append(sample_states(problem, sl.stop - sl.start, seed=int(s)))
            bar.advance(sl.stop - sl.start)
    return np.concatenate(parts)


def _validate(controller: Any, qp: CondensedQP, X: np.ndarray, reference: str, show: bool) -> ValidationReport:
    """:func:`mpc2nn.validate` chunk by chunk, the reports joined into one."""
    parts = []
    with _Progress("validating", X.shape[0], show) as bar:
        for sl in _chunks(X.shape[0]):
            parts.append(validate(controller, qp, X[sl], reference=reference))
            bar.advance(sl.stop - sl.start)
    if len(parts) == 1:
        return parts[0]
    join = {f.name: np.concatenate([getattr(p, f.name) for p in parts])
            for f in dataclasses.fields(ValidationReport) if f.name not in ("kkt", "reference", "compared")}
    kkt = None if parts[0].kkt is None else KKTResiduals(
        **{f.name: np.concatenate([getattr(p.kkt, f.name) for p in parts]) for f in dataclasses.fields(KKTResiduals)})
    return ValidationReport(**join, kkt=kkt, reference=parts[0].reference, compared=parts[0].compared)


def _report_data(report: ValidationReport, tol: float) -> dict:
    both = report.feasible & report.feasible_ref
    err = report.error[both]
    return dict(
        reference=report.reference, compared=report.compared, states=int(report.X.shape[0]),
        feasible_reference=int(report.feasible_ref.sum()),
        feasibility_agreement=int(report.feasibility_agrees.sum()),
        max_error=report.max_error, median_error=float(np.median(err)) if err.size else None,
        max_violation=float(np.nanmax(report.violation[both])) if np.isfinite(report.violation[both]).any()
        else None,
        max_kkt_residual=float(report.kkt.worst[both].max()) if report.kkt is not None and both.any() else None,
        tol=tol, passed=bool(report.max_error <= tol and report.feasibility_agrees.all()))


# --- results ------------------------------------------------------------------------------------------------
@dataclass
class _Result:
    """What a subcommand hands back to :func:`main`: exit code, JSON payload and human-readable lines."""

    code: int
    data: dict
    text: list[str]


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, Path):
        return str(value)
    return value


def _fmt(value: float | None, spec: str = ".3e") -> str:
    return "n/a" if value is None else format(value, spec)


def _feature(module: str, attr: str, what: str) -> Callable:
    """``module.attr``, or a CommandLineError saying that ``what`` is not available."""
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise CommandLineError(f"{what} is not available in this installation: {exc}") from None


# --- subcommands ------------------------------------------------------------------------------------------------
def _cmd_compile(args: argparse.Namespace) -> _Result:
    obj = load_problem(args.problem)
    problem = _problem_of(obj)
    net = _network_of(obj, args.alpha)
    wp = net.well_posedness()
    n_params = sum(getattr(net, k).size for k in ("W", "Y", "b", "W_f", "Y_f"))
    data = dict(problem=problem.name, kind=type(problem).__name__, n_x=net.n_x, n_u=net.n_u,
                horizon=problem.horizon, m=net.m, n_U=net.W_f.shape[0], parameters=n_params,
                alpha_min=float(net.alpha.min(initial=np.inf)), alpha_max=float(net.alpha.max(initial=-np.inf)),
                problem_hash=problem_hash(net), well_posedness=dataclasses.asdict(wp), output=None)
    text = [_describe(problem),
            f"implicit network: width m = {net.m}, outputs N·n_u = {data['n_U']}, {n_params} parameters, "
            f"alpha in [{_fmt(data['alpha_min'], '.4g')}, {_fmt(data['alpha_max'], '.4g')}]",
            "", str(wp)]
    if args.output is not None:
        data["output"] = save(net, args.output)
        text += ["", f"saved to {args.output}"]
    return _Result(0, data, text)


def _cmd_validate(args: argparse.Namespace) -> _Result:
    obj = load_problem(args.problem)
    problem = _problem_of(obj)
    net = _network_of(obj)
    show = not (args.quiet or args.json)
    X = _sample(problem, args.samples, args.seed, show)
    t0 = time.perf_counter()
    report = _validate(net, systems.as_qp(problem), X, args.reference, show)
    data = dict(problem=problem.name, samples=args.samples, seed=args.seed, **_report_data(report, args.tol),
                seconds=time.perf_counter() - t0)
    verdict = "PASS" if data["passed"] else "FAIL"
    text = [_describe(problem) + f", m = {net.m} constraint rows", "", report.summary(), "",
            f"{verdict}: max error {data['max_error']:.3e} (tolerance {args.tol:g}), feasibility agrees on "
            f"{data['feasibility_agreement']}/{data['states']} states"]
    return _Result(0 if data["passed"] else 1, data, text)


def _plant_of(problem: MPCProblem | CondensedQP) -> MPCProblem | tuple[np.ndarray, np.ndarray]:
    """The model to simulate: the problem itself, or ``(A, B)`` read off a QP's prediction matrices."""
    if isinstance(problem, MPCProblem):
        return problem
    if problem.Phi is None:
        raise CommandLineError(f"'{problem.name}' is a QP without prediction matrices: there is no model to "
                               "simulate")
    return problem.Phi[:problem.n_x], problem.Gamma[:problem.n_x, :problem.n_u]


def _only_states(problem, what: str) -> None:
    """Refuse problems whose QP takes more than the state (previous input, references)."""
    qp = systems.as_qp(problem)
    extra = [k for k, _ in qp.parameter_sizes if k != "x"]
    if extra and not (what.startswith("simulates") and extra == ["u_prev"]):
        raise CommandLineError(
            f"problem '{qp.name}' takes {', '.join(extra)} as well as the state, and this command {what}; "
            "use the Python API (CondensedQP.parameters, simulate(reference=..., input_reference=...))")


def _cmd_simulate(args: argparse.Namespace) -> _Result:
    obj = load_problem(args.problem)
    problem = _problem_of(obj)
    _only_states(problem, "simulates without references (the previous input starts at zero)")
    controller = _network_of(obj) if args.controller == "implicit" else MPCController(problem)
    label = {"implicit": "implicit network", "mpc": "MPC (OSQP)"}[args.controller]
    traj = simulate(_plant_of(problem), controller, args.x0, args.steps,
                    problem=problem if isinstance(problem, MPCProblem) else None)
    ran = args.steps if traj.stopped_at is None else traj.stopped_at
    data = dict(problem=problem.name, controller=args.controller, steps=args.steps, steps_run=ran, x0=args.x0,
                cost=traj.cost,
                max_state_violation=None if traj.state_violation is None else np.nanmax(traj.state_violation),
                max_input_violation=None if traj.input_violation is None or ran == 0
                else np.nanmax(traj.input_violation[:ran]),
                stopped_at=traj.stopped_at,
                stop_status=None if traj.stopped_at is None else traj.status[traj.stopped_at],
                final_state=traj.states[ran], mean_step_seconds=float(traj.step_time[:max(ran, 1)].mean()),
                states=traj.states, inputs=traj.inputs, status=traj.status, plot=None)
    stop = ("no, all steps ran" if traj.stopped_at is None
            else f"at step {traj.stopped_at}: {data['stop_status']} (no usable input)")
    text = [_describe(problem), f"closed loop with the {label}, {args.steps} steps from x0 = {args.x0}", "",
            f"{'closed-loop cost':<22}{_fmt(traj.cost)}",
            f"{'max state violation':<22}{_fmt(data['max_state_violation'])}",
            f"{'max input violation':<22}{_fmt(data['max_input_violation'])}",
            f"{'stopped':<22}{stop}",
            f"{'final state':<22}{np.array2string(traj.states[ran], precision=4)}",
            f"{'controller time':<22}{1e3 * data['mean_step_seconds']:.3f} ms per step (mean)"]
    if args.plot is not None:
        data["plot"] = _plot_trajectories(args.plot, {label: traj},
                                          problem if isinstance(problem, MPCProblem) else None,
                                          f"{problem.name}: closed loop from x0 = {args.x0}")
        text.append(f"{'plot':<22}{args.plot}")
    return _Result(0 if traj.stopped_at is None else 1, data, text)


def _plot_trajectories(path: Path, trajectories: Mapping[str, Trajectory], bounds: MPCProblem | None,
                       title: str) -> Path:
    """States and inputs over time, one above the other, written to ``path`` (any matplotlib format)."""
    require("matplotlib", "plot")
    from matplotlib.figure import Figure

    from .plotting import plot_inputs, plot_states

    fig = Figure(figsize=(7, 6), layout="constrained")
    ax_x, ax_u = fig.subplots(2, 1, sharex=True)
    plot_states(trajectories, ax=ax_x, bounds=bounds)
    plot_inputs(trajectories, ax=ax_u, bounds=bounds)
    ax_x.set_xlabel("")
    fig.suptitle(title, fontsize=10)
    fig.savefig(path, dpi=120)
    return path


def _cmd_bench(args: argparse.Namespace) -> _Result:
    obj = load_problem(args.problem)
    problem = _problem_of(obj)
    qp = systems.as_qp(problem)
    show = not (args.quiet or args.json)
    X = _sample(problem, args.samples, args.seed, show)
    n, chunks = X.shape[0], _chunks(X.shape[0])
    try:
        solve_daqp(qp, X[:1])
        have_daqp = True
    except MissingDependencyError:
        have_daqp = False
    times: dict[str, list[float]] = {"exact": [], "daqp": [], "osqp": []}
    U: dict[str, np.ndarray] = {}
    ok: dict[str, np.ndarray] = {}
    with _Progress("benchmarking", args.repeats * (2 + have_daqp) * n, show) as bar:
        for _ in range(args.repeats):
            net = _network_of(obj)  # a fresh network each time: no factorisation cached from a previous run
            t0 = time.perf_counter()
            sol = net.solve(X)
            times["exact"].append(time.perf_counter() - t0)
            U["exact"], ok["exact"] = sol.U, sol.feasible
            bar.advance(n)
            solvers: dict[str, Callable[[np.ndarray], Any]] = {"osqp": OSQPSession(qp).solve}
            if have_daqp:
                solvers["daqp"] = lambda Xc: solve_daqp(qp, Xc)
            for name, solve in solvers.items():
                elapsed, parts = 0.0, []
                for sl in chunks:
                    t0 = time.perf_counter()
                    parts.append(solve(X[sl]))
                    elapsed += time.perf_counter() - t0
                    bar.advance(sl.stop - sl.start)
                times[name].append(elapsed)
                U[name] = np.concatenate([p.U for p in parts])
                ok[name] = np.concatenate([p.status == "solved" for p in parts])
    data = dict(problem=problem.name, samples=n, seed=args.seed, repeats=args.repeats, cpus=os.cpu_count(),
                m=qp.m, n_U=qp.n_U)
    text = [_describe(problem) + f", m = {qp.m} constraint rows",
            f"{n} sampled feasible states, float64, median of {args.repeats} run(s), {os.cpu_count()} CPUs",
            "exact: one batched solve on a freshly compiled network; DAQP, OSQP (warm-started, tolerances "
            "1e-10): one state at a time", "",
            f"{'solver':<8}{'states/s':>12}{'exact/solver':>14}{'max|U - U_exact|':>18}{'not solved':>12}"]
    exact_rate = n / float(np.median(times["exact"]))
    for name in ("exact", "daqp", "osqp"):
        if not times[name]:
            data[name] = None
            text.append(f"{name:<8}{'not installed':>12}")
            continue
        rate = n / float(np.median(times[name]))
        both = ok[name] & ok["exact"]
        err = float(np.abs(U[name][both] - U["exact"][both]).max(initial=0.0))
        unsolved = int((~ok[name]).sum())
        data[name] = dict(states_per_s=rate, seconds=float(np.median(times[name])), ratio=exact_rate / rate,
                          max_error=err, not_solved=unsolved)
        text.append(f"{name:<8}{rate:>12.0f}{exact_rate / rate:>14.2f}{err:>18.2e}{unsolved:>12}")
    return _Result(0, data, text)


def _cmd_unravel(args: argparse.Namespace) -> _Result:
    unravel = _feature("mpc2nn.explicit", "unravel", "unravelling")
    obj = load_problem(args.problem)
    problem = _problem_of(obj)
    _only_states(problem, "tunes and tests the network on states drawn from the sample box")
    net = _network_of(obj)
    show = not (args.quiet or args.json)
    seed_fit, seed_test = np.random.SeedSequence(args.seed).generate_state(2)
    if args.depth is not None:
        explicit = unravel(net, depth=args.depth)
    else:
        X_fit = _sample(problem, args.samples, int(seed_fit), show, label="sampling (fit)")
        explicit = unravel(net, tol=args.tol, states=X_fit)
    X = _sample(problem, args.samples, int(seed_test), show, label="sampling (test)")
    report = _validate(explicit, systems.as_qp(problem), X, "exact", show)
    bound = explicit.error_bound(X).bound
    tol = np.inf if args.tol is None else args.tol
    data = dict(problem=problem.name, depth=int(explicit.depth), samples=args.samples, seed=args.seed,
                **_report_data(report, tol), max_error_bound=float(bound.max(initial=0.0)), output=None)
    data["tol"] = args.tol
    text = [_describe(problem) + f", m = {net.m} constraint rows",
            f"explicit network: depth {data['depth']}" + ("" if args.tol is None else f" (chosen for tolerance "
                                                          f"{args.tol:g} on {args.samples} fitting states)"),
            "", report.summary(), f"{'max a-posteriori error bound':<30}{data['max_error_bound']:.3e}"]
    if args.output is not None:
        try:
            data["output"] = save(explicit, args.output)
        except TypeError as exc:
            raise CommandLineError(f"saving explicit networks is not available in this installation: {exc}") \
                from None
        text.append(f"saved to {args.output}")
    if args.tol is not None:
        text += ["", ("PASS" if data["passed"] else "FAIL") + f": max error {data['max_error']:.3e} on "
                 f"{args.samples} test states (tolerance {args.tol:g})"]
    return _Result(0 if data["passed"] else 1, data, text)


def _cmd_export(args: argparse.Namespace) -> _Result:
    obj = load(args.file)
    fmt_fn = _feature("mpc2nn.export", {"onnx": "to_onnx", "torchscript": "to_torchscript", "c": "to_c"}[args.format],
                      f"export to {args.format}")
    try:
        written = Path(fmt_fn(obj, args.output))
    except TypeError as exc:  # not an explicit network
        raise CommandLineError(f"{args.file}: {exc}; export needs a file written by `mpc2nn unravel -o`") from None
    size = written.stat().st_size
    data = dict(input=args.file, kind=type(obj).__name__, format=args.format, output=str(written), bytes=size)
    return _Result(0, data, [f"{type(obj).__name__} from {args.file} exported as {args.format} to {written} "
                             f"({size} bytes)"])


def _cmd_demo(args: argparse.Namespace) -> _Result:
    problem = systems.drummond2024("corrected")
    net = compile_network(problem)
    show = not (args.quiet or args.json)
    n = 50 if args.small else args.samples
    X = _sample(problem, n, 0, show)
    report = _validate(net, systems.as_qp(problem), X, "osqp", show)
    settings = systems.DRUMMOND2024_PAPER_SETTINGS
    x0, steps = settings["x0"], settings["closed_loop_steps"]
    trajectories = {"MPC (OSQP)": simulate(problem, problem, x0, steps),
                    "implicit network": simulate(problem, net, x0, steps)}
    gap = float(np.abs(trajectories["implicit network"].states - trajectories["MPC (OSQP)"].states).max())
    args.output.mkdir(parents=True, exist_ok=True)
    plot = _plot_trajectories(args.output / "demo.png", trajectories, problem,
                              f"{problem.name}: implicit network vs MPC from x0 = {tuple(x0)}")
    tol = 1e-6
    data = dict(problem=problem.name, samples=n, **_report_data(report, tol), closed_loop_steps=steps,
                closed_loop_gap=gap, plot=plot)
    data["passed"] = data["passed"] and gap <= tol * max(1.0, float(np.abs(x0).max()))
    text = [_describe(problem), f"implicit network: width m = {net.m}, N·n_u = {net.W_f.shape[0]} outputs", "",
            report.summary(), "",
            f"closed loop from x0 = {tuple(x0)}, {steps} steps: max |x_network - x_OSQP| = {gap:.2e}",
            f"plot written to {plot}"]
    return _Result(0 if data["passed"] else 1, data, text)


# --- argument parsing ---------------------------------------------------------------------------------------
def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value


def _float_at_least(low: float, strict: bool) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not math.isfinite(value) or value < low or (strict and value == low):
            raise argparse.ArgumentTypeError(f"expected a finite number {'>' if strict else '>='} {low:g}, "
                                             f"got {text}")
        return value

    return parse


_PROBLEM_HELP = "a TOML problem file, a saved .mpc2nn file, or builtin:NAME (" + ", ".join(
    systems.all_problems()) + ")"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``mpc2nn`` command (one subparser per subcommand).

    Returns
    -------
    argparse.ArgumentParser
        Parsed arguments carry ``run``, the function that executes the subcommand.
    """
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="print one JSON object to stdout and nothing else")
    common.add_argument("--quiet", action="store_true", help="no progress bar on stderr")
    parser = argparse.ArgumentParser(
        prog="mpc2nn", description="Linear MPC as exact implicit ReLU networks: compile, validate, simulate, "
        "benchmark, unravel and export.",
        epilog="Exit codes: 0 success, 1 a check failed, 2 a user error (bad file or arguments). "
        "Problem file schema: see the mpc2nn documentation (command line) or examples/problems/.")
    parser.add_argument("--version", action="version", version=f"mpc2nn {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, run: Callable[[argparse.Namespace], _Result], summary: str,
            epilog: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, parents=[common], help=summary, description=summary, epilog=epilog,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        p.set_defaults(run=run)
        return p

    p = add("compile", _cmd_compile, "Compile a problem into its implicit ReLU network; report its size and "
            "well-posedness.", "example: mpc2nn compile builtin:double_integrator -o di.mpc2nn")
    p.add_argument("problem", metavar="PROBLEM", help=_PROBLEM_HELP)
    p.add_argument("-o", "--output", type=Path, help="save the network to this .mpc2nn file")
    p.add_argument("--alpha", type=_float_at_least(0.0, strict=True),
                   help="step size α > 0 of the network (default 1/λmax(G H⁻¹ Gᵀ))")

    p = add("validate", _cmd_validate, "Compare the exact implicit network with a reference solver on sampled "
            "feasible states.", "exit code 1 if the max error exceeds --tol or feasibility disagrees\n"
            "example: mpc2nn validate examples/problems/quadcopter.toml --samples 500")
    p.add_argument("problem", metavar="PROBLEM", help=_PROBLEM_HELP)
    p.add_argument("--samples", type=_positive_int, default=1000, help="number of states (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the sampling (default 0)")
    p.add_argument("--reference", choices=("osqp", "daqp", "exact"), default="osqp",
                   help="reference solver (default osqp, tolerances 1e-10 with polishing)")
    p.add_argument("--tol", type=_float_at_least(0.0, strict=False), default=1e-6,
                   help="largest accepted ‖U - U_ref‖∞ (default 1e-6)")

    p = add("simulate", _cmd_simulate, "Run the exact network (or MPC by OSQP) in closed loop with the "
            "problem's model.", "exit code 1 if the controller finds no usable input and the loop stops\n"
            "example: mpc2nn simulate builtin:drummond2024_corrected --x0 -200 -200 --steps 25 --plot loop.png")
    p.add_argument("problem", metavar="PROBLEM", help=_PROBLEM_HELP)
    p.add_argument("--x0", type=float, nargs="+", required=True, metavar="X", help="initial state, n_x numbers")
    p.add_argument("--steps", type=_positive_int, default=25, help="number of steps (default 25)")
    p.add_argument("--controller", choices=("implicit", "mpc"), default="implicit",
                   help="implicit: the exact implicit network (default); mpc: OSQP")
    p.add_argument("--plot", type=Path, help="write states and inputs over time to this image (e.g. loop.png)")

    p = add("bench", _cmd_bench, "Throughput of the exact batched solve against DAQP and OSQP on the same "
            "states.", "example: mpc2nn bench builtin:quadcopter --samples 2000")
    p.add_argument("problem", metavar="PROBLEM", help=_PROBLEM_HELP)
    p.add_argument("--samples", type=_positive_int, default=1000, help="number of states (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the sampling (default 0)")
    p.add_argument("--repeats", type=_positive_int, default=3, help="runs per solver, median taken (default 3)")

    p = add("unravel", _cmd_unravel, "Unravel the implicit network into an explicit feed-forward ReLU network "
            "(needs torch).", "with --tol: exit code 1 if the test states' max error exceeds it\n"
            "example: mpc2nn unravel builtin:drummond2024_corrected --tol 1e-6 -o explicit.mpc2nn")
    p.add_argument("problem", metavar="PROBLEM", help=_PROBLEM_HELP)
    how = p.add_mutually_exclusive_group(required=True)
    how.add_argument("--depth", type=_positive_int, help="number of layers J")
    how.add_argument("--tol", type=_float_at_least(0.0, strict=True),
                     help="pick the depth for this max error on sampled states")
    p.add_argument("--samples", type=_positive_int, default=1000,
                   help="states for choosing the depth and (others) for testing (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the sampling (default 0)")
    p.add_argument("-o", "--output", type=Path, help="save the explicit network to this .mpc2nn file")

    p = add("export", _cmd_export, "Export a saved network to ONNX or TorchScript.",
            "example: mpc2nn export explicit.mpc2nn --format onnx -o controller.onnx")
    p.add_argument("file", metavar="FILE", help="a .mpc2nn file written by `mpc2nn unravel -o`")
    p.add_argument("--format", choices=("onnx", "torchscript", "c"), required=True,
                   help="target format (c: a folder with NAME.c and NAME.h, plain loops, static weights)")
    p.add_argument("-o", "--output", type=Path, required=True, help="file to write (folder for --format c)")

    p = add("demo", _cmd_demo, "The quick-start demo: the paper's corrected example as an exact network, "
            "validated against OSQP, closed loop plotted.", "example: mpc2nn demo --output out/ --small")
    p.add_argument("--output", type=Path, default=Path("out"), help="folder for demo.png (default out)")
    p.add_argument("--samples", type=_positive_int, default=1000, help="number of sampled states (default 1000)")
    p.add_argument("--small", action="store_true", help="a fast run with 50 states")
    return parser


def _error_line(exc: BaseException) -> str:
    if isinstance(exc, FileNotFoundError):
        return f"no such file: {exc.filename}"
    if isinstance(exc, OSError) and exc.filename is not None:
        return f"{exc.filename}: {exc.strerror}"
    return " ".join(str(exc).split())


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``mpc2nn`` command.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments without the program name (default ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit code: 0 success, 1 a check failed, 2 a user error (reported as one
        line on stderr, no traceback), 130 interrupted.

    Examples
    --------
    >>> from mpc2nn.cli import main
    >>> main(["compile", "builtin:double_integrator", "--json"])  # doctest: +SKIP
    0
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # --help, --version and argparse's own usage errors
        return 0 if stop.code is None else int(stop.code)
    try:
        result = args.run(args)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except (Mpc2nnError, OSError) as exc:
        print(f"error: {_error_line(exc)}", file=sys.stderr)
        return 2
    try:
        if args.json:
            print(json.dumps(_jsonable(result.data), allow_nan=False))
        else:
            print("\n".join(result.text))
        sys.stdout.flush()
    except BrokenPipeError:  # the reader went away (``mpc2nn ... | head``): silence the rest, keep the code
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return result.code


if __name__ == "__main__":
    raise SystemExit(main())
