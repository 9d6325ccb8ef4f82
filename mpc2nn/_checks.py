"""Input checks shared by the public constructors (internal).

Each check names the argument, the expected shape in symbols and in numbers,
and what it was given, e.g. ``B: expected shape (n_x, n_u) = (2, 1), got (1, 2)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .exceptions import (
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

#: Relative tolerance of the symmetry and definiteness checks on weights.
WEIGHT_TOL = 1e-10


def frozen(a) -> np.ndarray:
    """``a`` as a C-contiguous float64 array that cannot be written to."""
    a = np.ascontiguousarray(a, dtype=np.float64)
    a.setflags(write=False)
    return a


def as_matrix(name: str, value, symbols: Sequence[str], shape: Sequence[int | None],
              *, allow_inf: bool = False) -> np.ndarray:
    """Return ``value`` as a float64 array of ``shape`` (``None`` = any size).

    Raises ShapeError naming ``symbols`` and the numbers, NonFiniteError on NaN
    (and on infinities unless ``allow_inf``).
    """
    try:
        arr = np.array(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ShapeError(f"{name}: expected a numeric array, got {type(value).__name__} "
                         f"that numpy cannot convert ({exc})") from None
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


def check_symmetric(name: str, M: np.ndarray) -> np.ndarray:
    """Raise NotSymmetricError unless ``max|M - Mᵀ| <= WEIGHT_TOL·max(1, max|M|)``; return ½(M+Mᵀ)."""
    scale = max(1.0, float(np.abs(M).max(initial=0.0)))
    asym = float(np.abs(M - M.T).max(initial=0.0))
    if asym > WEIGHT_TOL * scale:
        raise NotSymmetricError(
            f"{name}: expected a symmetric matrix (tolerance {WEIGHT_TOL:g}·max(1, max|{name}|) = "
            f"{WEIGHT_TOL * scale:.3g}), got max|{name} - {name}ᵀ| = {asym:.3g}")
    return 0.5 * (M + M.T)


def check_psd(name: str, M: np.ndarray) -> np.ndarray:
    """Symmetric and ``λmin(M) >= -WEIGHT_TOL·max(1, ‖M‖₂)``, else a named error."""
    M = check_symmetric(name, M)
    eig = np.linalg.eigvalsh(M) if M.size else np.zeros(0)
    scale = max(1.0, float(np.abs(eig).max(initial=0.0)))
    if eig.size and eig[0] < -WEIGHT_TOL * scale:
        raise NotPositiveSemidefiniteError(
            f"{name}: expected a positive semidefinite matrix (tolerance λmin >= -{WEIGHT_TOL:g}·"
            f"max(1, ‖{name}‖₂)), got smallest eigenvalue {eig[0]:.6g}")
    return M


def check_pd(name: str, M: np.ndarray) -> np.ndarray:
    """Symmetric and ``λmin(M) > WEIGHT_TOL·max(1, ‖M‖₂)``, else a named error."""
    M = check_symmetric(name, M)
    eig = np.linalg.eigvalsh(M)
    scale = max(1.0, float(np.abs(eig).max(initial=0.0)))
    if eig[0] <= WEIGHT_TOL * scale:
        raise NotPositiveDefiniteError(
            f"{name}: expected a positive definite matrix (λmin > {WEIGHT_TOL:g}·max(1, ‖{name}‖₂)), "
            f"got smallest eigenvalue {eig[0]:.6g}")
    return M


def as_states(X, n_x: int, name: str = "X", sym: str = "n_x") -> np.ndarray:
    """States as ``(B, n_x)`` float64; a single state ``(n_x,)`` becomes ``B = 1``.

    NaN or infinite states are *not* rejected here: batched callers report them
    per sample. Wrong shapes raise ShapeError.
    """
    try:
        arr = np.array(X, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ShapeError(f"{name}: expected numeric states, got {type(X).__name__} ({exc})") from None
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


def as_count(name: str, value, minimum: int = 0) -> int:
    """``value`` as an int ``>= minimum``; booleans, floats and strings are refused with a named error."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ProblemDefinitionError(f"{name}: expected an integer >= {minimum}, got {value!r} "
                                     f"({type(value).__name__})")
    if value < minimum:
        raise ProblemDefinitionError(f"{name}: expected an integer >= {minimum}, got {value}")
    return int(value)


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
