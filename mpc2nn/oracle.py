"""Compatibility module: the reference solvers now live in :mod:`mpc2nn.reference`."""

from .reference import DAQP_SETTINGS, OSQP_SETTINGS, OSQPSession, ReferenceSolution, solve_daqp, solve_osqp

__all__ = ["ReferenceSolution", "OSQPSession", "solve_osqp", "solve_daqp", "OSQP_SETTINGS", "DAQP_SETTINGS"]
