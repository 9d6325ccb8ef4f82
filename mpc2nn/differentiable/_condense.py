"""The condensation of :func:`mpc2nn.condense` in torch: :class:`TorchCondensation`, :class:`TorchQP`.

The formulas are those of :mod:`mpc2nn.qp` (the module docstring there), written with
torch operations so that autograd reaches the problem data: ``A, B, Q, R, P``, the
bounds, the rate weight, the outputs ``y = C x + D u`` (``C``, ``D``, the output weight
``Q_y`` and the output bounds; ``θ`` holds ``y_ref`` after ``u_ref`` where the problem
tracks outputs), the soft-constraint weights (``ρ_q, ρ_l`` of the state rows and, with
their own values, of the output rows) and the stage and terminal constraint data.

Which constraint rows exist is *structure*, fixed once from the problem's own numbers
when the condensation is built: a row exists where its bound is finite, rows that
carry no decision variable are kept apart (``state_only``) or dropped, exact
duplicates are dropped, and an output row with ``D ≠ 0`` bounds ``y_0..y_{N-1}``, one
with ``D = 0`` bounds ``y_1..y_N``, as :func:`~mpc2nn.condense` decides them. The data
may then change (training), the rows stay; the row labels are checked against
:func:`~mpc2nn.condense` when the condensation is built. Data that would change the
structure are refused by name rather than condensed into a QP that differs from
:func:`~mpc2nn.condense`'s at the same data: a bound made finite or infinite, a zero row
of ``D`` made nonzero (or the reverse) on a bounded output, an output weight on a
tracking problem whose ``θ`` has no ``y_ref``, and (checked on every call, within
:data:`STRUCTURE_ROW_TOL`) a row that was dropped as a duplicate no longer equal to its
twin, or a row without decision variables that gains some.

A terminal weight the problem computes (``P="dare"`` or ``"lyapunov"``) is recomputed
from the data (with an output weight, from the combined stage cost of
:func:`mpc2nn.problem.stage_weights`: ``Q + CᵀQ_yC``, ``R + DᵀQ_yD`` and the cross term
``CᵀQ_yD``) unless ``P`` is given; a terminal set the problem computes
(``terminal_set="lqr"``) is data like any polytope (``terminal_C``, ``terminal_d``): it
does not follow ``Q`` and ``R``.

A QP given directly (a :class:`~mpc2nn.CondensedQP` not condensed from an
:class:`~mpc2nn.MPCProblem`) has the data ``H, F, G, w, E`` themselves.
"""

from __future__ import annotations

from typing import cast

import numpy as np
import torch

from ..exceptions import ProblemDefinitionError, ShapeError, SolverError
from ..problem import MPCProblem
from ..qp import CondensedQP, condense
from ._riccati import dare, lyapunov
from ._torch_qp import TorchQP

__all__ = ["TorchCondensation", "STRUCTURE_ROW_TOL"]

#: A row that :func:`~mpc2nn.condense` dropped at the problem's data (a duplicate of an earlier row, or
#: one without decision variables) must stay so at the data of a call: its difference from its twin
#: (its decision-variable coefficients) may be at most STRUCTURE_ROW_TOL times the largest entry of the
#: rows compared (at least 1). Two formulas for one row differ by round-off, ~1e-16 relative, at any
#: data; 1e-12 leaves four orders of headroom, and a change of the data that separates the rows moves
#: them by far more (by the change itself).
STRUCTURE_ROW_TOL = 1e-12

#: The data names of the soft-constraint weights ``(ρ_q, ρ_l)`` of each group of softened rows.
_PENALTY_NAMES = {"state": ("soft_quadratic", "soft_linear"), "output": ("soft_output_quadratic", "soft_output_linear")}


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
        ``C, D, output_weight, y_min, y_max`` (problems with outputs; ``output_weight`` is
        zero where the problem gives none), ``soft_quadratic, soft_linear`` (ρ_q, ρ_l of
        the state rows), ``soft_output_quadratic, soft_output_linear`` (those of the output
        rows), ``terminal_C, terminal_d`` and ``stage{j}_C_x, stage{j}_C_u, stage{j}_d``
        for the stage constraint ``j``; for a QP given directly ``H, F, G, w, E``.
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
        self._n_y = n_y = p.n_y
        self._has_weight = p.output_weight is not None
        if n_y:
            d.update(C=p.C, D=p.D, output_weight=np.zeros((n_y, n_y)) if p.output_weight is None else p.output_weight,
                     y_min=p.y_min, y_max=p.y_max)
            # which outputs feed through (their bounds hold at k = 0..N-1, the others' at k = 1..N)
            self._feed = np.any(p.D != 0, axis=1)
            self._bounded = np.isfinite(p.y_min) | np.isfinite(p.y_max)
        # with tracking, an output weight needs y_ref in θ: it is there only where the problem's weight is nonzero
        self._weight_free = not p.tracking or "y_ref" in layout.slices
        for group, value in (("state", p.soft_state_penalty), ("output", p.soft_output_penalty)):
            if value is not None:
                q, lin = _PENALTY_NAMES[group]
                d.update({q: np.float64(value[0]), lin: np.float64(value[1])})
        if p.terminal_constraint is not None:
            d.update(terminal_C=p.terminal_constraint.C, terminal_d=p.terminal_constraint.d)
        for j, con in enumerate(p.constraints):
            d.update({f"stage{j}_C_x": con.C_x, f"stage{j}_C_u": con.C_u, f"stage{j}_d": con.d})
        self.defaults = {k: np.array(v, dtype=np.float64) for k, v in d.items()}
        N, n_x, n_u = p.horizon, p.n_x, p.n_u
        self._N, self._n_x, self._n_u, self._nU = N, n_x, n_u, N * n_u
        self._selectors = [np.asarray(s) for s in layout.selectors(n_u)] + [layout.selector("y_ref", n_y)]
        nU = N * n_u
        self._D = np.eye(nU) - np.eye(nU, k=-n_u)
        self._e = np.zeros((nU, n_u))
        self._e[:n_u] = np.eye(n_u)
        self._Tb = _blocking_matrix(p.move_blocking, N, n_u)
        self._soft = p.soft_state_penalty is not None

        # candidate rows in the order of condense, with their labels, slack keys and existence
        G, w, E, lab, slack, kind = self._candidates({k: torch.tensor(v) for k, v in self.defaults.items()})
        G, w, E = (t.numpy() for t in (G, w, E))
        self._labels = lab
        finite = np.isfinite(w)
        stage_state = (kind == 1) & ~np.any(G, axis=1)     # stage rows on the given state alone
        first = np.flatnonzero(finite & ~stage_state)
        self._stage_state_rows = np.flatnonzero(stage_state) if not self._soft else np.zeros(0, np.int64)
        Gb = G[first] @ self._Tb
        keep, trivial, empty, twins = [], [], [], []
        seen: dict = {}
        for r, i in enumerate(first):
            if not np.any(Gb[r]):
                empty.append(i)
                if np.any(E[i]):
                    trivial.append(i)
                continue
            key = (Gb[r].tobytes(), E[i].tobytes(), float(w[i]))
            if key in seen:
                twins.append((i, seen[key]))
                continue
            seen[key] = i
            keep.append(i)
        self._rows = np.array(keep, dtype=np.int64)
        self._state_rows = np.concatenate([self._stage_state_rows, np.array(trivial, np.int64)]).astype(np.int64)
        # rows that must keep their structure at other data (STRUCTURE_ROW_TOL): no decision variables, twins
        self._empty_rows = np.concatenate([np.flatnonzero(stage_state), np.array(empty, np.int64)]).astype(np.int64)
        self._twins = np.array(twins, dtype=np.int64).reshape(-1, 2)
        labels = [lab[i] for i in self._rows]
        slack_of = [slack[i] for i in self._rows]
        self._soft_mask = np.array([s is not None for s in slack_of], bool)
        names = list(dict.fromkeys(s for s in slack_of if s is not None))
        self._n_s = len(names)
        if self._n_s:
            col = {s: j for j, s in enumerate(names)}
            S = np.zeros((len(keep), len(names)))
            rows = np.flatnonzero(self._soft_mask)
            S[rows, [col[slack_of[i]] for i in rows]] = -1.0
            self._S = S
            # the groups of the slacks (state, output), and which group each slack is in
            self._groups = list(dict.fromkeys(g for g, _ in names))
            self._slack_group = np.array([self._groups.index(g) for g, _ in names], dtype=np.int64)
            labels = [lb + " (soft)" if s else lb for lb, s in zip(labels, self._soft_mask, strict=True)]
            labels += [f"slack of {s} >= 0" for _, s in names]
        if tuple(labels) != tuple(self.reference.row_labels):
            raise SolverError(f"TorchCondensation: the rows found ({len(labels)}) differ from those of condense "
                              f"({self.reference.m}) for problem '{p.name}'; this is a bug, please report it")

    def check_learnable(self, names) -> None:
        """Refuse, by name, data that cannot be learned without changing the QP's structure.

        A learned value leaves its default at the first optimiser step, so data whose
        structure (module docstring) the problem fixes at its own value cannot be learned:
        the output weight of a tracking problem whose ``θ`` has no ``y_ref`` (its weight is
        zero or absent), and ``D`` where a bounded output has a zero row of ``D``.

        Parameters
        ----------
        names : sequence of str
            The data to be learned (names in :attr:`names`).

        Raises
        ------
        ProblemDefinitionError
            One of ``names`` cannot be learned; the message says what to do instead.

        Examples
        --------
        >>> import mpc2nn
        >>> from mpc2nn.differentiable import TorchCondensation
        >>> p = mpc2nn.systems.double_integrator().replace(horizon=3, C=[[1.0, 0.0]], y_max=[4.0])
        >>> cond = TorchCondensation(p)
        >>> cond.check_learnable(["C", "output_weight"])   # nothing raised: these can be learned
        >>> try:
        ...     cond.check_learnable(["D"])                # D = 0 fixes the steps y is bounded at
        ... except mpc2nn.ProblemDefinitionError as exc:
        ...     print(str(exc)[:38])
        learn: D cannot be learned here: row 0
        """
        names = set(names)
        if self.problem is None:
            return
        if "output_weight" in names:
            self._refuse_weight()
        if "D" in names and self._n_y:
            zero = self._bounded & ~self._feed
            if zero.any():
                i = int(np.argmax(zero))
                raise ProblemDefinitionError(
                    f"learn: D cannot be learned here: row {i} of the problem's D is zero and output {i} is "
                    f"bounded, so its bounds hold at k = 1..N (a nonzero row would move them to k = 0..N-1, other "
                    "constraint rows); give D per call keeping that row zero (e.g. layer(theta, D=mask * V)), or "
                    "build the layer from a problem whose D has the nonzero rows you want to learn")

    def _refuse_weight(self) -> None:
        if not self._weight_free:
            raise ProblemDefinitionError(
                "output_weight: the problem tracks references (tracking=True) with no nonzero output weight, so "
                f"its θ = ({self.reference.layout.describe()}) has no output reference y_ref and an output weight "
                "here would have nothing to track; build the layer from the problem with a nonzero "
                "output_weight (then θ holds y_ref and the weight is data like the others)")

    # --- the maps ---------------------------------------------------------------
    def data(self, given: dict | None = None, *, dtype=torch.float64, device=None) -> dict:
        """``{name: tensor}``: the defaults, with the entries of ``given`` (tensors or arrays) in their place.

        Parameters
        ----------
        given : dict of str to tensor or array_like, optional
            Data values by name (names in :attr:`names`), each of the shape of its default. A
            tensor keeps its autograd graph. Bounds (``*_min``, ``*_max``) must stay finite
            exactly where the problem's are, and the rows of ``D`` of bounded outputs zero exactly
            where the problem's are (that fixes the constraint rows). Default: none, all defaults.
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
            An unknown name, a bound made finite or infinite where the problem's is not, a zero
            row of ``D`` of a bounded output made nonzero (or the reverse), or an output weight
            for a tracking problem whose ``θ`` has no ``y_ref``.
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
            if v is not None and k == "output_weight":
                self._refuse_weight()
            if v is not None and k == "D" and self.problem is not None:
                moved = (torch.any(t != 0, dim=1).cpu().numpy() != self._feed) & self._bounded
                if moved.any():
                    i = int(np.argmax(moved))
                    raise ProblemDefinitionError(
                        f"D[{i}]: row {i} of the problem's D is {'non' if self._feed[i] else ''}zero and output {i} "
                        f"is bounded, which fixes the steps its bounds hold at (k = "
                        f"{'0..N-1' if self._feed[i] else '1..N'}); give a D whose rows of bounded outputs are zero "
                        "exactly where the problem's are, or build the layer from a problem with that D")
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
        return self._condense(d, set(given))

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

    def _outputs(self, d: dict, Phi, Gamma):
        """``(Cy, Dy)``, shapes (N·n_y, n_x) and (N·n_y, N·n_u): ``(y_0, ..., y_{N-1}) = Cy x + Dy U``
        (``Cy = (I ⊗ C) Φ₀``, ``Dy = (I ⊗ C) Γ₀ + I ⊗ D``, ``Φ₀, Γ₀`` predicting ``x_0..x_{N-1}``).
        """
        N, n_x, nU, n_y = self._N, self._n_x, self._nU, self._n_y
        C, Dm = d["C"], d["D"]
        Phi0 = torch.cat([torch.eye(n_x, dtype=Phi.dtype, device=Phi.device), Phi[:-n_x]])
        Gamma0 = torch.cat([torch.zeros(n_x, nU, dtype=Phi.dtype, device=Phi.device), Gamma[:-n_x]])
        Cy = (C @ Phi0.reshape(N, n_x, n_x)).reshape(N * n_y, n_x)
        Dy = (C @ Gamma0.reshape(N, n_x, nU)).reshape(N * n_y, nU) + torch.block_diag(*([Dm] * N))
        return Cy, Dy

    def _candidates(self, d: dict):
        """Every row condense may add, in its order: ``(G, w, E, labels, slack keys, kind)``.

        ``kind`` is 1 for stage-constraint rows (those without decision variables restrict
        the state alone), 0 otherwise; ``w`` is ±inf where a bound is absent. A slack key is
        ``(group, name)``: rows with the same key share a slack, ``group`` (``"state"`` or
        ``"output"``) names the penalty that softens it.
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
              [("state", f"x[{i}] at k={k}") if soft else None for k, i, _ in idx])
        if self._n_y:
            # y_k at k = 0..N-1 for outputs that feed through (D ≠ 0), at k = 1..N for the others (condense)
            n_y, C = self._n_y, d["C"]
            Cy, Dy = self._outputs(d, Phi, Gamma)
            Gy = torch.cat([Dy.reshape(N, n_y, nU), (C @ Gamma[-n_x:])[None]])          # (N + 1, n_y, nU)
            Py = torch.cat([(Cy @ S_x).reshape(N, n_y, n_theta), (C @ Phi[-n_x:] @ S_x)[None]])
            yb = torch.stack([d["y_max"], -d["y_min"]], dim=1).expand(N + 1, n_y, 2)
            steps = [(k, i) for k in range(N + 1) for i in range(n_y)
                     if not ((k == 0 and not self._feed[i]) or (k == N and self._feed[i]))]
            ks = torch.as_tensor([k for k, _ in steps], device=A.device)
            iy = torch.as_tensor([i for _, i in steps], device=A.device)
            soft_y = problem.soft_output_penalty is not None
            block(torch.stack([Gy, -Gy], dim=2)[ks, iy], yb[ks, iy], torch.stack([-Py, Py], dim=2)[ks, iy],
                  [f"y_{s}[{i}] at k={k}" for k, i in steps for s in ("max", "min")],
                  [("output", f"y[{i}] at k={k}") if soft_y else None for k, i in steps for _ in range(2)])
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
                  [("state", lab[k * p_rows + r]) if soft and has_x[r] else None
                   for k in range(N) for r in range(p_rows)],
                  kind=1)
        if problem.terminal_constraint is not None:
            C, dT = d["terminal_C"], d["terminal_d"]
            rows = dT.shape[0]
            block(C @ Gamma[-n_x:], dT, -(C @ Phi[-n_x:] @ S_x), [f"terminal row {r}" for r in range(rows)],
                  [("state", f"terminal row {r}") if soft else None for r in range(rows)])
        return (torch.cat(Gs), torch.cat(ws), torch.cat(Es), labels, slacks, np.array(kinds))

    def _condense(self, d: dict, given) -> TorchQP:
        A, B = d["A"], d["B"]
        N, n_x, n_u, nU = self._N, self._n_x, self._n_u, self._nU
        S_x, S_up, S_xr, S_ur, S_yr = (self._const(s, A) for s in self._selectors)
        Phi, Gamma = self._prediction(A, B)
        Q, R = 0.5 * (d["Q"] + d["Q"].T), 0.5 * (d["R"] + d["R"].T)
        # the output weight enters where the problem has one or the call gives one (condense: output_weight set)
        W = 0.5 * (d["output_weight"] + d["output_weight"].T) if self._n_y and (
            self._has_weight or "output_weight" in given) else None
        P = 0.5 * (d["P"] + d["P"].T) if "P" in given else self._terminal(d, A, B, Q, R, W)
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
        if W is not None:
            Cy, Dy = self._outputs(d, Phi, Gamma)
            Wbar = torch.block_diag(*([W] * N))
            ones_y = self._const(np.kron(np.ones((N, 1)), np.eye(self._n_y)), A)
            H = H + Dy.T @ Wbar @ Dy
            F = F + Dy.T @ Wbar @ (Cy @ S_x - ones_y @ S_yr)
        Gc, wc, Ec, *_ = self._candidates(d)
        Tb = self._const(self._Tb, A)
        self._check_rows(Gc @ Tb, wc, Ec)
        rows = torch.as_tensor(self._rows, device=A.device)
        G, w, E = Gc[rows] @ Tb, wc[rows], Ec[rows]
        H, F = Tb.T @ H @ Tb, Tb.T @ F
        sE = sw = None
        if self._state_rows.size:
            sr = torch.as_tensor(self._state_rows, device=A.device)
            sE, sw = Ec[sr], wc[sr]
        shift = torch.zeros((), dtype=A.dtype, device=A.device)
        T = None if self._Tb.shape == (nU, nU) and np.array_equal(self._Tb, np.eye(nU)) else Tb
        if self._n_s:
            # one slack per softened quantity, each with the weights (ρ_q, ρ_l) of its group, shifted by
            # δ = ρ_l / (2ρ_q)
            group = torch.as_tensor(self._slack_group, device=A.device)
            rho_q = torch.stack([d[_PENALTY_NAMES[g][0]] for g in self._groups])[group]
            rho_l = torch.stack([d[_PENALTY_NAMES[g][1]] for g in self._groups])[group]
            delta = rho_l / (2.0 * rho_q)
            n_s, nV = self._n_s, G.shape[1]
            S = self._const(self._S, A)
            zeros = torch.zeros(n_s, nV, dtype=A.dtype, device=A.device)
            G = torch.cat([torch.cat([G, S], 1), torch.cat([zeros, -torch.eye(n_s, dtype=A.dtype, device=A.device)],
                                                              1)])
            w = torch.cat([w + S @ delta, -delta])  # S is -1 on a softened row's slack: w - δ of that slack
            E = torch.cat([E, torch.zeros(n_s, E.shape[1], dtype=A.dtype, device=A.device)])
            H = torch.block_diag(H, torch.diag(rho_q))
            F = torch.cat([F, torch.zeros(n_s, F.shape[1], dtype=A.dtype, device=A.device)])
            T = torch.cat([Tb, torch.zeros(nU, n_s, dtype=A.dtype, device=A.device)], 1)
            shift = delta[0] if len(self._groups) == 1 else delta
        return TorchQP(H=0.5 * (H + H.T), F=F, G=G, w=w, E=E, T=T, state_E=sE, state_w=sw, slack_shift=shift,
                       reference=self.reference)

    def _check_rows(self, Gb, w, E) -> None:
        """Rows condense dropped at the problem's data stay droppable at these: twins equal, empty rows empty."""
        with torch.no_grad():
            if self._empty_rows.size:
                g = Gb[torch.as_tensor(self._empty_rows, device=Gb.device)].abs().amax(dim=1)
                kept = Gb[torch.as_tensor(self._rows, device=Gb.device)]
                scale = max(1.0, float(kept.abs().max())) if kept.numel() else 1.0
                bad = torch.nonzero(g > STRUCTURE_ROW_TOL * scale).flatten()
                if bad.numel():
                    i = int(self._empty_rows[int(bad[0])])
                    self._refuse_rows(f"constraint row '{self._labels[i]}' has no decision variable at the "
                                      f"problem's data, so condense keeps it apart or drops it, but at the data "
                                      f"given it has (coefficients up to {float(g[int(bad[0])]):.3g})")
            if self._twins.size:
                a, b = (torch.as_tensor(self._twins[:, c], device=Gb.device) for c in (0, 1))
                rows = [torch.cat([Gb[r], E[r], w[r, None]], 1) for r in (a, b)]
                diff = (rows[0] - rows[1]).abs().amax(dim=1)
                size = torch.clamp(torch.maximum(rows[0].abs().amax(dim=1), rows[1].abs().amax(dim=1)), min=1.0)
                bad = torch.nonzero(diff > STRUCTURE_ROW_TOL * size).flatten()
                if bad.numel():
                    i, j = (int(x) for x in self._twins[int(bad[0])])
                    self._refuse_rows(f"constraint row '{self._labels[i]}' equals row '{self._labels[j]}' at the "
                                      "problem's data, so condense drops it, but at the data given they differ "
                                      f"(by {float(diff[int(bad[0])]):.3g})")

    def _refuse_rows(self, what: str) -> None:
        raise ProblemDefinitionError(
            f"data: {what}. The constraint rows are fixed by the problem the layer was built from, so the torch "
            "QP would differ from condense at these data; keep the data that make the rows equal (or empty) "
            "as they are, or build the layer from a problem with the rows you want")

    def _terminal(self, d: dict, A, B, Q, R, W=None) -> torch.Tensor:
        """``P``: recomputed from the data when the problem computes it (DARE, Lyapunov), else the data.

        With an output weight ``W`` the stage cost is that of :func:`mpc2nn.problem.stage_weights`.
        """
        S = None
        if W is not None:
            C, Dm = d["C"], d["D"]
            Q, R, S = Q + C.T @ W @ C, R + Dm.T @ W @ Dm, C.T @ W @ Dm
        if self.terminal_weight == "dare":
            return dare(A, B, Q, R, S)
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
