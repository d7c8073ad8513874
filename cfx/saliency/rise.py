"""RISE: Petsiuk, Das & Saenko, "RISE: Randomized Input Sampling for Explanation of Black-box
Models", BMVC 2018.

``N`` random masks are drawn: a coarse ``grid x grid`` binary pattern (each cell kept with
probability ``p``), upsampled bilinearly to ``(grid + 1)`` cells of ``ceil(H / grid)`` pixels
and cropped at a random shift, giving smooth masks in [0, 1]. The map is the
score-weighted average of the masks, ``S = sum_i f(x * M_i) M_i / (N p)``, where ``f`` is the
target probability and masked pixels take the baseline value. The same masks serve every
image of the batch; all ``B x N`` masked images are scored in large batches.

With ``output="logit"`` the scores are centred first, ``S = sum_i (f_i - mean f) M_i /
(N p)`` (the masks' covariance with the target logit, over ``p``): a probability is never
negative, but a logit has no zero of its own, and adding one constant to every logit changes
no prediction while it added that constant's multiple of the mean mask to the map, moving
its positive part and every score read from it. Centred, the map says where keeping a pixel
raises the logit above its average, whatever the offset.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from cfx.errors import MapQualityNotice
from cfx.reprs import settings_repr
from cfx.saliency._common import (
    Output,
    check_input,
    draw_device,
    fast_model,
    frozen,
    make_baseline,
    masked_scores,
    own_generator,
    positive_int,
    resolve_all,
    unit_interval,
)
from cfx.types import Classifier, Target


def rise_masks(
    n: int,
    size: tuple[int, int],
    grid: int,
    p: float,
    *,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """``n`` smooth random masks ``(n, 1, H, W)`` in [0, 1] as in RISE (see module docstring)."""
    h, w = size
    cell_h, cell_w = math.ceil(h / grid), math.ceil(w / grid)
    where = draw_device(generator)  # drawn there, worked on the CPU, moved at the end
    coarse = (torch.rand(n, 1, grid, grid, generator=generator, device=where) < p).cpu()
    coarse = coarse.to(dtype)
    up = F.interpolate(
        coarse,
        size=((grid + 1) * cell_h, (grid + 1) * cell_w),
        mode="bilinear",
        align_corners=False,
    )  # (n, 1, (g+1) ch, (g+1) cw)
    dy = torch.randint(0, cell_h, (n,), generator=generator, device=where).cpu()
    dx = torch.randint(0, cell_w, (n,), generator=generator, device=where).cpu()
    rows = dy[:, None] + torch.arange(h)[None]  # (n, H)
    cols = dx[:, None] + torch.arange(w)[None]  # (n, W)
    crop = up[torch.arange(n)[:, None, None], 0, rows[:, :, None], cols[:, None, :]]
    return crop[:, None].clamp(0, 1).to(device)  # (n, 1, H, W)


class RISE:
    """Randomised input sampling: score-weighted average of random smooth masks.

    Reference: Petsiuk, Das & Saenko, "RISE: Randomized Input Sampling for Explanation of
    Black-box Models", BMVC 2018.

    Args:
        model: images ``(B, C, H, W)`` in [-1, 1] -> logits ``(B, K)``.
        n_masks: number of random masks ``N``.
        grid: cells per side of the coarse mask pattern.
        p: probability that a cell is kept.
        baseline: value of masked pixels in [-1, 1] (float or tensor); -1 = black.
        output: ``"probability"`` (the paper) or ``"logit"`` (scores centred over the masks;
            see the module docstring).
        batch_size: masked images per forward pass.

    The paper's defaults suit a model that loses the class as its image is masked. One that
    calls heavily masked images the target class (masked images are out of its
    distribution; brain-cnn calls them tumour) gives maps that miss the evidence: keep more of
    each image and read logits, ``RISE(model, p=0.9, output="logit")``, which is what
    :func:`~cfx.saliency.compare.compare_methods` builds (on brain-cnn's test slices the
    defaults' pointing game was 0 of 4 where this one's was 4 of 4). A probability that barely
    moves over the masks (``< SATURATED`` in standard deviation) is noticed.
    """

    __repr__ = settings_repr  # the arguments given, defaults left out

    def __init__(
        self,
        model: Classifier,
        *,
        n_masks: int = 1000,
        grid: int = 8,
        p: float = 0.5,
        baseline: float | Tensor = -1.0,
        output: Output = "probability",
        batch_size: int = 32,
    ) -> None:
        self.model = model
        self.n_masks = n_masks
        self.grid = grid
        self.p = p
        self.baseline = baseline
        self.output = output
        self.batch_size = batch_size

    def attribute(
        self, x: Tensor, target: Target | None, *, generator: torch.Generator | None = None
    ) -> Tensor:
        """Maps ``(B, 1, H, W)`` for images ``x`` ``(B, C, H, W)`` in [-1, 1].

        ``target``: int, ``(B,)`` tensor or None (predicted class). ``generator`` draws masks.
        """
        x = check_input(x, self.model)
        n = positive_int("n_masks", self.n_masks)
        grid = positive_int("grid", self.grid)
        p = unit_interval("p", self.p)
        size = positive_int("batch_size", self.batch_size)
        generator = own_generator(generator)
        base = make_baseline(self.baseline, x)
        masks = rise_masks(
            n,
            (x.shape[2], x.shape[3]),
            grid,
            p,
            generator=generator,
            device=x.device,
            dtype=x.dtype,
        )  # (N, 1, H, W)
        with frozen(self.model):
            _, tgt = resolve_all(self.model, x, target, size)
            model = fast_model(self.model, x[:1])
            scores = masked_scores(model, x, base, masks, n, tgt, self.output, size)  # (B, N)
        if self.output == "logit":  # a logit's offset is no evidence: see the module docstring
            scores = scores - scores.mean(1, keepdim=True)
        elif n > 1:  # one mask has no spread to judge
            _warn_saturated(scores.std(1), n)
        maps = scores @ masks.flatten(1) / (n * p)  # (B, H*W)
        return maps.view(x.shape[0], 1, *x.shape[2:])


SATURATED = 0.01
"""A target probability whose standard deviation over the masks is below this is saturated."""


def _warn_saturated(spread: Tensor, n_masks: int) -> None:
    """A Notice for the images ``(B,)`` whose target probability barely moved over the masks:
    their maps are then little more than the masks' mean."""
    flat = spread < SATURATED
    if not bool(flat.any()):
        return
    import warnings

    warnings.warn(
        f"RISE: the target probability varies by less than {SATURATED} (standard deviation "
        f"over the {n_masks} masks) for {int(flat.sum())} of {spread.numel()} images: the "
        "model's probability is saturated there, and their maps are little more than the "
        'masks\' mean; output="logit" reads a score that still varies (with p=0.9, as '
        "compare_methods builds it, for a model that calls masked images the class)",
        MapQualityNotice,
        stacklevel=3,
    )
