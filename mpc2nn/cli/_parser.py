"""The argument parser of the ``mpc2nn`` command."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from pathlib import Path

from .. import systems
from .._version import __version__
from ..reference import REFERENCE_SOLVERS
from ._commands import (
    VALIDATE_TOL,
    cmd_bench,
    cmd_compile,
    cmd_converse,
    cmd_demo,
    cmd_export,
    cmd_simulate,
    cmd_unravel,
    cmd_validate,
    cmd_verify,
)
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


def _nonnegative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {value}")
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


#: The reference solvers validate offers: those independent of the exact solve it checks.
_INDEPENDENT = tuple(k for k, r in REFERENCE_SOLVERS.items() if r.independent)
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
    common.add_argument("--debug", action="store_true",
                        help="let an internal error end with its Python traceback (for bug reports)")
    parser = argparse.ArgumentParser(
        prog="mpc2nn", description="Linear MPC as exact implicit ReLU networks: compile, validate, simulate, "
        "benchmark, unravel, export and map back (converse).",
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
    p.add_argument("-o", "--output", type=Path, help="save the network to this .mpc2nn file (missing folders are "
                   "created)")
    p.add_argument("--alpha", type=_float_at_least(0.0, strict=True),
                   help="step size α > 0 of the network (default 1/λmax(G H⁻¹ Gᵀ))")

    p = add("validate", cmd_validate, "Compare the exact implicit network with a reference solver on sampled "
            "feasible states, and say who is wrong where they disagree.",
            "exit code 1 unless the network is right on every state: it agrees with the reference within "
            "--tol, or the states where it does not are shown to be the reference's fault\n"
            "example: mpc2nn validate examples/problems/quadcopter.toml --samples 500")
    p.add_argument("problem", metavar="PROBLEM", help=_PROBLEM_HELP)
    p.add_argument("--samples", type=_positive_int, default=1000, help="number of states (default 1000)")
    p.add_argument("--seed", type=_nonnegative_int, default=0, help="seed of the sampling (default 0)")
    p.add_argument("--reference", choices=_INDEPENDENT, default="osqp",
                   help="reference solver: " + "; ".join(f"{k}: {REFERENCE_SOLVERS[k].description}" for k in
                                                         _INDEPENDENT)
                   + " (default osqp). Where it disagrees with the network, the states are solved again by "
                   "the certified exact solve, DAQP and a tighter OSQP run, and the report says who is wrong")
    p.add_argument("--tol", type=_float_at_least(0.0, strict=False), default=VALIDATE_TOL,
                   help=f"largest accepted ‖U - U_ref‖∞ (default {VALIDATE_TOL:g})")

    p = add("simulate", cmd_simulate, "Run the exact network, MPC by OSQP, or both, in closed loop with the "
            "problem's model.", "exit code 1 if a controller finds no usable input and the loop stops\n"
            "example: mpc2nn simulate builtin:drummond2024_corrected --x0 -200 -200 --steps 25 --controller both "
            "--plot loop.png")
    p.add_argument("problem", metavar="PROBLEM", help=_PROBLEM_HELP)
    p.add_argument("--x0", type=float, nargs="+", required=True, metavar="X", help="initial state, n_x numbers")
    p.add_argument("--steps", type=_positive_int, default=25, help="number of steps (default 25)")
    p.add_argument("--controller", choices=("implicit", "mpc", "both"), default="implicit",
                   help="implicit: the exact implicit network (default); mpc: OSQP; both: the two side by side, "
                   "with their largest difference")
    p.add_argument("--plot", type=Path, help="write states, inputs (and outputs) over time to this image, one "
                   "panel per signal, in seconds where the problem has dt (e.g. loop.png); with --controller both "
                   "the two loops overlaid and their difference")

    p = add("bench", cmd_bench, "Throughput of the exact batched solve against DAQP and OSQP on the same "
            "states.", "example: mpc2nn bench builtin:quadcopter --samples 2000")
    p.add_argument("problem", metavar="PROBLEM", help=_PROBLEM_HELP)
    p.add_argument("--samples", type=_positive_int, default=1000, help="number of states (default 1000)")
    p.add_argument("--seed", type=_nonnegative_int, default=0, help="seed of the sampling (default 0)")
    p.add_argument("--repeats", type=_positive_int, default=3, help="runs per solver, median taken (default 3)")

    p = add("unravel", cmd_unravel, "Unravel the implicit network into an explicit feed-forward ReLU network "
            "(needs torch).", "with --tol: the depth is chosen on sampled states (uniform, near active-set "
            "switches and the feasible-set boundary) and checked on held-out ones; exit code 1 if the tolerance "
            "is not met (refused, or exceeded on the test states). PASS is printed only where the a-posteriori "
            "bound certifies the tolerance on every test state. With --exact: exit code 1 if the partition is "
            "incomplete or the proof fails.\n"
            "example: mpc2nn unravel builtin:drummond2024_corrected --tol 1e-6 -o explicit.mpc2nn\n"
            "         mpc2nn unravel builtin:double_integrator --exact -o exact.mpc2nn")
    p.add_argument("problem", metavar="PROBLEM", help=_PROBLEM_HELP)
    how = p.add_mutually_exclusive_group(required=True)
    how.add_argument("--depth", type=_positive_int, help="number of layers J")
    how.add_argument("--tol", type=_float_at_least(0.0, strict=True),
                     help="choose the depth for this max error (checked on held-out states)")
    how.add_argument("--exact", action="store_true",
                     help="the exact first-input network of the critical regions over the problem's sample box, "
                          "proven by LP (exit code 1 if the partition is incomplete or the proof fails)")
    p.add_argument("--max-regions", type=_positive_int, default=None,
                   help="with --exact: budget of critical regions (default mpc2nn.regions.DEFAULT_MAX_REGIONS)")
    p.add_argument("--time-limit", type=_float_at_least(0.0, strict=True), default=None,
                   help="with --exact: seconds for the enumeration (default mpc2nn.regions.DEFAULT_TIME_LIMIT)")
    p.add_argument("--method", choices=_UNRAVEL_METHODS, default="admm",
                   help="construction (default admm: ADMM on diagonally scaled rows, options tuned)")
    p.add_argument("--max-depth", type=_positive_int, default=20000,
                   help="largest depth tried for --tol before refusing (default 20000)")
    p.add_argument("--dtype", choices=("float64", "float32"), default="float64",
                   help="precision of the network's weights and arithmetic (default float64)")
    p.add_argument("--samples", type=_positive_int, default=1000,
                   help="uniform states for choosing the depth and (others) for testing (default 1000)")
    p.add_argument("--seed", type=_nonnegative_int, default=0, help="seed of the sampling (default 0)")
    p.add_argument("-o", "--output", type=Path,
                   help="save the explicit network to this .mpc2nn file (missing folders are created)")

    p = add("export", cmd_export, "Export a saved explicit network to ONNX, TorchScript or C.",
            "example: mpc2nn export explicit.mpc2nn --format onnx -o controller.onnx\n"
            "         mpc2nn export explicit.mpc2nn --format c --dtype float32 -o controller/")
    p.add_argument("file", metavar="FILE", help="a .mpc2nn file written by `mpc2nn unravel -o`")
    p.add_argument("--format", choices=("onnx", "torchscript", "c"), required=True,
                   help="onnx: a graph of MatMul/Add/Sub/Mul/Relu; torchscript: a traced module; c: a folder "
                   "with mpc2nn_control.c and .h, plain loops, static weights, no dependencies")
    p.add_argument("--dtype", choices=("float64", "float32"), default="float64",
                   help="arithmetic of the exported network (default float64; float32 for targets without "
                   "double precision: its error against MPC is then of float32's size, check it)")
    p.add_argument("-o", "--output", type=Path, required=True,
                   help="file to write (a folder for --format c); missing folders are created")

    p = add("converse", cmd_converse, "The converse map: is a network MPC-like (the implicit network of some QP), "
            "and which QP (and, with --mpc, which MPC weights) it comes from.",
            "exit code 1 if the network is not MPC-like (or, with --mpc, the recovered MPC does not reproduce it)\n"
            "example: mpc2nn converse net.mpc2nn --mpc -o recovered.mpc2nn\n"
            "         mpc2nn converse weights.npz --mpc --model builtin:double_integrator")
    p.add_argument("network", metavar="NETWORK", help="a saved implicit network or any PROBLEM (compiled first), "
                   "or a .npz of weights W (m, m), Y (m, n_x), b (m,), W_f (n_U, m), Y_f (n_U, n_x)")
    p.add_argument("--mpc", action="store_true", help="also recover MPC weights Q, R, P and constraints on the "
                   "model (needs cvxpy: pip install 'mpc2nn[converse]')")
    p.add_argument("--model", metavar="PROBLEM", help="the model (A, B, horizon) for --mpc when NETWORK is a "
                   "weights file")
    p.add_argument("--samples", type=_positive_int, default=100,
                   help="states on which --mpc checks the recovered MPC against the network (default 100)")
    p.add_argument("--seed", type=int, default=0, help="seed of those states (default 0)")
    p.add_argument("-o", "--output", type=Path, help="save the recovered QP (with --mpc: the MPC problem, where "
                   "one was read) to this .mpc2nn file")

    p = add("verify", cmd_verify, "Prove the worst-case error of a ReLU network against the MPC law over a box "
            "of states, and its input-bound violation (needs torch; MILPs by HiGHS).",
            "exit code 1 if the bounds are not proven and closed within the time limit\n"
            "example: mpc2nn verify controller.onnx builtin:double_integrator --box -5 -2 5 2\n"
            "cluster: --scheduler tcp://HOST:8786 (a running dask scheduler) or --workers K (a local cluster)")
    p.add_argument("network", metavar="NETWORK", help="an .onnx file (mpc2nn export --format onnx) or a .mpc2nn "
                   "file of an explicit network (mpc2nn unravel -o)")
    p.add_argument("problem", metavar="PROBLEM", help=_PROBLEM_HELP)
    p.add_argument("--box", type=float, nargs="+", metavar="B",
                   help="the states verified: n_θ lower bounds then n_θ upper bounds (default the sample box)")
    p.add_argument("--tol", type=_float_at_least(0.0, strict=False), default=1e-9,
                   help="absolute gap at which the bound counts as closed (default 1e-9)")
    p.add_argument("--rtol", type=_float_at_least(0.0, strict=False), default=1e-3,
                   help="relative gap at which the bound counts as closed (default 1e-3)")
    p.add_argument("--time-limit", type=_float_at_least(0.0, strict=True), default=600.0,
                   help="seconds for the whole verification (default 600)")
    p.add_argument("--scheduler", help="address of a Dask scheduler (tcp://HOST:8786): the regions run there")
    p.add_argument("--workers", type=_positive_int, default=1,
                   help="workers of a local Dask cluster (default 1: in this process)")
    p.add_argument("--samples", type=_positive_int, default=2000, help="states sampled first (default 2000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the sampling (default 0)")
    p.add_argument("--method", choices=("auto", "partition", "kkt"), default="auto",
                   help="partition: a MILP branch and bound per critical region (enumerated first); kkt: no "
                   "partition, the QP's KKT conditions as binaries with proven big-M values; auto (default): "
                   "the partition if its enumeration completes within half the time limit, else kkt")

    p = add("demo", cmd_demo, "The quick-start demo: the paper's corrected example as an exact network, "
            "validated against OSQP, closed loop plotted.", "example: mpc2nn demo --output out/ --small")
    p.add_argument("--output", type=Path, default=Path("out"), help="folder for demo.png (default out)")
    p.add_argument("--samples", type=_positive_int, default=1000, help="number of sampled states (default 1000)")
    p.add_argument("--small", action="store_true", help="a fast run with 50 states")
    return parser
