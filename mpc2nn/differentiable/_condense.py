"""The condensation of :func:`mpc2nn.condense` in torch: :class:`TorchCondensation`, :class:`TorchQP`.

The formulas are those of :mod:`mpc2nn.qp` (the module docstring there), written with
torch operations so that autograd reaches the problem data: ``A, B, Q, R, P``, the
bounds, the rate weight, the soft-constraint weights and the stage and terminal
constraint data. Which constraint rows exist is *structure*, fixed once from the
problem's own numbers when the condensation is built: a row exists where its bound
is finite, rows that carry no decision variable are kept apart (``state_only``) or
dropped, and exact duplicates are dropped, as :func:`~mpc2nn.condense` decides them.
The data may then change freely (training), the rows stay; the row labels are
checked against :func:`~mpc2nn.condense` when the condensation is built. A terminal
weight the problem computes (``P="dare"`` or ``"lyapunov"``) is recomputed from the data
unless ``P`` is given; a terminal set the problem computes (``terminal_set="lqr"``) is
data like any polytope (``terminal_C``, ``terminal_d``): it does not follow ``Q`` and ``R``.

A QP given directly (a :class:`~mpc2nn.CondensedQP` not condensed from an
:class:`~mpc2nn.MPCProblem`) has the data ``H, F, G, w, E`` themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import numpy as np
import torch

from ..exceptions import ProblemDefinitionError, ShapeError, SolverError
from ..problem import MPCProblem
from ..qp import CondensedQP, condense
from ._riccati import dare, lyapunov

__all__ = ["TorchCondensation", "TorchQP"]


@dataclass(frozen=True, eq=False, kw_only=True)
class TorchQP:
    """The condensed QP ``min ½zᵀHz + θᵀFᵀz subject to Gz <= w + Eθ``, ``U = Tz``, as torch tensors.

    All tensors have the dtype and device the condensation was called with and carry the
    autograd graph of the data they were computed from.

    Attributes
    ----------
    H : torch.Tensor, shape (n_z, n_z)
        Hessian of the cost, symmetric (positive definite for valid data, ``R ≻ 0``).
    F : torch.Tensor, shape (n_z, n_θ)
        Linear cost term: the cost's gradient at ``z = 0`` is ``Fθ``.
    G : torch.Tensor, shape (m, n_z)
        Constraint rows of ``Gz <= w + Eθ``.
    w : torch.Tensor, shape (m,)
        Constant part of the right-hand side.
    E : torch.Tensor, shape (m, n_θ)
        Parameter part of the right-hand side.
    T : torch.Tensor, shape (N·n_u, n_z), or None
        Output map ``U = Tz`` (move blocking, slack variables); ``None`` for ``T = I``.
    state_E : torch.Tensor, shape (p, n_θ), or None
        Rows on ``θ`` alone, ``w0 + E0 θ >= 0`` (the ``E0`` of
        :attr:`mpc2nn.CondensedQP.state_only`); ``None`` where the QP has none.
    state_w : torch.Tensor, shape (p,), or None
        The ``w0`` of those rows; ``None`` where the QP has none.
    slack_shift : torch.Tensor, shape ()
        ``δ = ρ_l / (2ρ_q)`` of the soft constraints (0 without soft constraints).
    reference : CondensedQP
        The QP whose structure (row labels, layout of ``θ``, sizes) this QP has.
    """

    H: torch.Tensor
    F: torch.Tensor
    G: torch.Tensor
    w: torch.Tensor
    E: torch.Tensor
    T: torch.Tensor | None
    state_E: torch.Tensor | None
    state_w: torch.Tensor | None
    slack_shift: torch.Tensor
    reference: CondensedQP

    def to_condensed(self) -> CondensedQP:
        """The same QP as a numpy :class:`~mpc2nn.CondensedQP` (detached, on the CPU, float64)."""
        ref = self.reference

        def np_(t):
            return None if t is None else t.detach().cpu().numpy().astype(np.float64)

        state = None if self.state_E is None else (np_(self.state_E), np_(self.state_w))
        return CondensedQP(H=np_(self.H), F=np_(self.F), G=np_(self.G), w=np_(self.w), E=np_(self.E), n_u=ref.n_u,
                           row_labels=ref.row_labels, state_only=state, name=ref.name, sample_box=ref.sample_box,
                           source="torch condensation", output_map=np_(self.T), n_slack=ref.n_slack,
                           slack_shift=float(self.slack_shift.detach()), parameter_sizes=ref.parameter_sizes)


class TorchCondensation:
    """The condensation of one MPC problem (or the data of one QP) as a function of torch tensors.

    Parameters
    ----------
    problem : MPCProblem, CondensedQP, or anything with a ``qp`` attribute (an ImplicitNetwork)
        A QP made by :func:`~mpc2nn.condense` counts as its problem.

    Attributes
    ----------
    names : tuple of str
        The data the QP depends on (:attr:`defaults` gives their values): for an MPC problem
        ``A, B, Q, R, P, u_min, u_max, x_min, x_max`` plus, where the problem has them,
        ``du_min, du_max, du_weight`` (problems whose θ holds ``u_prev``),
        ``soft_quadratic, soft_linear`` (ρ_q, ρ_l), ``terminal_C, terminal_d`` and
        ``stage{j}_C_x, stage{j}_C_u, stage{j}_d`` for the stage constraint ``j``;
        for a QP given directly ``H, F, G, w, E``.
    reference : CondensedQP
        :func:`~mpc2nn.condense` of the problem (or the QP itself).
    terminal_weight : str
        ``"dare"`` or ``"lyapunov"``: ``P`` is recomputed from the data (differentiably)
        unless it is given; ``"given"``: ``P`` is data like the others.

    Examples
    --------
    >>> import torch, mpc2nn
    >>> from mpc2nn.differentiable import TorchCondensation
    >>> cond = TorchCondensation(mpc2nn.systems.double_integrator())
    >>> Q = torch.eye(2, dtype=torch.float64, requires_grad=True)
    >>> qp = cond(Q=Q)
    >>> tuple(qp.H.shape), tuple(qp.G.shape), qp.H.requires_grad
    ((20, 20), (120, 20), True)
    """

    def __init__(self, problem):
        if isinstance(problem, MPCProblem):
            ref = condense(problem)
        elif isinstance(problem, CondensedQP):
            ref = problem
        elif isinstance(getattr(problem, "qp", None), CondensedQP):
            ref = problem.qp
        else:
            raise ProblemDefinitionError(f"problem: expected an MPCProblem, CondensedQP or ImplicitNetwork, got "
                                         f"{type(problem).__name__}")
        self.reference = ref
        self.problem = ref.problem if ref.source == "condense" and ref.problem is not None else None
        if self.problem is None:
            self.terminal_weight = "given"
            self.defaults = {k: np.array(getattr(ref, k)) for k in ("H", "F", "G", "w", "E")}
        else:
            self._init_problem(self.problem)
        self.names = tuple(self.defaults)

    # --- structure, fixed once ------------------------------------------------
    def _init_problem(self, p: MPCProblem) -> None:
        self.terminal_weight = p.terminal_weight_source
        d: dict = dict(A=p.A, B=p.B, Q=p.Q, R=p.R, P=p.P, u_min=p.u_min, u_max=p.u_max, x_min=p.x_min, x_max=p.x_max)
        layout = self.reference.layout
        self._has_up = "u_prev" in layout.slices
        if self._has_up:
            d.update(du_min=p.du_min, du_max=p.du_max,
                     du_weight=np.zeros((p.n_u, p.n_u)) if p.du_weight is None else p.du_weight)
        soft = p.soft_state_penalty
        if isinstance(soft, tuple):
            d.update(soft_quadratic=np.float64(soft[0]), soft_linear=np.float64(soft[1]))
        if p.terminal_constraint is not None:
            d.update(terminal_C=p.terminal_constraint.C, terminal_d=p.terminal_constraint.d)
        for j, con in enumerate(p.constraints):
            d.update({f"stage{j}_C_x": con.C_x, f"stage{j}_C_u": con.C_u, f"stage{j}_d": con.d})
        self.defaults = {k: np.array(v, dtype=np.float64) for k, v in d.items()}
        N, n_x, n_u = p.horizon, p.n_x, p.n_u
        self._N, self._n_x, self._n_u, self._nU = N, n_x, n_u, N * n_u
        self._selectors = [np.asarray(s) for s in layout.selectors(n_u)]
        nU = N * n_u
        self._D = np.eye(nU) - np.eye(nU, k=-n_u)
        self._e = np.zeros((nU, n_u))
        self._e[:n_u] = np.eye(n_u)
        self._Tb = _blocking_matrix(p.move_blocking, N, n_u)
        self._soft = p.soft_state_penalty is not None

        # candidate rows in the order of condense, with their labels, slack keys and existence
        G, w, E, lab, slack, kind = self._candidates({k: torch.tensor(v) for k, v in self.defaults.items()})
        G, w, E = (t.numpy() for t in (G, w, E))
        finite = np.isfinite(w)
        stage_state = (kind == 1) & ~np.any(G, axis=1)     # stage rows on the given state alone
        first = np.flatnonzero(finite & ~stage_state)
        self._stage_state_rows = np.flatnonzero(stage_state) if not self._soft else np.zeros(0, np.int64)
        Gb = G[first] @ self._Tb
        keep, trivial, seen = [], [], set()
        for r, i in enumerate(first):
            if not np.any(Gb[r]):
                if np.any(E[i]):
                    trivial.append(i)
                continue
            key = (Gb[r].tobytes(), E[i].tobytes(), float(w[i]))
            if key in seen:
                continue
            seen.add(key)
            keep.append(i)
        self._rows = np.array(keep, dtype=np.int64)
        self._state_rows = np.concatenate([self._stage_state_rows, np.array(trivial, np.int64)]).astype(np.int64)
        labels = [lab[i] for i in self._rows]
        slack_of = [slack[i] for i in self._rows]
        self._soft_mask = np.array([s is not None for s in slack_of], bool)
        names = list(dict.fromkeys(s for s in slack_of if s is not None))
        if self._soft:
            col = {s: j for j, s in enumerate(names)}
            S = np.zeros((len(keep), len(names)))
            rows = np.flatnonzero(self._soft_mask)
            S[rows, [col[slack_of[i]] for i in rows]] = -1.0
            self._S = S
            labels = [lb + " (soft)" if s else lb for lb, s in zip(labels, self._soft_mask, strict=True)]
            labels += [f"slack of {s} >= 0" for s in names]
        self._n_s = len(names) if self._soft else 0
        if tuple(labels) != tuple(self.reference.row_labels):
            raise SolverError(f"TorchCondensation: the rows found ({len(labels)}) differ from those of condense "
                              f"({self.reference.m}) for problem '{p.name}'; this is a bug, please report it")

    # --- the maps ---------------------------------------------------------------
    def data(self, given: dict | None = None, *, dtype=torch.float64, device=None) -> dict:
        """``{name: tensor}``: the defaults, with the entries of ``given`` (tensors or arrays) in their place.

        Parameters
        ----------
        given : dict of str to tensor or array_like, optional
            Data values by name (names in :attr:`names`), each of the shape of its default. A
            tensor keeps its autograd graph. Bounds (``*_min``, ``*_max``) must stay finite
            exactly where the problem's are (that fixes the constraint rows). Default: none, all
            defaults.
        dtype : torch.dtype
            dtype of the tensors returned (default float64).
        device : torch.device or str, optional
            Device of the tensors returned (default: torch's default device).

        Returns
        -------
        dict of str to torch.Tensor
            One tensor per name of :attr:`names`, in that order.

        Raises
        ------
        ProblemDefinitionError
            An unknown name, or a bound made finite or infinite where the problem's is not.
        ShapeError
            A value whose shape differs from its default.
        """
        given = dict(given or {})
        unknown = sorted(set(given) - set(self.names))
        if unknown:
            raise ProblemDefinitionError(f"data: unknown name(s) {unknown}; this QP depends on {list(self.names)}")
        out = {}
        for k in self.names:
            ref = self.defaults[k]
            v = given.get(k)
            t = torch.tensor(ref, dtype=dtype, device=device) if v is None else torch.as_tensor(
                v, dtype=dtype, device=device)
            if t.shape != ref.shape:
                raise ShapeError(f"{k}: expected shape {tuple(ref.shape)} (the problem's), got {tuple(t.shape)}")
            if v is not None and ref.ndim == 1 and k.endswith(("_min", "_max")):
                lost = torch.isfinite(t).cpu().numpy() != np.isfinite(ref)
                if lost.any():
                    i = int(np.argmax(lost))
                    raise ProblemDefinitionError(
                        f"{k}[{i}]: the problem's bound is {ref[i]:g}; which bounds are finite is fixed by the "
                        "problem (it decides the constraint rows), so give a finite value where the problem has "
                        "one and ±inf where it has none")
            out[k] = t
        return out

    def __call__(self, data: dict | None = None, *, dtype=torch.float64, device=None, **tensors) -> TorchQP:
        """The :class:`TorchQP` at the given data (defaults for the names not given).

        Parameters
        ----------
        data : dict of str to tensor or array_like, optional
            Data values by name, as for :meth:`data`.
        dtype : torch.dtype
            dtype of the QP's tensors (default float64).
        device : torch.device or str, optional
            Device of the QP's tensors (default: torch's default device).
        **tensors : tensor or array_like
            More data values by name; they take precedence over ``data``.

        Returns
        -------
        TorchQP
            The condensed QP, differentiable in the data given as tensors.
        """
        given = {**(data or {}), **tensors}
        d = self.data(given, dtype=dtype, device=device)
        if self.problem is None:
            return self._given(d)
        return self._condense(d, p_given="P" in given)

    def _given(self, d: dict) -> TorchQP:
        ref = self.reference
        dev, dt = d["H"].device, d["H"].dtype
        T = None if ref.output_map is None else torch.as_tensor(ref.output_map, dtype=dt, device=dev)
        sE = sw = None
        if ref.state_only is not None:
            sE, sw = (torch.as_tensor(a, dtype=dt, device=dev) for a in ref.state_only)
        return TorchQP(H=0.5 * (d["H"] + d["H"].T), F=d["F"], G=d["G"], w=d["w"], E=d["E"], T=T, state_E=sE,
                       state_w=sw, slack_shift=torch.tensor(ref.slack_shift, dtype=dt, device=dev), reference=ref)

    def _const(self, a, like):
        return torch.as_tensor(a, dtype=like.dtype, device=like.device)

    def _prediction(self, A, B):
        """``Φ`` (N·n_x, n_x) and ``Γ`` (N·n_x, N·n_u) as :func:`mpc2nn.qp.prediction_matrices` builds them."""
        N, n_x, n_u = self._N, self._n_x, self._n_u
        powers = [torch.eye(n_x, dtype=A.dtype, device=A.device)]
        for _ in range(N):
            powers.append(A @ powers[-1])
        Phi = torch.cat(powers[1:], dim=0)
        AkB = torch.stack([powers[j] @ B for j in range(N)] + [torch.zeros_like(B)])  # (N + 1, n_x, n_u)
        k, j = np.meshgrid(np.arange(N), np.arange(N), indexing="ij")
        idx = torch.as_tensor(np.where(j <= k, k - j, N), device=A.device)
        Gamma = AkB[idx].permute(0, 2, 1, 3).reshape(N * n_x, N * n_u)
        return Phi, Gamma

    def _candidates(self, d: dict):
        """Every row condense may add, in its order: ``(G, w, E, labels, slack keys, kind)``.

        ``kind`` is 1 for stage-constraint rows (those without decision variables restrict
        the state alone), 0 otherwise; ``w`` is ±inf where a bound is absent.
        """
        A, B = d["A"], d["B"]
        N, n_x, n_u, nU = self._N, self._n_x, self._n_u, self._nU
        S_x, S_up = (self._const(s, A) for s in self._selectors[:2])
        n_theta = S_x.shape[1]
        Phi, Gamma = self._prediction(A, B)
        problem = cast(MPCProblem, self.problem)  # only called where the QP was condensed from a problem
        Gs, ws, Es, labels, slacks, kinds = [], [], [], [], [], []

        def block(G, w, E, lab, slack, kind=0):
            Gs.append(G.reshape(-1, nU))
            ws.append(w.reshape(-1))
            Es.append(E.reshape(-1, n_theta))
            labels.extend(lab)
            slacks.extend(slack)
            kinds.extend([kind] * len(lab))

        soft = self._soft
        eye = torch.eye(nU, dtype=A.dtype, device=A.device).reshape(N, n_u, nU)
        pm = torch.stack([eye, -eye], dim=2)                                  # (N, n_u, 2, nU)
        bounds = torch.stack([d["u_max"], -d["u_min"]], dim=1).expand(N, n_u, 2)
        idx = [(k, i, s) for k in range(N) for i in range(n_u) for s in ("max", "min")]
        block(pm, bounds, torch.zeros(N * n_u * 2, n_theta, dtype=A.dtype, device=A.device),
              [f"u_{s}[{i}] at k={k}" for k, i, s in idx], [None] * len(idx))
        if self._has_up:
            D = self._const(self._D, A).reshape(N, n_u, nU)
            e_up = (self._const(self._e, A) @ S_up).reshape(N, n_u, n_theta)
            rate = torch.stack([d["du_max"], -d["du_min"]], dim=1).expand(N, n_u, 2)
            block(torch.stack([D, -D], dim=2), rate, torch.stack([e_up, -e_up], dim=2),
                  [f"du_{s}[{i}] at k={k}" for k, i, s in idx], [None] * len(idx))
        Gk = Gamma.reshape(N, n_x, nU)
        Pk = (Phi @ S_x).reshape(N, n_x, n_theta)
        xb = torch.stack([d["x_max"], -d["x_min"]], dim=1).expand(N, n_x, 2)
        idx = [(k, i, s) for k in range(1, N + 1) for i in range(n_x) for s in ("max", "min")]
        block(torch.stack([Gk, -Gk], dim=2), xb, torch.stack([-Pk, Pk], dim=2),
              [f"x_{s}[{i}] at k={k}" for k, i, s in idx],
              [f"x[{i}] at k={k}" if soft else None for k, i, _ in idx])
        for j, con in enumerate(problem.constraints):
            C_x, C_u, dd = d[f"stage{j}_C_x"], d[f"stage{j}_C_u"], d[f"stage{j}_d"]
            Gk0 = torch.cat([torch.zeros(1, n_x, nU, dtype=A.dtype, device=A.device), Gk[:-1]])
            Pk0 = torch.cat([S_x[None], Pk[:-1]])
            Su = eye.reshape(N, n_u, nU)
            g = C_x @ Gk0 + C_u @ Su                                          # (N, p, nU)
            e = -(C_x @ Pk0)
            p_rows = con.d.shape[0]
            lab = [f"constraints[{j}] row {r} at k={k}" for k in range(N) for r in range(p_rows)]
            has_x = np.any(con.C_x != 0, axis=1)
            block(g, dd.expand(N, p_rows), e, lab,
                  [lab[k * p_rows + r] if soft and has_x[r] else None for k in range(N) for r in range(p_rows)],
                  kind=1)
        if problem.terminal_constraint is not None:
            C, dT = d["terminal_C"], d["terminal_d"]
            rows = dT.shape[0]
            block(C @ Gamma[-n_x:], dT, -(C @ Phi[-n_x:] @ S_x), [f"terminal row {r}" for r in range(rows)],
                  [f"terminal row {r}" if soft else None for r in range(rows)])
        return (torch.cat(Gs), torch.cat(ws), torch.cat(Es), labels, slacks, np.array(kinds))

    def _condense(self, d: dict, p_given: bool = False) -> TorchQP:
        A, B = d["A"], d["B"]
        N, n_x, n_u, nU = self._N, self._n_x, self._n_u, self._nU
        S_x, S_up, S_xr, S_ur = (self._const(s, A) for s in self._selectors)
        Phi, Gamma = self._prediction(A, B)
        Q, R = 0.5 * (d["Q"] + d["Q"].T), 0.5 * (d["R"] + d["R"].T)
        P = 0.5 * (d["P"] + d["P"].T) if p_given else self._terminal(d, A, B, Q, R)
        Qbar = torch.block_diag(*([Q] * (N - 1) + [P]))
        Rbar = torch.block_diag(*([R] * N))
        ones_x = self._const(np.kron(np.ones((N, 1)), np.eye(n_x)), A)
        ones_u = self._const(np.kron(np.ones((N, 1)), np.eye(n_u)), A)
        H = Gamma.T @ Qbar @ Gamma + Rbar
        F = Gamma.T @ Qbar @ (Phi @ S_x - ones_x @ S_xr) - Rbar @ ones_u @ S_ur
        if self._has_up:
            S = 0.5 * (d["du_weight"] + d["du_weight"].T)
            Sbar = torch.block_diag(*([S] * N))
            D, e = self._const(self._D, A), self._const(self._e, A)
            H = H + D.T @ Sbar @ D
            F = F - D.T @ Sbar @ e @ S_up
        Gc, wc, Ec, *_ = self._candidates(d)
        rows = torch.as_tensor(self._rows, device=A.device)
        Tb = self._const(self._Tb, A)
        G, w, E = Gc[rows] @ Tb, wc[rows], Ec[rows]
        H, F = Tb.T @ H @ Tb, Tb.T @ F
        sE = sw = None
        if self._state_rows.size:
            sr = torch.as_tensor(self._state_rows, device=A.device)
            sE, sw = Ec[sr], wc[sr]
        shift = torch.zeros((), dtype=A.dtype, device=A.device)
        T = None if self._Tb.shape == (nU, nU) and np.array_equal(self._Tb, np.eye(nU)) else Tb
        if self._soft:
            rho_q, rho_l = d["soft_quadratic"], d["soft_linear"]
            shift = rho_l / (2.0 * rho_q)
            n_s, nV = self._n_s, G.shape[1]
            S = self._const(self._S, A)
            zeros = torch.zeros(n_s, nV, dtype=A.dtype, device=A.device)
            G = torch.cat([torch.cat([G, S], 1), torch.cat([zeros, -torch.eye(n_s, dtype=A.dtype, device=A.device)],
                                                              1)])
            w = torch.cat([w - shift * self._const(self._soft_mask.astype(float), A),
                           -shift * torch.ones(n_s, dtype=A.dtype, device=A.device)])
            E = torch.cat([E, torch.zeros(n_s, E.shape[1], dtype=A.dtype, device=A.device)])
            H = torch.block_diag(H, rho_q * torch.eye(n_s, dtype=A.dtype, device=A.device))
            F = torch.cat([F, torch.zeros(n_s, F.shape[1], dtype=A.dtype, device=A.device)])
            T = torch.cat([Tb, torch.zeros(nU, n_s, dtype=A.dtype, device=A.device)], 1)
        return TorchQP(H=0.5 * (H + H.T), F=F, G=G, w=w, E=E, T=T, state_E=sE, state_w=sw, slack_shift=shift,
                       reference=self.reference)

    def _terminal(self, d: dict, A, B, Q, R) -> torch.Tensor:
        """``P``: recomputed from the data when the problem computes it (DARE, Lyapunov), else the data."""
        if self.terminal_weight == "dare":
            return dare(A, B, Q, R)
        if self.terminal_weight == "lyapunov":
            return lyapunov(A, Q)
        return 0.5 * (d["P"] + d["P"].T)


def _blocking_matrix(blocks, N: int, n_u: int) -> np.ndarray:
    """``T_b`` (N·n_u, p·n_u) holding the input constant over each block (identity without blocking)."""
    if blocks is None:
        return np.eye(N * n_u)
    hold = np.zeros((N, len(blocks)))
    start = 0
    for j, b in enumerate(blocks):
        hold[start:start + b, j] = 1.0
        start += b
    return np.kron(hold, np.eye(n_u))
