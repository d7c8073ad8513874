"""Localised ascent: gradient ascent confined to the region a first, global pass changed.

A generator with a global latent edits the whole image when it removes or adds a lesion: the
change the classifier needs sits in one place, but the rest of the slice drifts too. Following
the mask-refinement stage of ACE (Jeanneret, Simon and Jurie, "Adversarial Counterfactual
Visual Explanations", CVPR 2023), the path is computed in two stages:

1. **Where.** Option 1 (:class:`~cfx.trajectory.gradient_ascent.GradientAscent`) walks the
   inverted latent ``z_0`` to ``z_K`` past the margin. The change map
   ``D = blur(|G(z_K) - G(z_0)|)`` says where the global edit acted.
2. **What.** For a candidate region ``m_q`` (the top ``q`` share of ``D``'s pixels, softened
   at its border), the frames are composites ``m_q * G(z) + (1 - m_q) * b`` over a fixed
   background ``b`` (the reconstruction ``G(z_0)`` by default, or the input ``x`` itself) and
   ``z`` is ascended again from ``z_0`` on the composite's target log-odds (normalised steps).
   Each image keeps the smallest region in ``mask_fractions`` whose composite reaches
   ``margin``, found by bisecting the candidates (the middle one first, then the smaller or
   the larger half); an image for which none does falls back to the unmasked path
   (``q = 1``).

The chosen path is resampled at the levels ``t / T`` as in Option 1, so frame 0 is the
composite at ``z_0`` (``G(z_0)`` with the default background) and the frames climb through
the levels. Everything outside ``m_q`` is the background, pixel for pixel, by construction.
Whether the smaller edit is still a real change of class (and not an adversarial one) is for
an independent oracle to judge, as for every method here (``oracle=``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Literal

import torch
from torch import Tensor

from cfx.calls import (
    frozen,
    gradients_on,
    in_chunks,
    values_of,
)
from cfx.errors import check_flag, check_int, check_real
from cfx.filters import gaussian_blur
from cfx.reprs import settings_repr
from cfx.trajectory._common import composite_decoder
from cfx.trajectory.gradient_ascent import EXAGGERATION, GradientAscent, finish
from cfx.trajectory.notices import region_notice
from cfx.trajectory.resample import log_odds
from cfx.trajectory.result import TrajectoryResult
from cfx.trajectory.start import check_inversion, start
from cfx.types import Classifier, Generator, Target


def region_masks(change: Tensor, fraction: float, *, soften: float) -> Tensor:
    """Soft masks ``(B, 1, H, W)`` in [0, 1] covering the top ``fraction`` of each change map.

    ``change`` ``(B, 1, H, W)`` >= 0. Pixels at or above the ``1 - fraction`` quantile of their
    own map are set, then the binary mask is blurred with a Gaussian of ``soften`` px (0 keeps
    it binary) so the composite has no hard seam. ``fraction >= 1`` gives all ones. Where
    more than ``1 - fraction`` of a map ties at its minimum (an unchanged background of
    zeros), that quantile is the minimum and would set every pixel: there the pixels above
    the minimum, all that changed, are set (a smaller region than asked); a constant map
    (nothing changed more than anything else) sets every pixel.
    """
    if fraction >= 1.0:
        return torch.ones_like(change)
    flat = change.flatten(1)  # (B, H*W)
    # quantile takes float32/64 only: a half-precision map's, taken in float32, is compared
    # in its own dtype after
    wide = flat if flat.dtype in (torch.float32, torch.float64) else flat.float()
    threshold = torch.quantile(wide, 1.0 - fraction, dim=1).to(flat.dtype)
    threshold = threshold.view(-1, 1, 1, 1)
    lowest = flat.min(1).values.view(-1, 1, 1, 1)
    above = change > lowest
    tied_low = (threshold <= lowest) & above.flatten(1).any(1).view(-1, 1, 1, 1)
    mask = torch.where(tied_low, above, change >= threshold).to(change.dtype)
    return gaussian_blur(mask, soften).clamp(0.0, 1.0) if soften > 0 else mask


def region_bar(probs: Tensor, margin: float) -> Tensor:
    """``(B,)`` the target log-odds a candidate region's path must reach besides ``margin``,
    from the global ascent's probabilities ``probs`` ``(B, K)``: for a start at or past the
    margin (which every candidate passes at once), as far as the global ascent climbed, its
    start plus :data:`~cfx.trajectory.gradient_ascent.EXAGGERATION` or where it saturated
    short of that (to 0.01 log-odds: the goal was set from logits, which probabilities
    round); ``-inf`` for the other starts, for which reaching the margin is enough."""
    start, end = log_odds(probs[:, 0]), log_odds(probs[:, -1])
    climbed = torch.minimum(start + EXAGGERATION, end) - 0.01
    return torch.where(probs[:, 0] >= margin, climbed, torch.full_like(climbed, -math.inf))


MASK_FRACTIONS: tuple[float, ...] = (0.02, 0.03, 0.04, 0.06, 0.08, 0.12, 0.16, 0.24, 0.32)
"""Default candidate region sizes (shares of the image's pixels), steps of about 1.5x.

Chosen on 128 tumour slices of each validation split (brain seeds 1 / 4 / 6, localised Option
1, ``benchmarks/trajectory_validation.py``) over the earlier doublings (0.04, 0.08, 0.16,
0.32): oracle agreement 0.961 / 0.969 / 0.977 (was 0.961 / 0.953 / 0.961) and localisation
0.712 / 0.707 / 0.654 (was 0.686 / 0.682 / 0.628), at 0.97-1.18 s per path instead of
0.72-0.83. With doublings an image whose lesion needs a region of 10 % had to take 16 %,
and a region's pixels off the lesion count against localisation. The steps of 1.5x
without the 2 % and 3 % regions gave localisation 0.698 / 0.697 / 0.646, steps of 1.26x
0.705 / 0.702 / 0.650 with agreement down on two splits (0.945 / 0.969 / 0.945). Ranking
pixels by the classifier's path-integrated attribution instead of the change map (seed 6)
raised localisation 0.654 -> 0.663 but lost agreement (0.977 -> 0.930): the regions then
left lesion the oracle still saw."""

Background = Literal["reconstruction", "source"]
"""What a localised path shows outside its region: ``G(z_0)`` or the input itself."""


@dataclass(frozen=True)
class RegionPath:
    """A localised path placed at its levels (:meth:`LocalisedAscent.region_path`)."""

    mask: Tensor  # (B, 1, H, W) regions in [0, 1]; all ones where the search fell back
    latents: Tensor  # (B, L, d) latents at the levels
    p_start: Tensor  # (B,) target probability of the start frame
    decode: Callable[[Tensor, Tensor], Tensor]  # composite decoder, (z, rows) -> frames


class LocalisedAscent:
    """Gradient ascent confined to the smallest region that still flips the classifier.

    Reference: the mask-refinement stage of ACE, Jeanneret, Simon & Jurie, "Adversarial
    Counterfactual Visual Explanations", CVPR 2023.

    Args:
        generator, classifier, steps, eta, max_iter, margin, refine_iters, oracle,
            inversion_steps, inversion_classifier_weight, show_progress: as in
            :class:`~cfx.trajectory.gradient_ascent.GradientAscent` (``eta``/``max_iter``
            apply to both stages).
        mask_fractions: candidate region sizes, as shares of the image's pixels; each image
            keeps the smallest whose composite reaches ``margin`` (a start already past it:
            climbs as far as the whole-image ascent did, :func:`region_bar`; default
            :data:`MASK_FRACTIONS`), found by bisection (a
            larger region is taken to flip whenever a smaller one does). A failing candidate
            ascends to its budget, a passing one only to the margin, so bisection skips the
            costly failures of the smallest regions: on 128 validation tumour slices (seeds
            1 / 6) it cost 0.73 / 0.72 times the decode + classify passes of trying them from
            the smallest, with the same region for every image
            (``benchmarks/region_search_probe.py``). Healthy slices walked to tumour nearly
            all flip in the smallest region, so there it costs ~2x a search that is ~30
            times cheaper (~5 passes per image more).
        patience: a region is given up for an image once its composite has not reached
            ``margin`` after ``patience`` times the iterations the image's first, global
            ascent needed (plus 10), or after ``max_iter``: a region that needs far longer
            than the global edit is not where the evidence is. A small region often needs
            several times the global edit's iterations (its composite gains log-odds more
            slowly) and still sits on the lesion: on 128 validation tumour slices (seed 1)
            patience 2 / 4 / 8 gave localisation 0.664 / 0.675 / 0.684 and oracle agreement
            0.961 / 0.961 / 0.969 (0.81 / 0.97 / 1.07 s per path).
        change_blur: Gaussian width (px) applied to ``|G(z_K) - G(z_0)|`` before ranking
            pixels, so the region is a blob rather than scattered pixels (0: no blur).
        soften: Gaussian width (px) of the region's border (0: a binary region).
        background: what the frames show outside the region: ``"reconstruction"``
            (``G(z_0)``) or ``"source"`` (the input ``x``, keeping its own detail). The region
            is found on the reconstruction either way, so inversion error never enlarges
            it. The source raises localisation a little but keeps the sharp edges of any
            lesion the region leaves uncovered, which an independent oracle notices: on 128
            tumour slices of validation seed 1 it gave localisation 0.723 vs 0.684 (Option 1
            localised) at the same oracle agreement, but on validation seed 6 (Option 2
            localised) oracle agreement 0.953 vs 0.961 and final frames further from real
            healthy slices (Fréchet 1.64 vs 1.00 in brain-oracle features; floor 0.021), as
            on the test slices (BENCHMARKS.md, seventh run).
        give_up: stop ascending a region for an image once ``give_up`` times its mean
            log-odds gain per iteration, kept up for the rest of its budget, would still
            fall short of ``margin`` (``None``: run to the budget); see
            :meth:`~cfx.trajectory.gradient_ascent.GradientAscent.ascend`. Most of the
            region search's time went to regions that never flip; on the 128 validation
            slices (seed 1, ``background="source"``) ``None`` / 2.0 / 1.0 took 1.01 / 0.86 /
            0.76 s per path at localisation 0.723 / 0.724 / 0.720 and the same oracle
            agreement (0.969).
    """

    __repr__ = settings_repr  # the arguments given, defaults left out

    def __init__(
        self,
        generator: Generator,
        classifier: Classifier,
        *,
        steps: int = 10,
        eta: float = 0.25,
        max_iter: int = 120,
        margin: float = 0.99,
        mask_fractions: tuple[float, ...] = MASK_FRACTIONS,
        patience: float = 8.0,
        change_blur: float = 1.5,
        soften: float = 1.0,
        background: Background = "reconstruction",
        give_up: float | None = 1.0,
        refine_iters: int = 3,
        oracle: Classifier | None = None,
        inversion_steps: int = 100,
        inversion_classifier_weight: float = 0.0,
        show_progress: bool = False,
    ) -> None:
        self.generator = generator
        self.classifier = classifier
        self.steps = steps
        self.eta = eta
        self.max_iter = max_iter
        self.margin = margin
        self.mask_fractions = mask_fractions
        self.patience = patience
        self.change_blur = change_blur
        self.soften = soften
        self.background = background
        self.give_up = give_up
        self.refine_iters = refine_iters
        self.oracle = oracle
        self.inversion_steps = inversion_steps
        self.inversion_classifier_weight = inversion_classifier_weight
        self.show_progress = check_flag("show_progress", show_progress)

    def _check(self) -> None:
        check_int("steps", self.steps)
        check_int("max_iter", self.max_iter)
        check_int("refine_iters", self.refine_iters, minimum=0)
        check_inversion(self.inversion_steps, self.inversion_classifier_weight)
        check_real("eta", self.eta, low=0.0, open_low=True)
        check_real("patience", self.patience, low=0.0, open_low=True)
        check_real("margin", self.margin, low=0.5, high=1.0, open_low=True, open_high=True)
        try:
            fractions = tuple(self.mask_fractions)
        except TypeError:
            fractions = ()
        if not fractions:
            raise ValueError(
                f"`mask_fractions` must be a non-empty sequence of shares in (0, 1], "
                f"got {self.mask_fractions!r}"
            )
        for q in fractions:
            check_real("mask_fractions (each)", q, low=0.0, high=1.0, open_low=True)
        if self.background not in ("reconstruction", "source"):
            raise ValueError(
                f"`background` must be 'reconstruction' or 'source', got {self.background!r}"
            )
        if self.give_up is not None:
            check_real("give_up", self.give_up, low=0.0, open_low=True)
        check_real("change_blur", self.change_blur, low=0.0)
        check_real("soften", self.soften, low=0.0)

    def _ascent(self) -> GradientAscent:
        return GradientAscent(
            self.generator,
            self.classifier,
            steps=self.steps,
            eta=self.eta,
            max_iter=self.max_iter,
            margin=self.margin,
            refine_iters=self.refine_iters,
            # no stall stop: the region search walks a saturated image to its budget. With it,
            # on 128 validation slices the change maps came from shorter walks: seed 6 Fréchet
            # 0.89 -> 0.93 and one path lost an increasing step (seed 1: agreement 0.938 ->
            # 0.945), with no time saved (BENCHMARKS.md, session 14)
            stall_window=None,
            show_progress=self.show_progress,
        )

    def ascend_masked(
        self,
        z0: Tensor,
        start: Tensor,
        mask: Tensor,
        target: Tensor,
        budget: Tensor | None = None,
        label: str = "region ascent",
        need: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Ascend the composite ``mask * G(z) + (1 - mask) * start`` from ``z0``.

        ``z0`` ``(B, *latent)``, ``start`` ``(B, C, H, W)`` (the background), ``mask``
        ``(B, 1, H, W)``, ``budget`` ``(B,)`` iterations per image (default ``max_iter``),
        ``need`` ``(B,)`` the log-odds a region must reach to pass (default: the margin's),
        so ``give_up`` spares an ascent on its way there; returns the path
        ``(B, K, *latent)`` and probabilities ``(B, K)``.
        """
        composite = composite_decoder(self.generator, mask, start)
        return self._ascent().ascend(
            z0,
            target,
            decode=composite,
            budget=budget,
            give_up=self.give_up,
            need=need,
            label=label,
        )

    def background_of(self, x: Tensor, start: Tensor) -> Tensor:
        """What the composites show outside a region: ``x`` or ``start`` (= ``G(z_0)``)."""
        return x if self.background == "source" else start

    def change_map(self, path1: Tensor, start: Tensor, target: Tensor) -> Tensor:
        """Where the global edit acted, ``(B, 1, H, W)`` >= 0: ``blur(|G(z_K) - G(z_0)|)``
        summed over channels, from the global path ``path1`` ``(B, K, *latent)`` and
        ``start`` = ``G(z_0)``; candidate regions are its top pixels. ``target`` ``(B,)`` is
        for rankings that ask the classifier (a subclass); this one does not."""
        with torch.no_grad():
            end = in_chunks(self.generator.decode, path1[:, -1])  # (B, C, H, W)
        change = (end - start).abs().sum(1, keepdim=True)  # (B, 1, H, W)
        return gaussian_blur(change, self.change_blur) if self.change_blur > 0 else change

    def choose_regions(
        self, z0: Tensor, start: Tensor, target: Tensor, background: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Stage 1 and the region search (models must already be frozen).

        ``start`` ``(B, C, H, W)`` is ``G(z_0)`` (the change map is measured from it);
        ``background`` ``(B, C, H, W)`` is what the composites show outside a region
        (:meth:`background_of`). Returns, per image, the chosen mask ``(B, 1, H, W)`` (all
        ones for the unmasked fallback) and the stage-2 path ``(B, K, d)`` with its
        probabilities ``(B, K)`` (shorter paths are padded with their last entry).
        """
        b = z0.shape[0]
        path1, probs1 = self._ascent().ascend(z0, target, label="global ascent")
        # a start past the margin passes it at once on every candidate: its regions must
        # climb as far as the global ascent did (its goal, EXAGGERATION log-odds up, or
        # where it saturated); other starts must reach the margin (-inf: no further bar)
        bar = region_bar(probs1, self.margin)  # (B,) log-odds
        # iterations each image's global ascent needed (its probability stops changing after)
        needed = ((probs1 < self.margin) | (log_odds(probs1) < bar[:, None])).sum(1)  # (B,)
        budget = (self.patience * needed + 10).ceil().clamp(max=self.max_iter)
        change = self.change_map(path1, start, target)
        mask = torch.ones_like(change)
        paths = [path1.flatten(2)[i] for i in range(b)]
        probs = [probs1[i] for i in range(b)]
        # bisect each image's candidates for the smallest that flips: a failing candidate
        # ascends to its budget or give-up, a passing one only to the margin, so starting in
        # the middle skips the smallest candidates' long failures for images that need a
        # larger region (same choice wherever a larger region flips whenever a smaller does)
        fractions = sorted(float(f) for f in self.mask_fractions if f < 1.0)
        lo = torch.zeros(b, dtype=torch.long)
        hi = torch.full((b,), len(fractions) - 1, dtype=torch.long)
        while bool((lo <= hi).any()):
            idx = torch.nonzero(lo <= hi).flatten()
            mid = (lo[idx] + hi[idx]) // 2
            m = torch.cat(
                [
                    region_masks(change[i : i + 1], fractions[j], soften=self.soften)
                    for i, j in zip(idx.tolist(), mid.tolist(), strict=True)
                ]
            )
            label = "region " + "/".join(f"{fractions[j]:.0%}" for j in sorted(set(mid.tolist())))
            path, p = self.ascend_masked(
                z0[idx], background[idx], m, target[idx], budget[idx], label=label, need=bar[idx]
            )
            end = p[:, -1]
            ok = ((end >= self.margin) & (log_odds(end) >= bar[idx])).cpu()
            for j, i in enumerate(idx.tolist()):
                if bool(ok[j]):
                    paths[i], probs[i] = path[j].flatten(1), p[j]
                    mask[i] = m[j]
                    hi[i] = mid[j] - 1
                else:
                    lo[i] = mid[j] + 1
        k = max(p.shape[0] for p in probs)
        path_out = torch.stack([torch.cat([z, z[-1:].expand(k - len(z), -1)]) for z in paths])
        prob_out = torch.stack([torch.cat([p, p[-1:].expand(k - len(p))]) for p in probs])
        return mask, path_out, prob_out

    def place(
        self,
        path: Tensor,
        probs: Tensor,
        levels: Tensor,
        mask: Tensor,
        start: Tensor,
        target: Tensor,
    ) -> Tensor:
        """Latents ``(B, L, d)`` where the composite path first reaches ``levels`` ``(L,)``:
        Option 1's placement (levels below the start spread, false position on the
        bracketing step) on the composite's probabilities."""
        decode = composite_decoder(self.generator, mask, start)
        return self._ascent().resample(path, probs, levels, target, decode=decode)

    def region_path(self, x: Tensor, z0: Tensor, target: Tensor, levels: Tensor) -> RegionPath:
        """Stage 1, the region search and the placement at ``levels`` ``(L,)`` (models must
        already be frozen): the regions, the latents ``(B, L, d)`` where the composite path
        first reaches each level, the start's target probability and the composite decoder.
        Option 2's localised warm start is exactly this."""
        with torch.no_grad():
            start = in_chunks(self.generator.decode, z0)  # (B, C, H, W)
        background = self.background_of(x, start)
        mask, path, probs = self.choose_regions(z0, start, target, background)
        region_notice(mask, self.give_up)
        latents = self.place(path, probs, levels, mask, background, target)
        decode = composite_decoder(self.generator, mask, background)
        return RegionPath(mask=mask, latents=latents, p_start=probs[:, 0], decode=decode)

    def explain(
        self, x: Tensor, target: Target, *, latents: Tensor | None = None
    ) -> TrajectoryResult:
        """Walk images ``x`` ``(B, C, H, W)`` in [-1, 1] into class ``target``.

        The result's ``edit_masks`` ``(B, 1, H, W)`` are the regions the frames may change;
        ``latents`` (optional, ``(B, *latent_shape)``) skips the inversion. Only the values of
        ``x`` and ``latents`` are used (not their autograd graphs); the work runs with
        gradients on under the caller's ``torch.no_grad()``, but not under
        ``torch.inference_mode()`` (an error).
        """
        self._check()
        t0 = time.perf_counter()
        x, latents = values_of(x), values_of(latents)  # their autograd graphs are not ours
        with frozen(self.generator, self.classifier, self.oracle), gradients_on():
            begin = start(self, x, target, latents)
            z0, tgt = begin.latents, begin.target
            levels = torch.arange(self.steps + 1, dtype=z0.dtype, device=z0.device) / self.steps
            region = self.region_path(x, z0, tgt, levels[1:])
            zs = torch.cat([z0.flatten(1)[:, None], region.latents], 1)
            zs = zs.view(z0.shape[0], self.steps + 1, *z0.shape[1:])
            result = finish(self, x, zs, levels, begin, t0, lambdas=None, decode=region.decode)
        return replace(result, edit_masks=region.mask)
