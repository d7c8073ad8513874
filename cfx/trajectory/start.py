"""Where every trajectory explainer starts: inputs checked against the models, the target
resolved, the sources inverted (or the caller's latents checked).

Everything a user can get wrong is checked here, before the inversion spends its time: the
images' channels and size against what the generator produces (one decode of the zero latent),
the classifier's and the oracle's outputs on that decoded image (logits ``(1, K)``, ``K >= 2``,
the same ``K``; a failing call whose models are in another dtype or on another device than the
images is reported as that), the target against ``K``, the latents' type, shape and values.
Three things that run but are likely mistakes are logged as warnings: outputs that look like
probabilities (a final softmax), images with no pixel below 0 ([0, 1] rather than [-1, 1]),
and a generator whose decoded image has none either (:func:`~cfx.inversion.generator_probe`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import Tensor

from cfx.calls import (
    class_logits,
    dtype_device_mismatch,
    looks_like_probabilities,
    resolve_target,
    trained_size_mismatch,
)
from cfx.errors import check_int, check_real
from cfx.images import check_images
from cfx.inversion import (
    InversionResult,
    check_generator_model,
    generator_probe,
    invert,
    unit_range_notice,
)
from cfx.inversion import log as inversion_log
from cfx.notices import held
from cfx.types import Classifier, Generator, Target

log = logging.getLogger(__name__)


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
    oracle: Classifier | None
    inversion_steps: int
    inversion_classifier_weight: float
    show_progress: bool


def check_inversion(steps: object, weight: object) -> None:
    """Errors naming the explainers' inversion options: ``inversion_steps`` an int >= 0,
    ``inversion_classifier_weight`` a number >= 0 that, when > 0, needs inversion steps (the
    decision term acts in them)."""
    check_int("inversion_steps", steps, minimum=0)
    check_real("inversion_classifier_weight", weight, low=0.0)
    if weight > 0 and steps == 0:  # type: ignore[operator]
        raise ValueError(
            "`inversion_classifier_weight` acts in the inversion's optimisation steps: "
            "it needs `inversion_steps` > 0, got 0"
        )


_PROBE = "the generator's image of the zero latent (a check before the work)"
"""How errors about the models' outputs on the probe describe it (not as the user's batch)."""


SAME_ORACLE = (
    "%s is the classifier being explained (%s): the frames agree with it by construction, "
    "so oracle agreement says nothing; pass an independent model, or none"
)
"""The notice for an oracle that is the explained classifier (two ``%s``: how each is named)."""


def start(explainer: Starts, x: object, target: Target, latents: object = None) -> Start:
    """Check ``x`` ``(B, C, H, W)`` and ``target``, then invert ``x`` (the explainer's
    ``inversion_steps`` latent-optimisation steps after the encoder, with its progress bar;
    with ``inversion_classifier_weight > 0`` the inversion keeps the classifier's decision on
    ``x``, :func:`~cfx.inversion.invert`'s ``classifier_weight``) unless ``latents``
    ``(B, *latent_shape)`` are given. Models must already be frozen."""
    generator, classifier, oracle = explainer.generator, explainer.classifier, explainer.oracle
    x = check_images(x, "x")
    b = x.shape[0]
    models = {"generator": generator, "classifier": classifier, "oracle": oracle}
    check_generator_model(generator)  # its own error, before any dtype is blamed below
    calling = "generator"
    try:
        probe = generator_probe(generator, x)  # (1, C, H, W), after checking x's shape
        with torch.no_grad():
            calling = "classifier"
            logits = class_logits(classifier, probe, probe=_PROBE)
            # the oracle is checked now, not after the work, when the frames are scored
            calling = "oracle"
            o_logits = (
                None if oracle is None else class_logits(oracle, probe, name="oracle", probe=_PROBE)
            )
    except (RuntimeError, TypeError) as err:  # PyTorch's errors name neither x nor a model
        # the model that failed: another's dtype (one that casts its inputs) is not the cause;
        # but if it is one, every model is named when they differ among themselves (the
        # generator's probe names only the generator)
        if dtype_device_mismatch({calling: models[calling]}, x) is not None:
            raise TypeError(dtype_device_mismatch(models, x)) from err
        if calling == "generator" or isinstance(err, TypeError):
            raise
        # most often a model built for other images (channels, size) than the generator's
        hint = (
            "; an oracle scores the frames only: pass none (CLI: `--oracle none`) if it is "
            "built for other images"
            if calling == "oracle"
            else ""
        )
        raise ValueError(
            f"the {calling} failed on the generator's images {tuple(probe.shape[1:])} "
            f"(C, H, W): {str(err).splitlines()[0]}; the generator, classifier and oracle "
            f"must work on the same images{hint}"
        ) from err
    num_classes = logits.shape[1]
    if oracle is not None and oracle is classifier:
        log.warning(SAME_ORACLE, "`oracle`", "`classifier`", extra={"cfx_models": True})
    for name, out in (("classifier", logits), ("oracle", o_logits)):
        if out is None:
            continue
        size = trained_size_mismatch(
            models[name], probe.shape, f"the {name}", "images (the generator's)", frames=True
        )
        if size is not None:
            log.warning("%s", size, extra={"cfx_models": True})
        if out.shape[1] != num_classes:
            raise ValueError(
                f"`oracle` returns {out.shape[1]} class logits but the classifier "
                f"{num_classes}: the oracle must score the same classes, in the same order "
                "(or pass none; CLI: `--oracle none`)"
            )
        if looks_like_probabilities(out):
            log.warning(
                "the %s's outputs look like probabilities (non-negative, summing to 1): cfx "
                "takes them for logits and applies softmax again; drop the final softmax (or "
                "return log-probabilities)",
                name,
                extra={"cfx_models": True},
            )
    unit_range_notice(x)
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
    weight = explainer.inversion_classifier_weight
    # the probe above gave the notices about the models (tagged cfx_models) and the input's
    # range (cfx_unit_range); the inversion checks them again and would give each twice
    with held((inversion_log,), "cfx_models", "cfx_unit_range"):
        inv = invert(
            generator,
            x,
            steps=explainer.inversion_steps,
            # off by default: on brain-gan / brain-cnn it cost oracle agreement (BENCHMARKS.md,
            # session 24); for users whose reconstructions lose the classifier's decision
            classifier=classifier if weight > 0 else None,
            classifier_weight=weight if weight > 0 else 0.0,
            show_progress=explainer.show_progress,
        )
    return Start(latents=inv.latents, target=tgt, inversion=inv, seconds=time.perf_counter() - t0)
