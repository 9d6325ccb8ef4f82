"""The ``PROBLEM`` argument of the command line and what the subcommands need of it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from .. import systems
from ..exceptions import ProblemDefinitionError, ProblemFileError
from ..implicit import ImplicitNetwork
from ..implicit import compile as compile_network
from ..io import load, problem_from_toml
from ..problem import MPCProblem
from ..qp import CondensedQP
from ._output import CommandLineError

__all__ = ["load_problem"]


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
    except (ProblemFileError, ProblemDefinitionError) as exc:
        raise type(exc)(f"{path}: {exc}") from None


def problem_of(obj: MPCProblem | CondensedQP | ImplicitNetwork) -> MPCProblem | CondensedQP:
    if isinstance(obj, ImplicitNetwork):
        return obj.qp.problem if obj.qp.problem is not None else obj.qp
    return obj


def network_of(obj: MPCProblem | CondensedQP | ImplicitNetwork, alpha: float | None = None) -> ImplicitNetwork:
    if isinstance(obj, ImplicitNetwork) and alpha is None:
        return obj
    return compile_network(obj.qp if isinstance(obj, ImplicitNetwork) else obj, alpha=alpha)


def describe(problem: MPCProblem | CondensedQP) -> str:
    kind = "MPC problem" if isinstance(problem, MPCProblem) else "condensed QP"
    return f"{kind} {problem.name}: n_x = {problem.n_x}, n_u = {problem.n_u}, N = {problem.horizon}"


def plant_of(problem: MPCProblem | CondensedQP) -> MPCProblem | tuple[np.ndarray, np.ndarray]:
    """The model to simulate: the problem itself, or ``(A, B)`` read off a QP's prediction matrices."""
    if isinstance(problem, MPCProblem):
        return problem
    if problem.Phi is None or problem.Gamma is None:
        raise CommandLineError(f"'{problem.name}' is a QP without prediction matrices: there is no model to "
                               "simulate")
    return problem.Phi[:problem.n_x], problem.Gamma[:problem.n_x, :problem.n_u]


def only_states(problem, what: str) -> None:
    """Refuse problems whose QP takes more than the state (previous input, references)."""
    qp = systems.as_qp(problem)
    extra = [k for k, _ in qp.parameter_sizes if k != "x"]
    if extra and not (what.startswith("simulates") and extra == ["u_prev"]):
        raise CommandLineError(
            f"problem '{qp.name}' takes {', '.join(extra)} as well as the state, and this command {what}; "
            "use the Python API (CondensedQP.parameters, simulate(reference=..., input_reference=...))")
