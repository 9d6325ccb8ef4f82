"""Do the parts of a loaded object agree with each other? (A file can be edited and re-hashed.)

The hashes of a file only say that it was not changed after saving. A file edited and re-hashed (or
written by another program) can hold a QP that is not its embedded problem's, or a network whose
weights are not its QP's; :func:`check_consistent` recomputes each derived part from the parts it
derives from and refuses the object when they disagree.
"""

from __future__ import annotations

import numpy as np

from ..exceptions import FileFormatError, Mpc2nnError
from ..implicit import ImplicitNetwork
from ..implicit import compile as compile_network
from ..interfaces import ExplicitLaw
from ..qp import CondensedQP, condense

__all__ = ["check_consistent", "check_buffers", "CONSISTENCY_TOL"]


#: Relative difference allowed between a stored part and its recomputation, times ``max(1, cond(H))``
#: (the recomputation goes through ``H⁻¹``, whose rounding on another machine or BLAS is ~cond(H)·eps):
#: 1e-12·cond is 1e3 times rounding and far below any edit that changes a solution.
CONSISTENCY_TOL = 1e-12

#: Smallest relative tolerance used (for well-conditioned QPs).
CONSISTENCY_FLOOR = 1e-9

#: Units in the last place a saved float32 (or other low-precision) buffer may differ from its rebuilt value:
#: both round the same float64 computation once, so 1 ulp apart at most; 2 for safety.
BUFFER_ULPS = 2.0


def check_consistent(obj) -> None:
    """Raise FileFormatError (without the path) naming the first part of ``obj`` that disagrees with the others."""
    if isinstance(obj, ExplicitLaw):
        obj = obj.net
    if isinstance(obj, ImplicitNetwork):
        _check_qp(obj.qp)
        _check_network(obj)
    elif isinstance(obj, CondensedQP):
        _check_qp(obj)


def _tol(qp: CondensedQP) -> float:
    eig = np.linalg.eigvalsh(qp.H)
    return max(CONSISTENCY_FLOOR, CONSISTENCY_TOL * float(eig[-1] / eig[0]))


def _differs(a: np.ndarray, b: np.ndarray, tol: float) -> bool:
    if a.shape != b.shape:
        return True
    scale = max(1.0, float(np.abs(b).max(initial=0.0)))
    return bool(np.abs(a - b).max(initial=0.0) > tol * scale)


def _check_qp(qp: CondensedQP) -> None:
    """A QP with an embedded problem is that problem's condensed QP (its rows possibly rescaled)."""
    if qp.problem is None:
        return
    try:
        ref = condense(qp.problem)
    except Mpc2nnError as exc:
        raise FileFormatError(f"the embedded problem cannot be condensed: {exc}") from None
    tol = _tol(ref)
    for name in ("H", "F"):
        if _differs(getattr(qp, name), getattr(ref, name), tol):
            raise FileFormatError(f"the QP's {name} is not that of its embedded problem (condensed again: "
                                  f"they differ beyond {tol:.1e} relative)")
    if qp.m != ref.m or qp.n_u != ref.n_u or qp.n_slack != ref.n_slack:
        raise FileFormatError(f"the QP has m = {qp.m} rows, n_u = {qp.n_u}, {qp.n_slack} slacks; its embedded "
                              f"problem condenses to m = {ref.m}, n_u = {ref.n_u}, {ref.n_slack} slacks")
    # rows: each a positive multiple of the problem's (with_row_scaling keeps the problem)
    rows = np.hstack([qp.G, qp.w[:, None], qp.E])
    want = np.hstack([ref.G, ref.w[:, None], ref.E])
    norm_want = np.linalg.norm(want, axis=1)
    scale = np.linalg.norm(rows, axis=1) / np.where(norm_want > 0, norm_want, 1.0)
    if np.any(~(scale > 0)) or _differs(rows / np.where(scale > 0, scale, 1.0)[:, None], want, tol):
        raise FileFormatError("the QP's constraint rows (G, w, E) are not those of its embedded problem "
                              "(nor positive multiples of them)")


def check_buffers(rebuilt: dict, saved: dict, qp: CondensedQP) -> None:
    """The saved buffers of an explicit network are those its configuration rebuilds (to rounding)."""
    if set(rebuilt) != set(saved):
        raise FileFormatError(f"the explicit network's buffers {sorted(saved)} are not those its construction "
                              f"has ({sorted(rebuilt)})")
    tol = _tol(qp)
    for name, want in rebuilt.items():
        got = saved[name]
        if got.dtype != want.dtype or got.shape != want.shape:
            raise FileFormatError(f"the explicit network's buffer {name} is {got.dtype} {got.shape}, its "
                                  f"construction makes {want.dtype} {want.shape}")
        # float32 buffers are float64 computations rounded once: one unit in the last place apart at most
        t = max(tol, BUFFER_ULPS * float(np.finfo(want.dtype).eps)) if want.dtype.kind == "f" else 0.0
        if _differs(got.astype(float), want.astype(float), t):
            raise FileFormatError(f"the explicit network's buffer {name} is not what its construction and "
                                  f"configuration give (rebuilt: they differ beyond {t:.1e} relative)")


def _check_network(net: ImplicitNetwork) -> None:
    """The weights are those :func:`mpc2nn.compile` makes of the network's QP with its steps α."""
    qp = net.qp
    if net.m != qp.m:
        raise FileFormatError(f"the network has width m = {net.m}, its QP {qp.m} constraint rows")
    try:
        ref = compile_network(qp, alpha=net.alpha)
    except Mpc2nnError as exc:
        raise FileFormatError(f"the network's steps α are not valid: {exc}") from None
    tol = _tol(qp)
    for name in ("W", "Y", "b", "W_f", "Y_f"):
        if _differs(getattr(net, name), getattr(ref, name), tol):
            raise FileFormatError(f"the network's {name} is not what its QP and steps α give (compiled again: "
                                  f"they differ beyond {tol:.1e} relative)")
