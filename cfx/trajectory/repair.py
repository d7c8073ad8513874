"""Repairing a frame whose step does not climb.

A path is placed at its probability levels from recorded latents (:mod:`cfx.trajectory.resample`)
and, for Option 2, optimised jointly; the frames then are scored once more. The placement
interpolates between recorded latents, so where the classifier's probability is not monotone
along a recorded segment, or its levels lie a few thousandths apart (a source the classifier
already puts in the target class has its frames spread between its start and the confidence the
classifier saturates at), a frame can land at or below its predecessor (the one step of 1,280
that did not climb on brain seed 41 in BENCHMARKS.md, session 21, was such a source's).

Such a frame ``t`` (``0 < t < T``) is re-placed on the segment between its neighbours' latents,
which by continuity holds a point whose probability lies strictly between theirs whenever
``p_{t-1} < p_{t+1}``: bisection for the crossing of their mean, keeping the evaluated point
closest to it that lies strictly between. The source (frame 0) and the last frame, which
carries the margin, are never moved.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor


def repair_steps(
    zs: Tensor,
    probs: Tensor,
    prob_fn: Callable[[Tensor, Tensor], Tensor],
    *,
    iters: int = 12,
) -> tuple[Tensor, Tensor]:
    """Re-place the inner frames of paths whose probabilities do not strictly climb.

    ``zs`` ``(B, T+1, d)`` latents and ``probs`` ``(B, T+1)`` their target probabilities;
    ``prob_fn(z, rows)`` maps latents ``(N, d)`` of paths ``rows`` ``(N,)`` to target
    probabilities ``(N,)``. Frames ``1..T-1`` are visited in order; a frame not strictly
    between its neighbours is moved on the segment between them (``iters`` evaluations)
    when a point strictly between exists there. The pass repeats while it moves a frame (at
    most ``T - 1`` times), since moving frame ``t + 1`` can make frame ``t`` repairable.
    Returns the latents and probabilities, with unrepairable steps (``p_{t+1} <= p_{t-1}``,
    or no such point found) left as they were.
    """
    if zs.ndim != 3 or probs.shape != zs.shape[:2]:
        raise ValueError(
            f"`zs` must be (B, T+1, d) and `probs` (B, T+1), got {tuple(zs.shape)} and "
            f"{tuple(probs.shape)}"
        )
    zs, probs = zs.clone(), probs.clone()
    for _ in range(max(zs.shape[1] - 2, 0)):
        if not _one_pass(zs, probs, prob_fn, iters):
            break
    return zs, probs


def _one_pass(
    zs: Tensor, probs: Tensor, prob_fn: Callable[[Tensor, Tensor], Tensor], iters: int
) -> bool:
    """One left-to-right pass of :func:`repair_steps`, in place; whether a frame moved."""
    moved = False
    for t in range(1, zs.shape[1] - 1):
        p_lo, p_t, p_hi = probs[:, t - 1], probs[:, t], probs[:, t + 1]
        rows = torch.nonzero((p_hi > p_lo) & ((p_t <= p_lo) | (p_t >= p_hi))).flatten()
        if len(rows) == 0:
            continue
        z_lo, z_hi = zs[rows, t - 1], zs[rows, t + 1]
        lo, hi = p_lo[rows], p_hi[rows]
        goal = (lo + hi) / 2
        a = torch.zeros(len(rows), dtype=zs.dtype, device=zs.device)  # below the goal
        b = torch.ones_like(a)  # at or above it
        best_z, best_p = zs[rows, t], p_t[rows]
        best_gap = torch.full_like(goal, float("inf"))
        for _ in range(iters):
            mid = (a + b) / 2
            z_mid = z_lo + mid[:, None] * (z_hi - z_lo)
            p_mid = prob_fn(z_mid, rows).to(probs.dtype)
            between = (p_mid > lo) & (p_mid < hi)
            closer = between & ((p_mid - goal).abs() < best_gap)
            best_z = torch.where(closer[:, None], z_mid, best_z)
            best_p = torch.where(closer, p_mid, best_p)
            best_gap = torch.where(closer, (p_mid - goal).abs(), best_gap)
            above = p_mid >= goal
            b = torch.where(above, mid, b)
            a = torch.where(above, a, mid)
        moved = moved or bool(torch.isfinite(best_gap).any())
        zs[rows, t], probs[rows, t] = best_z, best_p
    return moved
