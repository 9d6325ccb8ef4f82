"""Consumers that judge controllers: closed-loop simulation, validation against references (and who is
wrong where they disagree), plots.
"""

from . import plotting
from ._controllers import (
                           ControlAction,
                           Controller,
                           ExplicitController,
                           FunctionController,
                           ImplicitController,
                           MPCController,
                           as_controller,
)
from ._crosscheck import AGREE_TOL, CROSS_CHECKS, CrossCheck, cross_check
from ._simulate import Trajectory, simulate
from ._validate import ValidationReport, controller_output, validate

__all__ = ["ControlAction", "Controller", "MPCController", "ImplicitController", "ExplicitController",
           "FunctionController", "as_controller", "Trajectory", "simulate", "ValidationReport", "validate",
           "controller_output", "plotting", "CrossCheck", "cross_check", "AGREE_TOL", "CROSS_CHECKS"]
