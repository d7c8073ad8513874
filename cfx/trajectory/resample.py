"""Resampling a recorded latent path at given target-probability levels.

A gradient path records latents ``z_0..z_K`` and their target probabilities ``p_0..p_K``. Frame
``t`` of a trajectory should show the image where the classifier's probability first reaches
``t / T``. The two recorded latents that bracket a level are found, and the level is placed on
the segment between them by linear interpolation in **log-odds** (no model calls), or, given
the model, after narrowing the bracket by a few steps of safeguarded false position in
log-odds. Working in log-odds matters for confident classifiers: their probability stays near
0 for most of a segment and then jumps, so interpolating the probability would put several
frames on the flat part and the path would look like a step rather than a climb, whereas
their log-odds change almost linearly along a short latent segment. False position on a
near-linear function lands next to the level in one or two evaluations, where bisection
needs about eight (the earlier implementation).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor


def log_odds(p: Tensor) -> Tensor:
    """``log(p / (1 - p))`` with ``p`` clamped a hair inside (0, 1) (finite at 0 and 1)."""
    eps = torch.finfo(p.dtype).eps
    p = p.clamp(eps, 1.0 - eps)
    return torch.log(p) - torch.log1p(-p)


def resample_path(
    path: Tensor,
    probs: Tensor,
    levels: Tensor,
    *,
    prob_fn: Callable[[Tensor, Tensor], Tensor] | None = None,
    refine_iters: int = 0,
    safeguard: float = 0.1,
) -> Tensor:
    """Latents where a recorded path first reaches each probability level.

    ``path`` ``(B, K, d)``, ``probs`` ``(B, K)`` (probability at each recorded latent),
    ``levels`` ``(L,)`` or per image ``(B, L)`` -> ``(B, L, d)``. Levels below the start map
    to the start; levels never reached map to the last latent; otherwise the level is placed
    between the two bracketing latents by linear interpolation in log-odds. With
    ``prob_fn(z, index)`` (latents ``(N, d)`` and their positions ``(N,)`` in ``(B, L)``
    flattened -> target probabilities ``(N,)``) the bracket is first narrowed
    ``refine_iters`` times: the model is evaluated where the log-odds line through the
    bracket's ends meets the level (kept at least ``safeguard`` of the bracket away from
    either end, so the bracket shrinks by that share or more even where the log-odds bend),
    and that point replaces the end on its side. Only levels that fall inside a recorded
    segment are evaluated.
    """
    if not 0.0 <= safeguard <= 0.5:
        raise ValueError(f"`safeguard` must be in [0, 0.5], got {safeguard!r}")
    b, k = probs.shape
    lvl = levels.expand(b, -1) if levels.ndim == 1 else levels  # (B, L)
    n_levels, d = lvl.shape[1], path.shape[-1]
    reached = probs[:, None, :] >= lvl[..., None]  # (B, L, K)
    any_reached = reached.any(-1)  # (B, L)
    last = torch.full((b, n_levels), k - 1, dtype=torch.long, device=probs.device)
    first = torch.where(any_reached, reached.float().argmax(-1), last)  # (B, L)
    prev = (first - 1).clamp_min(0)
    p_hi = probs.gather(1, first)  # (B, L)
    p_lo = probs.gather(1, prev)
    z_hi = path.gather(1, first[..., None].expand(-1, -1, d))  # (B, L, d)
    z_lo = path.gather(1, prev[..., None].expand(-1, -1, d))
    inside = any_reached & (first > 0)  # levels strictly inside a recorded segment
    s_lvl = log_odds(lvl)

    def crossing() -> Tensor:  # (B, L): where the log-odds line meets the level, in [0, 1]
        s_lo, s_hi = log_odds(p_lo), log_odds(p_hi)
        frac = (s_lvl - s_lo) / (s_hi - s_lo).clamp_min(1e-12)
        return torch.where(s_hi > s_lo, frac, torch.ones_like(frac)).clamp(0.0, 1.0)

    if prob_fn is not None and refine_iters > 0 and bool(inside.any()):
        index = torch.nonzero(inside.flatten()).flatten()  # (N,) positions in (B * L)
        for _ in range(refine_iters):
            frac = crossing().clamp(safeguard, 1.0 - safeguard)
            z_mid = z_lo + frac[..., None] * (z_hi - z_lo)
            with torch.no_grad():
                # (N,), in the levels' dtype: a model may return other than its latents'
                p_sub = prob_fn(z_mid.reshape(b * n_levels, d)[index], index).to(lvl.dtype)
            p_mid = lvl.flatten().clone().index_copy_(0, index, p_sub).view(b, n_levels)
            above = (p_mid >= lvl) & inside
            below = (p_mid < lvl) & inside
            z_hi = torch.where(above[..., None], z_mid, z_hi)
            p_hi = torch.where(above, p_mid, p_hi)
            z_lo = torch.where(below[..., None], z_mid, z_lo)
            p_lo = torch.where(below, p_mid, p_lo)
    frac = torch.where(inside, crossing(), torch.ones_like(p_lo))
    return z_lo + frac[..., None] * (z_hi - z_lo)  # (B, L, d)
