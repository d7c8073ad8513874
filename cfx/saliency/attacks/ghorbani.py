"""Saliency attacks of Ghorbani, Abid & Zou, "Interpretation of Neural Networks is Fragile",
AAAI 2019: top-k, mass-centre and targeted attacks.

Iterative signed steps ``x <- Proj(x + a * sign(grad_x D(x)))`` inside the L-inf ball of radius
``epsilon`` (and the image range), where ``D`` measures how far the explanation moved:

* ``"top_k"``: minus the share of the (normalised, absolute) map on the original top-``k``
  pixels;
* ``"mass_center"``: squared distance between the centres of mass of ``|map|`` (the first step
  starts from a random sign perturbation of one step, since the gradient vanishes at the
  original image);
* ``"targeted"``: share of the map inside a given region (e.g. an image corner).

ReLU networks have zero second derivatives almost everywhere, so ``D`` is differentiated on a
surrogate copy of the model with ReLU replaced by ``softplus(beta)``
(:func:`~cfx.saliency.attacks._common.softplus_surrogate`). After every step the real model
scores the iterate; only iterates that keep the predicted label are candidates, and the best
candidate (by the real map) over all steps and ``restarts`` is returned, so the label is kept
by construction.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from cfx.errors import check_flag, fail
from cfx.images import binary_masks
from cfx.reprs import settings_repr
from cfx.saliency._common import (
    SaliencyMethod,
    check_input,
    draw_device,
    notices_given,
    own_generator,
    positive_float,
    positive_int,
)
from cfx.saliency.attacks._common import (
    RANGE,
    AttackResult,
    check_epsilon,
    check_explainer,
    default_k,
    label_and_target,
    predict,
    project,
    relevance,
    result,
    softplus_surrogate,
    takes_generator,
    zero_gradient_notice,
)
from cfx.saliency.metrics import mass_center, top_k_intersection, top_k_mask
from cfx.types import Target

Objective = Literal["top_k", "mass_center", "targeted"]


class GhorbaniAttack:
    """Move a gradient-based explanation with an imperceptible, label-preserving perturbation.

    Reference: Ghorbani, Abid & Zou, "Interpretation of Neural Networks is Fragile", AAAI 2019.

    Args:
        explainer: a differentiable saliency method (its ``attribute`` takes ``create_graph``)
            whose ``model`` is an ``nn.Module``; e.g. ``Gradient(model)``.
        objective: ``"top_k"``, ``"mass_center"`` or ``"targeted"``.
        epsilon: L-inf budget as a fraction of the intensity range (``8/255`` = eight grey
            levels; pixels of cfx images in [-1, 1] move by at most ``2 * epsilon``).
        steps: signed-gradient iterations.
        step_size: step as a fraction of the intensity range (default ``epsilon / 8``).
        k: pixels in the top-k set (attack objective and reported intersection); None = 2% of
            the pixels, Ghorbani et al.'s proportion (1000 of 224 x 224).
        beta: softplus sharpness of the surrogate model (large = close to the real ReLU
            network; 50 worked best for ``brain-cnn`` on validation slices).
        random_start: start from a random sign perturbation of one step (always done for
            ``"mass_center"``, whose objective has zero gradient at the original image).
        restarts: independent runs of ``steps`` iterations; every run after the first starts
            from a random sign perturbation; the best label-keeping iterate over all runs wins.
        show_progress: tqdm bar over iterations.
    """

    __repr__ = settings_repr  # the arguments given, defaults left out

    def __init__(
        self,
        explainer: SaliencyMethod,
        *,
        objective: Objective = "top_k",
        epsilon: float = 8 / 255,
        steps: int = 40,
        step_size: float | None = None,
        k: int | None = None,
        beta: float = 50.0,
        random_start: bool = False,
        restarts: int = 1,
        show_progress: bool = False,
    ) -> None:
        self.explainer = explainer
        self.objective = objective
        self.epsilon = epsilon
        self.steps = steps
        self.step_size = step_size
        self.k = k
        self.beta = beta
        self.random_start = check_flag("random_start", random_start)
        self.restarts = restarts
        self.show_progress = check_flag("show_progress", show_progress)

    def perturb(
        self,
        x: Tensor,
        target: Target | None = None,
        *,
        region: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> AttackResult:
        """Attack the explanations of images ``x`` ``(B, C, H, W)`` in [-1, 1].

        ``target``: class explained (int, ``(B,)`` tensor, or None = predicted class).
        ``region``: boolean ``(B, 1, H, W)`` (or ``(1, 1, H, W)``) area to pull the map into,
        required for ``"targeted"``. ``generator``: random start of ``"mass_center"`` and the
        noise of stochastic explainers.
        """
        model = check_explainer(self.explainer, differentiable=True)
        x0 = check_input(x, model).detach()  # a float64 image for a float32 model is named
        with notices_given():  # the probe above gave them once
            eps = check_epsilon(self.epsilon)
            steps = positive_int("steps", self.steps, minimum=0)
            step = (
                eps / 8 if self.step_size is None else positive_float("step_size", self.step_size)
            )
            k = default_k(self.k, x0)
            beta = positive_float("beta", self.beta)
            restarts = positive_int("restarts", self.restarts)
            generator = own_generator(generator)
            obj = self.objective
            if obj not in ("top_k", "mass_center", "targeted"):
                fail(
                    ValueError,
                    f"`objective` must be 'top_k', 'mass_center' or 'targeted', got {obj!r}",
                )
            if region is not None and obj != "targeted":
                fail(
                    ValueError,
                    f"`region` is used by objective='targeted' only, got objective={obj!r}: "
                    "pass objective='targeted' to pull the map into the region, or no region",
                )
            goal = _region(region, x0) if obj == "targeted" else x0.new_zeros(1, x0[0, 0].numel())

            label, tgt = label_and_target(model, x0, target)  # (B,), (B,)
            budget, alpha = eps * RANGE, step * RANGE
            gen_kw = {"generator": generator} if takes_generator(self.explainer) else {}
            surrogate = softplus_surrogate(self.explainer, beta)

            maps0 = self.explainer.attribute(x0, tgt, **gen_kw).detach()
            top0 = top_k_mask(maps0.abs(), k).flatten(1).to(x0.dtype)  # (B, P)
            centre0 = mass_center(maps0)  # (B, 2)

            def badness(maps: Tensor) -> Tensor:  # lower = explanation moved further
                if obj == "top_k":
                    return top_k_intersection(maps0.abs(), maps.abs(), k)
                if obj == "mass_center":
                    return -(mass_center(maps) - centre0).norm(dim=1)
                return -(relevance(maps) * goal).sum(1)

            best_x = x0.clone()
            best = badness(maps0)
            total = steps * restarts
            bar = None
            if self.show_progress:
                from cfx.progress import tqdm

                bar = tqdm(total=total, desc=f"{obj} attack", unit="step")
            first = True
            for restart in range(restarts):
                x_adv = x0
                if obj == "mass_center" or self.random_start or restart > 0:
                    start = torch.rand(x0.shape, generator=generator, device=draw_device(generator))
                    start = start.to(x0) < 0.5
                    x_adv = project(x0 + alpha * (2 * start.to(x0) - 1), x0, budget)
                for _ in range(steps):
                    xa = x_adv.detach().requires_grad_(True)
                    maps = surrogate.attribute(xa, tgt, create_graph=True, **gen_kw)  # type: ignore[call-arg]
                    r = relevance(maps)  # (B, P)
                    if obj == "top_k":
                        loss = -(r * top0).sum(1)
                    elif obj == "mass_center":
                        loss = (mass_center(maps) - centre0).square().sum(1)
                    else:
                        loss = (r * goal).sum(1)
                    (grad,) = torch.autograd.grad(loss.sum(), xa)
                    if first:  # the attack's first step (from x0 or a random start)
                        zero_gradient_notice(grad, "GhorbaniAttack")
                        first = False
                    x_adv = project(x_adv + alpha * grad.sign(), x0, budget).detach()
                    # only iterates that keep the label are candidates; the real model judges
                    kept = predict(model, x_adv) == label
                    score = badness(self.explainer.attribute(x_adv, tgt, **gen_kw).detach())
                    better = kept & (score < best)
                    best_x[better] = x_adv[better]
                    best = torch.where(better, score, best)
                    if bar is not None:
                        bar.update()
            if bar is not None:
                bar.close()
            return result(self.explainer, x0, best_x, tgt, k, generator=generator)


def _region(region: object, x: Tensor) -> Tensor:
    """A boolean region ``(B or 1, 1, H, W)`` -> float ``(B, P)`` indicator."""
    want = (1, *x.shape[2:])
    if not isinstance(region, Tensor):
        raise TypeError("`region` (a boolean (B, 1, H, W) tensor) is required for 'targeted'")
    if (
        region.ndim != 4
        or tuple(region.shape[1:]) != want
        or region.shape[0] not in (1, x.shape[0])
    ):
        raise ValueError(
            f"`region` must have shape ({x.shape[0]}, 1, {x.shape[2]}, {x.shape[3]}) or "
            f"(1, 1, {x.shape[2]}, {x.shape[3]}), got {tuple(region.shape)}"
        )
    # a 0/0.3 region was read as True everywhere it was not 0; the metrics refuse it
    flat = binary_masks(region, "region").expand(x.shape[0], -1, -1, -1).flatten(1)
    if not bool(flat.any(1).all()):
        raise ValueError("`region` must select at least one pixel per image")
    if bool(flat.all(1).any()):  # the map's whole mass is always inside: nothing to move
        raise ValueError(
            "`region` must leave some pixels out: it selects every pixel of an image, where "
            "the share of the map inside it is always 1"
        )
    return flat.to(x.dtype)
