"""Matplotlib figures (compatibility name of :mod:`mpc2nn.evaluation.plotting`)."""

from .evaluation.plotting import *  # noqa: F403
from .evaluation.plotting import __all__  # noqa: F401
