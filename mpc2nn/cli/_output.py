"""What a subcommand hands back, and its JSON form."""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..exceptions import Mpc2nnError

__all__ = ["Result", "jsonable", "fmt", "feature", "CommandLineError", "output_path"]


class CommandLineError(Mpc2nnError, ValueError):
    """A user error found by the command line: a bad problem file, argument or missing feature."""


@dataclass
class Result:
    """What a subcommand hands back to :func:`main`: exit code, JSON payload and human-readable lines."""

    code: int
    data: dict
    text: list[str]


def jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, Path):
        return str(value)
    return value


def fmt(value: float | None, spec: str = ".3e") -> str:
    return "n/a" if value is None else format(value, spec)


def feature(module: str, attr: str, what: str) -> Callable:
    """``module.attr``, or a CommandLineError saying that ``what`` is not available."""
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise CommandLineError(f"{what} is not available in this installation: {exc}") from None


def output_path(path) -> Path:
    """``path`` with its folder created where missing (``-o out/new/net.mpc2nn`` works in a fresh clone); a
    folder that cannot be created stops the command with one line naming the path (call it before long work).
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        reason = ("a file of that name is in the way" if isinstance(exc, (FileExistsError, NotADirectoryError))
                  else exc.strerror or str(exc))
        raise CommandLineError(f"-o {path}: cannot create the output folder {path.parent}: {reason}") from None
    return path
