"""Stage 4 — sampling states from a box, kept or dropped by the exact solver's feasibility verdict."""

from ._states import sample_feasible, sample_states

__all__ = ["sample_states", "sample_feasible"]
