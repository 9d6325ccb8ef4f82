"""``main``: run the ``mpc2nn`` command and turn every outcome into an exit code."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence

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
            print(json.dumps(jsonable(result.data), allow_nan=False))
        else:
            print("\n".join(result.text))
        sys.stdout.flush()
    except BrokenPipeError:  # the reader went away (``mpc2nn ... | head``): silence the rest, keep the code
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return result.code
