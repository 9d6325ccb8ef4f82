"""Problem files: an :class:`~mpc2nn.MPCProblem` from a parsed TOML document."""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from .._checks import as_matrix
from ..exceptions import ProblemFileError, ShapeError
from ..problem import MPCProblem, problem_fields, zoh

__all__ = ["problem_from_toml", "problem_to_toml", "TOML_KEYS", "MODEL_KEYS", "toml_table"]


#: Keys of problem files that are not MPCProblem fields: a continuous-time model ``dx/dt = Ac x + Bc u``,
#: discretised by zero-order hold with the sampling time ``dt`` (a field of the problem, required with them)
#: instead of A and B.
MODEL_KEYS = {
    "Ac": "continuous-time state matrix, shape (n_x, n_x) (with dt, instead of A)",
    "Bc": "continuous-time input matrix, shape (n_x, n_u) (with dt, instead of B)",
}
#: Every key of a problem file with its meaning: the MPCProblem fields a file can write (from their
#: FieldSpecs), the continuous-time model keys after B.
_FIELDS = {name: sp for name, sp in problem_fields(MPCProblem) if sp.toml}
TOML_KEYS = {}
for _name, _sp in _FIELDS.items():
    TOML_KEYS[_name] = _sp.meaning
    if _name == "B":
        TOML_KEYS.update(MODEL_KEYS)
del _name, _sp


_BOX_KEYS = {"lo": "lower corner, shape (n_x,)", "hi": "upper corner, shape (n_x,)"}
_STAGE_KEYS = {"C_x": "state coefficients, shape (p, n_x)", "C_u": "input coefficients, shape (p, n_u)",
               "d": "right-hand side, shape (p,)"}

_TERMINAL_KEYS = {"C": "state coefficients, shape (p, n_x)", "d": "right-hand side, shape (p,)"}
#: The keys of each table-valued field, in the order the problem takes them.
_TABLES = {"sample_box": _BOX_KEYS, "terminal_constraint": _TERMINAL_KEYS}


#: Names other tools (MATLAB's MPC toolbox, MPT3, LinearMPC.jl, textbooks) use for keys of a problem file.
ALIASES = {"N": "horizon", "Np": "horizon", "prediction_horizon": "horizon", "Ts": "dt", "Ts_s": "dt",
           "sample_time": "dt", "sampling_time": "dt", "Qf": "P", "QN": "P", "terminal_weight": "P",
           "Qy": "output_weight", "Q_y": "output_weight", "Rd": "du_weight", "S": "du_weight",
           "x0_box": "sample_box", "box": "sample_box", "constraint": "constraints"}


def suggestion(key: str, schema) -> str | None:
    """The valid key that ``key`` most likely means: a known alias, the same key up to case and
    underscores, or a close spelling (difflib); ``None`` if nothing is close.
    """
    keys = list(schema)
    if ALIASES.get(key) in keys:
        return ALIASES[key]

    def norm(k: str) -> str:
        return k.lower().replace("_", "").replace("-", "")

    same = [k for k in keys if norm(k) == norm(key)]
    if same:
        return same[0]
    close = difflib.get_close_matches(norm(key), [norm(k) for k in keys], n=1, cutoff=0.6)
    return next(k for k in keys if norm(k) == close[0]) if close else None


def _check_keys(where: str, table: Any, schema: Mapping[str, str]) -> None:
    if not isinstance(table, dict):
        raise ProblemFileError(f"{where}: expected a table with keys {', '.join(schema)}, "
                               f"got {_toml_type(table)}")
    for key in table:
        if key not in schema:
            prefix = f"{where}: " if where else ""
            close = suggestion(key, schema)
            hint = f"did you mean '{close}'? " if close else ""
            raise ProblemFileError(f"{prefix}unknown key '{key}'; {hint}valid keys: {', '.join(schema)}")


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
    continuous = [k for k in MODEL_KEYS if k in data]
    if discrete and continuous:
        raise ProblemFileError(f"both {', '.join(discrete)} and {', '.join(continuous)} given: define the model "
                               "either by A and B (discrete time) or by Ac, Bc and dt (continuous time)")
    kwargs: dict[str, Any] = {}
    if continuous:
        Ac = as_matrix("Ac", _numbers("Ac", _required("", data, "Ac", TOML_KEYS)), ("n_x", "n_x"), (None, None))
        if Ac.shape[0] != Ac.shape[1]:
            raise ShapeError(f"Ac: expected shape (n_x, n_x), a square matrix, got {Ac.shape}")
        Bc = as_matrix("Bc", _numbers("Bc", _required("", data, "Bc", TOML_KEYS)), ("n_x", "n_u"), (Ac.shape[0], None))
        dt = _numbers("dt", _required("", data, "dt", TOML_KEYS, " (needed to discretise Ac and Bc)"))
        if isinstance(dt, list) or not (math.isfinite(dt) and dt > 0):
            raise ProblemFileError(f"dt: expected a sampling time, a number > 0, got {dt!r}")
        kwargs["A"], kwargs["B"] = zoh(Ac, Bc, float(dt))
        kwargs["dt"] = float(dt)
    hint = "; or give a continuous-time model by Ac, Bc and dt"
    for name, sp in _FIELDS.items():
        if name in kwargs:
            continue
        if name not in data:
            if sp.required:
                _required("", data, name, TOML_KEYS, hint if name in ("A", "B") else "")
            continue
        kwargs[name] = _read(name, sp.toml, data[name])
    kwargs.setdefault("name", default_name)
    return MPCProblem(**kwargs)


def _read(name: str, kind: str, value: Any) -> Any:
    """The value of one key as :class:`~mpc2nn.MPCProblem` takes it, checked as its kind says."""
    if kind == "numbers":
        return _numbers(name, value)
    if kind == "terminal weight":
        return value if isinstance(value, str) else _numbers(name, value)
    if kind == "strings":
        if not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            raise ProblemFileError(f"{name}: expected an array of strings ({TOML_KEYS[name]}), got "
                                   f"{_toml_type(value)} ({value!r})")
        return value
    if kind in ("string", "boolean"):
        if not isinstance(value, str if kind == "string" else bool):
            want = "a string" if kind == "string" else "a boolean"
            raise ProblemFileError(f"{name}: expected {want} ({TOML_KEYS[name]}), got {_toml_type(value)} "
                                   f"({value!r})")
        return value
    if kind == "table":
        schema = _TABLES[name]
        _check_keys(name, value, schema)
        return tuple(_numbers(f"{name}.{k}", _required(name, value, k, schema)) for k in schema)
    if kind == "stage tables":
        if not (isinstance(value, list) and all(isinstance(c, dict) for c in value)):
            raise ProblemFileError("constraints: expected an array of tables ([[constraints]] sections), "
                                   f"got {_toml_type(value)}")
        stages = []
        for i, table in enumerate(value):
            where = f"constraints[{i}]"
            _check_keys(where, table, _STAGE_KEYS)
            stages.append(tuple(_numbers(f"{where}.{k}", _required(where, table, k, _STAGE_KEYS))
                                for k in _STAGE_KEYS))
        return stages
    return value  # "integer": MPCProblem checks it


def _toml_value(value: Any) -> str:
    """A number, string, boolean or (nested) array as TOML (floats exact: shortest repr; ``inf``, ``-inf``)."""
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string: JSON's escapes are TOML's
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return "inf" if v == math.inf else "-inf" if v == -math.inf else repr(v)
    if isinstance(value, np.ndarray):
        value = value.tolist()
    return "[" + ", ".join(_toml_value(v) for v in value) + "]"


def problem_to_toml(problem: MPCProblem) -> str:
    """The problem file (TOML text) of ``problem``: :func:`problem_from_toml` of it gives the same problem.

    Numbers are written exactly (the shortest representation that reads back to the same float);
    a computed terminal weight is written as its source (``P = "dare"``), an LQR terminal set as
    ``terminal_set = "lqr"`` (both are computed again on reading); options left at their defaults
    are left out.

    Parameters
    ----------
    problem : MPCProblem
        The problem to write (every field, including names, units and the sampling time).

    Returns
    -------
    str
        TOML text, the format :func:`problem_from_toml` and ``mpc2nn ... problem.toml`` read.

    Examples
    --------
    >>> import sys, mpc2nn
    >>> tomllib = __import__("tomllib" if sys.version_info >= (3, 11) else "tomli")
    >>> from mpc2nn.io import problem_from_toml, problem_to_toml
    >>> di = mpc2nn.systems.double_integrator()
    >>> back = problem_from_toml(tomllib.loads(problem_to_toml(di)))
    >>> mpc2nn.problem_hash(back) == mpc2nn.problem_hash(di)
    True
    """
    if not isinstance(problem, MPCProblem):
        raise ProblemFileError(f"problem: expected an MPCProblem, got {type(problem).__name__}")
    top: list[str] = []
    tables: list[str] = []
    for name, sp in _FIELDS.items():
        value = getattr(problem, name)
        if name == "P":
            src = problem.terminal_weight_source
            top.append(f"P = {_toml_value(src if src in ('dare', 'lyapunov') else value)}")
        elif name == "terminal_constraint":
            if value is not None and problem.terminal_set is None:
                tables.append(f"[terminal_constraint]\nC = {_toml_value(value.C)}\nd = {_toml_value(value.d)}")
        elif name == "sample_box":
            if value is not None:
                tables.append(f"[sample_box]\nlo = {_toml_value(value[0])}\nhi = {_toml_value(value[1])}")
        elif name == "constraints":
            for c in value:
                tables.append(f"[[constraints]]\nC_x = {_toml_value(c.C_x)}\nC_u = {_toml_value(c.C_u)}\n"
                              f"d = {_toml_value(c.d)}")
        elif value is None or (sp.used_when is not None and not getattr(problem, sp.used_when)):
            continue
        elif isinstance(value, np.ndarray) and value.ndim == 1 and name.endswith(("_min", "_max")) \
                and not np.isfinite(value).any():
            continue  # no bound: the default
        else:
            top.append(f"{name} = {_toml_value(value)}")
    return "\n".join(top) + "\n" + "".join("\n" + t + "\n" for t in tables)


def toml_table() -> str:
    """The problem-file keys as a reStructuredText table (key, required, meaning), wrapped at 60 columns."""
    import textwrap

    rows = []
    for key, meaning in TOML_KEYS.items():
        sp = _FIELDS.get(key)
        required = "model" if key in ("A", "B") or key in MODEL_KEYS else ("yes" if sp and sp.required else "no")
        if key == "dt":
            required = "with Ac"
        shown = {"table": f"[{key}]", "stage tables": f"[[{key}]]"}.get(sp.toml if sp else "", key)
        rows.append((f"``{shown}``", required, textwrap.wrap(meaning, 60)))
    w0 = max(len(r[0]) for r in rows)
    rule = f"{'=' * w0}  =======  {'=' * 60}"
    lines = [rule, f"{'key':<{w0}}  needed   meaning", rule]
    for key, req, wrapped in rows:
        lines.append(f"{key:<{w0}}  {req:<7}  {wrapped[0]}")
        lines += [f"{'':<{w0}}  {'':<7}  {more}" for more in wrapped[1:]]
    lines.append(rule)
    return "\n".join(lines)
