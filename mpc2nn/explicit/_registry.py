"""The registry of explicit constructions: each one's name, options, network class and tuning ladders.

A construction is one file: it defines a frozen options dataclass (fields left ``None`` are tuned on
sampled states), a network class with ``get_config``/``from_config`` (what the file format stores and
how it rebuilds the network), and registers a :class:`Construction` here. :func:`mpc2nn.unravel`,
the file format and the command line find it by name.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..exceptions import ProblemDefinitionError

__all__ = ["Construction", "ConstructionOptions", "CONSTRUCTIONS", "NETWORK_CLASSES", "register_construction",
           "register_network", "construction", "positive", "in_interval"]


@dataclass(frozen=True, kw_only=True)
class ConstructionOptions:
    """Base of the options classes: fields left ``None`` are tuned by :func:`mpc2nn.unravel`."""

    def tuned(self) -> tuple[str, ...]:
        """Names of the options that are still to be chosen (``None``)."""
        return tuple(f.name for f in dataclasses.fields(self) if getattr(self, f.name) is None)

    def value(self, name: str) -> float:
        """The option ``name`` as a float; a named error while it is still to be tuned (``None``).

        Parameters
        ----------
        name : str
            A field of the options class.

        Returns
        -------
        float
        """
        v = getattr(self, name)
        if v is None:
            raise ProblemDefinitionError(f"{name}: not set; build the network with mpc2nn.unravel, which tunes "
                                         "unset options, or give the option")
        return float(v)

    def with_values(self, **values) -> ConstructionOptions:
        """A copy with some options set (validated again).

        Parameters
        ----------
        **values
            New values of fields of the options class, by name.

        Returns
        -------
        ConstructionOptions
            Of the same class.
        """
        return dataclasses.replace(self, **values)


@dataclass(frozen=True)
class Construction:
    """A registered construction.

    Attributes
    ----------
    name : str
        The ``method=`` name.
    options : type
        The options class (a subclass of :class:`ConstructionOptions`).
    build : callable
        ``(net, qp, kept_rows, depth, dtype, options) -> ExplicitNetwork`` with every option set.
    ladders : callable
        ``qp -> {option: candidates}`` for the options that may be tuned, likeliest first; a value may
        also be a function of the options chosen so far (in the dict's order) returning the candidates.
    summary : str
        One line for listings (``mpc2nn unravel --help``).
    neighbours : callable, optional
        ``(qp, options) -> [options]``: candidates near a tuned one, tried once after the ladder search
        (a finer step than the ladder's).
    """

    name: str
    options: type
    build: Callable[..., Any]
    ladders: Callable[[Any], dict]
    summary: str
    neighbours: Callable[..., list] | None = None


#: The constructions by name, in the order they were registered.
CONSTRUCTIONS: dict[str, Construction] = {}
#: The network classes by the name the file format stores (``cls``), with ``from_config``.
NETWORK_CLASSES: dict[str, Any] = {}


def register_construction(c: Construction) -> Construction:
    """Add ``c`` to :data:`CONSTRUCTIONS` (a name is registered once)."""
    if c.name in CONSTRUCTIONS:
        raise ProblemDefinitionError(f"construction {c.name!r} is registered already")
    CONSTRUCTIONS[c.name] = c
    return c


def register_network(cls: type) -> type:
    """Class decorator: file the network class under its name in :data:`NETWORK_CLASSES`."""
    NETWORK_CLASSES[cls.__name__] = cls
    return cls


def construction(name: str) -> Construction:
    """The construction called ``name``, or a named error listing those that exist."""
    if name not in CONSTRUCTIONS:
        raise ProblemDefinitionError(f"method: expected one of {tuple(CONSTRUCTIONS)} (or 'hybrid'), got {name!r}")
    return CONSTRUCTIONS[name]


def options_for(c: Construction, given: dict) -> ConstructionOptions:
    """``c``'s options from keyword arguments; an option the construction does not have is a named error."""
    names = [f.name for f in dataclasses.fields(c.options)]
    for k in given:
        if k not in names:
            raise ProblemDefinitionError(f"{k}: not an option of method={c.name!r} (its options: "
                                         f"{', '.join(names) or 'none'})")
    return c.options(**given)


def positive(name: str, value, *, allow_none: bool = True) -> float | None:
    """``value`` as a finite float > 0 (``None`` passes when allowed), else a named error."""
    if value is None and allow_none:
        return None
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ProblemDefinitionError(f"{name}: expected a finite number > 0, got {value!r}") from None
    if isinstance(value, (bool, np.bool_)) or not (np.isfinite(v) and v > 0):
        raise ProblemDefinitionError(f"{name}: expected a finite number > 0, got {value!r}")
    return v


def in_interval(name: str, value, lo: float, hi: float, *, closed_lo: bool = True) -> float | None:
    """``value`` as a float in ``[lo, hi)`` (or ``(lo, hi)``); ``None`` passes; else a named error."""
    if value is None:
        return None
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ProblemDefinitionError(f"{name}: expected a number in {'[' if closed_lo else '('}{lo:g}, {hi:g}), "
                                     f"got {value!r}") from None
    ok = (v >= lo if closed_lo else v > lo) and v < hi
    if isinstance(value, (bool, np.bool_)) or not ok:
        raise ProblemDefinitionError(f"{name}: expected a number in {'[' if closed_lo else '('}{lo:g}, {hi:g}), "
                                     f"got {value!r}")
    return v
