"""The converse direction: from an implicit ReLU network back to an MPC-like QP.

The network ``y = W relu(y) + Y x + b``, ``U = W_f relu(y) + Y_f x`` is
*MPC-like* when :func:`mpc2nn.compile` builds it from some QP
``min ½UᵀHU + xᵀFᵀU  s.t.  GU <= w + Ex`` (``H ≻ 0``) with some positive row
steps ``α``. Write ``A = I - W`` and ``D = diag(1/α)``. Since
``W = I - diag(α) G H⁻¹ Gᵀ`` and ``W_f = -H⁻¹Gᵀ``, the network is MPC-like iff

    D A = W_fᵀ H W_f      for a positive diagonal D and H ≻ 0,            (1)

a linear matrix inequality in ``(D, H)``. Given a solution, the QP is

    G = -W_fᵀ H,   F = -H Y_f,   E = -D Y - W_fᵀ H Y_f,   w = -D b,        (2)

and ``compile(qp, alpha=1/diag(D))`` gives back ``(W, Y, b, W_f, Y_f)``: ``Y``,
``b`` and ``Y_f`` never obstruct, only ``(W, W_f)`` do.

**Deciding (1) exactly.** With the thin SVD ``W_f = U_r Σ V_rᵀ`` (rank r),
``W_fᵀ H W_f = V_r (Σ U_rᵀ H U_r Σ) V_rᵀ`` ranges over all ``V_r K V_rᵀ`` with
``K ≻ 0`` as H ranges over positive definite matrices. So (1) holds iff
(a) some positive diagonal D makes ``S = D A`` symmetric, (b) ``S ⪰ 0`` and
(c) ``ker A = ker W_f``. Symmetry ``d_i A_ij = d_j A_ji`` fixes the ratios
``d_j / d_i`` along every edge of the graph of non-zero off-diagonal entries,
so D is unique up to one positive factor per connected component; those
factors do not affect (b) or (c) because S is block diagonal over the
components. :func:`to_qp` therefore decides (1) by linear algebra (a spanning
tree, one eigen-decomposition per component, one SVD) and builds H exactly as
``H = U_r Σ⁻¹ (V_rᵀ S V_r) Σ⁻¹ U_rᵀ + c U_⊥U_⊥ᵀ``. When (1) fails it returns an
:class:`Obstruction` that proves no ``(D, H)`` exists, and the nearest
MPC-like network from the SDP

    minimise ‖D A - V_r K V_rᵀ‖_F   over   d >= 1,  K ⪰ ε I,

solved with cvxpy (``pip install 'mpc2nn[converse]'``). ``method="sdp"``
solves this SDP also in the exact case and then polishes its ``D`` onto the
exact solution set, as a cross-check of the two routes.

**Recovering an MPC cost.** :func:`to_mpc` asks for weights ``(Q, R, P)`` on a
known model ``(A, B, N)`` whose condensed ``H(Q,R,P)``, ``F(Q,R,P)`` reproduce
the whole interior law ``U = Y_f x`` (``H Y_f + F = 0``) *and* lie in the set
of Hessians allowed by (1) (so that the constraint rows (2) reproduce the
constrained law too). Both conditions are linear in ``(Q, R, P, D)``; the
LMI ``Q ⪰ 0, P ⪰ 0, R ⪰ I`` is solved by SDP and the equalities are then
polished by a least-norm linear correction.

**Other activations.** :func:`relu_approximation` writes tanh, sigmoid,
hardtanh and leaky ReLU as ``c + Σ β_k relu(a_k (z - t_k))`` with a certified
error; :func:`widen` turns a network with that activation into a wider ReLU
network, to which :func:`to_qp` applies.
"""

from ..implicit import ImplicitWeights
from ._activations import ACTIVATIONS, ReluApproximation, WidenedNetwork, relu_approximation, widen
from ._to_mpc import ROW_TOL, MPCRecovery, to_mpc
from ._to_qp import CONVERSE_TOL, ConverseResult, HessianFamily, Obstruction, to_qp

__all__ = ["ImplicitWeights", "Obstruction", "HessianFamily", "ConverseResult", "to_qp", "MPCRecovery", "to_mpc",
           "ReluApproximation", "relu_approximation", "WidenedNetwork", "widen", "ACTIVATIONS", "CONVERSE_TOL",
           "ROW_TOL"]
