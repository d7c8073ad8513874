"""Boundary-crossing image sequences: one verb, ``explain(x, target)``, one result type."""

from cfx.trajectory.chunks import explain_in_chunks
from cfx.trajectory.gradient_ascent import GradientAscent
from cfx.trajectory.localised import LocalisedAscent
from cfx.trajectory.monotone import MonotonePath
from cfx.trajectory.pixel import PixelSpace
from cfx.trajectory.result import TrajectoryResult, concat
from cfx.trajectory.save import load_result, save_result

__all__ = [
    "GradientAscent",
    "LocalisedAscent",
    "MonotonePath",
    "PixelSpace",
    "TrajectoryResult",
    "concat",
    "explain_in_chunks",
    "load_result",
    "save_result",
]
