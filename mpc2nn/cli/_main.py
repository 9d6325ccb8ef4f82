"""``main``: run the ``mpc2nn`` command and turn every outcome into an exit code."""

from __future__ import annotations

import json
import os
import sys
import warnings
from collections.abc import Sequence

from .._version import __version__
from ..exceptions import Mpc2nnError
from ._output import jsonable
from ._parser import build_parser

__all__ = ["main"]


def _error_line(exc: BaseException) -> str:
    if isinstance(exc, FileNotFoundError):
        return f"no such file: {exc.filename}"
    if isinstance(exc, OSError) and exc.filename is not None:
        return f"{exc.filename}: {exc.strerror}"
    return " ".join(str(exc).split())


def _warning_line(message, category, filename, lineno, file=None, line=None) -> None:
    """A warning as one line ``warning: ...`` on stderr (no file name, no source line)."""
    print(f"warning: {' '.join(str(message).split())}", file=sys.stderr if file is None else file)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``mpc2nn`` command.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments without the program name (default ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit code: 0 success, 1 a check failed (or an internal error: a bug, reported
        as one line that says so; ``--debug`` shows its traceback), 2 a user error
        (reported as one line on stderr, no traceback), 130 interrupted. Warnings are
        one line each (``warning: ...``).

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
    debug = bool(getattr(args, "debug", False))
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _warning_line
            result = args.run(args)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except (Mpc2nnError, OSError) as exc:
        if debug:
            raise
        print(f"error: {_error_line(exc)}", file=sys.stderr)
        return 2
    except Exception as exc:  # not the user's fault: a bug; one line, and how to see more
        if debug:
            raise
        print(f"error: internal error ({type(exc).__name__}: {_error_line(exc)}); this is a bug in mpc2nn "
              f"{__version__}: please report it with the command line, and rerun it with --debug for the "
              "traceback", file=sys.stderr)
        return 1
    try:
        if args.json:
            print(json.dumps(jsonable(result.data), allow_nan=False))
        else:
            print("\n".join(result.text))
        sys.stdout.flush()
    except BrokenPipeError:  # the reader went away (``mpc2nn ... | head``): silence the rest, keep the code
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return result.code
