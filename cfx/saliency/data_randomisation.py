"""Data randomisation test: Adebayo, Gilmer, Muelly, Goodfellow, Hardt & Kim, "Sanity Checks
for Saliency Maps", NeurIPS 2018, section 4.

The same architecture is trained twice with one recipe, once on the true labels and once on
a random permutation of them (it can only memorise). A method's maps for the two models on
the same images and classes are compared by Spearman rank correlation, of the signed maps
and of their absolute values. Maps that explain what the model learned from the labels
differ; maps that stay alike reflect the input or the architecture, not the data the model
was trained on. The model-parameter check is :mod:`cfx.saliency.randomisation`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from cfx.calls import class_logits
from cfx.reprs import short_repr
from cfx.saliency._common import (
    SaliencyMethod,
    check_built_on,
    check_generator,
    check_input,
    frozen,
    notices_given,
    replayed_maps,
    resolve_all,
)
from cfx.saliency.metrics import spearman
from cfx.saliency.randomisation import blank_maps, quiet_compared_maps, reading_of, top_kept
from cfx.types import Target


@dataclass(frozen=True)
class DataRandomisationResult:
    """Spearman correlations ``(B,)`` between the maps of the model trained on the true
    labels and those of the model trained on permuted labels."""

    __repr__ = short_repr  # shapes and counts, not every field in full

    spearman: Tensor  # (B,) signed maps
    spearman_abs: Tensor  # (B,) absolute maps
    original: Tensor  # (B, 1, H, W) maps of the model trained on the true labels
    permuted: Tensor  # (B, 1, H, W) maps of the model trained on permuted labels
    target: Tensor  # (B,) the classes explained, the same for both models

    def mean(self) -> tuple[float, float]:
        """Mean over examples: ``(signed, absolute)``."""
        return float(self.spearman.mean()), float(self.spearman_abs.mean())

    @property
    def blank(self) -> Tensor:
        """``(B,)`` bool: either model's map is blank (constant) for the image, which ranks
        nothing (its Spearman, 0 by convention, says nothing)."""
        return blank_maps(self.original) | blank_maps(self.permuted)

    def verdict(self) -> str:
        """:func:`~cfx.saliency.randomisation.reading` of the means ("model-dependent" when
        both maps decorrelate), over the images whose maps are not blank (:attr:`blank`)."""
        return reading_of(
            self.spearman,
            self.spearman_abs,
            self.blank,
            "model-dependent",
            top_kept(self.original, self.permuted),
        )


def data_randomisation(
    make_method: Callable[[nn.Module], SaliencyMethod],
    model: nn.Module,
    permuted_model: nn.Module,
    x: Tensor,
    target: Target | None,
    *,
    generator: torch.Generator | None = None,
    attribute_kwargs: dict[str, Any] | None = None,
) -> DataRandomisationResult:
    """Run the data randomisation (label permutation) check.

    Reference: Adebayo et al., "Sanity Checks for Saliency Maps", NeurIPS 2018, section 4.

    Args:
        make_method: builds the saliency method for a model, e.g.
            ``lambda m: GradCAM(m, layer="features.3")``; called once for each model.
        model: the model trained on the true labels (left unchanged).
        permuted_model: the same architecture trained with the same recipe on a random
            permutation of the training labels (left unchanged), e.g. ``train_classifier(net,
            images, labels[torch.randperm(len(labels), generator=g)], "runs/permuted",
            config)`` with augmentation off and epochs enough to fit the training set: its
            training accuracy says whether it memorised the labels, its test accuracy should
            be chance.
        x: images ``(B, C, H, W)`` in [-1, 1].
        target: class to explain (int, ``(B,)`` indices, or None for ``model``'s prediction);
            the same classes are explained for both models.
        generator: source of the method's own randomness, set to the same state for both
            models (so only the models differ).
        attribute_kwargs: extra keyword arguments for ``attribute``; a ``generator`` among
            them is replayed like ``generator`` (the same noise for both models).

    Reading the result: ``res.mean()`` is ``(signed, absolute)``, mean Spearman over the
    images; near 0 on both, the maps follow what the model learned from its labels; near 1
    (the image itself scores 1), they do not. A signed value near 0 with a high absolute one
    (Gradient x Input, Integrated Gradients) means the maps' magnitude is set by the input.
    The cascading check's verdicts use 0.5 as the line (``benchmarks/saliency.py``).
    """
    if not callable(make_method):
        raise TypeError(
            "`make_method` must be a factory building the method for a model (called once for "
            f"each model), e.g. `lambda m: Gradient(m)`, got a {type(make_method).__name__} "
            "object"
        )
    for name, value in (("model", model), ("permuted_model", permuted_model)):
        if not isinstance(value, nn.Module):
            raise TypeError(f"`{name}` must be an nn.Module, got {type(value).__name__}")
    shapes = [tuple(p.shape) for p in model.parameters()]
    if shapes != [tuple(p.shape) for p in permuted_model.parameters()]:
        raise ValueError(
            "`permuted_model` must be `model`'s architecture trained on permuted labels: its "
            "parameters differ in number or shape, so the check would compare two models, "
            "not two trainings"
        )
    if permuted_model is model:
        raise ValueError(
            "`permuted_model` must be a second model, trained on permuted labels; got `model` "
            "itself, whose maps would match trivially"
        )
    x = check_input(x, model)  # the model tried on one image: errors named, not deep inside
    check_generator(generator)
    kwargs = dict(attribute_kwargs or {})
    # one source of the methods' noise, replayed for both models (a generator passed in
    # attribute_kwargs would otherwise run on between them)
    given = kwargs.pop("generator", None)
    gen = check_generator(given) or generator or torch.Generator()
    method_state = gen.get_state()
    with frozen(model):
        logits, tgt = resolve_all(model, x, target)
    with frozen(permuted_model), torch.no_grad():  # its classes before any target is read
        other = class_logits(permuted_model, x, name="permuted_model")
    if other.shape != logits.shape:
        raise ValueError(
            f"`permuted_model` must score the classes `model` scores: its logits have shape "
            f"{tuple(other.shape)}, `model`'s {tuple(logits.shape)}"
        )

    def maps_of(m: nn.Module, other: nn.Module, role: str) -> Tensor:
        method = make_method(m)
        check_built_on(method, m, other, role)
        with notices_given():  # the probe's notices were given once, on entry
            return replayed_maps(method, x, tgt, gen, method_state, kwargs, noisy=given is not None)

    original = maps_of(model, permuted_model, "`permuted_model` when given `model`")
    with quiet_compared_maps():  # its maps are compared, not read
        permuted = maps_of(permuted_model, model, "`model` when given `permuted_model`")
    return DataRandomisationResult(
        spearman=spearman(original, permuted),
        spearman_abs=spearman(original.abs(), permuted.abs()),
        original=original,
        permuted=permuted,
        target=tgt,
    )
