"""Random-sign baseline for saliency attacks (Ghorbani, Abid & Zou, AAAI 2019, Section 4).

Every pixel moves by the full budget in a random direction: ``x + epsilon * s`` with
``s`` uniform in {-1, +1}, clipped to the image range. How much the explanation moves under this
perturbation is the floor a targeted attack has to beat. The label is *not* forced: the result
reports whether it was kept.
"""

from __future__ import annotations

import torch
from torch import Tensor

from cfx.reprs import settings_repr
from cfx.saliency._common import (
    SaliencyMethod,
    check_input,
    draw_device,
    notices_given,
    own_generator,
)
from cfx.saliency.attacks._common import (
    RANGE,
    AttackResult,
    check_epsilon,
    check_explainer,
    default_k,
    label_and_target,
    project,
    result,
)
from cfx.types import Target


class RandomSign:
    """Perturb every pixel by ``+-epsilon`` at random and measure how far the map moves.

    Reference: the random-sign baseline of Ghorbani, Abid & Zou, "Interpretation of Neural
    Networks is Fragile", AAAI 2019, Section 4.

    Args:
        explainer: any saliency method whose ``model`` is an ``nn.Module``.
        epsilon: L-inf budget as a fraction of the intensity range (``8/255`` = eight grey
            levels; cfx pixels in [-1, 1] move by ``2 * epsilon``).
        k: pixels in the top-k set for the reported intersection (None = 2% of the pixels).
    """

    __repr__ = settings_repr  # the arguments given, defaults left out

    def __init__(
        self, explainer: SaliencyMethod, *, epsilon: float = 8 / 255, k: int | None = None
    ) -> None:
        self.explainer = explainer
        self.epsilon = epsilon
        self.k = k

    def perturb(
        self,
        x: Tensor,
        target: Target | None = None,
        *,
        generator: torch.Generator | None = None,
    ) -> AttackResult:
        """Perturb images ``x`` ``(B, C, H, W)`` in [-1, 1]; ``target`` as in ``attribute``
        (None = predicted class); ``generator`` draws the signs (and a stochastic method's
        noise, replayed identically for both maps)."""
        model = check_explainer(self.explainer, differentiable=False)
        x0 = check_input(x, model).detach()  # a float64 image for a float32 model is named
        with notices_given():  # the probe above gave them once
            eps = check_epsilon(self.epsilon)
            k = default_k(self.k, x0)
            generator = own_generator(generator)
            _, tgt = label_and_target(model, x0, target)
            where = draw_device(generator)
            signs = (torch.rand(x0.shape, generator=generator, device=where) < 0.5).to(x0) * 2 - 1
            x_adv = project(x0 + eps * RANGE * signs, x0, eps * RANGE)
            return result(self.explainer, x0, x_adv, tgt, k, generator=generator)
