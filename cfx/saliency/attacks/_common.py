"""Shared pieces of the saliency attacks: budgets, the softplus surrogate, the result type.

Budgets: ``epsilon`` is an L-inf budget expressed as a fraction of the full intensity range,
the convention of the attack literature on [0, 1] images (``8/255`` = eight grey levels).
cfx images span [-1, 1], so pixels move by at most ``2 * epsilon`` in cfx units.
"""

from __future__ import annotations

import copy
import inspect
import warnings
from dataclasses import dataclass
from numbers import Integral

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cfx.calls import class_logits, resolve_target
from cfx.errors import Notice, check_real
from cfx.images import IMAGE_RANGE
from cfx.reprs import short_repr
from cfx.saliency._common import SaliencyMethod, check_editable, frozen, takes_generator
from cfx.saliency.metrics import mass_center_shift, spearman, top_k_intersection
from cfx.types import Target

RANGE = IMAGE_RANGE[1] - IMAGE_RANGE[0]  # width of the cfx range (2)


@dataclass(frozen=True)
class AttackResult:
    """An attack's perturbed images and how far the explanation moved (one value per image).

    Similarities compare ``|maps|`` of the original and perturbed images on the *real* model
    (Ghorbani et al.'s protocol).
    """

    __repr__ = short_repr  # shapes and counts, not every field in full

    x_adv: Tensor  # (B, C, H, W) in [-1, 1]
    maps: Tensor  # (B, 1, H, W) explanation of the original images
    maps_adv: Tensor  # (B, 1, H, W) explanation of the perturbed images
    top_k_intersection: Tensor  # (B,) share of the original top-k pixels still in the top-k
    spearman: Tensor  # (B,) rank correlation of |maps| and |maps_adv|
    mass_center_shift: Tensor  # (B,) pixels between the centres of mass
    label_kept: Tensor  # (B,) bool, predicted class unchanged
    linf: Tensor  # (B,) max |x_adv - x| as a fraction of the intensity range (like epsilon)
    k: int


def check_epsilon(epsilon: object) -> float:
    """``epsilon`` as a float in (0, 1]; numpy and 0-d tensor numbers are taken (a numpy
    float32 budget was refused as not "a number")."""
    try:
        return check_real("epsilon", epsilon, low=0.0, high=1.0, open_low=True)
    except (TypeError, ValueError) as err:
        raise type(err)(
            f"{err} (the L-inf budget as a fraction of the intensity range, e.g. 8/255)"
        ) from None


def default_k(k: object, x: Tensor) -> int:
    """``k`` checked against the image size; None = 2% of the pixels (Ghorbani et al.)."""
    pixels = x[0, 0].numel()
    if k is None:
        return max(1, round(0.02 * pixels))
    if isinstance(k, bool) or not isinstance(k, Integral) or not 1 <= int(k) <= pixels:
        raise ValueError(f"`k` must be an int in [1, {pixels}] or None, got {k!r}")
    return int(k)  # a numpy int as an int


def check_explainer(explainer: object, *, differentiable: bool) -> nn.Module:
    """The explainer's model; with ``differentiable`` it must accept ``create_graph``."""
    if not isinstance(explainer, SaliencyMethod):
        # a model passed for its explainer printed its whole repr here
        hint = (
            ": a model? pass a saliency method built on it, e.g. `Gradient(model)`"
            if isinstance(explainer, nn.Module)
            else ""
        )
        raise TypeError(
            "`explainer` must have an attribute(x, target) method, got a "
            f"{type(explainer).__name__}{hint}"
        )
    model = getattr(explainer, "model", None)
    if not isinstance(model, nn.Module):
        raise TypeError(
            "`explainer.model` must be an nn.Module (the attack copies it), got a "
            f"{type(model).__name__}: wrap a plain function in an nn.Module"
        )
    if differentiable:
        params = inspect.signature(explainer.attribute).parameters
        if "create_graph" not in params:
            raise TypeError(
                f"{type(explainer).__name__} is not differentiable (no `create_graph`); gradient "
                "attacks need a gradient method (Gradient, GradientXInput, SmoothGrad, "
                "IntegratedGradients, GradCAM)"
            )
    return model


class SmoothLeakyReLU(nn.Module):
    """``slope * x + (1 - slope) * softplus_beta(x)``: LeakyReLU's softplus counterpart (the
    same limit as beta grows, a non-zero second derivative)."""

    def __init__(self, beta: float, negative_slope: float) -> None:
        super().__init__()
        self.beta = beta
        self.negative_slope = negative_slope

    def forward(self, x: Tensor) -> Tensor:
        a = self.negative_slope
        return a * x + (1 - a) * F.softplus(x, beta=self.beta)


class SmoothReLU6(nn.Module):
    """``softplus_beta(x) - softplus_beta(x - 6)``: ReLU6 = ``relu(x) - relu(x - 6)`` with each
    ReLU smoothed."""

    def __init__(self, beta: float) -> None:
        super().__init__()
        self.beta = beta

    def forward(self, x: Tensor) -> Tensor:
        return F.softplus(x, beta=self.beta) - F.softplus(x - 6, beta=self.beta)


SMOOTHED = (nn.Softplus, SmoothLeakyReLU, SmoothReLU6)  # what set_beta sharpens


def _smooth(module: nn.Module, beta: float) -> nn.Module | None:
    """The softplus counterpart of a piecewise-linear activation module, or None."""
    if isinstance(module, nn.ReLU):
        return nn.Softplus(beta=beta)
    if isinstance(module, nn.LeakyReLU):
        return SmoothLeakyReLU(beta, module.negative_slope)
    if isinstance(module, nn.ReLU6):  # before Hardtanh, its base class
        return SmoothReLU6(beta)
    return None


def softplus_surrogate(explainer: SaliencyMethod, beta: float) -> SaliencyMethod:
    """A deep copy of ``explainer`` whose model has every ``nn.ReLU`` replaced by
    ``nn.Softplus(beta)``, and ``nn.LeakyReLU``/``nn.ReLU6`` by their softplus counterparts
    (:class:`SmoothLeakyReLU`, :class:`SmoothReLU6`): piecewise-linear networks have zero
    second derivatives, so Ghorbani et al. and Dombrowski et al. differentiate the smooth
    copy. Activations applied as functions (``F.relu`` in ``forward``) cannot be replaced;
    the attacks warn when their gradient is zero (:func:`zero_gradient_notice`). Other
    attributes that point into the model (e.g. Grad-CAM's layer) follow the copy, to the
    smooth module where they pointed at a replaced one (Grad-CAM hooked on an ``nn.ReLU``)."""
    check_editable(
        getattr(explainer, "model", None),
        "the attacks differentiate a copy of the model with its ReLUs made smooth (softplus)",
    )
    surrogate = copy.deepcopy(explainer)
    model: nn.Module = surrogate.model  # type: ignore[attr-defined]
    # by id, each with the module it replaced (kept alive, so no id is reused meanwhile)
    replaced: dict[int, tuple[nn.Module, nn.Module]] = {}
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            known = replaced.get(id(child))  # a module used twice gets one replacement
            smooth = known[1] if known is not None else _smooth(child, beta)
            if smooth is not None:
                replaced[id(child)] = (child, smooth)
                setattr(parent, name, smooth)
    for attr, value in list(vars(surrogate).items()):
        if isinstance(value, nn.Module) and id(value) in replaced:
            setattr(surrogate, attr, replaced[id(value)][1])
    return surrogate


def set_beta(surrogate: SaliencyMethod, beta: float) -> None:
    """Change the softplus sharpness of a surrogate in place."""
    for m in surrogate.model.modules():  # type: ignore[attr-defined]
        if isinstance(m, SMOOTHED):
            m.beta = beta


def zero_gradient_notice(grad: Tensor, attack: str) -> None:
    """Warn when the attack's gradient ``grad`` ``(B, ...)`` is exactly zero for some images
    (called at the first step): those images cannot move, and their result would read as a
    perfectly robust explanation rather than an unattacked one."""
    flat = grad.detach().flatten(1)
    still = int((flat == 0).all(1).sum())
    if still == 0:
        return
    warnings.warn(
        Notice(
            f"{attack}: the gradient of the attack's objective is exactly zero for {still} of "
            f"{flat.shape[0]} images, so they stay where they are, and their maps read as "
            "unchanged, not as robust. The usual cause: piecewise-linear networks have zero "
            "second derivatives; for the attack cfx replaces nn.ReLU, nn.LeakyReLU and nn.ReLU6 "
            "modules by softplus, but activations applied as functions (F.relu in forward) "
            "and other piecewise-linear modules stay; use activation modules to attack this "
            "model"
        ),
        stacklevel=3,
    )


@torch.no_grad()
def predict(model: nn.Module, x: Tensor) -> Tensor:
    with frozen(model):
        return class_logits(model, x, name="model").argmax(1)


@torch.no_grad()
def label_and_target(model: nn.Module, x: Tensor, target: Target | None) -> tuple[Tensor, Tensor]:
    """Predicted classes ``(B,)`` of ``x`` and the explained classes (``target`` resolved;
    None = the predicted ones)."""
    with frozen(model):
        logits = class_logits(model, x, name="model")
    label = logits.argmax(1)
    if target is None:
        return label, label
    return label, resolve_target(target, x.shape[0], logits.shape[1], x.device)


def project(x_adv: Tensor, x: Tensor, budget: float) -> Tensor:
    """Clip into the L-inf ball of radius ``budget`` (cfx units) around ``x`` and into [-1, 1]."""
    return torch.maximum(torch.minimum(x_adv, x + budget), x - budget).clamp(*IMAGE_RANGE)


def relevance(maps: Tensor) -> Tensor:
    """``|map|`` normalised to sum 1 per example, ``(B, P)`` (differentiable)."""
    r = maps.abs().flatten(1)
    return r / r.sum(1, keepdim=True).clamp_min(1e-12)


def maps_pair(
    explainer: SaliencyMethod,
    x: Tensor,
    x_adv: Tensor,
    target: Tensor,
    generator: torch.Generator | None,
) -> tuple[Tensor, Tensor]:
    """Maps of ``x`` and ``x_adv`` on the real model; a stochastic method sees the same random
    draws for both (the generator's state is replayed), so only the perturbation differs."""
    if not takes_generator(explainer):
        return (
            explainer.attribute(x, target).detach(),
            explainer.attribute(x_adv, target).detach(),
        )
    gen = generator if generator is not None else torch.Generator()
    state = gen.get_state()
    maps = explainer.attribute(x, target, generator=gen).detach()  # type: ignore[call-arg]
    gen.set_state(state)
    return maps, explainer.attribute(x_adv, target, generator=gen).detach()  # type: ignore[call-arg]


def result(
    explainer: SaliencyMethod,
    x: Tensor,
    x_adv: Tensor,
    target: Tensor,
    k: int,
    *,
    generator: torch.Generator | None = None,
) -> AttackResult:
    """Score an attack on the real model: maps, similarities, label kept, L-inf size."""
    model: nn.Module = explainer.model  # type: ignore[attr-defined]
    maps, maps_adv = maps_pair(explainer, x, x_adv, target, generator)
    kept = predict(model, x_adv) == predict(model, x)
    return AttackResult(
        x_adv=x_adv.detach(),
        maps=maps,
        maps_adv=maps_adv,
        top_k_intersection=top_k_intersection(maps.abs(), maps_adv.abs(), k),
        spearman=spearman(maps.abs(), maps_adv.abs()),
        mass_center_shift=mass_center_shift(maps, maps_adv),
        label_kept=kept,
        linf=(x_adv - x).abs().flatten(1).amax(1) / RANGE,
        k=k,
    )
