"""Gradient x Input: Shrikumar et al., "Not Just a Black Box: Learning Important Features Through
Propagating Activation Differences", arXiv:1605.01713 (2016).

The map is ``(x - baseline) * d logit_target / d x`` summed over channels. With the default
``baseline=-1`` (black in cfx's [-1, 1] range) this is exactly the classic ``input * gradient``
computed on [0, 1] images, where black is 0; with ``baseline=0`` it equals Captum's
``InputXGradient`` applied to the [-1, 1] tensor. For a linear model it is the exact
contribution of each pixel to ``f(x) - f(baseline)`` (the one-step special case of Integrated
Gradients).
"""

from __future__ import annotations

from torch import Tensor

from cfx.errors import check_flag
from cfx.reprs import settings_repr
from cfx.saliency._common import (
    Reduction,
    check_input,
    frozen,
    input_gradient,
    make_baseline,
    positive_int,
    reduce_channels,
)
from cfx.types import Classifier, Target


class GradientXInput:
    """Gradient times the input's difference from a baseline image.

    Reference: Shrikumar et al., "Not Just a Black Box: Learning Important Features Through
    Propagating Activation Differences", arXiv:1605.01713, 2016.

    Args:
        model: images ``(B, C, H, W)`` in [-1, 1] -> logits ``(B, K)``.
        baseline: reference image in [-1, 1] (float or tensor broadcastable to ``x``);
            -1 = black.
        reduce: channel reduction, ``"sum"`` (keeps the sum over pixels), ``"mean"``, ``"max"``.
        batch_size: images per forward/backward pass (None = all at once).
    """

    __repr__ = settings_repr  # the arguments given, defaults left out

    def __init__(
        self,
        model: Classifier,
        *,
        baseline: float | Tensor = -1.0,
        reduce: Reduction = "sum",
        batch_size: int | None = 32,
    ) -> None:
        self.model = model
        self.baseline = baseline
        self.reduce = reduce
        self.batch_size = batch_size

    def attribute(self, x: Tensor, target: Target | None, *, create_graph: bool = False) -> Tensor:
        """Signed maps ``(B, 1, H, W)`` for images ``x`` ``(B, C, H, W)`` in [-1, 1].

        ``target``: int, ``(B,)`` tensor or None (predicted class). ``create_graph=True`` keeps
        the map differentiable w.r.t. ``x``.
        """
        # an attack calls this every step on images checked once: no model probe then
        check_flag("create_graph", create_graph)  # "no" kept the graph
        x = check_input(x, None if create_graph else self.model)
        base = make_baseline(self.baseline, x)
        if self.batch_size is not None:
            positive_int("batch_size", self.batch_size)
        with frozen(self.model):
            grad, _ = input_gradient(
                self.model, x, target, create_graph=create_graph, batch_size=self.batch_size
            )
        maps = reduce_channels((x - base) * grad, self.reduce)  # (B, 1, H, W)
        # a plain map, like the other methods', unless asked to keep the graph (an x that
        # requires grad would otherwise carry its graph into the map)
        return maps if create_graph else maps.detach()
