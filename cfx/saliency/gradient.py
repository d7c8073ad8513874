"""Vanilla gradient saliency: Simonyan, Vedaldi & Zisserman, "Deep Inside Convolutional Networks:
Visualising Image Classification Models and Saliency Maps", ICLR Workshop 2014.

The map is ``|d logit_target / d x|`` reduced over channels (the paper takes the maximum of
the absolute value over colour channels). Equals Captum's ``Saliency(abs=...)`` per channel.
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
    positive_int,
    reduce_channels,
)
from cfx.types import Classifier, Target


class Gradient:
    """Gradient of the target logit with respect to the input pixels.

    Reference: Simonyan, Vedaldi & Zisserman, "Deep Inside Convolutional Networks: Visualising
    Image Classification Models and Saliency Maps", ICLR Workshop 2014.

    Args:
        model: images ``(B, C, H, W)`` in [-1, 1] -> logits ``(B, K)``.
        absolute: take ``|gradient|`` (Simonyan et al.; Captum's default ``abs=True``) or keep
            the sign (positive = increasing the pixel raises the target logit).
        reduce: channel reduction, ``"max"`` (the paper), ``"sum"`` or ``"mean"``.
        batch_size: images per forward/backward pass (None = all at once).
    """

    __repr__ = settings_repr  # the arguments given, defaults left out

    def __init__(
        self,
        model: Classifier,
        *,
        absolute: bool = True,
        reduce: Reduction = "max",
        batch_size: int | None = 32,
    ) -> None:
        self.model = model
        self.absolute = check_flag("absolute", absolute)
        self.reduce = reduce
        self.batch_size = batch_size

    def attribute(self, x: Tensor, target: Target | None, *, create_graph: bool = False) -> Tensor:
        """Maps ``(B, 1, H, W)`` for images ``x`` ``(B, C, H, W)`` in [-1, 1].

        ``target``: an int, a ``(B,)`` tensor of class indices, or None for the predicted
        class. ``create_graph=True`` keeps the map differentiable w.r.t. ``x`` (for attacks).
        """
        # an attack calls this every step on images checked once: no model probe then
        check_flag("create_graph", create_graph)  # "no" kept the graph
        x = check_input(x, None if create_graph else self.model)
        if self.batch_size is not None:
            positive_int("batch_size", self.batch_size)
        with frozen(self.model):
            grad, _ = input_gradient(
                self.model, x, target, create_graph=create_graph, batch_size=self.batch_size
            )
        a = grad.abs() if self.absolute else grad  # (B, C, H, W)
        return reduce_channels(a, self.reduce)  # (B, 1, H, W)
