"""Input checks shared by the public constructors (internal).

Each check names the argument, the expected shape in symbols and in numbers,
and what it was given, e.g. ``B: expected shape (n_x, n_u) = (2, 1), got (1, 2)``.
"""

from __future__ import annotations

import contextlib
import math
import threading
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from .exceptions import (
    ComplexValueError,
    IllConditionedWarning,
    InconsistentBoundsError,
    MissingDependencyError,
    NonFiniteError,
    NotPositiveDefiniteError,
    NotPositiveSemidefiniteError,
    NotSymmetricError,
    ProblemDefinitionError,
    ShapeError,
)

#: The type of a dataclass field that is array-like on input and a read-only float64 ndarray once
#: validated: a type checker cannot express the conversion (no converters), so it is left open.
Array = Any

#: Default of a dataclass field that ``__post_init__`` fills in (a bound, a size): typed ``Any`` so that the
#: field can be annotated with the type it holds after construction.
UNSET: Any = None

#: Relative tolerance of the symmetry and semidefiniteness checks on weights, applied after the matrix is
#: normalised (Jacobi-scaled to a unit diagonal, see :func:`unit_diagonal`), so that a change of units of the
#: states or inputs (a diagonal congruence) or of the cost (a positive factor) cannot change the verdict.
WEIGHT_TOL = 1e-10

#: Safety factor ``c`` of the definiteness test: a symmetric eigensolver returns the exact eigenvalues of
#: ``M + E`` with ``‖E‖₂ <= p(n)·eps·‖M‖₂`` (backward stability, ``p(n)`` a modest multiple of ``n``), so an
#: ``n × n`` matrix is proven positive definite when ``λmin > c·n·eps·‖M‖₂`` for it or for a rescaling of it.
PD_SAFETY = 10.0

#: Condition number above which :func:`check_pd` warns (IllConditionedWarning): a float64 solve with such a
#: matrix may lose 8 of its 16 digits, more than the exact solver's certificate (1e-9 relative) allows.
ILL_CONDITIONED = 1e8


def frozen(a) -> np.ndarray:
    """``a`` as a C-contiguous float64 array that cannot be written to."""
    a = np.ascontiguousarray(a, dtype=np.float64)
    a.setflags(write=False)
    return a


def as_matrix(name: str, value, symbols: Sequence[str], shape: Sequence[int | None],
              *, allow_inf: bool = False) -> np.ndarray:
    """Return ``value`` as a float64 array of ``shape`` (``None`` = any size).

    Raises ShapeError naming ``symbols`` and the numbers, ComplexValueError on complex
    entries, NonFiniteError on NaN (and on infinities unless ``allow_inf``).
    """
    arr = real_array(name, value, "a numeric array")
    want = "(" + ", ".join(symbols) + ")" if len(symbols) != 1 else f"({symbols[0]},)"
    nums = tuple(sym if s is None else str(s) for sym, s in zip(symbols, shape, strict=True))
    nums_txt = "(" + ", ".join(nums) + (",)" if len(nums) == 1 else ")")
    if arr.ndim != len(shape) or any(s is not None and a != s for a, s in zip(arr.shape, shape, strict=True)):
        raise ShapeError(f"{name}: expected shape {want} = {nums_txt}, got {arr.shape}")
    if np.isnan(arr).any():
        idx = tuple(int(i) for i in np.argwhere(np.isnan(arr))[0])
        raise NonFiniteError(f"{name}: contains NaN (first at index {idx}); every entry must be a number")
    if not allow_inf and np.isinf(arr).any():
        idx = tuple(int(i) for i in np.argwhere(np.isinf(arr))[0])
        raise NonFiniteError(f"{name}: contains an infinity (first at index {idx}); "
                             "only bounds may be infinite")
    return arr


def real_array(name: str, value, what: str) -> np.ndarray:
    """``value`` as a float64 array; complex entries raise ComplexValueError, non-numbers ShapeError."""
    try:
        raw = np.asarray(value)
    except (TypeError, ValueError):
        raw = None
    if raw is not None and raw.dtype.kind == "c":
        bad = np.flatnonzero(raw.imag.ravel() != 0)
        where = (f"imaginary part {raw.imag.ravel()[bad[0]]:g} at flat index {int(bad[0])}" if bad.size
                 else "every imaginary part is 0")
        raise ComplexValueError(f"{name}: expected real numbers, got a complex array ({where}); mpc2nn works in "
                                "real arithmetic only: pass the real part (value.real) if the imaginary parts "
                                "are rounding noise")
    try:
        return np.array(value if raw is None else raw, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ShapeError(f"{name}: expected {what}, got {type(value).__name__} "
                         f"that numpy cannot convert ({exc})") from None


def unit_diagonal(M: np.ndarray) -> np.ndarray:
    """``(n,)`` factors ``d`` with ``diag(d) M diag(d)`` of unit diagonal (``d_i = |M_ii|^-½``, 1 where ``M_ii = 0``).

    ``diag(d) M diag(d)`` is a congruence, so it has the same inertia (definiteness) as ``M``,
    and it is the same matrix whatever units the variables of ``M`` are measured in.
    """
    diag = np.abs(np.diag(M))
    with np.errstate(divide="ignore"):
        return np.where(diag > 0, 1.0 / np.sqrt(np.where(diag > 0, diag, 1.0)), 1.0)


def _lowest_ratio(M: np.ndarray) -> float:
    """``λmin(M) / max|λ(M)|`` of a symmetric matrix (``-inf`` for the zero matrix)."""
    eig = np.linalg.eigvalsh(M)
    top = float(np.abs(eig).max(initial=0.0))
    return float(eig[0]) / top if top > 0 else -np.inf


def check_symmetric(name: str, M: np.ndarray) -> np.ndarray:
    """Raise NotSymmetricError unless the normalised ``S = DMD`` (:func:`unit_diagonal`) has
    ``max|S - Sᵀ| <= WEIGHT_TOL·max|S|``; return ½(M+Mᵀ). A matrix that is not square is a ShapeError.
    """
    if M.ndim != 2 or M.shape[0] != M.shape[1]:
        raise ShapeError(f"{name}: expected a square matrix (n, n), got shape {M.shape}")
    d = unit_diagonal(M)
    S = d[:, None] * M * d[None, :]
    scale = float(np.abs(S).max(initial=0.0))
    asym = float(np.abs(S - S.T).max(initial=0.0))
    if asym > WEIGHT_TOL * scale:
        raise NotSymmetricError(
            f"{name}: expected a symmetric matrix (tolerance {WEIGHT_TOL:g} relative to its largest entry, after "
            f"scaling to a unit diagonal), got max|{name} - {name}ᵀ| = {float(np.abs(M - M.T).max()):.3g} "
            f"({asym / scale:.3g} relative)")
    return 0.5 * (M + M.T)


def check_psd(name: str, M: np.ndarray) -> np.ndarray:
    """Symmetric and ``λmin(S) >= -WEIGHT_TOL·‖S‖₂`` for the normalised ``S = DMD`` (:func:`unit_diagonal`),
    else a named error. The test does not depend on the units of the variables or of the cost.
    """
    M = check_symmetric(name, M)
    if not M.size:
        return M
    d = unit_diagonal(M)
    eig = np.linalg.eigvalsh(d[:, None] * M * d[None, :])
    scale = float(np.abs(eig).max())
    if eig[0] < -WEIGHT_TOL * scale:
        raise NotPositiveSemidefiniteError(
            f"{name}: expected a positive semidefinite matrix (tolerance λmin >= -{WEIGHT_TOL:g}·‖{name}‖₂ after "
            f"scaling to a unit diagonal), got smallest eigenvalue {float(np.linalg.eigvalsh(M)[0]):.6g} "
            f"({eig[0] / scale:.3g} relative after scaling)")
    return M


def check_pd(name: str, M: np.ndarray) -> np.ndarray:
    """Symmetric and proven positive definite, else a named error.

    Proven means ``λmin > PD_SAFETY·n·eps·‖·‖₂`` (the eigensolver's backward error, see
    :data:`PD_SAFETY`) for ``M`` itself or for its normalisation ``DMD``
    (:func:`unit_diagonal`; a congruence, so either proves it): the verdict depends neither on
    units nor on a scale of the cost. A matrix whose eigenvalues are all positive but too close
    to this limit is refused as ill-conditioned (with its condition number), not as indefinite.
    """
    M = check_symmetric(name, M)
    n = M.shape[0]
    if n == 0:
        return M
    limit = PD_SAFETY * max(n, 1) * np.finfo(np.float64).eps
    d = unit_diagonal(M)
    ratio = max(_lowest_ratio(cand) for cand in (M, d[:, None] * M * d[None, :]))
    if ratio > limit:
        if ratio * ILL_CONDITIONED < 1.0:
            warnings.warn(f"{name}: positive definite, but its condition number is {1.0 / ratio:.3g} (the better of "
                          f"{name} and {name} scaled to a unit diagonal): float64 solves with it may lose "
                          f"{np.log10(1.0 / ratio):.0f} of 16 digits, so exact solutions may come back uncertified; "
                          "measure its variables in comparable units (or shorten the horizon if it is a condensed "
                          "Hessian)", IllConditionedWarning, stacklevel=3)
        return M
    lam_min = float(np.linalg.eigvalsh(M)[0])
    if ratio > 0:
        raise NotPositiveDefiniteError(
            f"{name}: too ill-conditioned to be proven positive definite in float64: its eigenvalues are "
            f"positive, but the condition number {1.0 / ratio:.3g} (the better of {name} and {name} scaled to a "
            f"unit diagonal) exceeds 1/({PD_SAFETY:g}·n·eps) = {1.0 / limit:.3g} for n = {n}, so rounding could "
            "make it singular; measure its variables in comparable units (or shorten the horizon if it is a "
            "condensed Hessian)")
    raise NotPositiveDefiniteError(
        f"{name}: expected a positive definite matrix, got smallest eigenvalue {lam_min:.6g} "
        f"(λmin must exceed {PD_SAFETY:g}·n·eps·‖{name}‖₂ for {name} or for {name} scaled to a unit diagonal)")


#: Relative singular-value threshold of :func:`numerical_rank` (after equilibration): singular values below
#: it times the largest count as zero. Far above float64 rounding (1e-16) and below any physical coupling.
RANK_TOL = 1e-9

#: Sweeps of the row and column equilibration of :func:`equilibrate` (each halves the log-spread of the
#: row and column norms; 30 bring them to within a factor ~1 + 1e-9 of 1 for any float64 matrix).
EQUILIBRATE_SWEEPS = 30

#: The sweeps stop early once every nonzero row and column maximum is within ``exp(±EQUILIBRATED)`` of 1:
#: closer than that changes no singular value ratio that :data:`RANK_TOL` could see.
EQUILIBRATED = 1e-12


def equilibrate(M: np.ndarray) -> np.ndarray:
    """``R M C`` with positive diagonal ``R``, ``C`` making every nonzero row and column of largest
    magnitude 1 (Ruiz's iteration). Row and column scalings do not change the rank, and they undo any
    change of units of the rows and columns, so a rank decided on the result does not depend on units.
    """
    S = np.array(M, dtype=np.result_type(M, np.float64))
    for _ in range(EQUILIBRATE_SWEEPS):
        rows = np.abs(S).max(axis=1, initial=0.0)
        cols = np.abs(S).max(axis=0, initial=0.0)
        r = np.where(rows > 0, 1.0 / np.sqrt(np.where(rows > 0, rows, 1.0)), 1.0)
        c = np.where(cols > 0, 1.0 / np.sqrt(np.where(cols > 0, cols, 1.0)), 1.0)
        S = r[:, None] * S * c[None, :]
        if np.all(np.abs(np.log(np.where(rows > 0, rows, 1.0))) < EQUILIBRATED) and \
                np.all(np.abs(np.log(np.where(cols > 0, cols, 1.0))) < EQUILIBRATED):
            break
    return S


def numerical_rank(M: np.ndarray, tol: float = RANK_TOL) -> int:
    """Rank of ``M`` decided after :func:`equilibrate`: singular values above ``tol·σmax`` count.

    The same answer for ``M`` and ``R M C`` (any positive diagonal ``R``, ``C``): rows and columns
    may be measured in any units.
    """
    if M.size == 0:
        return 0
    sv = np.linalg.svd(equilibrate(M), compute_uv=False)
    return int(np.sum(sv > tol * sv[0])) if sv[0] > 0 else 0


def as_states(X, n_x: int, name: str = "X", sym: str = "n_x", what: str = "numeric states") -> np.ndarray:
    """States as ``(B, n_x)`` float64; a single state ``(n_x,)`` becomes ``B = 1``.

    NaN or infinite states are *not* rejected here: batched callers report them
    per sample. Wrong shapes raise ShapeError.
    """
    arr = real_array(name, X, what)
    if arr.ndim == 1 and arr.shape[0] == n_x:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] != n_x:
        raise ShapeError(f"{name}: expected shape (B, {sym}) = (B, {n_x}) or ({sym},) = ({n_x},), got {arr.shape}")
    return arr


def as_box(name: str, box, n: int, sym: str = "n_x", *, finite: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """A box ``(lo, hi)`` as two float64 arrays of shape ``(n,)`` with ``lo <= hi`` (finite unless not ``finite``).

    The one box check of the package: errors name the argument, the expected shape and the offending entry.
    """
    try:
        lo_raw, hi_raw = box
    except (TypeError, ValueError):
        raise ShapeError(f"{name}: expected a pair (lo, hi) of arrays of shape ({sym},) = ({n},), got "
                         f"{type(box).__name__}") from None
    lo = as_matrix(f"{name} lo", lo_raw, (sym,), (n,), allow_inf=not finite)
    hi = as_matrix(f"{name} hi", hi_raw, (sym,), (n,), allow_inf=not finite)
    if np.any(lo > hi):
        i = int(np.argmax(lo > hi))
        raise InconsistentBoundsError(f"{name}: lo[{i}] = {lo[i]:g} > hi[{i}] = {hi[i]:g}; each lower corner "
                                      "must not exceed the upper one")
    return lo, hi


#: Largest count :func:`as_count` accepts by default: a count of samples, steps or draws beyond it could not
#: be held in memory (2^40 float64 numbers are 8 TiB), so it is a mistake, refused before numpy fails.
MAX_COUNT = 2**40


def as_count(name: str, value, minimum: int = 0, maximum: int | None = MAX_COUNT) -> int:
    """``value`` as an int in ``[minimum, maximum]`` (no upper limit for ``maximum=None``); booleans, floats and
    strings are refused with a named error.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ProblemDefinitionError(f"{name}: expected an integer >= {minimum}, got {value!r} "
                                     f"({type(value).__name__})")
    if value < minimum:
        raise ProblemDefinitionError(f"{name}: expected an integer >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ProblemDefinitionError(f"{name}: {value} is more than this can hold (at most {maximum}); "
                                     "ask for fewer")
    return int(value)


def as_positive(name: str, value, what: str = "a finite number > 0") -> float:
    """``value`` as a finite float > 0; booleans, strings, non-numbers and numbers too large for a float are
    refused with a named error (``what`` says what was expected, e.g. the unit).
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ProblemDefinitionError(f"{name}: expected {what}, got {value!r} ({type(value).__name__})")
    try:
        v = float(value)
    except OverflowError:
        v = math.inf
    if not (math.isfinite(v) and v > 0):
        raise ProblemDefinitionError(f"{name}: expected {what}, got {value!r}")
    return v


def as_path(name: str, value):
    """``value`` as a :class:`pathlib.Path`; anything but a string or path-like is an UnsupportedObjectError."""
    import os
    from pathlib import Path

    if not isinstance(value, (str, os.PathLike)):
        from .exceptions import UnsupportedObjectError

        raise UnsupportedObjectError(f"{name}: expected a file path (str or os.PathLike), got "
                                     f"{type(value).__name__} {value!r:.60}")
    return Path(value)


def as_seed(name: str, value):
    """A seed for :func:`numpy.random.default_rng`: an integer >= 0, a SeedSequence or a Generator."""
    if isinstance(value, (np.random.SeedSequence, np.random.Generator)):
        return value
    return as_count(name, value, 0, maximum=None)


#: Held while a block changes the process's warning filters (:func:`ignoring_warnings`): before Python 3.14
#: ``warnings.catch_warnings`` saves and restores one global list, so two threads interleaving it left a
#: filter installed for good.
WARNINGS_LOCK = threading.RLock()


@contextlib.contextmanager
def ignoring_warnings(category: type[Warning], message: str = ""):
    """Ignore warnings of ``category`` (whose text starts with ``message``) inside the block, thread-safely.

    The filters are changed under :data:`WARNINGS_LOCK`, so concurrent blocks take turns and the
    filters are restored to what they were.
    """
    with WARNINGS_LOCK, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=message, category=category)
        yield


def require(module: str, extra: str):
    """Import an optional dependency or raise MissingDependencyError naming the extra."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"{module} is required for this feature: pip install 'mpc2nn[{extra}]' ({exc})") from None


def loaded_torch():
    """The torch module if something has imported it already, else ``None`` (never imports it).

    An object can only be a torch tensor or module once torch is loaded, so this tells
    whether to look for one without paying for the import.
    """
    import sys

    return sys.modules.get("torch")


def torch_dtype(module):
    """The dtype of a torch module's first parameter (or buffer); float64 for a module with neither."""
    torch = loaded_torch()
    for tensors in (module.parameters(), module.buffers()):
        first = next(iter(tensors), None)
        if first is not None:
            return first.dtype
    return torch.float64


def torch_function(module):
    """``x (n,) -> y`` of a torch module called on one sample (in its parameters' dtype, no gradients)."""
    torch = loaded_torch()

    dtype = torch_dtype(module)

    def evaluate(x):
        with torch.no_grad():
            return module(torch.as_tensor(np.asarray(x, float)[None, :], dtype=dtype))[0].double().numpy()

    return evaluate
