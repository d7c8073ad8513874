"""Where every trajectory explainer starts: inputs checked against the models, the target
resolved, the sources inverted (or the caller's latents checked).

Everything a user can get wrong is checked here, before the inversion spends its time: the
images' channels and size against what the generator produces (one decode of the zero latent),
the target against the classifier's number of classes, the latents' type, shape and values.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import Tensor

from cfx.calls import class_logits, resolve_target
from cfx.images import check_images
from cfx.inversion import InversionResult, generator_probe, invert
from cfx.types import Classifier, Generator


@dataclass(frozen=True)
class Start:
    latents: Tensor  # (B, *latent_shape) z_0
    target: Tensor  # (B,) int64 class indices
    inversion: InversionResult | None  # None when the caller passed the latents
    seconds: float  # wall time of the inversion (0 with given latents)


class Starts(Protocol):
    """What :func:`start` reads from an explainer."""

    generator: Generator
    classifier: Classifier
    inversion_steps: int
    show_progress: bool


def start(explainer: Starts, x: object, target: int | Tensor, latents: object = None) -> Start:
    """Check ``x`` ``(B, C, H, W)`` and ``target``, then invert ``x`` (the explainer's
    ``inversion_steps`` latent-optimisation steps after the encoder, with its progress bar)
    unless ``latents`` ``(B, *latent_shape)`` are given. Models must already be frozen."""
    generator, classifier = explainer.generator, explainer.classifier
    x = check_images(x, "x")
    b = x.shape[0]
    probe = generator_probe(generator, x)  # (1, C, H, W), after checking x's shape
    with torch.no_grad():
        num_classes = class_logits(classifier, probe).shape[1]
    tgt = resolve_target(target, b, num_classes, x.device)
    if latents is not None:
        expected = (b, *generator.latent_shape)
        if not isinstance(latents, Tensor):
            raise TypeError(
                f"`latents` must be a torch.Tensor of shape {expected}, got "
                f"{type(latents).__name__}"
            )
        if tuple(latents.shape) != expected:
            raise ValueError(f"`latents` must have shape {expected}, got {tuple(latents.shape)}")
        if not bool(torch.isfinite(latents).all()):
            raise ValueError("`latents` contains NaN or infinite values")
        return Start(latents=latents.detach().to(x), target=tgt, inversion=None, seconds=0.0)
    t0 = time.perf_counter()
    inv = invert(
        generator, x, steps=explainer.inversion_steps, show_progress=explainer.show_progress
    )
    return Start(latents=inv.latents, target=tgt, inversion=inv, seconds=time.perf_counter() - t0)
