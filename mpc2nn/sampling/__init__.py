"""Sampling states from a box, kept or dropped by the exact solver's feasibility verdict."""

from ._states import parameter_box, sample_feasible, sample_parameters, sample_states

__all__ = ["sample_states", "sample_parameters", "sample_feasible", "parameter_box"]
