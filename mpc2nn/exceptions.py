"""Exception tree of mpc2nn.

Every error raised on purpose by mpc2nn derives from :class:`Mpc2nnError` and
also from the matching built-in, so ``except ValueError`` keeps working.
"""

from __future__ import annotations

__all__ = [
    "Mpc2nnError",
    "ProblemDefinitionError",
    "ShapeError",
    "NonFiniteError",
    "ComplexValueError",
    "NotSymmetricError",
    "NotPositiveSemidefiniteError",
    "NotPositiveDefiniteError",
    "HorizonError",
    "InconsistentBoundsError",
    "RiccatiError",
    "UnstableSystemError",
    "InfeasibleStateError",
    "MissingDependencyError",
    "SolverError",
    "FileFormatError",
    "ProblemFileError",
    "ProblemTooLargeError",
    "UnsupportedObjectError",
    "IllConditionedWarning",
    "ToleranceNotMetError",
]


class Mpc2nnError(Exception):
    """Root of all mpc2nn errors."""


class ProblemDefinitionError(Mpc2nnError, ValueError):
    """The data given to define a problem, network or sample are invalid."""


class ShapeError(ProblemDefinitionError):
    """An array does not have the shape its role requires."""


class NonFiniteError(ProblemDefinitionError):
    """An array holds NaN (or an infinity where none is allowed)."""


class ComplexValueError(ProblemDefinitionError):
    """An array holds complex numbers where mpc2nn needs real ones (it never drops imaginary parts)."""


class NotSymmetricError(ProblemDefinitionError):
    """A weight matrix is not symmetric within the stated tolerance."""


class NotPositiveSemidefiniteError(ProblemDefinitionError):
    """A weight matrix has a negative eigenvalue beyond the stated tolerance."""


class NotPositiveDefiniteError(ProblemDefinitionError):
    """A weight matrix that must be positive definite is not."""


class HorizonError(ProblemDefinitionError):
    """The prediction horizon is not an integer >= 1."""


class InconsistentBoundsError(ProblemDefinitionError):
    """A lower bound exceeds the matching upper bound."""


class RiccatiError(ProblemDefinitionError):
    """The discrete algebraic Riccati equation has no stabilising solution."""


class UnstableSystemError(ProblemDefinitionError):
    """An operation that needs a (Schur) stable A was given an unstable one."""


class InfeasibleStateError(Mpc2nnError, ValueError):
    """The MPC problem has no feasible input sequence at this state."""


class MissingDependencyError(Mpc2nnError, ImportError):
    """An optional dependency is needed; the message names the extra to install."""


class SolverError(Mpc2nnError, RuntimeError):
    """A numerical solver failed in a way that is not the user's input."""


class FileFormatError(Mpc2nnError, ValueError):
    """A file is not an mpc2nn file, is corrupted, too new, or belongs to another problem."""


class ProblemFileError(Mpc2nnError, ValueError):
    """A problem file (TOML) has unknown or missing keys or values of the wrong kind."""


class ProblemTooLargeError(Mpc2nnError, MemoryError):
    """The memory a construction would need (estimated before allocating) exceeds what it may take."""


class UnsupportedObjectError(Mpc2nnError, TypeError):
    """An object of a kind the function does not take (e.g. :func:`mpc2nn.save` of a dict)."""


class IllConditionedWarning(UserWarning):
    """A matrix is positive definite but so ill-conditioned that float64 solves with it lose many digits."""
class ToleranceNotMetError(Mpc2nnError, RuntimeError):
    """A requested accuracy cannot be reached (within the depth limit, or above the dtype's rounding level).

    ``network`` holds what was built (its ``selection`` says how far it got), or ``None``.
    """

    def __init__(self, message: str, network=None):
        super().__init__(message)
        self.network = network

    @property
    def selection(self):
        """The depth selection of :attr:`network` (``None`` without a network)."""
        return getattr(self.network, "selection", None)
