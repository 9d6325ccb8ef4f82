"""The implicit ReLU network of a condensed MPC QP: :func:`compile`, :class:`ImplicitNetwork`.

With ``M = G H⁻¹ Gᵀ`` and a positive step vector ``α`` (``Γ = diag(α)``),

    y = W relu(y) + Y x + b,     W = I - Γ M,  Y = -Γ (G H⁻¹ F + E),  b = -Γ w,
    U = W_f relu(y) + Y_f x,     W_f = -H⁻¹ Gᵀ,  Y_f = -H⁻¹ F.

Every fixed point gives the QP's KKT point (``λ = relu(y)``, slack
``s = relu(-y)/α``) and conversely; ``U`` is unique because ``H ≻ 0``, ``y`` need
not be. A fixed point exists exactly where the QP is feasible.

For the general QP of :mod:`mpc2nn.qp` (decision vector ``z``, parameters
``θ`` in place of ``x``, ``U = T z``) the same holds with ``x → θ`` and the
output layer ``W_f = -T H⁻¹ Gᵀ``, ``Y_f = -T H⁻¹ F``: the network's input is
``θ`` and its output the input sequence.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from .._checks import as_matrix, frozen, real_array
from ..exceptions import ProblemDefinitionError, ShapeError
from ..problem import MPCProblem
from ..qp import CondensedQP, KKTResiduals, condense
from ..status import Status
from ._active_set import METHOD_NAMES, ActiveSetSolver, LCPCode
from ._certificate import CERTIFICATE_TOL, certified_point
from ._compiled import COMPILED_BATCH, COMPILED_MAX_WORK, CompiledSolver, CompiledStep
from ._compiled import available as compiled_available
from ._memory import check_compile_memory, solve_chunk_size
from ._solution import ImplicitSolution
from ._weights import ImplicitWeights
from ._well_posedness import WellPosednessReport, well_posedness

__all__ = ["ImplicitNetwork", "compile", "CERTIFICATE_TOL"]


#: Rows up to which the default step's ``λmax(M)`` comes from the (m, m) matrix itself (as before); above,
#: from the (n_z, n_z) Gram matrix ``ḠᵀḠ`` (same value, O(m n_z²) instead of O(m³): 236 s → seconds at m = 12 000).
DENSE_EIG_ROWS = 2000

#: Per-sample outcome codes of the exact solve, in the order of :data:`_STATUS_NAMES`.
_SOLVED, _INFEASIBLE, _UNCERTIFIED, _FAILED, _INVALID = range(5)
_STATUS_NAMES = np.array([str(Status.SOLVED), str(Status.INFEASIBLE), str(Status.UNCERTIFIED),
                          str(Status.FAILED), str(Status.INVALID)])
_METHOD_NAMES = np.array([""] + [METHOD_NAMES[k] for k in sorted(METHOD_NAMES)])
_KKT_FIELDS = [f.name for f in dataclasses.fields(KKTResiduals)]


def compile(problem: MPCProblem | CondensedQP, *, alpha=None, memory_limit: float | None = None) -> ImplicitNetwork:
    """Build the exact implicit ReLU network of an MPC problem or condensed QP.

    Parameters
    ----------
    problem : MPCProblem or CondensedQP
        The problem (condensed first) or its QP.
    alpha : float or array_like, shape (m,), optional
        Step(s) ``α > 0`` of the network, one per constraint row or one for all.
        The default ``1/λmax(M)`` makes one plain layer one step of projected
        gradient on the dual. The fixed points' ``U`` does not depend on ``α``.
    memory_limit : float, optional
        Bytes the network may take (default: the memory available on this machine).
        The size of the condensed QP and of the network's dense matrices is estimated
        before anything is allocated, and a larger one is refused with the number.

    Returns
    -------
    ImplicitNetwork
        Width ``m`` (one unit per constraint row), input ``θ``, output ``U``.

    Raises
    ------
    ProblemTooLargeError
        The estimated memory exceeds ``memory_limit``.

    Examples
    --------
    >>> import mpc2nn
    >>> net = mpc2nn.compile(mpc2nn.systems.drummond2024())
    >>> sol = net.solve([[-200.0, -200.0]])
    >>> str(sol.status[0]), round(float(sol.U[0, 0]), 6)
    ('solved', 10.0)
    """
    if isinstance(problem, MPCProblem):
        check_compile_memory(problem, memory_limit)
        qp = condense(problem)
    elif isinstance(problem, CondensedQP):
        qp = problem
        check_compile_memory(qp, memory_limit)
    else:
        raise ProblemDefinitionError(
            f"compile: expected an MPCProblem or a CondensedQP, got {type(problem).__name__}")
    Linv = qp.cholesky_inverse
    m = qp.m
    if alpha is None:
        if m <= DENSE_EIG_ROWS:
            lam_max = float(np.linalg.eigvalsh(qp.dual_hessian)[-1]) if m else 1.0
        else:  # λmax(G H⁻¹ Gᵀ) = σmax(G L⁻ᵀ)², from the small (n_z, n_z) Gram matrix
            Gbar = qp.G @ Linv.T
            lam_max = float(np.linalg.eigvalsh(Gbar.T @ Gbar)[-1])
            del Gbar
        alpha_vec = np.full(m, 1.0 / lam_max if lam_max > 0 else 1.0)
    else:
        a = real_array("alpha", alpha, "a step size > 0, or one per row, shape (m,)")
        if a.ndim == 0:
            alpha_vec = np.full(m, float(a))
        else:
            alpha_vec = as_matrix("alpha", a, ("m",), (m,))
        if not np.all(np.isfinite(alpha_vec)) or np.any(alpha_vec <= 0):
            raise ProblemDefinitionError(f"alpha: every step must be finite and > 0, got {alpha!r}")
    M = qp.dual_hessian
    W = M * -alpha_vec[:, None]  # I - ΓM, built in place (no (m, m) temporaries beyond W itself)
    W[np.diag_indices(m)] += 1.0
    Y = qp.dual_linear * -alpha_vec[:, None]
    b = -alpha_vec * qp.w
    T = np.eye(qp.n_z) if qp.output_map is None else qp.output_map
    Hinv = qp.H_inv
    W_f, Y_f = -T @ Hinv @ qp.G.T, -T @ Hinv @ qp.F
    return ImplicitNetwork(W=W, Y=Y, b=b, W_f=W_f, Y_f=Y_f, alpha=alpha_vec, qp=qp)


@dataclass(frozen=True, eq=False, kw_only=True)
class ImplicitNetwork(ImplicitWeights):
    """Implicit ReLU network ``y = W relu(y) + Y θ + b``, ``U = W_f relu(y) + Y_f θ`` of a condensed QP.

    Its weights are those of an :class:`ImplicitWeights` (no output bias); built by
    :func:`compile`. The input ``θ`` is the QP's parameter vector (the state for a plain
    problem; see :meth:`CondensedQP.parameters`).

    Attributes
    ----------
    W : ndarray, shape (m, m)
        Implicit-layer weight ``I - Γ M``.
    Y : ndarray, shape (m, n_θ)
        Input weight ``-Γ (G H⁻¹ F + E)``.
    b : ndarray, shape (m,)
        Bias ``-Γ w``.
    W_f : ndarray, shape (N·n_u, m)
        Output weight ``-T H⁻¹ Gᵀ``.
    Y_f : ndarray, shape (N·n_u, n_θ)
        Output input-weight ``-T H⁻¹ F``.
    output_bias : ndarray, shape (N·n_u,)
        Constant output offset, zero for a compiled network (a QP's solution has none).
    n_u : int
        Inputs per stage, always the QP's (a value given is replaced).
    alpha : ndarray, shape (m,)
        Steps ``α > 0``, ``Γ = diag(α)``.
    qp : CondensedQP
        The QP it was compiled from.
    """

    alpha: np.ndarray
    qp: CondensedQP

    def __post_init__(self):
        super().__post_init__()
        if self.n_U % self.qp.n_u or self.n_U != self.qp.n_U:
            raise ShapeError(f"W_f: expected N·n_u = {self.qp.n_U} rows (the QP's input sequence), got {self.n_U}")
        object.__setattr__(self, "n_u", self.qp.n_u)
        object.__setattr__(self, "alpha", frozen(as_matrix("alpha", self.alpha, ("m",), (self.m,))))

    @property
    def n_x(self) -> int:
        """Number of states (the ``x`` part of ``θ``)."""
        return self.qp.n_x

    def __repr__(self) -> str:
        return (f"ImplicitNetwork({self.qp.name!r}: width m={self.m}, input θ = {self.qp.layout.describe()}, "
                f"output N·n_u={self.n_U}; alpha in [{float(self.alpha.min(initial=np.inf)):.3g}, "
                f"{float(self.alpha.max(initial=-np.inf)):.3g}])")

    def _inputs(self, X) -> np.ndarray:
        return self.qp.check_parameters(X)

    def bare(self) -> ImplicitWeights:
        """The weights alone, every network input counted as an input (``n_x = n_θ``)."""
        return ImplicitWeights.from_network(self)

    @cached_property
    def solver(self) -> ActiveSetSolver:
        """The exact active-set solver of the network's QP (set up once; it caches the active sets it meets)."""
        qp = self.qp
        # soft constraints: start from "every slack zero" (the rows s >= 0, the last n_slack rows)
        start = np.arange(qp.m - qp.n_slack, qp.m) if qp.n_slack else None
        return ActiveSetSolver(qp.cholesky_inverse, qp.G, qp.dual_hessian, start_rows=start)

    @cached_property
    def _abs_Hinv(self) -> np.ndarray:
        """``|H⁻¹|`` (n_z, n_z), for the rounding scale of ``z = -H⁻¹ g``."""
        return np.abs(self.qp.H_inv)

    @cached_property
    def _abs_G(self) -> np.ndarray:
        """``|G|`` (m, n_z), for the rounding scale of the margins in the fixed-point residual."""
        return np.abs(self.qp.G)

    @cached_property
    def _abs_gbar(self) -> np.ndarray:
        """``|Ḡ|`` (m, n_z), for the rounding scale of the factored fixed-point residual."""
        return np.abs(self.solver.Gbar)

    def chunk_size(self) -> int:
        """Samples :meth:`solve` works on at once (its working memory stays near ``SOLVE_CHUNK_BYTES``)."""
        return solve_chunk_size(self.m, self.qp.n_z, self.qp.n_theta)

    def solve(self, X, *, y0=None, chunk_size: int | None = None, progress=None) -> ImplicitSolution:
        """Exact fixed points for parameters ``X`` (B, n_θ) or (n_θ,) (states for a plain problem).

        A finite active-set method (:class:`~mpc2nn.implicit.ActiveSetSolver`), not a fixed-point
        loop; every solved sample is certified by its residuals, each row at its own
        scale. Infeasible states get NaN outputs, ``status == "infeasible"`` and the
        Farkas certificate's margin in ``reason``; states whose arithmetic overflows
        are ``"invalid"``. Samples do not affect each other.

        Large batches are solved in chunks of :meth:`chunk_size` samples, so the
        working memory stays bounded whatever ``B`` (only the result arrays grow).
        Where numba is installed (the ``fast`` extra) and ``m · n_z`` is at most
        400 000, samples are solved and certified one by one in compiled code (the
        same method and certificate); what that path does not certify or prove
        infeasible is solved again by the batched numpy path, which decides it.

        Parameters
        ----------
        X : array_like, shape (B, n_θ) or (n_θ,)
            Parameters ``θ``; a single vector is a batch of one. Samples with NaN or
            infinite entries get status ``"invalid"``.
        y0 : array_like, shape (B, m) or (m,), optional
            Warm start: the initial active set is ``{y0 > 0}`` (checked first, by one batched step).
        chunk_size : int, optional
            Samples per chunk (default :meth:`chunk_size`).
        progress : callable, optional
            Called as ``progress(done, total)`` after every chunk (for progress bars in the
            command line and notebooks).

        Returns
        -------
        ImplicitSolution

        Examples
        --------
        >>> import mpc2nn
        >>> net = mpc2nn.compile(mpc2nn.systems.double_integrator())
        >>> sol = net.solve([[1.0, 0.5], [5.0, 2.0]])
        >>> [str(s) for s in sol.status], bool(sol.feasible[0])
        (['solved', 'infeasible'], True)
        """
        X = self.qp.check_parameters(X)
        Bn, m = X.shape[0], self.m
        active0 = None
        if y0 is not None:
            y0 = real_array("y0", y0, "a starting point y, shape (B, m) or (m,)")
            if y0.shape == (m,):
                y0 = y0[None, :] if Bn == 1 else np.broadcast_to(y0, (Bn, m))
            if y0.shape != (Bn, m):
                raise ShapeError(f"y0: expected shape (B, m) = ({Bn}, {m}) or (m,) = ({m},), got {y0.shape}")
            active0 = np.nan_to_num(y0, nan=0.0) > 0
        if chunk_size is None:
            chunk = self.chunk_size() if Bn > 1 else 1
        elif isinstance(chunk_size, (int, np.integer)) and not isinstance(chunk_size, bool) and chunk_size >= 1:
            chunk = int(chunk_size)
        else:
            raise ProblemDefinitionError(f"chunk_size: expected an integer >= 1, got {chunk_size!r}")
        if progress is not None and not callable(progress):
            raise ProblemDefinitionError(f"progress: expected a callable progress(done, total), got {progress!r}")
        if Bn == 1:
            lean = self._solve_one if self._compiled is None else self._solve_one_compiled
            one = lean(X[0], None if active0 is None else active0[0])
            if one is not None:
                if progress is not None:
                    progress(1, 1)
                return one
        out = _Results(Bn, m, self.qp)
        for lo in range(0, Bn, chunk):
            hi = min(Bn, lo + chunk)
            self._solve_chunk(X[lo:hi], None if active0 is None else active0[lo:hi], out, lo)
            if progress is not None:
                progress(hi, Bn)
        sol = out.solution(self.qp.n_u, self.qp)
        if Bn == 1 and sol.feasible[0]:
            self.solver.last_set = sol.y[0] > 0
        return sol

    def _solve_one_compiled(self, theta: np.ndarray, active0) -> ImplicitSolution | None:
        """The lean path of one state in compiled code (warm-started from ``active0``, else the last set solved):
        the result of a state the compiled certificate certifies or proves infeasible, built without the
        batch's bookkeeping; ``None`` (the general path takes over and says why) for anything else.
        """
        cs, qp, sv = self._compiled, self.qp, self.solver
        if cs is None:  # no compiled path (numba absent or turned off): the general path takes over
            return None
        X = theta[None, :]
        if qp.state_only is not None and qp.state_only[0].shape[0]:
            with np.errstate(over="ignore", invalid="ignore"):
                if not qp.state_only_violation(X)[0] <= 0:  # violated or NaN: the general path says which
                    return None
        warm = active0 if active0 is not None else sv.last_set
        U, y, Z, cc, fp, fps, _, kkt, it, mg, verified = cs.solve(X, None if warm is None else warm[None, :])
        c = int(cc[0])
        if c == _SOLVED:
            reason = ""
            sv.last_set = y[0] > 0
        elif c == _INFEASIBLE:
            reason = ("no input sequence satisfies G U <= w + E x: Farkas certificate μ >= 0 with "
                      f"Gᵀμ = 0 and μᵀ(w + E x) = -{mg[0]:.3g}·‖μ‖₁")
        else:
            return None
        return ImplicitSolution(U=U, y=y, feasible=cc == _SOLVED, status=_STATUS_NAMES[cc], reason=np.array([reason]),
                                fixed_point_residual=fp, fixed_point_scale=fps,
                                kkt=KKTResiduals(**{name: kkt[:, j] for j, name in enumerate(_KKT_FIELDS)}),
                                iterations=it, method=_METHOD_NAMES[[1 if verified[0] else 2]], n_u=qp.n_u,
                                slack=qp.soft_slacks(Z) if qp.n_slack else np.empty((1, 0)))

    def _solve_one(self, theta: np.ndarray, active0) -> ImplicitSolution | None:
        """The lean path of one state: verify the warm-start set, else the last set solved, by one reduced
        solve; certify it as :meth:`solve` does. ``None`` (the general path takes over) where neither holds.
        """
        qp, sv = self.qp, self.solver
        cands = [c for c in (active0, sv.last_set) if c is not None]
        if not cands or qp.n_slack or qp.state_only is not None and qp.state_only[0].shape[0]:
            return None
        with np.errstate(over="ignore", invalid="ignore"):
            h = qp.w + qp.E @ theta
            z0 = -(sv.Linv @ (qp.F @ theta))
            q = h - sv.Gbar @ z0
            z0n = float(np.sqrt(z0 @ z0))
        if not (np.isfinite(q).all() and np.isfinite(h).all() and np.isfinite(z0n)):
            return None
        lam = None
        for cand in cands:
            lam = sv.verify(q, z0n, h, cand)
            if lam is not None:
                break
        if lam is None:
            return None
        out = _Results(1, self.m, qp)
        code = np.full(1, _FAILED, dtype=np.int8)
        self._certify(theta[None, :], lam[None, :], h[None, :], code, np.zeros(1, np.int64), out, 0)
        if code[0] != _SOLVED:
            return None
        out.code[:] = code
        out.iterations[:] = 1
        out.method[:] = 1  # primal-dual active set (one verified step)
        sv.last_set = lam > 0
        return out.solution(qp.n_u, qp)

    def _solve_chunk(self, X: np.ndarray, active0, out: _Results, off: int) -> None:
        """Solve the chunk ``X`` (b, n_θ) and write its results at rows ``off:off+b`` of ``out``.

        Where the compiled path runs, it takes every valid state first (writing into ``out`` in place); only
        the states it leaves (uncertified, overflow, no decision) reach the batched numpy path.
        """
        qp, solver = self.qp, self.solver
        b = X.shape[0]
        sl = slice(off, off + b)
        code = out.code[sl]
        code[:] = _FAILED
        reason = out.reason
        valid = np.isfinite(X).all(axis=1)
        Xv = X
        if not valid.all():
            Xv = np.where(valid[:, None], X, 0.0)
            code[~valid] = _INVALID
            for i in np.flatnonzero(~valid):
                reason[off + i] = "the state has NaN or infinite entries"
        if qp.state_only is not None and qp.state_only[0].shape[0]:
            with np.errstate(over="ignore", invalid="ignore"):
                state_viol = qp.state_only_violation(Xv)
            bad_state = valid & (state_viol > 0)
            code[bad_state] = _INFEASIBLE
            for i in np.flatnonzero(bad_state):
                reason[off + i] = f"a constraint on the current state alone is violated by {state_viol[i]:.3g}"
        else:
            bad_state = np.zeros(b, np.bool_)
        run = np.flatnonzero(valid & ~bad_state)
        if run.size and self._compiled is not None and run.size < COMPILED_BATCH:
            run = self._solve_compiled(Xv, run, None if active0 is None else active0[run], out, off)
        if not run.size:
            return
        Xr = Xv[run]
        with np.errstate(over="ignore", invalid="ignore"):
            h = qp.w + Xr @ qp.E.T
            z0 = -((Xr @ qp.F.T) @ solver.Linv.T)
            q = h - z0 @ solver.GbarT
            finite = np.isfinite(h).all(axis=1) & np.isfinite(z0).all(axis=1) & np.isfinite(q).all(axis=1)
        for k in np.flatnonzero(~finite):
            code[run[k]] = _INVALID
            reason[off + run[k]] = (f"overflow: the state (largest entry {np.abs(X[run[k]]).max():.3g}) is beyond "
                                    "the range where float64 can form the QP's terms")
        if not finite.all():
            run, h, z0, q = run[finite], h[finite], z0[finite], q[finite]
        if not run.size:
            return
        sol = solver.solve(q, z0, h, None if active0 is None else active0[run])
        out.iterations[off + run] = sol.iterations
        out.method[off + run] = sol.method + 1
        code[run[sol.code == LCPCode.INFEASIBLE]] = _INFEASIBLE
        code[run[sol.code == LCPCode.FAILED]] = _FAILED
        for k in np.flatnonzero(sol.code == LCPCode.INFEASIBLE):
            reason[off + run[k]] = ("no input sequence satisfies G U <= w + E x: Farkas certificate μ >= 0 with "
                                    f"Gᵀμ = 0 and μᵀ(w + E x) = -{sol.farkas_margin[k]:.3g}·‖μ‖₁")
        for k in np.flatnonzero(sol.code == LCPCode.FAILED):
            reason[off + run[k]] = "the active-set methods reached no decision (numerical trouble)"
        good = sol.code == LCPCode.SOLVED
        ok = run[good]
        if ok.size:
            self._certify(Xv[ok], sol.lam[good], h[good], code, ok, out, off)

    def stepper(self) -> CompiledStep | None:
        """A lean solve of one state at a time for a closed loop (the compiled path), or ``None`` where it
        does not run (numba absent or turned off, or ``m · n_z`` above the compiled path's limit).

        The stepper is called with ``θ`` (1, n_θ) float64 C-contiguous and returns the first input (n_u,)
        of a certified solve, warm-started from its previous certified state's active set; it returns
        ``None`` for any state it does not certify (infeasible, invalid, uncertified): :meth:`solve` then
        decides that state and says why. One stepper per caller (it keeps buffers); ``ImplicitController``
        uses one.

        Returns
        -------
        CompiledStep or None
        """
        return None if self._compiled is None else CompiledStep(self._compiled, self.qp.n_u)

    @cached_property
    def _compiled(self) -> CompiledSolver | None:
        """The compiled per-sample path (numba), where it is installed and the problem is small enough."""
        if not compiled_available() or self.m == 0 or self.m * self.qp.n_z > COMPILED_MAX_WORK:
            return None
        cs = CompiledSolver(self)
        self.solver.compiled_dual = cs.dual
        return cs

    def _solve_compiled(self, X: np.ndarray, run: np.ndarray, active0, out: _Results, off: int) -> np.ndarray:
        """Solve and certify the chunk rows ``run`` in compiled code, writing into ``out``; return the rows it
        left undecided (for the batched methods).
        """
        cs = self._compiled
        if cs is None:  # no compiled path: every row is left to the batched methods
            return run
        b = X.shape[0]
        if run.size == b:  # every row: the kernel writes the chunk's rows of out in place
            sl = slice(off, off + b)
            arrays = (out.U[sl], out.y[sl], out.Z[sl], out.code[sl], out.fp3[sl], out.kkt9[sl],
                      out.iterations[sl], out.margin[sl], out.verified[sl])
            cs.solve_into(X, active0, arrays)
            rows = np.arange(off, off + b)
        else:
            U, y, Z, cc, fp, fps, fp_rel, kkt, it, mg, verified = cs.solve(X[run], active0)
            rows = off + run
            out.U[rows], out.y[rows], out.Z[rows], out.code[rows] = U, y, Z, cc
            out.fp3[rows, 0], out.fp3[rows, 1], out.fp3[rows, 2] = fp, fps, fp_rel
            out.kkt9[rows], out.iterations[rows], out.margin[rows], out.verified[rows] = kkt, it, mg, verified
        cc = out.code[rows]
        # final here: what the compiled certificate certified, and Farkas-proven infeasibility; anything else
        # (uncertified, overflow, no decision) goes back to the batched path, which decides and says why
        done = (cc == _SOLVED) | (cc == _INFEASIBLE)
        out.method[rows] = np.where(out.verified[rows], 1, 2)  # a verified warm start (one step), else the dual method
        inf = np.flatnonzero(cc == _INFEASIBLE)
        for k in inf:
            out.reason[rows[k]] = ("no input sequence satisfies G U <= w + E x: Farkas certificate μ >= 0 with "
                                   f"Gᵀμ = 0 and μᵀ(w + E x) = -{out.margin[rows[k]]:.3g}·‖μ‖₁")
        if not done.all():  # the batched path starts these rows afresh
            left = rows[~done]
            out.code[left] = _FAILED
            out.U[left] = out.y[left] = out.Z[left] = out.fp3[left] = out.kkt9[left] = np.nan
        return run[~done]

    def _certify(self, X, lam, h, code, ok, out: _Results, off: int, refine: bool = False) -> None:
        """Outputs and residuals of the solved samples ``ok`` (chunk rows); sets their codes.

        Samples not certified at first are certified again after ``refine``: one step of iterative
        refinement of ``z`` and a primal correction on the active rows (see :func:`certified_point`).
        """
        pt = certified_point(self, X, lam, h, refine)
        cert, finite, kkt = pt.certified, pt.finite, pt.kkt
        rows = off + ok
        out.U[rows], out.y[rows], out.Z[rows] = pt.U, pt.y, pt.Z
        out.fp[rows], out.fp_scale[rows] = pt.fp, pt.fp_scale
        for name in _KKT_FIELDS:
            out.kkt[name][rows] = getattr(kkt, name)
        code[ok] = np.where(cert, _SOLVED, np.where(finite, _UNCERTIFIED, _INVALID))
        redo = ~cert & finite
        if not refine and redo.any():
            self._certify(X[redo], lam[redo], h[redo], code, ok[redo], out, off, refine=True)
            cert[redo] = code[ok[redo]] == _SOLVED
            if cert.all():
                return
        worst = kkt.worst
        for k in np.flatnonzero(~cert & ~(redo if not refine else np.zeros_like(cert))):
            if not finite[k]:
                out.reason[rows[k]] = "overflow: the solution's arithmetic left the range of float64"
                out.U[rows[k]] = np.nan
            else:
                out.reason[rows[k]] = (f"residuals above {CERTIFICATE_TOL:g} at their rows' own scales: relative "
                                       f"fixed-point {pt.fp_rel[k]:.2e}, relative KKT {worst[k]:.2e}")

    def well_posedness(self, *, box=None) -> WellPosednessReport:
        """Diagnose well-posedness of ``y = W relu(y) + c``.

        Parameters
        ----------
        box : (lo, hi), optional
            Region of states over which rows are tested for redundancy
            (default: the QP's sample box; all of ``R^{n_x}`` where it has none). Only
            for plain problems (where the network input is the state).
        """
        return well_posedness(self, box)


class _Results:
    """Result arrays of a batched solve, filled chunk by chunk (NaN where a chunk leaves no solution).

    The fixed-point residual, its scale and relative value are the columns of ``fp3`` (B, 3), the KKT
    residuals those of ``kkt9`` (B, 9) in :class:`~mpc2nn.qp.KKTResiduals` order: the compiled kernels'
    layout, so that they write a chunk's rows in place.
    """

    def __init__(self, B: int, m: int, qp: CondensedQP):
        self.U = np.full((B, qp.n_U), np.nan)
        self.y = np.full((B, m), np.nan)
        self.Z = np.full((B, qp.n_z), np.nan)
        self.fp3 = np.full((B, 3), np.nan)
        self.kkt9 = np.full((B, len(_KKT_FIELDS)), np.nan)
        self.fp, self.fp_scale = self.fp3[:, 0], self.fp3[:, 1]
        self.kkt = {name: self.kkt9[:, j] for j, name in enumerate(_KKT_FIELDS)}
        self.iterations = np.zeros(B, dtype=np.int64)
        self.method = np.zeros(B, dtype=np.int8)
        self.code = np.full(B, _FAILED, dtype=np.int8)
        self.margin = np.full(B, np.nan)
        self.verified = np.zeros(B, dtype=np.bool_)
        self.reason = np.full(B, "", dtype=object)

    def solution(self, n_u: int, qp: CondensedQP) -> ImplicitSolution:
        status = _STATUS_NAMES[self.code]
        kkt = KKTResiduals(**{name: self.kkt9[:, j].copy() for j, name in enumerate(_KKT_FIELDS)})
        return ImplicitSolution(U=self.U, y=self.y, feasible=self.code == _SOLVED, status=status,
                                reason=self.reason.astype(str), fixed_point_residual=self.fp3[:, 0].copy(),
                                fixed_point_scale=self.fp3[:, 1].copy(), kkt=kkt, iterations=self.iterations,
                                method=_METHOD_NAMES[self.method], n_u=n_u,
                                slack=qp.soft_slacks(self.Z) if qp.n_slack else np.empty((self.Z.shape[0], 0)))
