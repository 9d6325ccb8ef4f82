"""Who is wrong where a controller and its reference solver disagree: :func:`cross_check`.

A :class:`ValidationReport` compares a controller with one reference solver. Where the two
disagree (an error above the tolerance, or a different feasibility verdict), that alone does not
say which one is wrong: OSQP, the default reference, is a first-order method whose polishing can
fail. :func:`cross_check` solves those states again with mpc2nn's exact solver (certified by its
KKT residuals, or by a checked Farkas certificate where it finds the state infeasible) and with
independent solvers (DAQP, a tighter OSQP run on the condensed QP), and gives each state a
:class:`~mpc2nn.status.Verdict`:

* ``"reference wrong"``: the controller agrees with the certified exact solution, the reference
  does not, and at least one independent cross-check agrees with the exact solution and none
  with the reference;
* ``"controller wrong"``: the controller differs from the certified exact solution;
* ``"undecided"``: no certified exact solution, or the cross-checks side with the reference
  against it (then nobody is blamed: look at the state).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..exceptions import MissingDependencyError, ProblemDefinitionError
from ..implicit import compile
from ..qp import as_qp
from ..reference import REFERENCE_SOLVERS
from ..status import Status, Verdict
from ._validate import ValidationReport

__all__ = ["CrossCheck", "cross_check", "AGREE_TOL", "CROSS_CHECKS"]

#: Default largest ``‖U_a - U_b‖∞`` at which two solutions count as the same (the command line's ``--tol``).
AGREE_TOL = 1e-6
#: The independent solvers tried as cross-checks, in order (the report's own reference is skipped;
#: one that is not installed is left out and named in :attr:`CrossCheck.unavailable`).
CROSS_CHECKS = ("daqp", "osqp-tight", "osqp")


@dataclass(frozen=True, kw_only=True)
class CrossCheck:
    """The verdict on every state where a controller and its reference disagree.

    Made by :func:`cross_check`; ``k`` is the number of disagreeing states (possibly 0). Where
    ``k == 0`` nothing is solved again: ``cross_checks`` and ``unavailable`` are empty and the
    per-state arrays have length 0.

    Attributes
    ----------
    indices : ndarray of int, shape (k,)
        The rows of the report's ``X`` where controller and reference disagree: different
        feasibility claims, or the report's error ``‖U - U_ref‖∞`` above ``tol``.
    verdict : ndarray of str, shape (k,)
        A :class:`~mpc2nn.status.Verdict` value per disagreeing state.
    reason : ndarray of str, shape (k,)
        One line per state saying why it got its verdict (residuals, distances, statuses).
    reference : str
        Name of the report's reference solver (a key of :data:`mpc2nn.reference.REFERENCE_SOLVERS`).
    cross_checks : tuple of str
        Names of the independent solvers that cross-checked, in the order tried (at most two).
    unavailable : tuple of str
        Names of cross-check solvers that were tried but are not installed.
    tol : float
        The agreement tolerance on ``‖U_a - U_b‖∞`` given to :func:`cross_check` (default
        :data:`AGREE_TOL`).
    states : int
        Number of states in the report (rows of its ``X``), disagreeing or not.
    exact_status : ndarray of str, shape (k,)
        Status of mpc2nn's exact solve (:meth:`mpc2nn.ImplicitNetwork.solve`) at each state.
    kkt : ndarray, shape (k,)
        The exact solution's worst relative KKT residual (NaN where the exact solve has no solution).
    controller_error, reference_error : ndarray, shape (k,)
        ``‖U - U_exact‖∞`` of the controller and of the reference, on the columns the report
        compares (NaN where either has no solution).
    cross_errors : dict of str to ndarray, shape (k,)
        Per cross-check solver in ``cross_checks``: ``‖U_name - U_exact‖∞`` (NaN where either has
        no solution).
    cross_status : dict of str to ndarray of str, shape (k,)
        Per cross-check solver in ``cross_checks``: its status at each state.
    reference_status : ndarray of str, shape (k,)
        The reference's status in the report (``"solved"``/``"infeasible"`` from its feasibility
        where the report records no status).
    """

    indices: np.ndarray
    verdict: np.ndarray
    reason: np.ndarray
    reference: str
    cross_checks: tuple
    unavailable: tuple
    tol: float
    states: int
    exact_status: np.ndarray
    kkt: np.ndarray
    controller_error: np.ndarray
    reference_error: np.ndarray
    cross_errors: dict
    cross_status: dict
    reference_status: np.ndarray

    @property
    def controller_right(self) -> bool:
        """The controller was right wherever it was questioned: every disagreement is the reference's fault."""
        return bool(np.all(self.verdict == Verdict.REFERENCE_WRONG))

    def count(self, verdict: str) -> int:
        """Number of disagreeing states with this verdict.

        Parameters
        ----------
        verdict : str or Verdict
            A :class:`~mpc2nn.status.Verdict` (or its string value, e.g. ``"reference wrong"``).

        Returns
        -------
        int
            How many of the ``k`` disagreeing states have it (0 for an unknown string).
        """
        return int(np.sum(self.verdict == verdict))

    def where(self, verdict: str) -> np.ndarray:
        """The state indices with this verdict.

        Parameters
        ----------
        verdict : str or Verdict
            A :class:`~mpc2nn.status.Verdict` (or its string value, e.g. ``"controller wrong"``).

        Returns
        -------
        ndarray of int, shape (j,)
            The rows of the report's ``X`` (entries of :attr:`indices`) with that verdict, in order.
        """
        return self.indices[self.verdict == verdict]

    def details(self) -> list[dict]:
        """One dict per disagreeing state (index, verdict, reason, statuses, errors), e.g. for JSON output."""
        out = []
        for j, i in enumerate(self.indices):
            out.append(dict(index=int(i), verdict=str(self.verdict[j]), reason=str(self.reason[j]),
                            exact_status=str(self.exact_status[j]), kkt=float(self.kkt[j]),
                            reference_status=str(self.reference_status[j]),
                            controller_error=float(self.controller_error[j]),
                            reference_error=float(self.reference_error[j]),
                            cross_checks={n: dict(status=str(self.cross_status[n][j]),
                                                  error=float(self.cross_errors[n][j])) for n in self.cross_checks}))
        return out

    def summary(self, max_states: int = 10) -> str:
        """A verdict count and one line per disagreeing state (the first ``max_states``).

        Parameters
        ----------
        max_states : int
            Most states listed one per line (default 10); the rest are counted in a last line.

        Returns
        -------
        str
            Several lines; one line saying they agree where no state disagrees.
        """
        if not self.indices.size:
            return f"controller and {_label(self.reference)} agree within {self.tol:g} on all {self.states} states"
        counts = ", ".join(f"{self.count(v)} {v}" for v in Verdict if self.count(v))
        checks = ", ".join(map(_label, self.cross_checks)) or "nothing else"
        lines = [f"{self.indices.size} of {self.states} states disagree with {_label(self.reference)} (tolerance "
                 f"{self.tol:g}): {counts}; cross-checked by the certified exact solve and {checks}"
                 + (f" ({', '.join(self.unavailable)} not installed)" if self.unavailable else "")]
        for j in range(min(self.indices.size, max_states)):
            lines.append(f"  state {int(self.indices[j])}: {self.verdict[j]}: {self.reason[j]}")
        if self.indices.size > max_states:
            lines.append(f"  ... {self.indices.size - max_states} more (see --json or CrossCheck.details())")
        return "\n".join(lines)

    def __repr__(self) -> str:
        counts = ", ".join(f"{self.count(v)} {v}" for v in Verdict if self.count(v)) or "none"
        return (f"CrossCheck({self.indices.size} of {self.states} states disagree with {_label(self.reference)}: "
                f"{counts})")


def _err(Ua, fa, Ub, fb) -> np.ndarray:
    """``‖Ua - Ub‖∞`` per row where both have a solution, NaN elsewhere."""
    out = np.full(Ua.shape[0], np.nan)
    both = fa & fb
    out[both] = np.abs(Ua[both] - Ub[both]).max(axis=1, initial=0.0)
    return out


def _agrees(err, fa, fb, tol) -> np.ndarray:
    """Same verdict: both without a solution, or both with one within ``tol``."""
    with np.errstate(invalid="ignore"):
        return (~fa & ~fb) | (fa & fb & (err <= tol))


def _label(name: str) -> str:
    return REFERENCE_SOLVERS[name].label or name if name in REFERENCE_SOLVERS else name


def _describe(name: str, err: float, feasible: bool, status: str) -> str:
    name = _label(name)
    if not feasible:
        return f"{name} finds no solution ({status})"
    return f"{name} is {err:.2e} from it" + ("" if status == Status.SOLVED else f" ({status})")


def cross_check(report: ValidationReport, problem, *, tol: float = AGREE_TOL, solvers=None) -> CrossCheck:
    """Say who is wrong on every state where ``report``'s controller and reference disagree.

    Parameters
    ----------
    report : ValidationReport
        From :func:`mpc2nn.validate`.
    problem : MPCProblem, CondensedQP or ImplicitNetwork
        The problem of the report.
    tol : float
        Largest ``‖U_a - U_b‖∞`` at which two solutions agree (also what counts as a disagreement).
    solvers : sequence of str, optional
        Names of :data:`mpc2nn.reference.REFERENCE_SOLVERS` to cross-check with (default
        :data:`CROSS_CHECKS` without the report's reference; those not installed are skipped).

    Returns
    -------
    CrossCheck

    Examples
    --------
    >>> import mpc2nn
    >>> prob = mpc2nn.systems.drummond2024()
    >>> X = mpc2nn.sample_states(prob, 20)
    >>> report = mpc2nn.validate(mpc2nn.compile(prob), prob, X)
    >>> mpc2nn.cross_check(report, prob).indices.size    # nothing to decide: they agree
    0
    """
    qp = as_qp(problem)
    cols = report.U.shape[1]
    with np.errstate(invalid="ignore"):
        bad = (report.feasible != report.feasible_ref) | (report.error > tol) | (report.violation > tol)
    idx = np.flatnonzero(bad)
    X = report.X[idx]
    names = [n for n in (CROSS_CHECKS if solvers is None else solvers) if n != report.reference]
    unknown = [n for n in names if n not in REFERENCE_SOLVERS]
    if unknown:
        raise ProblemDefinitionError(f"solvers: unknown reference solvers {unknown}; known: {list(REFERENCE_SOLVERS)}")
    exact = compile(qp).solve(X) if idx.size else None
    k = idx.size
    empty = np.zeros(0)
    if exact is None:
        return CrossCheck(indices=idx, verdict=np.zeros(0, dtype="<U16"), reason=np.zeros(0, dtype="<U8"),
                          reference=report.reference, cross_checks=(), unavailable=(), tol=tol,
                          states=report.X.shape[0], exact_status=empty.astype(str), kkt=empty,
                          controller_error=empty, reference_error=empty, cross_errors={}, cross_status={},
                          reference_status=empty.astype(str))
    U_e, f_e = exact.U[:, :cols], exact.status == Status.SOLVED
    certified = f_e | (exact.status == Status.INFEASIBLE)
    U_c, f_c = report.U[idx], report.feasible[idx]
    U_r, f_r = report.U_ref[idx], report.feasible_ref[idx]
    ref_status = (report.reference_status[idx] if report.reference_status is not None
                  else np.where(f_r, str(Status.SOLVED), str(Status.INFEASIBLE)))
    cross_U, cross_f, cross_status, used, missing = {}, {}, {}, [], []
    for name in names:
        try:
            sol = REFERENCE_SOLVERS[name].solve(qp, X)
        except MissingDependencyError:
            missing.append(name)
            continue
        used.append(name)
        cross_U[name], cross_f[name], cross_status[name] = sol.U[:, :cols], sol.feasible, sol.status.astype(str)
        if len(used) == 2:  # two independent cross-checks are enough
            break
    e_c, e_r = _err(U_c, f_c, U_e, f_e), _err(U_r, f_r, U_e, f_e)
    e_x = {n: _err(cross_U[n], cross_f[n], U_e, f_e) for n in used}
    ctrl_ok, ref_ok = _agrees(e_c, f_c, f_e, tol), _agrees(e_r, f_r, f_e, tol)
    pro, con = np.zeros(k, int), np.zeros(k, int)  # cross-checks agreeing with the exact solution / the reference
    for n in used:
        pro += _agrees(e_x[n], cross_f[n], f_e, tol)
        con += _agrees(_err(cross_U[n], cross_f[n], U_r, f_r), cross_f[n], f_r, tol)
    kkt = np.where(f_e, exact.kkt.worst, np.nan)
    verdict = np.full(k, str(Verdict.UNDECIDED), dtype=object)
    reason = np.empty(k, dtype=object)
    for j in range(k):
        exact_txt = (f"the exact solution is certified (relative KKT residual {kkt[j]:.1e})" if f_e[j]
                     else "the exact solve proves it infeasible (Farkas certificate)")
        ref_txt = _describe(report.reference, e_r[j], bool(f_r[j]), ref_status[j])
        checks = "; ".join(_describe(n, e_x[n][j], bool(cross_f[n][j]), cross_status[n][j]) for n in used)
        if not certified[j]:
            reason[j] = f"the exact solve did not certify this state ({exact.status[j]}: {exact.reason[j]})"
        elif not ctrl_ok[j]:
            verdict[j] = str(Verdict.CONTROLLER_WRONG)
            reason[j] = (f"{exact_txt}; the controller is {e_c[j]:.2e} from it" if f_c[j] and f_e[j]
                         else f"{exact_txt}; the controller {'claims a solution' if f_c[j] else 'finds none'}")
        elif ref_ok[j]:
            reason[j] = f"controller and {_label(report.reference)} are each within {tol:g} of the exact solution"
        elif pro[j] >= 1 and con[j] == 0:
            verdict[j] = str(Verdict.REFERENCE_WRONG)
            reason[j] = f"{exact_txt}; {ref_txt}; {checks}"
        elif con[j] >= 1:
            reason[j] = f"{exact_txt}, but {checks} side with {_label(report.reference)} ({ref_txt})"
        elif ref_status[j] != Status.SOLVED and f_e[j]:
            verdict[j] = str(Verdict.REFERENCE_WRONG)
            reason[j] = f"{exact_txt}; {ref_txt}, its own status admits it; no cross-check decided"
        else:
            reason[j] = f"{exact_txt}; {ref_txt}; no cross-check decided" + (f" ({checks})" if checks else "")
    return CrossCheck(indices=idx, verdict=verdict.astype(str), reason=reason.astype(str), reference=report.reference,
                      cross_checks=tuple(used), unavailable=tuple(missing), tol=float(tol),
                      states=report.X.shape[0], exact_status=exact.status.astype(str), kkt=kkt,
                      controller_error=e_c, reference_error=e_r, cross_errors=e_x, cross_status=cross_status,
                      reference_status=ref_status)
