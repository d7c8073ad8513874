"""Figures written to files (matplotlib ``Figure`` objects, no pyplot: no screen needed, and
a notebook's own backend is left alone). Images in [-1, 1].

One module per family: :mod:`cfx.viz.data` (datasets), :mod:`cfx.viz.trajectory`
(boundary-crossing paths), :mod:`cfx.viz.saliency` (saliency maps, the randomisation check,
attacks), :mod:`cfx.viz.shortcuts` (a shortcut audit's paths), :mod:`cfx.viz.augment` (an
augmentation round's labelled frames); every figure is importable
from ``cfx.viz`` itself.
"""

from cfx.viz.augment import labelled_frames
from cfx.viz.data import brain_preview, image_grid, image_preview
from cfx.viz.saliency import attack_figure, randomisation_figure, saliency_grid
from cfx.viz.shortcuts import shortcut_examples
from cfx.viz.trajectory import (
    change_panels,
    probability_curves,
    trajectory_gif,
    trajectory_strip,
)

__all__ = [
    "attack_figure",
    "brain_preview",
    "change_panels",
    "image_grid",
    "image_preview",
    "labelled_frames",
    "probability_curves",
    "randomisation_figure",
    "saliency_grid",
    "shortcut_examples",
    "trajectory_gif",
    "trajectory_strip",
]
