"""Occlusion: Zeiler & Fergus, "Visualizing and Understanding Convolutional Networks", ECCV 2014.

A window slides over the image; at each position the covered pixels are replaced by the
baseline and the drop of the target output ``f(x) - f(x_occluded)`` is recorded. A pixel's
attribution is the mean drop over the windows that cover it. Window positions follow Captum's
``Occlusion``: offsets ``0, s, 2s, ...``, ``ceil((n - k) / s) + 1`` of them per axis, the last
ones clipped at the border; with the window spanning all channels this equals Captum's
``Occlusion(sliding_window_shapes=(C, kh, kw), strides=(C, sh, sw))`` (whose output repeats the
map over channels). All occluded images of all inputs are evaluated in large batches instead
of one window per forward pass, and windows that only cover pixels already equal to the
baseline (e.g. black background) are not evaluated: the occluded image is the original.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from cfx.reprs import settings_repr
from cfx.saliency._common import (
    Output,
    check_input,
    fast_model,
    frozen,
    make_baseline,
    masked_scores,
    pair,
    positive_int,
    resolve_all,
    select,
)
from cfx.types import Classifier, Target


def window_masks(size: tuple[int, int], window: tuple[int, int], stride: tuple[int, int]) -> Tensor:
    """Boolean masks ``(P, H, W)`` of every window position (True = occluded), row-major."""
    axes = []
    for n, k, s in zip(size, window, stride, strict=True):
        if k > n:
            raise ValueError(f"`window` {window} must fit in the image size {size}")
        if s > k and k < n:
            raise ValueError(f"`stride` {stride} must not exceed `window` {window} (gaps)")
        starts = torch.arange(math.ceil((n - k) / s) + 1) * s  # (P_axis,)
        pos = torch.arange(n)
        axes.append((pos[None] >= starts[:, None]) & (pos[None] < starts[:, None] + k))
    rows, cols = axes  # (Ph, H), (Pw, W)
    return (rows[:, None, :, None] & cols[None, :, None, :]).flatten(0, 1)  # (Ph*Pw, H, W)


class Occlusion:
    """Mean output drop when a sliding window of the image is replaced by a baseline.

    Reference: Zeiler & Fergus, "Visualizing and Understanding Convolutional Networks",
    ECCV 2014.

    Args:
        model: images ``(B, C, H, W)`` in [-1, 1] -> logits ``(B, K)``.
        window: occluding window ``(rows, cols)`` (or one int), across all channels.
        stride: window step ``(rows, cols)`` (or one int); at most ``window``.
        baseline: fill value in [-1, 1] (float or tensor broadcastable to ``x``); -1 = black.
        output: score the target ``"logit"`` (Captum's convention) or ``"probability"``.
        batch_size: occluded images per forward pass.
    """

    __repr__ = settings_repr  # the arguments given, defaults left out

    def __init__(
        self,
        model: Classifier,
        *,
        window: int | tuple[int, int] = 8,
        stride: int | tuple[int, int] = 4,
        baseline: float | Tensor = -1.0,
        output: Output = "logit",
        batch_size: int = 32,
    ) -> None:
        self.model = model
        self.window = window
        self.stride = stride
        self.baseline = baseline
        self.output = output
        self.batch_size = batch_size

    def attribute(self, x: Tensor, target: Target | None) -> Tensor:
        """Signed maps ``(B, 1, H, W)`` for images ``x`` ``(B, C, H, W)`` in [-1, 1].

        ``target``: int, ``(B,)`` tensor or None (predicted class).
        """
        x = check_input(x, self.model)
        windows = window_masks(
            (x.shape[2], x.shape[3]), pair("window", self.window), pair("stride", self.stride)
        ).to(x.device)  # (P, H, W)
        base = make_baseline(self.baseline, x)
        size = positive_int("batch_size", self.batch_size)
        with frozen(self.model):
            logits, tgt = resolve_all(self.model, x, target, size)
            full = select(logits, tgt, self.output)  # (B,)
            keep = (~windows)[:, None]  # (P, 1, H, W)
            # a window whose pixels already equal the baseline leaves the image unchanged
            same = (x == base).all(1).flatten(1).to(x.dtype)  # (B, H*W)
            inside = windows.flatten(1).to(x.dtype)  # (P, H*W)
            changed = (same @ inside.T) < inside.sum(1)[None]  # (B, P)
            bi, pi = torch.nonzero(changed, as_tuple=True)
            occluded = full[:, None].repeat(1, keep.shape[0])  # (B, P)
            occluded[bi, pi] = masked_scores(
                fast_model(self.model, x[:1]),
                x,
                base,
                keep,
                keep.shape[0],
                tgt,
                self.output,
                size,
                pairs=(bi, pi),
            )
        flat = windows.flatten(1).to(x.dtype)  # (P, H*W)
        drops = (full[:, None] - occluded) @ flat  # (B, H*W)
        maps = drops / flat.sum(0).clamp_min(1)
        return maps.view(x.shape[0], 1, *x.shape[2:])  # (B, 1, H, W)
