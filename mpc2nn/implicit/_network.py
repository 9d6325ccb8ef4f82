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

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from .._checks import as_matrix, frozen
from ..exceptions import ProblemDefinitionError, ShapeError
from ..problem import MPCProblem
from ..qp import CondensedQP, condense
from ..status import Status, is_in
from ._active_set import METHOD_NAMES, ActiveSetSolver, LCPCode
from ._solution import ImplicitSolution
from ._weights import ImplicitWeights
from ._well_posedness import WellPosednessReport, well_posedness

__all__ = ["ImplicitNetwork", "compile", "CERTIFICATE_TOL"]


#: The exact solver's outcomes in the status vocabulary.
LCP_STATUS = {LCPCode.SOLVED: Status.SOLVED, LCPCode.INFEASIBLE: Status.INFEASIBLE, LCPCode.FAILED: Status.FAILED}

#: Largest relative residual (fixed point and KKT) with which a solution counts as certified.
CERTIFICATE_TOL = 1e-9


def compile(problem: MPCProblem | CondensedQP, *, alpha=None) -> ImplicitNetwork:
    """Build the exact implicit ReLU network of an MPC problem or condensed QP.

    Parameters
    ----------
    problem : MPCProblem or CondensedQP
    alpha : float or array (m,), optional
        Step(s) ``α > 0`` of the network, one per constraint row or one for all.
        The default ``1/λmax(M)`` makes one plain layer one step of projected
        gradient on the dual. The fixed points' ``U`` does not depend on ``α``.

    Returns
    -------
    ImplicitNetwork

    Examples
    --------
    >>> import mpc2nn
    >>> net = mpc2nn.compile(mpc2nn.systems.drummond2024())
    >>> sol = net.solve([[-200.0, -200.0]])
    >>> str(sol.status[0]), round(float(sol.U[0, 0]), 6)
    ('solved', 10.0)
    """
    if isinstance(problem, MPCProblem):
        qp = condense(problem)
    elif isinstance(problem, CondensedQP):
        qp = problem
    else:
        raise ProblemDefinitionError(
            f"compile: expected an MPCProblem or a CondensedQP, got {type(problem).__name__}")
    Hinv = qp.H_inv
    M = qp.dual_hessian
    m = qp.m
    lam_max = float(np.linalg.eigvalsh(M)[-1]) if m else 1.0
    if alpha is None:
        alpha_vec = np.full(m, 1.0 / lam_max)
    else:
        a = np.asarray(alpha, dtype=float)
        if a.ndim == 0:
            alpha_vec = np.full(m, float(a))
        else:
            alpha_vec = as_matrix("alpha", a, ("m",), (m,))
        if not np.all(np.isfinite(alpha_vec)) or np.any(alpha_vec <= 0):
            raise ProblemDefinitionError(f"alpha: every step must be finite and > 0, got {alpha!r}")
    Gam = alpha_vec[:, None]
    W = np.eye(m) - Gam * M
    Y = -Gam * qp.dual_linear
    b = -alpha_vec * qp.w
    T = np.eye(qp.n_z) if qp.output_map is None else qp.output_map
    return ImplicitNetwork(W=W, Y=Y, b=b, W_f=-T @ Hinv @ qp.G.T, Y_f=-T @ Hinv @ qp.F, alpha=alpha_vec, qp=qp)


@dataclass(frozen=True, eq=False, kw_only=True)
class ImplicitNetwork(ImplicitWeights):
    """Implicit ReLU network ``y = W relu(y) + Y θ + b``, ``U = W_f relu(y) + Y_f θ`` of a condensed QP.

    Its weights are those of an :class:`ImplicitWeights` (no output bias); built by
    :func:`compile`. The input ``θ`` is the QP's parameter vector (the state for a plain
    problem; see :meth:`CondensedQP.parameters`).

    Attributes
    ----------
    W : (m, m); Y : (m, n_θ); b : (m,); W_f : (N·n_u, m); Y_f : (N·n_u, n_θ)
    alpha : (m,) steps; qp : the CondensedQP it was compiled from
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
        """The exact active-set solver of the network's QP (set up once)."""
        qp = self.qp
        # soft constraints: start from "every slack zero" (the rows s >= 0, the last n_slack rows)
        start = np.arange(qp.m - qp.n_slack, qp.m) if qp.n_slack else None
        return ActiveSetSolver(qp.cholesky_inverse, qp.G, qp.dual_hessian, start_rows=start)

    def solve(self, X, *, y0=None) -> ImplicitSolution:
        """Exact fixed points for parameters ``X`` (B, n_θ) or (n_θ,) (states for a plain problem).

        A finite active-set method (see :mod:`mpc2nn.exact`), not a fixed-point
        loop; every solved sample is certified by its residuals. Infeasible
        states get ``feasible=False``, NaN outputs and the reason; they do not
        affect the other samples.

        Parameters
        ----------
        X : array (B, n_θ) or (n_θ,)
        y0 : array (B, m) or (m,), optional
            Warm start: the initial active set is ``{y0 > 0}``.
        """
        X = self.qp.check_parameters(X)
        Bn, m, qp = X.shape[0], self.m, self.qp
        valid = np.all(np.isfinite(X), axis=1)
        Xv = np.where(valid[:, None], X, 0.0)
        status = np.full(Bn, Status.FAILED, dtype=object)
        reason = np.full(Bn, "", dtype=object)
        status[~valid] = Status.INVALID
        reason[~valid] = "the state has NaN or infinite entries"

        state_viol = qp.state_only_violation(Xv)
        bad_state = valid & (state_viol > 0)
        status[bad_state] = Status.INFEASIBLE
        for i in np.flatnonzero(bad_state):
            reason[i] = f"a constraint on the current state alone is violated by {state_viol[i]:.3g}"

        active0 = None
        if y0 is not None:
            y0 = np.asarray(y0, dtype=float)
            if y0.shape == (m,):
                y0 = np.broadcast_to(y0, (Bn, m))
            if y0.shape != (Bn, m):
                raise ShapeError(f"y0: expected shape (B, m) = ({Bn}, {m}) or (m,) = ({m},), got {y0.shape}")
            active0 = np.nan_to_num(y0, nan=0.0) > 0

        run = np.flatnonzero(valid & ~bad_state)
        lam = np.full((Bn, m), np.nan)
        iters = np.zeros(Bn, dtype=np.int64)
        method = np.full(Bn, "", dtype=object)
        if run.size:
            solver = self.solver
            Xr = Xv[run]
            h = qp.w + Xr @ qp.E.T
            z0 = -(Xr @ qp.F.T) @ solver.Linv.T
            q = h - z0 @ solver.Gbar.T
            sol = solver.solve(q, z0, h, None if active0 is None else active0[run])
            lam[run] = sol.lam
            iters[run] = sol.iterations
            method[run] = _lookup(METHOD_NAMES, sol.method)
            status[run] = _lookup(LCP_STATUS, sol.code)
            for k, i in enumerate(run):
                if sol.code[k] == LCPCode.INFEASIBLE:
                    reason[i] = ("no input sequence satisfies G U <= w + E x: Farkas certificate μ >= 0 with "
                                 f"Gᵀμ = 0 and μᵀ(w + E x) = -{sol.farkas_margin[k]:.3g}·‖μ‖₁")
                elif sol.code[k] == LCPCode.FAILED:
                    reason[i] = "the active-set methods reached no decision (numerical trouble)"

        ok = status == Status.SOLVED
        U = np.full((Bn, qp.n_U), np.nan)
        Z = np.full((Bn, qp.n_z), np.nan)
        y = np.full((Bn, m), np.nan)
        if ok.any():
            Xo, lo = Xv[ok], lam[ok]
            Z[ok] = qp.primal(lo, Xo)
            s = qp.w + Xo @ qp.E.T - Z[ok] @ qp.G.T
            y[ok] = lo - self.alpha * s
            U[ok] = self.output(y[ok], Xo)
        relu_y = np.maximum(np.nan_to_num(y, nan=0.0), 0.0)
        c = Xv @ self.Y.T + self.b
        Wr = relu_y @ self.W.T
        with np.errstate(invalid="ignore"):
            fp = np.abs(y - Wr - c).max(axis=1, initial=0.0)
        fp_scale = np.maximum.reduce([np.ones(Bn), np.abs(Wr).max(axis=1, initial=0.0),
                                      np.abs(c).max(axis=1, initial=0.0)])
        kkt = qp.kkt_residuals(np.nan_to_num(Z), relu_y, Xv)
        bad_cert = ok & ((fp > CERTIFICATE_TOL * fp_scale) | (kkt.worst > CERTIFICATE_TOL))
        status[bad_cert] = Status.UNCERTIFIED
        for i in np.flatnonzero(bad_cert):
            reason[i] = (f"residuals above {CERTIFICATE_TOL:g}: relative fixed-point {fp[i] / fp_scale[i]:.2e}, "
                         f"relative KKT {kkt.worst[i]:.2e}")
        feasible: np.ndarray = is_in(status, (Status.SOLVED, Status.UNCERTIFIED))
        fp = np.where(feasible, fp, np.nan)
        return ImplicitSolution(U=U, y=y, feasible=feasible, status=status.astype(str), reason=reason.astype(str),
                                fixed_point_residual=fp, fixed_point_scale=fp_scale, kkt=kkt, iterations=iters,
                                method=method.astype(str), n_u=qp.n_u, slack=qp.soft_slacks(Z))

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


def _lookup(table: dict, codes: np.ndarray) -> np.ndarray:
    """``(B,)`` object array of ``table[code]`` for integer codes (vectorised through one small array)."""
    values = np.empty(max(table) + 1, dtype=object)
    for code, value in table.items():
        values[code] = value
    return values[codes]
