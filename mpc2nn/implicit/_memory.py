"""Memory of the exact solve and of compiling a network: estimates made before anything is allocated."""

from __future__ import annotations

import os

import numpy as np

from ..exceptions import ProblemTooLargeError
from ._compiled import COMPILED_MAX_WORK

__all__ = ["available_memory", "compile_memory", "check_compile_memory", "solve_chunk_size", "SOLVE_CHUNK_BYTES"]

#: Working memory (bytes) one chunk of a batched solve may use at most; larger batches are cut into chunks.
SOLVE_CHUNK_BYTES = 256 * 2**20
#: Samples per chunk where memory allows: chunks of a few hundred samples keep the solve's (chunk, m)
#: temporaries in the processor's cache (measured on the 8-state chain and the double integrator with
#: N = 60: 512 samples per chunk ran 1.3-1.7x faster than 4000 at once, and 4x faster than 64).
SOLVE_CHUNK = 512
#: (m,)-sized float arrays a sample of the solve keeps at once (q, h, λ, s, masks, tolerances, results ...),
#: counted on the solve's code and rounded up.
SOLVE_ROW_ARRAYS = 24
#: Smallest and largest chunk of :func:`solve_chunk_size` (samples).
CHUNK_RANGE = (16, SOLVE_CHUNK)


def available_memory() -> float:
    """Bytes of memory available to this process now (``MemAvailable`` on Linux, else physical memory)."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return float(line.split()[1]) * 1024
    except OSError:  # pragma: no cover - not Linux
        pass
    try:
        return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - no sysconf
        return float("inf")


def _sizes(problem) -> tuple[int, int, int, int, int]:
    """``(n_z, m, n_θ, n_U, prediction entries)`` of the QP of ``problem`` (an upper bound for an MPCProblem)."""
    if hasattr(problem, "H"):  # a CondensedQP
        pred = 0 if problem.Gamma is None else int(np.prod(problem.Gamma.shape))
        return problem.n_z, problem.m, problem.n_theta, problem.n_U, pred
    N, n_x, n_u = int(problem.horizon), problem.n_x, problem.n_u
    fin = lambda v: int(np.isfinite(np.asarray(v, float)).sum())  # noqa: E731
    rows = fin(problem.u_min) + fin(problem.u_max) + fin(problem.x_min) + fin(problem.x_max)
    if problem.has_rate_bounds:
        rows += fin(problem.du_min) + fin(problem.du_max)
    rows += sum(con.d.shape[0] for con in problem.constraints)
    m = N * rows
    if problem.terminal_constraint is not None:
        m += problem.terminal_constraint.d.shape[0]
    n_z = N * n_u
    if problem.soft:
        n_z += N * n_x
        m += N * n_x
    n_theta = n_x * (2 if problem.tracking else 1) + n_u * (int(problem.uses_previous_input) + int(problem.tracking))
    return n_z, m, n_theta, N * n_u, N * n_x * n_z


def compile_memory(problem) -> float:
    """Estimated peak bytes of :func:`mpc2nn.compile` on ``problem`` (MPCProblem or CondensedQP).

    Counted: the condensed QP (prediction ``Γ``, ``H``, ``G``, ``E``), its cached derived
    matrices (``L⁻¹``, ``H⁻¹``, ``M = G H⁻¹ Gᵀ``, ``E + G H⁻¹ F``) and the network
    (``W`` (m, m), ``W_f``, ``Y``, the solver's ``Ḡ``) and, where the compiled path can run
    (``m · n_z`` within its limit), its ``|Ḡ| |Ḡ|ᵀ`` (m, m), in float64; a lower bound of what
    numpy will ask for, since temporaries come on top.

    Parameters
    ----------
    problem : MPCProblem or CondensedQP
        The problem to compile (an MPCProblem is sized without condensing it).

    Returns
    -------
    float
        Bytes.
    """
    n_z, m, n_theta, n_U, pred = _sizes(problem)
    square = 3 if m * n_z <= COMPILED_MAX_WORK else 2
    entries = pred + 3 * n_z * n_z + square * m * m + m * (3 * n_z + n_U + 3 * n_theta)
    return 8.0 * entries


def check_compile_memory(problem, memory_limit: float | None) -> None:
    """Refuse, with the numbers, a problem whose network would not fit in ``memory_limit`` bytes."""
    limit = available_memory() if memory_limit is None else float(memory_limit)
    need = compile_memory(problem)
    if need > limit:
        n_z, m, _, _, _ = _sizes(problem)
        raise ProblemTooLargeError(
            f"compile: the network of '{getattr(problem, 'name', 'qp')}' (m = {m} constraint rows, n_z = {n_z} "
            f"decision variables) needs about {_human(need)} (dense m × m matrices W and M), more than the "
            f"{_human(limit)} {'available' if memory_limit is None else 'allowed (memory_limit)'}; shorten the "
            "horizon, use move blocking, or drop rows that cannot be active (CondensedQP.with_rows)")


def solve_chunk_size(m: int, n_z: int, n_theta: int) -> int:
    """Samples per chunk of a batched solve, so that a chunk's working memory is near :data:`SOLVE_CHUNK_BYTES`."""
    per_sample = 8.0 * (SOLVE_ROW_ARRAYS * (m + 1) + 8 * n_z + 4 * n_theta + n_z * n_z / 4)
    lo, hi = CHUNK_RANGE
    return int(min(hi, max(lo, SOLVE_CHUNK_BYTES // per_sample)))


def _human(n: float) -> str:
    for unit, size in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n:.0f} B"
