"""Problem files: an :class:`~mpc2nn.MPCProblem` from a parsed TOML document."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from .._checks import as_matrix
from ..exceptions import ProblemFileError, ShapeError
from ..problem import MPCProblem, zoh

__all__ = ["problem_from_toml", "TOML_KEYS"]


TOML_KEYS = {
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


def _check_keys(where: str, table: Any, schema: Mapping[str, str]) -> None:
    if not isinstance(table, dict):
        raise ProblemFileError(f"{where}: expected a table with keys {', '.join(schema)}, "
                               f"got {_toml_type(table)}")
    for key in table:
        if key not in schema:
            prefix = f"{where}: " if where else ""
            raise ProblemFileError(f"{prefix}unknown key '{key}'; valid keys: {', '.join(schema)}")


def _required(where: str, table: Mapping[str, Any], key: str, schema: Mapping[str, str], hint: str = "") -> Any:
    if key not in table:
        prefix = f"{where}: " if where else ""
        raise ProblemFileError(f"{prefix}missing key '{key}' ({schema[key]}){hint}")
    return table[key]


def _toml_type(value: Any) -> str:
    for kind, name in ((bool, "a boolean"), (str, "a string"), (dict, "a table"), (list, "an array"),
                       (int, "an integer"), (float, "a float")):
        if isinstance(value, kind):
            return name
    return f"a {type(value).__name__}"  # dates and times


def _numbers(key: str, value: Any, path: str = "") -> Any:
    """``value`` unchanged if it is a number or (nested) array of numbers, else a ProblemFileError."""
    if isinstance(value, list):
        for i, v in enumerate(value):
            _numbers(key, v, f"{path}[{i}]")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ProblemFileError(f"{key}: expected numbers, found {_toml_type(value)} ({value!r}) at {key}{path}")
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
    ProblemFileError
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
    _check_keys("", data, TOML_KEYS)
    discrete = [k for k in ("A", "B") if k in data]
    continuous = [k for k in ("Ac", "Bc", "dt") if k in data]
    if discrete and continuous:
        raise ProblemFileError(f"both {', '.join(discrete)} and {', '.join(continuous)} given: define the model "
                               "either by A and B (discrete time) or by Ac, Bc and dt (continuous time)")
    if continuous:
        Ac = as_matrix("Ac", _numbers("Ac", _required("", data, "Ac", TOML_KEYS)), ("n_x", "n_x"), (None, None))
        if Ac.shape[0] != Ac.shape[1]:
            raise ShapeError(f"Ac: expected shape (n_x, n_x), a square matrix, got {Ac.shape}")
        Bc = as_matrix("Bc", _numbers("Bc", _required("", data, "Bc", TOML_KEYS)), ("n_x", "n_u"), (Ac.shape[0], None))
        dt = _numbers("dt", _required("", data, "dt", TOML_KEYS))
        if isinstance(dt, list) or not (math.isfinite(dt) and dt > 0):
            raise ProblemFileError(f"dt: expected a sampling time, a number > 0, got {dt!r}")
        A, B = zoh(Ac, Bc, float(dt))
    else:
        hint = "; or give a continuous-time model by Ac, Bc and dt"
        A = _numbers("A", _required("", data, "A", TOML_KEYS, hint))
        B = _numbers("B", _required("", data, "B", TOML_KEYS, hint))
    Q = _numbers("Q", _required("", data, "Q", TOML_KEYS))
    R = _numbers("R", _required("", data, "R", TOML_KEYS))
    horizon = _required("", data, "horizon", TOML_KEYS)
    P = data.get("P", "dare")
    if not isinstance(P, str):
        P = _numbers("P", P)
    bounds = {k: _numbers(k, data[k]) for k in ("u_min", "u_max", "x_min", "x_max", "du_min", "du_max", "du_weight",
                                                "soft_state_penalty", "move_blocking") if k in data}
    for key, kind in (("tracking", bool), ("terminal_set", str)):
        if key in data:
            if not isinstance(data[key], kind):
                raise ProblemFileError(f"{key}: expected {TOML_KEYS[key]}, got {_toml_type(data[key])} "
                                       f"({data[key]!r})")
            bounds[key] = data[key]
    name = data.get("name", default_name)
    if not isinstance(name, str):
        raise ProblemFileError(f"name: expected a string, got {_toml_type(name)} ({name!r})")

    box = None
    if "sample_box" in data:
        table = data["sample_box"]
        _check_keys("sample_box", table, _BOX_KEYS)
        box = tuple(_numbers(f"sample_box.{k}", _required("sample_box", table, k, _BOX_KEYS)) for k in ("lo", "hi"))
    constraints = data.get("constraints", [])
    if not (isinstance(constraints, list) and all(isinstance(c, dict) for c in constraints)):
        raise ProblemFileError("constraints: expected an array of tables ([[constraints]] sections), "
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
