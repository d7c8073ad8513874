"""Train classifiers and segmenters (:mod:`cfx.models.classifiers`) on images in [-1, 1].

The loop is written out in the open. Each epoch visits the training set in a shuffled order;
each step takes one batch, optionally augments it (a small random translation, padded with the
background value -1, and an intensity scale; never a flip, because the scanner marker of the
tagged brain data sits in a fixed corner; optionally acquisition changes: a Gaussian blur of
random width and extra Gaussian noise, so the model cannot read sharpness or noise level as
evidence for a class), and takes an AdamW step on

* ``task="classify"``: cross-entropy of the logits ``(B, K)`` against integer labels ``(B,)``;
* ``task="segment"``: binary cross-entropy of the mask logits ``(B, 1, H, W)`` plus the soft
  Dice loss (Milletari et al., "V-Net", 3DV 2016), against masks ``(B, 1, H, W)``.

The learning rate warms up linearly, then follows a cosine decay to zero (Loshchilov & Hutter,
"SGDR", ICLR 2017); it is a pure function of the step, so there is no scheduler state.

Every random draw (initialisation, data order, augmentation) comes from ``config.seed``, and
so do the draws of random layers such as dropout, which torch makes from its global generator:
it is seeded for the run, kept in checkpoints and put back as it was afterwards. Checkpoints
(safetensors, atomic) are written every ``checkpoint_every`` steps, at the end and when Ctrl-C
stops the run (after the step in progress, :mod:`cfx.training.interrupt`) to
``out/checkpoint.safetensors``; rerunning with the same ``out`` resumes where it stopped,
mid-epoch included, and ends with exactly the weights an uninterrupted run would have.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
from contextlib import nullcontext
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Literal, TypeVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cfx.calls import eval_mode, float_weight, to_model
from cfx.errors import check, check_flag, check_int, check_real, check_seed, counted, fail
from cfx.files import make_folder
from cfx.images import binary_masks, check_images, from_unit, to_unit
from cfx.inversion import unit_range_notice
from cfx.run_key import module_sha256, tensors_sha256
from cfx.training.checkpoint import (
    diverged,
    not_finite,
    resume_checkpoint,
    save_checkpoint,
)
from cfx.training.generator import TrainingReport
from cfx.training.init import reset_parameters
from cfx.training.interrupt import held_interrupt

log = logging.getLogger(__name__)

M = TypeVar("M", bound=nn.Module)
Task = Literal["classify", "segment"]

__all__ = [
    "ClassifierTrainingConfig",
    "TrainingReport",
    "dice_score",
    "evaluate_classifier",
    "evaluate_segmenter",
    "train_classifier",
]


_REAL_RANGES = (  # ClassifierTrainingConfig's real settings: (name, low, high, open high end)
    ("weight_decay", 0.0, None, False),
    ("warmup", 0.0, 1.0, True),
    ("intensity_jitter", 0.0, 1.0, True),
    ("blur", 0.0, 3.0, False),  # pixels
    ("noise", 0.0, 0.5, False),
)


@dataclass(frozen=True)
class ClassifierTrainingConfig:
    """Hyperparameters of :func:`train_classifier` (classifiers and segmenters); checked when
    built.

    Attributes:
        epochs: passes over the training set (> 0).
        batch_size: images per step (> 0).
        lr: base AdamW learning rate (> 0), ramped up linearly over the warm-up and decayed to
            zero on a cosine over all steps.
        weight_decay: AdamW weight decay (>= 0).
        warmup: fraction of all steps with a linear learning-rate warm-up, in [0, 1).
        augment: apply the random augmentations below to each training batch.
        max_shift: random translation in ``[-max_shift, max_shift]`` pixels per axis (>= 0),
            padded with the background value -1.
        intensity_jitter: intensity scale drawn from ``[1 - jitter, 1 + jitter]``, in [0, 1).
        blur: Gaussian blur, sigma drawn per image from ``[0, blur]`` pixels, in [0, 3]
            (0 = off; needs ``augment``).
        noise: extra Gaussian noise, std drawn per image from ``[0, noise]`` in the unit range
            [0, 1] of the image (not [-1, 1]), in [0, 0.5] (0 = off; needs ``augment``).
        checkpoint_every: steps between checkpoints (> 0).
        reset_parameters: re-draw the model's weights from ``seed`` (False: fine-tune the
            weights it has).
        balanced: weight each class's examples in the loss by ``N / (K n_k)`` (``n_k`` of
            the ``N`` training labels in class ``k`` of the model's ``K``; scikit-learn's
            ``class_weight="balanced"``), so a rare class counts as much as a common one.
            For labels where one class is much rarer than another (a model that always
            answers the common class scores a high accuracy); every class must have
            training examples. ``task="classify"`` only.
        seed: the source of every random draw (initialisation, data order, augmentation).
    """

    epochs: int = 10
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-2
    warmup: float = 0.03  # fraction of all steps with a linear learning-rate warm-up
    augment: bool = True
    max_shift: int = 3  # pixels; random translation in [-max_shift, max_shift] per axis
    intensity_jitter: float = 0.1  # intensity scale drawn from [1 - jitter, 1 + jitter]
    blur: float = 0.0  # Gaussian blur, sigma drawn per image from [0, blur] pixels (0 = off)
    noise: float = 0.0  # extra Gaussian noise, std drawn per image from [0, noise] (unit range)
    checkpoint_every: int = 200  # steps
    reset_parameters: bool = True  # re-draw the model's weights from `seed` (False: fine-tune)
    balanced: bool = False  # class weights N / (K n_k) in the loss, for imbalanced labels
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "checkpoint_every"):  # numpy ints kept as ints
            object.__setattr__(self, name, check_int(name, getattr(self, name)))
        # what torch's generators take; a numpy int (a sweep) kept as an int
        object.__setattr__(self, "seed", check_seed("seed", self.seed, optional=False, bits=64))
        object.__setattr__(self, "max_shift", check_int("max_shift", self.max_shift, minimum=0))
        for name in ("augment", "reset_parameters", "balanced"):  # "False" was truthy
            object.__setattr__(self, name, check_flag(name, getattr(self, name)))
        # finite too: lr=inf trained a NaN model that exited 0; warmup='0.1' failed comparing
        for name, low, high, open_high in _REAL_RANGES:
            value = check_real(name, getattr(self, name), low=low, high=high, open_high=open_high)
            object.__setattr__(self, name, value)  # a numpy float32 as a float: JSON takes it
        object.__setattr__(self, "lr", check_real("lr", self.lr, low=0.0, open_low=True))
        if not self.augment and (self.blur > 0 or self.noise > 0):  # else silently unused
            raise ValueError(
                f"`blur` ({self.blur}) and `noise` ({self.noise}) are augmentations: they need "
                "augment=True"
            )


# --- metrics ------------------------------------------------------------------------------------


def _dice(pred: Tensor, masks: Tensor, smooth: float) -> Tensor:
    """Per-example (soft) Dice of ``pred`` and ``masks`` in [0, 1], both ``(B, ...)``."""
    pred, masks = pred.flatten(1), masks.flatten(1)  # (B, P)
    inter = (pred * masks).sum(1)  # (B,)
    total = pred.sum(1) + masks.sum(1)  # (B,)
    return (2 * inter + smooth) / (total + smooth)


def dice_score(mask_logits: Tensor, masks: Tensor) -> Tensor:
    """Dice coefficient of thresholded predictions, one value per example (``Tensor[B]``).

    Args:
        mask_logits: ``(B, 1, H, W)`` logits; a pixel is predicted in the mask when its logit
            is > 0 (probability > 0.5).
        masks: ``(B, 1, H, W)`` true masks, bool or {0, 1} floats.

    Returns ``2 |P & T| / (|P| + |T|)`` in [0, 1]; an empty true mask with an empty prediction
    scores 1 (nothing to find, nothing found).
    """
    if mask_logits.shape != masks.shape:
        raise ValueError(
            f"`mask_logits` and `masks` must have the same shape, got {tuple(mask_logits.shape)} "
            f"and {tuple(masks.shape)}"
        )
    pred = (mask_logits > 0).flatten(1)  # (B, P)
    true = masks.bool().flatten(1)  # (B, P)
    inter = (pred & true).sum(1).double()  # (B,)
    total = (pred.sum(1) + true.sum(1)).double()  # (B,)
    score = torch.where(total > 0, 2 * inter / total.clamp(min=1), torch.ones_like(total))
    return score.to(mask_logits.dtype if mask_logits.is_floating_point() else torch.float32)


@torch.no_grad()
def predict(model: nn.Module, images: Tensor, batch_size: int = 256) -> Tensor:
    """Model outputs over ``images`` in batches of ``batch_size`` (eval mode, each submodule's
    mode restored afterwards, no gradients), concatenated on the CPU: logits ``(N, K)`` for a
    classifier."""
    batch_size = check_int("batch_size", batch_size)
    with eval_mode(model):  # each submodule's own mode restored
        return torch.cat(
            [
                model(to_model(images[i : i + batch_size], model)).cpu()
                for i in range(0, images.shape[0], batch_size)
            ]
        )


def evaluate_classifier(
    model: nn.Module, images: Tensor, labels: Tensor, batch_size: int = 256
) -> float:
    """Accuracy of ``model`` (images in [-1, 1] -> logits ``(B, K)``) on integer ``labels``."""
    check_images(images, "images")
    _check_labels(labels, images.shape[0], "labels")
    return float(_correct(model, images, labels, batch_size).mean())


def _correct(model: nn.Module, images: Tensor, labels: Tensor, batch_size: int) -> Tensor:
    """Whether ``model`` calls each of ``images`` its label: ``(N,)`` float64 of 0 and 1
    (float64: the share of 7 in 10 is 0.7, not float32's 0.69999999), on the CPU."""
    return (predict(model, images, batch_size).argmax(1) == labels.cpu()).double()


def _val_accuracies(
    model: nn.Module, images: Tensor, labels: Tensor, batch_size: int
) -> tuple[float, float]:
    """Accuracy and balanced accuracy (the mean over the classes in ``labels`` of the share
    of that class predicted right) of ``model`` on checked ``images`` and ``labels``."""
    labels = labels.cpu()
    correct = _correct(model, images, labels, batch_size)  # (N,)
    recalls = torch.stack([correct[labels == k].mean() for k in labels.unique()])  # (classes,)
    return float(correct.mean()), float(recalls.mean())


def evaluate_segmenter(
    model: nn.Module, images: Tensor, masks: Tensor, batch_size: int = 256
) -> float:
    """Mean :func:`dice_score` of ``model`` (images in [-1, 1] -> mask logits) on ``masks``."""
    check_images(images, "images")
    _check_masks(masks, images, "masks")
    logits = predict(model, images, batch_size)  # (N, 1, H, W)
    return float(dice_score(logits, masks.cpu()).mean())


# --- argument checks ----------------------------------------------------------------------------


def _check_labels(labels: object, n: int, name: str) -> Tensor:
    if not isinstance(labels, Tensor):
        raise TypeError(f"`{name}` must be a torch.Tensor of class indices, got {type(labels)}")
    check(
        labels.dtype in (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8),
        TypeError,
        f"`{name}` must hold integer class indices, got dtype {labels.dtype}",
    )
    check(
        labels.ndim == 1 and labels.shape[0] == n,
        ValueError,
        f"`{name}` must have shape ({n},) to match the images, got {tuple(labels.shape)}",
    )
    low = int(labels.min())  # n >= 1: the images are checked first
    check(low >= 0, ValueError, f"`{name}` must be non-negative class indices, got min {low}")
    return labels.long()


def _check_masks(masks: object, images: Tensor, name: str) -> Tensor:
    if not isinstance(masks, Tensor):
        raise TypeError(f"`{name}` must be a torch.Tensor of masks, got {type(masks)}")
    want = (images.shape[0], 1, *images.shape[2:])
    check(
        tuple(masks.shape) == want,
        ValueError,
        f"`{name}` must have shape {want} to match the images, got {tuple(masks.shape)}",
    )
    return binary_masks(masks, name)


def _check_targets(task: Task, targets: object, images: Tensor, name: str) -> Tensor:
    if task == "classify":
        return _check_labels(targets, images.shape[0], name)
    elif task == "segment":
        return _check_masks(targets, images, name)
    else:
        fail(ValueError, f"`task` must be 'classify' or 'segment', got {task!r}")


# --- training -----------------------------------------------------------------------------------


def _epoch_order(n: int, order_seed: int, epoch: int) -> Tensor:
    """The shuffled example order of ``epoch``: a pure function, so a resumed run sees it too."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(order_seed + epoch))


def _learning_rate(cfg: ClassifierTrainingConfig, step: int, total: int) -> float:
    warmup = max(1, round(cfg.warmup * total))
    ramp = min(1.0, (step + 1) / warmup)
    return cfg.lr * ramp * 0.5 * (1.0 + math.cos(math.pi * step / total))


def _augment(
    cfg: ClassifierTrainingConfig, x: Tensor, masks: Tensor | None, gen: torch.Generator
) -> tuple[Tensor, Tensor | None]:
    """Random integer translation (padding -1 / 0) and intensity scale; ``x`` in [-1, 1]."""
    b, _, h, w = x.shape
    s = cfg.max_shift
    shifts = torch.randint(-s, s + 1, (b, 2), generator=gen).tolist()  # (B, 2): dy, dx
    scale = 1.0 + cfg.intensity_jitter * (2 * torch.rand(b, 1, 1, 1, generator=gen) - 1)
    if s > 0:
        padded = F.pad(x, (s, s, s, s), value=-1.0)  # (B, C, H + 2s, W + 2s)
        x = torch.stack(
            [
                padded[i, :, s - dy : s - dy + h, s - dx : s - dx + w]
                for i, (dy, dx) in enumerate(shifts)
            ]
        )
        if masks is not None:
            padded_m = F.pad(masks, (s, s, s, s), value=0.0)
            masks = torch.stack(
                [
                    padded_m[i, :, s - dy : s - dy + h, s - dx : s - dx + w]
                    for i, (dy, dx) in enumerate(shifts)
                ]
            )
    u = to_unit(x) * scale.to(x)  # (B, C, H, W) in unit range
    if cfg.blur > 0:
        u = _gaussian_blur(u, cfg.blur * torch.rand(b, generator=gen).to(x))
    if cfg.noise > 0:
        std = cfg.noise * torch.rand(b, 1, 1, 1, generator=gen).to(x)
        u = u + std * torch.randn(u.shape, generator=gen).to(x)
    return from_unit(u.clamp(0.0, 1.0)), masks  # (B, C, H, W) in [-1, 1]


def _gaussian_blur(u: Tensor, sigma: Tensor) -> Tensor:
    """Blur each image of ``u`` ``(B, C, H, W)`` with its own Gaussian width ``sigma`` ``(B,)``
    (pixels; 0 leaves the image unchanged); edges are replicated."""
    b, c, h, w = u.shape
    radius = max(1, math.ceil(4 * float(sigma.max())))
    offsets = torch.arange(-radius, radius + 1, dtype=u.dtype, device=u.device)  # (K,)
    s = sigma.clamp_min(1e-3)[:, None]  # (B, 1)
    k1 = torch.exp(-0.5 * (offsets[None] / s) ** 2)  # (B, K)
    k1 = k1 / k1.sum(1, keepdim=True)
    kernel = (k1[:, :, None] * k1[:, None, :]).repeat_interleave(c, 0)  # (B*C, K, K)
    padded = F.pad(u.reshape(1, b * c, h, w), (radius,) * 4, mode="replicate")
    out = F.conv2d(padded, kernel[:, None], groups=b * c)  # (1, B*C, H, W)
    return out.view(b, c, h, w)


def _loss(
    task: Task, out: Tensor, y: Tensor, weight: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """Mean training loss and the per-example score (correct or hard Dice), ``Tensor[B]``.

    ``weight`` ``(K,)`` weighs each example's cross-entropy by its class's weight, and the
    sum is divided by the batch size, not by the batch's sum of weights (torch's weighted
    mean): the weights :func:`_class_weights` makes sum to ``N`` over the data, so this is an
    unbiased estimate of the whole data's balanced loss, where the weighted mean of small
    batches is not (a bias-only model settled at p = 0.46 instead of 0.5)."""
    if task == "classify":
        if weight is None:
            loss = F.cross_entropy(out, y)
        else:
            loss = F.cross_entropy(out, y, weight=weight, reduction="sum") / y.shape[0]
        return loss, (out.argmax(1) == y).float()
    elif task == "segment":
        bce = F.binary_cross_entropy_with_logits(out, y)
        soft_dice = _dice(torch.sigmoid(out), y, smooth=1.0)  # (B,)
        return bce + (1.0 - soft_dice).mean(), dice_score(out.detach(), y)
    else:
        fail(ValueError, f"`task` must be 'classify' or 'segment', got {task!r}")


def _check_outputs(
    task: Task, model: nn.Module, images: Tensor, targets: Tensor, val_targets: Tensor | None
) -> int | None:
    """Run the model on one image: fail early and clearly on a model/task/targets mismatch.
    Returns the model's class count ``K`` for ``"classify"`` (None for ``"segment"``)."""
    channels = getattr(getattr(model, "config", None), "channels", None)
    last = (
        "; a batch saved channels last is images.permute(0, 3, 1, 2)"
        if images.shape[-1] == channels
        else ""
    )
    check(
        not isinstance(channels, int) or channels == images.shape[1],
        ValueError,
        f"`images` must have the {channels} channels `model` was made for, got "
        f"{images.shape[1]} (shape {tuple(images.shape)}){last}",
    )
    try:
        out = predict(model, images[:1], 1)
    except RuntimeError as err:  # PyTorch's words alone named no argument
        raise ValueError(
            f"`model` fails on one of `images` {tuple(images.shape[1:])}: {err}"
        ) from err
    if task == "classify":
        check(
            out.ndim == 2 and out.shape[1] >= 2,
            ValueError,
            f"task 'classify' needs a model returning logits (B, K) for K >= 2 classes, got "
            f"{tuple(out.shape)}",
        )
        for name, labels in (("targets", targets), ("val[1]", val_targets)):
            if labels is not None:  # val labels too: a class the model lacks scored 0 silently
                check(
                    int(labels.max()) < out.shape[1],
                    ValueError,
                    f"`{name}` must be class indices below the model's {out.shape[1]} "
                    f"outputs, got max {int(labels.max())}",
                )
        return int(out.shape[1])
    elif task == "segment":
        check(
            out.shape == (1, *targets.shape[1:]),
            ValueError,
            f"task 'segment' needs a model returning mask logits {(1, *targets.shape[1:])}, "
            f"got {tuple(out.shape)}",
        )
        return None
    else:
        fail(ValueError, f"`task` must be 'classify' or 'segment', got {task!r}")


def _check_arguments(
    model: nn.Module,
    images: Tensor,
    targets: Tensor,
    config: ClassifierTrainingConfig | None,
    task: Task,
    val: tuple[Tensor, Tensor] | None,
) -> tuple[ClassifierTrainingConfig, Tensor, tuple[Tensor, Tensor] | None, Tensor | None]:
    """:func:`train_classifier`'s arguments checked, before anything is written: the
    config, the targets and ``val`` as the loop takes them, and the class weights of
    ``config.balanced`` (None without it)."""
    cfg = config or ClassifierTrainingConfig()
    if not isinstance(cfg, ClassifierTrainingConfig):
        raise TypeError(f"`config` must be a ClassifierTrainingConfig, got {type(cfg).__name__}")
    if task not in ("classify", "segment"):
        raise ValueError(f"`task` must be 'classify' or 'segment', got {task!r}")
    check(
        not (cfg.balanced and task == "segment"),
        ValueError,
        "balanced=True weights the classes of task 'classify'; task 'segment' has none (its "
        "targets are masks)",
    )
    if not isinstance(model, nn.Module):
        raise TypeError(f"`model` must be an nn.Module, got {type(model).__name__}")
    check_images(images, "images")
    y_all = _check_targets(task, targets, images, "targets")
    checked_val = None
    if val is not None:
        check(
            isinstance(val, tuple) and len(val) == 2,
            TypeError,
            f"`val` must be a tuple (images, targets) or None, got {type(val).__name__}",
        )
        check_images(val[0], "val[0]")
        check(
            val[0].shape[1:] == images.shape[1:],
            ValueError,
            f"`val[0]` must have images shaped like `images` {tuple(images.shape[1:])}, "
            f"got {tuple(val[0].shape[1:])}",
        )
        checked_val = (val[0], _check_targets(task, val[1], val[0], "val[1]"))
    check(
        any(p.requires_grad for p in model.parameters()),
        ValueError,
        "`model` must have trainable parameters, got none with requires_grad=True (zoo models "
        "load frozen: call model.requires_grad_(True) to fine-tune one)",
    )
    val_y = None if checked_val is None or task != "classify" else checked_val[1]
    classes = _check_outputs(task, model, images, y_all, val_y)
    weights = None if classes is None else _class_weights(y_all, classes, cfg.balanced)
    return cfg, y_all, checked_val, weights


_IMBALANCED = 4.0
"""The ratio of the commonest class's training labels to the rarest's from which
:func:`train_classifier` without ``balanced`` gives a notice."""


def _class_weights(labels: Tensor, classes: int, balanced: bool) -> Tensor | None:
    """``N / (K n_k)`` per class ``(K,)`` (float64, CPU) for ``balanced``; without it None,
    with a notice (tagged ``cfx_imbalanced``) when the labels' classes are far apart in size."""
    counts = torch.bincount(labels.cpu(), minlength=classes)  # (K,)
    shown = ", ".join(f"class {k}: {int(c)}" for k, c in enumerate(counts))
    if balanced:
        missing = [k for k in range(classes) if counts[k] == 0]
        check(
            not missing,
            ValueError,
            f"balanced=True (--balanced) weights each of the model's {classes} classes by "
            f"its share of `targets`, which must then hold every class; got none of class "
            f"{', '.join(map(str, missing))} ({shown})",
        )
        return labels.shape[0] / (classes * counts.double())
    present = counts[counts > 0]
    if present.numel() > 1 and float(present.max()) >= _IMBALANCED * float(present.min()):
        log.warning(
            "the training labels are imbalanced (%s): a model that mostly answers the "
            "common class already scores a high accuracy; ClassifierTrainingConfig("
            "balanced=True) (cfx train classifier --balanced) weights the classes equally",
            shown,
            extra={"cfx_imbalanced": True},
        )
    return None


def _fingerprint(
    model: nn.Module,
    task: Task,
    images: Tensor,
    targets: Tensor,
    cfg: ClassifierTrainingConfig,
    val: tuple[Tensor, Tensor] | None,
    dtype: torch.dtype,
) -> dict:
    """What makes a run the same run; ``model`` as it starts (fine-tuning: its weights)."""
    run = dataclasses.asdict(cfg)
    run.pop("checkpoint_every")  # free to change between runs
    if not run["balanced"]:  # added later: a checkpoint from before it resumes
        del run["balanced"]
    config = getattr(model, "config", None)
    is_config = dataclasses.is_dataclass(config) and not isinstance(config, type)
    arch = dataclasses.asdict(config) if is_config else None  # type: ignore[arg-type]
    if arch is not None:  # the data's digest covers it; checkpoints from before it resume
        arch.pop("image_size", None)
    key = {
        "model": type(model).__name__,
        "arch": arch,
        "task": task,
        "n": images.shape[0],
        "data_sha256": tensors_sha256(images, targets),  # the same count of other data is not
        # the history's val_acc must come from one set (a resume with another mixed them)
        "val_sha256": None if val is None else tensors_sha256(*val),
        # fine-tuning another model's weights into the same folder got the first's result
        "start_sha256": None if cfg.reset_parameters else module_sha256(model),
        "dtype": str(dtype),  # a float64 copy resumed a float32 run
        "config": run,
    }
    return json.loads(json.dumps(key))  # as the checkpoint stores it (tuples become lists)


_FINGERPRINT_NAMES = {
    "data_sha256": "the training images or labels",
    "val_sha256": "the validation images or labels",
    "start_sha256": "the model's weights to fine-tune",
    "dtype": "the model's dtype",
}
_ADDED_LATER = ("data_sha256", "val_sha256", "start_sha256", "dtype")  # older checkpoints lack


def _batch(order: Tensor, pos: int, batch_size: int, steps_per_epoch: int) -> Tensor:
    """The example indices of an epoch's step ``pos``: the last step takes what is left, so
    a single image left over joins the step before it (a batch of one made BatchNorm fail)."""
    end = order.shape[0] if pos == steps_per_epoch - 1 else (pos + 1) * batch_size
    return order[pos * batch_size : end]


def _steps_per_epoch(n: int, batch_size: int) -> int:
    """Steps in an epoch of ``n`` examples: batches of ``batch_size``, the last one larger by
    one when a single example would be left on its own (see :func:`_batch`)."""
    steps = math.ceil(n / batch_size)
    return steps - 1 if steps > 1 and n % batch_size == 1 else steps


def _placement(model: nn.Module) -> tuple[torch.device, torch.dtype]:
    """Where the inputs go: the device and dtype of ``model``'s first floating weight (CPU,
    float32 without one)."""
    weight = float_weight(model)
    if weight is None:
        return torch.device("cpu"), torch.float32
    return weight.device, weight.dtype


def _training_mode(model: nn.Module) -> None:
    """``model.train()``, unless ``model`` is in training mode already with submodules the
    user put in eval mode (a frozen backbone whose BatchNorm statistics must not move, as
    fine-tuning recipes do it): those stay as they are (``model.train()`` switched them back,
    and the statistics drifted although the weights were frozen)."""
    kept = [name for name, sub in model.named_modules() if not sub.training]
    if model.training and kept:
        log.info("training with %s kept in eval mode: %s", counted(len(kept), "submodule"), kept)
        return
    model.train()


def _global_generator(device: torch.device) -> torch.Generator | None:
    """The generator that layers such as ``nn.Dropout`` draw from on ``device`` (torch has no
    way to hand them one): None for devices other than the CPU and CUDA."""
    if device.type == "cpu":
        return torch.default_generator
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return torch.cuda.default_generators[index]
    return None


def train_classifier(
    model: M,
    images: Tensor,
    targets: Tensor,
    out: str | Path,
    config: ClassifierTrainingConfig | None = None,
    *,
    task: Task = "classify",
    val: tuple[Tensor, Tensor] | None = None,
    show_progress: bool = True,
) -> tuple[M, TrainingReport]:
    """Train (or resume) ``model`` in place; return it in eval mode with a report.

    Args:
        model: an ``nn.Module`` mapping images ``(B, C, H, W)`` in [-1, 1] to logits ``(B, K)``
            (``task="classify"``) or mask logits ``(B, 1, H, W)`` (``task="segment"``). It
            trains in training mode; a model already in training mode keeps the submodules
            you put in eval mode (``model.train(); model.backbone.eval()``: a frozen
            backbone's BatchNorm statistics stay). Unless
            ``config.reset_parameters`` is False, its weights are re-drawn from ``config.seed``
            (:func:`~cfx.training.init.reset_parameters`: conv and linear layers; others keep
            the values the model holds). It is trained on the device it lives on; random
            layers such as dropout draw from the device's generator, seeded from
            ``config.seed`` for the run, saved in checkpoints and put back afterwards.
        images: training images ``(N, C, H, W)`` in [-1, 1].
        targets: integer labels ``(N,)`` for ``"classify"``, masks ``(N, 1, H, W)`` (bool or
            {0, 1}) for ``"segment"``.
        out: run folder (made if missing); ``out/checkpoint.safetensors`` is written during
            training and, if present, resumed from: it must come from the same model (class,
            architecture, dtype and, when fine-tuning, starting weights), data and config.
        config: hyperparameters (defaults: :class:`ClassifierTrainingConfig`).
        task: ``"classify"`` or ``"segment"``.
        val: optional ``(images, targets)`` scored after every epoch (accuracy or mean Dice).
        show_progress: show a tqdm bar with the running loss and accuracy (or Dice).

    Each epoch takes batches of ``config.batch_size`` in a shuffled order; a single image left
    over joins the last batch (BatchNorm cannot train on a batch of one).

    Returns:
        ``(model, report)``: ``report.history`` has one row per epoch (``epoch``, ``step``,
        ``lr``, ``loss``, ``train_acc``/``train_dice`` and, with ``val``, ``val_acc`` and
        ``val_balanced_acc`` (the mean of the per-class accuracies) or ``val_dice``).
        Without ``config.balanced``, labels whose commonest class outnumbers the rarest four
        to one give a notice, as do training images with no pixel below 0 (likely [0, 1]
        images, where cfx's are in [-1, 1]).
    """
    check_flag("show_progress", show_progress)
    cfg, y_all, val, weights = _check_arguments(model, images, targets, config, task, val)
    unit_range_notice(images, "training")  # [0, 1] images train a model of the wrong range
    out = make_folder(out, "out")  # after the checks: a refused run leaves nothing behind
    ckpt = out / "checkpoint.safetensors"
    device, dtype = _placement(model)
    fingerprint = _fingerprint(model, task, images, y_all, cfg, val, dtype)  # before a reset
    gen = torch.Generator().manual_seed(cfg.seed)
    if cfg.reset_parameters:
        frozen = sum(not p.requires_grad for p in model.parameters())
        if frozen:  # a frozen backbone under a head to fine-tune?
            log.warning(
                "reset_parameters re-draws all of the model's weights, the %s without "
                "requires_grad too (they stay frozen at random values); to fine-tune on top "
                "of weights you froze, pass ClassifierTrainingConfig(reset_parameters=False)",
                counted(frozen, "parameter"),
            )
        reset_parameters(model, gen)
    order_seed = int(torch.randint(0, 2**62, (), generator=gen))
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    generators = {"gen": gen}
    layers_rng = _global_generator(device)
    if layers_rng is not None:
        generators["layers"] = layers_rng
        kept_rng = layers_rng.get_state()  # the caller's, put back at the end
        layers_rng.manual_seed(cfg.seed)  # its own stream: gen's draws stay as they were
    try:
        state = resume_checkpoint(
            ckpt,
            fingerprint=fingerprint,
            names=_FINGERPRINT_NAMES,
            added_later=_ADDED_LATER,
            modules={"model": model},
            optimizers={"opt": opt},
            generators=generators,
            generators_added_later=("layers",),
        )
        return _train(
            model,
            task,
            images,
            y_all,
            cfg,
            val,
            out,
            opt,
            generators,
            order_seed,
            fingerprint,
            state,
            show_progress,
            weights,
        )
    finally:
        if layers_rng is not None:
            layers_rng.set_state(kept_rng)


def _train(
    model: M,
    task: Task,
    images: Tensor,
    y_all: Tensor,
    cfg: ClassifierTrainingConfig,
    val: tuple[Tensor, Tensor] | None,
    out: Path,
    opt: torch.optim.Optimizer,
    generators: dict[str, torch.Generator],
    order_seed: int,
    fingerprint: dict,
    state: dict[str, Any] | None,
    show_progress: bool,
    class_weights: Tensor | None,
) -> tuple[M, TrainingReport]:
    """:func:`train_classifier`'s loop, from ``state`` (a checkpoint's, or None: the start)."""
    metric = "acc" if task == "classify" else "dice"
    ckpt = out / "checkpoint.safetensors"
    device, dtype = _placement(model)
    weight = None if class_weights is None else class_weights.to(device, dtype)  # (K,)
    gen = generators["gen"]
    n = images.shape[0]
    steps_per_epoch = _steps_per_epoch(n, cfg.batch_size)
    total = cfg.epochs * steps_per_epoch
    step, seconds = 0, 0.0
    history: list[dict[str, float]] = []
    running = {"loss": 0.0, "score": 0.0, "count": 0.0}  # sums over the current epoch
    if state is not None:
        step, seconds = state["step"], state["seconds"]
        history, running = state["history"], state["running"]
        if step >= total:
            log.warning(
                "classifier training in %s already finished (%s)", out, counted(total, "step")
            )
        else:
            log.warning("resuming classifier training in %s at step %d of %d", out, step, total)

    bar: Any = None
    if show_progress:
        from cfx.progress import tqdm

        bar = tqdm(total=total, initial=step, desc=f"train {type(model).__name__}", unit="step")
    _training_mode(model)
    order: Tensor | None = None
    t0 = time.perf_counter()
    # Ctrl-C finishes the step, saves it and stops; the bar ends before any message
    with held_interrupt() as interrupted, bar if bar is not None else nullcontext():
        while step < total:
            epoch, pos = divmod(step, steps_per_epoch)
            if order is None or pos == 0:
                order = _epoch_order(n, order_seed, epoch)  # (N,)
            idx = _batch(order, pos, cfg.batch_size, steps_per_epoch)  # (B,)
            x = images[idx]  # (B, C, H, W)
            y = y_all[idx]  # (B,) or (B, 1, H, W)
            m = y.to(x.dtype) if task == "segment" else None
            if cfg.augment:
                x, m = _augment(cfg, x, m, gen)
            target = y.to(device) if m is None else m.to(device, dtype)
            lr = _learning_rate(cfg, step, total)
            for group in opt.param_groups:
                group["lr"] = lr

            logits = model(x.to(device, dtype))
            loss, score = _loss(task, logits, target, weight)
            if not bool(torch.isfinite(loss)):  # a NaN step would carry into every weight
                raise diverged(step + 1, float(loss.detach()), ckpt)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1

            b = float(x.shape[0])
            running["loss"] += loss.item() * b
            running["score"] += float(score.sum())
            running["count"] += b
            if bar is not None:
                bar.update(1)
                bar.set_postfix(
                    {
                        "epoch": epoch + 1,
                        "loss": f"{running['loss'] / running['count']:.3f}",
                        metric: f"{running['score'] / running['count']:.3f}",
                    }
                )
            if step % steps_per_epoch == 0:
                row = {
                    "epoch": float(epoch + 1),
                    "step": float(step),
                    "lr": lr,
                    "loss": running["loss"] / running["count"],
                    f"train_{metric}": running["score"] / running["count"],
                }
                if val is not None:
                    if task == "classify":
                        accuracy, balanced = _val_accuracies(model, *val, cfg.batch_size)
                        row["val_acc"], row["val_balanced_acc"] = accuracy, balanced
                    else:
                        row["val_dice"] = evaluate_segmenter(model, *val, cfg.batch_size)
                history.append(row)
                running = {"loss": 0.0, "score": 0.0, "count": 0.0}
                log.info("epoch %d %s", epoch + 1, row)
            if step % cfg.checkpoint_every == 0 or step == total or interrupted():
                # the last update is checked too (the loss check sees it only a step later):
                # its weights, and at the end the model on this batch
                probe = partial(model, x.to(device, dtype)) if step == total else None
                if not_finite(model, probe):
                    raise diverged(step, None, ckpt)
                save_checkpoint(
                    ckpt,
                    modules={"model": model},
                    optimizers={"opt": opt},
                    generators=generators,
                    state={
                        "step": step,
                        "seconds": seconds + time.perf_counter() - t0,
                        "history": history,
                        "running": running,
                        "fingerprint": fingerprint,
                    },
                )
            if interrupted():
                log.warning(
                    "interrupted at step %d of %d; saved in %s; rerun with the same arguments "
                    "to resume",
                    step,
                    total,
                    out,
                )
                raise KeyboardInterrupt
    seconds += time.perf_counter() - t0
    model.eval()
    # with class weights, accuracy under the commonest class's share may be a good model's
    if task == "classify" and history and not cfg.balanced:
        _chance_notice(history[-1], y_all)
    return model, TrainingReport(steps=step, seconds=seconds, history=tuple(history))


def _chance_notice(last: dict[str, float], targets: Tensor) -> None:
    """Warn when the last epoch's training accuracy is no better than always answering the
    commonest class: without validation data nothing said that a model was still guessing
    (300 images at batch 64 ended 8 epochs at 0.54; a user review), and explanations of it
    explain a guess."""
    counts = torch.bincount(targets.flatten().long().cpu())
    share = float(counts.max()) / float(counts.sum())
    # wrong on 90 % as many images as the guess is, or more: "acc <= share + 0.02" called a
    # perfect model of 50-to-1 labels (share 0.98) a guess (a review)
    if 1 - last["train_acc"] >= 0.9 * (1 - share):
        log.warning(
            "the model is right on %.0f%% of its training images in its last epoch, about as "
            "often as always answering class %d (%.0f%% of the labels): it has not learned "
            "the task yet; train again into a new folder (a rerun into this one resumes this "
            "run) with more epochs, smaller batches or a higher learning rate",
            100 * last["train_acc"],
            int(counts.argmax()),
            100 * share,
            extra={"cfx_guessing": True},  # augment's fine-tunes say it once, not each round
        )
