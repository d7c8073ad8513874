"""Deletion and insertion AUC: Petsiuk, Das & Saenko, "RISE", BMVC 2018 (their protocol).

Pixels are ranked by the map (highest first). *Deletion* replaces them with the baseline
``steps`` chunks at a time, starting from the image; *insertion* copies them from the image
into a blurred copy (Gaussian, ``blur_sigma`` pixels), starting from the blurred copy. The
target probability is recorded after each chunk, giving a curve over the fraction ``0,
1/steps, ..., 1`` of pixels changed (exactly that fraction, on any image size), and the score
is the trapezoid area under it. Pixels the map ties (a Grad-CAM or occlusion map's zeros, a
blank map) have no order: a stage that reaches part of a tied group changes every pixel of the
group by that part (blends it towards the baseline or the image), the image a random choice
among them gives on average. So the score does not depend on where the tied pixels lie, as it
did when ties were taken in pixel order (a blank map scored 0.20 with the object at the top
of the image and 0.86 with it at the bottom). Lower
deletion AUC and higher insertion AUC mean a more faithful map. All ``B x (steps + 1)`` images
are scored in large batches.
"""

from __future__ import annotations

from numbers import Real
from typing import Literal

import torch
from torch import Tensor

from cfx.errors import check
from cfx.filters import gaussian_blur
from cfx.saliency._common import (
    check_input,
    fast_model,
    frozen,
    make_baseline,
    masked_scores,
    positive_float,
    positive_int,
    resolve_all,
)
from cfx.saliency.metrics import _check_maps
from cfx.types import Classifier, Target


def _curve(
    model: Classifier,
    x: Tensor,
    maps: Tensor,
    target: Target | None,
    start: Tensor,
    mode: Literal["deletion", "insertion"],
    steps: int,
    batch_size: int,
) -> Tensor:
    x = check_input(x)
    maps = _check_maps(maps)
    check(
        maps.shape[0] == x.shape[0] and maps.shape[2:] == x.shape[2:],
        ValueError,
        f"`maps` must have shape {(x.shape[0], 1, *x.shape[2:])}, got {tuple(maps.shape)}",
    )
    steps = positive_int("steps", steps)
    size = positive_int("batch_size", batch_size)
    flat = maps.detach().flatten(1)  # (B, P)
    p = flat.shape[1]
    above, tied = tie_groups(flat)  # exact counts, float64
    h, w = x.shape[2:]

    def masks(bi: Tensor, ni: Tensor) -> Tensor:  # how much of each pixel comes from x
        reached = ni[:, None].to(torch.float64) * (p / steps)  # pixels changed at stage ni
        changed = ((reached - above[bi]) / tied[bi]).clamp(0.0, 1.0)  # (n, P)
        from_x = 1.0 - changed if mode == "deletion" else changed
        return from_x.to(x.dtype).view(-1, 1, h, w)

    with frozen(model):
        _, tgt = resolve_all(model, x, target, size)
        # deletion blends x (kept pixels) over the baseline; insertion blends x over the blur
        fast = fast_model(model, x[:1])
        return masked_scores(fast, x, start, masks, steps + 1, tgt, "probability", size)


def tie_groups(flat: Tensor) -> tuple[Tensor, Tensor]:
    """For each value of the rows of ``flat`` ``(B, P)``: how many values of its row are
    higher, and how many equal it (itself included), both ``(B, P)`` float64 (exact counts
    whatever ``flat``'s dtype: float16 cannot hold 65,536, bfloat16 not even every count up
    to it). Values are compared in float32 or wider, where a half-precision map's ties stay
    ties."""
    values = flat if flat.dtype in (torch.float32, torch.float64) else flat.float()
    ascending = values.sort(dim=1).values
    below_or_tied = torch.searchsorted(ascending, values, right=True)
    below = torch.searchsorted(ascending, values, right=False)
    p = flat.shape[1]
    return (p - below_or_tied).to(torch.float64), (below_or_tied - below).to(torch.float64)


def _auc(curve: Tensor) -> Tensor:
    """Trapezoid area under ``(B, T+1)`` values sampled evenly on [0, 1]."""
    t = curve.shape[1] - 1
    return (curve.sum(1) - 0.5 * (curve[:, 0] + curve[:, -1])) / t


def deletion_auc(
    model: Classifier,
    x: Tensor,
    maps: Tensor,
    target: Target | None,
    *,
    steps: int = 32,
    baseline: float | Tensor = -1.0,
    batch_size: int = 32,
) -> Tensor:
    """Area under the target probability as the top pixels are deleted (lower is better).

    Reference: the deletion metric of Petsiuk, Das & Saenko, "RISE: Randomized Input Sampling
    for Explanation of Black-box Models", BMVC 2018.

    ``x`` ``(B, C, H, W)`` in [-1, 1], ``maps`` ``(B, 1, H, W)``; deleted pixels take
    ``baseline`` (-1 = black). Returns ``Tensor[B]`` in [0, 1].
    """
    x = check_input(x, model)
    curve = _curve(
        model, x, maps, target, make_baseline(baseline, x), "deletion", steps, batch_size
    )
    return _auc(curve)


def insertion_auc(
    model: Classifier,
    x: Tensor,
    maps: Tensor,
    target: Target | None,
    *,
    steps: int = 32,
    blur_sigma: float | None = 5.0,
    baseline: float | Tensor = -1.0,
    batch_size: int = 32,
) -> Tensor:
    """Area under the target probability as the top pixels are inserted into a blurred copy
    (higher is better). ``x`` ``(B, C, H, W)`` in [-1, 1]; returns ``Tensor[B]`` in [0, 1].

    ``blur_sigma=None`` starts from ``baseline`` instead of a blurred copy (useful when the
    classifier already assigns the target class to blurred images, which makes every
    insertion curve flat).

    Reference: the insertion metric of Petsiuk, Das & Saenko, "RISE: Randomized Input Sampling
    for Explanation of Black-box Models", BMVC 2018.
    """
    x = check_input(x, model)
    base = make_baseline(baseline, x)  # checked either way: "black" or 5.0 passed unread
    if blur_sigma is None:
        start = base
    else:
        given = not (isinstance(baseline, Real) and float(baseline) == -1.0)
        check(  # it went unused without a word
            not given,
            ValueError,
            f"`baseline` is where insertion starts only with blur_sigma=None; with blur_sigma "
            f"{blur_sigma!r} it starts from a blurred copy of the images: pass "
            "blur_sigma=None to start from `baseline`",
        )
        start = gaussian_blur(x, positive_float("blur_sigma", blur_sigma))
    return _auc(_curve(model, x, maps, target, start, "insertion", steps, batch_size))
