"""The shortcut audit: where do a classifier's counterfactual paths change the image?

A classifier that learned a shortcut (a scanner marker that happened to correlate with the label
in its training set, the Clever-Hans effect of Lapuschkin et al., "Unmasking Clever Hans
predictors and assessing what machines really learn", Nat. Commun. 2019) can be flipped by
editing the shortcut instead of the real evidence. Counterfactual paths through a fixed
generator make that visible (Singla et al., "Explaining the black-box smoothly", MedIA 2023,
find shortcuts this way): walk each image across the boundary, then ask where the pixels
changed. :class:`ShortcutAudit` does this for a batch and scores, per path:

* the **change** ``|G(z_T) - G(z_0)|`` (last frame minus the reconstruction, so inversion
  error does not count), summed over channels;
* its **share** inside the lesion mask (dilated by ``lesion_dilation`` px, as in
  :func:`cfx.metrics.trajectory.localisation`), inside the marker region, and elsewhere;
  the lesion claims pixels first, the marker next, ``elsewhere`` is the rest
  (:func:`cfx.shortcuts.regions.region_shares`), so the three sum to 1;
* its **enrichment**, share / area fraction: the marker box is ~3% of a 64x64 slice, so a raw
  share hides how concentrated the change is; enrichment 1 is what a uniform change gives;
* the same shares and enrichments for the **saliency** mass ``|attribute(x, source class)|``
  of the input (the classifier's own evidence for its current decision).

A path goes **via the marker** when the marker's enrichment is at least ``min_enrichment``
(default 4: the box holds at least ~12% of the change) *and* the marker's share beats the
lesion's. Only paths that **count** enter the verdict: the classifier did not already put the
input (or its reconstruction ``G(z_0)``) in the target class, and the path flipped it. The
classifier is **flagged** when at least ``flag_rate`` of the counted paths go via the marker.

As corroboration, each report also pastes the reconstruction's marker region back into the
last frame and re-scores it (``restored_probs``): for a path that flipped through the marker,
restoring the marker alone should undo the flip.

Healthy -> tumour paths start from slices without a lesion, so their lesion share is 0 and a
lesion the path paints in counts as ``elsewhere``; the marker criterion still applies.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Literal, Protocol

import torch
from torch import Tensor

from cfx.data.brain import SIZE, marker_mask
from cfx.errors import check
from cfx.images import check_images
from cfx.saliency import Gradient, SaliencyMethod
from cfx.shortcuts.regions import claimed_regions, region_enrichment, region_shares
from cfx.trajectory import GradientAscent, MonotonePath, TrajectoryResult
from cfx.trajectory._common import class_logits, frozen, target_prob
from cfx.types import Classifier, Generator

logger = logging.getLogger(__name__)

ExplainerName = Literal["gradient", "monotone"]
REGIONS = ("lesion", "marker", "elsewhere")


class PathExplainer(Protocol):
    """Anything with ``explain(x, target, latents=...) -> TrajectoryResult`` (Options 1 and 2)."""

    def explain(
        self, x: Tensor, target: int | Tensor, *, latents: Tensor | None = None
    ) -> TrajectoryResult: ...


@dataclass(frozen=True)
class ByRegion:
    """One value per example and region (a share, an enrichment or an area fraction)."""

    lesion: Tensor  # (B,)
    marker: Tensor  # (B,)
    elsewhere: Tensor  # (B,)

    @classmethod
    def of(cls, values: dict[str, Tensor]) -> ByRegion:
        return cls(lesion=values["lesion"], marker=values["marker"], elsewhere=values["elsewhere"])

    def medians(self, where: Tensor | None = None) -> dict[str, float]:
        """Median per region over the examples selected by the bool ``(B,)`` ``where``
        (all by default), ignoring NaN; NaN when nothing is left."""
        return {name: _median(getattr(self, name), where) for name in REGIONS}


def _median(values: Tensor, where: Tensor | None) -> float:
    v = values if where is None else values[where]
    v = v[~torch.isnan(v)]
    return float(v.double().quantile(0.5)) if v.numel() else math.nan  # mean of middle two


def _paths(n: int) -> str:
    return f"{n} path" if n == 1 else f"{n} paths"


def _rate(flags: Tensor, where: Tensor) -> float:
    """Share of ``flags`` that are true among ``where`` (NaN when ``where`` is empty)."""
    return float(flags[where].float().mean()) if bool(where.any()) else math.nan


@dataclass(frozen=True)
class ShortcutReport:
    """Where a batch of counterfactual paths changed the image, and the verdict.

    All per-path tensors are ``(B,)``; regions are ``lesion`` (dilated), ``marker`` and
    ``elsewhere`` (see :mod:`cfx.shortcuts.report` for the definitions and precedence).
    """

    paths: TrajectoryResult  # the explainer's result (frames, probs, target, success, ...)
    source_class: Tensor  # (B,) int64, the classifier's class for the input x
    started_outside: Tensor  # (B,) bool, neither x nor G(z_0) was already in the target class
    change: ByRegion  # shares of |G(z_T) - G(z_0)|
    change_enrichment: ByRegion  # share / area fraction (NaN for empty regions)
    saliency: ByRegion  # shares of |saliency of x for source_class|
    saliency_enrichment: ByRegion  # share / area fraction
    area: ByRegion  # area fraction of each region (after dilation and precedence)
    via_marker: Tensor  # (B,) bool, the path changes mainly the marker region
    marker_delta: Tensor  # (B,) mean signed change G(z_T) - G(z_0) in the marker region
    restored_probs: Tensor  # (B,) target probability of G(z_T) with G(z_0)'s marker region
    saliency_maps: Tensor  # (B, 1, H, W) |attribution| of x for source_class
    lesion_masks: Tensor  # (B, 1, H, W) bool, as given (before dilation)
    marker_masks: Tensor  # (B or 1, 1, H, W) bool
    min_enrichment: float
    flag_rate: float

    @property
    def target(self) -> Tensor:
        """``(B,)`` int64 target class of each path."""
        return self.paths.target

    @property
    def flipped(self) -> Tensor:
        """``(B,)`` bool, the classifier puts the last frame in the target class."""
        return self.paths.success

    @property
    def counted(self) -> Tensor:
        """``(B,)`` bool, the paths that enter the verdict: started outside the target class
        and flipped into it."""
        return self.started_outside & self.paths.success

    def _where(self, where: Tensor | None) -> Tensor:
        if where is None:
            return torch.ones_like(self.counted)
        check(
            isinstance(where, Tensor)
            and where.dtype == torch.bool
            and tuple(where.shape) == tuple(self.counted.shape),
            ValueError,
            f"`where` must be a bool tensor of shape {tuple(self.counted.shape)}, got "
            + (
                f"dtype {where.dtype} shape {tuple(where.shape)}"
                if isinstance(where, Tensor)
                else type(where).__name__
            ),
        )
        return where.to(self.counted.device)

    @property
    def marker_rate(self) -> float:
        """Share of the counted paths that go via the marker (NaN if none counted); per
        subset: ``summary(where)["marker_rate"]``."""
        return _rate(self.via_marker, self.counted)

    @property
    def flagged(self) -> bool:
        """The classifier flips via the marker in at least ``flag_rate`` of counted paths."""
        rate = self.marker_rate
        return not math.isnan(rate) and rate >= self.flag_rate

    @property
    def verdict(self) -> str:
        """One sentence, e.g. "flips by removing the scanner marker in 83% of 12 paths
        (median share of change: marker 0.41 ...)" or "no shortcut found: ..."."""
        return self.describe()

    def summary(self, where: Tensor | None = None) -> dict[str, float]:
        """Counts, rates and medians for the paths selected by ``where`` (all by default).

        Counts: paths whose input the classifier already puts in the target class, paths
        whose reconstruction ``G(z_0)`` (but not the input) is already there (a generator
        the classifier reads differently from real images), the rest (started outside) and
        the counted ones (of those, flipped).
        Rates: ``flip_rate`` over the paths that started outside the target class;
        ``marker_rate`` and ``marker_undo_rate`` (restoring the marker region alone takes
        the target probability back below 0.5) over the counted paths. Medians of change
        shares and enrichments are over the counted paths; saliency and area medians over
        all selected examples.
        """
        sel = self._where(where)
        counted = self.counted & sel
        outside = self.started_outside & sel
        input_in = (self.source_class == self.paths.target) & sel
        out = {
            "n_paths": float(sel.sum()),
            "n_input_in_target": float(input_in.sum()),
            "n_reconstruction_in_target": float((sel & ~input_in & ~self.started_outside).sum()),
            "n_started_outside": float(outside.sum()),
            "n_counted": float(counted.sum()),
            "flip_rate": _rate(self.paths.success, outside),
            "marker_rate": _rate(self.via_marker, counted),
            "marker_undo_rate": _rate(self.restored_probs < 0.5, counted),
        }
        for name, values, rows in (
            ("change", self.change, counted),
            ("change_enrichment", self.change_enrichment, counted),
            ("saliency", self.saliency, sel),
            ("saliency_enrichment", self.saliency_enrichment, sel),
            ("area", self.area, sel),
        ):
            for region, med in values.medians(rows).items():
                out[f"median_{name}_{region}"] = med
        return out

    def describe(self, where: Tensor | None = None) -> str:
        """The verdict for the paths selected by ``where`` (all by default).

        "removing"/"adding" (the marker) is used when at least 80% of the via-marker paths
        darken/brighten the marker region on average, which assumes a marker brighter than
        its surroundings (as in :mod:`cfx.data.brain`); otherwise "changing".
        """
        sel = self._where(where)
        counted = self.counted & sel
        n = int(counted.sum())
        if not bool(sel.any()):
            return "no verdict: no paths selected"
        if n == 0:
            return (
                f"no verdict: none of the {int(sel.sum())} paths crossed into the target class "
                f"from outside it ({int((self.started_outside & sel).sum())} started outside, "
                "none of those flipped)"
                if bool((self.started_outside & sel).any())
                else f"no verdict: the classifier already put all {int(sel.sum())} inputs in "
                "the target class"
            )
        rate = _rate(self.via_marker, counted)
        ch = self.change.medians(counted)
        en = self.change_enrichment.medians(counted)
        sal = self.saliency.medians(sel)
        detail = (
            f"(median share of change: marker {ch['marker']:.2f} ({en['marker']:.1f}x its "
            f"area), lesion {ch['lesion']:.2f}, elsewhere {ch['elsewhere']:.2f}; median share "
            f"of saliency: marker {sal['marker']:.2f}, lesion {sal['lesion']:.2f}, elsewhere "
            f"{sal['elsewhere']:.2f})"
        )
        if rate >= self.flag_rate:
            via = counted & self.via_marker
            undo = _rate(self.restored_probs < 0.5, via)
            return (
                f"flips by {self._verb(via)} the scanner marker in {rate:.0%} of {_paths(n)} "
                f"{detail}; restoring the marker region alone undoes {undo:.0%} of those flips"
            )
        return (
            f"no shortcut found: the scanner marker carries the change in {rate:.0%} of "
            f"{_paths(n)} {detail}"
        )

    def _verb(self, via: Tensor) -> str:
        delta = self.marker_delta[via]
        if float((delta < 0).float().mean()) >= 0.8:
            return "removing"
        if float((delta > 0).float().mean()) >= 0.8:
            return "adding"
        return "changing"


def _check_masks(masks: object, name: str, b: int, h: int, w: int, *, shared: bool) -> Tensor:
    if not isinstance(masks, Tensor) or masks.dtype != torch.bool:
        got = f"dtype {masks.dtype}" if isinstance(masks, Tensor) else type(masks).__name__
        raise TypeError(f"`{name}` must be a bool tensor (B, 1, H, W), got {got}")
    batches = (1, b) if shared else (b,)
    check(
        masks.ndim == 4 and masks.shape[0] in batches and tuple(masks.shape[1:]) == (1, h, w),
        ValueError,
        f"`{name}` must have shape ({b}, 1, {h}, {w})"
        + (f" or (1, 1, {h}, {w})" if shared else "")
        + f" to match `x`, got {tuple(masks.shape)}",
    )
    return masks


class ShortcutAudit:
    """Run counterfactual paths on a batch and report whether they flip through the marker.

    Args:
        generator: a :class:`~cfx.types.Generator` (``Invertible`` unless latents are given).
        classifier: images in [-1, 1] -> logits ``(B, K)``; the model being audited.
        explainer: ``"gradient"`` (Option 1, :class:`~cfx.trajectory.GradientAscent`),
            ``"monotone"`` (Option 2, :class:`~cfx.trajectory.MonotonePath`), both built with
            their defaults and ``steps``; or a configured explainer object for
            ``classifier`` (then ``steps`` is ignored).
        saliency: a saliency method for ``classifier`` (``attribute(x, target) ->
            (B, 1, H, W)``); None uses :class:`~cfx.saliency.Gradient`.
        steps: frames ``T`` of the paths built from a name.
        lesion_dilation: px grown around the lesion masks (as in ``localisation``).
        min_enrichment: a path goes via the marker when the marker's share of the change is
            at least this many times its area fraction (and above the lesion's share).
        flag_rate: flag the classifier when at least this share of counted paths go via the
            marker, in (0, 1].
        show_progress: tqdm bars of the explainer built from a name.
    """

    def __init__(
        self,
        generator: Generator,
        classifier: Classifier,
        *,
        explainer: ExplainerName | PathExplainer = "gradient",
        saliency: SaliencyMethod | None = None,
        steps: int = 10,
        lesion_dilation: int = 3,
        min_enrichment: float = 4.0,
        flag_rate: float = 0.25,
        show_progress: bool = False,
    ) -> None:
        self.generator = generator
        self.classifier = classifier
        self.explainer = explainer
        self.saliency = saliency
        self.steps = steps
        self.lesion_dilation = lesion_dilation
        self.min_enrichment = min_enrichment
        self.flag_rate = flag_rate
        self.show_progress = show_progress

    def _check(self) -> None:
        ok = isinstance(self.min_enrichment, (int, float)) and not isinstance(
            self.min_enrichment, bool
        )
        check(
            ok and self.min_enrichment > 0,
            ValueError,
            f"`min_enrichment` must be a positive number, got {self.min_enrichment!r}",
        )
        ok = isinstance(self.flag_rate, (int, float)) and not isinstance(self.flag_rate, bool)
        check(
            ok and 0 < self.flag_rate <= 1,
            ValueError,
            f"`flag_rate` must be a number in (0, 1], got {self.flag_rate!r}",
        )
        ok = isinstance(self.lesion_dilation, int) and not isinstance(self.lesion_dilation, bool)
        check(
            ok and self.lesion_dilation >= 0,
            ValueError,
            f"`lesion_dilation` must be an int >= 0, got {self.lesion_dilation!r}",
        )

    def _explainer(self) -> PathExplainer:
        g, f = self.generator, self.classifier
        if isinstance(self.explainer, str):
            if self.explainer == "gradient":
                return GradientAscent(g, f, steps=self.steps, show_progress=self.show_progress)
            elif self.explainer == "monotone":
                return MonotonePath(g, f, steps=self.steps, show_progress=self.show_progress)
            else:
                raise ValueError(
                    "`explainer` must be 'gradient', 'monotone' or an object with "
                    f"explain(x, target), got {self.explainer!r}"
                )
        if not callable(getattr(self.explainer, "explain", None)):
            raise TypeError(
                "`explainer` must be 'gradient', 'monotone' or an object with "
                f"explain(x, target), got {type(self.explainer).__name__}"
            )
        own = getattr(self.explainer, "classifier", self.classifier)
        check(
            own is self.classifier,
            ValueError,
            "`explainer` explains a different classifier than `classifier`; build it for "
            "the audited classifier",
        )
        return self.explainer

    def _saliency(self) -> SaliencyMethod:
        if self.saliency is None:
            return Gradient(self.classifier)
        if not callable(getattr(self.saliency, "attribute", None)):
            raise TypeError(
                "`saliency` must be None or an object with attribute(x, target), got "
                f"{type(self.saliency).__name__}"
            )
        return self.saliency

    def audit(
        self,
        x: Tensor,
        target: int | Tensor,
        *,
        lesion_masks: Tensor,
        marker_masks: Tensor | None = None,
        latents: Tensor | None = None,
    ) -> ShortcutReport:
        """Walk ``x`` ``(B, C, H, W)`` in [-1, 1] into ``target`` (an int or ``(B,)``
        classes) and report where the paths changed the image.

        ``lesion_masks`` bool ``(B, 1, H, W)`` (all False for healthy slices);
        ``marker_masks`` bool ``(B, 1, H, W)`` or ``(1, 1, H, W)``, by default the
        :data:`cfx.data.brain.MARKER_BOX` of 64x64 slices; ``latents`` skip the inversion.
        """
        self._check()
        x = check_images(x, "x")
        b, _, h, w = x.shape
        lesion = _check_masks(lesion_masks, "lesion_masks", b, h, w, shared=False).to(x.device)
        if marker_masks is None:
            check(
                (h, w) == (SIZE, SIZE),
                ValueError,
                f"`marker_masks` is required for images that are not {SIZE}x{SIZE} brain "
                f"slices, got size {h}x{w}",
            )
            marker = marker_mask(SIZE).to(x.device)
        else:
            marker = _check_masks(marker_masks, "marker_masks", b, h, w, shared=True)
            marker = marker.to(x.device)
        explainer, saliency = self._explainer(), self._saliency()
        t0 = time.perf_counter()

        paths = explainer.explain(x, target, latents=latents)
        start, final = paths.frames[:, 0], paths.frames[:, -1]  # (B, C, H, W)
        with frozen(self.classifier), torch.no_grad():
            source_class = class_logits(self.classifier, x).argmax(1)  # (B,)
            restored = torch.where(marker, start, final)  # (B, C, H, W)
            restored_probs = target_prob(class_logits(self.classifier, restored), paths.target)
        maps = saliency.attribute(x, source_class).detach().abs()
        check(
            tuple(maps.shape) == (b, 1, h, w),
            ValueError,
            f"`saliency` must return maps of shape {(b, 1, h, w)}, got {tuple(maps.shape)}",
        )

        change = (final - start).abs().sum(1, keepdim=True)  # (B, 1, H, W)
        regions = {"lesion": lesion, "marker": marker}
        dilation = {"lesion": self.lesion_dilation}
        shares = ByRegion.of(region_shares(change, regions, dilation=dilation))
        enrich = ByRegion.of(region_enrichment(change, regions, dilation=dilation))
        claimed = claimed_regions(regions, change, dilation=dilation)
        in_marker = claimed["marker"].flatten(1)  # (B, H*W) float
        signed = (final - start).mean(1).flatten(1)  # (B, H*W)
        marker_delta = (signed * in_marker).sum(1) / in_marker.sum(1).clamp_min(1.0)  # (B,)
        via = (enrich.marker >= float(self.min_enrichment)) & (shares.marker > shares.lesion)
        outside = (source_class != paths.target) & (paths.probs[:, 0] < 0.5)

        report = ShortcutReport(
            paths=paths,
            source_class=source_class,
            started_outside=outside,
            change=shares,
            change_enrichment=enrich,
            saliency=ByRegion.of(region_shares(maps, regions, dilation=dilation)),
            saliency_enrichment=ByRegion.of(region_enrichment(maps, regions, dilation=dilation)),
            area=ByRegion.of({k: v.mean(dim=(1, 2, 3)) for k, v in claimed.items()}),
            via_marker=via,
            marker_delta=marker_delta,
            restored_probs=restored_probs,
            saliency_maps=maps,
            lesion_masks=lesion,
            marker_masks=marker,
            min_enrichment=float(self.min_enrichment),
            flag_rate=float(self.flag_rate),
        )
        logger.info(
            "shortcut audit of %d paths in %.1fs (explainer %.1fs): %s",
            b,
            time.perf_counter() - t0,
            paths.seconds,
            report.verdict,
        )
        return report
