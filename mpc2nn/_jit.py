"""The optional JIT compiler of the compiled paths: `numba <https://numba.pydata.org>`_ (the ``fast`` extra).

``numba`` is the module, or ``None`` where it is not installed or ``MPC2NN_NO_NUMBA`` is set in the
environment (then every compiled path gives way to its numpy counterpart).
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["numba"]

numba: Any
try:  # pragma: no cover - depends on the installation
    if os.environ.get("MPC2NN_NO_NUMBA"):
        raise ImportError("disabled by MPC2NN_NO_NUMBA")
    import numba
except ImportError:  # pragma: no cover
    numba = None
