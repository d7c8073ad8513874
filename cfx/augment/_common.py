"""What :class:`~cfx.augment.ActiveLearner` and its control
(:func:`~cfx.augment.finetune_without_labels`) share, ``eval_fn``'s checks and scores, the
tuned copy's recorded image size and one imbalance notice per call, and the learner's
reading of a labeller's answer as class indices, beside its other answer checks."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import is_dataclass, replace
from numbers import Real
from typing import Any

import torch
from torch import Tensor, nn

from cfx.calls import not_whole
from cfx.errors import check
from cfx.notices import held


def once_per_run(tuned: int, *given: str) -> AbstractContextManager[None]:
    """Around a call's fine-tune number ``tuned`` (0 first): the first gives
    :func:`~cfx.training.classifier.train_classifier`'s notices of imbalanced labels, of
    [0, 1] training images and of a model still guessing (tagged ``cfx_imbalanced``,
    ``cfx_unit_range``, ``cfx_guessing``), the later ones, on much the same data, hold them
    back; tags in ``given`` (notices the caller gave already) are held back from every one."""
    later = {"cfx_imbalanced", "cfx_unit_range", "cfx_guessing"}
    tags = set(given) | (set() if tuned == 0 else later)
    if not tags:
        return nullcontext()
    loggers = (logging.getLogger("cfx.training.classifier"), logging.getLogger("cfx.inversion"))
    return held(loggers, *sorted(tags))


def round_quotas(budget: int, rounds: int) -> list[int]:
    """Labels per round: ``budget`` split evenly over ``rounds``, the remainder in the last."""
    quotas = [budget // rounds] * rounds
    quotas[-1] += budget - sum(quotas)
    return quotas


def record_size(model: nn.Module, size: tuple[int, ...]) -> None:
    """The fine-tuned copy's config says it was tuned on images of ``size`` ``(H, W)`` (a
    copy of a 32x32 classifier kept ``image_size`` [32, 32], and every later use warned of a
    size mismatch); a model without a dataclass config with ``image_size`` is left alone."""
    config = getattr(model, "config", None)
    if (
        is_dataclass(config)
        and not isinstance(config, type)
        and getattr(config, "image_size", None) is not None
        and tuple(config.image_size) != size  # type: ignore[attr-defined]
    ):
        tuned: Any = model
        tuned.config = replace(config, image_size=tuple(int(v) for v in size))


def check_eval_fn(eval_fn: object) -> None:
    """A ``TypeError`` unless ``eval_fn`` is None or callable."""
    check(
        eval_fn is None or callable(eval_fn),
        TypeError,
        f"`eval_fn` must be None or a function model -> {{name: score}}, got "
        f"{type(eval_fn).__name__}",
    )


def scored(eval_fn: Callable[[nn.Module], Mapping[str, Any]], model: nn.Module) -> dict[str, float]:
    """``eval_fn(model)`` as ``{name: float}``; an error naming ``eval_fn`` when it returns
    anything else (it failed as "'float' object has no attribute 'items'", after the walk and
    the fine-tune)."""
    scores = eval_fn(model)
    wanted = "`eval_fn` must return a dict of metric name -> number (e.g. {'accuracy': 0.9})"
    check(isinstance(scores, Mapping), TypeError, f"{wanted}, got {type(scores).__name__}")
    out = {}
    for name, value in scores.items():
        if getattr(value, "ndim", None) == 0 and hasattr(value, "item"):  # a 0-d tensor/array
            value = value.item()
        number = isinstance(value, Real) and not isinstance(value, bool)
        check(isinstance(name, str) and number, TypeError, f"{wanted}, got {name!r}: {value!r}")
        out[name] = float(value)
    return out


def class_indices(answer: object, n: int) -> Tensor:
    """A labeller's answer as ``(n,)`` int64 class indices; an error naming the labeller when
    it is not whole numbers, one per image (a probability of 0.9 became class 0)."""
    if not isinstance(answer, Tensor):
        try:
            answer = torch.as_tensor(answer)  # a numpy array or a list
        except (TypeError, ValueError, RuntimeError):
            raise TypeError(
                "`labeller` must return class indices as a tensor (int64), got "
                f"{type(answer).__name__}"
            ) from None
    check(
        answer.shape == (n,),
        ValueError,
        f"`labeller` must return one label per image ({n}), got shape {tuple(answer.shape)}",
    )
    if answer.dtype == torch.bool:  # `p > 0.5`: class 1 where True
        return answer.to(torch.long).cpu()
    bad = not_whole(answer)
    check(
        not bool(bad.any()),
        ValueError,
        "`labeller` must return class indices (whole numbers), got "
        f"{answer.dtype} values such as {answer[bad][:3].tolist()}",
    )
    return answer.to(torch.long).cpu()  # beside the CPU bookkeeping of the rounds
