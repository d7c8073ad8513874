"""Causal responsibility maps in the style of ReX: Chockler, Kelly, Kroening & Sun, "Causal
Explanations for Image Classifiers", arXiv:2411.08875 (2024); earlier Chockler, Kroening & Sun,
"Explanations for Occluded Images", ICCV 2021 (DC-Causal).

Responsibility (Halpern & Pearl; Chockler & Halpern 2004) of a region ``P`` for the model
keeping class ``t``: ``1 / (1 + k)``, where ``k`` is the smallest number of other regions that
must be masked before masking ``P`` as well flips the class. One *run* searches like this:

1. The active box (first the whole image) is cut into four rectangles at a random row and a
   random column.
2. All 15 sub-coalitions of the four parts are scored (parts outside the coalition are set to
   the baseline; the rest of the image keeps its current visibility); a mutant *passes* when
   the model still predicts ``t`` and keeps at least a share ``confidence`` of the original
   target log-odds ``logit_t - logsumexp(other logits)``. (ReX filters on the probability;
   log-odds still discriminate when a confident classifier's probabilities saturate at 1 for
   most mutants.) The full coalition passes by construction.
3. Part ``i``'s responsibility is ``max 1 / (1 + 4 - |S|)`` over passing coalitions ``S``
   that contain ``i`` and fail without it; every pixel of part ``i`` gains that amount.
4. Refinement: the most responsible part (ties broken at random) becomes the next active box,
   and only the smallest passing coalition that contains it stays visible around it. A run
   ends at ``depth`` levels, when no part is responsible or the box gets too small.

The map averages ``runs`` independent random runs (different cuts). All runs of all images
advance together: each level scores ``15 x runs x B`` mutants in large batches. Images the
model does not classify as ``t`` get an all-zero map (nothing keeps the class). A seeded map
depends on the rest of its batch: the cuts are drawn for all runs of all images at once.
"""

from __future__ import annotations

import torch
from torch import Tensor

from cfx.calls import class_logits, target_margin
from cfx.reprs import settings_repr
from cfx.saliency._common import (
    check_input,
    chunks,
    draw_device,
    fast_model,
    frozen,
    make_baseline,
    own_generator,
    positive_int,
    resolve_all,
    unit_interval,
)
from cfx.types import Classifier, Target

_BITS = torch.tensor([[(s >> i) & 1 for i in range(4)] for s in range(16)], dtype=torch.bool)
_SIZE = _BITS.sum(1)  # (16,) parts in each coalition
_WEIGHT = 1.0 / (1.0 + 4 - _SIZE.double())  # responsibility when critical in that coalition
_WITHOUT = torch.tensor([[s & ~(1 << i) for i in range(4)] for s in range(16)])  # (16, 4)


class CausalResponsibility:
    """ReX-style causal responsibility of image regions for keeping the target class.

    Reference: Chockler, Kelly, Kroening & Sun, "Causal Explanations for Image Classifiers"
    (ReX), arXiv:2411.08875, 2024; earlier Chockler, Kroening & Sun, "Explanations for
    Occluded Images", ICCV 2021. Responsibility: Chockler & Halpern 2004.

    Args:
        model: images ``(B, C, H, W)`` in [-1, 1] -> logits ``(B, K)``.
        runs: independent random partition searches averaged per image.
        depth: refinement levels per run (each level quarters the active box).
        min_size: smallest side, in pixels, of a part.
        baseline: value of masked pixels in [-1, 1] (float or tensor); -1 = black.
        confidence: a mutant passes only if its target log-odds are at least this share of the
            original's (0 = the predicted class alone decides, as in ReX's default).
        batch_size: mutants per forward pass.
    """

    __repr__ = settings_repr  # the arguments given, defaults left out

    def __init__(
        self,
        model: Classifier,
        *,
        runs: int = 16,
        depth: int = 4,
        min_size: int = 2,
        baseline: float | Tensor = -1.0,
        confidence: float = 0.5,
        batch_size: int = 32,
    ) -> None:
        self.model = model
        self.runs = runs
        self.depth = depth
        self.min_size = min_size
        self.baseline = baseline
        self.confidence = confidence
        self.batch_size = batch_size

    def attribute(
        self, x: Tensor, target: Target | None, *, generator: torch.Generator | None = None
    ) -> Tensor:
        """Non-negative maps ``(B, 1, H, W)`` for images ``x`` ``(B, C, H, W)`` in [-1, 1].

        ``target``: int, ``(B,)`` tensor or None (predicted class). ``generator`` draws the cuts.
        """
        x = check_input(x, self.model)
        runs = positive_int("runs", self.runs)
        depth = positive_int("depth", self.depth)
        min_size = positive_int("min_size", self.min_size)
        conf = unit_interval("confidence", self.confidence, open_low=False)
        size = positive_int("batch_size", self.batch_size)
        generator = own_generator(generator)
        base = make_baseline(self.baseline, x)
        b, _, h, w = x.shape
        dev = x.device
        n = b * runs
        owner = torch.arange(b, device=dev).repeat_interleave(runs)  # (N,) image of each run
        bits, size_s = _BITS.to(dev), _SIZE.to(dev)

        with frozen(self.model):
            logits, tgt = resolve_all(self.model, x, target, size)
            odds = target_margin(logits, tgt)  # (B,) target log-odds of the images
            scorer = _Scorer(fast_model(self.model, x[:1]), x, base, tgt, odds, conf, size)
            alive = (logits.argmax(1) == tgt).repeat_interleave(runs)  # (N,)
            keep = torch.ones(n, h, w, dtype=torch.bool, device=dev)  # visible pixels
            box = torch.tensor([0, h, 0, w], device=dev).repeat(n, 1)  # (N, 4) r0 r1 c0 c1
            resp = torch.zeros(n, h, w, dtype=x.dtype, device=dev)
            for _ in range(depth):
                bh, bw = box[:, 1] - box[:, 0], box[:, 3] - box[:, 2]
                alive = alive & (bh >= 2 * min_size) & (bw >= 2 * min_size)
                cuts = torch.rand(n, 2, generator=generator, device=draw_device(generator))
                parts = _quarter(box, min_size, cuts.to(dev))
                idx = torch.nonzero(alive).flatten()
                if idx.numel() == 0:
                    break
                part_masks = _box_masks(parts[idx], h, w)  # (A, 4, H, W)
                context = keep[idx] & ~part_masks.any(1)  # (A, H, W)
                passing = scorer.passing(owner[idx], context, part_masks)  # (A, 16)
                r = _responsibility(passing).to(x.dtype)  # (A, 4)
                resp[idx] += (r[:, :, None, None] * part_masks.to(x.dtype)).sum(1)
                # refine the most responsible part inside its smallest passing coalition
                noise = torch.rand(
                    idx.numel(), 4, generator=generator, device=draw_device(generator)
                ).to(dev)
                best = (r + 1e-6 * noise * (r > 0)).argmax(1)  # (A,)
                done = r.gather(1, best[:, None])[:, 0] <= 0
                contains = bits[:, best].T & passing  # (A, 16)
                cost = torch.where(contains, size_s[None], torch.full_like(size_s[None], 99))
                chosen = cost.argmin(1)  # (A,)
                visible = (bits[chosen][:, :, None, None] & part_masks).any(1)  # (A, H, W)
                keep[idx] = context | visible
                box[idx] = parts[idx, best]
                alive[idx[done]] = False
        return resp.view(b, runs, h, w).mean(1, keepdim=True)  # (B, 1, H, W)


class _Scorer:
    """Scores mutants: images with only some pixels visible (the rest at the baseline)."""

    def __init__(
        self,
        model: Classifier,
        x: Tensor,
        base: Tensor,
        tgt: Tensor,
        odds: Tensor,
        conf: float,
        size: int,
    ) -> None:
        self.model, self.x, self.base, self.tgt = model, x, base, tgt
        self.odds = odds  # (B,) target log-odds of the full images
        self.conf, self.size = conf, size

    @torch.no_grad()
    def passing(self, owner: Tensor, context: Tensor, part_masks: Tensor) -> Tensor:
        """``(A, 16)`` bool: does each coalition of parts keep the class, for each run?

        ``owner`` ``(A,)`` image of each run, ``context`` ``(A, H, W)`` visible pixels outside
        the parts, ``part_masks`` ``(A, 4, H, W)``. Coalition 15 (all parts) passes by
        construction and is not evaluated.
        """
        x, base = self.x, self.base
        bits = _BITS.to(x.device)
        a = owner.shape[0]
        passing = torch.ones(a, 16, dtype=torch.bool, device=x.device)
        for s, e in chunks(a * 15, self.size):
            flat = torch.arange(s, e, device=x.device)
            ri, ci = flat // 15, flat % 15  # run, coalition 0..14
            vis = context[ri] | (bits[ci][:, :, None, None] & part_masks[ri]).any(1)
            img = owner[ri]
            m = vis[:, None].to(x.dtype)  # (n, 1, H, W)
            logits = class_logits(self.model, base[img] + m * (x[img] - base[img]), name="model")
            t = self.tgt[img]
            odds = target_margin(logits, t)
            passing[ri, ci] = (logits.argmax(1) == t) & (odds >= self.conf * self.odds[img])
        return passing


def _quarter(box: Tensor, min_size: int, u: Tensor) -> Tensor:
    """Cut boxes ``(N, 4)`` (r0, r1, c0, c1) at a random row and column (``u`` ``(N, 2)`` in
    [0, 1)), keeping every side >= ``min_size``: parts ``(N, 4, 4)``."""
    bh, bw = box[:, 1] - box[:, 0], box[:, 3] - box[:, 2]
    ry = box[:, 0] + min_size + (u[:, 0] * (bh - 2 * min_size + 1)).long()
    cx = box[:, 2] + min_size + (u[:, 1] * (bw - 2 * min_size + 1)).long()
    r0, r1, c0, c1 = box.unbind(1)
    return torch.stack(
        [
            torch.stack([r0, ry, c0, cx], 1),
            torch.stack([r0, ry, cx, c1], 1),
            torch.stack([ry, r1, c0, cx], 1),
            torch.stack([ry, r1, cx, c1], 1),
        ],
        1,
    )


def _responsibility(passing: Tensor) -> Tensor:
    """Responsibility ``(A, 4)`` of each part from the pass table ``(A, 16)``: the largest
    ``1 / (1 + 4 - |S|)`` over passing coalitions ``S`` that contain the part and fail
    without it (0 if the part is never critical)."""
    dev = passing.device
    without = _WITHOUT.to(dev).flatten()[None].expand(passing.shape[0], -1)  # (A, 64)
    fails_without = ~passing.gather(1, without).view(-1, 16, 4)  # (A, S, part)
    critical = _BITS.to(dev)[None] & passing[:, :, None] & fails_without  # (A, 16, 4)
    return (critical.double() * _WEIGHT.to(dev)[None, :, None]).amax(1)


def _box_masks(boxes: Tensor, h: int, w: int) -> Tensor:
    """Boxes ``(A, P, 4)`` as ``(r0, r1, c0, c1)`` -> boolean masks ``(A, P, H, W)``."""
    rows = torch.arange(h, device=boxes.device)
    cols = torch.arange(w, device=boxes.device)
    in_r = (rows >= boxes[..., 0:1]) & (rows < boxes[..., 1:2])  # (A, P, H)
    in_c = (cols >= boxes[..., 2:3]) & (cols < boxes[..., 3:4])  # (A, P, W)
    return in_r[..., :, None] & in_c[..., None, :]
