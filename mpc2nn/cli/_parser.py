"""The argument parser of the ``mpc2nn`` command."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from pathlib import Path

from .. import systems
from .._version import __version__
from ._commands import cmd_bench, cmd_compile, cmd_demo, cmd_export, cmd_simulate, cmd_unravel, cmd_validate
from ._output import Result

__all__ = ["build_parser"]


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


#: The pure constructions of ``mpc2nn unravel --method`` (a hybrid network is not a file the format stores).
_UNRAVEL_METHODS = ("admm", "momentum", "paper", "lmi")

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

    def add(name: str, run: Callable[[argparse.Namespace], Result], summary: str,
            epilog: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, parents=[common], help=summary, description=summary, epilog=epilog,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        p.set_defaults(run=run)
        return p

    p = add("compile", cmd_compile, "Compile a problem into its implicit ReLU network; report its size and "
            "well-posedness.", "example: mpc2nn compile builtin:double_integrator -o di.mpc2nn")
    p.add_argument("problem", metavar="PROBLEM", help=_PROBLEM_HELP)
    p.add_argument("-o", "--output", type=Path,
                   help="save the network to this .mpc2nn file (missing folders are created)")
    p.add_argument("--alpha", type=_float_at_least(0.0, strict=True),
                   help="step size α > 0 of the network (default 1/λmax(G H⁻¹ Gᵀ))")

    p = add("validate", cmd_validate, "Compare the exact implicit network with a reference solver on sampled "
            "feasible states.", "exit code 1 if the max error exceeds --tol or feasibility disagrees\n"
            "example: mpc2nn validate examples/problems/quadcopter.toml --samples 500")
    p.add_argument("problem", metavar="PROBLEM", help=_PROBLEM_HELP)
    p.add_argument("--samples", type=_positive_int, default=1000, help="number of states (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the sampling (default 0)")
    p.add_argument("--reference", choices=("osqp", "daqp", "exact"), default="osqp",
                   help="reference solver (default osqp, tolerances 1e-10 with polishing)")
    p.add_argument("--tol", type=_float_at_least(0.0, strict=False), default=1e-6,
                   help="largest accepted ‖U - U_ref‖∞ (default 1e-6)")

    p = add("simulate", cmd_simulate, "Run the exact network (or MPC by OSQP) in closed loop with the "
            "problem's model.", "exit code 1 if the controller finds no usable input and the loop stops\n"
            "example: mpc2nn simulate builtin:drummond2024_corrected --x0 -200 -200 --steps 25 --plot loop.png")
    p.add_argument("problem", metavar="PROBLEM", help=_PROBLEM_HELP)
    p.add_argument("--x0", type=float, nargs="+", required=True, metavar="X", help="initial state, n_x numbers")
    p.add_argument("--steps", type=_positive_int, default=25, help="number of steps (default 25)")
    p.add_argument("--controller", choices=("implicit", "mpc"), default="implicit",
                   help="implicit: the exact implicit network (default); mpc: OSQP")
    p.add_argument("--plot", type=Path, help="write states and inputs over time to this image (e.g. loop.png)")

    p = add("bench", cmd_bench, "Throughput of the exact batched solve against DAQP and OSQP on the same "
            "states.", "example: mpc2nn bench builtin:quadcopter --samples 2000")
    p.add_argument("problem", metavar="PROBLEM", help=_PROBLEM_HELP)
    p.add_argument("--samples", type=_positive_int, default=1000, help="number of states (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the sampling (default 0)")
    p.add_argument("--repeats", type=_positive_int, default=3, help="runs per solver, median taken (default 3)")

    p = add("unravel", cmd_unravel, "Unravel the implicit network into an explicit feed-forward ReLU network "
            "(needs torch).", "with --tol: the depth is chosen on sampled states (uniform, near active-set "
            "switches and the feasible-set boundary) and checked on held-out ones; exit code 1 if the tolerance "
            "is not met (refused, or exceeded on the test states). PASS is printed only where the a-posteriori "
            "bound certifies the tolerance on every test state.\n"
            "example: mpc2nn unravel builtin:drummond2024_corrected --tol 1e-6 -o explicit.mpc2nn")
    p.add_argument("problem", metavar="PROBLEM", help=_PROBLEM_HELP)
    how = p.add_mutually_exclusive_group(required=True)
    how.add_argument("--depth", type=_positive_int, help="number of layers J")
    how.add_argument("--tol", type=_float_at_least(0.0, strict=True),
                     help="choose the depth for this max error (checked on held-out states)")
    p.add_argument("--method", choices=_UNRAVEL_METHODS, default="admm",
                   help="construction (default admm: ADMM on diagonally scaled rows, options tuned)")
    p.add_argument("--max-depth", type=_positive_int, default=20000,
                   help="largest depth tried for --tol before refusing (default 20000)")
    p.add_argument("--dtype", choices=("float64", "float32"), default="float64",
                   help="precision of the network's weights and arithmetic (default float64)")
    p.add_argument("--samples", type=_positive_int, default=1000,
                   help="uniform states for choosing the depth and (others) for testing (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the sampling (default 0)")
    p.add_argument("-o", "--output", type=Path,
                   help="save the explicit network to this .mpc2nn file (missing folders are created)")

    p = add("export", cmd_export, "Export a saved network to ONNX or TorchScript.",
            "example: mpc2nn export explicit.mpc2nn --format onnx -o controller.onnx")
    p.add_argument("file", metavar="FILE", help="a .mpc2nn file written by `mpc2nn unravel -o`")
    p.add_argument("--format", choices=("onnx", "torchscript", "c"), required=True,
                   help="target format (c: a folder with NAME.c and NAME.h, plain loops, static weights)")
    p.add_argument("-o", "--output", type=Path, required=True, help="file to write (folder for --format c)")

    p = add("demo", cmd_demo, "The quick-start demo: the paper's corrected example as an exact network, "
            "validated against OSQP, closed loop plotted.", "example: mpc2nn demo --output out/ --small")
    p.add_argument("--output", type=Path, default=Path("out"), help="folder for demo.png (default out)")
    p.add_argument("--samples", type=_positive_int, default=1000, help="number of sampled states (default 1000)")
    p.add_argument("--small", action="store_true", help="a fast run with 50 states")
    return parser
