"""Compatibility module: the invariant sets now live in :mod:`mpc2nn.problem`."""

from .problem import InvariantSet, lqr_gain, lqr_invariant_set

__all__ = ["InvariantSet", "lqr_invariant_set", "lqr_gain"]
