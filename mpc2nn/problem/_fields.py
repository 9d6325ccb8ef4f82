"""What each field of :class:`~mpc2nn.MPCProblem` is, how problem files write it and how ``.mpc2nn`` files store it.

The one list of the problem's fields: the TOML reader, the command line's documentation table and the
file format iterate over :func:`problem_fields` instead of naming the fields again.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

__all__ = ["FieldSpec", "spec", "problem_fields"]

#: How a problem file (TOML) may write a field.
TOML_KINDS = ("numbers", "integer", "terminal weight", "string", "strings", "boolean", "stage tables", "table", "")
#: How an ``.mpc2nn`` file stores a field: always as an array, as an array / JSON field only when the
#: problem uses it (so files of plain problems keep their layout), as a JSON field, or in parts named by
#: the file format (constraints, terminal polytope, sample box).
STORAGE = ("array", "array if used", "field", "field if used", "parts")


@dataclass(frozen=True)
class FieldSpec:
    """The description of one field of :class:`~mpc2nn.MPCProblem`.

    Attributes
    ----------
    meaning : str
        One line with the shape in symbols, e.g. ``"state matrix, shape (n_x, n_x)"``.
    toml : str
        How a problem file writes it, one of :data:`TOML_KINDS` (``""``: not in problem files).
    required : bool
        The problem file must give it.
    stored : str
        How the file format stores it, one of :data:`STORAGE`.
    used_when : str or None
        For ``"... if used"``: the name of the boolean property of the problem that says it is used.
    """

    meaning: str
    toml: str
    required: bool = False
    stored: str = "array"
    used_when: str | None = None

    def __post_init__(self):
        if self.toml not in TOML_KINDS or self.stored not in STORAGE:
            raise ValueError(f"FieldSpec: unknown toml {self.toml!r} or stored {self.stored!r}")


def spec(meaning: str, toml: str, **kw) -> dict:
    """``metadata`` for :func:`dataclasses.field` holding a :class:`FieldSpec`.

    Parameters
    ----------
    meaning, toml : str
        The :class:`FieldSpec`'s first two attributes.
    **kw
        Its other attributes (``required``, ``stored``, ``used_when``).

    Returns
    -------
    dict
        ``{"mpc2nn": FieldSpec(meaning, toml, **kw)}``.
    """
    return {"mpc2nn": FieldSpec(meaning, toml, **kw)}


def problem_fields(cls) -> tuple[tuple[str, FieldSpec], ...]:
    """``((name, FieldSpec), ...)`` of a dataclass whose fields carry specs, in declaration order.

    Parameters
    ----------
    cls : type
        A dataclass whose fields carry a :class:`FieldSpec` in their metadata (made by
        :func:`spec`), e.g. :class:`~mpc2nn.MPCProblem`; fields without one are left out.

    Returns
    -------
    tuple of (str, FieldSpec)

    Examples
    --------
    >>> import mpc2nn
    >>> from mpc2nn.problem import problem_fields
    >>> [name for name, _ in problem_fields(mpc2nn.MPCProblem)][:5]
    ['A', 'B', 'Q', 'R', 'horizon']
    """
    return tuple((f.name, f.metadata["mpc2nn"]) for f in dataclasses.fields(cls) if "mpc2nn" in f.metadata)
