"""Pure, unreduced loss terms of the monotone path (each returns ``(B,)``)."""

from __future__ import annotations

import torch
from torch import Tensor


def calibration_loss(probs: Tensor, levels: Tensor) -> Tensor:
    """``sum_t |p_t - t/T|`` over frames 1..T: ``probs`` ``(B, T)``, ``levels`` ``(T,)``."""
    return (probs - levels[None, :]).abs().sum(1)


def monotonicity_loss(probs: Tensor, start: Tensor, gap: float = 0.0) -> Tensor:
    """``sum_t relu(p_{t-1} + gap - p_t)``: penalises steps that do not climb by ``gap``.

    ``probs`` ``(B, T)`` for frames 1..T, ``start`` ``(B,)`` the probability at frame 0.
    """
    seq = torch.cat([start[:, None], probs], 1)  # (B, T+1)
    return (seq[:, :-1] + gap - seq[:, 1:]).clamp_min(0.0).sum(1)


def end_margin_loss(log_odds: Tensor, margin: float) -> Tensor:
    """``relu(logit(margin) - s_T)``: keeps the last frame at least ``margin`` deep in the target.

    ``log_odds`` ``(B,)`` is the target log-odds of the last frame. Written on log-odds because
    near p = 1 the probability's gradient vanishes (``p (1 - p)``), so the calibration term
    alone cannot hold a last frame at, say, p = 0.999 against the identity pull.
    """
    return (torch.logit(torch.tensor(margin, dtype=log_odds.dtype)) - log_odds).clamp_min(0.0)


def identity_loss(frames: Tensor, start: Tensor) -> Tensor:
    """Mean absolute change of each frame from the start image, averaged over frames.

    ``frames`` ``(B, T, C, H, W)``, ``start`` ``(B, C, H, W)`` (the reconstruction ``G(z_0)``,
    not the input ``x``: the path cannot undo inversion error, so it should not be charged
    for it). L1 favours sparse, local changes.
    """
    return (frames - start[:, None]).abs().flatten(2).mean(2).mean(1)


def smoothness_loss(latents: Tensor, start: Tensor) -> Tensor:
    """``sum_t ||z_t - z_{t-1}||^2 / d`` with ``z_0 = start``: ``latents`` ``(B, T, d)``."""
    seq = torch.cat([start[:, None], latents], 1)  # (B, T+1, d)
    return (seq[:, 1:] - seq[:, :-1]).pow(2).mean(2).sum(1)
