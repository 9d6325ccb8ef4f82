"""Condensation: the parametric QP of an MPC problem, its parameters and sparse form."""

from ._condense import as_qp, condense
from ._condensed import CondensedQP
from ._kkt import KKTResiduals
from ._parameters import ParameterLayout
from ._prediction import prediction_matrices
from ._redundancy import inactive_rows
from ._sparse import SparseQP, sparse_form

__all__ = ["CondensedQP", "KKTResiduals", "SparseQP", "condense", "as_qp", "prediction_matrices",
           "ParameterLayout", "sparse_form", "inactive_rows"]
