"""What the signals of an MPC problem are called and measured in, and its sampling time.

:class:`~mpc2nn.MPCProblem` carries optional names and units of its states, inputs and outputs
and the sampling time ``dt``; they change nothing in the QP (its hash stays the same) and are
used by reports and plots (time axes in seconds, axes labelled with names and units).
:func:`signal_labels` gives the label of each signal, with a default where none was given.
"""

from __future__ import annotations

from .._checks import as_positive
from ..exceptions import ProblemDefinitionError

__all__ = ["check_names", "check_dt", "signal_labels", "SYMBOLS"]

#: The symbol of each kind of signal, used for default names (``x1``, ``u1``, ``y1``).
SYMBOLS = {"state": "x", "input": "u", "output": "y"}


def check_names(field: str, value, n: int, sym: str) -> tuple[str, ...] | None:
    """``value`` as a tuple of ``n`` strings; ``None`` stays ``None``.

    Parameters
    ----------
    field : the field's name, for messages (e.g. ``"state_names"``)
    value : None or a sequence of ``n`` strings
    n : the number of signals; sym : its symbol (``"n_x"``)
    """
    if value is None:
        return None
    if isinstance(value, str):
        raise ProblemDefinitionError(f"{field}: expected a sequence of {sym} = {n} strings, got the single "
                                     f"string {value!r}; write [{value!r}, ...]")
    try:
        items = tuple(value)
    except TypeError:
        raise ProblemDefinitionError(f"{field}: expected a sequence of {sym} = {n} strings, got {value!r}") from None
    if len(items) != n:
        raise ProblemDefinitionError(f"{field}: expected {sym} = {n} strings, one per signal, got {len(items)}: "
                                     f"{list(items)!r}")
    for i, s in enumerate(items):
        if not isinstance(s, str):
            raise ProblemDefinitionError(f"{field}[{i}]: expected a string, got {s!r} ({type(s).__name__})")
    return items


def check_dt(value) -> float | None:
    """The sampling time as a float > 0 (seconds); ``None`` stays ``None``."""
    if value is None:
        return None
    return as_positive("dt", value, "the sampling time in seconds, a number > 0")


def signal_labels(problem, kind: str, *, units: bool = True) -> tuple[str, ...]:
    """The label of every signal of one kind: its name (default ``x1``, ``x2``, ...) and its unit in brackets.

    Parameters
    ----------
    problem : MPCProblem
        The problem whose ``state_names``/``state_units`` (and the same for inputs and outputs)
        are read; without names the signals are called ``x1``, ``x2``, ... (``u``, ``y`` likewise).
    kind : {"state", "input", "output"}
        Which signals: ``n_x`` states, ``n_u`` inputs or ``n_y`` outputs.
    units : bool
        Append ``" [unit]"`` where a unit is given (default ``True``; an empty unit adds nothing).

    Returns
    -------
    tuple of str
        One label per signal of that kind, in order.

    Raises
    ------
    ProblemDefinitionError
        ``kind`` is none of the three.

    Examples
    --------
    >>> import mpc2nn
    >>> from mpc2nn.problem import signal_labels
    >>> p = mpc2nn.systems.double_integrator()
    >>> signal_labels(p, "state")
    ('position [m]', 'velocity [m/s]')
    >>> signal_labels(p.replace(state_names=None, state_units=None), "state")
    ('x1', 'x2')
    """
    if kind not in SYMBOLS:
        raise ProblemDefinitionError(f"kind: expected one of {list(SYMBOLS)}, got {kind!r}")
    n = {"state": problem.n_x, "input": problem.n_u, "output": problem.n_y}[kind]
    names = getattr(problem, f"{kind}_names") or tuple(f"{SYMBOLS[kind]}{i + 1}" for i in range(n))
    unit = getattr(problem, f"{kind}_units") if units else None
    if not unit:
        return tuple(names)
    return tuple(f"{a} [{u}]" if u else a for a, u in zip(names, unit, strict=True))
