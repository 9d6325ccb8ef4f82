"""Progress bars and chunked sampling and validation for the command line."""

from __future__ import annotations

import dataclasses
import sys
import time
from typing import Any, TextIO

import numpy as np

from ..evaluation import ValidationReport, validate
from ..exceptions import ProblemDefinitionError
from ..problem import MPCProblem
from ..qp import CondensedQP, KKTResiduals
from ..sampling import sample_parameters
from ._output import CommandLineError

__all__ = ["Progress", "chunks", "sample", "validate_in_chunks", "report_data", "CHUNK"]


#: States per chunk of sampling, validation and benchmark work (one progress update each).
CHUNK = 256


class Progress:
    """Text progress bar on stderr; redrawn in place on a terminal, one final line otherwise."""

    def __init__(self, label: str, total: int, enabled: bool, stream: TextIO | None = None):
        self.label, self.total, self.enabled = label, max(int(total), 1), enabled
        self.stream = sys.stderr if stream is None else stream
        self.done, self.start = 0, time.perf_counter()
        self.live = enabled and self.stream.isatty()

    def _line(self) -> str:
        width = 30
        fill = int(width * self.done / self.total)
        return (f"{self.label:<16} [{'#' * fill}{'.' * (width - fill)}] {self.done}/{self.total} "
                f"{time.perf_counter() - self.start:.1f}s")

    def advance(self, k: int) -> None:
        self.done = min(self.total, self.done + k)
        if self.live:
            self.stream.write("\r" + self._line())
            self.stream.flush()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc_info) -> None:
        if self.enabled and exc_info[0] is None:
            self.stream.write(("\r" if self.live else "") + self._line() + "\n")
            self.stream.flush()
        elif self.live:
            self.stream.write("\n")


def chunks(n: int) -> list[slice]:
    return [slice(i, min(i + CHUNK, n)) for i in range(0, n, CHUNK)]


def sample(problem: MPCProblem | CondensedQP, n: int, seed: int, show: bool, label: str = "sampling"
            ) -> np.ndarray:
    """``n`` feasible parameter vectors θ, drawn in chunks (chunk k seeded from ``(seed, k)``): the state from
    the problem's sample box, a previous input and references (where the problem takes them) from the input
    bounds and the sample box (:func:`mpc2nn.sampling.parameter_box`).
    """
    if problem.sample_box is None:
        raise CommandLineError(f"problem '{problem.name}' has no sample box to draw states from; "
                               "add a [sample_box] table with lo and hi to the problem file")
    pieces = chunks(n)
    seeds = np.random.SeedSequence(seed).generate_state(len(pieces), dtype=np.uint64)
    parts = []
    with Progress(label, n, show) as bar:
        for sl, s in zip(pieces, seeds, strict=True):
            try:
                parts.append(sample_parameters(problem, sl.stop - sl.start, seed=int(s)))
            except ProblemDefinitionError as exc:
                if "max_draws" not in str(exc):
                    raise
                # the library's advice names its max_draws argument, which the command line does not have
                raise CommandLineError(
                    f"{str(exc).split(';')[0]}: the problem is feasible on too little of its sample box; move or "
                    "shrink [sample_box] in the problem file to where feasible states are (sample_box.lo, "
                    "sample_box.hi), or check the constraints") from None
            bar.advance(sl.stop - sl.start)
    return np.concatenate(parts)


def validate_in_chunks(controller: Any, qp: CondensedQP, X: np.ndarray, reference: str, show: bool) -> ValidationReport:
    """:func:`mpc2nn.validate` chunk by chunk, the reports joined into one."""
    parts = []
    with Progress("validating", X.shape[0], show) as bar:
        for sl in chunks(X.shape[0]):
            parts.append(validate(controller, qp, X[sl], reference=reference))
            bar.advance(sl.stop - sl.start)
    if len(parts) == 1:
        return parts[0]
    join = {f.name: np.concatenate([getattr(p, f.name) for p in parts])
            for f in dataclasses.fields(ValidationReport) if f.name not in ("kkt", "reference", "compared")
            and getattr(parts[0], f.name) is not None}
    kkt = None if parts[0].kkt is None else KKTResiduals(
        **{f.name: np.concatenate([getattr(p.kkt, f.name) for p in parts]) for f in dataclasses.fields(KKTResiduals)})
    return ValidationReport(**join, kkt=kkt, reference=parts[0].reference, compared=parts[0].compared)


def report_data(report: ValidationReport, tol: float) -> dict:
    """The JSON fields of a validation; ``passed`` needs error, feasibility agreement and violation within ``tol``."""
    both = report.feasible & report.feasible_ref
    err = report.error[both]
    violation = report.violation[both]
    max_violation = float(np.nanmax(violation)) if np.isfinite(violation).any() else None
    return dict(
        reference=report.reference, compared=report.compared, states=int(report.X.shape[0]),
        feasible_reference=int(report.feasible_ref.sum()),
        feasibility_agreement=int(report.feasibility_agrees.sum()),
        max_error=report.max_error, median_error=float(np.median(err)) if err.size else None,
        max_violation=max_violation,
        max_kkt_residual=float(report.kkt.worst[both].max()) if report.kkt is not None and both.any() else None,
        tol=tol, passed=bool(report.max_error <= tol and report.feasibility_agrees.all()
                             and (max_violation is None or max_violation <= tol)))
