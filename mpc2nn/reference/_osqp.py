"""Reference solvers: OSQP (and DAQP) on the same QP. Every OSQP specific lives here.

OSQP settings used by :func:`solve_osqp` (:data:`OSQP_SETTINGS`): absolute and
relative tolerances 1e-10, infeasibility tolerances 1e-10, solution polishing
on, up to 100 000 ADMM iterations, quiet. With polishing, OSQP's solution is
typically exact to ~1e-10; where polishing fails the status says so.
"""

from __future__ import annotations

import _thread
import contextlib
import signal
import sys
import threading

import numpy as np
import scipy.sparse as sp

from .._checks import require
from ..exceptions import ProblemDefinitionError
from ..problem import MPCProblem
from ..qp import CondensedQP, as_qp
from ..status import SOLUTION_PRESENT, Status
from ._solution import ReferenceSolution, blank_results

__all__ = ["OSQPSession", "solve_osqp", "OSQP_SETTINGS", "OSQP_STATUS"]


#: OSQP's statuses (``osqp.SolverStatus`` names) in the status vocabulary. A solved problem whose
#: polishing failed becomes SOLVED_INACCURATE; OSQP_SIGINT (Ctrl-C caught by OSQP) raises KeyboardInterrupt.
OSQP_STATUS = {
    "OSQP_SOLVED": Status.SOLVED,
    "OSQP_SOLVED_INACCURATE": Status.SOLVED_INACCURATE,
    "OSQP_PRIMAL_INFEASIBLE": Status.INFEASIBLE,
    "OSQP_PRIMAL_INFEASIBLE_INACCURATE": Status.INFEASIBLE,
    "OSQP_DUAL_INFEASIBLE": Status.UNBOUNDED,
    "OSQP_DUAL_INFEASIBLE_INACCURATE": Status.UNBOUNDED,
    "OSQP_MAX_ITER_REACHED": Status.ITERATION_LIMIT,
    "OSQP_TIME_LIMIT_REACHED": Status.TIME_LIMIT,
    "OSQP_NON_CVX": Status.FAILED,
    "OSQP_UNSOLVED": Status.FAILED,
}

#: Settings passed to OSQP by :func:`solve_osqp` (OSQP 1.x defaults in brackets): absolute, relative and
#: infeasibility tolerances 1e-10 [1e-3, 1e-3, 1e-4, 1e-4], the accuracy a reference for an exact solver needs;
#: solution polishing on [off] with 10 refinement steps of the polished KKT solve [3], which makes a
#: solution with the right active set exact to about 1e-10; up to 100 000 ADMM iterations [4000], room for
#: ADMM to reach these tolerances (an unreached limit is reported as "iteration limit", not as solved).
OSQP_SETTINGS = dict(eps_abs=1e-10, eps_rel=1e-10, eps_prim_inf=1e-10, eps_dual_inf=1e-10, max_iter=100_000,
                     polishing=True, polish_refine_iter=10, verbose=False, warm_starting=True)


class OSQPSession:
    """A set-up OSQP solver for one QP, reused (and warm-started) across states.

    Safe to use from several threads (calls of :meth:`solve` on one session take turns; OSQP's
    C solves take turns process-wide, see ``_SOLVE_LOCK``).

    Parameters
    ----------
    problem : MPCProblem or CondensedQP
        The problem (condensed first) or its QP.
    form : {"auto", "sparse", "condensed"}
        ``"sparse"`` solves the states-and-inputs form (independent of the
        condensation, so it also checks it); ``"auto"`` uses it where it exists
        (problems condensed by :func:`mpc2nn.condense`), the condensed QP otherwise.
    settings : dict, optional
        Overrides of :data:`OSQP_SETTINGS`.
    """

    def __init__(self, problem: MPCProblem | CondensedQP, *, form: str = "auto", settings: dict | None = None):
        self._osqp = require("osqp", "osqp")
        qp = self.qp = as_qp(problem)
        if not (isinstance(form, str) and form in ("auto", "sparse", "condensed")):
            raise ProblemDefinitionError(f"form: expected 'auto', 'sparse' or 'condensed', got {form!r}")
        use_sparse = form == "sparse" or (form == "auto" and qp.problem is not None and qp.source == "condense")
        opts = dict(OSQP_SETTINGS)
        if settings is not None and not isinstance(settings, dict):
            raise ProblemDefinitionError(f"settings: expected a dict of OSQP settings, got {type(settings).__name__}")
        if settings:
            unknown = set(settings) - set(OSQP_SETTINGS) - {"rho", "sigma", "alpha", "scaling", "adaptive_rho"}
            if unknown:
                raise ProblemDefinitionError(f"settings: unknown OSQP settings {sorted(unknown)}")
            opts.update(settings)
        if use_sparse:
            spf = qp.sparse_form()
            P, A_mat, self._offset = spf.P, spf.A, spf.n_states
            self._vectors = spf.vectors
        else:
            P, A_mat, self._offset = sp.csc_matrix(np.triu(qp.H)), sp.csc_matrix(qp.G), 0
            lower = np.full(qp.m, -np.inf)
            self._vectors = lambda x: (qp.F @ x, lower, qp.w + qp.E @ x)
        self._shape = A_mat.shape
        self._lock = threading.Lock()  # one solve loop at a time per session (OSQP's solver is not reentrant)
        self._solver = self._osqp.OSQP()
        if use_sparse:
            self._to_inputs = lambda z: z[:spf.n_inputs]
        else:
            self._to_inputs = qp.inputs
        q0, l0, u0 = self._vectors(np.zeros(qp.n_theta))
        self._solver.setup(sp.triu(P, format="csc"), q0, A_mat, l0, u0, **opts)

    def solve(self, X) -> ReferenceSolution:
        """Solve at each parameter vector in turn, each warm-started from the previous.

        Parameters
        ----------
        X : array_like, shape (B, n_θ) or (n_θ,)
            Parameters (states for a plain problem). Samples with NaN or infinite entries are
            not solved (status ``"invalid"``).

        Returns
        -------
        ReferenceSolution
        """
        qp, osqp = self.qp, self._osqp
        X = qp.check_parameters(X)
        B = X.shape[0]
        U, feasible, status, times = blank_results(B, qp.n_U)
        table = {getattr(osqp.SolverStatus, name): st for name, st in OSQP_STATUS.items()}
        with self._lock, _quiet_stdout():
            for i in range(B):
                if not np.all(np.isfinite(X[i])):
                    continue
                q, lo, up = self._vectors(X[i])
                self._solver.update(q=q, l=lo, u=up)
                with _SOLVE_LOCK, _sigint_held():
                    res = self._solver.solve(raise_error=False)
                times[i] = res.info.run_time
                st = table.get(res.info.status_val, Status.FAILED)
                if res.info.status_val == osqp.SolverStatus.OSQP_SIGINT:
                    # OSQP caught the Ctrl-C that Python would have: end the run, and tell the main thread
                    if threading.current_thread() is not threading.main_thread():
                        _thread.interrupt_main()
                    raise KeyboardInterrupt("OSQP was interrupted (SIGINT)")
                # polish status 1: polished, 2: no active constraint (nothing to polish); else not polished
                if st == Status.SOLVED and res.info.status_polish not in (1, 2):
                    st = Status.SOLVED_INACCURATE
                status[i] = st
                if st in SOLUTION_PRESENT:
                    U[i] = self._to_inputs(res.x[self._offset:])
                    feasible[i] = True
                if st != Status.SOLVED:
                    self._solver.warm_start(x=np.zeros(self._shape[1]), y=np.zeros(self._shape[0]))
        return ReferenceSolution(U, feasible, status.astype(str), times, "osqp", qp.n_u)


def solve_osqp(problem: MPCProblem | CondensedQP, X, *, form: str = "auto", settings: dict | None = None
               ) -> ReferenceSolution:
    """Solve the MPC QP at each state with OSQP, warm-started from the previous sample.

    Parameters
    ----------
    problem : MPCProblem or CondensedQP
        The problem (condensed first) or its QP.
    X : array_like, shape (B, n_θ) or (n_θ,)
        Parameters: states for a plain problem, else built by :meth:`CondensedQP.parameters`.
    form : {"auto", "sparse", "condensed"}
        Which form OSQP solves, as for :class:`OSQPSession`.
    settings : dict, optional
        Overrides of :data:`OSQP_SETTINGS`.

    Returns
    -------
    ReferenceSolution

    Examples
    --------
    >>> import mpc2nn
    >>> ref = mpc2nn.solve_osqp(mpc2nn.systems.drummond2024(), [-200.0, -200.0])
    >>> str(ref.status[0]), round(float(ref.u0[0, 0]), 6)
    ('solved', 10.0)
    """
    return OSQPSession(problem, form=form, settings=settings).solve(X)


class _SilencedForSomeThreads:
    """``sys.stdout`` while OSQP runs: writes of threads inside an OSQP call are dropped, the others'
    go to the stream it replaced (every other attribute is that stream's).
    """

    def __init__(self, target):
        self._target = target

    def write(self, text):
        if threading.get_ident() in _SILENCED:
            return len(text)
        return self._target.write(text)

    def __getattr__(self, name):
        return getattr(self._target, name)


#: Threads inside an OSQP call (thread id -> nesting depth) and the stdout replacement installed for them.
_SILENCED: dict[int, int] = {}
_INSTALLED: list = []  # [(proxy, replaced stream)] while some thread is silenced
#: One proxy per stream it ever replaced, kept for the life of the process (each holds its stream, so ids are
#: never reused): CPython's ``print`` (3.11) holds ``sys.stdout`` as a *borrowed* reference across its
#: ``write`` calls, so a thread restoring ``sys.stdout`` while another prints would free a fresh proxy under
#: it (a segfault in ``write``: tests/test_threads.py reproduces it); reused proxies are never freed.
_PROXIES: dict[int, _SilencedForSomeThreads] = {}
#: Guards ``_SILENCED`` and ``sys.stdout`` swaps.
_STDOUT_LOCK = threading.Lock()
#: One OSQP solve at a time in the process: OSQP's C library keeps the SIGINT handler it replaces during a
#: solve in a static variable, and the binding releases the GIL while solving, so two concurrent solves
#: restored each other's handler and Python's was lost for good (Ctrl-C did nothing afterwards).
_SOLVE_LOCK = threading.Lock()


@contextlib.contextmanager
def _sigint_held():
    """Hold Ctrl-C back from OSQP's own SIGINT handler while it solves, in the main thread (POSIX).

    OSQP replaces the SIGINT handler during a solve and resets its flag at the start of the next one, so a
    Ctrl-C that arrives outside its iteration loop (setup of the solve, polishing) was lost: the run went on
    (seen in CI: a validate run ended with exit 0 after its SIGINT). Blocked in this thread, the signal stays
    pending and reaches Python's handler when the mask is restored, as a KeyboardInterrupt (a solve takes
    milliseconds). Other threads keep the old route (OSQP's "interrupted" status, passed on to the main
    thread).
    """
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "pthread_sigmask"):
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


@contextlib.contextmanager
def _quiet_stdout():
    """Silence what OSQP prints even when not verbose ("Polishing not needed ...") — in this thread only.

    OSQP's C library prints through ``PySys_WriteStdout``, i.e. ``sys.stdout``, from the thread that
    solves. ``sys.stdout`` is replaced (once, however many threads solve) by a stream that drops the
    writes of the threads inside this block and passes the others' on; the last thread to leave puts
    the original back (unless someone replaced ``sys.stdout`` meanwhile: then theirs stays, and the
    replacement they hold passes everything on). No file descriptor is touched, so other threads'
    output, Python's or C's, is never lost.
    """
    me = threading.get_ident()
    with _STDOUT_LOCK:
        _SILENCED[me] = _SILENCED.get(me, 0) + 1
        if not _INSTALLED and sys.stdout is not None:
            proxy = _PROXIES.get(id(sys.stdout))
            if proxy is None:
                proxy = _PROXIES[id(sys.stdout)] = _SilencedForSomeThreads(sys.stdout)
            _INSTALLED.append((proxy, sys.stdout))
            sys.stdout = proxy
    try:
        yield
    finally:
        with _STDOUT_LOCK:
            _SILENCED[me] -= 1
            if not _SILENCED[me]:
                del _SILENCED[me]
            if not _SILENCED and _INSTALLED:
                proxy, replaced = _INSTALLED.pop()
                if sys.stdout is proxy:
                    sys.stdout = replaced
