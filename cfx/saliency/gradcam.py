"""Grad-CAM: Selvaraju, Cogswell, Das, Vedantam, Parikh & Batra, "Grad-CAM: Visual Explanations
from Deep Networks via Gradient-based Localization", ICCV 2017.

For feature maps ``A`` ``(B, K, h, w)`` of a convolutional layer, channel weights are the
spatially averaged gradients ``alpha_k = mean_ij d y_target / d A_kij``; the map is
``ReLU(sum_k alpha_k A_k)``, upsampled to the input size with (differentiable) bilinear
interpolation, ``align_corners=False``. This equals Captum's ``LayerGradCam(...,
relu_attributions=True)`` followed by ``LayerAttribution.interpolate(..., "bilinear")``
(Captum's default ``relu_attributions=False`` skips the ReLU).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cfx.calls import class_logits, gradients_on
from cfx.errors import check_flag
from cfx.reprs import settings_repr
from cfx.saliency._common import (
    check_editable,
    check_input,
    frozen,
    positive_int,
    target_slice,
    targets_from,
)
from cfx.types import Classifier, Target


def last_conv(model: object) -> nn.Module:
    """The last ``nn.Conv2d`` registered in ``model`` (in ``model.modules()`` order)."""
    if not isinstance(model, nn.Module):
        raise TypeError(
            "`layer` must be given when `model` is not an nn.Module (Grad-CAM hooks a layer), "
            f"got model {type(model).__name__}"
        )
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise ValueError("`model` has no nn.Conv2d layer; pass `layer` explicitly")
    return convs[-1]


def resolve_layer(model: object, layer: nn.Module | str | None) -> nn.Module:
    """``layer`` as a module: itself, a dotted name in ``model`` ("features.3"), or the last
    ``nn.Conv2d`` when None."""
    check_editable(model, "Grad-CAM hooks a layer of the model")
    if layer is None:
        return last_conv(model)
    if isinstance(layer, nn.Module):
        return layer
    if isinstance(layer, str):
        if not isinstance(model, nn.Module):
            raise TypeError("`layer` given by name needs `model` to be an nn.Module")
        try:
            return model.get_submodule(layer)
        except AttributeError:
            convs = [n for n, m in model.named_modules() if n and isinstance(m, nn.Conv2d)]
            if convs:  # the layers Grad-CAM is meant for, not the first names of any kind
                shown = convs if len(convs) <= 12 else [*convs[:5], "...", *convs[-6:]]
                known = f"its convolutional layers: {shown} (the default is the last)"
            else:
                known = f"some names: {[n for n, _ in model.named_modules() if n][:12]}"
            raise ValueError(
                f"`layer` {layer!r} is not a submodule of the model; {known}"
            ) from None
    raise TypeError(f"`layer` must be an nn.Module, a module name or None, got {layer!r}")


class GradCAM:
    """Gradient-weighted class activation maps, upsampled to the input resolution.

    Reference: Selvaraju, Cogswell, Das, Vedantam, Parikh & Batra, "Grad-CAM: Visual
    Explanations from Deep Networks via Gradient-based Localization", ICCV 2017.

    Args:
        model: images ``(B, C, H, W)`` in [-1, 1] -> logits ``(B, K)``.
        layer: the convolutional layer whose output ``(B, K, h, w)`` is used: a module of
            ``model``, its dotted name (e.g. ``"features.3"``, which survives
            ``copy.deepcopy``), or None for the last ``nn.Conv2d`` of the model.
        relu: apply the ReLU of the paper (keep only positive evidence).
        batch_size: images per pass (None = all at once).
    """

    __repr__ = settings_repr  # the arguments given, defaults left out

    def __init__(
        self,
        model: Classifier,
        *,
        layer: nn.Module | str | None = None,
        relu: bool = True,
        batch_size: int | None = 32,
    ) -> None:
        self.model = model
        self.layer = layer
        self.relu = check_flag("relu", relu)
        self.batch_size = batch_size

    def attribute(self, x: Tensor, target: Target | None, *, create_graph: bool = False) -> Tensor:
        """Maps ``(B, 1, H, W)`` (non-negative with ``relu``) for images ``x`` in [-1, 1].

        ``target``: int, ``(B,)`` tensor or None (predicted class). ``create_graph=True``
        keeps the map differentiable w.r.t. ``x``.
        """
        # an attack calls this every step on images checked once: no model probe then
        check_flag("create_graph", create_graph)  # "no" kept the graph
        x = check_input(x, None if create_graph else self.model)
        module = resolve_layer(self.model, self.layer)
        b = x.shape[0]
        step = b if self.batch_size is None else positive_int("batch_size", self.batch_size)
        with frozen(self.model):
            maps = [
                self._one(
                    module, x[s : s + step], target_slice(target, s, s + step, b), create_graph
                )
                for s in range(0, b, step)
            ]
        return torch.cat(maps)  # (B, 1, H, W)

    def _one(
        self,
        module: nn.Module,
        x: Tensor,
        target: Target | None,
        create_graph: bool,
    ) -> Tensor:
        store: list[Tensor] = []

        def hook(_m: nn.Module, _inp: object, out: object) -> Tensor:
            if not isinstance(out, Tensor):
                raise TypeError(f"`layer` must output a tensor, got {type(out).__name__}")
            # a frozen model on a constant input builds no graph: the maps become a leaf
            acts = out if out.requires_grad else out.detach().requires_grad_(True)
            store.append(acts)
            # the model goes on with a copy, so an in-place op after the layer (ReLU(inplace=
            # True), as in VGG or after a hooked BatchNorm) neither fails on the leaf nor
            # rewrites the activations Grad-CAM weighs
            return acts.clone()

        handle = module.register_forward_hook(hook)
        try:
            # all of it with grad: under the caller's torch.no_grad() (an attack's evaluation
            # step) the score and its gradient would otherwise have no graph; under
            # torch.inference_mode() the hooked maps would have none, an error
            with gradients_on():
                logits = class_logits(self.model, x, name="model")  # (b, K)
                if not store:
                    raise ValueError("`layer` was not called during the model's forward pass")
                acts = store[-1]
                if acts.ndim != 4:
                    raise ValueError(
                        "`layer` must output feature maps (B, K, h, w), got shape "
                        f"{tuple(acts.shape)}"
                    )
                tgt = targets_from(target, logits)
                score = logits.gather(1, tgt[:, None]).sum()
                (grads,) = torch.autograd.grad(score, acts, create_graph=create_graph)
                alpha = grads.mean(dim=(2, 3), keepdim=True)  # (b, K, 1, 1)
                cam = (alpha * acts).sum(1, keepdim=True)  # (b, 1, h, w)
                if self.relu:
                    cam = F.relu(cam)
                cam = F.interpolate(cam, size=x.shape[2:], mode="bilinear", align_corners=False)
        finally:
            handle.remove()
        # the activations hold a graph even without create_graph: a plain map, like the others
        return cam if create_graph else cam.detach()  # (b, 1, H, W)
